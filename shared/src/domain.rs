//! Validated input types: once a value has one of these types it is known to
//! satisfy docs/API.md's rules, so handlers never look at unchecked input.

use serde::Serialize;

use crate::error::{ApiError, FieldError};
use crate::http::Request;

/// A syntactically valid email address, trimmed and lower-cased, ≤ 254 chars.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Email(String);

impl Email {
    /// Parses an email as docs/API.md defines it.
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let email = raw.trim().to_lowercase();
        let invalid = || FieldError::new("email", "must be a valid email address");
        if email.is_empty() || email.chars().count() > 254 {
            return Err(FieldError::new("email", "must be 1 to 254 characters"));
        }
        let (local, domain) = email.rsplit_once('@').ok_or_else(invalid)?;
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..")
            && local
                .chars()
                .all(|c| c.is_alphanumeric() || "!#$%&'*+/=?^_`{|}~.-".contains(c));
        let domain_ok = domain.contains('.')
            && domain.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label.chars().all(|c| c.is_alphanumeric() || c == '-')
            });
        if local_ok && domain_ok {
            Ok(Self(email))
        } else {
            Err(invalid())
        }
    }

    /// The normalised address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A password of 8–128 characters (any characters, no composition rules) that
/// is not the account's email.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    /// Parses a new password for the account `email` (when known).
    pub fn parse(raw: &str, email: Option<&Email>) -> Result<Self, FieldError> {
        Self::parse_field("password", raw, email)
    }

    /// As [`Password::parse`], reporting errors under `field`.
    pub fn parse_field(field: &str, raw: &str, email: Option<&Email>) -> Result<Self, FieldError> {
        let len = raw.chars().count();
        if !(8..=128).contains(&len) {
            return Err(FieldError::new(field, "must be 8 to 128 characters"));
        }
        if email.is_some_and(|e| raw.trim().to_lowercase() == e.as_str()) {
            return Err(FieldError::new(field, "must not be the email address"));
        }
        Ok(Self(raw.to_string()))
    }

    /// The password itself, for hashing.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(***)")
    }
}

/// Unicode's format characters (general category `Cf`, Unicode 16.0's
/// `DerivedGeneralCategory.txt`: 170 code points in these 21 ranges). They
/// are invisible: bidi overrides (U+202E turns `gpj.exe` into `exe.jpg` on
/// screen), zero-width spaces and joiners (two names that look the same),
/// tag characters (hidden text). A hand-kept table rather than a crate's full
/// category tables keeps the components' wasm small; the list changes rarely
/// (the last addition was U+13439–1343F in Unicode 15.0).
const FORMAT_CHARACTERS: &[(char, char)] = &[
    ('\u{00AD}', '\u{00AD}'),
    ('\u{0600}', '\u{0605}'),
    ('\u{061C}', '\u{061C}'),
    ('\u{06DD}', '\u{06DD}'),
    ('\u{070F}', '\u{070F}'),
    ('\u{0890}', '\u{0891}'),
    ('\u{08E2}', '\u{08E2}'),
    ('\u{180E}', '\u{180E}'),
    ('\u{200B}', '\u{200F}'),
    ('\u{202A}', '\u{202E}'),
    ('\u{2060}', '\u{2064}'),
    ('\u{2066}', '\u{206F}'),
    ('\u{FEFF}', '\u{FEFF}'),
    ('\u{FFF9}', '\u{FFFB}'),
    ('\u{110BD}', '\u{110BD}'),
    ('\u{110CD}', '\u{110CD}'),
    ('\u{13430}', '\u{1343F}'),
    ('\u{1BCA0}', '\u{1BCA3}'),
    ('\u{1D173}', '\u{1D17A}'),
    ('\u{E0001}', '\u{E0001}'),
    ('\u{E0020}', '\u{E007F}'),
];

/// True for a Unicode format character (category `Cf`), see [`FORMAT_CHARACTERS`].
pub fn is_format_character(c: char) -> bool {
    FORMAT_CHARACTERS
        .iter()
        .any(|&(first, last)| (first..=last).contains(&c))
}

