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
mod tests;
