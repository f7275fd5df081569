use super::*;
use crate::repo::MemoryIdentity;

const NOW: i64 = 1_800_000_000_000;

fn limit() -> Limit {
    Limit::new("test", 3, 60).unwrap()
}

#[test]
fn attempts_up_to_the_limit_pass_and_the_next_is_429_for_a_full_window() {
    let repo = MemoryIdentity::new();
    for i in 0..3 {
        assert!(admit(&repo, &[("b", limit())], NOW + i * 1000).is_ok());
    }
    assert_eq!(
        admit(&repo, &[("b", limit())], NOW + 2_000),
        Err(ApiError::TooManyAttempts {
            retry_after_secs: 60
        })
    );
    assert!(admit(&repo, &[("b", limit())], NOW + 62_001).is_ok());
}

#[test]
fn a_store_that_refuses_writes_is_503_not_a_pass() {
    let repo = MemoryIdentity::new();
    repo.set_attempts_down(true);
    assert_eq!(
        admit(&repo, &[("b", limit())], NOW).unwrap_err().status(),
        503
    );
}

#[test]
fn every_bucket_is_counted_even_when_one_refuses() {
    let repo = MemoryIdentity::new();
    let tight = Limit::new("t", 1, 60).unwrap();
    admit(&repo, &[("a", tight)], NOW).unwrap();
    assert!(admit(&repo, &[("a", tight), ("b", limit())], NOW).is_err());
    assert_eq!(repo.attempts("b").unwrap().attempts, 1);
}

#[test]
fn success_clears_and_refunds() {
    let repo = MemoryIdentity::new();
    admit(&repo, &[("pair", limit()), ("addr", limit())], NOW).unwrap();
    succeeded(&repo, &["pair"], &["addr"]);
    assert!(repo.attempts("pair").is_none());
    assert_eq!(repo.attempts("addr").unwrap().attempts, 0);
}

#[test]
fn buckets_are_fixed_size_digests_holding_no_email() {
    let email = Email::parse("someone@example.com").unwrap();
    let pair = login_pair(&email, "1.2.3.4");
    assert_eq!(pair.len(), 64);
    assert!(!pair.contains("someone"));
    assert_ne!(pair, login_pair(&email, "1.2.3.5"));
    assert_ne!(login_address("1.2.3.4"), registration("1.2.3.4"));
}

#[test]
fn zero_limits_or_windows_are_configuration_errors() {
    assert_eq!(Limit::new("x", 0, 60).unwrap_err().status(), 500);
    assert_eq!(Limit::new("x", 5, 0).unwrap_err().status(), 500);
}

#[test]
fn a_window_too_long_for_milliseconds_is_a_configuration_error() {
    // Found by `any_accepted_limit_counts_attempts_and_answers_a_positive_retry_after`:
    // a window near `i64::MAX` seconds was accepted, and `admit` then
    // overflowed turning it into milliseconds.
    assert_eq!(
        Limit::new("x", 1, 9_223_372_036_854_775_707)
            .unwrap_err()
            .status(),
        500
    );
    let longest = Limit::new("x", 1, shared::config::MAX_DURATION_SECS).unwrap();
    assert!(admit(&MemoryIdentity::new(), &[("b", longest)], NOW).is_ok());
}

use proptest::prelude::*;
use shared::testing::hostile_text;

fn is_digest(bucket: &str) -> bool {
    bucket.len() == 64
        && bucket
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn email() -> impl Strategy<Value = Email> {
    "[a-z0-9.+_-]{1,12}@[a-z0-9]{1,8}\\.[a-z]{2,3}"
        .prop_filter_map("a valid email", |s| Email::parse(&s).ok())
}

/// Any `i64`, often at or near its ends.
fn extreme_i64() -> impl Strategy<Value = i64> {
    prop_oneof![
        any::<i64>(),
        1i64..100_000,
        i64::MAX - 100..=i64::MAX,
        i64::MIN..=i64::MIN + 100,
    ]
}

proptest! {
    #[test]
    fn buckets_of_any_text_are_sha256_hex_digests(
        email in email(),
        client in hostile_text(),
        user_id in hostile_text(),
    ) {
        for bucket in [
            login_pair(&email, &client),
            login_address(&client),
            password_check(&user_id),
            registration(&client),
        ] {
            prop_assert!(is_digest(&bucket), "{bucket}");
            prop_assert!(!bucket.contains(email.as_str()));
        }
    }

    #[test]
    fn different_counted_things_never_share_a_bucket(
        a in (email(), hostile_text()),
        b in (email(), hostile_text()),
    ) {
        let ((email_a, client_a), (email_b, client_b)) = (&a, &b);
        if (email_a, client_a) != (email_b, client_b) {
            prop_assert_ne!(login_pair(email_a, client_a), login_pair(email_b, client_b));
        }
        if client_a != client_b {
            prop_assert_ne!(login_address(client_a), login_address(client_b));
            prop_assert_ne!(registration(client_a), registration(client_b));
        }
        // The kinds never meet, whatever the text.
        let kinds = [
            login_address(client_a),
            registration(client_a),
            password_check(client_a),
            login_pair(email_a, client_a),
        ];
        for (i, x) in kinds.iter().enumerate() {
            for y in &kinds[i + 1..] {
                prop_assert_ne!(x, y);
            }
        }
    }

    #[test]
    fn any_accepted_limit_counts_attempts_and_answers_a_positive_retry_after(
        max in prop_oneof![any::<u32>(), 0u32..5],
        window_secs in extreme_i64(),
        now_ms in 0i64..=253_402_300_799_999,
        attempts in 1usize..8,
    ) {
        let Ok(limit) = Limit::new("x", max, window_secs) else {
            prop_assert!(max == 0 || window_secs <= 0 || window_secs > shared::config::MAX_DURATION_SECS);
            return Ok(());
        };
        let repo = MemoryIdentity::new();
        for attempt in 1..=attempts {
            match admit(&repo, &[("b", limit)], now_ms) {
                Ok(()) => prop_assert!(attempt as u64 <= u64::from(max)),
                Err(ApiError::TooManyAttempts { retry_after_secs }) => {
                    prop_assert!(attempt as u64 > u64::from(max));
                    prop_assert!((1..=window_secs as u64).contains(&retry_after_secs));
                }
                Err(other) => prop_assert!(false, "{other:?}"),
            }
        }
    }
}
