//! Filenames and the response headers built from them.
//!
//! A client-supplied filename ends up in a `Content-Disposition` header and,
//! through it, on the disk of whoever downloads the file. [`sanitize`] keeps
//! only a harmless last path segment; [`content_disposition`] quotes it for
//! old clients and adds RFC 5987's `filename*` for non-ASCII names.

/// Longest stored filename, in bytes (the usual file-system limit).
pub const MAX_FILENAME_BYTES: usize = 255;

/// The name given to an upload whose filename sanitises to nothing.
pub const DEFAULT_FILENAME: &str = "upload";

/// Longest extension kept when a long name is shortened.
const MAX_EXTENSION_BYTES: usize = 16;

/// Characters dropped from filenames: path and drive separators, quotes and
/// the backslash (they would end or escape the quoted header value), `;` and
/// `%` (parameter separator; percent-decoding by some browsers), and the
/// characters Windows refuses in names.
const UNSAFE: &[char] = &[
    '/', '\\', '"', '\'', ';', '%', ':', '*', '?', '<', '>', '|', '`',
];

/// A safe filename from a client-supplied one: the last path segment (after
/// `/` or `\`), without control characters, invisible formatting characters
/// (bidi overrides turn `gpj.exe` into `exe.jpg` on screen), or [`UNSAFE`]
/// ones; whitespace runs collapsed to one space; leading dots and spaces
/// removed (no hidden files, no `..`), trailing dots and spaces removed
/// (Windows drops them); at most [`MAX_FILENAME_BYTES`] bytes, keeping the
/// extension. Empty becomes [`DEFAULT_FILENAME`]. `../../etc/passwd` → `passwd`.
pub fn sanitize(raw: &str) -> String {
    clean(raw).unwrap_or_else(|| DEFAULT_FILENAME.to_string())
}

/// As [`sanitize`], but `None` when nothing harmless is left, so the caller
/// can choose a default that suits the content (`upload.png`).
pub fn clean(raw: &str) -> Option<String> {
    let last = raw.rsplit(['/', '\\']).next().unwrap_or("");
    let mut cleaned = String::with_capacity(last.len());
    let mut pending_space = false;
    for c in last.chars() {
        if c.is_whitespace() {
            pending_space = true;
            continue;
        }
        if shared::domain::is_hidden_character(c) || UNSAFE.contains(&c) {
            continue;
        }
        if pending_space && !cleaned.is_empty() {
            cleaned.push(' ');
        }
        pending_space = false;
        cleaned.push(c);
    }
    let trimmed = cleaned
        .trim_start_matches(['.', ' '])
        .trim_end_matches(['.', ' ']);
    let bounded = bound_length(trimmed);
    if bounded.is_empty() {
        None
    } else {
        Some(bounded)
    }
}

/// Cuts `name` to [`MAX_FILENAME_BYTES`] on a character boundary, keeping a
/// short extension so the shortened file still opens with the right program.
fn bound_length(name: &str) -> String {
    if name.len() <= MAX_FILENAME_BYTES {
        return name.to_string();
    }
    let (stem, ext) = match name.rsplit_once('.') {
        Some((stem, ext))
            if !stem.is_empty() && !ext.is_empty() && ext.len() <= MAX_EXTENSION_BYTES =>
        {
            (stem, Some(ext))
        }
        _ => (name, None),
    };
    let room = MAX_FILENAME_BYTES - ext.map_or(0, |e| e.len() + 1);
    // Whole characters only, as many as fit.
    let kept: String = stem
        .chars()
        .scan(0, |len, c| {
            *len += c.len_utf8();
            (*len <= room).then_some(c)
        })
        .collect();
    let stem = kept.trim_end_matches(['.', ' ']);
    match ext {
        Some(ext) => format!("{stem}.{ext}"),
        None => stem.to_string(),
    }
}

/// The `Content-Disposition` value for a sanitised `filename`: `inline` or
/// `attachment`, an ASCII `filename="…"` for every client (non-ASCII characters
/// become `_`), and `filename*=UTF-8''…` (RFC 5987/6266) when the name is not
/// ASCII, which current browsers prefer.
pub fn content_disposition(filename: &str, inline: bool) -> String {
    let disposition = if inline { "inline" } else { "attachment" };
    // Sanitising removed quotes, backslashes and controls; this is defence in depth.
    let ascii: String = filename
        .chars()
        .map(|c| {
            if c.is_ascii() && !c.is_ascii_control() && c != '"' && c != '\\' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if filename.is_ascii() {
        format!("{disposition}; filename=\"{ascii}\"")
    } else {
        format!(
            "{disposition}; filename=\"{ascii}\"; filename*=UTF-8''{}",
            rfc5987_encode(filename)
        )
    }
}

/// Percent-encodes everything outside RFC 5987's `attr-char`.
fn rfc5987_encode(value: &str) -> String {
    percent_encoding::utf8_percent_encode(value, RFC5987_ESCAPED).to_string()
}

/// Everything but RFC 5987's `attr-char` (ALPHA / DIGIT / "!" / "#" / "$" /
/// "&" / "+" / "-" / "." / "^" / "_" / "`" / "|" / "~") is percent-encoded.
const RFC5987_ESCAPED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'!')
    .remove(b'#')
    .remove(b'$')
    .remove(b'&')
    .remove(b'+')
    .remove(b'-')
    .remove(b'.')
    .remove(b'^')
    .remove(b'_')
    .remove(b'`')
    .remove(b'|')
    .remove(b'~');

/// The strong ETag of content with this SHA-256 (hex): `"<sha256>"`.
pub fn etag(sha256: &str) -> String {
    format!("\"{sha256}\"")
}

#[cfg(test)]
mod tests;
