//! `multipart/form-data` uploads: exactly one part, named `file`.
//!
//! Parsing is `multer`'s (the parser behind axum and rocket). multer reads an
//! async `Stream`; the body is already in memory (read within the limit by
//! `shared::spin::serve`), so it is fed as a stream of 64 KiB slices that is
//! always ready, and the parse is polled to completion right here — no
//! executor, no runtime. Feeding slices keeps multer's own buffer small; the
//! file's bytes are copied once, into [`FilePart::bytes`], and that copy is
//! cut off at the limit.

use std::convert::Infallible;

use bytes::Bytes;
use futures_util::{stream, FutureExt as _};
use shared::ApiError;

/// Size of the slices the body is fed to the parser in.
const FEED_CHUNK: usize = 64 * 1024;

/// The name of the one part an upload form carries.
pub const FILE_FIELD: &str = "file";

/// The `file` part of a form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilePart {
    /// The part's `Content-Disposition` filename, unsanitised.
    pub filename: Option<String>,
    /// The part's `Content-Type` essence (a claim, checked later).
    pub content_type: Option<String>,
    /// The file's bytes.
    pub bytes: Vec<u8>,
}

/// The boundary of a `multipart/form-data` request, `None` when the request
/// is not multipart (its body is then the file itself), or 400 when it is
/// multipart without a usable boundary.
pub fn boundary(content_type: Option<&str>) -> Option<Result<String, ApiError>> {
    let content_type = content_type?;
    if crate::detect::essence(content_type) != "multipart/form-data" {
        return None;
    }
    Some(multer::parse_boundary(content_type).map_err(|_| {
        ApiError::BadRequest("The multipart/form-data Content-Type has no valid boundary.".into())
    }))
}

/// Extracts the one `file` part of `body`. Any other part, a second `file`
/// part or none at all is 400; a file over `max_file_bytes` is 413; a body
/// that is not well-formed multipart is 400.
pub fn parse(body: &[u8], boundary: &str, max_file_bytes: usize) -> Result<FilePart, ApiError> {
    let chunks = stream::iter(
        body.chunks(FEED_CHUNK)
            .map(|chunk| Ok::<Bytes, Infallible>(Bytes::copy_from_slice(chunk))),
    );
    let multipart = multer::Multipart::new(chunks, boundary.to_string());
    // Every byte is already in memory: the parse completes on its first poll,
    // and `None` would mean it waited on something (a bug).
    read_file_part(multipart, max_file_bytes)
        .now_or_never()
        .unwrap_or_else(|| {
            Err(ApiError::Internal(
                "multipart parser waited on an in-memory body".into(),
            ))
        })
}

async fn read_file_part(
    mut multipart: multer::Multipart<'_>,
    max_file_bytes: usize,
) -> Result<FilePart, ApiError> {
    let mut found: Option<FilePart> = None;
    while let Some(mut field) = multipart.next_field().await.map_err(malformed)? {
        match field.name() {
            Some(FILE_FIELD) if found.is_none() => {}
            Some(FILE_FIELD) => {
                return Err(ApiError::BadRequest(
                    "The form has more than one part named \"file\".".into(),
                ))
            }
            Some(other) => {
                return Err(ApiError::BadRequest(format!(
                    "Unexpected form part {:?}; send exactly one part named \"file\".",
                    truncate(other, 64)
                )))
            }
            None => {
                return Err(ApiError::BadRequest(
                    "A form part has no name; send exactly one part named \"file\".".into(),
                ))
            }
        }
        let filename = field.file_name().map(str::to_string);
        let content_type = field
            .content_type()
            .map(|m| m.essence_str().to_ascii_lowercase());
        let mut bytes = Vec::new();
        while let Some(chunk) = field.chunk().await.map_err(malformed)? {
            if bytes.len() + chunk.len() > max_file_bytes {
                return Err(ApiError::PayloadTooLarge {
                    limit: max_file_bytes as u64,
                });
            }
            bytes.extend_from_slice(&chunk);
        }
        found = Some(FilePart {
            filename,
            content_type,
            bytes,
        });
    }
    found.ok_or_else(|| ApiError::BadRequest("The form has no part named \"file\".".into()))
}

fn malformed(e: multer::Error) -> ApiError {
    ApiError::BadRequest(format!("The multipart/form-data body is malformed: {e}."))
}

fn truncate(s: &str, max_chars: usize) -> String {
    s.chars().take(max_chars).collect()
}

#[cfg(test)]
mod tests;
