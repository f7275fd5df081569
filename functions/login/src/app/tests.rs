//! Handler tests on the in-memory fakes: status, body and side effects.

use super::*;
use identity::limits::Limit;
use identity::model::ProfileChanges;
use identity::repo::{AccountRepo, MemoryIdentity};
use shared::context::TrustedProxies;
use shared::domain::Password;
use shared::kv::{FailingKv, KeyValue, MemoryKv};
use shared::testing::{authed, token_config, NOW};

const PASSWORD: &str = "correct horse";
const DAY_MS: i64 = 86_400_000;

fn config() -> Config {
    Config {
        tokens: token_config(),
        refresh_ttl_secs: 3600,
        session_max_secs: 30 * 86_400,
        per_account: Limit::new("a", 5, 900).unwrap(),
        per_address: Limit::new("b", 50, 900).unwrap(),
        trusted_proxies: TrustedProxies::default(),
        admin: BootstrapAdmin::from_variables("root@example.com", "admin-password").unwrap(),
    }
}

struct World {
    kv: MemoryKv,
    repo: MemoryIdentity,
    config: Config,
}

impl World {
    fn new() -> Self {
        Self {
            kv: MemoryKv::new(),
            repo: MemoryIdentity::new(),
            config: config(),
        }
    }

    fn env(&self) -> Ports<'_> {
        Ports::new(&self.kv, &self.repo)
    }

    fn with_user(self, email: &str, role: Role) -> Self {
        let pw = Password::parse(PASSWORD, None).unwrap();
        let user = User {
            id: new_id(NOW).unwrap(),
            email: email.into(),
            name: "Ann".into(),
            role,
            created_at_ms: NOW,
            updated_at_ms: NOW,
        };
        self.repo
            .insert_user(&user, &hash_password(&pw).unwrap())
            .unwrap();
        self
    }

    fn call_at(&self, req: Request, now: i64) -> Result<Response, ApiError> {
        let req = req.with_header("spin-client-addr", "10.0.0.1:4000");
        let ctx = RequestContext::new(&req, now);
        handle(&ctx, &req, &self.config, &self.env())
    }

    fn call(&self, req: Request) -> Result<Response, ApiError> {
        self.call_at(req, NOW)
    }

    fn login_at(&self, email: &str, password: &str, now: i64) -> Result<Response, ApiError> {
        self.call_at(
            post(
                "/api/v1/auth/login",
                serde_json::json!({"email": email, "password": password}),
            ),
            now,
        )
    }

    fn login(&self, email: &str, password: &str) -> Result<Response, ApiError> {
        self.login_at(email, password, NOW)
    }

    fn refresh_at(&self, token: &str, now: i64) -> Result<Response, ApiError> {
        self.call_at(
            post(
                "/api/v1/auth/refresh",
                serde_json::json!({"refresh_token": token}),
            ),
            now,
        )
    }

    fn logout_at(&self, access: &str, now: i64) -> Result<Response, ApiError> {
        self.call_at(authed(Method::Post, "/api/v1/auth/logout", access), now)
    }

    /// True when `access` still authenticates at `now`.
    fn accepts(&self, access: &str, now: i64) -> bool {
        let req = authed(Method::Get, "/", access);
        let ctx = RequestContext::new(&req, now);
        authenticate(&ctx, &req, &self.config.tokens, &self.kv).is_ok()
    }
}

fn post(path: &str, body: serde_json::Value) -> Request {
    Request::new(Method::Post, path).with_json(&body)
}

fn tokens(resp: &Response) -> (String, String) {
    let b = resp.json_body();
    (
        b["access_token"].as_str().unwrap().to_string(),
        b["refresh_token"].as_str().unwrap().to_string(),
    )
}

fn pair_bucket(email: &str) -> String {
    limits::login_pair(&Email::parse(email).unwrap(), "10.0.0.1")
}

