//! The fixtures every `auth` test module shares, and the tests that cross
//! submodules: whatever configuration [`TokenConfig::new`] accepts must
//! issue, verify and revoke at any time without overflowing.

use super::*;
use crate::error::ApiError;
use crate::http::{Method, Request};
use crate::kv::MemoryKv;
use crate::testing::hostile_text;
use proptest::prelude::*;

/// The fixed "now" of these tests, epoch milliseconds.
pub(super) const NOW: i64 = 1_800_000_000_000;
/// The end of a session that outlives every token in a test.
pub(super) const OPEN: i64 = i64::MAX;

/// The configuration of these tests; its secret is `"s"` 32 times.
pub(super) fn config() -> TokenConfig {
    TokenConfig::new(&"s".repeat(32), "spin-api", "spin-api-clients", 900).unwrap()
}

/// A request carrying `Authorization: Bearer <token>`.
pub(super) fn request_with(token: &str) -> Request {
    Request::new(Method::Get, "/").with_header("authorization", &format!("Bearer {token}"))
}

/// Any `i64`, often at or near its ends, where arithmetic overflows.
pub(super) fn extreme_i64() -> impl Strategy<Value = i64> {
    prop_oneof![
        any::<i64>(),
        Just(NOW / 1000),
        Just(NOW),
        i64::MAX - 100..=i64::MAX,
        i64::MIN..=i64::MIN + 100,
    ]
}

#[test]
fn a_lifetime_too_long_for_milliseconds_is_a_configuration_error() {
    // Found by `any_accepted_configuration_issues_verifies_and_revokes_at_any_time`:
    // a lifetime near `i64::MAX` was accepted, and ending a session then
    // overflowed computing how long its mark lives.
    let secret = "s".repeat(32);
    let err = TokenConfig::new(&secret, "i", "a", 9_223_372_036_854_775_707).unwrap_err();
    assert_eq!(err.status(), 500);
    let longest = crate::config::MAX_DURATION_SECS;
    let config = TokenConfig::new(&secret, "i", "a", longest).unwrap();
    assert!(end_session(&MemoryKv::new(), &config, "s1", NOW).is_ok());
}

/// The last millisecond of year 9999, the latest time the API shows.
const LAST_MS: i64 = 253_402_300_799_999;

proptest! {
    #[test]
    fn any_accepted_configuration_issues_verifies_and_revokes_at_any_time(
        secret in prop_oneof![hostile_text(), "[a-z]{32,40}"],
        issuer in hostile_text(),
        ttl in extreme_i64(),
        now_ms in 0..=LAST_MS,
        session_ends_at_ms in extreme_i64(),
    ) {
        let Ok(config) = TokenConfig::new(&secret, &issuer, "aud", ttl) else {
            return Ok(());
        };
        match config.issue("u1", Role::User, "s1", now_ms, session_ends_at_ms) {
            Ok((token, claims)) => {
                prop_assert!(claims.iat < claims.exp);
                prop_assert_eq!(config.verify(&token, now_ms), Ok(claims));
            }
            Err(e) => prop_assert_eq!(e, ApiError::InvalidToken),
        }
        let kv = MemoryKv::new();
        prop_assert!(end_session(&kv, &config, "s1", now_ms).is_ok());
        prop_assert!(void_session_tokens(&kv, &config, "s1", now_ms).is_ok());
    }
}
