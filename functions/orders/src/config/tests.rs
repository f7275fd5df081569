//! `Config::from_vars`: the cache lifetime's default and refused values.

use super::*;

#[test]
fn cache_lifetime_defaults_to_five_minutes_and_must_be_a_number() {
    let get = |n: &str| (n == "jwt_secret").then(|| "s".repeat(32));
    assert_eq!(
        Config::from_vars(&Vars::new(&get)).unwrap().cache_ttl_ms,
        300_000
    );
    let bad = |n: &str| match n {
        "jwt_secret" => Some("s".repeat(32)),
        "cache_ttl_secs" => Some("soon".into()),
        _ => None,
    };
    assert_eq!(
        Config::from_vars(&Vars::new(&bad)).unwrap_err().status(),
        500
    );
}

#[test]
fn a_negative_or_overflowing_cache_lifetime_is_a_configuration_error() {
    for value in ["-1", "9223372036854775807"] {
        let get = |n: &str| match n {
            "jwt_secret" => Some("s".repeat(32)),
            "cache_ttl_secs" => Some(value.to_string()),
            _ => None,
        };
        assert_eq!(
            Config::from_vars(&Vars::new(&get)).unwrap_err().status(),
            500,
            "{value}"
        );
    }
}
