//! The uploads component: `/api/v1/uploads...` — take user files safely,
//! store them durably in MySQL, serve them CDN-friendly.
//!
//! * The body is read within `upload_max_bytes` (plus a little room for
//!   multipart framing) by `shared::spin::serve`: a declared `Content-Length`
//!   over it is refused before reading, a stream that grows past it is cut off
//!   with 413, so memory stays bounded whatever the client sends.
//! * The file is a raw body or the one `file` part of a `multipart/form-data`
//!   body ([`multipart`]); its type is decided from its bytes and every client
//!   claim is checked against it ([`detect`]); its filename is sanitised
//!   ([`names`]).
//! * Bytes are stored once per distinct content (SHA-256), metadata once per
//!   upload ([`repo`]); content is served with a strong ETag, `nosniff`, a
//!   safe `Content-Disposition`, and CDN-friendly `Cache-Control` ([`app`]).
//! * With `upload_storage = s3` the bytes live in an S3-compatible bucket
//!   ([`store`]): clients may upload straight to it with a presigned `PUT`
//!   and content answers with a redirect to a presigned `GET` or a CDN.
//!
//! [`app`] holds the handlers (plain Rust over ports, unit-tested natively);
//! the wasm-only `entry` module adapts them to Spin.

// Text is Unicode: slicing a `str` by byte offsets panics on the first
// multi-byte character (and a panic traps the component). Outside tests,
// split where a search found a boundary, or use `str::get`.
#![cfg_attr(not(test), deny(clippy::string_slice))]

pub mod app;
pub mod config;
pub mod detect;
pub mod multipart;
pub mod names;
pub mod repo;
pub mod store;

#[cfg(target_arch = "wasm32")]
mod entry;
