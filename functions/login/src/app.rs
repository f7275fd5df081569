//! The login component's routes and handlers, over the key-value and user
//! repository ports (no `spin_sdk` here: unit tests run them natively).

use serde::{Deserialize, Serialize};
use shared::auth::{authenticate, revoke_token, revoke_user_tokens, Role, TokenConfig};
use shared::cache::Cache;
use shared::context::RequestContext;
use shared::domain::{Email, Password};
use shared::http::{Method, Request, Response};
use shared::id::new_id;
use shared::kv::KeyValue;
use shared::password::{hash_password, verify_against_dummy, verify_password};
use shared::router::Router;
use shared::users::{
    cache_key, new_refresh_token, refresh_token_hash, NewSession, RefreshLookup, User, UserChanges,
    UserRepo, UserView,
};
use shared::{ApiError, FieldError};

use crate::limiter::{Limiter, Limits};

/// The bootstrap admin's credentials (Spin variables `admin_email`, `admin_password`).
#[derive(Clone)]
pub struct BootstrapAdmin {
    /// The normalised email.
    pub email: Email,
    /// The password, compared in constant time.
    pub password: String,
}

impl std::fmt::Debug for BootstrapAdmin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BootstrapAdmin")
            .field("email", &self.email)
            .finish_non_exhaustive()
    }
}

impl BootstrapAdmin {
    /// The bootstrap admin when both variables are non-empty, `None` when
    /// either is empty (the feature is off), or a configuration error (500)
    /// for an email that does not parse or a password outside API.md's rules.
    pub fn from_variables(email: &str, password: &str) -> Result<Option<Self>, ApiError> {
        if email.trim().is_empty() || password.is_empty() {
            return Ok(None);
        }
        let email = Email::parse(email).map_err(|_| {
            ApiError::Internal("configuration: admin_email is not a valid email".into())
        })?;
        Password::parse(password, Some(&email)).map_err(|_| {
            ApiError::Internal(
                "configuration: admin_password must be 8-128 characters and not the email".into(),
            )
        })?;
        Ok(Some(Self {
            email,
            password: password.to_string(),
        }))
    }
}

/// Everything the handlers need from Spin variables.
#[derive(Debug, Clone)]
pub struct Config {
    /// Access-token signing and lifetime.
    pub tokens: TokenConfig,
    /// Refresh-token lifetime in seconds (`refresh_token_ttl_secs`).
    pub refresh_ttl_secs: i64,
    /// Brute-force limits.
    pub limits: Limits,
    /// The bootstrap admin, when configured.
    pub admin: Option<BootstrapAdmin>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Login,
    Refresh,
    Logout,
}

fn router() -> Router<Route> {
    Router::new()
        .route(Method::Post, "/api/v1/auth/login", Route::Login)
        .route(Method::Post, "/api/v1/auth/refresh", Route::Refresh)
        .route(Method::Post, "/api/v1/auth/logout", Route::Logout)
}

