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
        serde_json::from_str(text).map_err(|e| ApiError::InvalidBody(describe_json_error(&e)))
    }
}

/// serde_json's message names the offending field or position without echoing
/// input values, so it is safe and useful to send back.
fn describe_json_error(e: &serde_json::Error) -> String {
    match e.classify() {
        serde_json::error::Category::Data => format!("Invalid JSON body: {e}"),
        _ => format!("The body is not valid JSON: {e}"),
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

    #[test]
    fn query_params_are_percent_decoded() {
        let r = Request::new(Method::Get, "/x?filename=a%20b.png&x=1");
        assert_eq!(r.query_param("filename").as_deref(), Some("a b.png"));
    }
}
