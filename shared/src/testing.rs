//! Fixtures for the components' unit tests (feature `testing`): a fixed
//! clock, one token configuration, requests with a bearer token, and a SQL
//! stand-in for the health check.

use crate::auth::{Role, TokenConfig};
use crate::db::{DbError, Row, Sql, Value};
use crate::http::{Method, Request};

/// The fixed "now" of unit tests, epoch milliseconds (2027-01-15).
pub const NOW: i64 = 1_800_000_000_000;

/// The JWT secret of unit tests.
pub const SECRET: &str = "unit-test-secret-of-32-bytes-or-more";

/// The token configuration of unit tests (API.md's defaults: 15-minute tokens).
pub fn token_config() -> TokenConfig {
    match TokenConfig::new(SECRET, "spin-api", "spin-api-clients", 900) {
        Ok(config) => config,
        Err(e) => panic!("test token configuration: {e}"),
    }
}

/// A signed access token for `user_id` in session `sid`, issued at `now_ms`
/// in a session that outlives it.
pub fn token(user_id: &str, role: Role, sid: &str, now_ms: i64) -> String {
    match token_config().issue(user_id, role, sid, now_ms, i64::MAX) {
        Ok((token, _)) => token,
        Err(e) => panic!("issuing a test token: {e}"),
    }
}

/// A request carrying `Authorization: Bearer <token>`.
pub fn authed(method: Method, path: &str, token: &str) -> Request {
    Request::new(method, path).with_header("authorization", &format!("Bearer {token}"))
}

/// A database that answers only the health check's `SELECT 1`, or nothing
/// at all when down — for handlers that need nothing else of the SQL port.
#[derive(Debug, Default)]
pub struct PingOnlySql {
    /// When true, every call fails as an unreachable server would.
    pub down: bool,
}

impl Sql for PingOnlySql {
    fn execute(&self, sql: &str, _: &[Value]) -> Result<(), DbError> {
        Err(DbError::Query(format!("PingOnlySql cannot run {sql:?}")))
    }

    fn query(&self, sql: &str, _: &[Value]) -> Result<Vec<Row>, DbError> {
        if self.down {
            return Err(DbError::Unavailable("PingOnlySql is down".into()));
        }
        match sql {
            "SELECT 1" => Ok(vec![Row(vec![Value::Int(1)])]),
            other => Err(DbError::Query(format!("PingOnlySql cannot run {other:?}"))),
        }
    }
}

/// Text a hostile client sends: any Unicode, and often the characters that
/// break code written for ASCII (multi-byte, combining marks, right-to-left
/// overrides and marks, zero-width characters, NUL and other controls,
/// surrogate-adjacent and private-use code points) mixed with ASCII
/// punctuation that parsers split on. For property tests (proptest).
pub fn hostile_text() -> impl proptest::strategy::Strategy<Value = String> {
    use proptest::prelude::*;
    let tricky = prop::sample::select(vec![
        '\u{0}',
        '\u{7}',
        '\r',
        '\n',
        '\t',
        '\u{7f}',
        '\u{85}',
        '\u{a0}',
        'é',
        'ß',
        'İ',
        '\u{301}',
        '\u{308}',
        '\u{200b}',
        '\u{200d}',
        '\u{202e}',
        '\u{2066}',
        '\u{feff}',
        '\u{fffd}',
        '\u{d7ff}',
        '\u{e000}',
        '\u{10ffff}',
        'ע',
        'م',
        '李',
        '🦀',
        '👩',
        '/',
        '\\',
        '.',
        '"',
        '\'',
        ';',
        ',',
        '=',
        '%',
        '@',
        ':',
        '?',
        '#',
        '&',
        ' ',
        '*',
        '-',
    ]);
    let piece = prop_oneof![
        3 => any::<char>().prop_map(String::from),
        5 => tricky.prop_map(String::from),
        2 => "[a-zA-Z0-9]{1,8}",
    ];
    prop::collection::vec(piece, 0..40).prop_map(|pieces| pieces.concat())
}
