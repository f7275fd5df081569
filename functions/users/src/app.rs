//! The users component's routes and handlers (and the health check), over
//! the key-value store and the identity ports — no `spin_sdk` here, so unit
//! tests run them natively against the fakes.

use identity::limits;
use identity::model::ProfileChanges;
use identity::repo::{cached_user, Env};
use identity::sessions::{end_all, newly_found, tokens_alive_since, void_all};
use identity::{User, UserView};
use serde::{Deserialize, Serialize};
use shared::auth::{authenticate, Principal, Role};
use shared::cache::Cache;
use shared::context::RequestContext;
use shared::db::Sql;
use shared::domain::{Email, FieldErrors, Name, Page, Pagination, Password};
use shared::http::{Method, Request, Response};
use shared::id::{is_valid_id, new_id};
use shared::kv::{get_unexpired, put_expiring, KeyValue};
use shared::password::{hash_password, verify_password};
use shared::router::Router;
use shared::{keys, ApiError, FieldError};

use crate::config::Config;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Register,
    List,
    Me,
    Get,
    Patch,
    Delete,
    Health,
}

fn router() -> Router<Route> {
    Router::new()
        .route(Method::Post, "/api/v1/users", Route::Register)
        .route(Method::Get, "/api/v1/users", Route::List)
        .route(Method::Get, "/api/v1/users/me", Route::Me)
        .route(Method::Get, "/api/v1/users/:id", Route::Get)
        .route(Method::Patch, "/api/v1/users/:id", Route::Patch)
        .route(Method::Delete, "/api/v1/users/:id", Route::Delete)
        .route(Method::Get, "/api/v1/health", Route::Health)
}

/// Routes and handles one request. Responses carry `Cache-Control: no-store`:
/// they hold personal data (or, for health, must never be served stale).
/// `db` is the connection the identity ports use, pinged by the health check.
pub fn handle(
    ctx: &RequestContext,
    req: &Request,
    config: &Config,
    env: Env<'_>,
    db: &dyn Sql,
) -> Result<Response, ApiError> {
    let (route, params) = router().find(&req.method, &req.path)?;
    let id = params.get("id").unwrap_or_default();
    let response = match route {
        Route::Health => return Ok(health(ctx, env.kv, db)),
        Route::Register => register(ctx, req, config, env),
        Route::List => list(ctx, req, config, env),
        Route::Me => me(ctx, req, config, env),
        Route::Get => get(ctx, req, config, env, id),
        Route::Patch => patch(ctx, req, config, env, id),
        Route::Delete => delete(ctx, req, config, env, id),
    }?;
    Ok(response.with_header("cache-control", "no-store"))
}

fn user_response(status: u16, user: &User) -> Response {
    Response::json(status, &user.view())
}

