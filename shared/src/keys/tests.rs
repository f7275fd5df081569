use super::*;

#[test]
fn no_prefix_is_a_prefix_of_another() {
    for (i, a) in ALL.iter().enumerate() {
        for (j, b) in ALL.iter().enumerate() {
            if i != j {
                assert!(!b.starts_with(a), "{a:?} is a prefix of {b:?}");
            }
        }
    }
}

#[test]
fn keys_for_ids_stay_far_below_the_store_limit() {
    let id = "0".repeat(32);
    for key in [user(&id), product(&id), upload(&id), session_revoked(&id)] {
        assert!(key.len() <= 40, "{key}");
    }
}

use crate::testing::hostile_text;
use proptest::prelude::*;

/// The key of each kind for `id`, with the kind's prefix.
fn keys_of(id: &str) -> [(&'static str, String); 4] {
    [
        (USER, user(id)),
        (PRODUCT, product(id)),
        (UPLOAD, upload(id)),
        (SESSION_REVOKED, session_revoked(id)),
    ]
}

proptest! {
    #[test]
    fn a_key_is_its_prefix_then_the_id(id in hostile_text()) {
        for (prefix, key) in keys_of(&id) {
            prop_assert_eq!(key.strip_prefix(prefix), Some(id.as_str()));
        }
    }

    #[test]
    fn keys_of_different_kinds_never_collide(a in hostile_text(), b in hostile_text()) {
        for (i, (_, x)) in keys_of(&a).iter().enumerate() {
            for (j, (_, y)) in keys_of(&b).iter().enumerate() {
                if i != j {
                    prop_assert_ne!(x, y);
                }
            }
            prop_assert_ne!(x.as_str(), HEALTH_PROBE);
        }
    }
}