/// Characters outside `Cc` and `Cf` that show as nothing, or break a line
/// where a name has none: the line and paragraph separators (`Zl`, `Zp`),
/// the Hangul fillers (letters by category, blank on screen: a name of
/// fillers looks empty) and the combining grapheme joiner. Variation
/// selectors stay allowed: emoji need them.
const INVISIBLE_OTHERS: &[char] = &[
    '\u{2028}', '\u{2029}', '\u{115F}', '\u{1160}', '\u{3164}', '\u{FFA0}', '\u{034F}',
];

/// True for characters no name may contain: controls (`Cc`), invisible
/// format characters (`Cf`) and the other invisible ones of
/// [`INVISIBLE_OTHERS`].
pub fn is_hidden_character(c: char) -> bool {
    c.is_control() || is_format_character(c) || INVISIBLE_OTHERS.contains(&c)
}

/// A display name: 1–100 characters after trimming, no control or invisible
/// format characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Name(String);

impl Name {
    /// Parses a name as docs/API.md defines it.
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let name = raw.trim();
        let len = name.chars().count();
        if !(1..=100).contains(&len) {
            return Err(FieldError::new("name", "must be 1 to 100 characters"));
        }
        if name.chars().any(is_hidden_character) {
            return Err(FieldError::new(
                "name",
                "must not contain control or invisible formatting characters",
            ));
        }
        Ok(Self(name.to_string()))
    }

    /// The trimmed name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `?page=&limit=` of a list route: page ≥ 1, limit 1–100, defaults 1 and 20.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pagination {
    /// 1-based page number.
    pub page: u32,
    /// Items per page.
    pub limit: u32,
}

impl Pagination {
    /// Reads and checks `page` and `limit` from the query string.
    pub fn from_request(request: &Request) -> Result<Self, ApiError> {
        let mut errors = Vec::new();
        let page = match request.query_param("page") {
            None => 1,
            Some(v) => match v.parse::<u32>() {
                Ok(p) if (1..=1_000_000).contains(&p) => p,
                _ => {
                    errors.push(FieldError::new(
                        "page",
                        "must be an integer from 1 to 1000000",
                    ));
                    1
                }
            },
        };
        let limit = match request.query_param("limit") {
            None => 20,
            Some(v) => match v.parse::<u32>() {
                Ok(l) if (1..=100).contains(&l) => l,
                _ => {
                    errors.push(FieldError::new("limit", "must be an integer from 1 to 100"));
                    20
                }
            },
        };
        if errors.is_empty() {
            Ok(Self { page, limit })
        } else {
            Err(ApiError::Validation(errors))
        }
    }

    /// Rows to skip.
    pub fn offset(&self) -> u64 {
        u64::from(self.page - 1) * u64::from(self.limit)
    }
}

/// A page of a list, as docs/API.md shapes it.
#[derive(Debug, Clone, Serialize)]
pub struct Page<T> {
    /// The items of this page.
    pub items: Vec<T>,
    /// The page number.
    pub page: u32,
    /// The page size asked for.
    pub limit: u32,
    /// How many items exist in all.
    pub total: u64,
}

impl<T> Page<T> {
    /// A page of `items` out of `total`.
    pub fn new(items: Vec<T>, pagination: Pagination, total: u64) -> Self {
        Self {
            items,
            page: pagination.page,
            limit: pagination.limit,
            total,
        }
    }
}

/// Collects the errors of several field parsers so that every bad field is
/// reported at once, as docs/API.md asks.
#[derive(Debug, Default)]
pub struct FieldErrors(Vec<FieldError>);

impl FieldErrors {
    /// No errors yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Keeps the value of `result`, or records its error and returns `None`.
    pub fn check<T>(&mut self, result: Result<T, FieldError>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(e) => {
                self.0.push(e);
                None
            }
        }
    }

    /// Records an error found outside a parser.
    pub fn push(&mut self, error: FieldError) {
        self.0.push(error);
    }

    /// `Ok` when nothing was recorded, otherwise the `validation_failed` error.
    pub fn finish(self) -> Result<(), ApiError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Validation(self.0))
        }
    }
}

#[cfg(test)]
mod tests;