/// Routes and handles one request. Successful responses carry
/// `Cache-Control: no-store` (they hold tokens, or end them); problem
/// responses always do.
pub fn handle(
    ctx: &RequestContext,
    req: &Request,
    config: &Config,
    kv: &dyn KeyValue,
    repo: &dyn UserRepo,
) -> Result<Response, ApiError> {
    let (route, _) = router().find(&req.method, &req.path)?;
    let response = match route {
        Route::Login => login(ctx, req, config, kv, repo),
        Route::Refresh => refresh(ctx, req, config, kv, repo),
        Route::Logout => logout(ctx, req, config, kv, repo),
    }?;
    Ok(response.with_header("cache-control", "no-store"))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginBody {
    email: String,
    password: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RefreshBody {
    refresh_token: String,
}

/// API.md's token response; `user` only on login.
#[derive(Serialize)]
struct TokenResponse {
    access_token: String,
    token_type: &'static str,
    expires_in: i64,
    refresh_token: String,
    refresh_expires_in: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<UserView>,
}

fn login(
    ctx: &RequestContext,
    req: &Request,
    config: &Config,
    kv: &dyn KeyValue,
    repo: &dyn UserRepo,
) -> Result<Response, ApiError> {
    let body: LoginBody = req.json()?;
    // Syntax errors are public knowledge (no account can have such an email),
    // so they are reported as such rather than costing a hash.
    let email = Email::parse(&body.email);
    let mut errors = Vec::new();
    if let Err(e) = &email {
        errors.push(e.clone());
    }
    if body.password.is_empty() {
        errors.push(FieldError::new("password", "must not be empty"));
    }
    let email = match email {
        Ok(email) if errors.is_empty() => email,
        _ => return Err(ApiError::Validation(errors)),
    };

    // Spin always sets spin-client-addr; without it every such request shares one bucket.
    let address = ctx
        .client_ip
        .map_or_else(|| "unknown".to_string(), |ip| ip.to_string());
    let limiter = Limiter::new(kv, config.limits, email.as_str(), &address, ctx.now_ms);
    // Before any database or argon2 work: a locked pair costs us two key-value reads.
    limiter.check()?;

    match check_credentials(config, kv, repo, &email, &body.password, ctx.now_ms)? {
        Some(user) => {
            limiter.record_success();
            start_session(config, repo, &user, ctx.now_ms)
        }
        None => {
            limiter.record_failure()?;
            Err(ApiError::InvalidCredentials)
        }
    }
}

/// The user these credentials belong to, or `None`. Exactly one argon2 verify
/// whether or not the email exists, so the answer's timing does not tell.
fn check_credentials(
    config: &Config,
    kv: &dyn KeyValue,
    repo: &dyn UserRepo,
    email: &Email,
    password: &str,
    now_ms: i64,
) -> Result<Option<User>, ApiError> {
    if let Some(admin) = &config.admin {
        if admin.email == *email && constant_time_eq(admin.password.as_bytes(), password.as_bytes())
        {
            return ensure_bootstrap_admin(admin, kv, repo, now_ms).map(Some);
        }
    }
    match repo.find_credentials_by_email(email.as_str())? {
        Some(c) if verify_password(&c.password_hash, password) => Ok(Some(c.user)),
        Some(_) => Ok(None),
        None => {
            verify_against_dummy(password);
            Ok(None)
        }
    }
}

/// The bootstrap admin's account: created on first use with the variable's
/// password hashed, or promoted to admin if the email already has an account.
/// A concurrent first login may insert the row first; the loser's duplicate
/// insert is not an error — it reads the winner's row.
fn ensure_bootstrap_admin(
    admin: &BootstrapAdmin,
    kv: &dyn KeyValue,
    repo: &dyn UserRepo,
    now_ms: i64,
) -> Result<User, ApiError> {
    let existing = match repo.find_credentials_by_email(admin.email.as_str())? {
        Some(c) => c.user,
        None => {
            let password = Password::parse(&admin.password, Some(&admin.email)).map_err(|_| {
                ApiError::Internal("configuration: admin_password is invalid".into())
            })?;
            let user = User {
                id: new_id(now_ms)?,
                email: admin.email.as_str().to_string(),
                name: "Administrator".to_string(),
                role: Role::Admin,
                created_at_ms: now_ms,
                updated_at_ms: now_ms,
            };
            match repo.insert_user(&user, &hash_password(&password)?) {
                Ok(()) => return Ok(user),
                Err(ApiError::EmailTaken) => repo
                    .find_credentials_by_email(admin.email.as_str())?
                    .map(|c| c.user)
                    .ok_or_else(|| {
                        ApiError::Internal(
                            "bootstrap admin vanished after a duplicate insert".into(),
                        )
                    })?,
                Err(e) => return Err(e),
            }
        }
    };
    if existing.role == Role::Admin {
        return Ok(existing);
    }
    let changes = UserChanges {
        role: Some(Role::Admin),
        ..UserChanges::default()
    };
    let user = repo
        .update_user(&existing.id, &changes, now_ms)?
        .ok_or_else(|| ApiError::Internal("bootstrap admin vanished during promotion".into()))?;
    // The users component caches accounts: drop the entry that still says `user`.
    Cache::new(kv, now_ms).invalidate(&cache_key(&user.id));
    Ok(user)
}

/// Compares secrets without an early exit on the first differing byte.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Records a new session and answers with its first token pair.
fn start_session(
    config: &Config,
    repo: &dyn UserRepo,
    user: &User,
    now_ms: i64,
) -> Result<Response, ApiError> {
    let session_id = new_id(now_ms)?;
    let (refresh_token, refresh_hash) = new_refresh_token()?;
    repo.create_session(&NewSession {
        id: session_id.clone(),
        user_id: user.id.clone(),
        refresh_hash,
        created_at_ms: now_ms,
        expires_at_ms: now_ms + config.refresh_ttl_secs * 1000,
    })?;
    let (access_token, _) = config
        .tokens
        .issue(&user.id, user.role, &session_id, now_ms)?;
    Ok(Response::json(
        200,
        &TokenResponse {
            access_token,
            token_type: "Bearer",
            expires_in: config.tokens.access_ttl_secs,
            refresh_token,
            refresh_expires_in: config.refresh_ttl_secs,
            user: Some(user.view()),
        },
    ))
}

/// Rotation with reuse detection. Each refresh replaces the session's token
/// (sliding expiry: the new token lives `refresh_ttl_secs`); a token that was
/// already rotated away is a replay — someone else holds a copy — so the whole
/// session is ended and the caller told `refresh_token_reused`. The access
/// tokens already issued in that session must die with it, but nothing records
/// a session's `jti`s, so every access token of the user issued so far is
/// voided (`revoke_user_tokens`); the user's other live sessions recover with
/// one refresh. The key-value mark is written before the session row, so an
/// unreachable store answers 503 and the replayed token can be presented again.
fn refresh(
    ctx: &RequestContext,
    req: &Request,
    config: &Config,
    kv: &dyn KeyValue,
    repo: &dyn UserRepo,
) -> Result<Response, ApiError> {
    let body: RefreshBody = req.json()?;
    let hash = refresh_token_hash(&body.refresh_token).ok_or(ApiError::InvalidToken)?;
    let session = match repo.find_refresh(&hash)? {
        RefreshLookup::Unknown => return Err(ApiError::InvalidToken),
        RefreshLookup::Superseded {
            session_id,
            user_id,
        } => {
            return Err(end_reused_session(
                ctx,
                config,
                kv,
                repo,
                &session_id,
                &user_id,
            ))
        }
        RefreshLookup::Current(session) => session,
    };
    if session.revoked || session.expires_at_ms <= ctx.now_ms {
        return Err(ApiError::InvalidToken);
    }
    let (refresh_token, new_hash) = new_refresh_token()?;
    let expires_at = ctx.now_ms + config.refresh_ttl_secs * 1000;
    if !repo.rotate_refresh(&session.id, &hash, &new_hash, expires_at, ctx.now_ms)? {
        // Another request rotated this very token between our read and our
        // update: two holders presented it at once, which is reuse.
        return Err(end_reused_session(
            ctx,
            config,
            kv,
            repo,
            &session.id,
            &session.user_id,
        ));
    }
    let (access_token, _) =
        config
            .tokens
            .issue(&session.user_id, session.role, &session.id, ctx.now_ms)?;
    Ok(Response::json(
        200,
        &TokenResponse {
            access_token,
            token_type: "Bearer",
            expires_in: config.tokens.access_ttl_secs,
            refresh_token,
            refresh_expires_in: config.refresh_ttl_secs,
            user: None,
        },
    ))
}

/// Ends a session whose refresh token was replayed, and every access token of
/// its user issued so far; answers `refresh_token_reused` once both are done.
fn end_reused_session(
    ctx: &RequestContext,
    config: &Config,
    kv: &dyn KeyValue,
    repo: &dyn UserRepo,
    session_id: &str,
    user_id: &str,
) -> ApiError {
    let ended = revoke_user_tokens(kv, &config.tokens, user_id, ctx.now_ms)
        .and_then(|()| repo.revoke_session(session_id, ctx.now_ms));
    match ended {
        Ok(()) => ApiError::RefreshTokenReused,
        Err(e) => e,
    }
}

/// Logout: the access token's `jti` goes on the key-value deny-list (every
/// component and instance refuses it at once), and its session — named by the
/// token's `sid` claim — is revoked in MySQL, so its refresh token stops too.
/// The deny-list write comes first: if the database is then unreachable the
/// caller gets 503 but the token is already dead.
fn logout(
    ctx: &RequestContext,
    req: &Request,
    config: &Config,
    kv: &dyn KeyValue,
    repo: &dyn UserRepo,
) -> Result<Response, ApiError> {
    let principal = authenticate(req, &config.tokens, kv, ctx.now_ms)?;
    revoke_token(kv, &principal.claims)?;
    repo.revoke_session(&principal.claims.sid, ctx.now_ms)?;
    Ok(Response::new(204))
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::kv::{FailingKv, MemoryKv};
    use shared::users::MemoryUsers;

    const NOW: i64 = 1_800_000_000_000;
    const SECRET: &str = "unit-test-secret-of-32-bytes-or-more";
    const PASSWORD: &str = "correct horse";

    fn config() -> Config {
        Config {
            tokens: TokenConfig::new(SECRET, "spin-api", "spin-api-clients", 900).unwrap(),
            refresh_ttl_secs: 3600,
            limits: Limits {
                per_account: 5,
                per_address: 50,
                window_secs: 900,
            },
            admin: BootstrapAdmin::from_variables("root@example.com", "admin-password").unwrap(),
        }
    }

    struct World {
        kv: MemoryKv,
        repo: MemoryUsers,
        config: Config,
    }

    impl World {
        fn new() -> Self {
            Self {
                kv: MemoryKv::new(),
                repo: MemoryUsers::new(),
                config: config(),
            }
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
            handle(&ctx, &req, &self.config, &self.kv, &self.repo)
        }

        fn call(&self, req: Request) -> Result<Response, ApiError> {
            self.call_at(req, NOW)
        }

        fn login(&self, email: &str, password: &str) -> Result<Response, ApiError> {
            self.call(post(
                "/api/v1/auth/login",
                serde_json::json!({"email": email, "password": password}),
            ))
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
        let _ = w.login("ann@example.com", "nope nope");
        let keys = w.kv.keys();
        assert!(keys.iter().any(|k| k.starts_with("bf:a:")));
        assert!(keys.contains(&"bf:i:10.0.0.1".to_string()));
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
    fn locked_pair_is_refused_before_the_database() {
        let w = World::new().with_user("ann@example.com", Role::User);
        for _ in 0..5 {
            let _ = w.login("ann@example.com", "nope nope");
        }
        let calls = w.repo.calls();
        w.repo.set_down(true);
        assert_eq!(
            w.login("ann@example.com", PASSWORD).unwrap_err().status(),
            429
        );
        assert_eq!(w.repo.calls(), calls);
    }

    #[test]
    fn address_lock_covers_every_email() {
        let mut w = World::new().with_user("ann@example.com", Role::User);
        w.config.limits.per_address = 3;
        for i in 0..3 {
            let _ = w.login(&format!("x{i}@example.com"), "nope nope");
        }
        assert_eq!(
            w.login("ann@example.com", PASSWORD).unwrap_err().status(),
            429
        );
    }

    #[test]
    fn success_resets_the_pair_counter() {
        let w = World::new().with_user("ann@example.com", Role::User);
        for _ in 0..4 {
            let _ = w.login("ann@example.com", "nope nope");
        }
        assert_eq!(w.login("ann@example.com", PASSWORD).unwrap().status, 200);
        assert!(!w.kv.keys().iter().any(|k| k.starts_with("bf:a:")));
        assert_eq!(
            w.login("ann@example.com", "nope nope")
                .unwrap_err()
                .status(),
            401
        );
    }

    #[test]
    fn key_value_outage_fails_login_closed() {
        let w = World::new().with_user("ann@example.com", Role::User);
        let req = post(
            "/api/v1/auth/login",
            serde_json::json!({"email": "ann@example.com", "password": PASSWORD}),
        );
        let ctx = RequestContext::new(&req, NOW);
        let err = handle(&ctx, &req, &w.config, &FailingKv, &w.repo).unwrap_err();
        assert_eq!(err.status(), 503);
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
    }

    #[test]
    fn bootstrap_admin_promotes_an_existing_account_and_drops_its_cache_entry() {
        let w = World::new().with_user("root@example.com", Role::User);
        let id = w.repo.user_by_email("root@example.com").unwrap().id;
        w.kv.set(&cache_key(&id), b"stale").unwrap();
        let resp = w.login("root@example.com", "admin-password").unwrap();
        assert_eq!(resp.json_body()["user"]["role"], "admin");
        assert_eq!(w.repo.user_row(&id).unwrap().0.role, Role::Admin);
        assert!(!w.kv.contains(&cache_key(&id)));
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
    fn bootstrap_admin_is_off_when_a_variable_is_empty() {
        assert!(BootstrapAdmin::from_variables("root@example.com", "")
            .unwrap()
            .is_none());
        assert!(BootstrapAdmin::from_variables("", "admin-password")
            .unwrap()
            .is_none());
        assert!(BootstrapAdmin::from_variables("root@example.com", "short").is_err());
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
        let user_id = w.repo.sessions()[0].user_id.clone();
        w.refresh_at(&r1, NOW + 1000).unwrap();
        w.refresh_at(&r1, NOW + 2000).unwrap_err();
        assert!(w.kv.contains(&format!("rv:u:{user_id}")));
        let me = Request::new(Method::Get, "/")
            .with_header("authorization", &format!("Bearer {access}"));
        assert_eq!(
            authenticate(&me, &w.config.tokens, &w.kv, NOW + 3000).unwrap_err(),
            ApiError::InvalidToken
        );
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
        let err = handle(&ctx, &req, &w.config, &shared::kv::FailingKv, &w.repo).unwrap_err();
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
        let changes = UserChanges {
            role: Some(Role::Admin),
            ..Default::default()
        };
        w.repo.update_user(&id, &changes, NOW).unwrap();
        let (access, _) = tokens(&w.refresh_at(&r1, NOW + 1000).unwrap());
        assert_eq!(
            w.config.tokens.verify(&access, NOW + 1000).unwrap().role,
            Role::Admin
        );
    }

    #[test]
    fn logout_denies_the_token_and_ends_the_session() {
        let w = World::new().with_user("ann@example.com", Role::User);
        let (access, refresh) = tokens(&w.login("ann@example.com", PASSWORD).unwrap());
        let req = Request::new(Method::Post, "/api/v1/auth/logout")
            .with_header("authorization", &format!("Bearer {access}"));
        let resp = w.call(req.clone()).unwrap();
        assert_eq!(resp.status, 204);
        let jti = w.config.tokens.verify(&access, NOW).unwrap().jti;
        assert!(w.kv.contains(&format!("rv:j:{jti}")));
        assert!(w.repo.sessions()[0].revoked_at_ms.is_some());
        assert_eq!(w.call(req).unwrap_err(), ApiError::InvalidToken);
        assert_eq!(
            w.refresh_at(&refresh, NOW + 1).unwrap_err(),
            ApiError::InvalidToken
        );
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
}
