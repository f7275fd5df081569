//! Brute-force limits on login, kept in the key-value store so every instance
//! of the component (and every machine sharing the store) counts together.
//!
//! Two counters per attempt: one per email + client address (`bf:a:…`, locks
//! that pair after `per_account` failures) and one per client address
//! (`bf:i:…`, locks the address after `per_address` failures, whatever the
//! emails). A counter's window opens at its first failure and lasts
//! `window_secs`; the failure that reaches the limit restarts the window, so a
//! lock always lasts a full window. A success resets the pair's counter only:
//! one good password must not clear an address that is spraying others.
//!
//! The locks are checked before any password hashing, so a locked-out attacker
//! cannot make us spend argon2's CPU. If the store cannot be read or written
//! the login fails closed with 503: without counters there is no limit.
//!
//! Spin-sdk 5.2 exposes no atomic increment through its public API
//! (`wasi:keyvalue/atomics` is offered by the host but not by the SDK), so a
//! failure is recorded by get-then-set. The cost of the race: N failures in
//! flight at once for the same key may all read the same count and write
//! count + 1, so a burst can be under-counted by at most the number of requests
//! in flight. Each of those still pays a full argon2 verify (~50 ms), so the
//! attacker gains a handful of extra guesses per window, not a bypass.

use sha2::{Digest, Sha256};
use shared::kv::{get_unexpired, put_expiring, KeyValue};
use shared::ApiError;

/// The limits, from the Spin variables `login_max_failures_per_account`,
/// `login_max_failures_per_address` and `login_lock_window_secs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Failures allowed per email + address within a window.
    pub per_account: u32,
    /// Failures allowed per address within a window.
    pub per_address: u32,
    /// The window (and lock) length in seconds.
    pub window_secs: i64,
}

impl Default for Limits {
    /// API.md's defaults: 5 per pair, 50 per address, 15 minutes.
    fn default() -> Self {
        Self {
            per_account: 5,
            per_address: 50,
            window_secs: 900,
        }
    }
}

impl Limits {
    /// The limits if they make sense (every limit and the window at least 1),
    /// otherwise a configuration error (500, logged): a zero limit would lock
    /// every login, a non-positive window would never lock any.
    pub fn checked(self) -> Result<Self, ApiError> {
        if self.per_account == 0 || self.per_address == 0 || self.window_secs <= 0 {
            return Err(ApiError::Internal(
                "configuration: login_max_failures_* and login_lock_window_secs must be at least 1"
                    .into(),
            ));
        }
        Ok(self)
    }
}

/// One failure counter: how many failures, and when its window ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Counter {
    failures: u32,
    until_ms: i64,
}

impl Counter {
    fn encode(&self) -> [u8; 12] {
        let mut out = [0u8; 12];
        out[..4].copy_from_slice(&self.failures.to_be_bytes());
        out[4..].copy_from_slice(&self.until_ms.to_be_bytes());
        out
    }

    fn decode(bytes: &[u8]) -> Option<Self> {
        let failures = u32::from_be_bytes(bytes.get(..4)?.try_into().ok()?);
        let until_ms = i64::from_be_bytes(bytes.get(4..12)?.try_into().ok()?);
        Some(Self { failures, until_ms })
    }
}

/// The counters of one login attempt.
pub struct Limiter<'a> {
    kv: &'a dyn KeyValue,
    limits: Limits,
    pair_key: String,
    address_key: String,
    now_ms: i64,
}

impl<'a> Limiter<'a> {
    /// The counters for `email` (normalised) from `address` at `now_ms`.
    pub fn new(
        kv: &'a dyn KeyValue,
        limits: Limits,
        email: &str,
        address: &str,
        now_ms: i64,
    ) -> Self {
        // Hashed so the key is short and bounded (store keys ≤ 255 bytes) and
        // the store holds no email addresses; 128 bits of the hash is plenty
        // to keep pairs apart.
        let digest = Sha256::digest(format!("{email}|{address}").as_bytes());
        Self {
            kv,
            limits,
            pair_key: format!("bf:a:{}", hex::encode(&digest[..16])),
            address_key: format!("bf:i:{address}"),
            now_ms,
        }
    }

    /// The pair's key (for tests).
    pub fn pair_key(&self) -> &str {
        &self.pair_key
    }

    /// The address's key (for tests).
    pub fn address_key(&self) -> &str {
        &self.address_key
    }

    fn read(&self, key: &str) -> Result<Option<Counter>, ApiError> {
        Ok(get_unexpired(self.kv, key, self.now_ms)?.and_then(|b| Counter::decode(&b)))
    }

