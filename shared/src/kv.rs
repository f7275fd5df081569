//! The key-value port: Spin's key-value store as the handlers see it.
//!
//! Spin's store has no expiry, so values written through [`put_expiring`]
//! carry their own deadline and [`get_unexpired`] treats a stale value as absent.
//! Fermyon's cloud caps the store (keys ≤ 255 bytes, values ≤ 1 MB, 1,024 keys):
//! callers keep keys short and survive a refused write.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Mutex;

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

/// An in-memory store for unit tests and local runs.
#[derive(Debug, Default)]
pub struct MemoryKv {
    entries: Mutex<HashMap<String, Vec<u8>>>,
}

impl MemoryKv {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// True when `key` is present (expired or not) — for asserting side effects.
    pub fn contains(&self, key: &str) -> bool {
        self.lock().contains_key(key)
    }

    /// All keys, sorted — for asserting side effects.
    pub fn keys(&self) -> Vec<String> {
        let mut keys: Vec<_> = self.lock().keys().cloned().collect();
        keys.sort();
        keys
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<u8>>> {
        // A poisoned lock only means another test thread panicked; the map is still usable.
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl KeyValue for MemoryKv {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        Ok(self.lock().get(key).cloned())
    }
    fn set(&self, key: &str, value: &[u8]) -> Result<(), KvError> {
        self.lock().insert(key.to_string(), value.to_vec());
        Ok(())
    }
    fn delete(&self, key: &str) -> Result<(), KvError> {
        self.lock().remove(key);
        Ok(())
    }
}

/// A store whose every operation fails, for testing that a cache outage degrades.
#[derive(Debug, Default)]
pub struct FailingKv;

impl KeyValue for FailingKv {
    fn get(&self, _: &str) -> Result<Option<Vec<u8>>, KvError> {
        Err(KvError("store unreachable".into()))
    }
    fn set(&self, _: &str, _: &[u8]) -> Result<(), KvError> {
        Err(KvError("store unreachable".into()))
    }
    fn delete(&self, _: &str) -> Result<(), KvError> {
        Err(KvError("store unreachable".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiring_value_is_returned_before_its_deadline() {
        let kv = MemoryKv::new();
        put_expiring(&kv, "k", b"v", 1_000).unwrap();
        assert_eq!(get_unexpired(&kv, "k", 999).unwrap(), Some(b"v".to_vec()));
    }

    #[test]
    fn the_deadline_is_readable_from_the_stored_bytes() {
        let kv = MemoryKv::new();
        put_expiring(&kv, "k", b"v", 1_234).unwrap();
        let stored = kv.get("k").unwrap().unwrap();
        assert_eq!(stored_deadline(&stored), Some(1_234));
        assert_eq!(stored_deadline(b"short"), None);
    }

    /// Counts the calls that reach the store beneath.
    #[derive(Default)]
    struct Counting {
        inner: MemoryKv,
        gets: std::cell::Cell<usize>,
        batches: std::cell::Cell<usize>,
    }

    impl KeyValue for Counting {
        fn get(&self, key: &str) -> Result<Option<Vec<u8>>, KvError> {
            self.gets.set(self.gets.get() + 1);
            self.inner.get(key)
        }
        fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Vec<u8>>>, KvError> {
            self.batches.set(self.batches.get() + 1);
            keys.iter().map(|k| self.inner.get(k)).collect()
        }
        fn set(&self, key: &str, value: &[u8]) -> Result<(), KvError> {
            self.inner.set(key, value)
        }
        fn delete(&self, key: &str) -> Result<(), KvError> {
            self.inner.delete(key)
        }
    }

    #[test]
    fn prefetched_keys_are_read_in_one_batch_and_answered_from_it() {
        let kv = Counting::default();
        kv.set("a", b"1").unwrap();
        let view = Prefetched::read(&kv, &["a", "b"]);
        assert_eq!(view.get("a").unwrap(), Some(b"1".to_vec()));
        assert_eq!(view.get("b").unwrap(), None);
        assert_eq!((kv.batches.get(), kv.gets.get()), (1, 0));
    }

    #[test]
    fn a_prefetched_key_is_read_from_the_store_after_its_first_read() {
        let kv = Counting::default();
        let view = Prefetched::read(&kv, &["a"]);
        assert_eq!(view.get("a").unwrap(), None);
        kv.inner.set("a", b"later").unwrap();
        assert_eq!(view.get("a").unwrap(), Some(b"later".to_vec()));
        assert_eq!(kv.gets.get(), 1);
    }

    #[test]
    fn a_write_through_the_view_replaces_the_prefetched_value() {
        let kv = MemoryKv::new();
        kv.set("a", b"old").unwrap();
        let view = Prefetched::read(&kv, &["a"]);
        view.set("a", b"new").unwrap();
        assert_eq!(view.get("a").unwrap(), Some(b"new".to_vec()));
        view.delete("a").unwrap();
        assert_eq!(view.get("a").unwrap(), None);
        assert!(!kv.contains("a"));
    }

    #[test]
    fn a_failed_batch_leaves_each_read_to_fail_on_its_own() {
        let view = Prefetched::read(&FailingKv, &["a"]);
        assert!(view.get("a").is_err());
    }

    #[test]
    fn expired_value_is_a_miss_and_is_deleted() {
        let kv = MemoryKv::new();
        put_expiring(&kv, "k", b"v", 1_000).unwrap();
        assert_eq!(get_unexpired(&kv, "k", 1_000).unwrap(), None);
        assert!(!kv.contains("k"));
    }
}
