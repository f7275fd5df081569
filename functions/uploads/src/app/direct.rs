//! Direct uploads, with `upload_storage = s3`: the client puts the bytes
//! straight into the bucket, so they never pass through the component.
//!
//! * A direct upload is announced (`presign`: its size counts against the
//!   quota from then until `complete`, or until [`COMPLETE_GRACE_MS`] after
//!   its presigned `PUT` (`presign_ttl_secs`) expired), put by the
//!   client, then checked by `complete` with the rules of a raw upload: the
//!   size and SHA-256 the store reports (or computes by reading the object,
//!   for stores that keep no checksum) against the announced ones, the type
//!   from the first [`SNIFF_BYTES`] bytes, and a text file in full (so text
//!   is bounded by `upload_max_bytes`). An object that fails is deleted and
//!   the announcement forgotten; one not yet there leaves both (409).
//! * The client puts it under `incoming/<id>` and, at `complete`, it is
//!   copied to a fresh key under `objects/` that only the component writes;
//!   the checks run on that copy, so bytes put again while the presigned URL
//!   lives are never served.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use shared::auth::Principal;
use shared::http::Response;
use shared::id::{is_valid_id, new_id};
use shared::time::rfc3339;
use shared::{ApiError, FieldError};

use super::{
    created_answer, forget_object, object_key, object_served, principal, unsupported_type,
    visible_to, Env,
};
use crate::config::Storage;
use crate::detect::{check_extension, Kind};
use crate::model::{Pending, Stored, Upload, Visibility};
use crate::names::clean;
use crate::store::{ObjectStore, ServedAs, UNCHECKED_TYPE};

/// How many leading bytes of an object decide its type.
pub const SNIFF_BYTES: u64 = 64 * 1024;

/// The largest object one S3 `PUT` may create: 5 GiB.
pub const MAX_OBJECT_BYTES: u64 = 5 * 1024 * 1024 * 1024;

/// How long past its presigned `PUT` an announced direct upload may still be
/// completed (a large file may still be arriving when the URL expires).
pub const COMPLETE_GRACE_MS: i64 = 15 * 60 * 1000;

/// How an object whose bytes are not checked yet is stored: as nothing a
/// browser renders or a cache keeps.
const UNCHECKED: ServedAs<'static> = ServedAs {
    content_type: UNCHECKED_TYPE,
    content_disposition: "attachment",
    cache_control: "no-store",
};

/// Where a client puts the bytes of direct upload `id` (never served).
fn incoming_key(id: &str) -> String {
    format!("incoming/{id}")
}

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

pub(super) fn presign(env: &Env) -> Result<Response, ApiError> {
    let who = principal(env)?;
    let store = bucket(env)?;
    let announced = Announcement::parse(env.req.json()?)?;
    let now = env.ctx.now_ms;
    let id = new_id(now)?;
    let url_ttl_ms = match &env.config.storage {
        Storage::S3(s3) => s3.url_ttl_secs.saturating_mul(1000) as i64,
        Storage::Database => 0,
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

pub(super) fn complete(env: &Env, id: &str) -> Result<Response, ApiError> {
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
