//! The orders component: products and orders (`/api/v1/products...`,
//! `/api/v1/orders...` of API.md).
//!
//! * [`config`] — Spin variables into [`config::Config`].
//! * [`model`] — validated inputs, records, JSON views and the pure rules
//!   (totals, stock, cancellation, idempotency decisions).
//! * [`repo`] — the repository port and its in-memory fake.
//! * [`mysql`] — the repository on MySQL: one transaction per order, rows
//!   locked in id order, `Idempotency-Key` reserved through a unique index.
//! * [`publish`] — the announcement of committed order events (Redis).
//! * [`app`] — routes and handlers.
//! * `entry` — the Spin entry point (wasm only).

pub mod app;
pub mod config;
pub mod model;
pub mod mysql;
pub mod publish;
pub mod repo;

#[cfg(target_arch = "wasm32")]
mod entry;
