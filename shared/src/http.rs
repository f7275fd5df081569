//! Framework-neutral HTTP request and response.
//!
//! Handlers see these types, never `spin_sdk`'s, so a whole component can be
//! exercised natively in unit tests. The Spin adapter ([`crate::spin`]) converts
//! at the edge.

use serde::{de::DeserializeOwned, Serialize};

use crate::error::ApiError;

/// Largest JSON body any route accepts (docs/API.md: over 64 KiB answers 413).
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

    /// Parses the body as JSON into `T`, enforcing docs/API.md's conventions: the
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
mod tests;
