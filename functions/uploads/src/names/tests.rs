//! Filename sanitising and the `Content-Disposition`/ETag headers built from it.

use super::*;
use proptest::prelude::*;
use shared::testing::hostile_text;

#[test]
fn path_components_are_stripped() {
    assert_eq!(sanitize("../../etc/passwd"), "passwd");
    assert_eq!(sanitize("C:\\Users\\ann\\photo.png"), "photo.png");
    assert_eq!(sanitize("..\\..\\boot.ini"), "boot.ini");
    assert_eq!(sanitize("a/b\\c/d.txt"), "d.txt");
}

#[test]
fn control_quote_and_unsafe_characters_are_removed() {
    assert_eq!(sanitize("re\"port\r\nX-Evil: 1.pdf"), "report X-Evil 1.pdf");
    assert_eq!(sanitize("a;b%2e'c`.txt"), "ab2ec.txt");
    assert_eq!(sanitize("tab\there\u{7f}.txt"), "tab here.txt");
}

#[test]
fn bidi_overrides_and_zero_width_characters_are_removed() {
    assert_eq!(sanitize("invoice\u{202E}fdp.exe"), "invoicefdp.exe");
    assert_eq!(sanitize("a\u{200B}b\u{FEFF}.png"), "ab.png");
}

#[test]
fn leading_dots_and_trailing_dots_and_spaces_go() {
    assert_eq!(sanitize(".htaccess"), "htaccess");
    assert_eq!(sanitize("  name.txt. . "), "name.txt");
    assert_eq!(sanitize("a    b.txt"), "a b.txt");
}

#[test]
fn empty_or_all_unsafe_becomes_upload() {
    assert_eq!(sanitize(""), "upload");
    assert_eq!(sanitize(".."), "upload");
    assert_eq!(sanitize("../"), "upload");
    assert_eq!(sanitize("\"\"\u{1}"), "upload");
}

#[test]
fn long_names_are_cut_to_255_bytes_keeping_the_extension() {
    let long = format!("{}.png", "a".repeat(400));
    let s = sanitize(&long);
    assert_eq!(s.len(), 255);
    assert!(s.ends_with("aaa.png"));
    // Multi-byte characters are never split.
    let s = sanitize(&format!("{}.txt", "é".repeat(300)));
    assert!(s.len() <= 255);
    assert!(s.ends_with(".txt"));
    assert!(s.starts_with('é'));
}

#[test]
fn long_name_with_long_extension_is_cut_plainly() {
    let s = sanitize(&format!("x.{}", "b".repeat(300)));
    assert_eq!(s.len(), 255);
}

#[test]
fn unicode_names_survive() {
    assert_eq!(sanitize("résumé 2024.pdf"), "résumé 2024.pdf");
}

#[test]
fn ascii_disposition_has_only_filename() {
    assert_eq!(
        content_disposition("a b.png", true),
        "inline; filename=\"a b.png\""
    );
}

#[test]
fn non_ascii_disposition_adds_rfc5987_filename_star() {
    assert_eq!(
        content_disposition("résumé.pdf", false),
        "attachment; filename=\"r_sum_.pdf\"; filename*=UTF-8''r%C3%A9sum%C3%A9.pdf"
    );
}

#[test]
fn etag_is_the_quoted_sha256() {
    assert_eq!(etag("ab12"), "\"ab12\"");
}

/// Hostile names, some long enough to be cut to [`MAX_FILENAME_BYTES`]:
/// repeated hostile text, and long stems with a short or long extension.
fn hostile_name() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => hostile_text(),
        2 => (hostile_text(), 1..16usize).prop_map(|(s, n)| s.repeat(n)),
        2 => (hostile_text(), 1..16usize, hostile_text())
            .prop_map(|(stem, n, ext)| format!("{}.{ext}", stem.repeat(n))),
        1 => any::<String>(),
    ]
}

