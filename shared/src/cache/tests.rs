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

// ---------------------------------------------------------------- stale-if-error

const TTL: i64 = 60_000;
const GRACE: i64 = 3_600_000;

fn down() -> Result<Option<u32>, ApiError> {
    Err(ApiError::Unavailable("database down".into()))
}

#[test]
fn a_fresh_copy_answers_without_the_database() {
    let kv = MemoryKv::new();
    Cache::new(&kv, 0)
        .read_through_stale_if_error("p:1", TTL, GRACE, || Ok(Some(7u32)))
        .unwrap();
    let again = Cache::new(&kv, 1_000)
        .read_through_stale_if_error("p:1", TTL, GRACE, || -> Result<Option<u32>, ApiError> {
            panic!("a fresh copy needs no database")
        })
        .unwrap();
    assert_eq!(again, Some(Served::Fresh(7)));
    assert_eq!(Cache::new(&kv, 1_000).get::<u32>("p:1"), Lookup::Hit(7));
}

#[test]
fn an_expired_copy_is_served_stale_only_while_the_database_is_unavailable() {
    let kv = MemoryKv::new();
    Cache::new(&kv, 0)
        .read_through_stale_if_error("p:1", TTL, GRACE, || Ok(Some(7u32)))
        .unwrap();
    let later = 2 * TTL;
    let served = Cache::new(&kv, later)
        .read_through_stale_if_error("p:1", TTL, GRACE, down)
        .unwrap();
    let Some(Served::Stale {
        value,
        age_ms,
        stale_for_ms,
    }) = served
    else {
        panic!("expected a stale copy, got {served:?}");
    };
    assert_eq!(value, 7);
    assert_eq!(age_ms, later);
    // The freshness was jittered by ±10 %.
    assert!((later - TTL - TTL / 10..=later - TTL + TTL / 10).contains(&stale_for_ms));
    // Past its freshness the entry is no hit for the plain reader.
    assert_eq!(Cache::new(&kv, later).get::<u32>("p:1"), Lookup::Miss);
    // With the database back, the copy is replaced by what it says.
    let fresh = Cache::new(&kv, later)
        .read_through_stale_if_error("p:1", TTL, GRACE, || Ok(Some(8u32)))
        .unwrap();
    assert_eq!(fresh, Some(Served::Fresh(8)));
}

#[test]
fn a_copy_stale_for_longer_than_the_grace_is_gone_and_the_failure_shows() {
    let kv = MemoryKv::new();
    Cache::new(&kv, 0)
        .read_through_stale_if_error("p:1", TTL, GRACE, || Ok(Some(7u32)))
        .unwrap();
    let long_after = TTL + TTL / 10 + GRACE + 1;
    let answer = Cache::new(&kv, long_after).read_through_stale_if_error("p:1", TTL, GRACE, down);
    assert_eq!(answer, Err(ApiError::Unavailable("database down".into())));
    assert_eq!(kv.get("p:1").unwrap(), None, "the expired entry is deleted");
}

#[test]
fn other_failures_are_never_hidden_by_a_stale_copy() {
    let kv = MemoryKv::new();
    Cache::new(&kv, 0)
        .read_through_stale_if_error("p:1", TTL, GRACE, || Ok(Some(7u32)))
        .unwrap();
    let answer = Cache::new(&kv, 2 * TTL).read_through_stale_if_error(
        "p:1",
        TTL,
        GRACE,
        || -> Result<Option<u32>, ApiError> { Err(ApiError::Internal("bug".into())) },
    );
    assert_eq!(answer, Err(ApiError::Internal("bug".into())));
}

#[test]
fn a_record_found_deleted_drops_its_stale_copy() {
    let kv = MemoryKv::new();
    Cache::new(&kv, 0)
        .read_through_stale_if_error("p:1", TTL, GRACE, || Ok(Some(7u32)))
        .unwrap();
    let answer = Cache::new(&kv, 2 * TTL)
        .read_through_stale_if_error::<u32, _>("p:1", TTL, GRACE, || Ok(None))
        .unwrap();
    assert_eq!(answer, None);
    assert_eq!(kv.get("p:1").unwrap(), None);
}

#[test]
fn an_unknown_id_with_the_database_down_stores_nothing() {
    let kv = MemoryKv::new();
    let answer = Cache::new(&kv, 0).read_through_stale_if_error("p:404", TTL, GRACE, down);
    assert!(matches!(answer, Err(ApiError::Unavailable(_))));
    assert!(kv.keys().is_empty());
}

#[test]
fn a_failing_store_leaves_the_database_answering() {
    let answer = Cache::new(&FailingKv, 0)
        .read_through_stale_if_error("p:1", TTL, GRACE, || Ok(Some(7u32)))
        .unwrap();
    assert_eq!(answer, Some(Served::Fresh(7)));
}
