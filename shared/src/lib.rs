//! The code every component of the API shares.
//!
//! Handlers in `functions/*` are plain Rust over the ports defined here
//! ([`kv::KeyValue`], [`db::Sql`]) and the request/response types of [`http`],
//! so they run natively in unit tests against the in-memory fakes, and on
//! Spin through the adapters in [`spin`] (compiled for `wasm32` only).
//!
//! * [`error`] — the one error type and its mapping to docs/API.md's problem `code`s;
//!   [`problem`] renders it as an RFC 9457 response.
//! * [`http`] — framework-neutral request and response, JSON body parsing.
//! * [`router`] — path matching with docs/API.md's 404/405 behaviour.
//! * [`context`] — request id, client address, clock, configuration.
//! * [`domain`] — validated input types (parse, don't validate).
//! * [`auth`] — JWT issue/verify, bearer extraction, global revocation.
//! * [`password`] — argon2id hashing.
//! * [`kv`], [`cache`] — the key-value port and cache-aside on top of it.
//! * [`db`] — the SQL port.
//! * [`outbound`] — the outbound HTTP port (object stores, webhook receivers).
//! * [`keys`] — every key-value key prefix, in one place.
//! * [`config`] — Spin variables into a component's `Config`.
//! * [`redact`] — secrets out of log lines (URL userinfo, password parameters).
//! * [`log`] — the one JSON log line per request.

// Text is Unicode: slicing a `str` by byte offsets panics on the first
// multi-byte character (and a panic traps the component). Outside tests,
// split where a search found a boundary, or use `str::get`.
#![cfg_attr(not(test), deny(clippy::string_slice))]
#![warn(missing_docs)]

pub mod auth;
pub mod cache;
pub mod config;
pub mod context;
pub mod db;
pub mod domain;
pub mod error;
pub mod http;
pub mod id;
pub mod keys;
pub mod kv;
pub mod log;
pub mod outbound;
pub mod password;
pub mod problem;
pub mod redact;
pub mod router;
pub mod time;

#[cfg(target_arch = "wasm32")]
pub mod spin;

#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use error::{ApiError, FieldError};
pub use http::{Request, Response};
