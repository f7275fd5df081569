//! The bootstrap admin: whoever logs in with exactly the `admin_email` and
//! `admin_password` Spin variables is an admin (the account is created on
//! first use). Nobody can capture it in advance: registering `admin_email`
//! is refused (`users` checks [`BootstrapAdmin::email`]), and an account that
//! already holds the email is taken over at the first bootstrap login — its
//! password becomes `admin_password` and every session it had ends.

use sha2::{Digest, Sha256};
use shared::domain::{Email, Password};
use shared::ApiError;

/// The bootstrap admin's credentials.
#[derive(Clone)]
pub struct BootstrapAdmin {
    /// The normalised email.
    pub email: Email,
    password: Password,
}

impl std::fmt::Debug for BootstrapAdmin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BootstrapAdmin")
            .field("email", &self.email)
            .finish_non_exhaustive()
    }
}

impl BootstrapAdmin {
    /// The bootstrap admin when both variables are non-empty, `None` when
    /// either is empty (the feature is off), or a configuration error (500)
    /// for an email that does not parse or a password outside API.md's rules.
    pub fn from_variables(email: &str, password: &str) -> Result<Option<Self>, ApiError> {
        if email.trim().is_empty() || password.is_empty() {
            return Ok(None);
        }
        let email = Email::parse(email).map_err(|_| {
            ApiError::Internal("configuration: admin_email is not a valid email".into())
        })?;
        let password = Password::parse(password, Some(&email)).map_err(|_| {
            ApiError::Internal(
                "configuration: admin_password must be 8-128 characters and not the email".into(),
            )
        })?;
        Ok(Some(Self { email, password }))
    }

    /// The bootstrap password, to hash into the account.
    pub fn password(&self) -> &Password {
        &self.password
    }

    /// True when `email` and `password` are exactly the bootstrap
    /// credentials. The passwords are compared as SHA-256 digests in
    /// constant time, so neither the content nor the length of the secret
    /// shows in the timing.
    pub fn matches(&self, email: &Email, password: &str) -> bool {
        let expected = Sha256::digest(self.password.expose().as_bytes());
        let given = Sha256::digest(password.as_bytes());
        let same = expected
            .iter()
            .zip(given.iter())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0;
        same & (self.email == *email)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_off_when_a_variable_is_empty_and_refuses_bad_values() {
        assert!(BootstrapAdmin::from_variables("root@example.com", "")
            .unwrap()
            .is_none());
        assert!(BootstrapAdmin::from_variables("", "admin-password")
            .unwrap()
            .is_none());
        assert!(BootstrapAdmin::from_variables("root@example.com", "short").is_err());
    }

    #[test]
    fn matches_only_the_exact_credentials() {
        let admin = BootstrapAdmin::from_variables("Root@Example.com", "admin-password")
            .unwrap()
            .unwrap();
        let email = Email::parse("root@example.com").unwrap();
        assert!(admin.matches(&email, "admin-password"));
        assert!(!admin.matches(&email, "admin-passwore"));
        assert!(!admin.matches(&email, "admin-password "));
        let other = Email::parse("other@example.com").unwrap();
        assert!(!admin.matches(&other, "admin-password"));
    }

    use proptest::prelude::*;
    use shared::testing::hostile_text;

    fn email_text() -> impl Strategy<Value = String> {
        prop_oneof![
            hostile_text(),
            "[ ]{0,2}[A-Za-z0-9.+_-]{1,20}@[a-zA-Z0-9]{1,10}\\.[a-z]{2,4}[ ]{0,2}",
        ]
    }

    fn password_text() -> impl Strategy<Value = String> {
        prop_oneof![hostile_text(), ".{0,140}"]
    }

    proptest! {
        #[test]
        fn bootstrap_variables_of_any_text_are_off_an_admin_or_a_configuration_error(
            email in email_text(),
            password in password_text(),
        ) {
            match BootstrapAdmin::from_variables(&email, &password) {
                Ok(None) => prop_assert!(email.trim().is_empty() || password.is_empty()),
                Ok(Some(admin)) => {
                    prop_assert_eq!(Ok(admin.email.clone()), Email::parse(&email));
                    prop_assert_eq!(admin.password().expose(), password.as_str());
                    prop_assert!(admin.matches(&admin.email, &password));
                }
                Err(e) => prop_assert_eq!(e.status(), 500),
            }
        }

        #[test]
        fn the_bootstrap_admin_matches_no_other_password(
            password in "[^\\x00]{8,40}",
            other in password_text(),
        ) {
            let admin = BootstrapAdmin::from_variables("root@example.com", &password)
                .unwrap()
                .unwrap();
            prop_assert_eq!(admin.matches(&admin.email, &other), other == password);
            let someone = Email::parse("someone@example.com").unwrap();
            prop_assert!(!admin.matches(&someone, &password));
        }
    }
}
