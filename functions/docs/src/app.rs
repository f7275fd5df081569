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
mod tests;
