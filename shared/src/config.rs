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

    /// `name` as a positive number of seconds, `default` when unset.
    pub fn positive_secs(&self, name: &str, default: i64) -> Result<i64, ApiError> {
        let secs: i64 = self.number(name, default)?;
        if secs <= 0 {
            return Err(ApiError::Internal(format!(
                "configuration: {name} must be positive"
            )));
        }
        Ok(secs)
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
mod tests {
    use super::*;

    fn lookup(name: &str) -> Option<String> {
        match name {
            "jwt_secret" => Some("s".repeat(32)),
            "n" => Some(" 42 ".into()),
            "bad" => Some("forty".into()),
            "empty" => Some(String::new()),
            "zero" => Some("0".into()),
            _ => None,
        }
    }

    #[test]
    fn numbers_parse_and_fall_back_to_their_default() {
        let vars = Vars::new(&lookup);
        assert_eq!(vars.number("n", 1u32).unwrap(), 42);
        assert_eq!(vars.number("missing", 7u32).unwrap(), 7);
        assert_eq!(vars.number("empty", 7u32).unwrap(), 7);
        assert_eq!(vars.number("bad", 7u32).unwrap_err().status(), 500);
        assert_eq!(vars.positive_secs("zero", 5).unwrap_err().status(), 500);
    }

    #[test]
    fn flags_are_true_or_false_and_fall_back_to_their_default() {
        let flags = |name: &str| match name {
            "on" => Some("true".into()),
            "off" => Some(" false ".into()),
            "yes" => Some("yes".into()),
            _ => None,
        };
        let vars = Vars::new(&flags);
        assert!(vars.flag("on", false).unwrap());
        assert!(!vars.flag("off", true).unwrap());
        assert!(vars.flag("missing", true).unwrap());
        assert_eq!(vars.flag("yes", true).unwrap_err().status(), 500);
    }

    #[test]
    fn token_config_takes_api_md_defaults() {
        let tokens = Vars::new(&lookup).tokens().unwrap();
        assert_eq!(tokens.issuer, "spin-api");
        assert_eq!(tokens.audience, "spin-api-clients");
        assert_eq!(tokens.access_ttl_secs, 900);
    }

    #[test]
    fn missing_secret_is_a_configuration_error() {
        let none = |_: &str| None;
        assert_eq!(Vars::new(&none).tokens().unwrap_err().status(), 500);
    }
}
