//! The routes of the uploads component, as plain Rust over the ports.
//!
//! | route | who |
//! |---|---|
//! | `POST /api/v1/uploads?filename=&visibility=` (raw body or `multipart/form-data`) | bearer |
//! | `GET /api/v1/uploads?page&limit` | bearer: own uploads, newest first |
//! | `GET /api/v1/uploads/{id}` | owner or admin (404 for anyone else) |
//! | `GET /api/v1/uploads/{id}/content` | public: anyone; private: owner or admin |
//! | `DELETE /api/v1/uploads/{id}` | owner or admin |
//! | `POST /api/v1/uploads/presign` (JSON) | bearer, `upload_storage = s3` |
//! | `POST /api/v1/uploads/{id}/complete` | owner of the pending upload |
//!
//! Decisions where API.md is silent:
//! * `visibility` defaults to `private`; anything but `private`/`public` is 400.
//! * `?filename=` wins over the multipart part's filename; with neither the
//!   name is `upload`. The filename's extension is a claim like `Content-Type`.
//! * Authentication comes first, before the body is read and before any
//!   lookup ([`admit`], run by the entry point on the request head): a request
//!   with an `Authorization` header that is not a valid token is 401 on every
//!   route, public content included, so a bad token learns nothing about which
//!   ids exist; a route that needs a bearer and has none is 401 too. Only
//!   public content may be read without one. Content of a private upload asked
//!   for without a token is 404, as for any other non-owner.
//! * A file's extension must be one of its detected type's
//!   ([`crate::detect::Kind::extensions`]); with no filename, or one that
//!   sanitises to nothing, the name is `upload.<ext>` of the detected type.
//! * Quota: the sizes of a user's uploads add up to at most
//!   `upload_quota_bytes` (100 MiB by default). Every upload counts its own
//!   size, even when its bytes are shared with an identical file (the user
//!   cannot see that sharing, so it must not change what they may store).
//!   The check and the insert run in one transaction holding the user's row
//!   lock, so concurrent uploads of one user cannot together pass the quota.
//! * Unknown ids leave nothing in the key-value store: metadata is cached
//!   only for uploads that exist ([`Cache::read_through`]).
//! * Images are served `inline`, PDF and text as `attachment`.
//! * Metadata is cached in the key-value store (`up:<id>`), so the hot
//!   revalidation path — a private file's `If-None-Match` (its `no-cache` makes
//!   browsers revalidate on every use) — answers 304 without a MySQL
//!   connection. Metadata never changes after creation; delete invalidates.
//!   Deleting an account removes its uploads by cascade without touching the
//!   cache: the entries outlive them by at most `cache_ttl_secs`, and content
//!   is never served from them (the bytes are read joined to the live row).
//! * Metadata and list responses carry `Cache-Control: no-store` (they depend
//!   on who asks).
//!
//! With `upload_storage = s3` ([`crate::store`]):
//! * Raw and multipart uploads put their bytes in the bucket (under a key of
//!   the new upload's id) only when no blob has the same content; the quota
//!   is checked before anything is sent.
//! * A direct upload is put by the client under `incoming/<id>` and, at
//!   `complete`, copied to a fresh key under `objects/` that only the
//!   component writes; the checks run on that copy, so bytes put again while
//!   the presigned URL lives are never served.
//! * A direct upload is announced (`presign`: its size counts against the
//!   quota from then until `complete`, or until [`COMPLETE_GRACE_MS`] after
//!   its presigned `PUT` (`presign_ttl_secs`) expired), put by the
//!   client, then checked by `complete` with the rules of a raw upload: the
//!   size and SHA-256 the store reports (or computes by reading the object,
//!   for stores that keep no checksum) against the announced ones, the type
//!   from the first [`SNIFF_BYTES`] bytes, and a text file in full (so text
//!   is bounded by `upload_max_bytes`). An object that fails is deleted and
//!   the announcement forgotten; one not yet there leaves both (409).
//! * Content answers `302`: to `cdn_base_url` + key for public uploads when
//!   set, otherwise to a presigned `GET` (`presign_ttl_secs`) that makes the store
//!   answer with this API's `Content-Type`, `Content-Disposition` and
//!   `Cache-Control`. `If-None-Match` is still answered `304` here, and the
//!   redirect itself is `no-store` (a presigned URL expires).
//! * Deleting the last upload of a content deletes its object after the
//!   commit; if the store is down then, the object is left (logged), never
//!   a live upload's bytes.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use shared::auth::{authenticate, Principal};
use shared::cache::Cache;
use shared::context::RequestContext;
use shared::domain::{Page, Pagination};
use shared::http::{Method, Request, Response};
use shared::id::{is_valid_id, new_id};
use shared::kv::KeyValue;
use shared::router::Router;
use shared::time::rfc3339;
use shared::{ApiError, FieldError};
use std::collections::BTreeMap;

