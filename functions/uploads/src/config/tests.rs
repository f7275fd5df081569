//! Spin variables into the uploads component's configuration: defaults,
//! refusals of bad values, and property tests over operator input.

use super::*;
use proptest::prelude::*;
use shared::testing::{config_lookup, config_value, is_configuration_error, ConfigVariables};

fn secret_and(name: &'static str, value: &'static str) -> impl Fn(&str) -> Option<String> {
    move |n| match n {
        "jwt_secret" => Some("s".repeat(32)),
        n if n == name => Some(value.to_string()),
        _ => None,
    }
}

#[test]
fn defaults_are_api_md_values() {
    let get = secret_and("none", "");
    let config = Config::from_vars(&Vars::new(&get)).unwrap();
    assert_eq!(config.max_upload_bytes, 5 * 1024 * 1024);
    assert_eq!(config.quota_bytes, 100 * 1024 * 1024);
    assert_eq!(config.cache_ttl_secs, 300);
    assert_eq!(config.storage, Storage::Database);
}

#[test]
fn database_storage_keeps_its_former_name_mysql() {
    for name in ["database", "mysql"] {
        let get = move |n: &str| match n {
            "jwt_secret" => Some("s".repeat(32)),
            "upload_storage" => Some(name.to_string()),
            _ => None,
        };
        let config = Config::from_vars(&Vars::new(&get)).unwrap();
        assert_eq!(config.storage, Storage::Database, "{name}");
    }
}

fn s3_vars(name: &'static str, value: &'static str) -> impl Fn(&str) -> Option<String> {
    move |n| {
        if n == name {
            return Some(value.to_string());
        }
        Some(
            match n {
                "jwt_secret" => "s".repeat(32),
                "upload_storage" => "s3".into(),
                "s3_endpoint" => "http://127.0.0.1:9000".into(),
                "s3_region" => "us-east-1".into(),
                "s3_bucket" => "uploads".into(),
                "s3_access_key" => "access".into(),
                "s3_secret_key" => "very-secret-key".into(),
                _ => return None,
            }
            .to_string(),
        )
    }
}

#[test]
fn s3_storage_reads_its_variables_and_never_shows_the_secret() {
    let get = s3_vars("cdn_base_url", "https://cdn.example.com/");
    let config = Config::from_vars(&Vars::new(&get)).unwrap();
    let Storage::S3(s3) = &config.storage else {
        panic!("s3 storage")
    };
    assert_eq!(s3.bucket, "uploads");
    assert_eq!(s3.cdn_base_url.as_deref(), Some("https://cdn.example.com"));
    assert!(!format!("{config:?}").contains("very-secret-key"));
}

#[test]
fn a_broken_storage_setting_is_a_configuration_error() {
    for (name, value) in [
        ("upload_storage", "disk"),
        ("s3_endpoint", "127.0.0.1:9000"),
        ("s3_endpoint", "https://s3.example.com/bucket"),
        ("s3_bucket", ""),
        ("cdn_base_url", "cdn.example.com"),
        ("presign_ttl_secs", "0"),
        // Found by `an_accepted_s3_storage_is_an_http_origin_and_complete`:
        // a presigned URL of more than 7 days is refused by S3.
        ("presign_ttl_secs", "605000"),
    ] {
        let get = s3_vars(name, value);
        let err = Config::from_vars(&Vars::new(&get)).unwrap_err();
        assert_eq!(err.status(), 500, "{name}={value}");
    }
}

#[test]
fn presigned_urls_may_live_up_to_seven_days() {
    let get = s3_vars("presign_ttl_secs", "604800");
    let config = Config::from_vars(&Vars::new(&get)).unwrap();
    let Storage::S3(s3) = &config.storage else {
        panic!("s3 storage")
    };
    assert_eq!(s3.url_ttl_secs, 604_800);
}

#[test]
fn a_broken_size_limit_is_reported_but_still_bounds_the_body() {
    let get = secret_and("upload_max_bytes", "lots");
    let vars = Vars::new(&get);
    assert_eq!(Config::from_vars(&vars).unwrap_err().status(), 500);
    assert_eq!(
        Config::body_limit_of(&vars),
        DEFAULT_MAX_UPLOAD_BYTES + MULTIPART_ALLOWANCE
    );
}

/// Every variable the component reads.
const NAMES: [&str; 15] = [
    "jwt_secret",
    "jwt_issuer",
    "jwt_audience",
    "access_token_ttl_secs",
    "upload_max_bytes",
    "cache_ttl_secs",
    "upload_quota_bytes",
    "upload_storage",
    "s3_endpoint",
    "s3_region",
    "s3_bucket",
    "s3_access_key",
    "s3_secret_key",
    "cdn_base_url",
    "presign_ttl_secs",
];

