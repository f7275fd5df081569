//! What a file is, decided from its bytes, and whether a client's claim agrees.
//!
//! The stored `Content-Type` is never the client's word: it comes from the
//! file's signature ([`Kind::detect`]). The client's claims — the request's or
//! the multipart part's `Content-Type`, and the filename's extension — are only
//! checked against it ([`check_claim`], [`check_extension`]), because a file
//! that says it is one thing and is another is either a mistake or an attack
//! (a script named `.png`, an HTML page sent as `text/plain` and saved as `.html`).
//!
//! Why not the `infer` crate: the API accepts five binary signatures (each a
//! fixed prefix, tested below) plus UTF-8 text, which `infer` does not judge;
//! `infer` would add ~150 matchers for types we must refuse anyway, and the
//! part that needs care — text, claims and extensions — would stay ours.

use shared::ApiError;

/// The file types the API accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// PNG image.
    Png,
    /// JPEG image.
    Jpeg,
    /// GIF image (87a or 89a).
    Gif,
    /// WebP image (RIFF container).
    Webp,
    /// PDF document.
    Pdf,
    /// UTF-8 plain text.
    Text,
}

impl Kind {
    /// Every accepted kind.
    pub const ALL: [Kind; 6] = [
        Kind::Png,
        Kind::Jpeg,
        Kind::Gif,
        Kind::Webp,
        Kind::Pdf,
        Kind::Text,
    ];

    /// Decides the type from the bytes, or `None` for anything not accepted.
    ///
    /// Binary formats are recognised by their signature at offset 0 (a PDF
    /// whose `%PDF-` header is not first is refused, although readers tolerate
    /// leading junk: such files are how polyglots are built). Text is valid
    /// UTF-8 without control characters other than tab, line feed, form feed
    /// and carriage return — stricter than "no NUL" so that terminal escape
    /// sequences and executables that happen to be valid UTF-8 (`\x7fELF…`)
    /// are not served as text.
    pub fn detect(bytes: &[u8]) -> Option<Kind> {
        const PNG: &[u8] = b"\x89PNG\r\n\x1a\n";
        if bytes.starts_with(PNG) {
            return Some(Kind::Png);
        }
        if bytes.starts_with(b"\xff\xd8\xff") {
            return Some(Kind::Jpeg);
        }
        if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
            return Some(Kind::Gif);
        }
        if bytes.len() >= 12 && bytes.starts_with(b"RIFF") && &bytes[8..12] == b"WEBP" {
            return Some(Kind::Webp);
        }
        if bytes.starts_with(b"%PDF-") {
            return Some(Kind::Pdf);
        }
        if is_plain_text(bytes) {
            return Some(Kind::Text);
        }
        None
    }

    /// The kind of a file from its first bytes alone (a ranged read of an
    /// object). The binary kinds are decided by their leading bytes as in
    /// [`Kind::detect`]; text only so far as it goes: a character cut at the
    /// end of the prefix is not held against it, and the caller must check
    /// the rest of a text file.
    pub fn detect_prefix(prefix: &[u8]) -> Option<Kind> {
        match std::str::from_utf8(prefix) {
            Err(e) if e.error_len().is_none() => Kind::detect(&prefix[..e.valid_up_to()]),
            _ => Kind::detect(prefix),
        }
    }

    /// The `Content-Type` the upload is stored and served with.
    pub fn content_type(self) -> &'static str {
        match self {
            Kind::Png => "image/png",
            Kind::Jpeg => "image/jpeg",
            Kind::Gif => "image/gif",
            Kind::Webp => "image/webp",
            Kind::Pdf => "application/pdf",
            Kind::Text => "text/plain; charset=utf-8",
        }
    }

    /// The kind a stored `Content-Type` names.
    pub fn from_content_type(content_type: &str) -> Option<Kind> {
        [
            Kind::Png,
            Kind::Jpeg,
            Kind::Gif,
            Kind::Webp,
            Kind::Pdf,
            Kind::Text,
        ]
        .into_iter()
        .find(|k| k.content_type() == content_type)
    }

    /// True for the raster images a browser displays passively; these are
    /// served `inline`, everything else as an `attachment` (PDF viewers run
    /// scripts; text saved under a misleading name is a classic lure).
    pub fn is_image(self) -> bool {
        matches!(self, Kind::Png | Kind::Jpeg | Kind::Gif | Kind::Webp)
    }
}

