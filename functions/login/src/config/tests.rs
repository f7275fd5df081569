//! `Config::from_vars`: docs/API.md's defaults, refused settings, and any
//! variables read safely.

use super::*;
use proptest::prelude::*;
use shared::testing::{config_lookup, config_variables, is_configuration_error, ConfigVariables};

fn with(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
    move |name| {
        pairs
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
            .or_else(|| (name == "jwt_secret").then(|| "s".repeat(32)))
    }
}

#[test]
fn defaults_are_api_md_values() {
    let get = with(&[]);
    let config = Config::from_vars(&Vars::new(&get)).unwrap();
    assert_eq!(config.refresh_ttl_secs, 1_209_600);
    assert_eq!(config.session_max_secs, 2_592_000);
    assert_eq!(
        config.per_account,
        Limit {
            max: 5,
            window_secs: 900
        }
    );
    assert_eq!(
        config.per_address,
        Limit {
            max: 50,
            window_secs: 900
        }
    );
    assert_eq!(config.trusted_proxies, TrustedProxies::default());
    assert!(config.admin.is_none());
}

#[test]
fn zero_limits_non_numbers_and_bad_cidrs_are_configuration_errors() {
    for pairs in [
        &[("login_max_failures_per_account", "0")][..],
        &[("login_lock_window_secs", "-1")][..],
        &[("refresh_token_ttl_secs", "soon")][..],
        &[("session_max_lifetime_secs", "60")][..],
        &[("trusted_proxies", "10.0.0.0/99")][..],
        &[
            ("admin_email", "root@example.com"),
            ("admin_password", "short"),
        ][..],
    ] {
        let pairs: &'static [(&str, &str)] = Box::leak(pairs.to_vec().into_boxed_slice());
        let get = with(pairs);
        assert_eq!(
            Config::from_vars(&Vars::new(&get)).unwrap_err().status(),
            500,
            "{pairs:?}"
        );
    }
}

/// Every variable the component reads.
const NAMES: [&str; 12] = [
    "jwt_secret",
    "jwt_issuer",
    "jwt_audience",
    "access_token_ttl_secs",
    "login_lock_window_secs",
    "session_max_lifetime_secs",
    "refresh_token_ttl_secs",
    "login_max_failures_per_account",
    "login_max_failures_per_address",
    "trusted_proxies",
    "admin_email",
    "admin_password",
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
    fn an_accepted_config_has_usable_sessions_and_limits(vars in any_variables()) {
        let get = config_lookup(&vars);
        if let Ok(config) = Config::from_vars(&Vars::new(&get)) {
            prop_assert!(config.session_max_secs > 2 * shared::auth::LEEWAY_SECS);
            prop_assert!(config.refresh_ttl_secs > 0);
            for limit in [config.per_account, config.per_address] {
                prop_assert!(limit.max >= 1 && limit.window_secs >= 1, "{:?}", limit);
            }
        }
    }
}
