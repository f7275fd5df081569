//! Delivery state, backoff, the JSON view, and Standard Webhooks signatures
//! checked against known answers.

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

// The Standard Webhooks specification's published example, as its reference
// libraries test it (standard-webhooks/standard-webhooks,
// libraries/python/tests/test_webhooks.py `test_sign_function`). Expected
// values are fixed text, checked outside this code (Python's hmac and
// `openssl dgst -mac HMAC`), so a bug shared by signer and test cannot hide.
const SPEC_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const SPEC_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
const SPEC_TIMESTAMP: i64 = 1_614_265_330;
const SPEC_PAYLOAD: &[u8] = b"{\"test\": 2432232314}";
const SPEC_SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

/// A second key for rotations: base64 of the 22 bytes `second-key-of-16-bytes`.
const SECOND_SECRET: &str = "c2Vjb25kLWtleS1vZi0xNi1ieXRlcw==";
/// [`SECOND_SECRET`]'s signature of the specification's message (computed
/// with Python's hmac and with openssl, not with this crate).
const SECOND_SIGNATURE: &str = "v1,hl+tNMbcif45fwMbSmKJVJmPu7sSRfxpINPTNBtLLQ4=";

fn sign_spec_message(keys: &str) -> String {
    signature(&key(keys), SPEC_ID, SPEC_TIMESTAMP, SPEC_PAYLOAD)
}

#[test]
fn signature_matches_the_standard_webhooks_reference_vector() {
    assert_eq!(sign_spec_message(SPEC_SECRET), SPEC_SIGNATURE);
}

#[test]
fn a_key_without_whsec_signs_as_with_it() {
    let bare = SPEC_SECRET.trim_start_matches("whsec_");
    assert_eq!(sign_spec_message(bare), SPEC_SIGNATURE);
    assert_eq!(
        sign_spec_message(&format!("whsec_{SECOND_SECRET}")),
        SECOND_SIGNATURE
    );
}

#[test]
fn during_a_rotation_every_key_signs_in_the_order_given() {
    assert_eq!(
        sign_spec_message(&format!("{SECOND_SECRET} {SPEC_SECRET}")),
        format!("{SECOND_SIGNATURE} {SPEC_SIGNATURE}")
    );
    // Operators paste secrets with stray whitespace; any run of it separates.
    assert_eq!(
        sign_spec_message(&format!("  {SPEC_SECRET}\n\t{SECOND_SECRET} ")),
        format!("{SPEC_SIGNATURE} {SECOND_SIGNATURE}")
    );
}

#[test]
fn keys_are_base64_of_sixteen_bytes_or_more_with_or_without_whsec() {
    assert_eq!(
        SigningKey::parse_all(SPEC_SECRET),
        SigningKey::parse_all("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    );
    assert_eq!(key(&format!("{SPEC_SECRET} {SECOND_SECRET}")).len(), 2);
    for bad in [
        "",
        "   ",
        "whsec_",
        "c2hvcnQ=",
        "not base64!",
        "whsec-test-secret-0123456789",
        // One bad key spoils a rotation: signing with the good one alone
        // would fail every receiver that holds the other.
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw c2hvcnQ=",
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
