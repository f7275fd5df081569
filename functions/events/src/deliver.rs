//! One delivery run: the pending events, oldest first, each claimed, sent as
//! a signed POST and recorded.
//!
//! * **At least once.** An event leaves `pending` only when a webhook
//!   answered 2xx (or its attempts ran out). A run that dies mid-send leaves
//!   its claim to expire, and a later run sends the event again; receivers
//!   deduplicate on `webhook-id`.
//! * **In order.** A run stops at the first event it cannot send now — one
//!   another run holds, or one waiting out its backoff beyond this run's
//!   budget — so a later event never overtakes an earlier one (an order's
//!   cancellation never arrives before its creation).
//! * **Bounded.** A run claims no event once its budget is spent, so it
//!   ends within the host's request deadline and never dies holding a claim.
//! * **Backoff.** A failed attempt is retried after [`backoff_ms`] (1 s,
//!   doubling, at most an hour). Within its budget a run waits for the retry
//!   itself, so a receiver that was down for seconds gets the event without
//!   anyone asking; longer outages wait for the next run: the next order's
//!   announcement, or `POST /api/v1/events/deliver` (from a schedule where
//!   the platform has no Redis trigger).

use shared::error::ApiError;

use crate::model::{backoff_ms, signature, Event, SigningKey};
use crate::repo::{EventStore, FailedAttempt};

/// How long a run holds an event it is sending: past the host's request
/// deadline (30 s), so only a dead run's claim expires.
pub const CLAIM_MS: i64 = 60_000;

/// Events read per query.
const BATCH: u32 = 100;

/// Sends one webhook request.
pub trait Webhook {
    /// POSTs `body` with `headers` to `url`: the receiver's status, or why
    /// there was none.
    fn post(&self, url: &str, headers: &[(&str, String)], body: &[u8]) -> Result<u16, String>;
}

/// The run's clock.
pub trait Clock {
    /// Milliseconds since the epoch.
    fn now_ms(&self) -> i64;
    /// Waits `ms` milliseconds.
    fn sleep_ms(&self, ms: i64);
}

/// Where and how a run delivers.
#[derive(Debug, Clone)]
pub struct Delivery<'a> {
    /// The receiver (`webhook_url`).
    pub url: &'a str,
    /// The signing keys (`webhook_secret`).
    pub keys: &'a [SigningKey],
    /// Attempts before an event is given up as `failed`.
    pub max_attempts: u32,
    /// How long one run may keep sending and waiting.
    pub budget_ms: i64,
}

/// What a run did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Summary {
    /// Events a webhook accepted.
    pub delivered: u32,
    /// Attempts that failed (each is retried later, or gives up).
    pub failed_attempts: u32,
    /// Events given up as `failed` in this run.
    pub gave_up: u32,
}

/// Delivers every pending event it can, in order, within the budget.
pub fn run(
    store: &dyn EventStore,
    webhook: &dyn Webhook,
    clock: &dyn Clock,
    delivery: &Delivery<'_>,
) -> Result<Summary, ApiError> {
    let started = clock.now_ms();
    let mut summary = Summary::default();
    'batches: loop {
        let batch = store.pending(BATCH)?;
        if batch.is_empty() {
            return Ok(summary);
        }
        for event in batch {
            let now = clock.now_ms();
            // The budget bounds sending too, not only waiting: a backlog of
            // due events (after an outage) would otherwise keep one run
            // sending past the host's request deadline, which stops it
            // holding a claim — and every run then stops at that claim
            // until it expires (`CLAIM_MS`). What is left goes out in the
            // next run.
            if now - started >= delivery.budget_ms {
                return Ok(summary);
            }
            if event.next_attempt_at_ms > now {
                if event.next_attempt_at_ms - started > delivery.budget_ms {
                    return Ok(summary);
                }
                clock.sleep_ms(event.next_attempt_at_ms - now);
            }
            let now = clock.now_ms();
            if !store.claim(&event.id, now, now + CLAIM_MS)? {
                return Ok(summary);
            }
            match send(webhook, delivery, &event, now) {
                Ok(status) => {
                    store.delivered(&event.id, clock.now_ms(), status)?;
                    summary.delivered += 1;
                }
                Err((status, error)) => {
                    let attempts = event.attempts + 1;
                    let give_up = attempts >= delivery.max_attempts;
                    store.failed(
                        &event.id,
                        &FailedAttempt {
                            status,
                            error: &error,
                            next_attempt_at_ms: clock.now_ms() + backoff_ms(attempts),
                            give_up,
                        },
                    )?;
                    summary.failed_attempts += 1;
                    if give_up {
                        summary.gave_up += 1;
                    }
                    // Read again: the event now waits out its backoff (or
                    // is gone, if given up), and nothing may overtake it.
                    continue 'batches;
                }
            }
        }
    }
}

/// One attempt: the 2xx status, or the status (if any) and the reason.
fn send(
    webhook: &dyn Webhook,
    delivery: &Delivery<'_>,
    event: &Event,
    now_ms: i64,
) -> Result<u16, (Option<u16>, String)> {
    let body = event.payload.as_bytes();
    // Standard Webhooks' three headers: the id (stable across retries, for
    // deduplication), when this attempt was signed, and the signatures.
    let timestamp = now_ms.div_euclid(1000);
    let headers = [
        ("content-type", "application/json".to_string()),
        ("webhook-id", event.id.clone()),
        ("webhook-timestamp", timestamp.to_string()),
        (
            "webhook-signature",
            signature(delivery.keys, &event.id, timestamp, body),
        ),
    ];
    match webhook.post(delivery.url, &headers, body) {
        Ok(status) if (200..300).contains(&status) => Ok(status),
        Ok(status) => Err((Some(status), format!("the receiver answered {status}"))),
        Err(e) => Err((None, shorten(&shared::redact::redact(&e)))),
    }
}

/// `last_error` is a VARCHAR(200).
fn shorten(text: &str) -> String {
    text.chars().take(200).collect()
}

#[cfg(test)]
mod tests;
