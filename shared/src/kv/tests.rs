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
