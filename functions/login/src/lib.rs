//! The login component: `POST /api/v1/auth/login`, `/refresh` and `/logout`.
//!
//! * Login counts the attempt against its email + address and address limits
//!   ([`identity::limits`]) before any password work, verifies the argon2id
//!   hash (one verify even for an unknown email), and opens a session: an
//!   HS256 access token carrying the session id (`sid`) plus a 256-bit
//!   refresh token stored only as its SHA-256.
//! * Refresh rotates the refresh token within the session's absolute
//!   lifetime; presenting a rotated one again is reuse and ends its session.
//! * Logout ends the session: its refresh token and every access token
//!   carrying its `sid`, in every component.
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
