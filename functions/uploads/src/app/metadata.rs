//! The uploads as records: a user's list, one upload's metadata, and
//! deleting one. Every answer depends on who asks, so no HTTP cache may keep
//! it (`Cache-Control: no-store`).
//!
//! Deleting the last upload of a content deletes its object after the
//! commit; if the store is down then, the object is left (logged), never
//! a live upload's bytes.

use shared::cache::Cache;
use shared::domain::{Page, Pagination};
use shared::http::Response;
use shared::ApiError;

use super::{cache_key, forget_object, load, principal, visible_to, Env, UploadJson};
use crate::model::Deleted;

pub(super) fn list(env: &Env) -> Result<Response, ApiError> {
    let who = principal(env)?;
    let pagination = Pagination::from_request(env.req)?;
    let (uploads, total) = env.repo.list_for_user(&who.user_id, pagination)?;
    let items: Vec<UploadJson> = uploads.iter().map(UploadJson::from).collect();
    Ok(Response::json(200, &Page::new(items, pagination, total))
        .with_header("cache-control", "no-store"))
}

pub(super) fn get(env: &Env, id: &str) -> Result<Response, ApiError> {
    let who = principal(env)?;
    let upload = visible_to(load(env, id)?, who)?;
    Ok(Response::json(200, &UploadJson::from(&upload)).with_header("cache-control", "no-store"))
}

pub(super) fn delete(env: &Env, id: &str) -> Result<Response, ApiError> {
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
