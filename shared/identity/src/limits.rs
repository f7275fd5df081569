//! Attempt limits on every password check: login (per email + client
//! address, and per address), `current_password` (per user) and registration
//! (per address, since each one costs an argon2 hash).
//!
//! An attempt is counted *before* its password is looked at, atomically, in
//! MySQL — which these requests open anyway — because Spin's key-value store
//! has no atomic increment on most platforms (none in spin-sdk 5.2, none on
//! Akamai Functions). A burst of 40 simultaneous guesses therefore gets at
//! most `max` password checks, and 429 for the rest. If the attempt cannot
//! be recorded the request answers 503 and no password is checked: without a
//! count there is no limit.
//!
//! Buckets are SHA-256 digests of what they count, so the table holds no
//! email or address and every key has the same short size.

use sha2::{Digest, Sha256};
use shared::domain::Email;
use shared::ApiError;

use crate::repo::AttemptRepo;

/// At most `max` attempts per window of `window_secs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// Attempts allowed in one window.
    pub max: u32,
    /// The window (and so the lock) length in seconds.
    pub window_secs: i64,
}

impl Limit {
    /// A limit if it makes sense, otherwise a configuration error (500,
    /// logged): a zero limit would refuse every attempt, a non-positive
    /// window would never refuse any, and a window longer than
    /// [`shared::config::MAX_DURATION_SECS`] would overflow in milliseconds.
    /// `name` names the variable at fault.
    pub fn new(name: &str, max: u32, window_secs: i64) -> Result<Self, ApiError> {
        if max == 0 || window_secs <= 0 {
            return Err(ApiError::Internal(format!(
                "configuration: {name} and its window must be at least 1"
            )));
        }
        // `admit` counts in `window_secs * 1000` ms added to the clock: an
        // unbounded window overflows `i64` (a panic traps the component; a
        // release build wraps to a window already over, so no limit at all).
        if window_secs > shared::config::MAX_DURATION_SECS {
            return Err(ApiError::Internal(format!(
                "configuration: the window of {name} must be at most {} seconds",
                shared::config::MAX_DURATION_SECS
            )));
        }
        Ok(Self { max, window_secs })
    }
}

fn bucket(kind: &str, parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(kind.as_bytes());
    for part in parts {
        // A separator no email or address contains keeps ("a","bc") and ("ab","c") apart.
        hasher.update([0u8]);
        hasher.update(part.as_bytes());
    }
    hex::encode(hasher.finalize())
}

/// The bucket of logins for one email from one client address.
pub fn login_pair(email: &Email, client: &str) -> String {
    bucket("login-pair", &[email.as_str(), client])
}

/// The bucket of logins from one client address, whatever the email.
pub fn login_address(client: &str) -> String {
    bucket("login-address", &[client])
}

/// The bucket of `current_password` checks of one user.
pub fn password_check(user_id: &str) -> String {
    bucket("current-password", &[user_id])
}

/// The bucket of registrations from one client address.
pub fn registration(client: &str) -> String {
    bucket("registration", &[client])
}

/// Counts one attempt in every `(bucket, limit)` and admits it only if no
/// bucket is over its limit; otherwise 429 `too_many_attempts` with the
/// seconds until the longest lock ends. Every bucket is counted even when an
/// earlier one refuses, so a locked address cannot spray fresh pairs for free.
pub fn admit(
    repo: &dyn AttemptRepo,
    checks: &[(&str, Limit)],
    now_ms: i64,
) -> Result<(), ApiError> {
    let mut retry_after_ms = 0;
    for (bucket, limit) in checks {
        let count = repo
            .count_attempt(bucket, limit.max, limit.window_secs * 1000, now_ms)
            .map_err(|e| {
                ApiError::Unavailable(format!("attempt not recorded: {}", e.log_detail()))
            })?;
        if count.attempts > limit.max {
            retry_after_ms = retry_after_ms.max(count.window_ends_ms - now_ms);
        }
    }
    if retry_after_ms > 0 {
        // Round up: a client that waits exactly Retry-After must find the lock gone.
        let secs = (retry_after_ms + 999) / 1000;
        return Err(ApiError::TooManyAttempts {
            retry_after_secs: secs.max(1) as u64,
        });
    }
    Ok(())
}

/// After a password check succeeded: `clear` buckets are forgotten (the pair
/// of a successful login), `refund` buckets get this attempt back (the
/// address, which only counts failures). Best effort: a failure here leaves a
/// count that expires with its window, so it is logged, not answered.
pub fn succeeded(repo: &dyn AttemptRepo, clear: &[&str], refund: &[&str]) {
    let results = clear
        .iter()
        .map(|b| repo.clear_attempts(b))
        .chain(refund.iter().map(|b| repo.refund_attempt(b)));
    for result in results {
        if let Err(e) = result {
            shared::log::warn(format!(
                "attempt limits: could not reset a counter: {}",
                e.log_detail()
            ));
        }
    }
}

#[cfg(test)]
mod tests {
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
}