    /// 429 `too_many_attempts` (with the seconds until the longest lock ends)
    /// when the pair or the address is locked; 503 when the store is down.
    pub fn check(&self) -> Result<(), ApiError> {
        let mut retry_after_ms = 0;
        for (key, max) in [
            (&self.address_key, self.limits.per_address),
            (&self.pair_key, self.limits.per_account),
        ] {
            if let Some(c) = self.read(key)? {
                if c.failures >= max {
                    retry_after_ms = retry_after_ms.max(c.until_ms - self.now_ms);
                }
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

    /// Counts one failed login against the pair and the address (get + set:
    /// see the module docs for what the race can cost).
    pub fn record_failure(&self) -> Result<(), ApiError> {
        let window_ms = self.limits.window_secs * 1000;
        for (key, max) in [
            (&self.address_key, self.limits.per_address),
            (&self.pair_key, self.limits.per_account),
        ] {
            let mut c = self.read(key)?.unwrap_or(Counter {
                failures: 0,
                until_ms: self.now_ms + window_ms,
            });
            c.failures = c.failures.saturating_add(1);
            if c.failures >= max {
                c.until_ms = self.now_ms + window_ms;
            }
            put_expiring(self.kv, key, &c.encode(), c.until_ms)?;
        }
        Ok(())
    }

    /// Clears the pair's counter after a successful login. Best effort: a
    /// store failure here only leaves a count that expires with its window.
    pub fn record_success(&self) {
        if let Err(e) = self.kv.delete(&self.pair_key) {
            eprintln!("login: could not reset failure counter: {}", e.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::kv::{FailingKv, MemoryKv};

    const NOW: i64 = 1_800_000_000_000;

    fn limits() -> Limits {
        Limits {
            per_account: 3,
            per_address: 5,
            window_secs: 60,
        }
    }

    #[test]
    fn pair_locks_at_its_limit_for_a_full_window() {
        let kv = MemoryKv::new();
        for i in 0..3 {
            let l = Limiter::new(&kv, limits(), "a@b.cd", "1.2.3.4", NOW + i * 1000);
            assert!(l.check().is_ok());
            l.record_failure().unwrap();
        }
        let l = Limiter::new(&kv, limits(), "a@b.cd", "1.2.3.4", NOW + 2000);
        assert_eq!(
            l.check(),
            Err(ApiError::TooManyAttempts {
                retry_after_secs: 60
            })
        );
        let later = Limiter::new(&kv, limits(), "a@b.cd", "1.2.3.4", NOW + 62_000);
        assert!(later.check().is_ok());
    }

    #[test]
    fn address_locks_across_emails() {
        let kv = MemoryKv::new();
        for i in 0..5 {
            Limiter::new(&kv, limits(), &format!("u{i}@b.cd"), "1.2.3.4", NOW)
                .record_failure()
                .unwrap();
        }
        let fresh_email = Limiter::new(&kv, limits(), "new@b.cd", "1.2.3.4", NOW);
        assert_eq!(fresh_email.check().unwrap_err().status(), 429);
        let other_address = Limiter::new(&kv, limits(), "new@b.cd", "5.6.7.8", NOW);
        assert!(other_address.check().is_ok());
    }

    #[test]
    fn success_resets_the_pair_but_not_the_address() {
        let kv = MemoryKv::new();
        let l = Limiter::new(&kv, limits(), "a@b.cd", "1.2.3.4", NOW);
        l.record_failure().unwrap();
        l.record_success();
        assert!(!kv.contains(l.pair_key()));
        assert!(kv.contains(l.address_key()));
    }

    #[test]
    fn keys_are_short_and_hold_no_email() {
        let kv = MemoryKv::new();
        let l = Limiter::new(&kv, limits(), "someone@example.com", "1.2.3.4", NOW);
        assert!(l.pair_key().len() <= 40);
        assert!(!l.pair_key().contains("someone"));
    }

    #[test]
    fn zero_limits_or_window_are_configuration_errors() {
        assert!(limits().checked().is_ok());
        for bad in [
            Limits {
                per_account: 0,
                ..limits()
            },
            Limits {
                per_address: 0,
                ..limits()
            },
            Limits {
                window_secs: 0,
                ..limits()
            },
        ] {
            assert_eq!(bad.checked().unwrap_err().status(), 500);
        }
    }

    #[test]
    fn store_outage_fails_closed() {
        let l = Limiter::new(&FailingKv, limits(), "a@b.cd", "1.2.3.4", NOW);
        assert_eq!(l.check().unwrap_err().status(), 503);
        assert_eq!(l.record_failure().unwrap_err().status(), 503);
    }
}
