//! The users component: registration, `me`, read, admin list, update and
//! delete under `/api/v1/users`, and the `GET /api/v1/health` check.
//!
//! Reads of a single user go through the key-value cache
//! ([`identity::repo::cached_user`]): a warm entry answers without opening a
//! MySQL connection. Writes invalidate the entry; password changes, role
//! changes and deletions revoke the user's sessions everywhere at once, and
//! registration and `current_password` checks are attempt-limited (see [`app`]).
//!
//! [`config`] reads the Spin variables, [`app`] holds the handlers (plain
//! Rust over ports, unit-tested natively); the wasm-only `entry` module
//! adapts them to Spin.

// Text is Unicode: slicing a `str` by byte offsets panics on the first
// multi-byte character (and a panic traps the component). Outside tests,
// split where a search found a boundary, or use `str::get`.
#![cfg_attr(not(test), deny(clippy::string_slice))]

pub mod app;
pub mod config;

#[cfg(target_arch = "wasm32")]
mod entry;
