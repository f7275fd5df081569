//! The uploads component's configuration, from Spin variables (defaults
//! here, in one place; `spin.toml` documents the same values).

use shared::auth::TokenConfig;
use shared::config::Vars;
use shared::ApiError;

/// Default `upload_max_bytes`: 5 MiB.
pub const DEFAULT_MAX_UPLOAD_BYTES: usize = 5 * 1024 * 1024;

/// Extra body bytes allowed over `upload_max_bytes` for multipart framing
/// (boundaries and part headers); the file itself is held to the exact limit.
pub const MULTIPART_ALLOWANCE: usize = 16 * 1024;

/// Default lifetime of cached metadata, seconds.
pub const DEFAULT_CACHE_TTL_SECS: i64 = 300;

/// Default `upload_quota_bytes`: 100 MiB per user.
pub const DEFAULT_QUOTA_BYTES: u64 = 100 * 1024 * 1024;

/// The component's configuration, from Spin variables.
#[derive(Debug, Clone)]
pub struct Config {
    /// Verifies bearer tokens.
    pub tokens: TokenConfig,
    /// Largest file accepted, in bytes (`upload_max_bytes`).
    pub max_upload_bytes: usize,
    /// Lifetime of cached metadata, seconds (`cache_ttl_secs`).
    pub cache_ttl_secs: i64,
    /// Most bytes one user may store (`upload_quota_bytes`).
    pub quota_bytes: u64,
}

impl Config {
    /// Reads and checks every variable; a bad value is a configuration error (500, logged).
    pub fn from_vars(vars: &Vars) -> Result<Self, ApiError> {
        Ok(Self {
            tokens: vars.tokens()?,
            max_upload_bytes: vars.number("upload_max_bytes", DEFAULT_MAX_UPLOAD_BYTES)?,
            cache_ttl_secs: vars.number("cache_ttl_secs", DEFAULT_CACHE_TTL_SECS)?,
            quota_bytes: vars.number("upload_quota_bytes", DEFAULT_QUOTA_BYTES)?,
        })
    }

    /// The body limit handed to the reader: the file limit plus room for
    /// multipart framing.
    pub fn body_limit(max_upload_bytes: usize) -> usize {
        max_upload_bytes.saturating_add(MULTIPART_ALLOWANCE)
    }

    /// The body limit before the rest of the configuration is read (it must
    /// be known before the body is): from `upload_max_bytes`, or the default
    /// when that does not parse — [`Config::from_vars`] then reports it.
    pub fn body_limit_of(vars: &Vars) -> usize {
        Self::body_limit(
            vars.number("upload_max_bytes", DEFAULT_MAX_UPLOAD_BYTES)
                .unwrap_or(DEFAULT_MAX_UPLOAD_BYTES),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret_and(name: &'static str, value: &'static str) -> impl Fn(&str) -> Option<String> {
        move |n| match n {
            "jwt_secret" => Some("s".repeat(32)),
            n if n == name => Some(value.to_string()),
            _ => None,
        }
    }

    #[test]
    fn defaults_are_api_md_values() {
        let get = secret_and("none", "");
        let config = Config::from_vars(&Vars::new(&get)).unwrap();
        assert_eq!(config.max_upload_bytes, 5 * 1024 * 1024);
        assert_eq!(config.quota_bytes, 100 * 1024 * 1024);
        assert_eq!(config.cache_ttl_secs, 300);
    }

    #[test]
    fn a_broken_size_limit_is_reported_but_still_bounds_the_body() {
        let get = secret_and("upload_max_bytes", "lots");
        let vars = Vars::new(&get);
        assert_eq!(Config::from_vars(&vars).unwrap_err().status(), 500);
        assert_eq!(
            Config::body_limit_of(&vars),
            DEFAULT_MAX_UPLOAD_BYTES + MULTIPART_ALLOWANCE
        );
    }
}
