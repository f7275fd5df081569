//! An outbox row and the rules of its delivery.

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
    /// The stable event id (`Webhook-Id`).
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

/// The `Webhook-Signature` value: `t=<unix seconds>,v1=<hex HMAC-SHA256 of
/// "<t>.<body>" under the secret>`. Signing the timestamp with the body lets
/// a receiver refuse an old delivery replayed later (README shows how).
pub fn signature(secret: &[u8], timestamp_secs: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(timestamp_secs.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!(
        "t={timestamp_secs},v1={}",
        hex::encode(mac.finalize().into_bytes())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_a_second_up_to_an_hour() {
        assert_eq!(backoff_ms(1), 1_000);
        assert_eq!(backoff_ms(2), 2_000);
        assert_eq!(backoff_ms(5), 16_000);
        assert_eq!(backoff_ms(13), MAX_BACKOFF_MS);
        assert_eq!(backoff_ms(400), MAX_BACKOFF_MS);
    }

    #[test]
    fn signature_is_hmac_sha256_of_timestamp_dot_body() {
        let mut mac = Hmac::<Sha256>::new_from_slice(b"secret").unwrap();
        mac.update(b"1700000000.{\"a\":1}");
        let expected = hex::encode(mac.finalize().into_bytes());
        assert_eq!(
            signature(b"secret", 1_700_000_000, b"{\"a\":1}"),
            format!("t=1700000000,v1={expected}")
        );
        assert_ne!(
            signature(b"secret", 1_700_000_001, b"{\"a\":1}"),
            signature(b"secret", 1_700_000_000, b"{\"a\":1}")
        );
    }

    #[test]
    fn states_round_trip() {
        for s in [State::Pending, State::Delivered, State::Failed] {
            assert_eq!(State::parse(s.as_str()), Some(s));
        }
        assert_eq!(State::parse("lost"), None);
    }
}
