//! The routes of the docs component, plain Rust so they are unit-tested natively:
//! the OpenAPI document, and the interactive reference page over it.

use std::path::Path;

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

/// Where the page's files are inside the component: Spin copies the
/// `files` that spin.toml mounts (`target/docs-assets`, written by the build
/// script) under this directory, read-only.
pub const MOUNTED_FILES: &str = "/";

/// One file of the reference page, gzipped at build time. The wasm holds what
/// describes it; the bytes are a file of the component's Spin `files` mount.
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
    /// The file holding it as a gzip member with a bare 10-byte header:
    /// `<name>.<etag>.gz`, so it can only hold these bytes.
    pub file: &'static str,
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

/// Routes and answers one request: the document or a file of the page (read
/// from the directory `files`), or 304 when the caller's copy is current, or
/// 404/405 for anything else. A page file that is missing or not what its tag
/// says (the component deployed without its `files`) is 503: the document
/// itself never depends on them.
pub fn handle(ctx: &RequestContext, req: &Request, files: &Path) -> Result<Response, ApiError> {
    let (route, params) = router().dispatch(ctx, &req.method, &req.path)?;
    match route {
        Route::Document => Ok(document(req)),
        Route::Page => match asset("index.html") {
            Some(page) => page_asset(req, page, files),
            None => Err(ApiError::Internal("the page is not built in".into())),
        },
        Route::PageAsset => {
            let name = params.get("asset").unwrap_or_default();
            match asset(name) {
                Some(found) if found.name != "index.html" => page_asset(req, found, files),
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
fn page_asset(req: &Request, asset: &Asset, files: &Path) -> Result<Response, ApiError> {
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
        let compressed = read_gzip(asset, files)?;
        let response = Response::new(200).with_header("content-type", asset.content_type);
        if gzip {
            response
                .with_header("content-encoding", "gzip")
                .with_body(compressed)
        } else {
            response.with_body(inflate(asset, &compressed)?)
        }
    };
    if asset.name == "index.html" {
        response = response
            .with_header("content-security-policy", CONTENT_SECURITY_POLICY)
            .with_header("referrer-policy", "no-referrer");
    }
    Ok(response
        .with_header("vary", "Accept-Encoding")
        .with_header("x-content-type-options", "nosniff")
        .with_header("etag", &etag)
        .with_header("cache-control", CACHE_CONTROL))
}

const GZIP_HEADER: usize = 10;
const GZIP_TRAILER: usize = 8;

/// The gzip member of `asset` from the directory `files`, checked to be one
/// (magic, method, bare header) whose trailer gives the length the build
/// recorded: a truncated or foreign file is never sent under the asset's tag.
pub fn read_gzip(asset: &Asset, files: &Path) -> Result<Vec<u8>, ApiError> {
    let path = files.join(asset.file);
    let bytes = std::fs::read(&path).map_err(|e| {
        ApiError::Unavailable(format!(
            "cannot read {} (is target/docs-assets mounted as the component's files?): {e}",
            path.display()
        ))
    })?;
    let size = bytes
        .last_chunk::<4>()
        .map(|isize| u32::from_le_bytes(*isize));
    let well_formed = bytes.len() > GZIP_HEADER + GZIP_TRAILER
        && bytes.starts_with(&[0x1f, 0x8b, 8, 0])
        // ISIZE is the length modulo 2^32.
        && size == Some(asset.len as u32);
    if !well_formed {
        return Err(ApiError::Unavailable(format!(
            "{} is not the gzip member the build wrote",
            path.display()
        )));
    }
    Ok(bytes)
}

/// The uncompressed bytes of `asset`, from its gzip member (as [`read_gzip`]
/// returns it).
pub fn inflate(asset: &Asset, gzip: &[u8]) -> Result<Vec<u8>, ApiError> {
    let corrupt = |why: String| ApiError::Unavailable(format!("{}: {why}", asset.file));
    let deflate = gzip
        .get(GZIP_HEADER..gzip.len().saturating_sub(GZIP_TRAILER))
        .ok_or_else(|| corrupt("shorter than a gzip member".into()))?;
    let bytes = miniz_oxide::inflate::decompress_to_vec_with_limit(deflate, asset.len)
        .map_err(|e| corrupt(format!("corrupt deflate stream: {e:?}")))?;
    if bytes.len() != asset.len {
        return Err(corrupt(format!("{} bytes, not {}", bytes.len(), asset.len)));
    }
    Ok(bytes)
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
