//! The login component's routes and handlers, over the key-value store and
//! the identity ports (no `spin_sdk` here: unit tests run them natively).

use identity::bootstrap::BootstrapAdmin;
use identity::limits;
use identity::model::{NewSession, RefreshLookup};
use identity::repo::Env;
use identity::sessions::{
    end_all, new_refresh_token, newly_found, refresh_token_hash, tokens_alive_since,
};
use identity::{Credentials, User, UserView};
use serde::{Deserialize, Serialize};
use shared::auth::{authenticate, end_session, Role};
use shared::cache::Cache;
use shared::context::RequestContext;
use shared::domain::Email;
use shared::http::{Method, Request, Response};
use shared::id::new_id;
use shared::password::{hash_password, verify_against_dummy, verify_password};
use shared::router::Router;
use shared::{keys, ApiError, FieldError};

use crate::config::Config;

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
    env: Env<'_>,
) -> Result<Response, ApiError> {
    let (route, _) = router().find(&req.method, &req.path)?;
    let response = match route {
        Route::Login => login(ctx, req, config, env),
        Route::Refresh => refresh(ctx, req, config, env),
        Route::Logout => logout(ctx, req, config, env),
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

/// Login. The attempt is counted against its email + address pair and its
/// address before any password work, atomically, so a burst of guesses gets
/// at most the limit's number of checks; a success clears the pair and gives
/// the address its attempt back (the address limit counts failures).
fn login(
    ctx: &RequestContext,
    req: &Request,
    config: &Config,
    env: Env<'_>,
) -> Result<Response, ApiError> {
    let body: LoginBody = req.json()?;
    // Syntax errors are public knowledge (no account can have such an email),
    // so they are reported as such rather than counted or hashed.
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

    let client = ctx.client_bucket(&config.trusted_proxies);
    let pair = limits::login_pair(&email, &client);
    let address = limits::login_address(&client);
    limits::admit(
        env.attempts,
        &[(&address, config.per_address), (&pair, config.per_account)],
        ctx.now_ms,
    )?;

    let verified = check_credentials(config, env, &email, &body.password, ctx.now_ms)?
        .ok_or(ApiError::InvalidCredentials)?;
    limits::succeeded(env.attempts, &[&pair], &[&address]);
    start_session(config, env, &verified, ctx.now_ms)
}

/// The account these credentials belong to, with the hash that was checked,
/// or `None`. Exactly one argon2 verify whether or not the email exists, so
/// the answer's timing does not tell.
fn check_credentials(
    config: &Config,
    env: Env<'_>,
    email: &Email,
    password: &str,
    now_ms: i64,
) -> Result<Option<Credentials>, ApiError> {
    if let Some(admin) = &config.admin {
        if admin.matches(email, password) {
            return bootstrap_admin(admin, config, env, now_ms).map(Some);
        }
    }
    match env.accounts.find_credentials_by_email(email.as_str())? {
        Some(c) if verify_password(&c.password_hash, password) => Ok(Some(c)),
        Some(_) => Ok(None),
        None => {
            verify_against_dummy(password);
            Ok(None)
        }
    }
}

/// The bootstrap admin's account, as `admin_email`/`admin_password` say it
/// must be: created on first use; an account that holds the email with
/// another password or role (registered before the first bootstrap login,
/// or changed since) is taken over — the password becomes `admin_password`,
/// the role `admin`, and every session it had ends, access tokens included.
/// Concurrent first logins converge: an insert that loses to another's
/// (duplicate email) or a takeover that loses (the hash changed) reads the
/// account again, now already in the bootstrap state.
fn bootstrap_admin(
    admin: &BootstrapAdmin,
    config: &Config,
    env: Env<'_>,
    now_ms: i64,
) -> Result<Credentials, ApiError> {
    for _ in 0..3 {
        let Some(current) = env
            .accounts
            .find_credentials_by_email(admin.email.as_str())?
        else {
            let user = User {
                id: new_id(now_ms)?,
                email: admin.email.as_str().to_string(),
                name: "Administrator".to_string(),
                role: Role::Admin,
                created_at_ms: now_ms,
                updated_at_ms: now_ms,
            };
            let password_hash = hash_password(admin.password())?;
            match env.accounts.insert_user(&user, &password_hash) {
                Ok(()) => {
                    return Ok(Credentials {
                        user,
                        password_hash,
                    })
                }
                Err(ApiError::EmailTaken) => continue,
                Err(e) => return Err(e),
            }
        };
        if current.user.role == Role::Admin
            && verify_password(&current.password_hash, admin.password().expose())
        {
            return Ok(current);
        }
        // Marks first: a key-value store that is down answers 503 before the
        // account changes hands with its old sessions still alive.
        let id = current.user.id.clone();
        let before = env
            .sessions
            .live_sessions(&id, tokens_alive_since(&config.tokens, now_ms))?;
        end_all(env.kv, &config.tokens, &before, now_ms)?;
        let password_hash = hash_password(admin.password())?;
        let Some(ended) =
            env.accounts
                .take_over(&id, &current.password_hash, &password_hash, now_ms)?
        else {
            continue;
        };
        end_all(
            env.kv,
            &config.tokens,
            &newly_found(&before, &ended),
            now_ms,
        )?;
        // The users component caches accounts: drop the entry that still says `user`.
        Cache::new(env.kv, now_ms).invalidate(&keys::user(&id));
        let user = User {
            role: Role::Admin,
            updated_at_ms: now_ms,
            ..current.user
        };
        return Ok(Credentials {
            user,
            password_hash,
        });
    }
    Err(ApiError::Internal(
        "bootstrap admin: the account kept changing under concurrent logins".into(),
    ))
}

/// When a refresh token issued at `now_ms` in a session started at
/// `created_at_ms` stops working: `refresh_ttl_secs` from now, but never
/// past the session's absolute lifetime.
fn refresh_deadline(config: &Config, created_at_ms: i64, now_ms: i64) -> i64 {
    (now_ms + config.refresh_ttl_secs * 1000).min(created_at_ms + config.session_max_secs * 1000)
}

/// Records a new session and answers with its first token pair. The session
/// is recorded only if the account still has the hash and role that were
/// verified: a password change, role change or deletion that committed while
/// this login was checking the password makes it a 401, so no session
/// outlives the credentials it was opened with.
fn start_session(
    config: &Config,
    env: Env<'_>,
    verified: &Credentials,
    now_ms: i64,
) -> Result<Response, ApiError> {
    let user = &verified.user;
    let session_id = new_id(now_ms)?;
    let (refresh_token, refresh_hash) = new_refresh_token()?;
    let expires_at_ms = refresh_deadline(config, now_ms, now_ms);
    let session = NewSession {
        id: session_id.clone(),
        user_id: user.id.clone(),
        refresh_hash,
        created_at_ms: now_ms,
        expires_at_ms,
    };
    if !env.sessions.create_session(&session, verified)? {
        return Err(ApiError::InvalidCredentials);
    }
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
            refresh_expires_in: (expires_at_ms - now_ms) / 1000,
            user: Some(user.view()),
        },
    ))
}

