//! The document and the reference page as clients get them: caching and
//! conditional requests, gzip negotiation, only built-in assets served, and
//! 503 when the component runs without its files.

use super::*;
use proptest::prelude::*;
use shared::testing::hostile_text;

/// The page's files as the build script writes them, the directory spin.toml
/// mounts holding the same.
fn built_files() -> &'static Path {
    Path::new(concat!(env!("OUT_DIR"), "/assets"))
}

fn call(req: &Request) -> Result<Response, ApiError> {
    handle(&RequestContext::new(req, 0), req, built_files())
}

fn gzip_of(asset: &Asset) -> Vec<u8> {
    read_gzip(asset, built_files()).unwrap()
}

fn text_of(asset: &Asset) -> String {
    String::from_utf8(inflate(asset, &gzip_of(asset)).unwrap()).unwrap()
}

/// An empty directory standing for a bad `files` mount.
fn empty_mount() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
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

        let zipped = call(&get(&path).with_header("accept-encoding", "gzip, deflate, br")).unwrap();
        assert_eq!(zipped.header("content-encoding"), Some("gzip"));
        assert_eq!(zipped.body, gzip_of(asset));
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
fn swagger_ui_is_the_full_bundle() {
    let bundle = asset("swagger-ui-bundle.js").unwrap();
    assert!(bundle.len > 500_000, "the full bundle, not a stub");
    assert!(text_of(bundle).contains("SwaggerUIBundle"));
    let css = text_of(asset("swagger-ui.css").unwrap());
    assert!(css.contains(".swagger-ui") && !css.contains("sourceMappingURL"));
    assert!(asset("LICENSE.txt").is_some());
}

#[test]
fn the_wasm_holds_no_file_of_the_page() {
    // Every file is named for the tag of its bytes: the build cannot hand the
    // component bytes other than those its table describes.
    for asset in ASSETS {
        let tag = asset.etag.trim_matches('"');
        assert_eq!(asset.file, format!("{}.{tag}.gz", asset.name));
    }
}

#[test]
fn without_its_files_the_page_is_503_and_the_document_still_served() {
    let empty = empty_mount();
    for path in ["/api/v1/docs", "/api/v1/docs/swagger-ui-bundle.js"] {
        let req = get(path);
        let err = handle(&RequestContext::new(&req, 0), &req, empty.path()).unwrap_err();
        assert!(matches!(err, ApiError::Unavailable(_)), "{path}: {err:?}");
        assert_eq!(err.status(), 503);
    }
    let req = get("/api/v1/openapi.json");
    let resp = handle(&RequestContext::new(&req, 0), &req, empty.path()).unwrap();
    assert_eq!(resp.status, 200);
}

#[test]
fn a_current_copy_is_answered_304_without_reading_the_files() {
    let empty = empty_mount();
    let page = asset("index.html").unwrap();
    let req = get("/api/v1/docs").with_header("if-none-match", page.etag);
    let resp = handle(&RequestContext::new(&req, 0), &req, empty.path()).unwrap();
    assert_eq!(resp.status, 304);
}

#[test]
fn a_truncated_or_foreign_file_is_503_never_sent_under_the_tag() {
    let bundle = asset("swagger-ui-bundle.js").unwrap();
    let whole = gzip_of(bundle);
    let half = whole.get(..whole.len() / 2).unwrap().to_vec();
    let mut other_length = whole.clone();
    let at = other_length.len() - 1;
    other_length[at] ^= 1;
    for (label, bytes) in [
        ("truncated", half),
        ("foreign", b"not gzip at all".to_vec()),
        ("other-length", other_length),
    ] {
        let mount = empty_mount();
        std::fs::write(mount.path().join(bundle.file), bytes).unwrap();
        for accept in ["gzip", "identity"] {
            let req =
                get("/api/v1/docs/swagger-ui-bundle.js").with_header("accept-encoding", accept);
            let err = handle(&RequestContext::new(&req, 0), &req, mount.path()).unwrap_err();
            assert!(
                matches!(err, ApiError::Unavailable(_)),
                "{label} {accept}: {err:?}"
            );
        }
    }
}

#[test]
fn a_corrupt_deflate_stream_is_503_for_a_client_without_gzip() {
    let bundle = asset("swagger-ui-bundle.js").unwrap();
    let mut bytes = gzip_of(bundle);
    // Header and trailer intact, the stream's first bytes garbled.
    for byte in bytes.iter_mut().skip(10).take(64) {
        *byte = 0xff;
    }
    let mount = empty_mount();
    std::fs::write(mount.path().join(bundle.file), bytes).unwrap();
    let req = get("/api/v1/docs/swagger-ui-bundle.js");
    let err = handle(&RequestContext::new(&req, 0), &req, mount.path()).unwrap_err();
    assert!(matches!(err, ApiError::Unavailable(_)), "{err:?}");
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
            prop_assert_eq!(resp.body, gzip_of(asset));
        } else {
            prop_assert_eq!(resp.body.len(), asset.len);
        }
    }
}
