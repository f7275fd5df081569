//! `Config::from_vars`: docs/API.md's defaults, the admin email, and any
//! variables read safely.

use super::*;
use proptest::prelude::*;
use shared::testing::{config_lookup, config_variables, is_configuration_error, ConfigVariables};

#[test]
fn defaults_are_api_md_values() {
    let get = |name: &str| (name == "jwt_secret").then(|| "s".repeat(32));
    let config = Config::from_vars(&Vars::new(&get)).unwrap();
    assert_eq!(config.cache_ttl_ms, 300_000);
    assert_eq!(
        config.registration,
        Limit {
            max: 20,
            window_secs: 3600
        }
    );
    assert_eq!(
        config.password_check,
        Limit {
            max: 5,
            window_secs: 900
        }
    );
    assert!(config.admin_email.is_none());
}

#[test]
fn admin_email_is_normalised_and_a_bad_one_is_a_configuration_error() {
    let get = |name: &str| match name {
        "jwt_secret" => Some("s".repeat(32)),
        "admin_email" => Some(" Root@Example.com ".into()),
        _ => None,
    };
    let config = Config::from_vars(&Vars::new(&get)).unwrap();
    assert_eq!(config.admin_email.unwrap().as_str(), "root@example.com");
    let bad = |name: &str| match name {
        "jwt_secret" => Some("s".repeat(32)),
        "admin_email" => Some("nope".into()),
        _ => None,
    };
    assert_eq!(
        Config::from_vars(&Vars::new(&bad)).unwrap_err().status(),
        500
    );
}

/// Every variable the component reads.
const NAMES: [&str; 11] = [
    "jwt_secret",
    "jwt_issuer",
    "jwt_audience",
    "access_token_ttl_secs",
    "cache_ttl_secs",
    "admin_email",
    "register_max_per_address",
    "register_window_secs",
    "password_max_failures_per_user",
    "login_lock_window_secs",
    "trusted_proxies",
];

/// Settings this component's variables take, besides numbers and secrets.
const PLAUSIBLE: &[&str] = &[
    "61",
    "10.0.0.0/8, ::1",
    " Root@Example.com ",
    "a-long-enough-password",
    "https://hooks.example.com/x",
];

fn any_variables() -> impl Strategy<Value = ConfigVariables> {
    config_variables(&NAMES, PLAUSIBLE)
}

proptest! {
    #[test]
    fn any_variables_give_a_config_or_a_configuration_error(vars in any_variables()) {
        let get = config_lookup(&vars);
        if let Err(e) = Config::from_vars(&Vars::new(&get)) {
            prop_assert!(is_configuration_error(&e), "{:?}", e);
        }
    }

    #[test]
    fn an_accepted_config_has_working_limits_and_a_normal_admin_email(vars in any_variables()) {
        let get = config_lookup(&vars);
        if let Ok(config) = Config::from_vars(&Vars::new(&get)) {
            for limit in [config.registration, config.password_check] {
                prop_assert!(limit.max >= 1 && limit.window_secs >= 1, "{:?}", limit);
            }
            if let Some(email) = &config.admin_email {
                let again = Email::parse(email.as_str());
                prop_assert_eq!(again.as_ref().map(Email::as_str), Ok(email.as_str()));
            }
        }
    }
}
