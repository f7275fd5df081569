//! Framework-neutral HTTP request and response.
//!
//! Handlers see these types, never `spin_sdk`'s, so a whole component can be
//! exercised natively in unit tests. The Spin adapter ([`crate::spin`]) converts
//! at the edge.

use serde::{de::DeserializeOwned, Serialize};

use crate::error::ApiError;

/// Largest JSON body any route accepts (API.md: over 64 KiB answers 413).
pub const MAX_JSON_BODY: usize = 64 * 1024;

/// An HTTP method; the ones the API routes on, plus anything else verbatim.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Method {
    /// `GET`
    Get,
    /// `HEAD`
    Head,
    /// `POST`
    Post,
    /// `PUT`
    Put,
    /// `PATCH`
    Patch,
    /// `DELETE`
    Delete,
    /// `OPTIONS`
    Options,
    /// Any other method, as sent.
    Other(String),
}

impl Method {
    /// Parses a method name as it appears on the request line.
    pub fn parse(s: &str) -> Self {
        match s {
            "GET" => Self::Get,
            "HEAD" => Self::Head,
            "POST" => Self::Post,
            "PUT" => Self::Put,
            "PATCH" => Self::Patch,
            "DELETE" => Self::Delete,
            "OPTIONS" => Self::Options,
            other => Self::Other(other.to_string()),
        }
    }

    /// The method's name as it appears on the wire.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Get => "GET",
            Self::Head => "HEAD",
            Self::Post => "POST",
            Self::Put => "PUT",
            Self::Patch => "PATCH",
            Self::Delete => "DELETE",
            Self::Options => "OPTIONS",
            Self::Other(s) => s,
        }
    }
}

/// An incoming request with its body already read (within the route's limit).
#[derive(Debug, Clone)]
pub struct Request {
    /// The request method.
    pub method: Method,
    /// The path, without the query string, e.g. `/api/v1/users/me`.
    pub path: String,
    /// The raw query string without `?` (may be empty).
    pub query: String,
    /// Headers with lower-cased names, in arrival order.
    pub headers: Vec<(String, String)>,
    /// The body bytes.
    pub body: Vec<u8>,
}

impl Request {
    /// A request with no headers, query or body — the starting point in tests.
    pub fn new(method: Method, path_and_query: &str) -> Self {
        let (path, query) = match path_and_query.split_once('?') {
            Some((p, q)) => (p.to_string(), q.to_string()),
            None => (path_and_query.to_string(), String::new()),
        };
        Self {
            method,
            path,
            query,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// Adds a header (builder style, mainly for tests).
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers
            .push((name.to_ascii_lowercase(), value.to_string()));
        self
    }

    /// Sets a JSON body and its content type (builder style, mainly for tests).
    pub fn with_json(mut self, value: &serde_json::Value) -> Self {
        self.body = serde_json::to_vec(value).unwrap_or_default();
        self.with_header("content-type", "application/json")
    }

    /// The first value of a header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The last value of a header. Spin 4 appends its own `spin-*` headers
    /// after any the client sent under the same names, so the last value is
    /// the one Spin set and the only one to trust.
    pub fn last_header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .rev()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The decoded query parameters, in order.
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        form_urlencoded::parse(self.query.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }

    /// The first value of one query parameter, decoded.
    pub fn query_param(&self, name: &str) -> Option<String> {
        form_urlencoded::parse(self.query.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }

    /// Parses the body as JSON into `T`, enforcing API.md's conventions: the
    /// `Content-Type` must be `application/json` (415), the body at most 64 KiB
    /// (413), valid UTF-8 and JSON, with no unknown fields (400). Request types
    /// use `#[serde(deny_unknown_fields)]` so the last rule holds.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        let content_type = self.header("content-type").unwrap_or("");
        let essence = content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if essence != "application/json" {
            return Err(ApiError::UnsupportedMediaType(
                "This route accepts application/json only.".into(),
            ));
        }
        if self.body.len() > MAX_JSON_BODY {
            return Err(ApiError::PayloadTooLarge {
                limit: MAX_JSON_BODY as u64,
            });
        }
        let text = std::str::from_utf8(&self.body)
            .map_err(|_| ApiError::InvalidBody("The body is not valid UTF-8.".into()))?;
        let mut deserializer = serde_json::Deserializer::from_str(text);
        let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
            let path: Vec<_> = e.path().iter().collect();
            ApiError::InvalidBody(describe_json_error(&path, e.inner()))
        })?;
        // Trailing characters after the value.
        deserializer
            .end()
            .map_err(|e| ApiError::InvalidBody(describe_json_error(&[], &e)))?;
        Ok(value)
    }
}

