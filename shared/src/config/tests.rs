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

#[test]
fn a_duration_too_long_for_milliseconds_is_a_configuration_error() {
    // Found by `durations_of_any_text_are_positive_and_fit_in_milliseconds_after_any_time`:
    // 9223118634553976 s was accepted, and its milliseconds overflow `i64`.
    let get = |_: &str| Some("9223118634553976".to_string());
    assert_eq!(
        Vars::new(&get).positive_secs("x", 5).unwrap_err().status(),
        500
    );
    let get = |_: &str| Some(MAX_DURATION_SECS.to_string());
    assert_eq!(
        Vars::new(&get).positive_secs("x", 5).unwrap(),
        MAX_DURATION_SECS
    );
}

use crate::testing::hostile_text;
use proptest::prelude::*;

/// The last millisecond of year 9999, the latest time the API shows.
const LAST_MS: i64 = 253_402_300_799_999;

/// What an operator may type into a numeric variable: numbers of every
/// size and sign (with stray spaces), and anything else.
fn numeric_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        (1i64..10_000_000).prop_map(|n| format!(" {n} ")),
        Just(i64::MAX.to_string()),
        Just((i64::MAX / 1000 + 1).to_string()),
        "[+-]?[0-9]{1,25}",
        hostile_text(),
    ]
}

/// Variables that all answer `value`.
fn all(value: &str) -> impl Fn(&str) -> Option<String> + '_ {
    move |_| Some(value.to_string())
}

proptest! {
    #[test]
    fn numbers_of_any_text_are_the_number_written_or_a_configuration_error(text in numeric_text()) {
        let get = all(&text);
        let vars = Vars::new(&get);
        let blank = text.trim().is_empty();
        match vars.number::<u32>("x", 7) {
            Ok(n) if blank => prop_assert_eq!(n, 7),
            Ok(n) => prop_assert_eq!(Ok(n), text.trim().parse::<u32>()),
            Err(e) => {
                prop_assert!(!blank && text.trim().parse::<u32>().is_err());
                prop_assert_eq!(e.status(), 500);
            }
        }
        match vars.number::<i64>("x", -1) {
            Ok(n) if blank => prop_assert_eq!(n, -1),
            Ok(n) => prop_assert_eq!(Ok(n), text.trim().parse::<i64>()),
            Err(e) => prop_assert!(!blank && e.status() == 500),
        }
    }

    #[test]
    fn flags_of_any_text_are_only_true_or_false(
        text in prop_oneof![
            Just(" true".to_string()),
            Just("false ".to_string()),
            Just("TRUE".to_string()),
            hostile_text(),
        ]
    ) {
        let get = all(&text);
        match Vars::new(&get).flag("x", true) {
            Ok(flag) => prop_assert!(
                (flag && matches!(text.trim(), "true" | ""))
                    || (!flag && text.trim() == "false"),
                "{text:?} read as {flag}"
            ),
            Err(e) => prop_assert_eq!(e.status(), 500),
        }
    }

    #[test]
    fn optional_values_are_never_blank(text in hostile_text()) {
        let get = all(&text);
        let vars = Vars::new(&get);
        match vars.optional("x") {
            Some(v) => prop_assert!(v == text && !v.trim().is_empty()),
            None => prop_assert!(text.trim().is_empty()),
        }
        prop_assert_eq!(vars.required("x").is_ok(), !text.trim().is_empty());
    }

    #[test]
    fn durations_of_any_text_are_positive_and_fit_in_milliseconds_after_any_time(
        text in numeric_text()
    ) {
        let get = all(&text);
        match Vars::new(&get).positive_secs("x", 5) {
            Ok(secs) => {
                prop_assert!(secs > 0);
                // Every duration becomes milliseconds added to a time.
                prop_assert!(
                    secs.checked_mul(1000).and_then(|ms| ms.checked_add(LAST_MS)).is_some(),
                    "{secs} s overflows"
                );
            }
            Err(e) => prop_assert_eq!(e.status(), 500),
        }
    }

    #[test]
    fn token_variables_of_any_text_configure_tokens_or_fail_as_configuration(
        secret in prop_oneof![hostile_text(), "[a-z]{32,40}"],
        issuer in hostile_text(),
        ttl in numeric_text(),
    ) {
        let get = |name: &str| match name {
            "jwt_secret" => Some(secret.clone()),
            "jwt_issuer" => Some(issuer.clone()),
            "access_token_ttl_secs" => Some(ttl.clone()),
            _ => None,
        };
        match Vars::new(&get).tokens() {
            Ok(tokens) => {
                prop_assert!(tokens.access_ttl_secs > 0);
                prop_assert_eq!(tokens.audience.as_str(), "spin-api-clients");
                if !issuer.trim().is_empty() {
                    prop_assert_eq!(&tokens.issuer, &issuer);
                }
            }
            Err(e) => prop_assert_eq!(e.status(), 500),
        }
    }
}

fn store_of(vars: &[(&str, &str)]) -> Result<Store, ApiError> {
    let vars: Vec<(String, String)> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let get = move |name: &str| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    Vars::new(&get).store()
}

#[test]
fn no_db_url_means_spin_s_embedded_sqlite() {
    assert_eq!(store_of(&[]), Ok(Store::Sqlite));
    assert_eq!(store_of(&[("db_url", "  ")]), Ok(Store::Sqlite));
    // A replica has nothing to replicate from without MySQL.
    assert_eq!(
        store_of(&[("db_read_url", "mysql://r@replica/db")]),
        Ok(Store::Sqlite)
    );
}

#[test]
fn a_mysql_db_url_means_mysql_with_its_replica() {
    assert_eq!(
        store_of(&[
            ("db_url", "mysql://u:p@db:3306/api"),
            ("db_read_url", "mysql://u:p@replica:3306/api")
        ]),
        Ok(Store::MySql {
            url: "mysql://u:p@db:3306/api".into(),
            read_url: Some("mysql://u:p@replica:3306/api".into()),
        })
    );
}

#[test]
fn another_scheme_is_a_configuration_error_that_does_not_echo_the_url() {
    let e = store_of(&[("db_url", "postgres://u:secret@db/api")]).unwrap_err();
    assert_eq!(e.status(), 500);
    assert!(!format!("{e:?}").contains("secret"));
}

#[test]
fn a_store_never_prints_its_password() {
    let store = store_of(&[("db_url", "mysql://u:secret@db/api")]).unwrap();
    assert!(!format!("{store:?}").contains("secret"));
}