use crate::config::Storage;
pub use crate::config::{Config, MULTIPART_ALLOWANCE};
use crate::detect::{check_claim, check_extension, Kind};
use crate::multipart;
use crate::names::{clean, content_disposition, etag};
use crate::repo::{Content, Deleted, NewBytes, Pending, Stored, Upload, UploadRepo, Visibility};
use crate::store::{ObjectStore, ServedAs, UNCHECKED_TYPE};

/// How many leading bytes of an object decide its type.
pub const SNIFF_BYTES: u64 = 64 * 1024;

/// The largest object one S3 `PUT` may create: 5 GiB.
pub const MAX_OBJECT_BYTES: u64 = 5 * 1024 * 1024 * 1024;

/// How long past its presigned `PUT` an announced direct upload may still be
/// completed (a large file may still be arriving when the URL expires).
pub const COMPLETE_GRACE_MS: i64 = 15 * 60 * 1000;

/// `Cache-Control` of public content: a CDN may keep it for a year; the bytes
/// behind an id never change.
pub const PUBLIC_CACHE_CONTROL: &str = "public, max-age=31536000, immutable";

/// `Cache-Control` of private content: browsers may store it but must
/// revalidate (a 304 is cheap); shared caches must not store it.
pub const PRIVATE_CACHE_CONTROL: &str = "private, no-cache";

/// How a checked object is stored in the bucket, which is how a CDN in front
/// of it serves it: the detected type, never the client's; `inline` only for
/// images, like the component's own answers; the cache policy of the upload
/// that stored it. The disposition names no file: one object backs every
/// upload of the same bytes, whatever each calls it, and one owner's
/// filename must not reach another's readers.
fn object_served(upload: &Upload) -> ServedAs<'_> {
    let inline = Kind::from_content_type(&upload.content_type).is_some_and(Kind::is_image);
    ServedAs {
        content_type: &upload.content_type,
        content_disposition: if inline { "inline" } else { "attachment" },
        cache_control: match upload.visibility {
            Visibility::Public => PUBLIC_CACHE_CONTROL,
            Visibility::Private => PRIVATE_CACHE_CONTROL,
        },
    }
}

/// How an object whose bytes are not checked yet is stored: as nothing a
/// browser renders or a cache keeps.
const UNCHECKED: ServedAs<'static> = ServedAs {
    content_type: UNCHECKED_TYPE,
    content_disposition: "attachment",
    cache_control: "no-store",
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Create,
    List,
    Get,
    Content,
    Delete,
    Presign,
    Complete,
}

fn router() -> Router<Route> {
    Router::new()
        .route(Method::Post, "/api/v1/uploads", Route::Create)
        .route(Method::Get, "/api/v1/uploads", Route::List)
        .route(Method::Get, "/api/v1/uploads/:id", Route::Get)
        .route(Method::Delete, "/api/v1/uploads/:id", Route::Delete)
        .route(Method::Get, "/api/v1/uploads/:id/content", Route::Content)
        .route(Method::Post, "/api/v1/uploads/presign", Route::Presign)
        .route(
            Method::Post,
            "/api/v1/uploads/:id/complete",
            Route::Complete,
        )
}

