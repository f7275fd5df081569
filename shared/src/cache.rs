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
//! * Stale-if-error ([`Cache::read_through_stale_if_error`], RFC 5861's
//!   idea): an entry written by it outlives its freshness by a grace period,
//!   and is answered, marked stale, only when the database cannot be reached.
//!   Only public catalogue data uses it (products): never anything whose
//!   staleness could grant access or lose money.

use serde::{de::DeserializeOwned, Serialize};

use crate::error::ApiError;
use crate::kv::{get_unexpired, put_expiring, KeyValue};

const POSITIVE: u8 = b'+';
const NEGATIVE: u8 = b'-';
/// A value that may be served stale: `~`, when it was stored and until when
/// it is fresh (epoch ms, 8 bytes big-endian each), then the JSON.
const STALE_CAPABLE: u8 = b'~';

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
                Some((&STALE_CAPABLE, _)) => match StaleCapable::parse(&bytes) {
                    Some(entry) if entry.fresh_until_ms > self.now_ms => {
                        serde_json::from_slice(entry.json).map_or(Lookup::Miss, Lookup::Hit)
                    }
                    _ => Lookup::Miss,
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

    /// As [`Cache::read_through`], for records that may be answered stale
    /// while the database is down: the entry stays in the store `grace_ms`
    /// past its freshness, and when `load` fails with
    /// [`ApiError::Unavailable`] a copy that went stale less than `grace_ms`
    /// ago is returned as [`Served::Stale`]. Any other failure, or no copy,
    /// is the failure. A record found absent drops its stale copy.
    pub fn read_through_stale_if_error<T, F>(
        &self,
        key: &str,
        ttl_ms: i64,
        grace_ms: i64,
        load: F,
    ) -> Result<Option<Served<T>>, ApiError>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce() -> Result<Option<T>, ApiError>,
    {
        let mut stale = None;
        match get_unexpired(self.kv, key, self.now_ms) {
            Ok(Some(bytes)) => {
                if let Some(entry) = StaleCapable::parse(&bytes) {
                    if let Ok(value) = serde_json::from_slice::<T>(entry.json) {
                        if entry.fresh_until_ms > self.now_ms {
                            return Ok(Some(Served::Fresh(value)));
                        }
                        stale = Some(Served::Stale {
                            value,
                            age_ms: self.now_ms - entry.stored_at_ms,
                            stale_for_ms: self.now_ms - entry.fresh_until_ms,
                        });
                    }
                } else if let Some((&POSITIVE, json)) = bytes.split_first() {
                    // An entry of the plain kind (an older version wrote it):
                    // fresh until its deadline, never served stale.
                    if let Ok(value) = serde_json::from_slice(json) {
                        return Ok(Some(Served::Fresh(value)));
                    }
                }
            }
            Ok(None) => {}
            Err(e) => crate::log::warn(format!(
                "cache: get {key} failed, using the database: {}",
                e.0
            )),
        }
        match load() {
            Ok(Some(value)) => {
                self.put_stale_capable(key, &value, ttl_ms, grace_ms);
                Ok(Some(Served::Fresh(value)))
            }
            Ok(None) => {
                if stale.is_some() {
                    self.invalidate(key);
                }
                Ok(None)
            }
            Err(ApiError::Unavailable(why)) => match stale {
                Some(copy) => {
                    crate::log::warn(format!(
                        "cache: {key} served stale, the database is unavailable: {why}"
                    ));
                    Ok(Some(copy))
                }
                None => Err(ApiError::Unavailable(why)),
            },
            Err(e) => Err(e),
        }
    }

    fn put_stale_capable<T: Serialize>(&self, key: &str, value: &T, ttl_ms: i64, grace_ms: i64) {
        let Ok(json) = serde_json::to_vec(value) else {
            return;
        };
        let fresh_until = self.now_ms + jittered(ttl_ms);
        let mut bytes = Vec::with_capacity(json.len() + 17);
        bytes.push(STALE_CAPABLE);
        bytes.extend_from_slice(&self.now_ms.to_be_bytes());
        bytes.extend_from_slice(&fresh_until.to_be_bytes());
        bytes.extend_from_slice(&json);
        let kept_until = fresh_until.saturating_add(grace_ms.max(0));
        if let Err(e) = put_expiring(self.kv, key, &bytes, kept_until) {
            crate::log::warn(format!("cache: set {key} failed: {}", e.0));
        }
    }

    fn write(&self, key: &str, bytes: &[u8], ttl_ms: i64) {
        let expires_at = self.now_ms + jittered(ttl_ms);
        if let Err(e) = put_expiring(self.kv, key, bytes, expires_at) {
            crate::log::warn(format!("cache: set {key} failed: {}", e.0));
        }
    }
}

/// What [`Cache::read_through_stale_if_error`] answers with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Served<T> {
    /// From the database, or a cached copy still fresh.
    Fresh(T),
    /// A cached copy past its freshness, because the database is unavailable.
    Stale {
        /// The copy.
        value: T,
        /// Milliseconds since the copy was cached (HTTP's `Age`).
        age_ms: i64,
        /// Milliseconds since it went stale.
        stale_for_ms: i64,
    },
}

/// A decoded [`STALE_CAPABLE`] entry.
struct StaleCapable<'b> {
    stored_at_ms: i64,
    fresh_until_ms: i64,
    json: &'b [u8],
}

impl<'b> StaleCapable<'b> {
    fn parse(bytes: &'b [u8]) -> Option<Self> {
        let (&STALE_CAPABLE, rest) = bytes.split_first()? else {
            return None;
        };
        let (stored_at, rest) = rest.split_first_chunk::<8>()?;
        let (fresh_until, json) = rest.split_first_chunk::<8>()?;
        Some(Self {
            stored_at_ms: i64::from_be_bytes(*stored_at),
            fresh_until_ms: i64::from_be_bytes(*fresh_until),
            json,
        })
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
