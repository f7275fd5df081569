use super::*;
use crate::kv::{FailingKv, MemoryKv};
use std::cell::Cell;

#[test]
fn miss_loads_once_then_hits() {
    let kv = MemoryKv::new();
    let cache = Cache::new(&kv, 0);
    let loads = Cell::new(0);
    for _ in 0..2 {
        let v = cache
            .get_or_load("p:1", 60_000, 5_000, || {
                loads.set(loads.get() + 1);
                Ok(Some(7u32))
            })
            .unwrap();
        assert_eq!(v, Some(7));
    }
    assert_eq!(loads.get(), 1);
}

#[test]
fn absent_record_is_cached_as_missing() {
    let kv = MemoryKv::new();
    let cache = Cache::new(&kv, 0);
    assert_eq!(
        cache.get_or_load::<u32, _>("p:x", 60_000, 5_000, || Ok(None)),
        Ok(None)
    );
    assert_eq!(cache.get::<u32>("p:x"), Lookup::KnownMissing);
}

#[test]
fn read_through_of_an_absent_record_stores_nothing() {
    let kv = MemoryKv::new();
    let cache = Cache::new(&kv, 0);
    for i in 0..100 {
        let v = cache
            .read_through::<u32, _>(&format!("p:{i}"), 60_000, || Ok(None))
            .unwrap();
        assert_eq!(v, None);
    }
    assert!(kv.keys().is_empty());
}

#[test]
fn read_through_caches_a_present_record_once() {
    let kv = MemoryKv::new();
    let cache = Cache::new(&kv, 0);
    let loads = Cell::new(0);
    for _ in 0..2 {
        let v = cache
            .read_through("p:1", 60_000, || {
                loads.set(loads.get() + 1);
                Ok(Some(7u32))
            })
            .unwrap();
        assert_eq!(v, Some(7));
    }
    assert_eq!(loads.get(), 1);
    assert_eq!(kv.keys(), vec!["p:1".to_string()]);
}

#[test]
fn read_through_does_not_trust_an_old_negative_entry() {
    let kv = MemoryKv::new();
    let cache = Cache::new(&kv, 0);
    cache.put_missing("p:1", 60_000);
    let v = cache
        .read_through("p:1", 60_000, || Ok(Some(7u32)))
        .unwrap();
    assert_eq!(v, Some(7));
}

#[test]
fn entry_expires_within_jittered_ttl() {
    let kv = MemoryKv::new();
    Cache::new(&kv, 0).put("k", &1u8, 1_000);
    assert_eq!(Cache::new(&kv, 899).get::<u8>("k"), Lookup::Hit(1));
    assert_eq!(Cache::new(&kv, 1_101).get::<u8>("k"), Lookup::Miss);
}

#[test]
fn failing_store_falls_back_to_the_loader() {
    let kv = FailingKv;
    let cache = Cache::new(&kv, 0);
    let v = cache
        .get_or_load("k", 1_000, 1_000, || Ok(Some(3u8)))
        .unwrap();
    assert_eq!(v, Some(3));
}

#[test]
fn jitter_stays_within_ten_percent() {
    for _ in 0..100 {
        let t = jittered(10_000);
        assert!((9_000..=11_000).contains(&t));
    }
}