#[test]
fn login_answers_api_md_token_shape_with_no_store() {
    let w = World::new().with_user("ann@example.com", Role::User);
    let resp = w.login("Ann@Example.com ", PASSWORD).unwrap();
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("cache-control"), Some("no-store"));
    let b = resp.json_body();
    assert_eq!(b["token_type"], "Bearer");
    assert_eq!(b["expires_in"], 900);
    assert_eq!(b["refresh_expires_in"], 3600);
    assert_eq!(b["user"]["email"], "ann@example.com");
    assert!(b["user"].get("password_hash").is_none());
    let claims = w
        .config
        .tokens
        .verify(b["access_token"].as_str().unwrap(), NOW)
        .unwrap();
    assert_eq!(claims.role, Role::User);
}

#[test]
fn login_records_a_session_holding_only_the_refresh_hash() {
    let w = World::new().with_user("ann@example.com", Role::User);
    let (access, refresh) = tokens(&w.login("ann@example.com", PASSWORD).unwrap());
    let sessions = w.repo.sessions();
    assert_eq!(sessions.len(), 1);
    assert_eq!(
        Some(sessions[0].refresh_hash.clone()),
        refresh_token_hash(&refresh)
    );
    assert_ne!(sessions[0].refresh_hash, refresh);
    assert_eq!(sessions[0].expires_at_ms, NOW + 3_600_000);
    assert_eq!(
        w.config.tokens.verify(&access, NOW).unwrap().sid,
        sessions[0].id
    );
}

#[test]
fn wrong_password_and_unknown_email_get_the_same_401() {
    let w = World::new().with_user("ann@example.com", Role::User);
    let wrong = w.login("ann@example.com", "not the password").unwrap_err();
    let unknown = w.login("nobody@example.com", PASSWORD).unwrap_err();
    assert_eq!(wrong, ApiError::InvalidCredentials);
    assert_eq!(unknown, ApiError::InvalidCredentials);
    assert_eq!(wrong.to_response("r").body, unknown.to_response("r").body);
}

#[test]
fn failed_login_counts_against_pair_and_address() {
    let w = World::new().with_user("ann@example.com", Role::User);
    assert_eq!(
        w.login("ann@example.com", "nope nope").unwrap_err(),
        ApiError::InvalidCredentials
    );
    let pair = w.repo.attempts(&pair_bucket("ann@example.com")).unwrap();
    let address = w.repo.attempts(&limits::login_address("10.0.0.1")).unwrap();
    assert_eq!((pair.attempts, address.attempts), (1, 1));
    assert!(w.repo.sessions().is_empty());
}

#[test]
fn sixth_attempt_is_429_even_with_the_right_password() {
    let w = World::new().with_user("ann@example.com", Role::User);
    for _ in 0..5 {
        assert_eq!(
            w.login("ann@example.com", "nope nope")
                .unwrap_err()
                .status(),
            401
        );
    }
    let err = w.login("ann@example.com", PASSWORD).unwrap_err();
    assert_eq!(
        err,
        ApiError::TooManyAttempts {
            retry_after_secs: 900
        }
    );
    assert_eq!(err.to_response("r").header("retry-after"), Some("900"));
}

#[test]
fn locked_pair_is_refused_without_reading_a_password_hash() {
    let w = World::new().with_user("ann@example.com", Role::User);
    for _ in 0..5 {
        assert_eq!(
            w.login("ann@example.com", "nope nope").unwrap_err(),
            ApiError::InvalidCredentials
        );
    }
    let reads = w.repo.credential_reads();
    assert_eq!(
        w.login("ann@example.com", PASSWORD).unwrap_err().status(),
        429
    );
    assert_eq!(w.repo.credential_reads(), reads);
}

#[test]
fn attempt_that_cannot_be_recorded_is_503_and_checks_no_password() {
    let w = World::new().with_user("ann@example.com", Role::User);
    w.repo.set_attempts_down(true);
    let err = w.login("ann@example.com", PASSWORD).unwrap_err();
    assert_eq!(err.status(), 503);
    assert_eq!(w.repo.credential_reads(), 0);
    assert!(w.repo.sessions().is_empty());
}

