//! Handler tests on the in-memory fakes: status, body and side effects.

use super::*;
use identity::limits::Limit;
use identity::model::NewSession;
use identity::repo::{AccountRepo, MemoryIdentity, SessionRepo};
use identity::Credentials;
use serde_json::json;
use shared::auth::end_session;
use shared::context::TrustedProxies;
use shared::kv::{FailingKv, MemoryKv};
use shared::testing::{authed, token_config, PingOnlySql, NOW};

const PASSWORD: &str = "correct horse";

struct World {
    kv: MemoryKv,
    repo: MemoryIdentity,
    db: PingOnlySql,
    config: Config,
}

impl World {
    fn new() -> Self {
        Self {
            kv: MemoryKv::new(),
            repo: MemoryIdentity::new(),
            db: PingOnlySql::default(),
            config: Config {
                tokens: token_config(),
                cache_ttl_ms: 300_000,
                registration: Limit::new("r", 20, 3600).unwrap(),
                password_check: Limit::new("p", 5, 900).unwrap(),
                trusted_proxies: TrustedProxies::default(),
                admin_email: Some(Email::parse("boss@example.com").unwrap()),
            },
        }
    }

    fn env(&self) -> Ports<'_> {
        self.ports_with(&self.kv)
    }

    /// The ports over the fakes, with `kv` as the key-value store.
    fn ports_with<'a>(&'a self, kv: &'a dyn KeyValue) -> Ports<'a> {
        Ports {
            identity: identity::repo::Ports::new(kv, &self.repo),
            db: &self.db,
        }
    }

    /// Adds a user with one login session and returns `(id, access token)`.
    fn user(&self, email: &str, role: Role) -> (String, String) {
        let id = new_id(NOW).unwrap();
        let user = User {
            id: id.clone(),
            email: email.into(),
            name: "Ann".into(),
            role,
            created_at_ms: NOW,
            updated_at_ms: NOW,
        };
        let hash = hash_password(&Password::parse(PASSWORD, None).unwrap()).unwrap();
        self.repo.insert_user(&user, &hash).unwrap();
        let sid = new_id(NOW).unwrap();
        self.session(&id, &sid);
        (id.clone(), self.token(&id, role, &sid, NOW))
    }

    /// Records a live session `sid` of user `id`, as a login would.
    fn session(&self, id: &str, sid: &str) {
        let verified: Credentials = self.repo.find_credentials(id).unwrap().unwrap();
        let recorded = self
            .repo
            .create_session(
                &NewSession {
                    id: sid.into(),
                    user_id: id.into(),
                    refresh_hash: format!("h-{sid}"),
                    created_at_ms: NOW,
                    expires_at_ms: NOW + 1_000_000,
                },
                &verified,
            )
            .unwrap();
        assert!(recorded);
    }

    fn token(&self, id: &str, role: Role, sid: &str, at: i64) -> String {
        shared::testing::token(id, role, sid, at)
    }

    fn sid(&self, token: &str) -> String {
        self.config.tokens.verify(token, NOW).unwrap().sid
    }

    fn call_at(&self, req: Request, now: i64) -> Result<Response, ApiError> {
        let ctx = RequestContext::new(&req, now);
        handle(&ctx, &req, &self.config, &self.env())
    }

    fn call(&self, req: Request) -> Result<Response, ApiError> {
        self.call_at(req, NOW)
    }
}

fn fields(err: ApiError) -> Vec<String> {
    match err {
        ApiError::Validation(errors) => errors.into_iter().map(|e| e.field).collect(),
        other => panic!("expected validation_failed, got {other:?}"),
    }
}

// ---------------------------------------------------------------- register

