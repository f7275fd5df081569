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
//!   upload ([`sql`]); content is served with a strong ETag, `nosniff`, a
//!   safe `Content-Disposition`, and CDN-friendly `Cache-Control` ([`app`]).
//! * With `upload_storage = s3` the bytes live in an S3-compatible bucket
//!   ([`store`]): clients may upload straight to it with a presigned `PUT`
//!   and content answers with a redirect to a presigned `GET` or a CDN.
//!
//! The modules:
//! * [`config`] — Spin variables into [`config::Config`].
//! * [`model`] — uploads as data and the pure rules (quota, pending cap).
//! * [`repo`] — the repository port and its in-memory fake.
//! * [`mysql`] — the repository on MySQL: content stored once, the owner's
//!   row lock around every quota check.
//! * [`store`] — the object-store port and its S3 adapter.
//! * [`detect`], [`names`], [`multipart`] — what a file is, what it may be
//!   called, and how it is taken out of a form.
//! * [`app`] — routes and handlers (plain Rust over the ports, unit-tested
//!   natively).
//! * `entry` — the Spin entry point (wasm only).

// Text is Unicode: slicing a `str` by byte offsets panics on the first
// multi-byte character (and a panic traps the component). Outside tests,
// split where a search found a boundary, or use `str::get`.
#![cfg_attr(not(test), deny(clippy::string_slice))]

pub mod app;
pub mod config;
pub mod detect;
pub mod model;
pub mod multipart;
pub mod names;
pub mod repo;
pub mod sql;
pub mod store;

#[cfg(target_arch = "wasm32")]
mod entry;
