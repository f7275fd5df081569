//! The event store port, and (tests and feature `testing` only) its
//! in-memory fake.
//!
//! Every state change is one conditional statement on one row, so two
//! delivery runs (two Redis messages at once, or a message and the admin
//! route) never both send an event: [`EventStore::claim`] lets one run hold
//! it, and [`EventStore::delivered`] marks it once.

use shared::domain::Pagination;
use shared::error::ApiError;

use crate::model::{Event, State};

// Unit tests' fake only: a release wasm carries no second store.
#[cfg(any(test, feature = "testing"))]
mod memory;
#[cfg(any(test, feature = "testing"))]
pub use memory::MemoryEvents;

/// What one failed attempt records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedAttempt<'a> {
    /// The receiver's status, if it answered.
    pub status: Option<u16>,
    /// Why the attempt failed, for the admin list (no secret in it).
    pub error: &'a str,
    /// When to try again.
    pub next_attempt_at_ms: i64,
    /// The attempts ran out: the event becomes `failed`.
    pub give_up: bool,
}

/// Storage of the outbox's delivery state.
pub trait EventStore {
    /// Up to `limit` pending events, oldest first.
    fn pending(&self, limit: u32) -> Result<Vec<Event>, ApiError>;
    /// Takes event `id` for this run until `until_ms`; false when it is no
    /// longer pending or another run holds it.
    fn claim(&self, id: &str, now_ms: i64, until_ms: i64) -> Result<bool, ApiError>;
    /// Marks a claimed event delivered (once: false if it was not pending).
    fn delivered(&self, id: &str, now_ms: i64, status: u16) -> Result<bool, ApiError>;
    /// Records a failed attempt on a claimed event and releases it.
    fn failed(&self, id: &str, attempt: &FailedAttempt<'_>) -> Result<(), ApiError>;
    /// A page of events, newest first, optionally in one state, and the total.
    fn list(&self, state: Option<State>, page: Pagination) -> Result<(Vec<Event>, u64), ApiError>;
    /// One event.
    fn get(&self, id: &str) -> Result<Option<Event>, ApiError>;
    /// Makes event `id` pending again, due now (an admin's redelivery),
    /// unless a run holds it at this moment; the event as it now is, or
    /// `None` if there is no such event.
    fn redeliver(&self, id: &str, now_ms: i64) -> Result<Option<Event>, ApiError>;
}