#[test]
fn register_creates_the_user_with_a_hashed_password() {
    let w = World::new();
    let req = Request::new(Method::Post, "/api/v1/users")
        .with_json(&json!({"email": " Ann@Example.com", "password": PASSWORD, "name": " Ann "}));
    let resp = w.call(req).unwrap();
    assert_eq!(resp.status, 201);
    let b = resp.json_body();
    let id = b["id"].as_str().unwrap();
    assert_eq!(
        resp.header("location"),
        Some(format!("/api/v1/users/{id}").as_str())
    );
    assert_eq!(
        (b["email"].as_str(), b["name"].as_str(), b["role"].as_str()),
        (Some("ann@example.com"), Some("Ann"), Some("user"))
    );
    assert_eq!(b.as_object().unwrap().len(), 6);
    let (_, hash) = w.repo.user_row(id).unwrap();
    assert!(hash.starts_with("$argon2id$") && verify_password(&hash, PASSWORD));
}

#[test]
fn registering_the_bootstrap_admin_email_is_409_and_stores_nothing() {
    let w = World::new();
    let req = Request::new(Method::Post, "/api/v1/users")
        .with_json(&json!({"email": "Boss@Example.com", "password": PASSWORD, "name": "Mallory"}));
    assert_eq!(w.call(req).unwrap_err(), ApiError::EmailTaken);
    assert!(w.repo.user_by_email("boss@example.com").is_none());
}

#[test]
fn registrations_past_the_address_limit_are_429_and_store_nothing() {
    let mut w = World::new();
    w.config.registration = Limit::new("r", 2, 3600).unwrap();
    let register = |i: u32| {
        let req = Request::new(Method::Post, "/api/v1/users")
            .with_json(
                &json!({"email": format!("u{i}@example.com"), "password": PASSWORD, "name": "U"}),
            )
            .with_header("spin-client-addr", "192.0.2.1:1");
        w.call(req)
    };
    assert_eq!(register(1).unwrap().status, 201);
    assert_eq!(register(2).unwrap().status, 201);
    assert_eq!(register(3).unwrap_err().status(), 429);
    assert!(w.repo.user_by_email("u3@example.com").is_none());
}

#[test]
fn register_reports_every_bad_field() {
    let w = World::new();
    let req = Request::new(Method::Post, "/api/v1/users")
        .with_json(&json!({"email": "nope", "password": "short", "name": " "}));
    assert_eq!(
        fields(w.call(req).unwrap_err()),
        ["email", "password", "name"]
    );
}

#[test]
fn register_reports_missing_fields_as_validation_errors() {
    let w = World::new();
    let req = Request::new(Method::Post, "/api/v1/users").with_json(&json!({}));
    assert_eq!(
        fields(w.call(req).unwrap_err()),
        ["email", "password", "name"]
    );
}

#[test]
fn register_refuses_password_equal_to_email() {
    let w = World::new();
    let req = Request::new(Method::Post, "/api/v1/users").with_json(
        &json!({"email": "ann@example.com", "password": "ann@example.com", "name": "Ann"}),
    );
    assert_eq!(fields(w.call(req).unwrap_err()), ["password"]);
}

#[test]
fn register_taken_email_is_409() {
    let w = World::new();
    w.user("ann@example.com", Role::User);
    let req = Request::new(Method::Post, "/api/v1/users")
        .with_json(&json!({"email": "ANN@example.com", "password": PASSWORD, "name": "Ann"}));
    assert_eq!(w.call(req).unwrap_err(), ApiError::EmailTaken);
}

#[test]
fn register_unknown_field_is_400_invalid_body() {
    let w = World::new();
    let req = Request::new(Method::Post, "/api/v1/users")
        .with_json(&json!({"email": "a@b.cd", "password": PASSWORD, "name": "A", "role": "admin"}));
    assert_eq!(w.call(req).unwrap_err().code(), "invalid_body");
}

// ---------------------------------------------------------------- me / get

#[test]
fn me_returns_the_caller_and_caches_them() {
    let w = World::new();
    let (id, token) = w.user("ann@example.com", Role::User);
    let resp = w
        .call(authed(Method::Get, "/api/v1/users/me", &token))
        .unwrap();
    assert_eq!(resp.json_body()["id"], id.as_str());
    assert_eq!(resp.header("cache-control"), Some("no-store"));
    assert!(w.kv.contains(&keys::user(&id)));
}

