//! The login component: `POST /api/v1/auth/login`, `/refresh` and `/logout`.
//!
//! * Login checks the brute-force locks ([`limiter`]) before any password
//!   work, verifies the argon2id hash (one verify even for an unknown email),
//!   and opens a session: an HS256 access token carrying the session id
//!   (`sid`) plus a 256-bit refresh token stored only as its SHA-256.
//! * Refresh rotates the refresh token; presenting a rotated one again is
//!   reuse and revokes its session.
//! * Logout puts the access token's `jti` on the shared deny-list and revokes
//!   its session.
//!
//! [`app`] holds the handlers (plain Rust over ports, unit-tested natively);
//! the wasm-only `entry` module adapts them to Spin.

pub mod app;
pub mod limiter;

#[cfg(target_arch = "wasm32")]
mod entry;
