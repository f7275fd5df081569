//! An outbox row and the rules of its delivery.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;
use shared::time::rfc3339;

/// Where an event's delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Not yet answered 2xx; tried again at `next_attempt_at_ms`.
    Pending,
    /// A webhook answered 2xx.
    Delivered,
    /// Every attempt failed; only an admin's redelivery tries it again.
    Failed,
}

impl State {
    /// The column value and the `state` of the JSON view.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
        }
    }

    /// Parses a column value or a `?state=` filter.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(Self::Pending),
            "delivered" => Some(Self::Delivered),
            "failed" => Some(Self::Failed),
            _ => None,
        }
    }
}

/// One `order_events` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The stable event id (`webhook-id`).
    pub id: String,
    /// Delivery order.
    pub seq: i64,
    /// `order.created` or `order.cancelled`.
    pub event_type: String,
    /// The order it reports.
    pub order_id: String,
    /// The webhook body, as committed with the change.
    pub payload: String,
    /// When the change committed.
    pub created_at_ms: i64,
    /// Delivery state.
    pub state: State,
    /// Attempts made so far.
    pub attempts: u32,
    /// Not tried again before this time.
    pub next_attempt_at_ms: i64,
    /// When a webhook answered 2xx.
    pub delivered_at_ms: Option<i64>,
    /// The receiver's status on the last attempt, if it answered.
    pub last_status: Option<u16>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
}

/// The admin list's JSON shape of an event (the payload is what was sent).
#[derive(Debug, Serialize)]
pub struct EventView<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    event_type: &'a str,
    order_id: &'a str,
    state: &'static str,
    attempts: u32,
    created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_attempt_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    delivered_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_error: Option<&'a str>,
}

impl Event {
    /// The JSON view.
    pub fn view(&self) -> EventView<'_> {
        EventView {
            id: &self.id,
            event_type: &self.event_type,
            order_id: &self.order_id,
            state: self.state.as_str(),
            attempts: self.attempts,
            created_at: rfc3339(self.created_at_ms),
            next_attempt_at: (self.state == State::Pending)
                .then(|| rfc3339(self.next_attempt_at_ms)),
            delivered_at: self.delivered_at_ms.map(rfc3339),
            last_status: self.last_status,
            last_error: self.last_error.as_deref(),
        }
    }
}

/// The longest wait between two attempts.
pub const MAX_BACKOFF_MS: i64 = 60 * 60 * 1000;

/// The wait after the `attempts`-th failed attempt: 1 s, doubling, at most
/// an hour. Doubling keeps a receiver that is down from being hammered and one
/// that was down briefly from waiting long.
pub fn backoff_ms(attempts: u32) -> i64 {
    let exponent = attempts.saturating_sub(1).min(30);
    (1000_i64 << exponent).min(MAX_BACKOFF_MS)
}

/// The shortest signing key accepted, in bytes (Standard Webhooks asks for
/// 24 to 64 random bytes; 16 is 128 bits).
pub const MIN_KEY_BYTES: usize = 16;

/// A webhook signing key, written as the Standard Webhooks specification
/// writes them: base64, optionally behind `whsec_`. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningKey(Vec<u8>);

impl SigningKey {
    /// The keys of `webhook_secret`: one, or several separated by spaces
    /// while a secret is rotated (each delivery is signed with every one, so
    /// receivers holding either verify). `None` when any is not base64 of at
    /// least [`MIN_KEY_BYTES`] bytes, or none is given.
    pub fn parse_all(text: &str) -> Option<Vec<SigningKey>> {
        let keys = text
            .split_whitespace()
            .map(|key| {
                let encoded = key.strip_prefix("whsec_").unwrap_or(key);
                BASE64
                    .decode(encoded)
                    .ok()
                    .filter(|bytes| bytes.len() >= MIN_KEY_BYTES)
                    .map(SigningKey)
            })
            .collect::<Option<Vec<_>>>()?;
        (!keys.is_empty()).then_some(keys)
    }
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey(***)")
    }
}

/// The `webhook-signature` value of the Standard Webhooks specification:
/// `v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">` for each key,
/// space-separated. Signing the id and the timestamp with the body lets a
/// receiver refuse a delivery replayed later or under another id, and check
/// it with the specification's libraries (`standardwebhooks`).
pub fn signature(keys: &[SigningKey], id: &str, timestamp_secs: i64, body: &[u8]) -> String {
    keys.iter()
        .map(|key| {
            let mut mac =
                Hmac::<Sha256>::new_from_slice(&key.0).expect("HMAC takes keys of any length");
            mac.update(id.as_bytes());
            mac.update(b".");
            mac.update(timestamp_secs.to_string().as_bytes());
            mac.update(b".");
            mac.update(body);
            format!("v1,{}", BASE64.encode(mac.finalize().into_bytes()))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests;
