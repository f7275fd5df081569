use super::*;
use crate::auth::tests::{config, request_with, NOW, OPEN};
use crate::auth::{end_session, Role};
use crate::http::Method;
use crate::kv::{FailingKv, MemoryKv};
use crate::testing::hostile_text;
use proptest::prelude::*;

#[test]
fn issued_token_authenticates() {
    let (token, claims) = config().issue("u1", Role::Admin, "s1", NOW, OPEN).unwrap();
    let request = request_with(&token);
    let ctx = RequestContext::new(&request, NOW);
    let p = authenticate(&ctx, &request, &config(), &MemoryKv::new()).unwrap();
    assert_eq!(p.user_id, "u1");
    assert_eq!(p.role, Role::Admin);
    assert_eq!(p.claims, claims);
}

#[test]
fn missing_or_non_bearer_authorization_is_refused() {
    assert!(bearer_token(&Request::new(Method::Get, "/")).is_err());
    let basic = Request::new(Method::Get, "/").with_header("authorization", "Basic abc");
    assert!(bearer_token(&basic).is_err());
}

/// [`authenticate_reading_ahead`] asking for the user's key `u:<sub>`.
fn authenticate_ahead<'a>(
    token: &str,
    kv: &'a dyn KeyValue,
) -> Result<(Principal, Prefetched<'a>), ApiError> {
    let request = request_with(token);
    authenticate_reading_ahead(
        &RequestContext::new(&request, NOW),
        &request,
        &config(),
        kv,
        |claims| vec![keys::user(&claims.sub)],
    )
}

#[test]
fn reading_ahead_authenticates_and_answers_the_keys_it_read() {
    let kv = MemoryKv::new();
    kv.set("u:u1", b"profile").unwrap();
    let (token, _) = config().issue("u1", Role::User, "s1", NOW, OPEN).unwrap();
    let (principal, view) = authenticate_ahead(&token, &kv).unwrap();
    assert_eq!(principal.user_id, "u1");
    assert_eq!(view.get("u:u1").unwrap(), Some(b"profile".to_vec()));
}

#[test]
fn reading_ahead_still_refuses_an_ended_session() {
    let kv = MemoryKv::new();
    kv.set("u:u1", b"profile").unwrap();
    let (token, _) = config().issue("u1", Role::User, "s1", NOW, OPEN).unwrap();
    end_session(&kv, &config(), "s1", NOW).unwrap();
    let err = authenticate_ahead(&token, &kv).err().unwrap();
    assert_eq!(err, ApiError::InvalidToken);
}

#[test]
fn reading_ahead_from_an_unreadable_store_is_503_not_a_pass() {
    let (token, _) = config().issue("u1", Role::User, "s1", NOW, OPEN).unwrap();
    let err = authenticate_ahead(&token, &FailingKv).err().unwrap();
    assert_eq!(err.status(), 503);
}

proptest! {
    #[test]
    fn bearer_extraction_of_any_header_is_a_trimmed_token_or_invalid_token(
        value in prop_oneof![
            hostile_text(),
            hostile_text().prop_map(|t| format!("Bearer {t}")),
            hostile_text().prop_map(|t| format!("bEaReR  {t} ")),
        ]
    ) {
        let request = Request::new(Method::Get, "/").with_header("Authorization", &value);
        match bearer_token(&request) {
            Ok(token) => {
                prop_assert!(!token.is_empty());
                prop_assert_eq!(token, token.trim());
                let (scheme, rest) = value.split_once(' ').unwrap();
                prop_assert!(scheme.eq_ignore_ascii_case("bearer"));
                prop_assert_eq!(rest.trim(), token);
            }
            Err(e) => prop_assert_eq!(e, ApiError::InvalidToken),
        }
    }
}
