//! Validated input types: once a value has one of these types it is known to
//! satisfy API.md's rules, so handlers never look at unchecked input.

use serde::Serialize;

use crate::error::{ApiError, FieldError};
use crate::http::Request;

/// A syntactically valid email address, trimmed and lower-cased, ≤ 254 chars.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Email(String);

impl Email {
    /// Parses an email as API.md defines it.
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
    /// Parses a name as API.md defines it.
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

/// A page of a list, as API.md shapes it.
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
/// reported at once, as API.md asks.
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
mod tests {
    use super::*;
    use crate::http::Method;

    #[test]
    fn email_is_trimmed_and_lower_cased() {
        assert_eq!(
            Email::parse("  Ann@Example.COM ").unwrap().as_str(),
            "ann@example.com"
        );
    }

    #[test]
    fn malformed_emails_are_refused() {
        for bad in [
            "",
            "a",
            "a@b",
            "@b.c",
            "a@.c",
            "a b@c.d",
            "a@b..c",
            &format!("{}@b.cd", "a".repeat(250)),
        ] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn password_length_is_counted_in_characters() {
        assert!(Password::parse("ééééééé", None).is_err());
        assert!(Password::parse("éééééééé", None).is_ok());
        assert!(Password::parse(&"x".repeat(129), None).is_err());
    }

    #[test]
    fn password_equal_to_email_is_refused() {
        let email = Email::parse("someone@example.com").unwrap();
        assert!(Password::parse("Someone@Example.com", Some(&email)).is_err());
    }

    #[test]
    fn name_refuses_control_characters_and_blank() {
        assert!(Name::parse("a\u{7}b").is_err());
        assert!(Name::parse("   ").is_err());
        assert_eq!(Name::parse("  Ann ").unwrap().as_str(), "Ann");
    }

    #[test]
    fn name_refuses_bidi_overrides_and_zero_width_characters() {
        for bad in [
            "Ann\u{202E}gpj.exe",
            "A\u{200B}nn",
            "Ann\u{200D}",
            "\u{FEFF}Ann",
            "Ann\u{2066}x",
            "Ann\u{E0041}",
            "Ann\u{00AD}",
        ] {
            assert!(Name::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn name_refuses_line_separators_hangul_fillers_and_the_grapheme_joiner() {
        for bad in [
            "Ann\u{2028}Bob",
            "Ann\u{2029}Bob",
            "\u{3164}\u{3164}",
            "\u{115F}",
            "Ann\u{FFA0}",
            "A\u{034F}nn",
        ] {
            assert!(Name::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn name_keeps_visible_unicode() {
        assert!(Name::parse("Zoë Ångström 李小龍 محمد").is_ok());
        // Emoji with a variation selector and a zero-width-joined family
        // are refused only for the joiner, not for the selector.
        assert!(Name::parse("I \u{2764}\u{FE0F} Rust").is_ok());
    }

    #[test]
    fn format_table_holds_170_code_points() {
        let count: u32 = FORMAT_CHARACTERS
            .iter()
            .map(|&(a, b)| b as u32 - a as u32 + 1)
            .sum();
        assert_eq!(count, 170);
        assert!(FORMAT_CHARACTERS.windows(2).all(|w| w[0].1 < w[1].0));
    }

    #[test]
    fn pagination_defaults_and_bounds() {
        let p = Pagination::from_request(&Request::new(Method::Get, "/x")).unwrap();
        assert_eq!((p.page, p.limit), (1, 20));
        let err = Pagination::from_request(&Request::new(Method::Get, "/x?page=0&limit=101"))
            .unwrap_err();
        match err {
            ApiError::Validation(e) => assert_eq!(e.len(), 2),
            other => panic!("{other:?}"),
        }
    }

    use crate::testing::hostile_text;
    use proptest::prelude::*;

    /// Text shaped like an email address (hostile parts around an `@` and
    /// dots), so that the properties of accepted addresses get exercised.
    fn email_like() -> impl Strategy<Value = String> {
        // Letters of every script and case: Σ, İ, ẞ and the Kelvin sign
        // lower-case to something else, İ to two characters.
        let local = prop_oneof![
            4 => r"[\p{L}\p{N}ΣİẞK!#$%&'*+/=?^_`{|}~-]{1,24}",
            // Around the 64-byte limit of the local part.
            1 => r"[a-zé]{60,66}",
            1 => r"[A-Za-z0-9]{1,8}(\.[\p{L}\p{N}_+-]{1,8}){0,2}",
            1 => hostile_text(),
        ];
        let label = || {
            prop_oneof![
                3 => r"[\p{L}\p{N}ΣİẞK]([\p{L}\p{N}-]{0,20}[\p{L}\p{N}])?",
                1 => hostile_text(),
            ]
        };
        (local, label(), label(), " {0,2}", " {0,2}").prop_map(
            |(local, label, tld, before, after)| format!("{before}{local}@{label}.{tld}{after}"),
        )
    }

    /// Query strings mixing the pagination parameters, numbers of every
    /// size and sign, percent escapes and hostile text.
    fn pagination_query() -> impl Strategy<Value = String> {
        let value = prop_oneof![
            any::<i64>().prop_map(|n| n.to_string()),
            (0u32..=1_000_001).prop_map(|n| n.to_string()),
            "[+-]?[0-9]{0,12}",
            "%[0-9A-Fa-f]{2}[0-9]{0,3}",
            hostile_text(),
        ];
        let key = prop_oneof![
            "page",
            "limit",
            "Page",
            "page%20",
            "limit%00",
            hostile_text()
        ];
        prop::collection::vec((key, value, prop::bool::ANY), 0..5).prop_map(|pairs| {
            pairs
                .into_iter()
                .map(|(k, v, with_eq)| if with_eq { format!("{k}={v}") } else { k })
                .collect::<Vec<_>>()
                .join("&")
        })
    }

    proptest! {
        #[test]
        fn any_text_parses_as_an_email_or_an_error(raw in any::<String>()) {
            let _ = Email::parse(&raw);
        }

        #[test]
        fn accepted_emails_are_trimmed_lower_cased_short_and_reparse_to_themselves(
            raw in prop_oneof![email_like(), hostile_text()]
        ) {
            if let Ok(email) = Email::parse(&raw) {
                let s = email.as_str();
                prop_assert_eq!(s, s.trim());
                prop_assert_eq!(s.to_lowercase(), s);
                prop_assert!((1..=254).contains(&s.chars().count()), "{s:?}");
                prop_assert!(!s.chars().any(is_hidden_character), "{s:?}");
                prop_assert_eq!(Email::parse(s), Ok(email.clone()));
            }
        }

        #[test]
        fn passwords_are_accepted_exactly_at_8_to_128_characters(
            raw in prop_oneof![hostile_text(), ".{0,140}"]
        ) {
            let chars = raw.chars().count();
            match Password::parse(&raw, None) {
                Ok(p) => {
                    prop_assert!((8..=128).contains(&chars), "{chars} chars accepted");
                    prop_assert_eq!(p.expose(), raw.as_str());
                }
                Err(e) => prop_assert!(!(8..=128).contains(&chars), "{chars} chars refused: {e:?}"),
            }
        }

        #[test]
        fn a_password_is_refused_only_when_it_is_the_email(raw in email_like()) {
            let Ok(email) = Email::parse(&raw) else { return Ok(()) };
            let as_password = Password::parse(&raw, Some(&email));
            let len = raw.chars().count();
            prop_assert!(as_password.is_err(), "{len} chars, email {email:?}");
            // Any other text of the right length is fine.
            let other = format!("{raw}!");
            if (8..=128).contains(&other.chars().count()) {
                prop_assert!(Password::parse(&other, Some(&email)).is_ok());
            }
        }

        #[test]
        fn names_never_keep_hidden_characters(raw in prop_oneof![hostile_text(), any::<String>()]) {
            if let Ok(name) = Name::parse(&raw) {
                let s = name.as_str();
                prop_assert!(!s.chars().any(is_hidden_character), "{s:?}");
                prop_assert_eq!(s, s.trim());
                prop_assert!((1..=100).contains(&s.chars().count()), "{s:?}");
                prop_assert_eq!(Name::parse(s), Ok(name.clone()));
            }
        }

        #[test]
        fn names_of_visible_characters_are_kept_trimmed(
            raw in r"[ \t]{0,2}[\p{L}\p{N}\p{So}][\p{L}\p{N}\p{So} '.-]{0,60}[ \t]{0,2}"
        ) {
            // Letters by category, blank on screen: refused on purpose.
            prop_assume!(!raw.chars().any(|c| INVISIBLE_OTHERS.contains(&c)));
            let name = Name::parse(&raw);
            prop_assert_eq!(name.map(|n| n.as_str().to_string()), Ok(raw.trim().to_string()));
        }

        #[test]
        fn pagination_of_any_query_is_in_range_or_a_validation_error(query in pagination_query()) {
            let request = Request::new(Method::Get, &format!("/x?{query}"));
            match Pagination::from_request(&request) {
                Ok(p) => {
                    prop_assert!((1..=1_000_000).contains(&p.page), "{p:?}");
                    prop_assert!((1..=100).contains(&p.limit), "{p:?}");
                    prop_assert_eq!(p.offset(), u64::from(p.page - 1) * u64::from(p.limit));
                }
                Err(ApiError::Validation(errors)) => {
                    prop_assert!(!errors.is_empty() && errors.len() <= 2);
                    prop_assert!(errors.iter().all(|e| e.field == "page" || e.field == "limit"));
                }
                Err(other) => prop_assert!(false, "{other:?}"),
            }
        }

        #[test]
        fn pagination_keeps_every_in_range_value(page in 1u32..=1_000_000, limit in 1u32..=100) {
            let request = Request::new(Method::Get, &format!("/x?limit={limit}&page={page}"));
            prop_assert_eq!(
                Pagination::from_request(&request).ok(),
                Some(Pagination { page, limit })
            );
        }
    }
}
