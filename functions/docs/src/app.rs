//! The routes of the docs component, plain Rust so they are unit-tested natively:
//! the OpenAPI document, and the interactive reference page over it.

use shared::context::RequestContext;
use shared::http::{Method, Request, Response};
use shared::router::Router;
use shared::ApiError;

/// The OpenAPI document as compact JSON, converted from `openapi.yaml` at build time.
pub const DOCUMENT: &str = include_str!(concat!(env!("OUT_DIR"), "/openapi.json"));

/// The document's strong entity tag (quoted), computed at build time.
pub const ETAG: &str = include_str!(concat!(env!("OUT_DIR"), "/openapi.etag"));

/// Five minutes: clients and CDNs may reuse the document and the page briefly,
/// and revalidate cheaply with `If-None-Match` after that.
const CACHE_CONTROL: &str = "public, max-age=300";

/// The page loads its scripts, styles and the document from this origin only
/// and runs no inline script; Swagger UI's own icons are `data:` images. It
/// cannot be framed, and sends "try it out" requests to this origin only.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; \
     manifest-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// One file of the reference page, gzipped at build time.
#[derive(Debug)]
pub struct Asset {
    /// The last path segment it is served under (`index.html` is the page itself).
    pub name: &'static str,
    /// Its `Content-Type`.
    pub content_type: &'static str,
    /// Strong entity tag of the uncompressed bytes (quoted).
    pub etag: &'static str,
    /// Length of the uncompressed bytes.
    pub len: usize,
    /// The bytes as a gzip member with a bare 10-byte header.
    pub gzip: &'static [u8],
}

include!(concat!(env!("OUT_DIR"), "/assets.rs"));

/// The asset served under `name`.
pub fn asset(name: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.name == name)
}

#[derive(Debug, Clone, Copy)]
enum Route {
    Document,
    Page,
    PageAsset,
}

fn router() -> Router<Route> {
    Router::new()
        .route(Method::Get, "/api/v1/openapi.json", Route::Document)
        .route(Method::Get, "/api/v1/docs", Route::Page)
        .route(Method::Get, "/api/v1/docs/:asset", Route::PageAsset)
}

/// Routes and answers one request: the document or a file of the page, or 304
/// when the caller's copy is current, or 404/405 for anything else.
pub fn handle(ctx: &RequestContext, req: &Request) -> Result<Response, ApiError> {
    let (route, params) = router().dispatch(ctx, &req.method, &req.path)?;
    match route {
        Route::Document => Ok(document(req)),
        Route::Page => Ok(page_asset(
            req,
            asset("index.html").expect("the page is built in"),
        )),
        Route::PageAsset => {
            let name = params.get("asset").unwrap_or_default();
            match asset(name) {
                Some(found) if found.name != "index.html" => Ok(page_asset(req, found)),
                _ => Err(ApiError::NotFound),
            }
        }
    }
}

fn document(req: &Request) -> Response {
    let response = if req
        .header("if-none-match")
        .is_some_and(|h| matches_etag(h, ETAG))
    {
        Response::new(304)
    } else {
        Response::new(200)
            .with_header("content-type", "application/json")
            .with_body(DOCUMENT.as_bytes().to_vec())
    };
    response
        .with_header("etag", ETAG)
        .with_header("cache-control", CACHE_CONTROL)
}

/// A file of the page: gzipped when the client accepts it, inflated otherwise.
fn page_asset(req: &Request, asset: &Asset) -> Response {
    let gzip = req.header("accept-encoding").is_some_and(accepts_gzip);
    let etag = if gzip {
        // A representation of its own (RFC 9110 §8.8.3): its own tag.
        format!("{}-gzip\"", asset.etag.trim_end_matches('"'))
    } else {
        asset.etag.to_string()
    };
    let current = req
        .header("if-none-match")
        .is_some_and(|h| matches_etag(h, &etag));
    let mut response = if current {
        Response::new(304)
    } else {
        let response = Response::new(200).with_header("content-type", asset.content_type);
        if gzip {
            response
                .with_header("content-encoding", "gzip")
                .with_body(asset.gzip.to_vec())
        } else {
            response.with_body(inflate(asset))
        }
    };
    if asset.name == "index.html" {
        response = response
            .with_header("content-security-policy", CONTENT_SECURITY_POLICY)
            .with_header("referrer-policy", "no-referrer");
    }
    response
        .with_header("vary", "Accept-Encoding")
        .with_header("x-content-type-options", "nosniff")
        .with_header("etag", &etag)
        .with_header("cache-control", CACHE_CONTROL)
}

