//! The docs component: `GET /api/v1/openapi.json`, the OpenAPI 3.1 document of
//! the whole API.
//!
//! The document is written as `openapi.yaml` at the repository root; the build
//! script converts it to JSON and computes its entity tag, and [`app`] serves
//! that text with `ETag` and `Cache-Control: public, max-age=300`, answering a
//! matching `If-None-Match` with 304. The wasm-only `entry` module adapts
//! [`app::handle`] to Spin.

pub mod app;

#[cfg(target_arch = "wasm32")]
mod entry;