/// Everything a handler works with.
struct Env<'a> {
    ctx: &'a RequestContext,
    req: &'a Request,
    config: &'a Config,
    kv: &'a dyn KeyValue,
    repo: &'a dyn UploadRepo,
    /// The bucket, with `upload_storage = s3`.
    store: Option<&'a dyn ObjectStore>,
    /// The verified caller, if the request carried a token.
    caller: Option<Principal>,
}

/// A request whose head passed [`admit`]: its route is known and its token,
/// if any, verified.
#[derive(Debug)]
pub struct Admitted {
    route: Route,
    id: String,
    caller: Option<Principal>,
}

/// The checks that need only the request head, run before a byte of the body
/// is read: the route (404/405), then the caller. A present `Authorization`
/// must hold a valid, unrevoked token (401 otherwise, on every route); a
/// route other than content must have one. No database or metadata lookup
/// happens here or before it, so a bad token cannot tell which ids exist,
/// and an unauthenticated client cannot make the component read megabytes.
pub fn admit(
    ctx: &RequestContext,
    head: &Request,
    config: &Config,
    kv: &dyn KeyValue,
) -> Result<Admitted, ApiError> {
    let (route, params) = router().dispatch(ctx, &head.method, &head.path)?;
    let id = params.get("id").unwrap_or_default().to_string();
    let caller = match head.header("authorization") {
        Some(_) => Some(authenticate(ctx, head, &config.tokens, kv)?),
        None if route == Route::Content => None,
        None => return Err(ApiError::InvalidToken),
    };
    Ok(Admitted { route, id, caller })
}

/// Handles a request [`admit`] let in, its body now read.
pub fn handle_admitted(
    ctx: &RequestContext,
    req: &Request,
    config: &Config,
    kv: &dyn KeyValue,
    repo: &dyn UploadRepo,
    store: Option<&dyn ObjectStore>,
    admitted: Admitted,
) -> Result<Response, ApiError> {
    let Admitted { route, id, caller } = admitted;
    let env = Env {
        ctx,
        req,
        config,
        kv,
        repo,
        store,
        caller,
    };
    match route {
        Route::Create => create(&env),
        Route::List => list(&env),
        Route::Get => get(&env, &id),
        Route::Content => content(&env, &id),
        Route::Delete => delete(&env, &id),
        Route::Presign => presign(&env),
        Route::Complete => complete(&env, &id),
    }
}

/// [`admit`] then [`handle_admitted`], for a request whose body is already
/// in hand (unit tests).
pub fn handle(
    ctx: &RequestContext,
    req: &Request,
    config: &Config,
    kv: &dyn KeyValue,
    repo: &dyn UploadRepo,
    store: Option<&dyn ObjectStore>,
) -> Result<Response, ApiError> {
    let admitted = admit(ctx, req, config, kv)?;
    handle_admitted(ctx, req, config, kv, repo, store, admitted)
}

/// The upload JSON of API.md.
#[derive(Debug, Serialize)]
struct UploadJson<'a> {
    id: &'a str,
    filename: &'a str,
    content_type: &'a str,
    size: u64,
    sha256: &'a str,
    visibility: &'static str,
    created_at: String,
    url: String,
}

impl<'a> From<&'a Upload> for UploadJson<'a> {
    fn from(u: &'a Upload) -> Self {
        Self {
            id: &u.id,
            filename: &u.filename,
            content_type: &u.content_type,
            size: u.size,
            sha256: &u.sha256,
            visibility: u.visibility.as_str(),
            created_at: rfc3339(u.created_at_ms),
            url: format!("/api/v1/uploads/{}/content", u.id),
        }
    }
}

/// The caller [`admit`] verified; routes other than content never get here
/// without one.
fn principal<'a>(env: &'a Env) -> Result<&'a Principal, ApiError> {
    env.caller.as_ref().ok_or(ApiError::InvalidToken)
}