/// The uncompressed bytes of an asset (its gzip member's deflate stream).
pub fn inflate(asset: &Asset) -> Vec<u8> {
    let (header, trailer) = (10, 8);
    let gzip = asset.gzip;
    assert!(
        gzip.len() > header + trailer && gzip[..4] == [0x1f, 0x8b, 8, 0],
        "{}: not a bare gzip member",
        asset.name
    );
    let bytes = miniz_oxide::inflate::decompress_to_vec_with_limit(
        &gzip[header..gzip.len() - trailer],
        asset.len,
    )
    .unwrap_or_else(|e| panic!("{}: corrupt gzip built in: {e:?}", asset.name));
    debug_assert_eq!(bytes.len(), asset.len);
    bytes
}

/// Whether an `Accept-Encoding` value allows gzip: `gzip`, `x-gzip` or `*`
/// listed without `q=0`.
fn accepts_gzip(header: &str) -> bool {
    header.split(',').any(|item| {
        let mut parts = item.split(';').map(str::trim);
        let coding = parts.next().unwrap_or_default().to_ascii_lowercase();
        let refused = parts.any(|p| {
            p.split_once('=').is_some_and(|(k, v)| {
                k.trim().eq_ignore_ascii_case("q")
                    && v.trim().parse::<f32>().is_ok_and(|q| q <= 0.0)
            })
        });
        matches!(coding.as_str(), "gzip" | "x-gzip" | "*") && !refused
    })
}