#[test]
fn warm_cache_answers_without_the_database() {
    let w = World::new();
    let (id, token) = w.user("ann@example.com", Role::User);
    w.call(authed(Method::Get, "/api/v1/users/me", &token))
        .unwrap();
    let calls = w.repo.calls();
    w.repo.set_down(true);
    let resp = w
        .call(authed(Method::Get, &format!("/api/v1/users/{id}"), &token))
        .unwrap();
    assert_eq!(resp.status, 200);
    assert_eq!(w.repo.calls(), calls);
}

#[test]
fn cache_entry_never_holds_the_password_hash() {
    let w = World::new();
    let (id, token) = w.user("ann@example.com", Role::User);
    w.call(authed(Method::Get, "/api/v1/users/me", &token))
        .unwrap();
    let raw = w.kv.get(&keys::user(&id)).unwrap().unwrap();
    assert!(!String::from_utf8_lossy(&raw).contains("argon2"));
}

#[test]
fn cache_outage_falls_back_to_the_database_for_reads() {
    let w = World::new();
    let (id, _) = w.user("ann@example.com", Role::User);
    let repo_user = cached_user(&Cache::new(&FailingKv, NOW), &w.repo, &id, 1000).unwrap();
    assert!(repo_user.is_some());
}

#[test]
fn me_without_a_token_is_401() {
    let w = World::new();
    assert_eq!(
        w.call(Request::new(Method::Get, "/api/v1/users/me"))
            .unwrap_err(),
        ApiError::InvalidToken
    );
}

#[test]
fn revoked_user_token_is_401() {
    let w = World::new();
    let (_, token) = w.user("ann@example.com", Role::User);
    end_session(&w.kv, &w.config.tokens, &w.sid(&token), NOW).unwrap();
    assert_eq!(
        w.call(authed(Method::Get, "/api/v1/users/me", &token))
            .unwrap_err(),
        ApiError::InvalidToken
    );
}

#[test]
fn other_users_record_is_403_for_a_user_and_200_for_an_admin() {
    let w = World::new();
    let (ann, _) = w.user("ann@example.com", Role::User);
    let (_, bob) = w.user("bob@example.com", Role::User);
    let (_, admin) = w.user("root@example.com", Role::Admin);
    let path = format!("/api/v1/users/{ann}");
    assert_eq!(
        w.call(authed(Method::Get, &path, &bob)).unwrap_err(),
        ApiError::Forbidden
    );
    assert_eq!(
        w.call(authed(Method::Get, &path, &admin)).unwrap().status,
        200
    );
}

#[test]
fn unknown_id_is_404_and_cached_as_missing() {
    let w = World::new();
    let (_, admin) = w.user("root@example.com", Role::Admin);
    let ghost = new_id(NOW).unwrap();
    let err = w
        .call(authed(
            Method::Get,
            &format!("/api/v1/users/{ghost}"),
            &admin,
        ))
        .unwrap_err();
    assert_eq!(err, ApiError::NotFound);
    assert!(w.kv.contains(&keys::user(&ghost)));
    let bad = w
        .call(authed(Method::Get, "/api/v1/users/not-an-id", &admin))
        .unwrap_err();
    assert_eq!(bad, ApiError::NotFound);
}

// ---------------------------------------------------------------- list

#[test]
fn admin_lists_users_by_creation_with_paging() {
    let w = World::new();
    let (_, admin) = w.user("root@example.com", Role::Admin);
    w.user("ann@example.com", Role::User);
    w.user("bob@example.com", Role::User);
    let resp = w
        .call(authed(Method::Get, "/api/v1/users?page=2&limit=2", &admin))
        .unwrap();
    let b = resp.json_body();
    assert_eq!(
        (b["page"].as_u64(), b["limit"].as_u64(), b["total"].as_u64()),
        (Some(2), Some(2), Some(3))
    );
    assert_eq!(b["items"].as_array().unwrap().len(), 1);
    assert!(b["items"][0].get("password_hash").is_none());
}