fn cache_key(id: &str) -> String {
    shared::keys::upload(id)
}

/// The upload's metadata, from the cache or MySQL (cache-aside). Ids that
/// cannot be ids are 404 without asking either.
fn load(env: &Env, id: &str) -> Result<Upload, ApiError> {
    if !is_valid_id(id) {
        return Err(ApiError::NotFound);
    }
    // Only uploads that exist are cached: an unknown id, however many are
    // tried, adds no key.
    let cache = Cache::new(env.kv, env.ctx.now_ms);
    cache
        .read_through(
            &cache_key(id),
            env.config.cache_ttl_secs.saturating_mul(1000),
            || env.repo.find(id),
        )?
        .ok_or(ApiError::NotFound)
}

/// The upload if `who` may see it; 404 otherwise, so that nobody learns
/// which ids exist.
fn visible_to(upload: Upload, who: &Principal) -> Result<Upload, ApiError> {
    if who.may_access_user(&upload.user_id) {
        Ok(upload)
    } else {
        Err(ApiError::NotFound)
    }
}

/// The file of a request: its bytes, the filename it carries (multipart)
/// and the type the client claims for it.
struct Incoming<'a> {
    /// Borrowed for a raw body (no copy of megabytes), owned for a part.
    bytes: Cow<'a, [u8]>,
    filename: Option<String>,
    claim: Option<String>,
}

fn read_file<'a>(env: &Env<'a>) -> Result<Incoming<'a>, ApiError> {
    let max = env.config.max_upload_bytes;
    let content_type = env.req.header("content-type");
    match multipart::boundary(content_type) {
        Some(boundary) => {
            let part = multipart::parse(&env.req.body, &boundary?, max)?;
            Ok(Incoming {
                bytes: Cow::Owned(part.bytes),
                filename: part.filename,
                claim: part.content_type,
            })
        }
        None => {
            // The reader allowed MULTIPART_ALLOWANCE more; a raw file gets none of it.
            if env.req.body.len() > max {
                return Err(ApiError::PayloadTooLarge { limit: max as u64 });
            }
            Ok(Incoming {
                bytes: Cow::Borrowed(&env.req.body),
                filename: None,
                claim: content_type.map(str::to_string),
            })
        }
    }
}

fn create(env: &Env) -> Result<Response, ApiError> {
    let who = principal(env)?;
    let visibility = match env.req.query_param("visibility") {
        None => Visibility::Private,
        Some(v) => Visibility::parse(&v).ok_or_else(|| {
            ApiError::Validation(vec![FieldError::new(
                "visibility",
                "must be \"private\" or \"public\"",
            )])
        })?,
    };
    let incoming = read_file(env)?;
    if incoming.bytes.is_empty() {
        return Err(ApiError::BadRequest("The file is empty.".into()));
    }
    let kind = Kind::detect(&incoming.bytes).ok_or_else(unsupported_type)?;
    check_claim(incoming.claim.as_deref(), kind)?;
    let filename = env
        .req
        .query_param("filename")
        .or(incoming.filename)
        .and_then(|raw| clean(&raw))
        .unwrap_or_else(|| kind.default_filename());
    check_extension(&filename, kind)?;
    let size = incoming.bytes.len() as u64;
    if size > env.config.quota_bytes {
        return Err(ApiError::QuotaExceeded {
            quota: env.config.quota_bytes,
        });
    }

    let upload = Upload {
        id: new_id(env.ctx.now_ms)?,
        user_id: who.user_id.clone(),
        filename,
        content_type: kind.content_type().to_string(),
        size,
        sha256: hex::encode(Sha256::digest(&incoming.bytes)),
        visibility,
        created_at_ms: env.ctx.now_ms,
    };
    store_new(env, &upload, &incoming.bytes)?;
    Ok(created_answer(&upload))
}