/// Settings this component's variables take, besides numbers and secrets.
const PLAUSIBLE: &[&str] = &[
    "s3",
    " s3 ",
    "mysql",
    "database",
    "http://127.0.0.1:9000",
    "https://cdn.example.com/",
    "us-east-1",
];

fn any_value() -> impl Strategy<Value = String> {
    config_value(PLAUSIBLE)
}

/// Values for [`NAMES`], each unset or any value; storage is often s3
/// and the JWT secret often valid, so the later checks are reached.
fn any_variables() -> impl Strategy<Value = Variables> {
    let values = prop::collection::vec(prop::option::weighted(0.7, any_value()), NAMES.len());
    let storage = prop::option::of(prop::sample::select(vec!["s3", "database", "mysql"]));
    let secret = prop::option::weighted(0.8, Just("s".repeat(32)));
    (values, storage, secret).prop_map(|(values, storage, secret)| {
        let mut vars: Variables = NAMES.iter().copied().zip(values).collect();
        if let Some(storage) = storage {
            vars[7].1 = Some(storage.to_string());
        }
        if secret.is_some() {
            vars[0].1 = secret;
        }
        vars
    })
}

/// A working S3 configuration with one to three variables unset or
/// changed to any value: most checks pass, the changed ones are tried.
fn varied_s3_variables() -> impl Strategy<Value = Variables> {
    let change = (
        0..NAMES.len(),
        prop::option::weighted(0.9, prop_oneof![any_value(), "[0-9]{1,9}"]),
    );
    prop::collection::vec(change, 1..4).prop_map(|changes| {
        let mut vars: Variables = NAMES
            .iter()
            .map(|&name| {
                let value = match name {
                    "jwt_secret" => Some("s".repeat(32)),
                    "upload_storage" => Some("s3".into()),
                    "s3_endpoint" => Some("https://s3.example.com".into()),
                    n if n.starts_with("s3_") => Some("value".into()),
                    _ => None,
                };
                (name, value)
            })
            .collect();
        for (at, value) in changes {
            vars[at].1 = value;
        }
        vars
    })
}

type Variables = ConfigVariables;

fn is_http_origin(endpoint: &str) -> bool {
    endpoint
        .strip_prefix("https://")
        .or_else(|| endpoint.strip_prefix("http://"))
        .is_some_and(|origin| !origin.is_empty() && !origin.contains('/'))
}

proptest! {
    #[test]
    fn any_variables_give_a_config_or_a_configuration_error(
        vars in prop_oneof![any_variables(), varied_s3_variables()],
    ) {
        let get = config_lookup(&vars);
        if let Err(e) = Config::from_vars(&Vars::new(&get)) {
            prop_assert!(is_configuration_error(&e), "{:?}", e);
        }
    }

    #[test]
    fn an_accepted_s3_storage_is_an_http_origin_and_complete(
        vars in prop_oneof![any_variables(), varied_s3_variables()],
    ) {
        let get = config_lookup(&vars);
        if let Ok(Config { storage: Storage::S3(s3), .. }) = Config::from_vars(&Vars::new(&get)) {
            prop_assert!(is_http_origin(&s3.endpoint), "{:?}", s3.endpoint);
            for value in [&s3.endpoint, &s3.region, &s3.bucket, &s3.access_key, &s3.secret_key] {
                prop_assert!(!value.is_empty() && value.trim() == value.as_str(), "{:?}", value);
            }
            if let Some(cdn) = &s3.cdn_base_url {
                prop_assert!(cdn.starts_with("https://") || cdn.starts_with("http://"), "{:?}", cdn);
                prop_assert!(!cdn.ends_with('/'), "{:?}", cdn);
            }
            // SigV4 caps `X-Amz-Expires` at 7 days: S3 refuses longer-lived URLs.
            prop_assert!(
                (1..=MAX_PRESIGN_TTL_SECS.unsigned_abs()).contains(&s3.url_ttl_secs),
                "{}", s3.url_ttl_secs
            );
        }
    }

    #[test]
    fn the_body_limit_is_read_whatever_the_variables(vars in any_variables()) {
        let get = config_lookup(&vars);
        let vars = Vars::new(&get);
        let limit = Config::body_limit_of(&vars);
        prop_assert!(limit >= MULTIPART_ALLOWANCE);
        if let Ok(config) = Config::from_vars(&vars) {
            prop_assert_eq!(limit, Config::body_limit(config.max_upload_bytes));
        }
    }

    #[test]
    fn the_s3_secret_never_shows_in_the_debug_output(
        vars in any_variables(),
        secret in "[A-Z]{24}",
    ) {
        let mut vars = vars;
        vars[7].1 = Some("s3".into());
        vars[8].1 = Some("https://s3.example.com".into());
        vars[12].1 = Some(secret.clone());
        let get = config_lookup(&vars);
        if let Ok(config) = Config::from_vars(&Vars::new(&get)) {
            let debug = format!("{config:?}");
            prop_assert!(!debug.contains(&secret), "{}", debug);
        }
    }
}
