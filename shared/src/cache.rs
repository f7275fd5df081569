//! Cache-aside over the key-value port.
//!
//! * Entries expire after a TTL with ±10 % jitter, so keys filled together do
//!   not all expire together and stampede the database.
//! * Negative entries ("this id does not exist") are written only by
//!   [`Cache::get_or_load`], for lookups that only authenticated callers can
//!   cause. Anonymous reads use [`Cache::read_through`], which caches what
//!   exists and nothing else: Spin's store has no expiry and Fermyon's caps
//!   it at 1,024 keys, so one entry per unknown id would let anyone fill the
//!   store (after which revocation writes fail) or grow Redis without bound.
//!   Random ids never repeat, so a negative entry would not spare MySQL
//!   anything against that probe anyway; the defence against penetration is
//!   that a miss costs one primary-key lookup, and ids that cannot be ids are
//!   refused before any lookup.
//! * Every failure of the store is logged and treated as a miss: the cache can
//!   make a request faster, never make it fail.

use serde::{de::DeserializeOwned, Serialize};

use crate::error::ApiError;
use crate::kv::{get_unexpired, put_expiring, KeyValue};

const POSITIVE: u8 = b'+';
const NEGATIVE: u8 = b'-';

/// What the cache knows about a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup<T> {
    /// The cached value.
    Hit(T),
    /// Cached knowledge that the record does not exist.
    KnownMissing,
    /// Nothing usable cached (absent, expired, unreadable, or the store failed).
    Miss,
}

/// Cache-aside helper bound to one store and one request's clock.
pub struct Cache<'a> {
    kv: &'a dyn KeyValue,
    now_ms: i64,
}

impl<'a> Cache<'a> {
    /// A cache over `kv` at time `now_ms`.
    pub fn new(kv: &'a dyn KeyValue, now_ms: i64) -> Self {
        Self { kv, now_ms }
    }

    /// Looks `key` up.
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Lookup<T> {
        match get_unexpired(self.kv, key, self.now_ms) {
            Ok(Some(bytes)) => match bytes.split_first() {
                Some((&NEGATIVE, _)) => Lookup::KnownMissing,
                Some((&POSITIVE, json)) => match serde_json::from_slice(json) {
                    Ok(value) => Lookup::Hit(value),
                    Err(_) => Lookup::Miss,
                },
                _ => Lookup::Miss,
            },
            Ok(None) => Lookup::Miss,
            Err(e) => {
                crate::log::warn(format!(
                    "cache: get {key} failed, using the database: {}",
                    e.0
                ));
                Lookup::Miss
            }
        }
    }

    /// Caches `value` under `key` for about `ttl_ms`.
    pub fn put<T: Serialize>(&self, key: &str, value: &T, ttl_ms: i64) {
        let Ok(json) = serde_json::to_vec(value) else {
            return;
        };
        let mut bytes = Vec::with_capacity(json.len() + 1);
        bytes.push(POSITIVE);
        bytes.extend_from_slice(&json);
        self.write(key, &bytes, ttl_ms);
    }

    /// Records for about `ttl_ms` that `key`'s record does not exist.
    pub fn put_missing(&self, key: &str, ttl_ms: i64) {
        self.write(key, &[NEGATIVE], ttl_ms);
    }

    /// Drops `key` after its record changed. A failed delete is logged; the
    /// entry then lives until its TTL, which bounds how stale a read can be.
    pub fn invalidate(&self, key: &str) {
        if let Err(e) = self.kv.delete(key) {
            crate::log::warn(format!("cache: invalidate {key} failed: {}", e.0));
        }
    }

    /// Cache-aside read: the cached value, or `load` from the database and
    /// cache what it returns (a value for `ttl_ms`, absence for `missing_ttl_ms`).
    pub fn get_or_load<T, F>(
        &self,
        key: &str,
        ttl_ms: i64,
        missing_ttl_ms: i64,
        load: F,
    ) -> Result<Option<T>, ApiError>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce() -> Result<Option<T>, ApiError>,
    {
        match self.get(key) {
            Lookup::Hit(value) => return Ok(Some(value)),
            Lookup::KnownMissing => return Ok(None),
            Lookup::Miss => {}
        }
        let loaded = load()?;
        match &loaded {
            Some(value) => self.put(key, value, ttl_ms),
            None => self.put_missing(key, missing_ttl_ms),
        }
        Ok(loaded)
    }

    /// Cache-aside read that stores nothing for absent records: the cached
    /// value, or `load` from the database and cache it for about `ttl_ms` if
    /// it exists. An absent record leaves the store exactly as it was (a stale
    /// entry found on the way is deleted), so however many unknown ids are
    /// asked for, no key is added. A negative entry left by an older version
    /// is ignored (and reloaded), never trusted.
    pub fn read_through<T, F>(&self, key: &str, ttl_ms: i64, load: F) -> Result<Option<T>, ApiError>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce() -> Result<Option<T>, ApiError>,
    {
        if let Lookup::Hit(value) = self.get(key) {
            return Ok(Some(value));
        }
        let loaded = load()?;
        if let Some(value) = &loaded {
            self.put(key, value, ttl_ms);
        }
        Ok(loaded)
    }

    fn write(&self, key: &str, bytes: &[u8], ttl_ms: i64) {
        let expires_at = self.now_ms + jittered(ttl_ms);
        if let Err(e) = put_expiring(self.kv, key, bytes, expires_at) {
            crate::log::warn(format!("cache: set {key} failed: {}", e.0));
        }
    }
}

/// `ttl_ms` moved by a random amount within ±10 %.
fn jittered(ttl_ms: i64) -> i64 {
    let spread = ttl_ms / 10;
    if spread <= 0 {
        return ttl_ms;
    }
    let r = crate::id::random_bytes::<8>()
        .map(u64::from_le_bytes)
        .unwrap_or(0);
    ttl_ms - spread + (r % (2 * spread as u64 + 1)) as i64
}

#[cfg(test)]
mod tests;