/// Stores a checked upload and its bytes: in MySQL, or in the bucket when
/// no blob has the same content yet (the quota is checked first, so nothing
/// is sent for an upload that would be refused).
fn store_new(env: &Env, upload: &Upload, bytes: &[u8]) -> Result<(), ApiError> {
    let quota = env.config.quota_bytes;
    let Some(store) = env.store else {
        env.repo.create(upload, NewBytes::Inline(bytes), quota)?;
        return Ok(());
    };
    if env.repo.create(upload, NewBytes::Absent, quota)? != Stored::NeedsBytes {
        return Ok(());
    }
    let key = object_key(&upload.id);
    store.put(&key, bytes, &object_served(upload))?;
    match env.repo.create(upload, NewBytes::Object(&key), quota) {
        Ok(Stored::NewBlob) => Ok(()),
        // The same content was stored meanwhile (or this one was refused):
        // the object just put serves nothing.
        outcome => {
            forget_object(store, &key);
            outcome.map(drop)
        }
    }
}

/// The object key of a blob: `objects/` and a fresh id (a raw upload's own).
fn object_key(id: &str) -> String {
    format!("objects/{id}")
}

/// Where a client puts the bytes of direct upload `id` (never served).
fn incoming_key(id: &str) -> String {
    format!("incoming/{id}")
}

/// Deletes an object nothing refers to. Run after the commit that freed it;
/// a store that fails then leaves an unreferenced object (logged), never a
/// missing one.
fn forget_object(store: &dyn ObjectStore, key: &str) {
    if let Err(e) = store.delete(key) {
        shared::log::warn(format!(
            "unreferenced object {key} left in the bucket: {}",
            e.log_detail()
        ));
    }
}

/// 415 for bytes of no accepted type, the same for every way a file arrives.
fn unsupported_type() -> ApiError {
    ApiError::UnsupportedMediaType(
        "Accepted types are PNG, JPEG, GIF, WebP, PDF and UTF-8 plain text.".into(),
    )
}

fn list(env: &Env) -> Result<Response, ApiError> {
    let who = principal(env)?;
    let pagination = Pagination::from_request(env.req)?;
    let (uploads, total) = env.repo.list_for_user(&who.user_id, pagination)?;
    let items: Vec<UploadJson> = uploads.iter().map(UploadJson::from).collect();
    Ok(Response::json(200, &Page::new(items, pagination, total))
        .with_header("cache-control", "no-store"))
}

fn get(env: &Env, id: &str) -> Result<Response, ApiError> {
    let who = principal(env)?;
    let upload = visible_to(load(env, id)?, who)?;
    Ok(Response::json(200, &UploadJson::from(&upload)).with_header("cache-control", "no-store"))
}

fn content(env: &Env, id: &str) -> Result<Response, ApiError> {
    let upload = load(env, id)?;
    let upload = match upload.visibility {
        Visibility::Public => upload,
        Visibility::Private => match &env.caller {
            Some(who) => visible_to(upload, who)?,
            None => return Err(ApiError::NotFound),
        },
    };
    let cache_control = match upload.visibility {
        Visibility::Public => PUBLIC_CACHE_CONTROL,
        Visibility::Private => PRIVATE_CACHE_CONTROL,
    };
    let tag = etag(&upload.sha256);
    if env
        .req
        .header("if-none-match")
        .is_some_and(|h| shared::http::if_none_match_matches(h, &upload.sha256))
    {
        return Ok(Response::new(304)
            .with_header("etag", &tag)
            .with_header("cache-control", cache_control)
            .with_header("x-content-type-options", "nosniff"));
    }
    let inline = Kind::from_content_type(&upload.content_type).is_some_and(Kind::is_image);
    let response = Response::new(200)
        .with_header("content-type", &upload.content_type)
        .with_header("etag", &tag)
        .with_header("cache-control", cache_control)
        .with_header("x-content-type-options", "nosniff")
        .with_header(
            "content-disposition",
            &content_disposition(&upload.filename, inline),
        );
    // HEAD answers from the metadata alone, and without Content-Length: there
    // it would announce a body the wasi-http response then lacks.
    if env.req.method == Method::Head {
        return Ok(response);
    }
    match env.repo.content(&upload.id)?.ok_or(ApiError::NotFound)? {
        Content::Inline(bytes) => Ok(response
            .with_header("content-length", &bytes.len().to_string())
            .with_body(bytes)),
        Content::Object(key) => {
            let store = env.store.ok_or_else(|| {
                ApiError::Unavailable(format!(
                    "upload {} is in the bucket, and upload_storage is not s3",
                    upload.id
                ))
            })?;
            let disposition = content_disposition(&upload.filename, inline);
            let cdn = match upload.visibility {
                Visibility::Public => env.config.storage.cdn_base_url(),
                Visibility::Private => None,
            };
            let location = match cdn {
                Some(base) => format!("{base}/{key}"),
                None => store.presign_get(
                    &key,
                    &ServedAs {
                        content_type: &upload.content_type,
                        content_disposition: &disposition,
                        cache_control,
                    },
                    env.ctx.now_ms,
                ),
            };
            Ok(Response::new(302)
                .with_header("location", &location)
                .with_header("etag", &tag)
                .with_header("cache-control", "no-store")
                .with_header("x-content-type-options", "nosniff"))
        }
    }
}

