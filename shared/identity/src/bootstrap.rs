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
    /// for an email that does not parse or a password outside docs/API.md's rules.
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
mod tests;