#[test]
fn list_is_403_for_a_user() {
    let w = World::new();
    let (_, token) = w.user("ann@example.com", Role::User);
    assert_eq!(
        w.call(authed(Method::Get, "/api/v1/users", &token))
            .unwrap_err(),
        ApiError::Forbidden
    );
}

#[test]
fn list_with_bad_paging_is_400() {
    let w = World::new();
    let (_, admin) = w.user("root@example.com", Role::Admin);
    let err = w
        .call(authed(
            Method::Get,
            "/api/v1/users?page=0&limit=500",
            &admin,
        ))
        .unwrap_err();
    assert_eq!(fields(err), ["page", "limit"]);
}

// ---------------------------------------------------------------- patch

fn patch_req(id: &str, token: &str, body: serde_json::Value) -> Request {
    authed(Method::Patch, &format!("/api/v1/users/{id}"), token).with_json(&body)
}

#[test]
fn user_renames_themselves_and_the_cache_entry_is_dropped() {
    let w = World::new();
    let (id, token) = w.user("ann@example.com", Role::User);
    w.call(authed(Method::Get, "/api/v1/users/me", &token))
        .unwrap();
    let resp = w
        .call_at(patch_req(&id, &token, json!({"name": "Annie"})), NOW + 5)
        .unwrap();
    assert_eq!(resp.json_body()["name"], "Annie");
    assert_eq!(w.repo.user_row(&id).unwrap().0.name, "Annie");
    assert_eq!(w.repo.user_row(&id).unwrap().0.updated_at_ms, NOW + 5);
    assert!(!w.kv.contains(&keys::user(&id)));
}

#[test]
fn user_setting_role_is_403() {
    let w = World::new();
    let (id, token) = w.user("ann@example.com", Role::User);
    let err = w
        .call(patch_req(&id, &token, json!({"role": "admin"})))
        .unwrap_err();
    assert_eq!(err, ApiError::Forbidden);
    assert_eq!(w.repo.user_row(&id).unwrap().0.role, Role::User);
}

#[test]
fn user_patching_someone_else_is_403() {
    let w = World::new();
    let (ann, _) = w.user("ann@example.com", Role::User);
    let (_, bob) = w.user("bob@example.com", Role::User);
    assert_eq!(
        w.call(patch_req(&ann, &bob, json!({"name": "x"})))
            .unwrap_err(),
        ApiError::Forbidden
    );
}

#[test]
fn admin_changes_role_and_the_users_tokens_are_revoked() {
    let w = World::new();
    let (ann, ann_token) = w.user("ann@example.com", Role::User);
    let (_, admin) = w.user("root@example.com", Role::Admin);
    let resp = w
        .call(patch_req(
            &ann,
            &admin,
            json!({"role": "admin", "name": "Boss"}),
        ))
        .unwrap();
    assert_eq!(
        (
            resp.json_body()["role"].as_str(),
            resp.json_body()["name"].as_str()
        ),
        (Some("admin"), Some("Boss"))
    );
    assert!(w.kv.contains(&keys::session_revoked(&w.sid(&ann_token))));
    assert_eq!(
        w.call(authed(Method::Get, "/api/v1/users/me", &ann_token))
            .unwrap_err(),
        ApiError::InvalidToken
    );
}

#[test]
fn admin_cannot_set_another_users_password() {
    let w = World::new();
    let (ann, _) = w.user("ann@example.com", Role::User);
    let (_, admin) = w.user("root@example.com", Role::Admin);
    let body = json!({"password": "new password", "current_password": PASSWORD});
    assert_eq!(
        w.call(patch_req(&ann, &admin, body)).unwrap_err(),
        ApiError::Forbidden
    );
}

