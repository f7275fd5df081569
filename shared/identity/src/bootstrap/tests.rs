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
