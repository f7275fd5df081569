//! Object storage for uploads with `upload_storage = s3`: the port the
//! handlers use, its implementation over any S3-compatible store, and the
//! in-memory fake the unit tests use.
//!
//! Every request to the store, the component's own included, is a presigned
//! URL made by `rusty-s3` (sans-IO SigV4, no hand-written signing) and sent
//! through an [`Http`] port — Spin's outbound HTTP in the wasm build. The
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
use shared::http::Method;
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

/// An HTTP reply, as much of it as the store adapter reads.
#[derive(Debug, Clone, Default)]
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// Headers, names lower-case.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Outbound HTTP, as the store adapter needs it.
pub trait Http {
    /// Sends one request; `Err` when no answer came.
    fn send(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, String)],
        body: &[u8],
    ) -> Result<Reply, String>;
    /// `GET`s `url` and hashes the body as it streams in; `Err` when no
    /// answer came, the status when it is not 200.
    fn sha256_of(&self, url: &str) -> Result<Result<[u8; 32], u16>, String>;
}

/// [`ObjectStore`] over an S3-compatible store (path-style URLs, which
/// every such store accepts), signing with `rusty-s3`.
pub struct S3Store<H: Http> {
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

impl<H: Http> S3Store<H> {
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

impl<H: Http> ObjectStore for S3Store<H> {
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
        match self.http.sha256_of(&url) {
            Ok(Ok(digest)) => Ok(hex::encode(digest)),
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
#[cfg(test)]
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

#[cfg(test)]
impl MemoryStore {
    /// A store that keeps no checksums.
    pub fn without_checksums() -> Self {
        Self {
            no_checksums: true,
            ..Self::default()
        }
    }
}

#[cfg(test)]
impl MemoryStore {
    fn objects(
        &self,
    ) -> Result<std::sync::MutexGuard<'_, std::collections::BTreeMap<String, Vec<u8>>>, ApiError>
    {
        if self.down.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(ApiError::Unavailable("object store: down".into()));
        }
        Ok(self.objects.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Puts an object as a client's presigned `PUT` would: with no headers
    /// the component chose.
    pub fn client_put(&self, key: &str, bytes: &[u8]) {
        self.objects
            .lock()
            .unwrap()
            .insert(key.to_string(), bytes.to_vec());
        self.served.lock().unwrap().remove(key);
    }

    /// The headers stored with `key`: type, disposition, cache-control.
    pub fn served(&self, key: &str) -> Option<[String; 3]> {
        self.served.lock().unwrap().get(key).cloned()
    }

    fn set_served(&self, key: &str, served: &ServedAs) {
        self.served.lock().unwrap().insert(
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
        self.objects.lock().unwrap().keys().cloned().collect()
    }

    /// The object under `key`.
    pub fn get(&self, key: &str) -> Option<Vec<u8>> {
        self.objects.lock().unwrap().get(key).cloned()
    }
}

#[cfg(test)]
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
mod tests {
    use super::*;
    use std::cell::RefCell;

    /// A request as sent: method, URL and headers.
    type Sent = (String, String, Vec<(String, String)>);

    /// Records requests and answers each with a scripted reply.
    #[derive(Default)]
    struct ScriptedHttp {
        sent: RefCell<Vec<Sent>>,
        replies: RefCell<Vec<Reply>>,
    }

    impl Http for &ScriptedHttp {
        fn send(
            &self,
            method: Method,
            url: &str,
            headers: &[(&str, String)],
            _: &[u8],
        ) -> Result<Reply, String> {
            self.sent.borrow_mut().push((
                method.as_str().to_string(),
                url.to_string(),
                headers
                    .iter()
                    .map(|(n, v)| (n.to_string(), v.clone()))
                    .collect(),
            ));
            let mut replies = self.replies.borrow_mut();
            if replies.is_empty() {
                Err("connection refused".into())
            } else {
                Ok(replies.remove(0))
            }
        }
        fn sha256_of(&self, _: &str) -> Result<Result<[u8; 32], u16>, String> {
            Err("not scripted".into())
        }
    }

    fn settings() -> S3Settings {
        S3Settings {
            endpoint: "http://127.0.0.1:9000".into(),
            region: "us-east-1".into(),
            bucket: "uploads".into(),
            access_key: "AKIDEXAMPLE".into(),
            secret_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
            cdn_base_url: None,
            url_ttl_secs: 900,
        }
    }

    const SHA: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    const TEXT: ServedAs<'static> = ServedAs {
        content_type: "text/plain; charset=utf-8",
        content_disposition: "attachment",
        cache_control: "public, max-age=31536000, immutable",
    };

    /// The value of `name` among the headers sent, and whether the URL signs it.
    fn sent_header(sent: &Sent, name: &str) -> (Option<String>, bool) {
        let value = sent
            .2
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone());
        let signed_headers = sent
            .1
            .split('&')
            .find_map(|p| p.strip_prefix("X-Amz-SignedHeaders="))
            .unwrap_or_default()
            .replace("%3B", ";");
        (value, signed_headers.split(';').any(|h| h == name))
    }

    #[test]
    fn a_copy_replaces_the_metadata_with_the_headers_decided_and_signs_them() {
        let http = ScriptedHttp::default();
        http.replies.borrow_mut().push(Reply {
            status: 200,
            body: b"<CopyObjectResult/>".to_vec(),
            ..Reply::default()
        });
        let store = S3Store::new(&settings(), &http).unwrap();
        store.copy("incoming/a", "objects/b", &TEXT).unwrap();
        let sent = http.sent.borrow()[0].clone();
        for (name, value) in [
            ("x-amz-metadata-directive", "REPLACE"),
            ("content-type", TEXT.content_type),
            ("content-disposition", TEXT.content_disposition),
            ("cache-control", TEXT.cache_control),
        ] {
            assert_eq!(
                sent_header(&sent, name),
                (Some(value.to_string()), true),
                "{name}"
            );
        }
    }

    #[test]
    fn the_components_own_put_stores_the_headers_decided_and_signs_them() {
        let http = ScriptedHttp::default();
        http.replies.borrow_mut().push(Reply {
            status: 200,
            ..Reply::default()
        });
        let store = S3Store::new(&settings(), &http).unwrap();
        store.put("objects/b", b"abc", &TEXT).unwrap();
        let sent = http.sent.borrow()[0].clone();
        for (name, value) in [
            ("content-type", TEXT.content_type),
            ("content-disposition", TEXT.content_disposition),
            ("cache-control", TEXT.cache_control),
            ("content-length", "3"),
        ] {
            assert_eq!(
                sent_header(&sent, name),
                (Some(value.to_string()), true),
                "{name}"
            );
        }
    }

    #[test]
    fn a_presigned_put_signs_the_size_and_checksum_it_hands_out() {
        let http = ScriptedHttp::default();
        let store = S3Store::new(&settings(), &http).unwrap();
        let put = store.presign_put("objects/k", 3, SHA, 1_700_000_000_000);
        assert!(put
            .url
            .starts_with("http://127.0.0.1:9000/uploads/objects/k?"));
        assert!(put.url.contains("X-Amz-Expires=900"));
        assert!(put.url.contains(
            "X-Amz-SignedHeaders=content-length%3Bcontent-type%3Bhost%3Bx-amz-checksum-sha256"
        ));
        assert!(
            !put.url.contains("wJalrXUtnFEMI"),
            "the secret never leaves"
        );
        assert_eq!(
            put.headers,
            vec![
                ("content-length", "3".to_string()),
                ("content-type", UNCHECKED_TYPE.to_string()),
                (
                    "x-amz-checksum-sha256",
                    "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=".to_string()
                )
            ]
        );
        assert_eq!(put.expires_at_ms, 1_700_000_000_000 + 900_000);
    }

    #[test]
    fn a_presigned_get_carries_the_headers_the_file_is_served_with() {
        let http = ScriptedHttp::default();
        let store = S3Store::new(&settings(), &http).unwrap();
        let url = store.presign_get(
            "objects/k",
            &ServedAs {
                content_type: "image/png",
                content_disposition: "inline; filename=\"a.png\"",
                cache_control: "private, no-cache",
            },
            1_700_000_000_000,
        );
        assert!(url.contains("X-Amz-Expires=900"));
        assert!(url.contains("response-content-type=image%2Fpng"));
        assert!(url.contains("response-cache-control=private%2C%20no-cache"));
        assert!(url.contains("response-content-disposition=inline"));
    }

    #[test]
    fn head_reads_size_and_the_stores_checksum() {
        let http = ScriptedHttp::default();
        http.replies.borrow_mut().push(Reply {
            status: 200,
            headers: vec![
                ("content-length".into(), "3".into()),
                (
                    "x-amz-checksum-sha256".into(),
                    "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=".into(),
                ),
            ],
            body: vec![],
        });
        let store = S3Store::new(&settings(), &http).unwrap();
        assert_eq!(
            store.head("k").unwrap(),
            Some(ObjectHead {
                size: 3,
                sha256: Some(SHA.to_string())
            })
        );
    }

    #[test]
    fn a_missing_object_is_none_and_deleting_it_succeeds() {
        let http = ScriptedHttp::default();
        for _ in 0..2 {
            http.replies.borrow_mut().push(Reply {
                status: 404,
                ..Reply::default()
            });
        }
        let store = S3Store::new(&settings(), &http).unwrap();
        assert_eq!(store.head("k").unwrap(), None);
        store.delete("k").unwrap();
        assert_eq!(http.sent.borrow()[1].0, "DELETE");
    }

    #[test]
    fn an_unreachable_or_refusing_store_is_503() {
        let http = ScriptedHttp::default();
        http.replies.borrow_mut().push(Reply {
            status: 403,
            ..Reply::default()
        });
        let store = S3Store::new(&settings(), &http).unwrap();
        assert_eq!(store.put("k", b"abc", &TEXT).unwrap_err().status(), 503);
        let err = store.head("k").unwrap_err();
        assert_eq!(err.status(), 503);
    }

    #[test]
    fn a_copy_is_a_signed_put_naming_its_source() {
        let http = ScriptedHttp::default();
        for body in [
            &b"<CopyObjectResult/>"[..],
            b"<Error><Code>InternalError</Code></Error>",
        ] {
            http.replies.borrow_mut().push(Reply {
                status: 200,
                body: body.to_vec(),
                ..Reply::default()
            });
        }
        let store = S3Store::new(&settings(), &http).unwrap();
        store.copy("incoming/a b", "objects/c", &TEXT).unwrap();
        let sent = http.sent.borrow()[0].clone();
        assert_eq!(sent.0, "PUT");
        assert!(sent.1.contains("/uploads/objects/c?"), "{}", sent.1);
        assert!(sent.1.contains("x-amz-copy-source"), "signed: {}", sent.1);
        assert!(sent
            .2
            .contains(&("x-amz-copy-source".into(), "/uploads/incoming/a%20b".into())));
        // S3 can fail a copy in a 200's body.
        assert_eq!(store.copy("a", "b", &TEXT).unwrap_err().status(), 503);
    }

    #[test]
    fn a_ranged_read_asks_for_exactly_the_prefix() {
        let http = ScriptedHttp::default();
        http.replies.borrow_mut().push(Reply {
            status: 206,
            body: b"abcd".to_vec(),
            ..Reply::default()
        });
        let store = S3Store::new(&settings(), &http).unwrap();
        assert_eq!(store.read_prefix("k", 4).unwrap(), b"abcd");
        let sent = http.sent.borrow();
        assert_eq!(
            sent[0].2,
            vec![("range".to_string(), "bytes=0-3".to_string())]
        );
        assert!(
            sent[0].1.contains("range"),
            "the range is signed: {}",
            sent[0].1
        );
    }
}
