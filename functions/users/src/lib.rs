//! The users component: registration, `me`, read, admin list, update and
//! delete under `/api/v1/users`, and the `GET /api/v1/health` check.
//!
//! Reads of a single user go through the key-value cache ([`shared::users::cached_user`]):
//! a warm entry answers without opening a MySQL connection. Writes invalidate
//! the entry; password changes and deletions revoke the user's tokens
//! everywhere at once (see [`app`]).
//!
//! [`app`] holds the handlers (plain Rust over ports, unit-tested natively);
//! the wasm-only `entry` module adapts them to Spin.

pub mod app;

#[cfg(target_arch = "wasm32")]
mod entry;
