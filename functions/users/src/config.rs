//! The users component's configuration, from Spin variables (defaults here,
//! in one place; `spin.toml` documents the same values).

use identity::limits::Limit;
use shared::auth::TokenConfig;
use shared::config::Vars;
use shared::context::TrustedProxies;
use shared::domain::Email;
use shared::ApiError;

/// Everything the handlers need from Spin variables.
#[derive(Debug, Clone)]
pub struct Config {
    /// Access-token verification (and the lifetime revocation marks must outlive).
    pub tokens: TokenConfig,
    /// How long a cached user lives, in milliseconds (`cache_ttl_secs`), ±10 % jitter.
    pub cache_ttl_ms: i64,
    /// Registrations per client address (`register_max_per_address` per
    /// `register_window_secs`): each one costs an argon2 hash.
    pub registration: Limit,
    /// Wrong `current_password` guesses per user (`password_max_failures_per_user`
    /// per `login_lock_window_secs`), so a stolen access token cannot guess the password.
    pub password_check: Limit,
    /// Proxies whose `X-Forwarded-For` names the client (`trusted_proxies`).
    pub trusted_proxies: TrustedProxies,
    /// The bootstrap admin's email (`admin_email`), which nobody may register.
    pub admin_email: Option<Email>,
}

impl Config {
    /// Reads and checks every variable; a bad value is a configuration error (500, logged).
    pub fn from_vars(vars: &Vars) -> Result<Self, ApiError> {
        let cache_ttl_secs = vars.secs("cache_ttl_secs", 300)?;
        let admin_email = vars
            .optional("admin_email")
            .map(|e| {
                Email::parse(&e).map_err(|_| {
                    ApiError::Internal("configuration: admin_email is not a valid email".into())
                })
            })
            .transpose()?;
        Ok(Self {
            tokens: vars.tokens()?,
            cache_ttl_ms: cache_ttl_secs * 1000,
            registration: Limit::new(
                "register_max_per_address",
                vars.number("register_max_per_address", 20)?,
                vars.positive_secs("register_window_secs", 3600)?,
            )?,
            password_check: Limit::new(
                "password_max_failures_per_user",
                vars.number("password_max_failures_per_user", 5)?,
                vars.positive_secs("login_lock_window_secs", 900)?,
            )?,
            trusted_proxies: TrustedProxies::parse(
                &vars.optional("trusted_proxies").unwrap_or_default(),
            )?,
            admin_email,
        })
    }
}

#[cfg(test)]
mod tests;
