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
mod tests;
