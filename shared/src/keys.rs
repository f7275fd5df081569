//! Every key the components write to Spin's key-value store, in one place.
//!
//! The store is shared by all components (and, on Redis, by every instance),
//! so two features must never write under the same prefix: the test below
//! checks that no prefix is a prefix of another. Keys stay short because
//! Fermyon's cloud caps them at 255 bytes and the whole store at 1,024 keys;
//! every key here either belongs to a real record (a cached user, product or
//! upload, a live session's revocation mark) or is a single constant, so the
//! key count tracks real records and anonymous traffic cannot grow it.

/// Cached user record (`users` component), by user id.
pub const USER: &str = "u:";
/// Cached product record (`orders` component), by product id.
pub const PRODUCT: &str = "p:";
/// Cached upload metadata (`uploads` component), by upload id.
pub const UPLOAD: &str = "up:";
/// Revocation mark of one login session, by session id: the access tokens
/// carrying that `sid` issued at or before the stored second are void.
pub const SESSION_REVOKED: &str = "rv:s:";
/// The single key the health check writes and reads back.
pub const HEALTH_PROBE: &str = "hc:probe";

/// Every prefix above, for the collision test and for operators who sweep the store.
pub const ALL: &[&str] = &[USER, PRODUCT, UPLOAD, SESSION_REVOKED, HEALTH_PROBE];

/// The cache key of the user `id`.
pub fn user(id: &str) -> String {
    format!("{USER}{id}")
}

/// The cache key of the product `id`.
pub fn product(id: &str) -> String {
    format!("{PRODUCT}{id}")
}

/// The cache key of the upload `id`.
pub fn upload(id: &str) -> String {
    format!("{UPLOAD}{id}")
}

/// The revocation mark of the session `sid`.
pub fn session_revoked(sid: &str) -> String {
    format!("{SESSION_REVOKED}{sid}")
}

#[cfg(test)]
mod tests {
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
}
