//! Object storage for uploads with `upload_storage = s3`: the port the
//! handlers use, its implementation over any S3-compatible store, and the
//! in-memory fake the unit tests use (built for tests and the `testing`
//! feature only, never into the wasm).
//!
//! Every request to the store, the component's own included, is a presigned
//! URL made by `rusty-s3` (sans-IO SigV4, no hand-written signing) and sent
//! through the [`OutboundHttp`] port — Spin's outbound HTTP in the wasm build. The
//! store therefore needs nothing but SigV4 query authentication, which every
//! S3-compatible store has.
//!
//! A presigned `PUT` signs `content-length` and `x-amz-checksum-sha256`: a
//! client that sends other bytes than it announced breaks the signature or,
//! on a store that checks checksums, the checksum. The URL stays valid until
//! it expires, so what a client puts is never served from where it put it:
//! `complete` copies it to a key no client can write, and checks the copy
//! ([`crate::app`]).
//!
//! What a client put carries the headers the client chose, and a CDN in
//! front of the bucket serves an object with the headers stored with it. So
//! no object is ever served with a client's headers: the presigned `PUT`
//! signs a neutral `content-type` ([`UNCHECKED_TYPE`]), every copy replaces
//! the metadata (`x-amz-metadata-directive: REPLACE`) with the headers the
//! component decided ([`ServedAs`]), and the component's own `PUT`s set them.

use std::time::Duration;

use base64::Engine as _;
use rusty_s3::{Bucket, Credentials, S3Action, UrlStyle};
use sha2::{Digest, Sha256};
use shared::http::Method;
use shared::outbound::{OutboundHttp, Reply};
use shared::ApiError;

use crate::config::S3Settings;

/// How long the component's own presigned requests stay valid: long enough
/// for one request, short enough that a logged URL is worth nothing.
const OWN_REQUEST_TTL_SECS: u64 = 60;

/// Characters escaped in `x-amz-copy-source` (a key's `/` stays).
const COPY_SOURCE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'/')
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// The type a client's presigned `PUT` must declare, and the type of any
/// object whose bytes have not been checked yet: a browser or CDN never
/// renders it.
pub const UNCHECKED_TYPE: &str = "application/octet-stream";

/// What a `HEAD` of an object tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectHead {
    /// Size in bytes.
    pub size: u64,
    /// The SHA-256 the store verified at `PUT` time, lower-case hex, when
    /// the store keeps checksums.
    pub sha256: Option<String>,
}

/// A presigned `PUT` for the client: the URL and the headers it must send
/// exactly as given (they are part of the signature).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresignedPut {
    /// The URL to `PUT` the bytes to.
    pub url: String,
    /// Headers the `PUT` must carry.
    pub headers: Vec<(&'static str, String)>,
    /// When the URL stops working, epoch milliseconds.
    pub expires_at_ms: i64,
}

/// The headers an object is served with: stored with it by [`ObjectStore::put`]
/// and [`ObjectStore::copy`] (what a CDN in front of the bucket serves), or
/// asked of the store by a presigned `GET`, so the file arrives with the
/// same headers the component would send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServedAs<'a> {
    /// `Content-Type`.
    pub content_type: &'a str,
    /// `Content-Disposition`.
    pub content_disposition: &'a str,
    /// `Cache-Control`.
    pub cache_control: &'a str,
}

