//! The key-value port: Spin's key-value store as the handlers see it.
//!
//! Spin's store has no expiry, so values written through [`put_expiring`]
//! carry their own deadline and [`get_unexpired`] treats a stale value as absent.
//! Fermyon's cloud caps the store (keys ≤ 255 bytes, values ≤ 1 MB, 1,024 keys):
//! callers keep keys short and survive a refused write.
//!
//! The fakes `MemoryKv` and `FailingKv` (in `fakes`) exist for tests and the
//! `testing` feature only, so no component's wasm carries them.

use std::cell::RefCell;

use crate::error::ApiError;

/// A key-value operation that failed; the store is unreachable or refused it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvError(pub String);

impl From<KvError> for ApiError {
    fn from(e: KvError) -> Self {
        ApiError::Unavailable(format!("key-value store: {}", e.0))
    }
}

/// The operations of Spin's `fermyon:spin/key-value` store the API uses.
pub trait KeyValue {
    /// The value under `key`, if any.
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, KvError>;
    /// The values under `keys`, in the order asked. A store that can batch
    /// answers in one round trip; this default reads the keys one by one.
    fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Vec<u8>>>, KvError> {
        keys.iter().map(|key| self.get(key)).collect()
    }
    /// Stores `value` under `key`, replacing any previous value.
    fn set(&self, key: &str, value: &[u8]) -> Result<(), KvError>;
    /// Removes `key`; removing an absent key is not an error.
    fn delete(&self, key: &str) -> Result<(), KvError>;
}

/// Stores `value` under `key` until `expires_at_ms` (epoch milliseconds).
pub fn put_expiring(
    kv: &dyn KeyValue,
    key: &str,
    value: &[u8],
    expires_at_ms: i64,
) -> Result<(), KvError> {
    let mut stored = Vec::with_capacity(8 + value.len());
    stored.extend_from_slice(&expires_at_ms.to_be_bytes());
    stored.extend_from_slice(value);
    kv.set(key, &stored)
}

/// The deadline (epoch milliseconds) a value written by [`put_expiring`]
/// carries, or `None` when `stored` is too short to hold one. The purge
/// (`tools/purge`) reads it to delete entries nobody will read again.
pub fn stored_deadline(stored: &[u8]) -> Option<i64> {
    stored
        .split_first_chunk::<8>()
        .map(|(deadline, _)| i64::from_be_bytes(*deadline))
}

/// The value under `key` if it was written by [`put_expiring`] and has not
/// expired at `now_ms`. A stale value is deleted (best effort) so expired keys
/// do not pile up against the store's key cap.
pub fn get_unexpired(
    kv: &dyn KeyValue,
    key: &str,
    now_ms: i64,
) -> Result<Option<Vec<u8>>, KvError> {
    let Some(stored) = kv.get(key)? else {
        return Ok(None);
    };
    let Some((deadline, value)) = stored.split_first_chunk::<8>() else {
        return Ok(None);
    };
    if i64::from_be_bytes(*deadline) <= now_ms {
        let _ = kv.delete(key);
        return Ok(None);
    }
    Ok(Some(value.to_vec()))
}

/// A store in which some keys were read ahead in one batch: the first read
/// of each of them is answered from the batch, every other operation goes to
/// the store (a write or delete also forgets the key's batched value).
///
/// It lets a handler that knows up front which keys it will read — the
/// session's revocation mark and the cached record — pay one round trip for
/// both while the code that reads them stays as it is. A failed batch reads
/// ahead nothing, so each key is then read on its own, and a store that is
/// down fails exactly where it would have.
pub struct Prefetched<'a> {
    kv: &'a dyn KeyValue,
    /// The batch's answers not read yet: a handful, so a list, not a map.
    ahead: RefCell<Vec<(String, Option<Vec<u8>>)>>,
}

impl<'a> Prefetched<'a> {
    /// Reads `keys` from `kv` in one batch.
    pub fn read(kv: &'a dyn KeyValue, keys: &[&str]) -> Self {
        let ahead = match kv.get_many(keys) {
            Ok(values) => keys
                .iter()
                .map(|key| (*key).to_owned())
                .zip(values)
                .collect(),
            Err(_) => Vec::new(),
        };
        Self {
            kv,
            ahead: RefCell::new(ahead),
        }
    }

    /// Takes `key`'s batched answer, if it is still there.
    fn take(&self, key: &str) -> Option<Option<Vec<u8>>> {
        let mut ahead = self.ahead.borrow_mut();
        let i = ahead.iter().position(|(k, _)| k == key)?;
        Some(ahead.swap_remove(i).1)
    }
}

impl KeyValue for Prefetched<'_> {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        match self.take(key) {
            Some(value) => Ok(value),
            None => self.kv.get(key),
        }
    }
    fn set(&self, key: &str, value: &[u8]) -> Result<(), KvError> {
        self.take(key);
        self.kv.set(key, value)
    }
    fn delete(&self, key: &str) -> Result<(), KvError> {
        self.take(key);
        self.kv.delete(key)
    }
}

#[cfg(any(test, feature = "testing"))]
mod fakes;
#[cfg(any(test, feature = "testing"))]
pub use fakes::{FailingKv, MemoryKv};

#[cfg(test)]
mod tests;
