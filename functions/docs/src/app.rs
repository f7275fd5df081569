//! The one route of the docs component, plain Rust so it is unit-tested natively.

use shared::http::{Method, Request, Response};
use shared::router::Router;
use shared::ApiError;

/// The OpenAPI document as compact JSON, converted from `openapi.yaml` at build time.
pub const DOCUMENT: &str = include_str!(concat!(env!("OUT_DIR"), "/openapi.json"));

/// The document's strong entity tag (quoted), computed at build time.
pub const ETAG: &str = include_str!(concat!(env!("OUT_DIR"), "/openapi.etag"));

/// Five minutes: clients and CDNs may reuse the document briefly, and revalidate
/// cheaply with `If-None-Match` after that.
const CACHE_CONTROL: &str = "public, max-age=300";

#[derive(Debug, Clone, Copy)]
enum Route {
    Document,
}

fn router() -> Router<Route> {
    Router::new().route(Method::Get, "/api/v1/openapi.json", Route::Document)
}

/// Routes and answers one request: the document, or 304 when the caller's copy
/// is current, or 404/405 for anything else.
pub fn handle(req: &Request) -> Result<Response, ApiError> {
    let (Route::Document, _) = router().find(&req.method, &req.path)?;
    let response = if req.header("if-none-match").is_some_and(matches_etag) {
        Response::new(304)
    } else {
        Response::new(200)
            .with_header("content-type", "application/json")
            .with_body(DOCUMENT.as_bytes().to_vec())
    };
    Ok(response
        .with_header("etag", ETAG)
        .with_header("cache-control", CACHE_CONTROL))
}

/// `If-None-Match` uses the weak comparison (RFC 9110 §13.1.2): `*`, or any
/// listed tag equal to ours once a `W/` prefix is ignored.
fn matches_etag(header: &str) -> bool {
    header
        .split(',')
        .map(str::trim)
        .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == ETAG)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(path: &str) -> Request {
        Request::new(Method::Get, path)
    }

    #[test]
    fn document_is_openapi_3_1_json() {
        let resp = handle(&get("/api/v1/openapi.json")).unwrap();
        assert_eq!(resp.status, 200);
        assert_eq!(resp.header("content-type"), Some("application/json"));
        let doc: serde_json::Value = serde_json::from_slice(&resp.body).unwrap();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
        assert!(doc["paths"]["/api/v1/openapi.json"]["get"].is_object());
    }

    #[test]
    fn document_carries_etag_and_cache_control() {
        let resp = handle(&get("/api/v1/openapi.json")).unwrap();
        assert_eq!(resp.header("etag"), Some(ETAG));
        assert!(ETAG.starts_with('"') && ETAG.ends_with('"') && ETAG.len() == 34);
        assert_eq!(resp.header("cache-control"), Some("public, max-age=300"));
    }

    #[test]
    fn matching_if_none_match_answers_304_without_body() {
        for header in [
            ETAG.to_string(),
            format!("W/{ETAG}"),
            format!("\"x\", {ETAG}"),
            "*".into(),
        ] {
            let req = get("/api/v1/openapi.json").with_header("if-none-match", &header);
            let resp = handle(&req).unwrap();
            assert_eq!(resp.status, 304, "{header}");
            assert!(resp.body.is_empty());
            assert_eq!(resp.header("etag"), Some(ETAG));
        }
    }

    #[test]
    fn stale_if_none_match_gets_the_document() {
        let req = get("/api/v1/openapi.json").with_header("if-none-match", "\"stale\"");
        assert_eq!(handle(&req).unwrap().status, 200);
    }

    #[test]
    fn other_methods_are_405_with_allow() {
        let err = handle(&Request::new(Method::Post, "/api/v1/openapi.json")).unwrap_err();
        assert_eq!(
            err,
            ApiError::MethodNotAllowed {
                allow: "GET".into()
            }
        );
    }

    #[test]
    fn head_is_served_like_get() {
        let resp = handle(&Request::new(Method::Head, "/api/v1/openapi.json")).unwrap();
        assert_eq!(resp.status, 200);
    }
}
