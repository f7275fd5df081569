//! `multipart/form-data` parsing: the one `file` part, and client errors
//! (never a panic) for anything else.

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