#[test]
fn address_lock_covers_every_email() {
    let mut w = World::new().with_user("ann@example.com", Role::User);
    w.config.per_address = Limit::new("b", 3, 900).unwrap();
    for i in 0..3 {
        assert_eq!(
            w.login(&format!("x{i}@example.com"), "nope nope")
                .unwrap_err(),
            ApiError::InvalidCredentials
        );
    }
    assert_eq!(
        w.login("ann@example.com", PASSWORD).unwrap_err().status(),
        429
    );
}

#[test]
fn success_resets_the_pair_counter_and_refunds_the_address() {
    let w = World::new().with_user("ann@example.com", Role::User);
    for _ in 0..4 {
        assert_eq!(
            w.login("ann@example.com", "nope nope").unwrap_err(),
            ApiError::InvalidCredentials
        );
    }
    assert_eq!(w.login("ann@example.com", PASSWORD).unwrap().status, 200);
    assert!(w.repo.attempts(&pair_bucket("ann@example.com")).is_none());
    let address = w.repo.attempts(&limits::login_address("10.0.0.1")).unwrap();
    assert_eq!(address.attempts, 4);
    assert_eq!(
        w.login("ann@example.com", "nope nope")
            .unwrap_err()
            .status(),
        401
    );
}

#[test]
fn forwarded_client_is_counted_only_behind_a_trusted_proxy() {
    let mut w = World::new().with_user("ann@example.com", Role::User);
    let req = || {
        post(
            "/api/v1/auth/login",
            serde_json::json!({"email": "ann@example.com", "password": "nope nope"}),
        )
        .with_header("x-forwarded-for", "198.51.100.7")
    };
    assert_eq!(w.call(req()).unwrap_err(), ApiError::InvalidCredentials);
    assert!(w
        .repo
        .attempts(&limits::login_address("10.0.0.1"))
        .is_some());
    w.config.trusted_proxies = TrustedProxies::parse("10.0.0.0/8").unwrap();
    assert_eq!(w.call(req()).unwrap_err(), ApiError::InvalidCredentials);
    let forwarded = w.repo.attempts(&limits::login_address("198.51.100.7"));
    assert_eq!(forwarded.map(|c| c.attempts), Some(1));
}

