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
    /// In the database, beside the metadata (the default: needs nothing
    /// else), whichever store `db_url` names.
    Database,
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
            Storage::Database => f.write_str("Database"),
            Storage::S3(s) => s.fmt(f),
        }
    }
}

impl Storage {
    /// `cdn_base_url`, without a trailing `/`, when set with S3 storage.
    pub fn cdn_base_url(&self) -> Option<&str> {
        match self {
            Storage::S3(s3) => s3.cdn_base_url.as_deref(),
            Storage::Database => None,
        }
    }

    fn from_vars(vars: &Vars) -> Result<Self, ApiError> {
        let config_error = |m: String| ApiError::Internal(format!("configuration: {m}"));
        match vars.optional("upload_storage").as_deref().map(str::trim) {
            // `mysql` is this setting's name from before SQLite, kept so
            // that existing deployments keep their meaning.
            None | Some("database" | "mysql") => Ok(Storage::Database),
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
mod tests;