/// The quoted `filename*=UTF-8''…` value of a `Content-Disposition`, decoded.
fn decoded_filename_star(header: &str) -> Option<String> {
    let (_, encoded) = header.split_once("; filename*=UTF-8''")?;
    percent_encoding::percent_decode_str(encoded)
        .decode_utf8()
        .ok()
        .map(|s| s.into_owned())
}

proptest! {
    #[test]
    fn any_name_is_sanitized_without_panicking(raw in hostile_name()) {
        let _ = clean(&raw);
        let _ = sanitize(&raw);
    }

    #[test]
    fn sanitizing_twice_changes_nothing(raw in hostile_name()) {
        let once = sanitize(&raw);
        prop_assert_eq!(sanitize(&once), once.clone(), "from {:?}", raw);
        prop_assert_eq!(clean(&once), Some(once));
    }

    #[test]
    fn a_sanitized_name_is_one_harmless_segment(raw in hostile_name()) {
        let name = sanitize(&raw);
        prop_assert!(!name.is_empty());
        prop_assert!(name.len() <= MAX_FILENAME_BYTES, "{} bytes: {:?}", name.len(), name);
        prop_assert!(!name.contains(['/', '\\']), "{:?}", name);
        for c in name.chars() {
            prop_assert!(!shared::domain::is_hidden_character(c), "{:?} in {:?}", c, name);
            prop_assert!(!UNSAFE.contains(&c), "{:?} in {:?}", c, name);
            prop_assert!(c == ' ' || !c.is_whitespace(), "{:?} in {:?}", c, name);
        }
        prop_assert!(!name.starts_with(['.', ' ']), "{:?}", name);
        prop_assert!(!name.ends_with(['.', ' ']), "{:?}", name);
        prop_assert!(!name.contains("  "), "{:?}", name);
    }

    #[test]
    fn clean_is_sanitize_without_the_default(raw in hostile_name()) {
        match clean(&raw) {
            Some(name) => prop_assert_eq!(sanitize(&raw), name),
            None => prop_assert_eq!(sanitize(&raw), DEFAULT_FILENAME),
        }
    }

    #[test]
    fn a_short_extension_survives_shortening(
        stem in "[a-zA-Z0-9\\u{e9}\\u{674e}\\u{1f980}]{200,300}",
        ext in "[a-z0-9]{1,16}",
    ) {
        let name = sanitize(&format!("{stem}.{ext}"));
        prop_assert!(name.len() <= MAX_FILENAME_BYTES);
        let suffix = format!(".{ext}");
        prop_assert!(name.ends_with(&suffix), "{:?}", name);
    }

    #[test]
    fn content_disposition_is_always_a_valid_header_value(
        raw in hostile_name(),
        inline in any::<bool>(),
    ) {
        for name in [raw.clone(), sanitize(&raw)] {
            let header = content_disposition(&name, inline);
            prop_assert!(
                header.bytes().all(|b| b == b' ' || b.is_ascii_graphic()),
                "{:?} gave {:?}", name, header
            );
            let disposition = if inline { "inline; " } else { "attachment; " };
            prop_assert!(header.starts_with(disposition), "{:?}", header);
        }
    }

    #[test]
    fn filename_star_decodes_back_to_a_non_ascii_name(
        raw in hostile_name(),
        inline in any::<bool>(),
    ) {
        let name = sanitize(&raw);
        let header = content_disposition(&name, inline);
        if name.is_ascii() {
            let disposition = if inline { "inline" } else { "attachment" };
            prop_assert_eq!(header, format!("{disposition}; filename=\"{name}\""));
        } else {
            prop_assert_eq!(decoded_filename_star(&header), Some(name));
        }
    }

    #[test]
    fn filename_star_decodes_back_to_any_non_ascii_text(
        before in any::<String>(),
        non_ascii in "[\\u{80}-\\u{10ffff}]",
        after in hostile_text(),
    ) {
        let text = format!("{before}{non_ascii}{after}");
        let header = content_disposition(&text, false);
        prop_assert_eq!(decoded_filename_star(&header), Some(text));
    }



}