#[test]
fn malformed_email_and_empty_password_are_both_reported() {
    let w = World::new();
    match w.login("not-an-email", "").unwrap_err() {
        ApiError::Validation(errors) => {
            let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
            assert_eq!(fields, ["email", "password"]);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn unknown_login_field_is_400() {
    let w = World::new();
    let req = post(
        "/api/v1/auth/login",
        serde_json::json!({"email": "a@b.cd", "password": "x", "role": "admin"}),
    );
    assert_eq!(w.call(req).unwrap_err().code(), "invalid_body");
}

#[test]
fn bootstrap_admin_is_created_on_first_login() {
    let w = World::new();
    let resp = w.login("root@example.com", "admin-password").unwrap();
    assert_eq!(resp.json_body()["user"]["role"], "admin");
    let user = w.repo.user_by_email("root@example.com").unwrap();
    assert_eq!(user.role, Role::Admin);
    let (_, hash) = w.repo.user_row(&user.id).unwrap();
    assert!(verify_password(&hash, "admin-password"));
    // Second login reuses the row.
    assert_eq!(
        w.login("root@example.com", "admin-password")
            .unwrap()
            .status,
        200
    );
    assert_eq!(w.repo.sessions().len(), 2);
}

#[test]
fn bootstrap_takes_over_a_pre_registered_account() {
    let w = World::new().with_user("root@example.com", Role::User);
    let id = w.repo.user_by_email("root@example.com").unwrap().id;
    let (squatter, squatter_refresh) = tokens(&w.login("root@example.com", PASSWORD).unwrap());
    w.kv.set(&keys::user(&id), b"stale").unwrap();

    let resp = w
        .login_at("root@example.com", "admin-password", NOW + 1)
        .unwrap();
    assert_eq!(resp.json_body()["user"]["role"], "admin");
    let (user, hash) = w.repo.user_row(&id).unwrap();
    assert_eq!(user.role, Role::Admin);
    assert!(verify_password(&hash, "admin-password"));
    assert!(!verify_password(&hash, PASSWORD));
    assert!(!w.kv.contains(&keys::user(&id)));
    assert!(!w.accepts(&squatter, NOW + 2));
    assert_eq!(
        w.refresh_at(&squatter_refresh, NOW + 2).unwrap_err(),
        ApiError::InvalidToken
    );
    assert_eq!(
        w.login_at("root@example.com", PASSWORD, NOW + 2)
            .unwrap_err(),
        ApiError::InvalidCredentials
    );
}

#[test]
fn bootstrap_takeover_with_an_unreachable_store_is_503_and_changes_nothing() {
    let w = World::new().with_user("root@example.com", Role::User);
    let id = w.repo.user_by_email("root@example.com").unwrap().id;
    w.login("root@example.com", PASSWORD).unwrap();
    let req = post(
        "/api/v1/auth/login",
        serde_json::json!({"email": "root@example.com", "password": "admin-password"}),
    );
    let ctx = RequestContext::new(&req, NOW + 1);
    let err = handle(&ctx, &req, &w.config, &Ports::new(&FailingKv, &w.repo)).unwrap_err();
    assert_eq!(err.status(), 503);
    assert_eq!(w.repo.user_row(&id).unwrap().0.role, Role::User);
    assert!(w.repo.sessions()[0].revoked_at_ms.is_none());
}

#[test]
fn bootstrap_admin_with_wrong_password_is_401() {
    let w = World::new();
    assert_eq!(
        w.login("root@example.com", "admin-passwore").unwrap_err(),
        ApiError::InvalidCredentials
    );
    assert!(w.repo.user_by_email("root@example.com").is_none());
}

#[test]
fn a_session_is_not_recorded_once_the_verified_password_changed() {
    let w = World::new().with_user("ann@example.com", Role::User);
    let verified = w
        .repo
        .find_credentials_by_email("ann@example.com")
        .unwrap()
        .unwrap();
    w.repo
        .change_password(&verified.user.id, "new-hash", None, NOW)
        .unwrap();
    let req = Request::new(Method::Post, "/api/v1/auth/login");
    let ctx = RequestContext::new(&req, NOW + 1);
    let env = Env {
        ctx: &ctx,
        req: &req,
        config: &w.config,
        ports: w.env(),
    };
    assert_eq!(
        start_session(&env, &verified).unwrap_err(),
        ApiError::InvalidCredentials
    );
    assert!(w.repo.sessions().is_empty());
}

#[test]
fn refresh_rotates_the_pair() {
    let w = World::new().with_user("ann@example.com", Role::User);
    let (_, r1) = tokens(&w.login("ann@example.com", PASSWORD).unwrap());
    let resp = w.refresh_at(&r1, NOW + 1000).unwrap();
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("cache-control"), Some("no-store"));
    let (access, r2) = tokens(&resp);
    assert_ne!(r1, r2);
    assert_eq!(
        w.repo.sessions()[0].refresh_hash,
        refresh_token_hash(&r2).unwrap()
    );
    assert_eq!(w.repo.sessions()[0].expires_at_ms, NOW + 1000 + 3_600_000);
    assert!(w.config.tokens.verify(&access, NOW + 1000).is_ok());
    assert!(w.refresh_at(&r2, NOW + 2000).is_ok());
}

#[test]
fn refresh_never_extends_a_session_past_its_absolute_lifetime() {
    let mut w = World::new().with_user("ann@example.com", Role::User);
    w.config.session_max_secs = 5_400;
    let (_, r1) = tokens(&w.login("ann@example.com", PASSWORD).unwrap());
    let resp = w.refresh_at(&r1, NOW + 3_000_000).unwrap();
    assert_eq!(resp.json_body()["refresh_expires_in"], 2_400);
    assert_eq!(w.repo.sessions()[0].expires_at_ms, NOW + 5_400_000);
}

#[test]
fn an_access_token_is_refused_once_its_session_is_past_its_absolute_lifetime() {
    let mut w = World::new().with_user("ann@example.com", Role::User);
    w.config.session_max_secs = 5_400;
    let (_, r1) = tokens(&w.login("ann@example.com", PASSWORD).unwrap());
    let end = NOW + 5_400_000;
    let (_, r2) = tokens(&w.refresh_at(&r1, NOW + 3_000_000).unwrap());
    // Refreshed five minutes before the end: a 15-minute token would outlive it.
    let resp = w.refresh_at(&r2, end - 300_000).unwrap();
    let (access, _) = tokens(&resp);
    assert_eq!(resp.json_body()["expires_in"], 300 - 30);
    assert!(w.config.tokens.verify(&access, end - 1).is_ok());
    assert_eq!(
        w.config.tokens.verify(&access, end).unwrap_err(),
        ApiError::InvalidToken
    );
}

#[test]
fn session_past_its_absolute_lifetime_is_refused() {
    let w = World::new().with_user("ann@example.com", Role::User);
    let (_, r1) = tokens(&w.login("ann@example.com", PASSWORD).unwrap());
    let sid = w.repo.sessions()[0].id.clone();
    // Kept alive by refreshes, the session is now 30 days old.
    w.repo.edit_session(&sid, |s| {
        s.created_at_ms = NOW - 30 * DAY_MS;
        s.expires_at_ms = NOW + 3_600_000;
    });
    assert_eq!(
        w.refresh_at(&r1, NOW + 1).unwrap_err(),
        ApiError::InvalidToken
    );
}

#[test]
fn reused_refresh_token_revokes_the_session() {
    let w = World::new().with_user("ann@example.com", Role::User);
    let (_, r1) = tokens(&w.login("ann@example.com", PASSWORD).unwrap());
    let (_, r2) = tokens(&w.refresh_at(&r1, NOW + 1000).unwrap());
    assert_eq!(
        w.refresh_at(&r1, NOW + 2000).unwrap_err(),
        ApiError::RefreshTokenReused
    );
    assert!(w.repo.sessions()[0].revoked_at_ms.is_some());
    assert_eq!(
        w.refresh_at(&r2, NOW + 3000).unwrap_err(),
        ApiError::InvalidToken
    );
}

#[test]
fn reused_refresh_token_voids_the_sessions_access_tokens() {
    let w = World::new().with_user("ann@example.com", Role::User);
    let (access, r1) = tokens(&w.login("ann@example.com", PASSWORD).unwrap());
    let sid = w.repo.sessions()[0].id.clone();
    let (newer, _) = tokens(&w.refresh_at(&r1, NOW + 1000).unwrap());
    w.refresh_at(&r1, NOW + 2000).unwrap_err();
    assert!(w.kv.contains(&keys::session_revoked(&sid)));
    assert!(!w.accepts(&access, NOW + 3000));
    assert!(!w.accepts(&newer, NOW + 3000));
}

#[test]
fn reuse_with_an_unreachable_store_is_503_and_keeps_the_session() {
    let w = World::new().with_user("ann@example.com", Role::User);
    let (_, r1) = tokens(&w.login("ann@example.com", PASSWORD).unwrap());
    w.refresh_at(&r1, NOW + 1000).unwrap();
    let req = post(
        "/api/v1/auth/refresh",
        serde_json::json!({"refresh_token": r1}),
    )
    .with_header("spin-client-addr", "10.0.0.1:4000");
    let ctx = RequestContext::new(&req, NOW + 2000);
    let err = handle(&ctx, &req, &w.config, &Ports::new(&FailingKv, &w.repo)).unwrap_err();
    assert_eq!(err.status(), 503);
    assert!(w.repo.sessions()[0].revoked_at_ms.is_none());
}

#[test]
fn unknown_or_malformed_refresh_token_is_401() {
    let w = World::new();
    assert_eq!(
        w.refresh_at(&"a".repeat(64), NOW).unwrap_err(),
        ApiError::InvalidToken
    );
    assert_eq!(
        w.refresh_at("short", NOW).unwrap_err(),
        ApiError::InvalidToken
    );
}

#[test]
fn expired_refresh_token_is_401() {
    let w = World::new().with_user("ann@example.com", Role::User);
    let (_, r1) = tokens(&w.login("ann@example.com", PASSWORD).unwrap());
    assert_eq!(
        w.refresh_at(&r1, NOW + 3_600_000).unwrap_err(),
        ApiError::InvalidToken
    );
}

#[test]
fn refresh_issues_the_users_current_role() {
    let w = World::new().with_user("ann@example.com", Role::User);
    let (_, r1) = tokens(&w.login("ann@example.com", PASSWORD).unwrap());
    let id = w.repo.user_by_email("ann@example.com").unwrap().id;
    let changes = ProfileChanges {
        role: Some(Role::Admin),
        ..Default::default()
    };
    w.repo.update_profile(&id, &changes, NOW).unwrap();
    let (access, _) = tokens(&w.refresh_at(&r1, NOW + 1000).unwrap());
    assert_eq!(
        w.config.tokens.verify(&access, NOW + 1000).unwrap().role,
        Role::Admin
    );
}

#[test]
fn logout_ends_the_session_and_its_token() {
    let w = World::new().with_user("ann@example.com", Role::User);
    let (access, refresh) = tokens(&w.login("ann@example.com", PASSWORD).unwrap());
    let resp = w.logout_at(&access, NOW).unwrap();
    assert_eq!(resp.status, 204);
    let sid = w.config.tokens.verify(&access, NOW).unwrap().sid;
    assert!(w.kv.contains(&keys::session_revoked(&sid)));
    assert!(w.repo.sessions()[0].revoked_at_ms.is_some());
    assert_eq!(
        w.logout_at(&access, NOW).unwrap_err(),
        ApiError::InvalidToken
    );
    assert_eq!(
        w.refresh_at(&refresh, NOW + 1).unwrap_err(),
        ApiError::InvalidToken
    );
}

#[test]
fn logout_also_ends_the_sessions_older_access_token() {
    let w = World::new().with_user("ann@example.com", Role::User);
    let (first, r1) = tokens(&w.login("ann@example.com", PASSWORD).unwrap());
    let (second, _) = tokens(&w.refresh_at(&r1, NOW + 1000).unwrap());
    w.logout_at(&second, NOW + 2000).unwrap();
    assert!(!w.accepts(&first, NOW + 3000));
    assert!(!w.accepts(&second, NOW + 3000));
}

#[test]
fn logout_leaves_the_users_other_sessions_alone() {
    let w = World::new().with_user("ann@example.com", Role::User);
    let (phone, _) = tokens(&w.login("ann@example.com", PASSWORD).unwrap());
    let (laptop, _) = tokens(&w.login("ann@example.com", PASSWORD).unwrap());
    w.logout_at(&laptop, NOW).unwrap();
    assert!(w.accepts(&phone, NOW + 1));
}

#[test]
fn logout_without_a_token_is_401() {
    let w = World::new();
    let err = w
        .call(Request::new(Method::Post, "/api/v1/auth/logout"))
        .unwrap_err();
    assert_eq!(err, ApiError::InvalidToken);
}

#[test]
fn wrong_method_is_405_and_unknown_path_404() {
    let w = World::new();
    let err = w
        .call(Request::new(Method::Get, "/api/v1/auth/login"))
        .unwrap_err();
    assert_eq!(
        err,
        ApiError::MethodNotAllowed {
            allow: "POST".into()
        }
    );
    assert_eq!(
        w.call(Request::new(Method::Post, "/api/v1/auth/nope"))
            .unwrap_err(),
        ApiError::NotFound
    );
}

#[test]
fn database_outage_is_503() {
    let w = World::new();
    w.repo.set_down(true);
    assert_eq!(
        w.login("ann@example.com", PASSWORD).unwrap_err().status(),
        503
    );
}

// ---------------------------------------------------------------- re-hash on login

impl World {
    /// The user stored under `email`, with their hash replaced by one of
    /// `PASSWORD` made with `cost`; that hash.
    fn plant_hash(&self, email: &str, cost: shared::password::Cost) -> (String, String) {
        let id = self.repo.user_by_email(email).unwrap().id;
        let hash = shared::password::hash_password_with(PASSWORD, cost).unwrap();
        self.repo.set_password_hash(&id, &hash);
        (id, hash)
    }

    fn stored_hash(&self, id: &str) -> String {
        self.repo.user_row(id).unwrap().1
    }
}

#[test]
fn an_old_parameter_hash_logs_in_and_is_stored_rehashed() {
    use shared::password::PREVIOUS;
    let w = World::new().with_user("ann@example.com", Role::User);
    let (id, old) = w.plant_hash("ann@example.com", PREVIOUS);
    assert!(old.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
    let before = w.repo.user_row(&id).unwrap().0;

    let resp = w.login("ann@example.com", PASSWORD).unwrap();
    assert_eq!(resp.status, 200);
    let (access, _) = tokens(&resp);
    assert!(w.accepts(&access, NOW));
    assert_eq!(w.repo.sessions().len(), 1);

    let new = w.stored_hash(&id);
    assert_ne!(new, old);
    assert!(new.starts_with("$argon2id$v=19$m=7168,t=5,p=1$"), "{new}");
    assert!(!needs_rehash(&new));
    assert!(verify_password(&new, PASSWORD));
    assert!(!verify_password(&new, "not the password"));
    // The same password: nothing else about the account changed.
    assert_eq!(w.repo.user_row(&id).unwrap().0, before);

    // The next login verifies the new hash and leaves it alone.
    assert_eq!(w.login("ann@example.com", PASSWORD).unwrap().status, 200);
    assert_eq!(w.stored_hash(&id), new);
    assert_eq!(w.repo.sessions().len(), 2);
}

#[test]
fn a_current_hash_is_not_rewritten() {
    let w = World::new().with_user("ann@example.com", Role::User);
    let id = w.repo.user_by_email("ann@example.com").unwrap().id;
    let hash = w.stored_hash(&id);
    assert!(!needs_rehash(&hash));
    assert_eq!(w.login("ann@example.com", PASSWORD).unwrap().status, 200);
    assert_eq!(w.stored_hash(&id), hash);
}

#[test]
fn a_wrong_password_never_rehashes() {
    use shared::password::PREVIOUS;
    let w = World::new().with_user("ann@example.com", Role::User);
    let (id, old) = w.plant_hash("ann@example.com", PREVIOUS);
    assert_eq!(
        w.login("ann@example.com", "not the password").unwrap_err(),
        ApiError::InvalidCredentials
    );
    assert_eq!(w.stored_hash(&id), old);
}

#[test]
fn a_rehash_that_cannot_be_stored_does_not_fail_the_login() {
    use shared::password::PREVIOUS;
    let w = World::new().with_user("ann@example.com", Role::User);
    let (id, old) = w.plant_hash("ann@example.com", PREVIOUS);
    w.repo.set_hash_writes_down(true);
    let resp = w.login("ann@example.com", PASSWORD).unwrap();
    assert_eq!(resp.status, 200);
    assert!(w.accepts(&tokens(&resp).0, NOW));
    assert_eq!(w.stored_hash(&id), old);

    // The next login tries again.
    w.repo.set_hash_writes_down(false);
    assert_eq!(w.login("ann@example.com", PASSWORD).unwrap().status, 200);
    assert!(!needs_rehash(&w.stored_hash(&id)));
}

/// Accounts whose hash is changed — as a concurrent password change would —
/// right before the login's re-hash is stored.
struct ChangedBeforeRehash<'a> {
    repo: &'a MemoryIdentity,
    changed_to: String,
}

impl AccountRepo for ChangedBeforeRehash<'_> {
    fn insert_user(&self, user: &User, password_hash: &str) -> Result<(), ApiError> {
        self.repo.insert_user(user, password_hash)
    }
    fn find_user(&self, id: &str) -> Result<Option<User>, ApiError> {
        self.repo.find_user(id)
    }
    fn find_credentials_by_email(&self, email: &str) -> Result<Option<Credentials>, ApiError> {
        self.repo.find_credentials_by_email(email)
    }
    fn find_credentials(&self, id: &str) -> Result<Option<Credentials>, ApiError> {
        self.repo.find_credentials(id)
    }
    fn list_users(&self, offset: u64, limit: u32) -> Result<(Vec<User>, u64), ApiError> {
        self.repo.list_users(offset, limit)
    }
    fn update_profile(
        &self,
        id: &str,
        changes: &ProfileChanges,
        now_ms: i64,
    ) -> Result<Option<User>, ApiError> {
        self.repo.update_profile(id, changes, now_ms)
    }
    fn change_password(
        &self,
        id: &str,
        new_hash: &str,
        keep: Option<&str>,
        now_ms: i64,
    ) -> Result<Option<Vec<String>>, ApiError> {
        self.repo.change_password(id, new_hash, keep, now_ms)
    }
    fn take_over(
        &self,
        id: &str,
        expected_hash: &str,
        new_hash: &str,
        now_ms: i64,
    ) -> Result<Option<Vec<String>>, ApiError> {
        self.repo.take_over(id, expected_hash, new_hash, now_ms)
    }
    fn replace_password_hash(
        &self,
        id: &str,
        expected_hash: &str,
        new_hash: &str,
    ) -> Result<bool, ApiError> {
        self.repo
            .change_password(id, &self.changed_to, None, NOW)?
            .unwrap();
        self.repo.replace_password_hash(id, expected_hash, new_hash)
    }
    fn delete_user(&self, id: &str) -> Result<Option<Vec<String>>, ApiError> {
        self.repo.delete_user(id)
    }
}

#[test]
fn a_password_change_that_commits_first_wins_over_the_rehash() {
    use shared::password::{hash_password_with, PREVIOUS};
    let w = World::new().with_user("ann@example.com", Role::User);
    let (id, _) = w.plant_hash("ann@example.com", PREVIOUS);
    let changed_to = hash_password(&Password::parse("a new password", None).unwrap()).unwrap();
    let accounts = ChangedBeforeRehash {
        repo: &w.repo,
        changed_to: changed_to.clone(),
    };
    let ports = Ports {
        accounts: &accounts,
        ..w.env()
    };
    let req = post(
        "/api/v1/auth/login",
        serde_json::json!({"email": "ann@example.com", "password": PASSWORD}),
    )
    .with_header("spin-client-addr", "10.0.0.1:4000");
    let ctx = RequestContext::new(&req, NOW);
    assert_eq!(handle(&ctx, &req, &w.config, &ports).unwrap().status, 200);
    assert_eq!(w.stored_hash(&id), changed_to);
    assert!(verify_password(&w.stored_hash(&id), "a new password"));
    // And the fake's conditional update itself refuses a stale expected hash.
    let stale = hash_password_with(PASSWORD, PREVIOUS).unwrap();
    assert!(!w
        .repo
        .replace_password_hash(&id, &stale, "whatever")
        .unwrap());
    assert_eq!(w.stored_hash(&id), changed_to);
}