fn delete(env: &Env, id: &str) -> Result<Response, ApiError> {
    let who = principal(env)?;
    let upload = visible_to(load(env, id)?, who)?;
    let deleted = env.repo.delete(&upload)?;
    // Invalidate even when someone else deleted it first: the entry is stale either way.
    Cache::new(env.kv, env.ctx.now_ms).invalidate(&cache_key(&upload.id));
    match deleted {
        Deleted::Missing => Err(ApiError::NotFound),
        Deleted::Gone { freed_object } => {
            match (freed_object, env.store) {
                (Some(key), Some(store)) => forget_object(store, &key),
                (Some(key), None) => shared::log::warn(format!(
                    "unreferenced object {key} left in the bucket: upload_storage is not s3"
                )),
                (None, _) => {}
            }
            Ok(Response::new(204))
        }
    }
}

#[cfg(test)]
mod tests;

/// The body of `POST /api/v1/uploads/presign`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PresignBody {
    filename: Option<String>,
    size: u64,
    sha256: String,
    visibility: Option<String>,
}

/// A direct upload, parsed: every field valid, or all the faults at once.
struct Announcement {
    filename: Option<String>,
    size: u64,
    sha256: String,
    visibility: Visibility,
}

impl Announcement {
    fn parse(body: PresignBody) -> Result<Self, ApiError> {
        let mut faults = Vec::new();
        if body.size == 0 {
            faults.push(FieldError::new("size", "must be at least 1"));
        } else if body.size > MAX_OBJECT_BYTES {
            faults.push(FieldError::new("size", "must be at most 5 GiB (one PUT)"));
        }
        let sha256 = body.sha256.to_ascii_lowercase();
        if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            faults.push(FieldError::new("sha256", "must be 64 hexadecimal digits"));
        }
        let visibility = match body.visibility.as_deref() {
            None => Some(Visibility::Private),
            Some(v) => Visibility::parse(v),
        };
        if visibility.is_none() {
            faults.push(FieldError::new(
                "visibility",
                "must be \"private\" or \"public\"",
            ));
        }
        let filename = body.filename.as_deref().and_then(clean);
        // A name no accepted type could have is refused before any upload.
        if let Some(name) = &filename {
            if !Kind::ALL.iter().any(|k| check_extension(name, *k).is_ok()) {
                return Err(ApiError::UnsupportedMediaType(
                    "Accepted types are PNG, JPEG, GIF, WebP, PDF and UTF-8 plain text; \
                     the filename's extension must be one of theirs."
                        .into(),
                ));
            }
        }
        match visibility {
            Some(visibility) if faults.is_empty() => Ok(Self {
                filename,
                size: body.size,
                sha256,
                visibility,
            }),
            _ => Err(ApiError::Validation(faults)),
        }
    }
}

