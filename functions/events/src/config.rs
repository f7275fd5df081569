//! The events component's configuration, from Spin variables (defaults here,
//! in one place; `spin.toml` documents the same values).

use crate::model::SigningKey;
use shared::auth::TokenConfig;
use shared::config::Vars;
use shared::ApiError;

/// Where events go; absent while `webhook_url` is empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookConfig {
    /// `webhook_url`: the receiver, `http://` or `https://`.
    pub url: String,
    /// `webhook_secret`: the signing keys (several during a rotation).
    pub keys: Vec<SigningKey>,
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

impl Config {
    /// Reads and checks every variable; a bad value is a configuration error (500, logged).
    pub fn from_vars(vars: &Vars) -> Result<Self, ApiError> {
        let config_error = |m: &str| ApiError::Internal(format!("configuration: {m}"));
        let url = vars
            .optional("webhook_url")
            .map(|u| u.trim().to_string())
            .filter(|u| !u.is_empty());
        let webhook = match url {
            None => None,
            Some(url) => {
                // A scheme and a host at least: `https://` alone, or a URL
                // with spaces inside, would fail every delivery, not the start.
                let host = url
                    .strip_prefix("https://")
                    .or_else(|| url.strip_prefix("http://"))
                    .map(|rest| rest.split(['/', '?', '#']).next().unwrap_or_default());
                if host.is_none_or(str::is_empty) || url.contains(char::is_whitespace) {
                    return Err(config_error(
                        "webhook_url must be an http(s):// URL with a host",
                    ));
                }
                let secret = vars.optional("webhook_secret").unwrap_or_default();
                let keys = SigningKey::parse_all(&secret).ok_or_else(|| {
                    config_error(
                        "webhook_secret must be a base64 key of at least 16 bytes \
                         (whsec_… as Standard Webhooks writes them; several \
                         space-separated while rotating) when webhook_url is set",
                    )
                })?;
                Some(WebhookConfig { url, keys })
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
mod tests;
