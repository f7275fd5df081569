//! The routes of the uploads component, as plain Rust over the ports
//! ([`Ports`]): the router, the admission of a request head, and what the
//! flows share. Each flow is a module of its own: `raw` (a file in the
//! request), `direct` (announced, put straight into the bucket, completed),
//! `content` (serving the bytes) and `metadata` (list, show, delete).
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
//! Decisions where docs/API.md is silent:
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
//! With `upload_storage = s3` ([`crate::store`]) an object is stored with the
//! headers decided from its checked bytes (`object_served`), never a
//! client's; each flow's module says how it uses the bucket.

use serde::Serialize;
use shared::auth::{authenticate, Principal};
use shared::cache::Cache;
use shared::context::RequestContext;
use shared::http::{Method, Request, Response};
use shared::id::is_valid_id;
use shared::kv::KeyValue;
use shared::router::Router;
use shared::time::rfc3339;
use shared::ApiError;

pub use crate::config::{Config, MULTIPART_ALLOWANCE};
use crate::detect::Kind;
use crate::model::{Upload, Visibility};
use crate::repo::UploadRepo;
use crate::store::{ObjectStore, ServedAs};

mod content;
mod direct;
mod metadata;
mod raw;

pub use direct::{COMPLETE_GRACE_MS, MAX_OBJECT_BYTES, SNIFF_BYTES};

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

/// The ports a request is handled over.
#[derive(Clone, Copy)]
pub struct Ports<'a> {
    /// Token revocation marks, and the metadata cache (`up:<id>`).
    pub kv: &'a dyn KeyValue,
    /// Upload metadata and, with MySQL storage, the bytes.
    pub repo: &'a dyn UploadRepo,
    /// The bucket, with `upload_storage = s3`; `None` keeps bytes in MySQL.
    pub store: Option<&'a dyn ObjectStore>,
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
    ports: &Ports<'_>,
    admitted: Admitted,
) -> Result<Response, ApiError> {
    let Admitted { route, id, caller } = admitted;
    let env = Env {
        ctx,
        req,
        config,
        kv: ports.kv,
        repo: ports.repo,
        store: ports.store,
        caller,
    };
    match route {
        Route::Create => raw::create(&env),
        Route::List => metadata::list(&env),
        Route::Get => metadata::get(&env, &id),
        Route::Content => content::content(&env, &id),
        Route::Delete => metadata::delete(&env, &id),
        Route::Presign => direct::presign(&env),
        Route::Complete => direct::complete(&env, &id),
    }
}

/// [`admit`] then [`handle_admitted`], for a request whose body is already
/// in hand (unit tests).
pub fn handle(
    ctx: &RequestContext,
    req: &Request,
    config: &Config,
    ports: &Ports<'_>,
) -> Result<Response, ApiError> {
    let admitted = admit(ctx, req, config, ports.kv)?;
    handle_admitted(ctx, req, config, ports, admitted)
}

/// The upload JSON of docs/API.md.
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

/// 201 with the upload: the answer of every flow that creates one.
fn created_answer(upload: &Upload) -> Response {
    Response::json(201, &UploadJson::from(upload))
        .with_header("location", &format!("/api/v1/uploads/{}", upload.id))
        .with_header("cache-control", "no-store")
}

/// The object key of a blob: `objects/` and a fresh id (a raw upload's own).
fn object_key(id: &str) -> String {
    format!("objects/{id}")
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

#[cfg(test)]
mod tests;