/// The object storage operations the handlers need. Every failure to reach
/// the store, or an answer it should not give, is 503 `unavailable`.
pub trait ObjectStore {
    /// Stores `bytes` under `key`, to be served as `served` says.
    fn put(&self, key: &str, bytes: &[u8], served: &ServedAs) -> Result<(), ApiError>;
    /// The object's size and checksum; `None` when there is no such object.
    fn head(&self, key: &str) -> Result<Option<ObjectHead>, ApiError>;
    /// The first `len` bytes of the object (fewer when it is shorter).
    fn read_prefix(&self, key: &str, len: u64) -> Result<Vec<u8>, ApiError>;
    /// The whole object (only for files the caller has bounded).
    fn read(&self, key: &str) -> Result<Vec<u8>, ApiError>;
    /// SHA-256 of the object, lower-case hex, for stores that keep no
    /// checksum; read as a stream, never held whole.
    fn sha256(&self, key: &str) -> Result<String, ApiError>;
    /// Copies object `from` to `to` inside the bucket (a server-side copy:
    /// no bytes pass through the component), replacing whatever metadata
    /// `from` had with `served`. `from` may be `to`: that changes only the
    /// metadata.
    fn copy(&self, from: &str, to: &str, served: &ServedAs) -> Result<(), ApiError>;
    /// Deletes the object; deleting a missing object succeeds.
    fn delete(&self, key: &str) -> Result<(), ApiError>;
    /// A presigned `PUT` bound to `size`, `sha256` (hex) and the content
    /// type [`UNCHECKED_TYPE`].
    fn presign_put(&self, key: &str, size: u64, sha256: &str, now_ms: i64) -> PresignedPut;
    /// A presigned `GET` answering with `served` headers.
    fn presign_get(&self, key: &str, served: &ServedAs, now_ms: i64) -> String;
}

/// [`ObjectStore`] over an S3-compatible store (path-style URLs, which
/// every such store accepts), signing with `rusty-s3`.
pub struct S3Store<H: OutboundHttp> {
    bucket: Bucket,
    credentials: Credentials,
    /// Lifetime of the URLs handed to clients.
    url_ttl: Duration,
    http: H,
}

fn unavailable(what: &str, detail: impl std::fmt::Display) -> ApiError {
    ApiError::Unavailable(format!("object store: {what}: {detail}"))
}

/// The SHA-256 (hex) as the base64 `x-amz-checksum-sha256` carries it.
pub fn checksum_header(sha256_hex: &str) -> Option<String> {
    let raw = hex::decode(sha256_hex).ok().filter(|b| b.len() == 32)?;
    Some(base64::engine::general_purpose::STANDARD.encode(raw))
}

fn hex_of_checksum(base64_value: &str) -> Option<String> {
    base64::engine::general_purpose::STANDARD
        .decode(base64_value.trim())
        .ok()
        .filter(|b| b.len() == 32)
        .map(hex::encode)
}

fn timestamp(now_ms: i64) -> jiff::Timestamp {
    jiff::Timestamp::from_millisecond(now_ms).unwrap_or(jiff::Timestamp::UNIX_EPOCH)
}

impl<H: OutboundHttp> S3Store<H> {
    /// A store for these settings, sending through `http`. A bad endpoint
    /// or bucket name is a configuration error (500, logged).
    pub fn new(settings: &S3Settings, http: H) -> Result<Self, ApiError> {
        let endpoint = settings.endpoint.parse().map_err(|e| {
            ApiError::Internal(format!("configuration: s3_endpoint is not a URL: {e}"))
        })?;
        let bucket = Bucket::new(
            endpoint,
            UrlStyle::Path,
            settings.bucket.clone(),
            settings.region.clone(),
        )
        .map_err(|e| ApiError::Internal(format!("configuration: s3 bucket: {e}")))?;
        Ok(Self {
            bucket,
            credentials: Credentials::new(settings.access_key.clone(), settings.secret_key.clone()),
            url_ttl: Duration::from_secs(settings.url_ttl_secs),
            http,
        })
    }

    fn own_url<'a>(&self, action: &impl S3Action<'a>) -> String {
        action
            .sign(Duration::from_secs(OWN_REQUEST_TTL_SECS))
            .to_string()
    }

    fn send(
        &self,
        what: &str,
        method: Method,
        url: &str,
        headers: &[(&str, String)],
        body: &[u8],
    ) -> Result<Reply, ApiError> {
        self.http
            .send(method, url, headers, body)
            .map_err(|e| unavailable(what, e))
    }
}

impl ServedAs<'_> {
    /// The headers that store this on an object (`PUT`, or a copy with the
    /// REPLACE directive).
    fn headers(&self) -> Vec<(&'static str, String)> {
        vec![
            ("content-type", self.content_type.to_string()),
            ("content-disposition", self.content_disposition.to_string()),
            ("cache-control", self.cache_control.to_string()),
        ]
    }
}

