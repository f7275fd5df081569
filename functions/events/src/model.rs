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
    use proptest::prelude::*;
    use shared::testing::hostile_text;

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

    /// The signature's HMAC, hex, after `v1=`.
    fn mac_of(header: &str) -> &str {
        header.split_once(",v1=").map_or("", |(_, mac)| mac)
    }

    fn any_state() -> impl Strategy<Value = State> {
        prop::sample::select(vec![State::Pending, State::Delivered, State::Failed])
    }

    /// Epoch milliseconds from 1970 to the year 9999 (what `rfc3339` formats).
    fn any_time_ms() -> impl Strategy<Value = i64> {
        0..253_402_300_799_000_i64
    }

    proptest! {
        #[test]
        fn any_text_parses_to_a_state_or_none_without_panicking(text in hostile_text()) {
            if let Some(state) = State::parse(&text) {
                prop_assert_eq!(state.as_str(), text);
            }
        }

        #[test]
        fn a_state_with_anything_around_it_is_not_a_state(
            state in any_state(),
            before in hostile_text(),
            after in hostile_text(),
        ) {
            prop_assume!(!before.is_empty() || !after.is_empty());
            let text = format!("{before}{}{after}", state.as_str());
            prop_assert_eq!(State::parse(&text), None);
        }

        #[test]
        fn any_signature_is_a_valid_header_value_of_the_documented_form(
            secret in any::<Vec<u8>>(),
            timestamp_secs in any::<i64>(),
            body in any::<Vec<u8>>(),
        ) {
            let header = signature(&secret, timestamp_secs, &body);
            prop_assert!(header.bytes().all(|b| b.is_ascii_graphic()), "{:?}", header);
            let prefix = format!("t={timestamp_secs},v1=");
            prop_assert!(header.starts_with(&prefix), "{:?}", header);
            let mac = mac_of(&header);
            prop_assert_eq!(mac.len(), 64);
            prop_assert!(mac.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
        }

        #[test]
        fn a_different_timestamp_or_body_signs_differently(
            secret in any::<Vec<u8>>(),
            a in (any::<i64>(), hostile_text()),
            b in (any::<i64>(), hostile_text()),
        ) {
            // The signed text `<t>.<body>` must tell every pair apart: a
            // receiver checking the MAC alone must not accept another pair.
            prop_assume!(a != b);
            let first = signature(&secret, a.0, a.1.as_bytes());
            let second = signature(&secret, b.0, b.1.as_bytes());
            prop_assert_ne!(mac_of(&first), mac_of(&second));
        }

        #[test]
        fn another_secret_signs_differently(
            a in prop::collection::vec(1..=u8::MAX, 0..=64),
            b in prop::collection::vec(1..=u8::MAX, 0..=64),
            timestamp_secs in any::<i64>(),
            body in hostile_text(),
        ) {
            // HMAC pads keys to 64 bytes with zeros (and hashes longer ones):
            // keys without NUL of at most 64 bytes are all told apart.
            prop_assume!(a != b);
            prop_assert_ne!(
                signature(&a, timestamp_secs, body.as_bytes()),
                signature(&b, timestamp_secs, body.as_bytes())
            );
        }

        #[test]
        fn backoff_grows_from_a_second_to_at_most_an_hour(attempts in any::<u32>()) {
            let wait = backoff_ms(attempts);
            prop_assert!((1_000..=MAX_BACKOFF_MS).contains(&wait));
            prop_assert!(wait <= backoff_ms(attempts.saturating_add(1)));
        }

        #[test]
        fn any_stored_event_has_a_json_view(
            id in hostile_text(),
            event_type in hostile_text(),
            order_id in hostile_text(),
            state in any_state(),
            attempts in any::<u32>(),
            times in (any_time_ms(), any_time_ms(), prop::option::of(any_time_ms())),
            last_status in any::<Option<u16>>(),
            last_error in prop::option::of(hostile_text()),
        ) {
            let event = Event {
                id,
                seq: 1,
                event_type,
                order_id,
                payload: "{}".into(),
                created_at_ms: times.0,
                state,
                attempts,
                next_attempt_at_ms: times.1,
                delivered_at_ms: times.2,
                last_status,
                last_error,
            };
            let json = serde_json::to_value(event.view());
            prop_assert!(json.is_ok());
            let json = json.unwrap_or_default();
            prop_assert_eq!(json["id"].as_str(), Some(event.id.as_str()));
            prop_assert_eq!(json["type"].as_str(), Some(event.event_type.as_str()));
            prop_assert_eq!(json["state"].as_str(), Some(event.state.as_str()));
            prop_assert_eq!(json["last_error"].as_str(), event.last_error.as_deref());
            prop_assert_eq!(json.get("next_attempt_at").is_some(), event.state == State::Pending);
        }
    }
}
