//! The uploads component's configuration, from Spin variables (defaults
//! here, in one place; `spin.toml` documents the same values).

use shared::auth::TokenConfig;
use shared::config::Vars;
use shared::ApiError;

/// Default `upload_max_bytes`: 5 MiB.
pub const DEFAULT_MAX_UPLOAD_BYTES: usize = 5 * 1024 * 1024;

/// Extra body bytes allowed over `upload_max_bytes` for multipart framing
/// (boundaries and part headers); the file itself is held to the exact limit.
pub const MULTIPART_ALLOWANCE: usize = 16 * 1024;

/// Default lifetime of cached metadata, seconds.
pub const DEFAULT_CACHE_TTL_SECS: i64 = 300;

/// Default `presign_ttl_secs`: presigned URLs live 5 minutes.
pub const DEFAULT_PRESIGN_TTL_SECS: i64 = 300;

/// Longest `presign_ttl_secs`: SigV4 caps a presigned URL's `X-Amz-Expires`
/// at 7 days, and S3 (and MinIO) refuse a URL that asks for more.
pub const MAX_PRESIGN_TTL_SECS: i64 = 7 * 24 * 60 * 60;

/// Default `upload_quota_bytes`: 100 MiB per user.
pub const DEFAULT_QUOTA_BYTES: u64 = 100 * 1024 * 1024;

/// Where upload bytes are stored (`upload_storage`).
#[derive(Clone, PartialEq, Eq)]
pub enum Storage {
    /// In MySQL, beside the metadata (the default: needs nothing else).
    Mysql,
    /// In an S3-compatible bucket.
    S3(S3Settings),
}

/// The bucket of `upload_storage = s3`.
#[derive(Clone, PartialEq, Eq)]
pub struct S3Settings {
    /// `s3_endpoint`: the store's origin, e.g. `https://s3.eu-west-1.amazonaws.com`
    /// (requests are path-style: `<endpoint>/<bucket>/<key>`).
    pub endpoint: String,
    /// `s3_region`, e.g. `us-east-1`.
    pub region: String,
    /// `s3_bucket`.
    pub bucket: String,
    /// `s3_access_key`.
    pub access_key: String,
    /// `s3_secret_key` (a secret).
    pub secret_key: String,
    /// `cdn_base_url`: where public content is redirected to, the object key
    /// appended; unset: to a presigned `GET` like private content.
    pub cdn_base_url: Option<String>,
    /// `presign_ttl_secs`: lifetime of the presigned URLs handed to clients
    /// (the `PUT` of a direct upload, the `GET` behind a content redirect).
    pub url_ttl_secs: u64,
}

// Written by hand so the secret key never reaches a log line.
impl std::fmt::Debug for S3Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Settings")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("bucket", &self.bucket)
            .field("cdn_base_url", &self.cdn_base_url)
            .field("url_ttl_secs", &self.url_ttl_secs)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Storage::Mysql => f.write_str("Mysql"),
            Storage::S3(s) => s.fmt(f),
        }
    }
}

impl Storage {
    /// `cdn_base_url`, without a trailing `/`, when set with S3 storage.
    pub fn cdn_base_url(&self) -> Option<&str> {
        match self {
            Storage::S3(s3) => s3.cdn_base_url.as_deref(),
            Storage::Mysql => None,
        }
    }