/// The bucket, or 409 for the routes that exist only with one.
fn bucket<'a>(env: &Env<'a>) -> Result<&'a dyn ObjectStore, ApiError> {
    env.store.ok_or_else(|| {
        ApiError::InvalidState(
            "Direct uploads need upload_storage = s3; send the file to POST /api/v1/uploads."
                .into(),
        )
    })
}

/// The answer to `presign`: where and how to `PUT` the bytes.
#[derive(Debug, Serialize)]
struct PresignJson<'a> {
    id: &'a str,
    method: &'static str,
    url: &'a str,
    headers: BTreeMap<&'static str, &'a str>,
    expires_at: String,
    complete_url: String,
}

fn presign(env: &Env) -> Result<Response, ApiError> {
    let who = principal(env)?;
    let store = bucket(env)?;
    let announced = Announcement::parse(env.req.json()?)?;
    let now = env.ctx.now_ms;
    let id = new_id(now)?;
    let url_ttl_ms = match &env.config.storage {
        Storage::S3(s3) => s3.url_ttl_secs.saturating_mul(1000) as i64,
        Storage::Mysql => 0,
    };
    let pending = Pending {
        object_key: incoming_key(&id),
        id,
        user_id: who.user_id.clone(),
        // Empty: named after the detected type at completion.
        filename: announced.filename.unwrap_or_default(),
        size: announced.size,
        sha256: announced.sha256,
        visibility: announced.visibility,
        created_at_ms: now,
        expires_at_ms: now
            .saturating_add(url_ttl_ms)
            .saturating_add(COMPLETE_GRACE_MS),
    };
    env.repo.announce(&pending, env.config.quota_bytes)?;
    let put = store.presign_put(&pending.object_key, pending.size, &pending.sha256, now);
    let body = PresignJson {
        id: &pending.id,
        method: "PUT",
        url: &put.url,
        headers: put.headers.iter().map(|(n, v)| (*n, v.as_str())).collect(),
        expires_at: rfc3339(put.expires_at_ms),
        complete_url: format!("/api/v1/uploads/{}/complete", pending.id),
    };
    // 200, not 201: nothing is created until `complete`.
    Ok(Response::json(200, &body).with_header("cache-control", "no-store"))
}

fn complete(env: &Env, id: &str) -> Result<Response, ApiError> {
    let who = principal(env)?;
    let store = bucket(env)?;
    if !is_valid_id(id) {
        return Err(ApiError::NotFound);
    }
    let Some(pending) = env.repo.find_pending(id)? else {
        return completed_already(env, who, id);
    };
    if !who.may_access_user(&pending.user_id) {
        return Err(ApiError::NotFound);
    }
    if env.ctx.now_ms > pending.expires_at_ms {
        return Err(refuse(
            env,
            store,
            &pending,
            None,
            ApiError::InvalidState("The direct upload expired; announce it again.".into()),
        ));
    }
    if store.head(&pending.object_key)?.is_none() {
        return Err(ApiError::InvalidState(
            "The file has not been uploaded yet: PUT it to the presigned URL first.".into(),
        ));
    }
    // The client's presigned URL can still write `incoming/<id>`: check and
    // serve a copy under a fresh key no client can write, so nothing put
    // after the checks is ever served. (A fresh key per attempt: a
    // concurrent completion never overwrites the copy another one checked.)
    let key = object_key(&new_id(env.ctx.now_ms)?);
    store.copy(&pending.object_key, &key, &UNCHECKED)?;
    let head = store
        .head(&key)?
        .ok_or_else(|| ApiError::Unavailable(format!("object store: copy {key} is missing")))?;
    let upload = match check_object(env, store, &pending, &key, head.size, head.sha256) {
        Ok(upload) => upload,
        // The store failing is not the file's fault: keep it for a retry.
        Err(e @ ApiError::Unavailable(_)) => {
            forget_object(store, &key);
            return Err(e);
        }
        Err(refusal) => return Err(refuse(env, store, &pending, Some(&key), refusal)),
    };
    // Checked: the copy takes the headers decided from its bytes, in place
    // (only the metadata changes), before anything refers to it.
    if let Err(e) = store.copy(&key, &key, &object_served(&upload)) {
        forget_object(store, &key);
        return Err(e);
    }
    let stored = match env.repo.complete(&pending, &upload, &key) {
        // Another request completed it meanwhile: its copy is the live one.
        Err(ApiError::NotFound) => {
            forget_object(store, &key);
            return completed_already(env, who, id);
        }
        other => other?,
    };
    if stored == Stored::Shared {
        forget_object(store, &key);
    }
    forget_object(store, &pending.object_key);
    Ok(created_answer(&upload))
}

