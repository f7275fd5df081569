//! The login component's configuration, from Spin variables (defaults here,
//! in one place; `spin.toml` documents the same values).

use identity::bootstrap::BootstrapAdmin;
use identity::limits::Limit;
use shared::auth::TokenConfig;
use shared::config::Vars;
use shared::context::TrustedProxies;
use shared::ApiError;

/// Everything the handlers need from Spin variables.
#[derive(Debug, Clone)]
pub struct Config {
    /// Access-token signing and lifetime.
    pub tokens: TokenConfig,
    /// Refresh-token lifetime from its last use, seconds (`refresh_token_ttl_secs`).
    pub refresh_ttl_secs: i64,
    /// Longest a session lives from its login, seconds (`session_max_lifetime_secs`).
    pub session_max_secs: i64,
    /// Failed logins per email + client address (`login_max_failures_per_account`).
    pub per_account: Limit,
    /// Failed logins per client address (`login_max_failures_per_address`).
    pub per_address: Limit,
    /// Proxies whose `X-Forwarded-For` names the client (`trusted_proxies`).
    pub trusted_proxies: TrustedProxies,
    /// The bootstrap admin, when `admin_email` and `admin_password` are set.
    pub admin: Option<BootstrapAdmin>,
}

impl Config {
    /// Reads and checks every variable; a bad value is a configuration error (500, logged).
    pub fn from_vars(vars: &Vars) -> Result<Self, ApiError> {
        let window = vars.positive_secs("login_lock_window_secs", 900)?;
        let session_max_secs = vars.positive_secs("session_max_lifetime_secs", 2_592_000)?;
        // Access tokens expire by their session's end, less the clock-skew
        // leeway: a shorter session could never be used.
        if session_max_secs <= 2 * shared::auth::LEEWAY_SECS {
            return Err(ApiError::Internal(format!(
                "configuration: session_max_lifetime_secs must be more than {} seconds",
                2 * shared::auth::LEEWAY_SECS
            )));
        }
        Ok(Self {
            tokens: vars.tokens()?,
            refresh_ttl_secs: vars.positive_secs("refresh_token_ttl_secs", 1_209_600)?,
            session_max_secs,
            per_account: Limit::new(
                "login_max_failures_per_account",
                vars.number("login_max_failures_per_account", 5)?,
                window,
            )?,
            per_address: Limit::new(
                "login_max_failures_per_address",
                vars.number("login_max_failures_per_address", 50)?,
                window,
            )?,
            trusted_proxies: TrustedProxies::parse(
                &vars.optional("trusted_proxies").unwrap_or_default(),
            )?,
            admin: BootstrapAdmin::from_variables(
                &vars.optional("admin_email").unwrap_or_default(),
                &vars.optional("admin_password").unwrap_or_default(),
            )?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use shared::testing::{
        config_lookup, config_variables, is_configuration_error, ConfigVariables,
    };

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
}