fn is_plain_text(bytes: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return false;
    };
    !text
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r' | '\u{c}'))
}

/// The media type essence of a `Content-Type` value: `Image/PNG; x=y` → `image/png`.
pub fn essence(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// Checks a client's `Content-Type` claim (request header or multipart part)
/// against the detected kind: 415 when it names another type.
///
/// Not claims: no header, an empty one, `application/octet-stream` ("some
/// bytes"), and `application/x-www-form-urlencoded`, which `curl --data-binary`
/// sends by default and which no client means as a file's type.
pub fn check_claim(claim: Option<&str>, kind: Kind) -> Result<(), ApiError> {
    let Some(claim) = claim.map(essence).filter(|c| !c.is_empty()) else {
        return Ok(());
    };
    if matches!(
        claim.as_str(),
        "application/octet-stream" | "application/x-www-form-urlencoded"
    ) {
        return Ok(());
    }
    let agrees = match kind {
        Kind::Png => claim == "image/png",
        Kind::Jpeg => matches!(claim.as_str(), "image/jpeg" | "image/jpg" | "image/pjpeg"),
        Kind::Gif => claim == "image/gif",
        Kind::Webp => claim == "image/webp",
        Kind::Pdf => matches!(claim.as_str(), "application/pdf" | "application/x-pdf"),
        // Any text/* fits plain text except the types a browser renders or
        // runs: storing those as text/plain would silently change their meaning.
        Kind::Text => {
            claim.starts_with("text/")
                && !matches!(
                    claim.as_str(),
                    "text/html" | "text/javascript" | "text/ecmascript" | "text/xml" | "text/xsl"
                )
        }
    };
    if agrees {
        Ok(())
    } else {
        Err(ApiError::UnsupportedMediaType(format!(
            "The content is {}, but it was declared as {claim}.",
            kind.content_type()
        )))
    }
}

impl Kind {
    /// The filename extensions this kind may be stored under (lower case,
    /// without the dot), the first being the one a default name gets. An
    /// allowlist, not a denylist of dangerous ones: whatever is not listed —
    /// `.html`, `.svg`, `.url` (an `[InternetShortcut]` file is valid UTF-8
    /// text), `.exe`, `.lnk`, and every name not yet invented — is refused, because
    /// the extension decides what the downloader's system does on opening.
    pub fn extensions(self) -> &'static [&'static str] {
        match self {
            Kind::Png => &["png"],
            Kind::Jpeg => &["jpg", "jpeg", "jpe", "jfif"],
            Kind::Gif => &["gif"],
            Kind::Webp => &["webp"],
            Kind::Pdf => &["pdf"],
            Kind::Text => &["txt", "md", "csv", "log", "json"],
        }
    }

    /// True when a file of this kind may have no extension at all: only
    /// plain text (a `README`); an image or PDF without one is refused like a
    /// wrong one, as API.md says.
    pub fn allows_no_extension(self) -> bool {
        self == Kind::Text
    }

    /// The name an upload gets when the client gives none: `upload.<ext>`.
    pub fn default_filename(self) -> String {
        format!(
            "{}.{}",
            crate::names::DEFAULT_FILENAME,
            self.extensions()[0]
        )
    }
}

/// The extension of a (sanitised) filename, lower-cased: the text after the
/// last dot, when something precedes the dot.
pub fn extension(filename: &str) -> Option<String> {
    match filename.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => Some(ext.to_ascii_lowercase()),
        _ => None,
    }
}

/// Checks the filename's extension, the other claim a client makes, against
/// the detected kind's allowlist ([`Kind::extensions`]): anything else is 415.
pub fn check_extension(filename: &str, kind: Kind) -> Result<(), ApiError> {
    let allowed = kind.extensions();
    let ok = match extension(filename) {
        Some(ext) => allowed.contains(&ext.as_str()),
        None => kind.allows_no_extension(),
    };
    if ok {
        return Ok(());
    }
    let list = allowed
        .iter()
        .map(|e| format!(".{e}"))
        .collect::<Vec<_>>()
        .join(", ");
    let none = if kind.allows_no_extension() {
        " or none"
    } else {
        ""
    };
    // The client's extension is not echoed: the detail names only what is allowed.
    Err(ApiError::UnsupportedMediaType(format!(
        "The content is {}; its filename must end in {list}{none}.",
        kind.content_type()
    )))
}

#[cfg(test)]
mod tests {
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
}