/// A message for a JSON body that could not be read, naming the field
/// (its path `segments`, e.g. `items[0].quantity`) or the position, never a value the
/// client sent: serde_json's data errors quote the input
/// (``invalid type: integer `12345678`, expected a string``), and a body may
/// hold a password. Only the parts the API's own types wrote (what was
/// expected, a missing field's name) are kept; anything else is replaced by
/// a generic phrase.
fn describe_json_error(
    segments: &[&serde_path_to_error::Segment],
    e: &serde_json::Error,
) -> String {
    let position = format!("line {} column {}", e.line(), e.column());
    let name = |segments: &[&serde_path_to_error::Segment]| {
        if segments.is_empty() {
            return "the body".to_string();
        }
        let mut text = String::new();
        for segment in segments {
            match segment {
                serde_path_to_error::Segment::Seq { index } => text.push_str(&format!("[{index}]")),
                other => {
                    if !text.is_empty() {
                        text.push('.');
                    }
                    text.push_str(&other.to_string());
                }
            }
        }
        format!("`{text}`")
    };
    let field = name(segments);
    if !matches!(e.classify(), serde_json::error::Category::Data) {
        // Syntax, EOF and I/O messages describe the text's shape, not its content.
        return format!("The body is not valid JSON: {e}");
    }
    let message = e.to_string();
    let message = message
        .rsplit_once(" at line ")
        .map_or(message.as_str(), |(m, _)| m);
    // What the target type expected: written by the API's types, not the
    // client. serde writes it last (`<what was found>, expected <what>`), and
    // what was found may be the client's text holding ", expected " itself:
    // split at the last occurrence, or the client's text would be echoed.
    let expected = message.rsplit_once(", expected ").map(|(_, x)| x);
    let problem = if message.starts_with("invalid type") {
        "has the wrong type"
    } else if message.starts_with("invalid value") || message.starts_with("unknown variant") {
        "has an invalid value"
    } else if message.starts_with("invalid length") {
        "has the wrong length"
    } else if message.starts_with("unknown field") {
        // The unknown key is the client's text (and the last segment of the
        // path): name the object that holds it and where, not the key.
        let field = name(&segments[..segments.len().saturating_sub(1)]);
        return match expected {
            Some(x) => format!("Invalid JSON body: {field} has a field this route does not accept ({position}); expected {x}."),
            None => format!("Invalid JSON body: {field} has a field this route does not accept ({position})."),
        };
    } else if let Some(name) = message.strip_prefix("missing field ") {
        return format!("Invalid JSON body: {field} lacks the required field {name}.");
    } else {
        "is invalid"
    };
    match expected {
        Some(x) => format!("Invalid JSON body: {field} {problem} ({position}); expected {x}."),
        None => format!("Invalid JSON body: {field} {problem} ({position})."),
    }
}

/// An outgoing response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Headers with lower-case names.
    pub headers: Vec<(String, String)>,
    /// The body bytes.
    pub body: Vec<u8>,
}

impl Response {
    /// An empty response with `status`.
    pub fn new(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// A JSON response with `status`.
    pub fn json<T: Serialize + ?Sized>(status: u16, value: &T) -> Self {
        // Serialising our own response types cannot fail (no maps with non-string keys).
        let body = serde_json::to_vec(value).unwrap_or_default();
        Self::new(status)
            .with_header("content-type", "application/json")
            .with_body(body)
    }

    /// Adds a header, replacing any header of the same name.
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        let name = name.to_ascii_lowercase();
        self.headers.retain(|(n, _)| *n != name);
        self.headers.push((name, value.to_string()));
        self
    }

    /// Sets the body.
    pub fn with_body(mut self, body: Vec<u8>) -> Self {
        self.body = body;
        self
    }

