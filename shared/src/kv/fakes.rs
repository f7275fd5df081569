//! The key-value fakes of unit tests: a store in memory, and one that is
//! always down. Compiled for tests and the `testing` feature only, so no
//! component's wasm carries them.

use std::collections::HashMap;
use std::sync::Mutex;

use super::{KeyValue, KvError};

/// An in-memory store for unit tests.
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
