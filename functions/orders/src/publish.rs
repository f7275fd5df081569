//! The announcement after an order change commits: its event id on a Redis
//! channel, which wakes the events app (`spin-events.toml`, a Redis trigger
//! in an app of its own, so the API never goes down with Redis).
//!
//! An announcement is a hint, not the event: the event row committed with the
//! change (the outbox), so a failed or missing publish costs nothing but
//! time — the row stays pending and the next delivery run (the next
//! announcement, or `POST /api/v1/events/deliver`) sends it. The time is one
//! failed connect: a refused one is immediate (measured: +0.2 ms per order);
//! a server that drops packets costs the host's connect timeout (the test
//! host's is 5 s), which is why README asks for an address that refuses
//! when Redis is down (a Kubernetes Service without ready pods does).

#[cfg(any(test, feature = "testing"))]
use std::cell::RefCell;

/// Announces committed events.
pub trait EventPublisher {
    /// Publishes `event_id`; an error is logged by the caller, never answered.
    fn publish(&self, event_id: &str) -> Result<(), String>;
}

/// In-memory publisher for unit tests: records what was published, or
/// fails every publish (a Redis outage). Tests and feature `testing` only,
/// so the wasm ships the Redis publisher alone.
#[cfg(any(test, feature = "testing"))]
#[derive(Debug, Default)]
pub struct MemoryPublisher {
    /// The ids published, in order.
    pub published: RefCell<Vec<String>>,
    /// When set, every publish fails.
    pub failing: bool,
}

#[cfg(any(test, feature = "testing"))]
impl EventPublisher for MemoryPublisher {
    fn publish(&self, event_id: &str) -> Result<(), String> {
        if self.failing {
            return Err("connection refused".into());
        }
        self.published.borrow_mut().push(event_id.to_string());
        Ok(())
    }
}
