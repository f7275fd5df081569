//! Type detection from bytes and the checks of a client's claims against it.

use super::*;
use proptest::prelude::*;
use shared::testing::hostile_text;

const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
const JPEG: &[u8] = b"\xff\xd8\xff\xe0\0\x10JFIF\0";
const WEBP: &[u8] = b"RIFF\x24\0\0\0WEBPVP8 ";

#[test]
fn signatures_are_recognised() {
    assert_eq!(Kind::detect(PNG), Some(Kind::Png));
    assert_eq!(Kind::detect(JPEG), Some(Kind::Jpeg));
    assert_eq!(Kind::detect(b"GIF89a\x01\0\x01\0"), Some(Kind::Gif));
    assert_eq!(Kind::detect(b"GIF87a\x01\0\x01\0"), Some(Kind::Gif));
    assert_eq!(Kind::detect(WEBP), Some(Kind::Webp));
    assert_eq!(
        Kind::detect(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n"),
        Some(Kind::Pdf)
    );
}

#[test]
fn a_prefix_cut_inside_a_character_is_still_text_but_binary_is_not() {
    let text = "ab€".as_bytes();
    assert_eq!(Kind::detect(&text[..3]), None);
    assert_eq!(Kind::detect_prefix(&text[..3]), Some(Kind::Text));
    assert_eq!(Kind::detect_prefix(b"ab\0cd"), None);
    assert_eq!(Kind::detect_prefix(b"\xff\xfe\xfd"), None);
    assert_eq!(Kind::detect_prefix(&PNG[..8]), Some(Kind::Png));
}

#[test]
fn utf8_text_is_text() {
    assert_eq!(
        Kind::detect("héllo\tworld\r\n€ 😀\n".as_bytes()),
        Some(Kind::Text)
    );
}

#[test]
fn executables_are_refused() {
    assert_eq!(Kind::detect(b"\x7fELF\x02\x01\x01\0\0\0"), None);
    // Valid UTF-8 but for the DEL byte: still not text.
    assert_eq!(Kind::detect(b"\x7fELF"), None);
    assert_eq!(Kind::detect(b"MZ\x90\0\x03\0\0\0"), None);
}

#[test]
fn text_with_nul_or_invalid_utf8_or_escapes_is_refused() {
    assert_eq!(Kind::detect(b"abc\0def"), None);
    assert_eq!(Kind::detect(b"caf\xe9"), None);
    assert_eq!(Kind::detect(b"red \x1b[31m text"), None);
}

#[test]
fn truncated_signatures_are_not_their_type() {
    assert_eq!(Kind::detect(b"RIFF\0\0\0\0WAVE"), None);
    assert_eq!(Kind::detect(b"\x89PNG"), None);
    // A PDF header after leading bytes is not a PDF (polyglot guard); it is text.
    assert_eq!(Kind::detect(b" %PDF-1.4"), Some(Kind::Text));
}

#[test]
fn matching_or_neutral_claims_pass() {
    assert!(check_claim(Some("image/png"), Kind::Png).is_ok());
    assert!(check_claim(Some("Image/JPEG; q=1"), Kind::Jpeg).is_ok());
    assert!(check_claim(Some("application/octet-stream"), Kind::Pdf).is_ok());
    assert!(check_claim(Some("application/x-www-form-urlencoded"), Kind::Gif).is_ok());
    assert!(check_claim(None, Kind::Webp).is_ok());
    assert!(check_claim(Some(""), Kind::Webp).is_ok());
    assert!(check_claim(Some("text/csv"), Kind::Text).is_ok());
    assert!(check_claim(Some("text/plain; charset=utf-8"), Kind::Text).is_ok());
}

#[test]
fn contradicting_claims_are_415() {
    let err = check_claim(Some("application/pdf"), Kind::Png).unwrap_err();
    assert_eq!(err.status(), 415);
    assert_eq!(err.code(), "unsupported_media_type");
    assert!(check_claim(Some("text/html"), Kind::Text).is_err());
    assert!(check_claim(Some("image/svg+xml"), Kind::Text).is_err());
    assert!(check_claim(Some("text/plain"), Kind::Png).is_err());
}

#[test]
fn extensions_of_the_detected_kind_pass() {
    assert!(check_extension("photo.png", Kind::Png).is_ok());
    assert!(check_extension("photo.JPG", Kind::Jpeg).is_ok());
    assert!(check_extension("photo.jpeg", Kind::Jpeg).is_ok());
    assert!(check_extension("scan.pdf", Kind::Pdf).is_ok());
    for name in [
        "notes.txt",
        "notes.md",
        "data.csv",
        "app.log",
        "x.json",
        "README",
    ] {
        assert!(check_extension(name, Kind::Text).is_ok(), "{name}");
    }
}

#[test]
fn text_under_an_active_or_unknown_extension_is_415() {
    for name in [
        "a.url",
        "page.html",
        "x.svg",
        "setup.exe",
        "run.sh",
        "a.txt.lnk",
        "a.xyz",
    ] {
        let err = check_extension(name, Kind::Text).unwrap_err();
        assert_eq!(err.status(), 415, "{name}");
    }
}

#[test]
fn extension_naming_another_kind_is_415() {
    assert!(check_extension("photo.pdf", Kind::Png).is_err());
    assert!(check_extension("photo.png", Kind::Text).is_err());
    assert!(check_extension("photo.svg", Kind::Png).is_err());
}

#[test]
fn only_text_may_have_no_extension() {
    assert!(check_extension("noext", Kind::Text).is_ok());
    assert!(check_extension("noext", Kind::Pdf).is_err());
    assert!(check_extension("png", Kind::Png).is_err());
}

#[test]
fn default_names_carry_the_kind_s_extension() {
    assert_eq!(Kind::Png.default_filename(), "upload.png");
    assert_eq!(Kind::Text.default_filename(), "upload.txt");
    for kind in [
        Kind::Png,
        Kind::Jpeg,
        Kind::Gif,
        Kind::Webp,
        Kind::Pdf,
        Kind::Text,
    ] {
        assert!(check_extension(&kind.default_filename(), kind).is_ok());
    }
}

#[test]
fn the_refusal_does_not_echo_the_extension() {
    let err = check_extension("x.s3cr3t", Kind::Text).unwrap_err();
    assert!(!err.log_detail().contains("s3cr3t"));
}

#[test]
fn stored_content_type_maps_back_to_its_kind() {
    for kind in [
        Kind::Png,
        Kind::Jpeg,
        Kind::Gif,
        Kind::Webp,
        Kind::Pdf,
        Kind::Text,
    ] {
        assert_eq!(Kind::from_content_type(kind.content_type()), Some(kind));
    }
    assert!(Kind::is_image(Kind::Webp));
    assert!(!Kind::is_image(Kind::Pdf));
}

fn any_kind() -> impl Strategy<Value = Kind> {
    prop::sample::select(Kind::ALL.to_vec())
}

/// Bytes as a hostile client sends them: random, hostile text, or either
/// behind one of the accepted signatures (or the start of one).
fn any_bytes() -> impl Strategy<Value = Vec<u8>> {
    let signature = prop::sample::select(vec![
        &b""[..],
        PNG,
        JPEG,
        WEBP,
        b"GIF89a",
        b"%PDF-",
        b"RIFF",
        b"\x89PNG",
        b"\xef\xbb\xbf",
    ]);
    let rest = prop_oneof![
        any::<Vec<u8>>(),
        hostile_text().prop_map(String::into_bytes),
    ];
    (signature, rest).prop_map(|(signature, rest)| [signature, &rest].concat())
}

/// Text a detector must call text: any characters but the controls
/// other than tab, line feed, form feed and carriage return.
fn plain_text() -> impl Strategy<Value = String> {
    (hostile_text(), any::<String>()).prop_map(|(a, b)| {
        format!("{a}{b}")
            .chars()
            .filter(|&c| !c.is_control() || matches!(c, '\t' | '\n' | '\r' | '\u{c}'))
            .collect()
    })
}

fn starts_with_a_text_signature(bytes: &[u8]) -> bool {
    bytes.starts_with(b"GIF87a")
        || bytes.starts_with(b"GIF89a")
        || bytes.starts_with(b"%PDF-")
        || (bytes.len() >= 12 && bytes.starts_with(b"RIFF") && &bytes[8..12] == b"WEBP")
}

proptest! {
    #[test]
    fn any_bytes_are_detected_without_panicking(bytes in any_bytes()) {
        let _ = Kind::detect(&bytes);
        for cut in 0..=bytes.len().min(16) {
            let _ = Kind::detect_prefix(&bytes[..cut]);
        }
        let _ = Kind::detect_prefix(&bytes);
    }

    #[test]
    fn what_is_called_text_is_utf8_without_controls(bytes in any_bytes()) {
        if Kind::detect(&bytes) == Some(Kind::Text) {
            let text = std::str::from_utf8(&bytes);
            prop_assert!(text.is_ok(), "{:?}", bytes);
            let text = text.unwrap_or_default();
            prop_assert!(
                !text.chars().any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r' | '\u{c}')),
                "{:?}", text
            );
        }
    }

    #[test]
    fn utf8_text_without_controls_is_text(text in plain_text()) {
        let kind = Kind::detect(text.as_bytes());
        if starts_with_a_text_signature(text.as_bytes()) {
            prop_assert!(kind.is_some());
        } else {
            prop_assert_eq!(kind, Some(Kind::Text), "{:?}", text);
        }
    }

    #[test]
    fn every_prefix_of_a_text_file_is_text(text in plain_text(), cut in any::<prop::sample::Index>()) {
        let bytes = text.as_bytes();
        prop_assume!(Kind::detect(bytes) == Some(Kind::Text));
        let prefix = &bytes[..cut.index(bytes.len() + 1)];
        prop_assert_eq!(Kind::detect_prefix(prefix), Some(Kind::Text), "{:?}", prefix);
    }

    #[test]
    fn a_whole_file_is_its_own_prefix(bytes in any_bytes()) {
        // Unless it ends inside a character, which only a prefix may do.
        let ends_cut = matches!(std::str::from_utf8(&bytes), Err(e) if e.error_len().is_none());
        if !ends_cut {
            prop_assert_eq!(Kind::detect_prefix(&bytes), Kind::detect(&bytes));
        }
    }

    #[test]
    fn a_binary_signature_decides_from_the_first_bytes(bytes in any_bytes(), more in any::<Vec<u8>>()) {
        if let Some(kind) = Kind::detect(&bytes).filter(|k| *k != Kind::Text) {
            let longer = [&bytes[..], &more].concat();
            prop_assert_eq!(Kind::detect(&longer), Some(kind));
            prop_assert_eq!(Kind::detect_prefix(&longer), Some(kind));
        }
    }

    #[test]
    fn any_claim_is_checked_without_panicking(claim in hostile_text(), kind in any_kind()) {
        if let Err(e) = check_claim(Some(&claim), kind) {
            prop_assert_eq!(e.status(), 415);
        }
    }

    #[test]
    fn the_detected_type_is_never_refused_as_a_claim(
        kind in any_kind(),
        params in hostile_text(),
        upper in any::<bool>(),
    ) {
        let essence = kind.content_type().split(';').next().unwrap_or_default();
        let essence = if upper { essence.to_ascii_uppercase() } else { essence.to_string() };
        let claim = format!(" {essence} ;{params}");
        prop_assert!(check_claim(Some(&claim), kind).is_ok(), "{:?}", claim);
    }

    #[test]
    fn a_claim_of_one_kind_refuses_every_other_binary_kind(
        claimed in any_kind(),
        detected in any_kind(),
    ) {
        let claim = claimed.content_type();
        if claimed != detected {
            prop_assert_eq!(check_claim(Some(claim), detected).unwrap_err().status(), 415);
        }
    }

    #[test]
    fn any_filename_is_checked_without_panicking(name in hostile_text(), kind in any_kind()) {
        if let Err(e) = check_extension(&name, kind) {
            prop_assert_eq!(e.status(), 415);
        }
    }

    #[test]
    fn an_allowed_extension_passes_after_any_stem(
        stem in hostile_text(),
        kind in any_kind(),
        pick in any::<prop::sample::Index>(),
        upper in any::<bool>(),
    ) {
        prop_assume!(!stem.is_empty());
        let ext = pick.get(kind.extensions());
        let ext = if upper { ext.to_ascii_uppercase() } else { ext.to_string() };
        let name = format!("{stem}.{ext}");
        prop_assert!(check_extension(&name, kind).is_ok(), "{:?}", name);
    }

    #[test]
    fn an_accepted_filename_has_an_allowed_extension_or_none(
        name in hostile_text(),
        kind in any_kind(),
    ) {
        if check_extension(&name, kind).is_ok() {
            match extension(&name) {
                Some(ext) => prop_assert!(kind.extensions().contains(&ext.as_str()), "{:?}", name),
                None => prop_assert!(kind.allows_no_extension(), "{:?}", name),
            }
        }
    }

    #[test]
    fn a_sanitized_name_keeps_the_extension_check_s_verdict(
        stem in "[a-zA-Z0-9 \\u{e9}\\u{674e}]{1,40}",
        junk in hostile_text(),
        kind in any_kind(),
        pick in any::<prop::sample::Index>(),
    ) {
        // Hidden characters and path junk in front change nothing about
        // the extension a sanitized name ends in.
        prop_assume!(!stem.trim().is_empty());
        let ext = pick.get(kind.extensions());
        let name = crate::names::sanitize(&format!("{junk}/{stem}.{ext}"));
        prop_assert!(name.ends_with(&format!(".{ext}")), "{:?}", name);
        prop_assert!(check_extension(&name, kind).is_ok(), "{:?}", name);
    }
}
