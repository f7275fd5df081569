//! The docs component: `GET /api/v1/openapi.json`, the OpenAPI 3.1 document of
//! the whole API, and `GET /api/v1/docs`, an interactive reference over it.
//!
//! The document is written as `openapi.yaml` at the repository root; the build
//! script converts it to JSON and computes its entity tag, and [`app`] serves
//! that text with `ETag` and `Cache-Control: public, max-age=300`, answering a
//! matching `If-None-Match` with 304.
//!
//! The reference page is Swagger UI, installed from the npm registry by the
//! build script (`npm ci` on `web/package-lock.json`) and gzipped with the page
//! and its start-up script from `web/` into `target/docs-assets`, which
//! spin.toml mounts as the component's `files`: no CDN, nothing fetched from
//! another origin, a Content-Security-Policy that allows this origin only and
//! no inline script. The wasm keeps the document and the files' tags, not
//! their bytes (Swagger UI would take it past 600 KiB). The wasm-only `entry`
//! module adapts [`app::handle`] to Spin.

// Text is Unicode: slicing a `str` by byte offsets panics on the first
// multi-byte character (and a panic traps the component). Outside tests,
// split where a search found a boundary, or use `str::get`.
#![cfg_attr(not(test), deny(clippy::string_slice))]

pub mod app;

#[cfg(target_arch = "wasm32")]
mod entry;