#[test]
fn patch_reports_every_bad_field() {
    let w = World::new();
    let (id, token) = w.user("ann@example.com", Role::User);
    let err = w
        .call(patch_req(
            &id,
            &token,
            json!({"name": "", "password": "short"}),
        ))
        .unwrap_err();
    assert_eq!(fields(err), ["name", "password", "current_password"]);
}

#[test]
fn admin_setting_an_unknown_role_is_400() {
    let w = World::new();
    let (ann, _) = w.user("ann@example.com", Role::User);
    let (_, admin) = w.user("root@example.com", Role::Admin);
    assert_eq!(
        fields(
            w.call(patch_req(&ann, &admin, json!({"role": "root"})))
                .unwrap_err()
        ),
        ["role"]
    );
}

#[test]
fn patch_unknown_field_is_400() {
    let w = World::new();
    let (id, token) = w.user("ann@example.com", Role::User);
    assert_eq!(
        w.call(patch_req(&id, &token, json!({"email": "x@y.zz"})))
            .unwrap_err()
            .code(),
        "invalid_body"
    );
}

#[test]
fn wrong_current_password_is_401_invalid_credentials() {
    let w = World::new();
    let (id, token) = w.user("ann@example.com", Role::User);
    let body = json!({"password": "new password", "current_password": "wrong one"});
    assert_eq!(
        w.call(patch_req(&id, &token, body)).unwrap_err(),
        ApiError::InvalidCredentials
    );
    assert!(verify_password(&w.repo.user_row(&id).unwrap().1, PASSWORD));
}

#[test]
fn password_change_revokes_tokens_and_other_sessions_but_keeps_the_callers() {
    let w = World::new();
    let (id, _) = w.user("ann@example.com", Role::User);
    for sid in ["mine", "other"] {
        w.session(&id, sid);
    }
    let other = w.token(&id, Role::User, "other", NOW);
    let token = w.token(&id, Role::User, "mine", NOW);
    let body = json!({"password": "new password", "current_password": PASSWORD});
    assert_eq!(w.call(patch_req(&id, &token, body)).unwrap().status, 200);
    assert!(verify_password(
        &w.repo.user_row(&id).unwrap().1,
        "new password"
    ));
    let sessions = w.repo.sessions();
    assert!(sessions
        .iter()
        .find(|s| s.id == "mine")
        .unwrap()
        .revoked_at_ms
        .is_none());
    assert!(sessions
        .iter()
        .find(|s| s.id == "other")
        .unwrap()
        .revoked_at_ms
        .is_some());
    assert_eq!(
        w.call(authed(Method::Get, "/api/v1/users/me", &token))
            .unwrap_err(),
        ApiError::InvalidToken
    );
    let fresh = w.token(&id, Role::User, "mine", NOW + 1000);
    assert_eq!(
        w.call_at(authed(Method::Get, "/api/v1/users/me", &fresh), NOW + 1000)
            .unwrap()
            .status,
        200
    );
    // The other session is over: even a token minted for it later is refused.
    let late = w.token(&id, Role::User, "other", NOW + 1000);
    for t in [&other, &late] {
        assert_eq!(
            w.call_at(authed(Method::Get, "/api/v1/users/me", t), NOW + 1000)
                .unwrap_err(),
            ApiError::InvalidToken
        );
    }
}

#[test]
fn sixth_wrong_current_password_is_429_even_when_right() {
    let w = World::new();
    let (id, token) = w.user("ann@example.com", Role::User);
    let wrong = json!({"password": "new password", "current_password": "wrong one"});
    for _ in 0..5 {
        assert_eq!(
            w.call(patch_req(&id, &token, wrong.clone())).unwrap_err(),
            ApiError::InvalidCredentials
        );
    }
    let right = json!({"password": "new password", "current_password": PASSWORD});
    assert_eq!(
        w.call(patch_req(&id, &token, right)).unwrap_err(),
        ApiError::TooManyAttempts {
            retry_after_secs: 900
        }
    );
    assert!(verify_password(&w.repo.user_row(&id).unwrap().1, PASSWORD));
}

