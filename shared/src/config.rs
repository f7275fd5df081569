//! Reading a component's configuration from Spin variables.
//!
//! Each component's `config.rs` builds its `Config` with
//! `Config::from_vars(&Vars)`, so the parsing and every default live in plain
//! Rust that unit tests reach natively; on Spin the lookup is
//! [`crate::spin::optional_variable`], in tests a closure over a map.
//! `spin.toml` declares the same defaults for documentation; a variable left
//! empty takes the default written here.

use std::str::FromStr;

use crate::auth::TokenConfig;
use crate::error::ApiError;

/// The longest duration a variable may set, in seconds: 100 years.
/// Durations become milliseconds added to epoch-millisecond times
/// (`now_ms + secs * 1000`); a longer one could overflow `i64`, which panics
/// in a debug build and wraps negative in a release build, where a lock or an
/// expiry would then be over before it began.
pub const MAX_DURATION_SECS: i64 = 3_155_760_000;

/// Where the records live (see [`Vars::store`]).
#[derive(Clone, PartialEq, Eq)]
pub enum Store {
    /// Spin's SQLite database `default`: a file under `.spin/` with `spin
    /// up`, the managed database on Fermyon's cloud, whatever runtime
    /// config names elsewhere.
    Sqlite,
    /// A MySQL server (the scale-out shape).
    MySql {
        /// `db_url`.
        url: String,
        /// `db_read_url`: lag-tolerant reads go there when set.
        read_url: Option<String>,
    },
}

// Never prints a URL: it carries the database password.
impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Store::Sqlite => f.write_str("Sqlite"),
            Store::MySql { read_url, .. } => f
                .debug_struct("MySql")
                .field("replica", &read_url.is_some())
                .finish(),
        }
    }
}

/// A variable lookup: the value of a Spin variable, `None` when unset or empty.
pub struct Vars<'a> {
    get: &'a dyn Fn(&str) -> Option<String>,
}

impl<'a> Vars<'a> {
    /// Variables answered by `get`.
    pub fn new(get: &'a dyn Fn(&str) -> Option<String>) -> Self {
        Self { get }
    }

    /// The value of `name`, or a configuration error (500, logged) when unset.
    pub fn required(&self, name: &str) -> Result<String, ApiError> {
        self.optional(name)
            .ok_or_else(|| ApiError::Internal(format!("configuration: variable {name} is not set")))
    }

    /// The value of `name`, `None` when unset or empty.
    pub fn optional(&self, name: &str) -> Option<String> {
        (self.get)(name).filter(|v| !v.trim().is_empty())
    }

    /// `name` parsed as a number, `default` when unset; a value that does not
    /// parse is a configuration error rather than a silent default.
    pub fn number<T: FromStr>(&self, name: &str, default: T) -> Result<T, ApiError> {
        match self.optional(name) {
            None => Ok(default),
            Some(v) => v.trim().parse().map_err(|_| {
                ApiError::Internal(format!("configuration: variable {name} is not a number"))
            }),
        }
    }

    /// `name` as `true` or `false`, `default` when unset; anything else is a
    /// configuration error.
    pub fn flag(&self, name: &str, default: bool) -> Result<bool, ApiError> {
        match self.optional(name).as_deref().map(str::trim) {
            None => Ok(default),
            Some("true") => Ok(true),
            Some("false") => Ok(false),
            Some(_) => Err(ApiError::Internal(format!(
                "configuration: variable {name} must be true or false"
            ))),
        }
    }

    /// `name` as a positive number of seconds, at most
    /// [`MAX_DURATION_SECS`], `default` when unset.
    pub fn positive_secs(&self, name: &str, default: i64) -> Result<i64, ApiError> {
        let secs = self.secs(name, default)?;
        if secs == 0 {
            return Err(ApiError::Internal(format!(
                "configuration: {name} must be positive"
            )));
        }
        Ok(secs)
    }

    /// `name` as a number of seconds from 0 (e.g. a cache TTL of 0: no
    /// caching) to [`MAX_DURATION_SECS`], `default` when unset.
    pub fn secs(&self, name: &str, default: i64) -> Result<i64, ApiError> {
        let secs: i64 = self.number(name, default)?;
        if secs < 0 {
            return Err(ApiError::Internal(format!(
                "configuration: {name} must not be negative"
            )));
        }
        // Bounded so that `secs * 1000` added to any time cannot overflow.
        if secs > MAX_DURATION_SECS {
            return Err(ApiError::Internal(format!(
                "configuration: {name} must be at most {MAX_DURATION_SECS} seconds"
            )));
        }
        Ok(secs)
    }

    /// Where the records live, from `db_url`: empty or unset (the default),
    /// Spin's embedded SQLite database `default`; a `mysql://` URL, that
    /// MySQL server, with `db_read_url` as its read replica when set.
    pub fn store(&self) -> Result<Store, ApiError> {
        match self.optional("db_url") {
            None => Ok(Store::Sqlite),
            Some(url) if url.starts_with("mysql://") => Ok(Store::MySql {
                url,
                read_url: self.optional("db_read_url"),
            }),
            // The value is a secret: only its scheme is told.
            Some(url) => Err(ApiError::Internal(format!(
                "configuration: db_url must be empty (Spin's SQLite) or a mysql:// URL, not a {:?} URL",
                url.split_once(':').map_or("schemeless", |(scheme, _)| scheme)
            ))),
        }
    }

    /// The access-token configuration every component reads from the same
    /// variables: `jwt_secret`, `jwt_issuer`, `jwt_audience`, `access_token_ttl_secs`.
    pub fn tokens(&self) -> Result<TokenConfig, ApiError> {
        TokenConfig::new(
            &self.required("jwt_secret")?,
            &self
                .optional("jwt_issuer")
                .unwrap_or_else(|| "spin-api".into()),
            &self
                .optional("jwt_audience")
                .unwrap_or_else(|| "spin-api-clients".into()),
            self.number("access_token_ttl_secs", 900)?,
        )
    }
}

#[cfg(test)]
mod tests;
