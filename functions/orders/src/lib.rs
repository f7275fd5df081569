//! The orders component: products and orders (`/api/v1/products...`,
//! `/api/v1/orders...` of docs/API.md).
//!
//! * [`config`] — Spin variables into [`config::Config`].
//! * [`model`] — validated inputs, records, JSON views and the pure rules
//!   (totals, stock, cancellation, idempotency decisions).
//! * [`repo`] — the repository port, and its in-memory fake (tests and
//!   feature `testing` only).
//! * [`mysql`] — the repository on MySQL: one transaction per order, rows
//!   locked in id order, `Idempotency-Key` reserved through a unique index.
//! * [`publish`] — the announcement of committed order events (Redis).
//! * [`app`] — routes and handlers.
//! * `entry` — the Spin entry point (wasm only).

// Text is Unicode: slicing a `str` by byte offsets panics on the first
// multi-byte character (and a panic traps the component). Outside tests,
// split where a search found a boundary, or use `str::get`.
#![cfg_attr(not(test), deny(clippy::string_slice))]

pub mod app;
pub mod config;
pub mod model;
pub mod publish;
pub mod repo;
pub mod sql;

#[cfg(target_arch = "wasm32")]
mod entry;
