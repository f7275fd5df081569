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

/// The token configuration of unit tests (docs/API.md's defaults: 15-minute tokens).
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

/// A component's Spin variables in a property test: each name with a value
/// or unset. The first name is `jwt_secret`.
pub type ConfigVariables = Vec<(&'static str, Option<String>)>;

/// A value an operator may set: hostile text, a number (huge, negative,
/// padded), one of the component's `plausible` settings, or an http(s)
/// prefix before junk.
pub fn config_value(plausible: &[&str]) -> impl proptest::strategy::Strategy<Value = String> {
    use proptest::prelude::*;
    let mut settings: Vec<String> = plausible.iter().map(|s| s.to_string()).collect();
    settings.extend(["s".repeat(32), "0".into(), "1".into()]);
    prop_oneof![
        3 => hostile_text(),
        2 => "[ \\t]{0,2}-?[0-9]{1,22}[ \\t]{0,2}",
        2 => prop::sample::select(settings),
        1 => (prop::sample::select(vec!["http://", "https://", " https://"]), hostile_text())
            .prop_map(|(scheme, rest)| format!("{scheme}{rest}")),
    ]
}

/// Values for `names` (the first is `jwt_secret`): each unset or any
/// [`config_value`] (the JWT secret often valid), or every default with one
/// to three variables changed to anything, so that most checks pass and the
/// changed ones are tried.
pub fn config_variables(
    names: &'static [&'static str],
    plausible: &'static [&'static str],
) -> impl proptest::strategy::Strategy<Value = ConfigVariables> {
    use proptest::prelude::*;
    let valid_secret = || "s".repeat(32);
    let values = prop::collection::vec(
        prop::option::weighted(0.7, config_value(plausible)),
        names.len(),
    );
    let secret = prop::option::weighted(0.8, Just(valid_secret()));
    let broad = (values, secret).prop_map(move |(values, secret)| {
        let mut vars: ConfigVariables = names.iter().copied().zip(values).collect();
        if secret.is_some() {
            vars[0].1 = secret;
        }
        vars
    });
    let change = (
        0..names.len(),
        prop::option::weighted(0.9, prop_oneof![config_value(plausible), "[0-9]{1,9}"]),
    );
    let varied = prop::collection::vec(change, 1..4).prop_map(move |changes| {
        let mut vars: ConfigVariables = names.iter().map(|&name| (name, None)).collect();
        vars[0].1 = Some(valid_secret());
        for (at, value) in changes {
            vars[at].1 = value;
        }
        vars
    });
    prop_oneof![broad, varied]
}

/// `vars` as the variable lookup [`crate::config::Vars::new`] takes.
pub fn config_lookup(vars: &ConfigVariables) -> impl Fn(&str) -> Option<String> + '_ {
    move |name| {
        vars.iter()
            .find(|(n, _)| *n == name)
            .and_then(|(_, v)| v.clone())
    }
}

/// True for the error every bad Spin variable gives: 500, logged as
/// `configuration: …`.
pub fn is_configuration_error(e: &crate::ApiError) -> bool {
    matches!(e, crate::ApiError::Internal(m) if m.starts_with("configuration: "))
}
