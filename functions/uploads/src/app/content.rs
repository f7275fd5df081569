//! Serving an upload's bytes (`GET`/`HEAD /api/v1/uploads/{id}/content`):
//! public content to anyone, private content to its owner and admins, with
//! a strong ETag answered `304` from cached metadata alone.
//!
//! With `upload_storage = s3`, content answers `302`: to `cdn_base_url` +
//! key for public uploads when set, otherwise to a presigned `GET`
//! (`presign_ttl_secs`) that makes the store answer with this API's
//! `Content-Type`, `Content-Disposition` and `Cache-Control`.
//! `If-None-Match` is still answered `304` here, and the redirect itself is
//! `no-store` (a presigned URL expires).

use shared::http::{Method, Response};
use shared::ApiError;

use super::{load, visible_to, Env, PRIVATE_CACHE_CONTROL, PUBLIC_CACHE_CONTROL};
use crate::detect::Kind;
use crate::model::{Content, Visibility};
use crate::names::{content_disposition, etag};
use crate::store::ServedAs;

pub(super) fn content(env: &Env, id: &str) -> Result<Response, ApiError> {
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
