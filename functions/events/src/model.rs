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

    fn key(text: &str) -> Vec<SigningKey> {
        SigningKey::parse_all(text).unwrap()
    }

    /// The example of the Standard Webhooks specification's own test suite.
    #[test]
    fn signature_matches_the_standard_webhooks_reference_vector() {
        assert_eq!(
            signature(
                &key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1_614_265_330,
                b"{\"test\": 2432232314}"
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn during_a_rotation_every_key_signs() {
        let old = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let new = "c2Vjb25kLWtleS1vZi0xNi1ieXRlcw==";
        let both = signature(&key(&format!("{new} {old}")), "e", 1, b"{}");
        let parts: Vec<&str> = both.split(' ').collect();
        assert_eq!(
            parts,
            [
                signature(&key(new), "e", 1, b"{}"),
                signature(&key(old), "e", 1, b"{}")
            ]
        );
    }

    #[test]
    fn keys_are_base64_of_sixteen_bytes_or_more_with_or_without_whsec() {
        assert!(SigningKey::parse_all("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_some());
        assert!(SigningKey::parse_all("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_some());
        for bad in [
            "",
            "   ",
            "whsec_",
            "c2hvcnQ=",
            "not base64!",
            "whsec-test-secret-0123456789",
        ] {
            assert!(SigningKey::parse_all(bad).is_none(), "{bad:?}");
        }
        assert_eq!(
            format!("{:?}", key("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")),
            "[SigningKey(***)]"
        );
    }

    #[test]
    fn states_round_trip() {
        for s in [State::Pending, State::Delivered, State::Failed] {
            assert_eq!(State::parse(s.as_str()), Some(s));
        }
        assert_eq!(State::parse("lost"), None);
    }

    fn any_state() -> impl Strategy<Value = State> {
        prop::sample::select(vec![State::Pending, State::Delivered, State::Failed])
    }

    /// Epoch milliseconds from 1970 to the year 9999 (what `rfc3339` formats).
    fn any_time_ms() -> impl Strategy<Value = i64> {
        0..253_402_300_799_000_i64
    }

    /// A key of 16 to 64 arbitrary bytes.
    fn any_key() -> impl Strategy<Value = Vec<SigningKey>> {
        prop::collection::vec(any::<u8>(), 16..=64)
            .prop_map(|bytes| key(&format!("whsec_{}", BASE64.encode(bytes))))
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
            keys in any_key(),
            id in hostile_text(),
            timestamp_secs in any::<i64>(),
            body in any::<Vec<u8>>(),
        ) {
            let header = signature(&keys, &id, timestamp_secs, &body);
            prop_assert!(header.bytes().all(|b| b.is_ascii_graphic()), "{:?}", header);
            let mac = header.strip_prefix("v1,").unwrap_or_default();
            prop_assert_eq!(BASE64.decode(mac).map(|m| m.len()), Ok(32));
        }

        #[test]
        fn a_different_id_timestamp_or_body_signs_differently(
            keys in any_key(),
            a in ("[a-z0-9]{1,8}", any::<i64>(), hostile_text()),
            b in ("[a-z0-9]{1,8}", any::<i64>(), hostile_text()),
        ) {
            // Ids never hold a dot, so "<id>.<t>.<body>" tells every triple apart.
            prop_assume!(a != b);
            prop_assert_ne!(
                signature(&keys, &a.0, a.1, a.2.as_bytes()),
                signature(&keys, &b.0, b.1, b.2.as_bytes())
            );
        }

        #[test]
        fn another_key_signs_differently(
            a in any_key(),
            b in any_key(),
            timestamp_secs in any::<i64>(),
            body in hostile_text(),
        ) {
            prop_assume!(a != b);
            prop_assert_ne!(
                signature(&a, "e", timestamp_secs, body.as_bytes()),
                signature(&b, "e", timestamp_secs, body.as_bytes())
            );
        }

        #[test]
        fn any_text_is_keys_or_none_without_panicking(text in hostile_text()) {
            if let Some(keys) = SigningKey::parse_all(&text) {
                prop_assert!(keys.iter().all(|k| k.0.len() >= MIN_KEY_BYTES));
            }
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