    /// The value of a header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body parsed as JSON (for tests).
    pub fn json_body(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// True when an `If-None-Match` value matches the strong ETag `"<opaque>"`:
/// `*` as the whole value, or a comma-separated list of entity tags one of
/// which has the same opaque value. `W/` prefixes are ignored, as RFC 9110
/// §13.1.2 prescribes for `If-None-Match` (weak comparison). A malformed
/// member ends the parse without a match from it onwards (the safe side: a
/// full answer, never a wrong 304). Every component reads the header with
/// this one function, so a client's cache behaves the same on every route.
pub fn if_none_match_matches(header: &str, opaque: &str) -> bool {
    let header = header.trim();
    if header == "*" {
        return true;
    }
    let mut rest = header;
    loop {
        rest = rest.trim_start_matches([' ', '\t', ',']);
        if rest.is_empty() {
            return false;
        }
        if let Some(r) = rest.strip_prefix("W/") {
            rest = r;
        }
        let Some(r) = rest.strip_prefix('"') else {
            return false;
        };
        let Some((tag, after)) = r.split_once('"') else {
            return false;
        };
        if tag == opaque {
            return true;
        }
        rest = after;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        name: String,
    }

    fn post(body: &[u8], content_type: &str) -> Request {
        let mut r = Request::new(Method::Post, "/x").with_header("content-type", content_type);
        r.body = body.to_vec();
        r
    }

    #[test]
    fn json_with_charset_parameter_is_accepted() {
        let r = post(br#"{"name":"a"}"#, "application/json; charset=utf-8");
        assert!(r.json::<Body>().is_ok());
    }

    #[test]
    fn other_content_type_is_415() {
        let r = post(br#"{"name":"a"}"#, "text/plain");
        assert_eq!(r.json::<Body>().unwrap_err().status(), 415);
    }

    #[test]
    fn unknown_field_is_400_invalid_body() {
        let r = post(br#"{"name":"a","admin":true}"#, "application/json");
        assert_eq!(r.json::<Body>().unwrap_err().code(), "invalid_body");
    }

    #[test]
    fn invalid_utf8_is_400() {
        let r = post(b"{\"name\":\"\xff\"}", "application/json");
        assert_eq!(r.json::<Body>().unwrap_err().code(), "invalid_body");
    }

    #[test]
    fn oversized_body_is_413() {
        let r = post(&vec![b' '; MAX_JSON_BODY + 1], "application/json");
        assert_eq!(r.json::<Body>().unwrap_err().status(), 413);
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Login {
        email: String,
        password: String,
    }

    fn detail_of(body: &[u8]) -> String {
        match post(body, "application/json").json::<Login>().unwrap_err() {
            ApiError::InvalidBody(d) => d,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn type_error_names_the_field_but_not_the_value() {
        let d = detail_of(br#"{"email":"a@b.c","password":12345678}"#);
        assert!(d.contains("`password`"), "{d}");
        assert!(d.contains("expected a string"), "{d}");
        assert!(!d.contains("12345678"), "{d}");
    }

    #[test]
    fn string_given_for_a_number_is_not_echoed() {
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct N {
            n: u8,
        }
        let r = post(br#"{"n":"hunter2-secret"}"#, "application/json");
        let ApiError::InvalidBody(d) = r.json::<N>().unwrap_err() else {
            panic!()
        };
        assert!(!d.contains("hunter2"), "{d}");
        assert!(d.contains("`n`"), "{d}");
    }

    #[test]
    fn unknown_field_is_located_but_not_echoed() {
        let d = detail_of(br#"{"email":"a@b.c","password":"x","s3cr3t-key":1}"#);
        assert!(!d.contains("s3cr3t"), "{d}");
        assert!(d.contains("line 1"), "{d}");
    }

    #[test]
    fn missing_field_is_named() {
        let d = detail_of(br#"{"email":"a@b.c"}"#);
        assert!(d.contains("`password`"), "{d}");
    }

    #[test]
    fn trailing_characters_are_refused() {
        let d = detail_of(br#"{"email":"a","password":"b"} x"#);
        assert!(d.contains("not valid JSON"), "{d}");
    }

    #[test]
    fn query_params_are_percent_decoded() {
        let r = Request::new(Method::Get, "/x?filename=a%20b.png&x=1");
        assert_eq!(r.query_param("filename").as_deref(), Some("a b.png"));
    }

    use crate::auth::Role;
    use crate::testing::hostile_text;
    use proptest::prelude::*;

    /// Text with the separators a JSON error message is split on mixed in,
    /// as a client could write them in a value or a key.
    fn text_with_message_separators() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            hostile_text(),
            Just(", expected ".to_string()),
            Just(" at line ".to_string()),
            Just("`".to_string()),
            Just("\"".to_string()),
        ];
        prop::collection::vec(piece, 0..6).prop_map(|pieces| pieces.concat())
    }

    /// A secret somewhere inside text a client sends.
    fn with_secret() -> impl Strategy<Value = String> {
        (
            text_with_message_separators(),
            text_with_message_separators(),
        )
            .prop_map(|(before, after)| format!("{before}hunter2{after}"))
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Typed {
        n: u8,
        role: Role,
        tags: Vec<String>,
    }

    fn invalid_body_detail(body: &serde_json::Value) -> String {
        let request = Request::new(Method::Post, "/x").with_json(body);
        match request.json::<Typed>() {
            Err(ApiError::InvalidBody(detail)) => detail,
            other => panic!("{other:?}"),
        }
    }

    proptest! {
        #[test]
        fn methods_parse_back_to_the_text_they_were_read_from(
            name in prop_oneof![
                prop::sample::select(vec!["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
                    .prop_map(String::from),
                hostile_text(),
            ]
        ) {
            let method = Method::parse(&name);
            prop_assert_eq!(method.as_str(), name.as_str());
            prop_assert_eq!(Method::parse(method.as_str()), method);
        }

        #[test]
        fn a_request_line_splits_into_a_path_without_query_and_the_query(
            path_and_query in prop_oneof![hostile_text(), any::<String>()]
        ) {
            let request = Request::new(Method::Get, &path_and_query);
            prop_assert!(!request.path.contains('?'));
            if path_and_query.contains('?') {
                prop_assert_eq!(format!("{}?{}", request.path, request.query), path_and_query);
            } else {
                prop_assert_eq!(&request.path, &path_and_query);
                prop_assert_eq!(request.query.as_str(), "");
            }
        }

        #[test]
        fn any_query_string_decodes_and_its_first_value_is_the_params(
            query in prop_oneof![hostile_text(), any::<String>()],
            name in prop_oneof![hostile_text(), Just("page".to_string())],
        ) {
            let request = Request { query, ..Request::new(Method::Get, "/x") };
            let pairs = request.query_pairs();
            let first = pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| v.clone());
            prop_assert_eq!(request.query_param(&name), first);
        }

        #[test]
        fn encoded_query_parameters_decode_to_what_was_encoded(
            pairs in prop::collection::vec((hostile_text(), hostile_text()), 0..5)
        ) {
            let query = form_urlencoded::Serializer::new(String::new())
                .extend_pairs(&pairs)
                .finish();
            let request = Request::new(Method::Get, &format!("/x?{query}"));
            prop_assert_eq!(request.query_pairs(), pairs.clone());
            for (name, _) in &pairs {
                let first = pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
                prop_assert_eq!(request.query_param(name), first);
            }
        }

        #[test]
        fn header_lookups_ignore_ascii_case_and_pick_the_first_or_last_value(
            headers in prop::collection::vec(
                (prop_oneof![Just("X-Test".to_string()), hostile_text()], hostile_text()),
                0..6,
            ),
            asked in prop_oneof![Just("x-TEST".to_string()), hostile_text()],
        ) {
            let mut request = Request::new(Method::Get, "/");
            for (name, value) in &headers {
                request = request.with_header(name, value);
            }
            let matching: Vec<&str> = headers
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case(&asked))
                .map(|(_, v)| v.as_str())
                .collect();
            prop_assert_eq!(request.header(&asked), matching.first().copied());
            prop_assert_eq!(request.last_header(&asked), matching.last().copied());
        }

        #[test]
        fn any_bytes_as_a_json_body_are_a_value_or_a_client_error(
            body in prop_oneof![
                prop::collection::vec(any::<u8>(), 0..200),
                hostile_text().prop_map(String::into_bytes),
                text_with_message_separators().prop_map(|t| format!("{{\"n\":{t}}}").into_bytes()),
            ],
            content_type in prop_oneof![
                Just("application/json".to_string()),
                Just("Application/JSON ; charset=utf-8".to_string()),
                hostile_text(),
            ],
        ) {
            let mut request = Request::new(Method::Post, "/x").with_header("content-type", &content_type);
            request.body = body;
            let json_type = content_type
                .split(';')
                .next()
                .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"));
            match request.json::<Typed>() {
                Ok(_) => prop_assert!(json_type),
                Err(ApiError::InvalidBody(detail)) => {
                    prop_assert!(json_type);
                    prop_assert!(!detail.is_empty());
                }
                Err(ApiError::UnsupportedMediaType(_)) => prop_assert!(!json_type),
                Err(other) => prop_assert!(false, "{other:?}"),
            }
        }

        #[test]
        fn invalid_bodies_never_echo_what_the_client_sent(secret in with_secret()) {
            for body in [
                // A string where a number is expected.
                serde_json::json!({ "n": secret, "role": "user", "tags": [] }),
                // An enum variant that does not exist.
                serde_json::json!({ "n": 1, "role": secret, "tags": [] }),
                // An unknown field.
                serde_json::json!({ "n": 1, "role": "user", "tags": [], secret.clone(): 1 }),
                // A wrong type inside an array.
                serde_json::json!({ "n": 1, "role": "user", "tags": ["a", { secret.clone(): secret }] }),
            ] {
                let detail = invalid_body_detail(&body);
                prop_assert!(!detail.contains("hunter2"), "{}", detail);
            }
        }
    }

    #[test]
    fn a_value_holding_the_expected_separator_is_not_echoed() {
        // Found by `invalid_bodies_never_echo_what_the_client_sent`: the
        // expectation was cut at the first ", expected ", which can be the
        // client's own text.
        let detail = invalid_body_detail(&serde_json::json!({
            "n": "x, expected hunter2",
            "role": "user",
            "tags": [],
        }));
        assert!(!detail.contains("hunter2"), "{detail}");
        assert!(detail.ends_with("expected u8."), "{detail}");
    }

    #[test]
    fn if_none_match_handles_star_lists_and_weak_tags() {
        let sha = "ab12";
        assert!(if_none_match_matches("\"ab12\"", sha));
        assert!(if_none_match_matches("*", sha));
        assert!(if_none_match_matches("W/\"ab12\"", sha));
        assert!(if_none_match_matches("\"x\", W/\"y\" ,\"ab12\"", sha));
        assert!(if_none_match_matches("\"a,b\", \"ab12\"", sha));
        assert!(!if_none_match_matches("\"ab1\"", sha));
        assert!(!if_none_match_matches("ab12", sha));
        assert!(!if_none_match_matches("", sha));
        assert!(!if_none_match_matches("\"ab12", sha));
    }

    /// A strong ETag's opaque value as the app makes it: SHA-256 hex.
    fn sha256_hex() -> impl Strategy<Value = String> {
        "[0-9a-f]{64}"
    }

    /// A well-formed entity tag other than ours, weak or strong, whose opaque
    /// part is hostile text (commas, spaces, non-ASCII...) without a quote.
    fn other_entity_tag() -> impl Strategy<Value = String> {
        (any::<bool>(), hostile_text()).prop_map(|(weak, opaque)| {
            let opaque: String = opaque.chars().filter(|&c| c != '"').collect();
            format!("{}\"{opaque}\"", if weak { "W/" } else { "" })
        })
    }

    /// What may stand between list members: optional whitespace around one
    /// or more commas (RFC 9110 §5.6.1 allows empty list elements).
    fn list_separator() -> impl Strategy<Value = String> {
        "[ \\t]{0,2},([ \\t]{0,2},){0,2}[ \\t]{0,2}"
    }

    /// A list of members that are not our tag: hostile text, stars and
    /// other entity tags.
    fn junk_list() -> impl Strategy<Value = String> {
        let member = prop_oneof![
            3 => hostile_text(),
            1 => prop::sample::select(vec!["*", " * ", "W/*", "\"*\""]).prop_map(String::from),
            1 => other_entity_tag(),
        ];
        prop::collection::vec((member, list_separator()), 0..5)
            .prop_map(|members| members.into_iter().map(|(m, s)| m + &s).collect::<String>())
    }

    proptest! {
        #[test]
        fn any_if_none_match_is_read_without_panicking(
            header in hostile_text(),
            sha in sha256_hex(),
        ) {
            let _ = if_none_match_matches(&header, &sha);
        }
        #[test]
        fn our_tag_matches_after_other_members(
            before in prop::collection::vec((other_entity_tag(), list_separator()), 0..6),
            lead in "[ \\t]{0,2}",
            weak in any::<bool>(),
            after in hostile_text(),
            sha in sha256_hex(),
        ) {
            let mut header = lead;
            for (tag, separator) in before {
                header.push_str(&tag);
                header.push_str(&separator);
            }
            header.push_str(if weak { "W/" } else { "" });
            header.push_str(&format!("\"{sha}\""));
            header.push_str(", ");
            header.push_str(&after);
            prop_assert!(if_none_match_matches(&header, &sha), "{:?}", header);
        }
        #[test]
        fn text_without_our_tag_never_matches(
            header in junk_list(),
            sha in sha256_hex(),
        ) {
            // `*` alone is the one value that matches every tag.
            prop_assume!(header.trim() != "*" && !header.contains(&sha));
            prop_assert!(!if_none_match_matches(&header, &sha), "{:?}", header);
        }
    }
}
