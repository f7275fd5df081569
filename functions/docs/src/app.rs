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

/// Whether an `Accept-Encoding` value allows gzip: `gzip` or `x-gzip` listed
/// without `q=0`, or, when neither is listed, `*` without `q=0`.
fn accepts_gzip(header: &str) -> bool {
    // `Some(accepted)` once gzip is named, whatever `*` says.
    let mut gzip: Option<bool> = None;
    let mut wildcard = false;
    for item in header.split(',') {
        let mut parts = item.split(';').map(str::trim);
        let coding = parts.next().unwrap_or_default().to_ascii_lowercase();
        let refused = parts.any(|p| {
            p.split_once('=').is_some_and(|(k, v)| {
                k.trim().eq_ignore_ascii_case("q")
                    && v.trim().parse::<f32>().is_ok_and(|q| q <= 0.0)
            })
        });
        match coding.as_str() {
            "gzip" | "x-gzip" => gzip = Some(gzip.unwrap_or(false) || !refused),
            "*" => wildcard |= !refused,
            _ => {}
        }
    }
    // `*` stands only for the codings the header does not name (RFC 9110
    // §12.5.3): `gzip;q=0, *` refuses gzip, and must not get it.
    gzip.unwrap_or(wildcard)
}

/// Whether `If-None-Match` matches `etag` (quoted, as sent in `ETag`), read
/// the way every component reads it ([`shared::http::if_none_match_matches`]).
fn matches_etag(header: &str, etag: &str) -> bool {
    shared::http::if_none_match_matches(header, etag.trim_matches('"'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use shared::testing::hostile_text;

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
    fn a_star_is_a_wildcard_only_as_the_whole_if_none_match() {
        assert!(matches_etag(" * ", ETAG));
        // Found by `text_without_our_tag_never_matches` (now in shared::http).
        assert!(!matches_etag("\"stale\", *", ETAG));
        assert!(!matches_etag("*, W/*", ETAG));
        let stale = get("/api/v1/openapi.json").with_header("if-none-match", "\"stale\", *");
        assert_eq!(call(&stale).unwrap().status, 200);
    }

    #[test]
    fn gzip_refused_by_name_is_not_sent_for_a_star() {
        // Found by `gzip_refused_with_q_0_is_never_sent`.
        assert!(!accepts_gzip("gzip;q=0, *"));
        assert!(!accepts_gzip("*, x-gzip;q=0.0"));
        assert!(accepts_gzip("br, *;q=0.5"));
        assert!(!accepts_gzip("*;q=0"));
        let req = get("/api/v1/docs/docs.js").with_header("accept-encoding", "gzip;q=0, *");
        assert_eq!(call(&req).unwrap().header("content-encoding"), None);
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

    /// An `Accept-Encoding` member that names neither gzip nor `*`, with
    /// hostile parameters.
    fn other_coding() -> impl Strategy<Value = String> {
        (
            prop::sample::select(vec!["br", "deflate", "identity", "zstd", "gzipx", ""]),
            prop::option::of(hostile_text()),
        )
            .prop_map(|(coding, params)| {
                let params: String = params
                    .unwrap_or_default()
                    .chars()
                    .filter(|&c| c != ',')
                    .collect();
                format!("{coding};{params}")
            })
    }

    proptest! {



        #[test]
        fn any_accept_encoding_is_read_without_panicking(header in hostile_text()) {
            let _ = accepts_gzip(&header);
        }

        #[test]
        fn a_listed_gzip_is_accepted_among_other_codings(
            before in prop::collection::vec(other_coding(), 0..4),
            coding in prop::sample::select(vec!["gzip", "GZip", "x-gzip", "*"]),
            q in prop::option::of("0\\.[0-9]{0,2}[1-9]|1(\\.0{0,3})?"),
            after in prop::collection::vec(other_coding(), 0..4),
        ) {
            let member = match q {
                Some(q) => format!("{coding} ; q={q}"),
                None => coding.to_string(),
            };
            let header = [before, vec![member], after].concat().join(", ");
            prop_assert!(accepts_gzip(&header), "{:?}", header);
        }

        #[test]
        fn gzip_refused_with_q_0_is_never_sent(
            others in prop::collection::vec(
                prop_oneof![other_coding(), Just("*".to_string()), Just("*;q=0.5".to_string())],
                0..6,
            ),
            zero in prop::sample::select(vec!["0", "0.0", "0.000", " 0 "]),
            at in any::<prop::sample::Index>(),
        ) {
            let mut members = others;
            let refusal = format!("gzip;q={zero}");
            members.insert(at.index(members.len() + 1), refusal);
            let header = members.join(", ");
            prop_assert!(!accepts_gzip(&header), "{:?}", header);
        }

        #[test]
        fn only_built_in_assets_are_served(name in hostile_text()) {
            // The path as the host hands it over, query separator and all.
            let mut req = get("/");
            req.path = format!("/api/v1/docs/{name}");
            match call(&req) {
                Ok(resp) => {
                    prop_assert_eq!(resp.status, 200);
                    // The router forgives one trailing slash: `/api/v1/docs/` is the page.
                    let asked = name.strip_suffix('/').unwrap_or(&name);
                    prop_assert!(
                        asked.is_empty()
                            || ASSETS.iter().any(|a| a.name == asked && a.name != "index.html"),
                        "{:?}", name
                    );
                }
                Err(e) => prop_assert!(matches!(e.status(), 400 | 404), "{:?}", e),
            }
        }

        #[test]
        fn any_conditional_headers_get_a_well_formed_answer(
            if_none_match in hostile_text(),
            accept_encoding in hostile_text(),
            which in any::<prop::sample::Index>(),
        ) {
            let asset = which.get(ASSETS);
            let path = if asset.name == "index.html" {
                "/api/v1/docs".to_string()
            } else {
                format!("/api/v1/docs/{}", asset.name)
            };
            let req = get(&path)
                .with_header("if-none-match", &if_none_match)
                .with_header("accept-encoding", &accept_encoding);
            let resp = call(&req).unwrap();
            prop_assert!(resp.status == 200 || resp.status == 304);
            let etag = resp.header("etag").unwrap_or_default();
            prop_assert!(etag.starts_with('"') && etag.ends_with('"'), "{:?}", etag);
            if resp.status == 304 {
                prop_assert!(resp.body.is_empty());
            } else if resp.header("content-encoding") == Some("gzip") {
                prop_assert!(accepts_gzip(&accept_encoding));
                prop_assert_eq!(resp.body.as_slice(), asset.gzip);
            } else {
                prop_assert_eq!(resp.body.len(), asset.len);
            }
        }
    }
}