/// `If-None-Match` uses the weak comparison (RFC 9110 §13.1.2): `*`, or any
/// listed tag equal to ours once a `W/` prefix is ignored.
fn matches_etag(header: &str, etag: &str) -> bool {
    header
        .split(',')
        .map(str::trim)
        .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(req: &Request) -> Result<Response, ApiError> {
        handle(&RequestContext::new(req, 0), req)
    }

    fn get(path: &str) -> Request {
        Request::new(Method::Get, path)
    }

    #[test]
    fn document_is_openapi_3_1_json() {
        let resp = call(&get("/api/v1/openapi.json")).unwrap();
        assert_eq!(resp.status, 200);
        assert_eq!(resp.header("content-type"), Some("application/json"));
        let doc: serde_json::Value = serde_json::from_slice(&resp.body).unwrap();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
        assert!(doc["paths"]["/api/v1/openapi.json"]["get"].is_object());
    }

    #[test]
    fn document_carries_etag_and_cache_control() {
        let resp = call(&get("/api/v1/openapi.json")).unwrap();
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
            let resp = call(&req).unwrap();
            assert_eq!(resp.status, 304, "{header}");
            assert!(resp.body.is_empty());
            assert_eq!(resp.header("etag"), Some(ETAG));
        }
    }

    #[test]
    fn stale_if_none_match_gets_the_document() {
        let req = get("/api/v1/openapi.json").with_header("if-none-match", "\"stale\"");
        assert_eq!(call(&req).unwrap().status, 200);
    }

    #[test]
    fn other_methods_are_405_with_allow() {
        let err = call(&Request::new(Method::Post, "/api/v1/openapi.json")).unwrap_err();
        assert_eq!(
            err,
            ApiError::MethodNotAllowed {
                allow: "GET".into()
            }
        );
    }

    #[test]
    fn head_is_served_like_get() {
        let resp = call(&Request::new(Method::Head, "/api/v1/openapi.json")).unwrap();
        assert_eq!(resp.status, 200);
    }

    fn page_text(resp: &Response) -> String {
        assert_eq!(resp.header("content-encoding"), None);
        String::from_utf8(resp.body.clone()).unwrap()
    }

    #[test]
    fn page_is_html_under_a_strict_content_security_policy() {
        let resp = call(&get("/api/v1/docs")).unwrap();
        assert_eq!(resp.status, 200);
        assert_eq!(
            resp.header("content-type"),
            Some("text/html; charset=utf-8")
        );
        let csp = resp.header("content-security-policy").unwrap();
        assert_eq!(csp, CONTENT_SECURITY_POLICY);
        for directive in [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "connect-src 'self'",
            "frame-ancestors 'none'",
            "base-uri 'none'",
        ] {
            assert!(csp.contains(directive), "{directive}");
        }
        assert!(!csp.contains("unsafe") && !csp.contains("http"), "{csp}");
        assert_eq!(resp.header("x-content-type-options"), Some("nosniff"));
        let html = page_text(&resp);
        assert!(html.contains("<div id=\"swagger-ui\">"));
        assert!(
            !html.contains("<script>") && !html.contains(" style="),
            "no inline script or style: the policy would block it"
        );
    }

    /// Everything the page and its script load is served here, never from a CDN.
    #[test]
    fn every_file_the_page_loads_is_served_by_this_component() {
        let html = page_text(&call(&get("/api/v1/docs")).unwrap());
        let mut loaded = Vec::new();
        for attr in ["src=\"", "href=\""] {
            for piece in html.split(attr).skip(1) {
                loaded.push(piece.split('"').next().unwrap().to_string());
            }
        }
        assert!(loaded.len() >= 3, "{loaded:?}");
        for url in loaded {
            if url == "data:," || url == "openapi.json" {
                continue;
            }
            let name = url
                .strip_prefix("docs/")
                .unwrap_or_else(|| panic!("{url}: not a file of this component"));
            let resp = call(&get(&format!("/api/v1/docs/{name}"))).unwrap();
            assert_eq!(resp.status, 200, "{url}");
            assert!(!resp.body.is_empty(), "{url}");
        }
        let script = page_text(&call(&get("/api/v1/docs/docs.js")).unwrap());
        assert!(script.contains("openapi.json") && script.contains("validatorUrl: null"));
    }

    #[test]
    fn assets_are_gzipped_for_clients_that_accept_it_and_inflated_for_others() {
        for asset in ASSETS {
            let path = if asset.name == "index.html" {
                "/api/v1/docs".to_string()
            } else {
                format!("/api/v1/docs/{}", asset.name)
            };
            let plain = call(&get(&path)).unwrap();
            assert_eq!(plain.body.len(), asset.len, "{}", asset.name);
            assert_eq!(plain.header("etag"), Some(asset.etag));
            assert_eq!(plain.header("vary"), Some("Accept-Encoding"));
            assert_eq!(plain.header("content-type"), Some(asset.content_type));

            let zipped =
                call(&get(&path).with_header("accept-encoding", "gzip, deflate, br")).unwrap();
            assert_eq!(zipped.header("content-encoding"), Some("gzip"));
            assert_eq!(zipped.body, asset.gzip);
            assert!(zipped.body.len() < plain.body.len() || asset.len < 200);
            let zipped_tag = zipped.header("etag").unwrap().to_string();
            assert_ne!(zipped_tag, asset.etag, "each encoding has its own tag");

            let again = get(&path)
                .with_header("accept-encoding", "gzip")
                .with_header("if-none-match", &zipped_tag);
            let again = call(&again).unwrap();
            assert_eq!(again.status, 304, "{}", asset.name);
            assert!(again.body.is_empty());
        }
    }

    #[test]
    fn swagger_ui_is_built_in() {
        let bundle = asset("swagger-ui-bundle.js").unwrap();
        assert!(bundle.len > 500_000, "the full bundle, not a stub");
        assert!(String::from_utf8(inflate(bundle))
            .unwrap()
            .contains("SwaggerUIBundle"));
        let css = String::from_utf8(inflate(asset("swagger-ui.css").unwrap())).unwrap();
        assert!(css.contains(".swagger-ui") && !css.contains("sourceMappingURL"));
        assert!(asset("LICENSE.txt").is_some());
    }

    #[test]
    fn unknown_assets_are_404_and_the_page_has_one_address() {
        for path in [
            "/api/v1/docs/nope.js",
            "/api/v1/docs/index.html",
            "/api/v1/docs/swagger-ui-bundle.js.map",
            "/api/v1/docs/a/b",
        ] {
            assert_eq!(call(&get(path)).unwrap_err(), ApiError::NotFound, "{path}");
        }
        let err = call(&Request::new(Method::Post, "/api/v1/docs")).unwrap_err();
        assert_eq!(
            err,
            ApiError::MethodNotAllowed {
                allow: "GET".into()
            }
        );
    }

    #[test]
    fn accept_encoding_is_read_with_its_weights() {
        for yes in [
            "gzip",
            "br, gzip",
            "GZIP;q=0.5",
            "x-gzip",
            "*",
            "deflate, *;q=0.1",
        ] {
            assert!(accepts_gzip(yes), "{yes}");
        }
        for no in [
            "",
            "identity",
            "br, deflate",
            "gzip;q=0",
            "gzip; q=0.0",
            "gzipx",
        ] {
            assert!(!accepts_gzip(no), "{no}");
        }
    }
}
