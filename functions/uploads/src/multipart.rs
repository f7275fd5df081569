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
mod tests {
    use super::*;
    use proptest::prelude::*;
    use shared::testing::hostile_text;

    const B: &str = "X-BOUNDARY-123";

    /// A part: name, filename, Content-Type, data.
    type Part<'a> = (&'a str, Option<&'a str>, Option<&'a str>, &'a [u8]);

    fn form(parts: &[Part]) -> Vec<u8> {
        let mut body = Vec::new();
        for (name, filename, content_type, data) in parts {
            body.extend_from_slice(format!("--{B}\r\n").as_bytes());
            let mut disposition = format!("Content-Disposition: form-data; name=\"{name}\"");
            if let Some(f) = filename {
                disposition.push_str(&format!("; filename=\"{f}\""));
            }
            body.extend_from_slice(disposition.as_bytes());
            body.extend_from_slice(b"\r\n");
            if let Some(ct) = content_type {
                body.extend_from_slice(format!("Content-Type: {ct}\r\n").as_bytes());
            }
            body.extend_from_slice(b"\r\n");
            body.extend_from_slice(data);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{B}--\r\n").as_bytes());
        body
    }

    #[test]
    fn boundary_is_read_from_multipart_content_type_only() {
        assert_eq!(
            boundary(Some("multipart/form-data; boundary=abc"))
                .unwrap()
                .unwrap(),
            "abc"
        );
        assert!(boundary(Some("image/png")).is_none());
        assert!(boundary(None).is_none());
        assert_eq!(
            boundary(Some("multipart/form-data"))
                .unwrap()
                .unwrap_err()
                .status(),
            400
        );
    }

    #[test]
    fn file_part_is_extracted_byte_for_byte() {
        let data: Vec<u8> = (0..=255u8).cycle().take(200_000).collect();
        let body = form(&[("file", Some("a.bin"), Some("Image/PNG"), &data)]);
        let part = parse(&body, B, 1 << 20).unwrap();
        assert_eq!(part.bytes, data);
        assert_eq!(part.filename.as_deref(), Some("a.bin"));
        assert_eq!(part.content_type.as_deref(), Some("image/png"));
    }

    #[test]
    fn part_without_filename_or_type_is_accepted() {
        let body = form(&[("file", None, None, b"hello")]);
        let part = parse(&body, B, 100).unwrap();
        assert_eq!(part.bytes, b"hello");
        assert_eq!(part.filename, None);
        assert_eq!(part.content_type, None);
    }

    #[test]
    fn file_over_the_limit_is_413_and_at_the_limit_is_accepted() {
        let body = form(&[("file", None, None, &[b'a'; 101])]);
        let err = parse(&body, B, 100).unwrap_err();
        assert_eq!(err, ApiError::PayloadTooLarge { limit: 100 });
        let body = form(&[("file", None, None, &[b'a'; 100])]);
        assert_eq!(parse(&body, B, 100).unwrap().bytes.len(), 100);
    }

    #[test]
    fn other_parts_are_400() {
        let body = form(&[("file", None, None, b"a"), ("note", None, None, b"b")]);
        assert_eq!(parse(&body, B, 100).unwrap_err().status(), 400);
        let body = form(&[("file", None, None, b"a"), ("file", None, None, b"b")]);
        assert_eq!(parse(&body, B, 100).unwrap_err().status(), 400);
        let body = form(&[("other", None, None, b"a")]);
        assert_eq!(parse(&body, B, 100).unwrap_err().status(), 400);
    }

    #[test]
    fn form_without_parts_is_400() {
        let body = format!("--{B}--\r\n");
        assert_eq!(parse(body.as_bytes(), B, 100).unwrap_err().status(), 400);
    }

    #[test]
    fn truncated_body_is_400() {
        let body = form(&[("file", None, None, b"hello world")]);
        let cut = &body[..body.len() - 20];
        assert_eq!(parse(cut, B, 100).unwrap_err().status(), 400);
    }

    /// A boundary as a hostile client may declare it: hostile text, printable
    /// ASCII, or the `B` the well-formed bodies of these tests use.
    fn any_boundary() -> impl Strategy<Value = String> {
        prop_oneof![hostile_text(), "[ -~]{0,72}", Just(B.to_string()),]
    }

    /// A body a hostile client may send: random bytes, or a form whose
    /// pieces are cut, spliced and mixed with random bytes.
    fn any_body() -> impl Strategy<Value = Vec<u8>> {
        let piece = prop_oneof![
            any::<Vec<u8>>(),
            hostile_text().prop_map(String::into_bytes),
            Just(format!("--{B}\r\n").into_bytes()),
            Just(format!("\r\n--{B}--\r\n").into_bytes()),
            Just(b"Content-Disposition: form-data; name=\"file\"; filename=\"".to_vec()),
            Just(b"Content-Type: ".to_vec()),
            Just(b"\r\n\r\n".to_vec()),
        ];
        prop::collection::vec(piece, 0..12).prop_map(|pieces| pieces.concat())
    }

    fn is_client_error(e: &ApiError) -> bool {
        matches!(e.status(), 400 | 413 | 415)
    }

    proptest! {
        #[test]
        fn any_content_type_is_read_without_panicking(content_type in hostile_text()) {
            let _ = boundary(Some(&content_type));
        }

        #[test]
        fn a_declared_boundary_is_found_or_refused_with_400(
            params in hostile_text(),
            essence in prop::sample::select(vec![
                "multipart/form-data",
                "Multipart/Form-Data",
                " multipart/form-data ",
            ]),
        ) {
            let content_type = format!("{essence};{params}");
            match boundary(Some(&content_type)) {
                Some(Ok(_)) => {}
                Some(Err(e)) => prop_assert_eq!(e.status(), 400),
                None => prop_assert!(false, "{:?} is multipart", content_type),
            }
        }

        #[test]
        fn any_body_with_any_boundary_is_parsed_or_refused_without_panicking(
            body in any_body(),
            boundary in any_boundary(),
            max in prop_oneof![0..64usize, Just(1usize << 20)],
        ) {
            match parse(&body, &boundary, max) {
                Ok(part) => prop_assert!(part.bytes.len() <= max),
                Err(e) => prop_assert!(is_client_error(&e), "{:?}", e),
            }
        }

        #[test]
        fn a_non_ascii_filename_and_any_bytes_round_trip(
            name in hostile_text(),
            non_ascii in "[\\u{80}-\\u{10ffff}]",
            data in any::<Vec<u8>>(),
            content_type in prop::sample::select(vec!["image/png", "Text/Plain", "application/pdf"]),
        ) {
            // As browsers send it (WHATWG HTML, multipart/form-data encoding):
            // UTF-8 as is; they percent-encode `"` and line breaks, so no
            // quote, backslash (it would escape the closing quote) or
            // control character stands in the quoted name.
            let name: String = format!("{non_ascii}{name}")
                .chars()
                .filter(|c| !c.is_control() && !matches!(c, '"' | '\\'))
                .collect();
            let body = form(&[("file", Some(&name), Some(content_type), &data)]);
            let part = parse(&body, B, data.len()).unwrap();
            prop_assert_eq!(part.filename, Some(name));
            prop_assert_eq!(part.content_type, Some(content_type.to_ascii_lowercase()));
            prop_assert_eq!(part.bytes, data);
        }

        #[test]
        fn a_file_over_the_limit_is_413_whatever_its_bytes(
            data in prop::collection::vec(any::<u8>(), 1..512),
            short_by in 1..512usize,
        ) {
            let max = data.len().saturating_sub(short_by);
            let body = form(&[("file", Some("a.bin"), None, &data)]);
            prop_assert_eq!(
                parse(&body, B, max).unwrap_err(),
                ApiError::PayloadTooLarge { limit: max as u64 }
            );
        }
    }
}