/// `action` with every one of `headers` among its signed headers: a request
/// that changes or drops any of them is refused by the store.
fn signing<'a, A: S3Action<'a>>(mut action: A, headers: &[(&'static str, String)]) -> A {
    for (name, value) in headers {
        action.headers_mut().insert(*name, value.clone());
    }
    action
}

impl<H: OutboundHttp> ObjectStore for S3Store<H> {
    fn put(&self, key: &str, bytes: &[u8], served: &ServedAs) -> Result<(), ApiError> {
        let mut headers = served.headers();
        headers.push(("content-length", bytes.len().to_string()));
        let url = self.own_url(&signing(
            self.bucket.put_object(Some(&self.credentials), key),
            &headers,
        ));
        let reply = self.send("put", Method::Put, &url, &headers, bytes)?;
        match reply.status {
            200 => Ok(()),
            status => Err(unavailable("put", format!("status {status}"))),
        }
    }

    fn head(&self, key: &str) -> Result<Option<ObjectHead>, ApiError> {
        let mut action = self.bucket.head_object(Some(&self.credentials), key);
        // AWS returns checksums only when asked; other stores ignore this.
        action
            .headers_mut()
            .insert("x-amz-checksum-mode", "ENABLED");
        let url = self.own_url(&action);
        let reply = self.send(
            "head",
            Method::Head,
            &url,
            &[("x-amz-checksum-mode", "ENABLED".to_string())],
            &[],
        )?;
        match reply.status {
            200 => {
                let size = reply
                    .header("content-length")
                    .and_then(|v| v.trim().parse().ok())
                    .ok_or_else(|| unavailable("head", "no content-length"))?;
                let sha256 = reply
                    .header("x-amz-checksum-sha256")
                    .and_then(hex_of_checksum);
                Ok(Some(ObjectHead { size, sha256 }))
            }
            404 => Ok(None),
            status => Err(unavailable("head", format!("status {status}"))),
        }
    }

    fn read_prefix(&self, key: &str, len: u64) -> Result<Vec<u8>, ApiError> {
        let mut action = self.bucket.get_object(Some(&self.credentials), key);
        let range = format!("bytes=0-{}", len.saturating_sub(1));
        action.headers_mut().insert("range", range.clone());
        let url = self.own_url(&action);
        let reply = self.send("read", Method::Get, &url, &[("range", range)], &[])?;
        match reply.status {
            // 200: a store that ignores ranges sent it all; keep the prefix.
            200 | 206 => {
                let mut body = reply.body;
                body.truncate(usize::try_from(len).unwrap_or(usize::MAX));
                Ok(body)
            }
            status => Err(unavailable("read", format!("status {status}"))),
        }
    }

    fn read(&self, key: &str) -> Result<Vec<u8>, ApiError> {
        let url = self.own_url(&self.bucket.get_object(Some(&self.credentials), key));
        let reply = self.send("read", Method::Get, &url, &[], &[])?;
        match reply.status {
            200 => Ok(reply.body),
            status => Err(unavailable("read", format!("status {status}"))),
        }
    }

    fn sha256(&self, key: &str) -> Result<String, ApiError> {
        let url = self.own_url(&self.bucket.get_object(Some(&self.credentials), key));
        // Chunk by chunk: an object of any size is hashed in bounded memory.
        let mut hasher = Sha256::new();
        match self
            .http
            .get_streamed(&url, &mut |chunk| hasher.update(chunk))
        {
            Ok(Ok(())) => Ok(hex::encode(hasher.finalize())),
            Ok(Err(status)) => Err(unavailable("hash", format!("status {status}"))),
            Err(e) => Err(unavailable("hash", e)),
        }
    }

    fn copy(&self, from: &str, to: &str, served: &ServedAs) -> Result<(), ApiError> {
        // CopyObject is a PUT carrying `x-amz-copy-source`; with the REPLACE
        // directive the copy takes its metadata from this request, never
        // from the source. Every header is signed.
        let source = format!(
            "/{}/{}",
            self.bucket.name(),
            percent_encoding::utf8_percent_encode(from, COPY_SOURCE)
        );
        let mut headers = served.headers();
        headers.extend([
            ("x-amz-copy-source", source),
            ("x-amz-metadata-directive", "REPLACE".to_string()),
            ("content-length", "0".to_string()),
        ]);
        let url = self.own_url(&signing(
            self.bucket.put_object(Some(&self.credentials), to),
            &headers,
        ));
        let reply = self.send("copy", Method::Put, &url, &headers, &[])?;
        // S3 may answer 200 and report a failure in the body.
        let failed_in_body = reply.body.windows(7).any(|w| w == b"<Error>");
        match reply.status {
            200 if !failed_in_body => Ok(()),
            status => Err(unavailable("copy", format!("status {status}"))),
        }
    }

    fn delete(&self, key: &str) -> Result<(), ApiError> {
        let url = self.own_url(&self.bucket.delete_object(Some(&self.credentials), key));
        let reply = self.send("delete", Method::Delete, &url, &[], &[])?;
        match reply.status {
            200 | 204 | 404 => Ok(()),
            status => Err(unavailable("delete", format!("status {status}"))),
        }
    }

    fn presign_put(&self, key: &str, size: u64, sha256: &str, now_ms: i64) -> PresignedPut {
        let mut headers = vec![
            ("content-length", size.to_string()),
            ("content-type", UNCHECKED_TYPE.to_string()),
        ];
        if let Some(checksum) = checksum_header(sha256) {
            headers.push(("x-amz-checksum-sha256", checksum));
        }
        let url = signing(
            self.bucket.put_object(Some(&self.credentials), key),
            &headers,
        )
        .sign_with_time(self.url_ttl, &timestamp(now_ms))
        .to_string();
        PresignedPut {
            url,
            headers,
            expires_at_ms: now_ms.saturating_add(self.url_ttl.as_millis() as i64),
        }
    }

    fn presign_get(&self, key: &str, served: &ServedAs, now_ms: i64) -> String {
        let mut action = self.bucket.get_object(Some(&self.credentials), key);
        let query = action.query_mut();
        query.insert("response-content-type", served.content_type.to_string());
        query.insert(
            "response-content-disposition",
            served.content_disposition.to_string(),
        );
        query.insert("response-cache-control", served.cache_control.to_string());
        action
            .sign_with_time(self.url_ttl, &timestamp(now_ms))
            .to_string()
    }
}

/// In-memory [`ObjectStore`] for unit tests: presigned URLs are
/// `memory://` strings that name the key, and a switch makes every call fail.
#[cfg(any(test, feature = "testing"))]
#[derive(Default)]
pub struct MemoryStore {
    objects: std::sync::Mutex<std::collections::BTreeMap<String, Vec<u8>>>,
    /// Each object's stored headers (type, disposition, cache-control);
    /// none for what a client put.
    served: std::sync::Mutex<std::collections::BTreeMap<String, [String; 3]>>,
    /// When set, every call fails with 503.
    pub down: std::sync::atomic::AtomicBool,
    /// When set, `head` reports no checksum (a store that keeps none).
    pub no_checksums: bool,
    /// When set, a copy of an object onto itself (a metadata change) fails
    /// with 503, as a store that goes away between two requests would.
    pub refuse_copy_in_place: std::sync::atomic::AtomicBool,
}

/// A lock that a panicking test left poisoned still guards consistent data:
/// every change under it is one map operation.
#[cfg(any(test, feature = "testing"))]
fn unpoisoned<T>(lock: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    lock.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(any(test, feature = "testing"))]
impl MemoryStore {
    /// A store that keeps no checksums.
    pub fn without_checksums() -> Self {
        Self {
            no_checksums: true,
            ..Self::default()
        }
    }

    fn objects(
        &self,
    ) -> Result<std::sync::MutexGuard<'_, std::collections::BTreeMap<String, Vec<u8>>>, ApiError>
    {
        if self.down.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(ApiError::Unavailable("object store: down".into()));
        }
        Ok(unpoisoned(&self.objects))
    }

    /// Puts an object as a client's presigned `PUT` would: with no headers
    /// the component chose.
    pub fn client_put(&self, key: &str, bytes: &[u8]) {
        unpoisoned(&self.objects).insert(key.to_string(), bytes.to_vec());
        unpoisoned(&self.served).remove(key);
    }

    /// The headers stored with `key`: type, disposition, cache-control.
    pub fn served(&self, key: &str) -> Option<[String; 3]> {
        unpoisoned(&self.served).get(key).cloned()
    }

    fn set_served(&self, key: &str, served: &ServedAs) {
        unpoisoned(&self.served).insert(
            key.to_string(),
            [
                served.content_type.to_string(),
                served.content_disposition.to_string(),
                served.cache_control.to_string(),
            ],
        );
    }

    /// The stored keys.
    pub fn keys(&self) -> Vec<String> {
        unpoisoned(&self.objects).keys().cloned().collect()
    }

    /// The object under `key`.
    pub fn get(&self, key: &str) -> Option<Vec<u8>> {
        unpoisoned(&self.objects).get(key).cloned()
    }
}

#[cfg(any(test, feature = "testing"))]
impl ObjectStore for MemoryStore {
    fn put(&self, key: &str, bytes: &[u8], served: &ServedAs) -> Result<(), ApiError> {
        self.objects()?.insert(key.to_string(), bytes.to_vec());
        self.set_served(key, served);
        Ok(())
    }
    fn head(&self, key: &str) -> Result<Option<ObjectHead>, ApiError> {
        use sha2::{Digest, Sha256};
        Ok(self.objects()?.get(key).map(|b| ObjectHead {
            size: b.len() as u64,
            sha256: (!self.no_checksums).then(|| hex::encode(Sha256::digest(b))),
        }))
    }
    fn read_prefix(&self, key: &str, len: u64) -> Result<Vec<u8>, ApiError> {
        let objects = self.objects()?;
        let b = objects.get(key).ok_or_else(|| unavailable("read", 404))?;
        Ok(b[..b.len().min(len as usize)].to_vec())
    }
    fn read(&self, key: &str) -> Result<Vec<u8>, ApiError> {
        self.objects()?
            .get(key)
            .cloned()
            .ok_or_else(|| unavailable("read", 404))
    }
    fn sha256(&self, key: &str) -> Result<String, ApiError> {
        use sha2::{Digest, Sha256};
        Ok(hex::encode(Sha256::digest(self.read(key)?)))
    }
    fn copy(&self, from: &str, to: &str, served: &ServedAs) -> Result<(), ApiError> {
        if from == to
            && self
                .refuse_copy_in_place
                .load(std::sync::atomic::Ordering::SeqCst)
        {
            return Err(unavailable("copy", "down"));
        }
        let mut objects = self.objects()?;
        let bytes = objects
            .get(from)
            .cloned()
            .ok_or_else(|| unavailable("copy", 404))?;
        objects.insert(to.to_string(), bytes);
        drop(objects);
        self.set_served(to, served);
        Ok(())
    }
    fn delete(&self, key: &str) -> Result<(), ApiError> {
        self.objects()?.remove(key);
        Ok(())
    }
    fn presign_put(&self, key: &str, size: u64, sha256: &str, now_ms: i64) -> PresignedPut {
        PresignedPut {
            url: format!("memory://put/{key}"),
            headers: vec![
                ("content-length", size.to_string()),
                ("content-type", UNCHECKED_TYPE.to_string()),
                (
                    "x-amz-checksum-sha256",
                    checksum_header(sha256).unwrap_or_default(),
                ),
            ],
            expires_at_ms: now_ms + 300_000,
        }
    }
    fn presign_get(&self, key: &str, _: &ServedAs, _: i64) -> String {
        format!("memory://get/{key}")
    }
}

#[cfg(test)]
mod tests;
