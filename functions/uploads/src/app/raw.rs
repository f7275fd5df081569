//! Uploads whose bytes come in the request: a raw body, or the one `file`
//! part of a `multipart/form-data` body. The type is detected from the bytes
//! and every claim (`Content-Type`, the part's type, the filename's
//! extension) checked against it before anything is stored.
//!
//! With `upload_storage = s3`, the bytes go to the bucket (under a key of the
//! new upload's id) only when no blob has the same content; the quota is
//! checked before anything is sent.

use std::borrow::Cow;

use sha2::{Digest, Sha256};
use shared::http::Response;
use shared::id::new_id;
use shared::{ApiError, FieldError};

use super::{
    created_answer, forget_object, object_key, object_served, principal, unsupported_type, Env,
};
use crate::detect::{check_claim, check_extension, Kind};
use crate::model::{NewBytes, Stored, Upload, Visibility};
use crate::multipart;
use crate::names::clean;

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

pub(super) fn create(env: &Env) -> Result<Response, ApiError> {
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
