use super::*;
use crate::auth::tests::{config, request_with, NOW, OPEN};
use crate::auth::{authenticate, Principal, Role};
use crate::context::RequestContext;
use crate::kv::{FailingKv, MemoryKv};

fn authenticate_at(token: &str, kv: &dyn KeyValue, now_ms: i64) -> Result<Principal, ApiError> {
    let request = request_with(token);
    authenticate(
        &RequestContext::new(&request, now_ms),
        &request,
        &config(),
        kv,
    )
}

#[test]
fn ended_session_refuses_its_tokens_and_its_key_is_stored() {
    let kv = MemoryKv::new();
    let (token, _) = config().issue("u1", Role::User, "s1", NOW, OPEN).unwrap();
    end_session(&kv, &config(), "s1", NOW).unwrap();
    assert!(kv.contains("rv:s:s1"));
    let err = authenticate_at(&token, &kv, NOW).unwrap_err();
    assert_eq!(err, ApiError::InvalidToken);
}

#[test]
fn ended_session_also_refuses_a_token_minted_after_the_mark() {
    let kv = MemoryKv::new();
    end_session(&kv, &config(), "s1", NOW).unwrap();
    let (late, _) = config()
        .issue("u1", Role::User, "s1", NOW + 5_000, OPEN)
        .unwrap();
    assert!(authenticate_at(&late, &kv, NOW + 5_000).is_err());
}

#[test]
fn ending_one_session_leaves_the_users_other_sessions_alone() {
    let kv = MemoryKv::new();
    let (other, _) = config().issue("u1", Role::User, "s2", NOW, OPEN).unwrap();
    end_session(&kv, &config(), "s1", NOW).unwrap();
    assert!(authenticate_at(&other, &kv, NOW).is_ok());
}

#[test]
fn voided_tokens_die_but_the_sessions_newer_tokens_pass() {
    let kv = MemoryKv::new();
    let (old, _) = config().issue("u1", Role::User, "s1", NOW, OPEN).unwrap();
    void_session_tokens(&kv, &config(), "s1", NOW + 500).unwrap();
    let (new, _) = config()
        .issue("u1", Role::User, "s1", NOW + 1_000, OPEN)
        .unwrap();
    assert!(authenticate_at(&old, &kv, NOW + 1_000).is_err());
    assert!(authenticate_at(&new, &kv, NOW + 1_000).is_ok());
}

#[test]
fn a_mark_outlives_every_token_it_voids() {
    let kv = MemoryKv::new();
    let (token, claims) = config().issue("u1", Role::User, "s1", NOW, OPEN).unwrap();
    end_session(&kv, &config(), "s1", NOW).unwrap();
    let last_valid_ms = (claims.exp + LEEWAY_SECS) * 1000 - 1;
    assert!(authenticate_at(&token, &kv, last_valid_ms).is_err());
}

#[test]
fn unreadable_revocation_store_is_503_not_a_pass() {
    let (token, _) = config().issue("u1", Role::User, "s1", NOW, OPEN).unwrap();
    let err = authenticate_at(&token, &FailingKv, NOW).unwrap_err();
    assert_eq!(err.status(), 503);
}
