//! The pure rules of uploads: visibility names, the quota, and the cap on
//! pending direct uploads.

use proptest::prelude::*;
use shared::testing::hostile_text;
use shared::ApiError;

use super::*;

fn pending(expires_at_ms: i64) -> Pending {
    Pending {
        id: "p".repeat(32),
        user_id: "u".repeat(32),
        filename: "a.png".into(),
        size: 10,
        sha256: "0".repeat(64),
        visibility: Visibility::Private,
        object_key: "incoming/p".into(),
        created_at_ms: 0,
        expires_at_ms,
    }
}

// ------------------------------------------------------------------ visibility

#[test]
fn visibility_round_trips_through_its_stored_name() {
    for v in [Visibility::Private, Visibility::Public] {
        assert_eq!(Visibility::parse(v.as_str()), Some(v));
        // The cached metadata (JSON) spells it the same way.
        assert_eq!(
            serde_json::to_value(v).unwrap(),
            serde_json::json!(v.as_str())
        );
    }
}

#[test]
fn visibility_is_case_and_space_sensitive() {
    for s in ["Public", "PRIVATE", " public", "public ", "", "world"] {
        assert_eq!(Visibility::parse(s), None, "{s:?}");
    }
}

proptest! {
    #[test]
    fn only_the_two_names_parse_as_a_visibility(s in hostile_text()) {
        match Visibility::parse(&s) {
            Some(v) => prop_assert_eq!(v.as_str(), s.as_str()),
            None => prop_assert!(s != "private" && s != "public"),
        }
    }
}

// ------------------------------------------------------------------ pending

#[test]
fn an_announcement_holds_room_until_it_expires() {
    let p = pending(1_000);
    assert!(p.holds_room_at(999));
    assert!(!p.holds_room_at(1_000), "the expiry instant itself is past");
    assert!(!p.holds_room_at(2_000));
}

// ------------------------------------------------------------------ quota

fn usage(stored_bytes: u64, pending_bytes: u64) -> Usage {
    Usage {
        stored_bytes,
        pending_bytes,
    }
}

#[test]
fn up_to_the_quota_exactly_fits_and_one_byte_more_is_409() {
    assert_eq!(check_quota(usage(60, 37), 3, 100), Ok(()));
    assert_eq!(
        check_quota(usage(60, 37), 4, 100),
        Err(ApiError::QuotaExceeded { quota: 100 })
    );
}

#[test]
fn pending_announcements_count_like_stored_uploads() {
    assert_eq!(check_quota(usage(0, 98), 3, 100).unwrap_err().status(), 409);
    assert_eq!(check_quota(usage(98, 0), 3, 100).unwrap_err().status(), 409);
    assert_eq!(check_quota(usage(0, 0), 100, 100), Ok(()));
}

#[test]
fn a_file_larger_than_the_whole_quota_is_refused_even_for_a_new_user() {
    assert_eq!(
        check_quota(Usage::default(), 101, 100),
        Err(ApiError::QuotaExceeded { quota: 100 })
    );
}

#[test]
fn sizes_near_the_integer_limit_refuse_rather_than_wrap() {
    assert!(check_quota(usage(u64::MAX, 1), 1, u64::MAX - 1).is_err());
    assert!(check_quota(usage(1, 1), u64::MAX, u64::MAX - 1).is_err());
    // Nothing adds up past u64::MAX: as a quota it admits everything.
    assert_eq!(check_quota(usage(1, 1), u64::MAX, u64::MAX), Ok(()));
}

proptest! {
    #[test]
    fn the_quota_admits_exactly_what_fits(
        stored in any::<u64>(),
        pending in any::<u64>(),
        new in any::<u64>(),
        quota in any::<u64>(),
    ) {
        let total = u128::from(stored) + u128::from(pending) + u128::from(new);
        let fits = total.min(u128::from(u64::MAX)) <= u128::from(quota);
        let decided = check_quota(usage(stored, pending), new, quota);
        prop_assert_eq!(decided.is_ok(), fits);
        if let Err(e) = decided {
            prop_assert_eq!(e, ApiError::QuotaExceeded { quota });
        }
    }
}

// ------------------------------------------------------------------ pending cap

#[test]
fn below_the_cap_an_announcement_is_admitted() {
    assert_eq!(check_pending_cap(0, 0, 5_000), Ok(()));
    assert_eq!(
        check_pending_cap(MAX_PENDING_PER_USER - 1, 9_000, 5_000),
        Ok(())
    );
}

#[test]
fn at_the_cap_the_client_retries_when_the_oldest_expires() {
    assert_eq!(
        check_pending_cap(MAX_PENDING_PER_USER, 5_000 + 300_001, 5_000),
        Err(ApiError::TooManyAttempts {
            retry_after_secs: 301
        }),
        "rounded up to whole seconds"
    );
    assert_eq!(
        check_pending_cap(MAX_PENDING_PER_USER + 3, 5_000 + 2_000, 5_000),
        Err(ApiError::TooManyAttempts {
            retry_after_secs: 2
        })
    );
}

#[test]
fn an_expiry_already_due_still_asks_for_a_second() {
    for oldest in [5_000, 4_000, i64::MIN] {
        assert_eq!(
            check_pending_cap(MAX_PENDING_PER_USER, oldest, 5_000),
            Err(ApiError::TooManyAttempts {
                retry_after_secs: 1
            }),
            "{oldest}"
        );
    }
}