/// Rotation with reuse detection. Each refresh replaces the session's token
/// (sliding expiry, capped by the session's absolute lifetime); a token that
/// was already rotated away is a replay — someone else holds a copy — so the
/// whole session is ended, access tokens included, and the caller told
/// `refresh_token_reused`.
fn refresh(
    ctx: &RequestContext,
    req: &Request,
    config: &Config,
    env: Env<'_>,
) -> Result<Response, ApiError> {
    let body: RefreshBody = req.json()?;
    let hash = refresh_token_hash(&body.refresh_token).ok_or(ApiError::InvalidToken)?;
    let session = match env.sessions.find_refresh(&hash)? {
        RefreshLookup::Unknown => return Err(ApiError::InvalidToken),
        RefreshLookup::Superseded { session_id, .. } => {
            return Err(end_reused_session(ctx, config, env, &session_id))
        }
        RefreshLookup::Current(session) => session,
    };
    let lifetime_over = session.created_at_ms + config.session_max_secs * 1000 <= ctx.now_ms;
    if session.revoked || session.expires_at_ms <= ctx.now_ms || lifetime_over {
        return Err(ApiError::InvalidToken);
    }
    let (refresh_token, new_hash) = new_refresh_token()?;
    let expires_at_ms = refresh_deadline(config, session.created_at_ms, ctx.now_ms);
    if !env
        .sessions
        .rotate_refresh(&session.id, &hash, &new_hash, expires_at_ms, ctx.now_ms)?
    {
        // Another request rotated this very token between our read and our
        // update: two holders presented it at once, which is reuse.
        return Err(end_reused_session(ctx, config, env, &session.id));
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
            refresh_expires_in: (expires_at_ms - ctx.now_ms) / 1000,
            user: None,
        },
    ))
}

/// Ends a session whose refresh token was replayed — its access tokens in
/// the key-value store first, so an unreachable store answers 503 and the
/// replayed token can be presented again — and answers `refresh_token_reused`.
fn end_reused_session(
    ctx: &RequestContext,
    config: &Config,
    env: Env<'_>,
    session_id: &str,
) -> ApiError {
    let ended = end_session(env.kv, &config.tokens, session_id, ctx.now_ms)
        .and_then(|()| env.sessions.revoke_session(session_id, ctx.now_ms));
    match ended {
        Ok(()) => ApiError::RefreshTokenReused,
        Err(e) => e,
    }
}

/// Logout ends the session named by the token's `sid`: its mark in the
/// key-value store voids every access token issued in it (before or after a
/// refresh) in every component and instance, and its row in MySQL stops its
/// refresh token. The mark comes first: if the database is then unreachable
/// the caller gets 503 but the tokens are already dead.
fn logout(
    ctx: &RequestContext,
    req: &Request,
    config: &Config,
    env: Env<'_>,
) -> Result<Response, ApiError> {
    let principal = authenticate(req, &config.tokens, env.kv, ctx.now_ms)?;
    end_session(env.kv, &config.tokens, &principal.claims.sid, ctx.now_ms)?;
    env.sessions
        .revoke_session(&principal.claims.sid, ctx.now_ms)?;
    Ok(Response::new(204))
}

#[cfg(test)]
mod tests {
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

        fn env(&self) -> Env<'_> {
            Env::new(&self.kv, &self.repo)
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
            handle(&ctx, &req, &self.config, self.env())
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
            authenticate(&req, &self.config.tokens, &self.kv, now).is_ok()
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
        let _ = w.login("ann@example.com", "nope nope");
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
            let _ = w.login("ann@example.com", "nope nope");
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
            let _ = w.login(&format!("x{i}@example.com"), "nope nope");
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
            let _ = w.login("ann@example.com", "nope nope");
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
        let _ = w.call(req());
        assert!(w
            .repo
            .attempts(&limits::login_address("10.0.0.1"))
            .is_some());
        w.config.trusted_proxies = TrustedProxies::parse("10.0.0.0/8").unwrap();
        let _ = w.call(req());
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
        let err = handle(&ctx, &req, &w.config, Env::new(&FailingKv, &w.repo)).unwrap_err();
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
        assert_eq!(
            start_session(&w.config, w.env(), &verified, NOW + 1).unwrap_err(),
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
        let err = handle(&ctx, &req, &w.config, Env::new(&FailingKv, &w.repo)).unwrap_err();
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
}
