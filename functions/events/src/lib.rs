//! The events component: delivers the order events that the orders component
//! writes to its outbox (`order_events`, in the transaction of each change) as
//! signed webhooks, at least once and in order.
//!
//! * [`model`] — an event row, its delivery state, backoff and signature.
//! * [`repo`] — the event store port, and its in-memory fake (tests and
//!   feature `testing` only); [`mysql`] the store on MySQL.
//! * [`deliver`] — one delivery run: the pending events oldest first, each
//!   claimed, sent and recorded.
//! * [`config`] — Spin variables into [`config::Config`].
//! * [`app`] — the admin routes (`/api/v1/events...`).
//! * `entry` — the Spin entry points (wasm only): the Redis trigger, woken by
//!   the orders component's announcement, and the HTTP routes.

// Text is Unicode: slicing a `str` by byte offsets panics on the first
// multi-byte character (and a panic traps the component). Outside tests,
// split where a search found a boundary, or use `str::get`.
#![cfg_attr(not(test), deny(clippy::string_slice))]

pub mod app;
pub mod config;
pub mod deliver;
pub mod model;
pub mod repo;
pub mod sql;

#[cfg(target_arch = "wasm32")]
mod entry;