/// A field that must be present: absent is a field error, so a body missing
/// several fields reports them all (serde would stop at the first).
fn required(field: &str, value: Option<String>) -> Result<String, FieldError> {
    value.ok_or_else(|| FieldError::new(field, "is required"))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RegisterBody {
    email: Option<String>,
    password: Option<String>,
    name: Option<String>,
}

/// Registration. The bootstrap admin's email is taken by definition (409),
/// so nobody can pre-register it; every other registration is counted
/// against its client address before its password is hashed.
fn register(
    ctx: &RequestContext,
    req: &Request,
    config: &Config,
    env: Env<'_>,
) -> Result<Response, ApiError> {
    let body: RegisterBody = req.json()?;
    let mut errors = FieldErrors::new();
    let email = errors.check(required("email", body.email).and_then(|e| Email::parse(&e)));
    let password = errors.check(
        required("password", body.password).and_then(|p| Password::parse(&p, email.as_ref())),
    );
    let name = errors.check(required("name", body.name).and_then(|n| Name::parse(&n)));
    errors.finish()?;
    let (Some(email), Some(password), Some(name)) = (email, password, name) else {
        return Err(ApiError::Internal(
            "register: validated fields missing".into(),
        ));
    };
    if config.admin_email.as_ref() == Some(&email) {
        return Err(ApiError::EmailTaken);
    }
    let client = ctx.client_bucket(&config.trusted_proxies);
    limits::admit(
        env.attempts,
        &[(&limits::registration(&client), config.registration)],
        ctx.now_ms,
    )?;
    let user = User {
        id: new_id(ctx.now_ms)?,
        email: email.as_str().to_string(),
        name: name.as_str().to_string(),
        role: Role::User,
        created_at_ms: ctx.now_ms,
        updated_at_ms: ctx.now_ms,
    };
    // The unique index decides a race between two registrations of one email.
    env.accounts
        .insert_user(&user, &hash_password(&password)?)?;
    Ok(user_response(201, &user).with_header("location", &format!("/api/v1/users/{}", user.id)))
}

fn me(
    ctx: &RequestContext,
    req: &Request,
    config: &Config,
    env: Env<'_>,
) -> Result<Response, ApiError> {
    let principal = authenticate(req, &config.tokens, env.kv, ctx.now_ms)?;
    let cache = Cache::new(env.kv, ctx.now_ms);
    let user = cached_user(
        &cache,
        env.accounts,
        &principal.user_id,
        config.cache_ttl_ms,
    )?
    .ok_or(ApiError::NotFound)?;
    Ok(user_response(200, &user))
}

/// 403 unless the caller is `id` or an admin; then 404 for what cannot be an id.
fn authorize_for(principal: &Principal, id: &str) -> Result<(), ApiError> {
    if !principal.may_access_user(id) {
        return Err(ApiError::Forbidden);
    }
    if !is_valid_id(id) {
        return Err(ApiError::NotFound);
    }
    Ok(())
}

fn get(
    ctx: &RequestContext,
    req: &Request,
    config: &Config,
    env: Env<'_>,
    id: &str,
) -> Result<Response, ApiError> {
    let principal = authenticate(req, &config.tokens, env.kv, ctx.now_ms)?;
    authorize_for(&principal, id)?;
    let cache = Cache::new(env.kv, ctx.now_ms);
    let user =
        cached_user(&cache, env.accounts, id, config.cache_ttl_ms)?.ok_or(ApiError::NotFound)?;
    Ok(user_response(200, &user))
}

fn list(
    ctx: &RequestContext,
    req: &Request,
    config: &Config,
    env: Env<'_>,
) -> Result<Response, ApiError> {
    let principal = authenticate(req, &config.tokens, env.kv, ctx.now_ms)?;
    if !principal.is_admin() {
        return Err(ApiError::Forbidden);
    }
    let pagination = Pagination::from_request(req)?;
    let (users, total) = env
        .accounts
        .list_users(pagination.offset(), pagination.limit)?;
    let items: Vec<UserView> = users.iter().map(User::view).collect();
    Ok(Response::json(200, &Page::new(items, pagination, total)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchBody {
    name: Option<String>,
    password: Option<String>,
    current_password: Option<String>,
    role: Option<String>,
}

/// PATCH rules: the account holder may change `name` and `password` (with
/// `current_password`); an admin may change `name` and `role` of anyone (and
/// their own password like any holder). A field the caller may not change is
/// 403 before anything is validated.
///
/// A `current_password` check is counted against the user before the hash
/// is looked at (5 wrong per window by default, then 429), so a stolen
/// access token does not become an unlimited password oracle.
///
/// Revocation marks are written before the rows change, so an outage of the
/// store (503) leaves the account as it was:
/// * password change — every other session ends (refresh and access tokens),
///   the caller's own session keeps its refresh token but its access tokens
///   issued so far are void (the caller refreshes to continue); a login that
///   verified the old password meanwhile records no session (fenced insert);
/// * role change — the access tokens of every session are void, so no token
///   keeps claiming the old role; sessions stay, and a refresh issues the new role.
fn patch(
    ctx: &RequestContext,
    req: &Request,
    config: &Config,
    env: Env<'_>,
    id: &str,
) -> Result<Response, ApiError> {
    let principal = authenticate(req, &config.tokens, env.kv, ctx.now_ms)?;
    authorize_for(&principal, id)?;
    let body: PatchBody = req.json()?;
    let is_self = principal.user_id == id;
    if (body.role.is_some() && !principal.is_admin()) || (body.password.is_some() && !is_self) {
        return Err(ApiError::Forbidden);
    }
    let current = env
        .accounts
        .find_credentials(id)?
        .ok_or(ApiError::NotFound)?;
    let email = Email::parse(&current.user.email).ok();

    let mut errors = FieldErrors::new();
    let name = body
        .name
        .as_deref()
        .and_then(|n| errors.check(Name::parse(n)));
    let password = body
        .password
        .as_deref()
        .and_then(|p| errors.check(Password::parse(p, email.as_ref())));
    if body.password.is_some() && body.current_password.is_none() {
        errors.push(FieldError::new(
            "current_password",
            "is required to change the password",
        ));
    }
    if body.password.is_none() && body.current_password.is_some() {
        errors.push(FieldError::new(
            "current_password",
            "is only accepted with password",
        ));
    }
    let role = body.role.as_deref().and_then(|r| {
        errors.check(Role::parse(r).ok_or_else(|| FieldError::new("role", "must be user or admin")))
    });
    errors.finish()?;

    if password.is_some() {
        let bucket = limits::password_check(id);
        limits::admit(
            env.attempts,
            &[(&bucket, config.password_check)],
            ctx.now_ms,
        )?;
        let candidate = body.current_password.as_deref().unwrap_or_default();
        if !verify_password(&current.password_hash, candidate) {
            return Err(ApiError::InvalidCredentials);
        }
        limits::succeeded(env.attempts, &[&bucket], &[]);
    }
    let role = role.filter(|r| *r != current.user.role);
    if name.is_none() && password.is_none() && role.is_none() {
        return Ok(user_response(200, &current.user));
    }

    let since = tokens_alive_since(&config.tokens, ctx.now_ms);
    let mut user = current.user.clone();
    if name.is_some() || role.is_some() {
        let changes = ProfileChanges {
            name: name.map(|n| n.as_str().to_string()),
            role,
        };
        let before = match role {
            Some(_) => {
                let live = env.sessions.live_sessions(id, since)?;
                void_all(env.kv, &config.tokens, &live, ctx.now_ms)?;
                live
            }
            None => Vec::new(),
        };
        user = env
            .accounts
            .update_profile(id, &changes, ctx.now_ms)?
            .ok_or(ApiError::NotFound)?;
        if role.is_some() {
            // A login recorded between the two looks was opened with the old role.
            let after = env.sessions.live_sessions(id, since)?;
            end_all(
                env.kv,
                &config.tokens,
                &newly_found(&before, &after),
                ctx.now_ms,
            )?;
        }
    }
    if let Some(password) = &password {
        let own = principal.claims.sid.as_str();
        let before = env.sessions.live_sessions(id, since)?;
        let others: Vec<String> = before.iter().filter(|s| *s != own).cloned().collect();
        end_all(env.kv, &config.tokens, &others, ctx.now_ms)?;
        void_all(env.kv, &config.tokens, &[own.to_string()], ctx.now_ms)?;
        let ended = env
            .accounts
            .change_password(id, &hash_password(password)?, Some(own), ctx.now_ms)?
            .ok_or(ApiError::NotFound)?;
        end_all(
            env.kv,
            &config.tokens,
            &newly_found(&before, &ended),
            ctx.now_ms,
        )?;
        user.updated_at_ms = ctx.now_ms;
    }
    Cache::new(env.kv, ctx.now_ms).invalidate(&keys::user(id));
    Ok(user_response(200, &user))
}

/// Deletion: the marks of every live session first (every access token of
/// the user stops at once, in every component), then the row goes with all
/// its sessions, so no refresh token survives either; a session recorded in
/// between is marked after. The user's orders and uploads belong to other
/// components and are left as they are.
fn delete(
    ctx: &RequestContext,
    req: &Request,
    config: &Config,
    env: Env<'_>,
    id: &str,
) -> Result<Response, ApiError> {
    let principal = authenticate(req, &config.tokens, env.kv, ctx.now_ms)?;
    authorize_for(&principal, id)?;
    if env.accounts.find_user(id)?.is_none() {
        return Err(ApiError::NotFound);
    }
    let before = env
        .sessions
        .live_sessions(id, tokens_alive_since(&config.tokens, ctx.now_ms))?;
    end_all(env.kv, &config.tokens, &before, ctx.now_ms)?;
    let ended = env.accounts.delete_user(id)?.ok_or(ApiError::NotFound)?;
    end_all(
        env.kv,
        &config.tokens,
        &newly_found(&before, &ended),
        ctx.now_ms,
    )?;
    Cache::new(env.kv, ctx.now_ms).invalidate(&keys::user(id));
    Ok(Response::new(204))
}

#[derive(Serialize)]
struct Health {
    status: &'static str,
    checks: Checks,
}

#[derive(Serialize)]
struct Checks {
    database: &'static str,
    cache: &'static str,
}

/// `GET /api/v1/health`: a trivial query and a key-value write + read of one
/// constant key ([`keys::HEALTH_PROBE`], so concurrent checks cannot make
/// each other fail). 200 when both work; otherwise 503 with the same JSON
/// naming the failing check (`"unavailable"`) and `Retry-After`. Failures
/// are logged, never sent.
fn health(ctx: &RequestContext, kv: &dyn KeyValue, db: &dyn Sql) -> Response {
    let database = match db.ping() {
        Ok(()) => "ok",
        Err(e) => {
            eprintln!(
                "request_id={} health: database: {}",
                ctx.request_id,
                ApiError::from(e).log_detail()
            );
            "unavailable"
        }
    };
    let probe = put_expiring(kv, keys::HEALTH_PROBE, b"ok", ctx.now_ms + 60_000)
        .and_then(|()| get_unexpired(kv, keys::HEALTH_PROBE, ctx.now_ms));
    let cache = match probe {
        Ok(Some(v)) if v == b"ok" => "ok",
        Ok(_) => {
            eprintln!(
                "request_id={} health: cache: probe not read back",
                ctx.request_id
            );
            "unavailable"
        }
        Err(e) => {
            eprintln!("request_id={} health: cache: {}", ctx.request_id, e.0);
            "unavailable"
        }
    };
    let healthy = database == "ok" && cache == "ok";
    let body = Health {
        status: if healthy { "ok" } else { "unavailable" },
        checks: Checks { database, cache },
    };
    let response = Response::json(if healthy { 200 } else { 503 }, &body)
        .with_header("cache-control", "no-store");
    if healthy {
        response
    } else {
        response.with_header("retry-after", "5")
    }
}

#[cfg(test)]
mod tests {
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

        fn env(&self) -> Env<'_> {
            Env::new(&self.kv, &self.repo)
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
            self.config.tokens.issue(id, role, sid, at).unwrap().0
        }

        fn sid(&self, token: &str) -> String {
            self.config.tokens.verify(token, NOW).unwrap().sid
        }

        fn call_at(&self, req: Request, now: i64) -> Result<Response, ApiError> {
            let ctx = RequestContext::new(&req, now);
            handle(&ctx, &req, &self.config, self.env(), &self.db)
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
        let req = Request::new(Method::Post, "/api/v1/users").with_json(
            &json!({"email": " Ann@Example.com", "password": PASSWORD, "name": " Ann "}),
        );
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
        let req = Request::new(Method::Post, "/api/v1/users").with_json(
            &json!({"email": "Boss@Example.com", "password": PASSWORD, "name": "Mallory"}),
        );
        assert_eq!(w.call(req).unwrap_err(), ApiError::EmailTaken);
        assert!(w.repo.user_by_email("boss@example.com").is_none());
    }

    #[test]
    fn registrations_past_the_address_limit_are_429_and_store_nothing() {
        let mut w = World::new();
        w.config.registration = Limit::new("r", 2, 3600).unwrap();
        let register = |i: u32| {
            let req = Request::new(Method::Post, "/api/v1/users")
                .with_json(&json!({"email": format!("u{i}@example.com"), "password": PASSWORD, "name": "U"}))
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
        let req = Request::new(Method::Post, "/api/v1/users").with_json(
            &json!({"email": "a@b.cd", "password": PASSWORD, "name": "A", "role": "admin"}),
        );
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
        let (id, token) = w.user("ann@example.com", Role::User);
        let _ = &id;
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
        let err = handle(&ctx, &req, &w.config, Env::new(&failing, &w.repo), &w.db).unwrap_err();
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
        let err = handle(&ctx, &req, &w.config, Env::new(&FailingKv, &w.repo), &w.db).unwrap_err();
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
        let resp = handle(&ctx, &req, &w.config, Env::new(&FailingKv, &w.repo), &w.db).unwrap();
        assert_eq!(resp.status, 503);
        assert_eq!(
            resp.json_body()["checks"],
            json!({"database": "ok", "cache": "unavailable"})
        );
    }
}