#[test]
fn current_password_check_that_cannot_be_counted_is_503_and_changes_nothing() {
    let w = World::new();
    let (id, token) = w.user("ann@example.com", Role::User);
    w.repo.set_attempts_down(true);
    let reads = w.repo.credential_reads();
    let body = json!({"password": "new password", "current_password": PASSWORD});
    assert_eq!(
        w.call(patch_req(&id, &token, body)).unwrap_err().status(),
        503
    );
    assert_eq!(
        w.repo.credential_reads(),
        reads + 1,
        "only the profile read"
    );
    assert!(verify_password(&w.repo.user_row(&id).unwrap().1, PASSWORD));
}

#[test]
fn password_change_with_an_unreachable_store_is_503_and_keeps_the_password() {
    let w = World::new();
    let (id, token) = w.user("ann@example.com", Role::User);
    let body = json!({"password": "new password", "current_password": PASSWORD});
    let req = patch_req(&id, &token, body);
    // Authentication reads the store; fail only the writes by ending it after.
    let ctx = RequestContext::new(&req, NOW);
    let failing = WriteFailingKv(&w.kv);
    let err = handle(&ctx, &req, &w.config, &w.ports_with(&failing)).unwrap_err();
    assert_eq!(err.status(), 503);
    assert!(verify_password(&w.repo.user_row(&id).unwrap().1, PASSWORD));
}

/// Reads from the inner store, refuses every write.
struct WriteFailingKv<'a>(&'a MemoryKv);

impl KeyValue for WriteFailingKv<'_> {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, shared::kv::KvError> {
        self.0.get(key)
    }
    fn set(&self, _: &str, _: &[u8]) -> Result<(), shared::kv::KvError> {
        Err(shared::kv::KvError("refused".into()))
    }
    fn delete(&self, _: &str) -> Result<(), shared::kv::KvError> {
        Err(shared::kv::KvError("refused".into()))
    }
}

#[test]
fn empty_patch_returns_the_user_unchanged() {
    let w = World::new();
    let (id, token) = w.user("ann@example.com", Role::User);
    let resp = w
        .call_at(patch_req(&id, &token, json!({})), NOW + 5)
        .unwrap();
    assert_eq!(resp.status, 200);
    assert_eq!(w.repo.user_row(&id).unwrap().0.updated_at_ms, NOW);
}

#[test]
fn patch_with_wrong_content_type_is_415() {
    let w = World::new();
    let (id, token) = w.user("ann@example.com", Role::User);
    let mut req = authed(Method::Patch, &format!("/api/v1/users/{id}"), &token)
        .with_header("content-type", "text/plain");
    req.body = b"{}".to_vec();
    assert_eq!(w.call(req).unwrap_err().status(), 415);
}

// ---------------------------------------------------------------- delete

#[test]
fn user_deletes_themselves_rows_sessions_cache_and_tokens_go() {
    let w = World::new();
    let (id, token) = w.user("ann@example.com", Role::User);
    w.session(&id, "s");
    let other_session = w.token(&id, Role::User, "s", NOW);
    w.call(authed(Method::Get, "/api/v1/users/me", &token))
        .unwrap();
    let resp = w
        .call(authed(
            Method::Delete,
            &format!("/api/v1/users/{id}"),
            &token,
        ))
        .unwrap();
    assert_eq!(resp.status, 204);
    assert!(w.repo.user_row(&id).is_none());
    assert!(w.repo.sessions().is_empty());
    assert!(!w.kv.contains(&keys::user(&id)));
    for t in [&token, &other_session] {
        assert_eq!(
            w.call(authed(Method::Get, "/api/v1/users/me", t))
                .unwrap_err(),
            ApiError::InvalidToken
        );
    }
}