/// The answer to completing an upload that is live already (a retry after a
/// lost answer, or a concurrent completion): the same 201.
fn completed_already(env: &Env, who: &Principal, id: &str) -> Result<Response, ApiError> {
    let upload = visible_to(env.repo.find(id)?.ok_or(ApiError::NotFound)?, who)?;
    Ok(created_answer(&upload))
}

/// Checks the object `key` of a direct upload as a raw upload is checked,
/// and gives the upload it becomes.
fn check_object(
    env: &Env,
    store: &dyn ObjectStore,
    pending: &Pending,
    key: &str,
    size: u64,
    sha256: Option<String>,
) -> Result<Upload, ApiError> {
    if size != pending.size {
        return Err(ApiError::BadRequest(format!(
            "The uploaded file has {size} bytes; {} were announced.",
            pending.size
        )));
    }
    let prefix = store.read_prefix(key, SNIFF_BYTES)?;
    // A file no longer than the prefix is all there: judged whole, so text
    // cut inside a multi-byte character is not text (a prefix may end there).
    let mut kind = if size <= SNIFF_BYTES {
        Kind::detect(&prefix)
    } else {
        Kind::detect_prefix(&prefix)
    }
    .ok_or_else(unsupported_type)?;
    let sha256 = match sha256 {
        Some(sha256) => sha256,
        None => store.sha256(key)?,
    };
    if sha256 != pending.sha256 {
        return Err(ApiError::BadRequest(
            "The uploaded file's SHA-256 is not the announced one.".into(),
        ));
    }
    if kind == Kind::Text && size > SNIFF_BYTES {
        // Text is text all the way through: read it whole, within the
        // limit a raw upload has.
        let max = env.config.max_upload_bytes;
        if size > max as u64 {
            return Err(ApiError::PayloadTooLarge { limit: max as u64 });
        }
        kind = Kind::detect(&store.read(key)?).ok_or_else(unsupported_type)?;
    }
    let filename = match pending.filename.as_str() {
        "" => kind.default_filename(),
        name => name.to_string(),
    };
    check_extension(&filename, kind)?;
    Ok(Upload {
        id: pending.id.clone(),
        user_id: pending.user_id.clone(),
        filename,
        content_type: kind.content_type().to_string(),
        size,
        sha256,
        visibility: pending.visibility,
        created_at_ms: env.ctx.now_ms,
    })
}

/// Deletes what a refused direct upload put in the bucket (the client's
/// object and the checked copy) and forgets its announcement, then gives the
/// refusal; if the store cannot delete, 503 and the announcement stays for a
/// retry.
fn refuse(
    env: &Env,
    store: &dyn ObjectStore,
    pending: &Pending,
    copy: Option<&str>,
    refusal: ApiError,
) -> ApiError {
    for key in copy.into_iter().chain([pending.object_key.as_str()]) {
        if let Err(e) = store.delete(key) {
            return e;
        }
    }
    match env.repo.discard(&pending.id) {
        Ok(_) => refusal,
        Err(e) => e,
    }
}

/// 201 with the upload, as a raw upload answers.
fn created_answer(upload: &Upload) -> Response {
    Response::json(201, &UploadJson::from(upload))
        .with_header("location", &format!("/api/v1/uploads/{}", upload.id))
        .with_header("cache-control", "no-store")
}
