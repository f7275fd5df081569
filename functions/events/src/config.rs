//! The events component's configuration, from Spin variables (defaults here,
//! in one place; `spin.toml` documents the same values).

use shared::auth::TokenConfig;
use shared::config::Vars;
use shared::ApiError;

/// Where events go; absent while `webhook_url` is empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookConfig {
    /// `webhook_url`: the receiver, `http://` or `https://`.
    pub url: String,
    /// `webhook_secret`: the HMAC-SHA256 signing key.
    pub secret: String,
}

/// Configuration from Spin variables.
#[derive(Debug, Clone)]
pub struct Config {
    /// Verifies the admin routes' bearer tokens.
    pub tokens: TokenConfig,
    /// The receiver, if one is configured.
    pub webhook: Option<WebhookConfig>,
    /// `webhook_max_attempts`: attempts before an event is given up.
    pub max_attempts: u32,
}

/// The shortest `webhook_secret` accepted: 128 bits of a random string.
pub const MIN_SECRET_LEN: usize = 16;

impl Config {
    /// Reads and checks every variable; a bad value is a configuration error (500, logged).
    pub fn from_vars(vars: &Vars) -> Result<Self, ApiError> {
        let config_error = |m: &str| ApiError::Internal(format!("configuration: {m}"));
        let url = vars
            .optional("webhook_url")
            .filter(|u| !u.trim().is_empty());
        let webhook = match url {
            None => None,
            Some(url) => {
                if !(url.starts_with("https://") || url.starts_with("http://")) {
                    return Err(config_error("webhook_url must be an http(s):// URL"));
                }
                let secret = vars.optional("webhook_secret").unwrap_or_default();
                if secret.len() < MIN_SECRET_LEN {
                    return Err(config_error(
                        "webhook_secret must have at least 16 characters when webhook_url is set",
                    ));
                }
                Some(WebhookConfig { url, secret })
            }
        };
        let max_attempts: u32 = vars.number("webhook_max_attempts", 15)?;
        if max_attempts == 0 {
            return Err(config_error("webhook_max_attempts must be at least 1"));
        }
        Ok(Self {
            tokens: vars.tokens()?,
            webhook,
            max_attempts,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Result<Config, ApiError> {
        let owned: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .chain([("jwt_secret".to_string(), "s".repeat(32))])
            .collect();
        let get = move |n: &str| owned.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
        Config::from_vars(&Vars::new(&get))
    }

    #[test]
    fn no_webhook_url_means_no_deliveries() {
        let c = config(&[]).unwrap();
        assert_eq!(c.webhook, None);
        assert_eq!(c.max_attempts, 15);
    }

    #[test]
    fn a_webhook_needs_a_long_enough_secret_and_an_http_url() {
        assert!(config(&[("webhook_url", "https://hooks.test/x")]).is_err());
        assert!(config(&[
            ("webhook_url", "https://hooks.test/x"),
            ("webhook_secret", "short")
        ])
        .is_err());
        assert!(config(&[
            ("webhook_url", "ftp://hooks.test/x"),
            ("webhook_secret", "a-long-enough-secret")
        ])
        .is_err());
        let c = config(&[
            ("webhook_url", "https://hooks.test/x"),
            ("webhook_secret", "a-long-enough-secret"),
        ])
        .unwrap();
        assert_eq!(c.webhook.unwrap().url, "https://hooks.test/x");
    }
}