#[test]
fn deleting_someone_else_is_403_for_a_user_and_204_for_an_admin() {
    let w = World::new();
    let (ann, _) = w.user("ann@example.com", Role::User);
    let (_, bob) = w.user("bob@example.com", Role::User);
    let (_, admin) = w.user("root@example.com", Role::Admin);
    let path = format!("/api/v1/users/{ann}");
    assert_eq!(
        w.call(authed(Method::Delete, &path, &bob)).unwrap_err(),
        ApiError::Forbidden
    );
    assert_eq!(
        w.call(authed(Method::Delete, &path, &admin))
            .unwrap()
            .status,
        204
    );
    assert_eq!(
        w.call(authed(Method::Delete, &path, &admin)).unwrap_err(),
        ApiError::NotFound
    );
}

#[test]
fn delete_is_503_when_tokens_cannot_be_revoked() {
    let w = World::new();
    let (id, token) = w.user("ann@example.com", Role::User);
    let req = authed(Method::Delete, &format!("/api/v1/users/{id}"), &token);
    let ctx = RequestContext::new(&req, NOW);
    let err = handle(&ctx, &req, &w.config, &w.ports_with(&FailingKv)).unwrap_err();
    assert_eq!(err.status(), 503);
    assert!(w.repo.user_row(&id).is_some());
}

// ---------------------------------------------------------------- routing, health

#[test]
fn me_path_accepts_only_get_and_is_never_taken_for_an_id() {
    // Found by contract fuzzing: PATCH/DELETE /users/me reached the `:id`
    // handlers (403/404) and `Allow` listed PATCH and DELETE.
    let w = World::new();
    for method in [Method::Patch, Method::Delete, Method::Put, Method::Post] {
        for path in ["/api/v1/users/me", "/api/v1/users/me/"] {
            let err = w.call(Request::new(method.clone(), path)).unwrap_err();
            assert_eq!(
                err,
                ApiError::MethodNotAllowed {
                    allow: "GET".into()
                },
                "{method:?} {path}"
            );
        }
    }
}

#[test]
fn wrong_method_is_405_with_allow() {
    let w = World::new();
    let err = w
        .call(Request::new(Method::Put, "/api/v1/users/abc"))
        .unwrap_err();
    assert_eq!(
        err,
        ApiError::MethodNotAllowed {
            allow: "GET, PATCH, DELETE".into()
        }
    );
    assert_eq!(
        w.call(Request::new(Method::Get, "/api/v1/users/a/b"))
            .unwrap_err(),
        ApiError::NotFound
    );
}

#[test]
fn health_is_ok_when_both_checks_pass() {
    let w = World::new();
    let resp = w.call(Request::new(Method::Get, "/api/v1/health")).unwrap();
    assert_eq!(resp.status, 200);
    assert_eq!(
        resp.json_body(),
        json!({"status": "ok", "checks": {"database": "ok", "cache": "ok"}})
    );
    assert!(w.kv.contains(keys::HEALTH_PROBE));
}

#[test]
fn health_names_the_failing_database() {
    let mut w = World::new();
    w.db.down = true;
    let resp = w.call(Request::new(Method::Get, "/api/v1/health")).unwrap();
    assert_eq!(resp.status, 503);
    assert!(resp.header("retry-after").is_some());
    assert_eq!(
        resp.json_body()["checks"],
        json!({"database": "unavailable", "cache": "ok"})
    );
}

#[test]
fn health_names_the_failing_cache() {
    let w = World::new();
    let req = Request::new(Method::Get, "/api/v1/health");
    let ctx = RequestContext::new(&req, NOW);
    let resp = handle(&ctx, &req, &w.config, &w.ports_with(&FailingKv)).unwrap();
    assert_eq!(resp.status, 503);
    assert_eq!(
        resp.json_body()["checks"],
        json!({"database": "ok", "cache": "unavailable"})
    );
}
