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
    /// wrong one, as docs/API.md says.
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
mod tests;