    fn from_vars(vars: &Vars) -> Result<Self, ApiError> {
        let config_error = |m: String| ApiError::Internal(format!("configuration: {m}"));
        match vars.optional("upload_storage").as_deref().map(str::trim) {
            None | Some("mysql") => Ok(Storage::Mysql),
            Some("s3") => {
                let endpoint = vars.required("s3_endpoint")?.trim().to_string();
                let origin = endpoint
                    .strip_prefix("https://")
                    .or_else(|| endpoint.strip_prefix("http://"));
                // An origin, as allowed_outbound_hosts names it: no path.
                if !origin.is_some_and(|o| !o.is_empty() && !o.contains('/')) {
                    return Err(config_error(
                        "s3_endpoint must be an http(s):// origin without a path".into(),
                    ));
                }
                let cdn_base_url = vars
                    .optional("cdn_base_url")
                    .map(|u| u.trim().trim_end_matches('/').to_string());
                if cdn_base_url
                    .as_deref()
                    .is_some_and(|u| !u.starts_with("https://") && !u.starts_with("http://"))
                {
                    return Err(config_error(
                        "cdn_base_url must be an http(s):// URL".into(),
                    ));
                }
                let url_ttl_secs =
                    vars.positive_secs("presign_ttl_secs", DEFAULT_PRESIGN_TTL_SECS)?;
                // Checked here, not when the first URL is refused: a longer
                // lifetime would make every direct upload and redirect fail.
                if url_ttl_secs > MAX_PRESIGN_TTL_SECS {
                    return Err(config_error(format!(
                        "presign_ttl_secs must be at most {MAX_PRESIGN_TTL_SECS} (7 days)"
                    )));
                }
                Ok(Storage::S3(S3Settings {
                    endpoint,
                    region: vars.required("s3_region")?.trim().to_string(),
                    bucket: vars.required("s3_bucket")?.trim().to_string(),
                    access_key: vars.required("s3_access_key")?.trim().to_string(),
                    secret_key: vars.required("s3_secret_key")?.trim().to_string(),
                    cdn_base_url,
                    url_ttl_secs: url_ttl_secs.unsigned_abs(),
                }))
            }
            Some(other) => Err(config_error(format!(
                "upload_storage must be mysql or s3, not {other:?}"
            ))),
        }
    }
}

/// The component's configuration, from Spin variables.
#[derive(Debug, Clone)]
pub struct Config {
    /// Verifies bearer tokens.
    pub tokens: TokenConfig,
    /// Largest file accepted, in bytes (`upload_max_bytes`).
    pub max_upload_bytes: usize,
    /// Lifetime of cached metadata, seconds (`cache_ttl_secs`).
    pub cache_ttl_secs: i64,
    /// Most bytes one user may store (`upload_quota_bytes`).
    pub quota_bytes: u64,
    /// Where the bytes go (`upload_storage` and the `s3_*` variables).
    pub storage: Storage,
}

impl Config {
    /// Reads and checks every variable; a bad value is a configuration error (500, logged).
    pub fn from_vars(vars: &Vars) -> Result<Self, ApiError> {
        Ok(Self {
            tokens: vars.tokens()?,
            max_upload_bytes: vars.number("upload_max_bytes", DEFAULT_MAX_UPLOAD_BYTES)?,
            cache_ttl_secs: vars.secs("cache_ttl_secs", DEFAULT_CACHE_TTL_SECS)?,
            quota_bytes: vars.number("upload_quota_bytes", DEFAULT_QUOTA_BYTES)?,
            storage: Storage::from_vars(vars)?,
        })
    }

    /// The body limit handed to the reader: the file limit plus room for
    /// multipart framing.
    pub fn body_limit(max_upload_bytes: usize) -> usize {
        max_upload_bytes.saturating_add(MULTIPART_ALLOWANCE)
    }

    /// The body limit before the rest of the configuration is read (it must
    /// be known before the body is): from `upload_max_bytes`, or the default
    /// when that does not parse — [`Config::from_vars`] then reports it.
    pub fn body_limit_of(vars: &Vars) -> usize {
        Self::body_limit(
            vars.number("upload_max_bytes", DEFAULT_MAX_UPLOAD_BYTES)
                .unwrap_or(DEFAULT_MAX_UPLOAD_BYTES),
        )
    }
}

#[cfg(test)]
mod tests {
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
        assert_eq!(config.storage, Storage::Mysql);
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
        let storage = prop::option::of(prop::sample::select(vec!["s3", "mysql"]));
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
}
