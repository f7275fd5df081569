//! The orders component's configuration, from Spin variables (defaults here,
//! in one place; `spin.toml` documents the same values).

use shared::auth::TokenConfig;
use shared::config::Vars;
use shared::ApiError;

/// Configuration from Spin variables.
#[derive(Debug, Clone)]
pub struct Config {
    /// Verifies bearer tokens.
    pub tokens: TokenConfig,
    /// Product cache TTL (`cache_ttl_secs`), jittered by the cache.
    pub cache_ttl_ms: i64,
    /// Where committed order events are announced: `redis_url` (none when
    /// empty, the default: events then wait for `POST /api/v1/events/deliver`).
    pub redis_url: Option<String>,
    /// The Redis channel of the announcements (`events_channel`).
    pub events_channel: String,
}

/// The default `events_channel`, also the events component's trigger channel.
pub const DEFAULT_EVENTS_CHANNEL: &str = "order-events";

impl Config {
    /// Reads and checks every variable; a bad value is a configuration error (500, logged).
    pub fn from_vars(vars: &Vars) -> Result<Self, ApiError> {
        let cache_ttl_secs = vars.secs("cache_ttl_secs", 300)?;
        let redis_url = vars.optional("redis_url").filter(|u| !u.trim().is_empty());
        if let Some(url) = &redis_url {
            if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
                return Err(ApiError::Internal(
                    "configuration: redis_url must be a redis:// or rediss:// URL".into(),
                ));
            }
        }
        Ok(Self {
            tokens: vars.tokens()?,
            cache_ttl_ms: cache_ttl_secs * 1000,
            redis_url,
            events_channel: vars
                .optional("events_channel")
                .filter(|c| !c.is_empty())
                .unwrap_or_else(|| DEFAULT_EVENTS_CHANNEL.to_string()),
        })
    }
}

#[cfg(test)]
mod tests;
