//! The users component's routes and handlers (and the health check), over
//! the key-value store and the identity ports — no `spin_sdk` here, so unit
//! tests run them natively against the fakes.

use identity::limits;
use identity::model::ProfileChanges;
use identity::repo::cached_user;
use identity::sessions::{end_all, newly_found, tokens_alive_since, void_all};
use identity::{User, UserView};
use serde::{Deserialize, Serialize};
use shared::auth::{authenticate, authenticate_reading_ahead, Principal, Role};
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

/// What the routes work with besides the request (on Spin, one
/// `SqlIdentity` over `db` serves all three identity repositories).
pub struct Ports<'a> {
    /// The key-value store and the identity repositories, as login has them.
    pub identity: identity::repo::Ports<'a>,
    /// The connection the repositories use, pinged by the health check.
    pub db: &'a dyn Sql,
}

/// One request's world: what it is, the configuration, and the ports.
struct Env<'a> {
    ctx: &'a RequestContext,
    req: &'a Request,
    config: &'a Config,
    ports: identity::repo::Ports<'a>,
}

/// Routes and handles one request. Responses carry `Cache-Control: no-store`:
/// they hold personal data (or, for health, must never be served stale).
pub fn handle(
    ctx: &RequestContext,
    req: &Request,
    config: &Config,
    ports: &Ports<'_>,
) -> Result<Response, ApiError> {
    let (route, params) = router().dispatch(ctx, &req.method, &req.path)?;
    let id = params.get("id").unwrap_or_default();
    let env = Env {
        ctx,
        req,
        config,
        ports: ports.identity,
    };
    let response = match route {
        Route::Health => return Ok(health(ctx, ports.identity.kv, ports.db)),
        Route::Register => register(&env),
        Route::List => list(&env),
        Route::Me => me(&env),
        Route::Get => get(&env, id),
        Route::Patch => patch(&env, id),
        Route::Delete => delete(&env, id),
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
fn register(env: &Env<'_>) -> Result<Response, ApiError> {
    let body: RegisterBody = env.req.json()?;
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
    if env.config.admin_email.as_ref() == Some(&email) {
        return Err(ApiError::EmailTaken);
    }
    let client = env.ctx.client_bucket(&env.config.trusted_proxies);
    limits::admit(
        env.ports.attempts,
        &[(&limits::registration(&client), env.config.registration)],
        env.ctx.now_ms,
    )?;
    let user = User {
        id: new_id(env.ctx.now_ms)?,
        email: email.as_str().to_string(),
        name: name.as_str().to_string(),
        role: Role::User,
        created_at_ms: env.ctx.now_ms,
        updated_at_ms: env.ctx.now_ms,
    };
    // The unique index decides a race between two registrations of one email.
    env.ports
        .accounts
        .insert_user(&user, &hash_password(&password)?)?;
    Ok(user_response(201, &user).with_header("location", &format!("/api/v1/users/{}", user.id)))
}

fn me(env: &Env<'_>) -> Result<Response, ApiError> {
    // The revocation mark and the cached profile in one key-value call.
    let (principal, kv) = authenticate_reading_ahead(
        env.ctx,
        env.req,
        &env.config.tokens,
        env.ports.kv,
        |claims| vec![keys::user(&claims.sub)],
    )?;
    let cache = Cache::new(&kv, env.ctx.now_ms);
    let user = cached_user(
        &cache,
        env.ports.accounts,
        &principal.user_id,
        env.config.cache_ttl_ms,
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

fn get(env: &Env<'_>, id: &str) -> Result<Response, ApiError> {
    let (principal, kv) = authenticate_reading_ahead(
        env.ctx,
        env.req,
        &env.config.tokens,
        env.ports.kv,
        |claims| {
            // Only the caller's own record is read ahead: a caller asking for
            // someone else's is refused (403) or an admin, whose second read
            // is the rare case, and no other user's profile is fetched for a
            // request that may be refused.
            (claims.sub == id)
                .then(|| keys::user(id))
                .into_iter()
                .collect()
        },
    )?;
    authorize_for(&principal, id)?;
    let cache = Cache::new(&kv, env.ctx.now_ms);
    let user = cached_user(&cache, env.ports.accounts, id, env.config.cache_ttl_ms)?
        .ok_or(ApiError::NotFound)?;
    Ok(user_response(200, &user))
}

fn list(env: &Env<'_>) -> Result<Response, ApiError> {
    let principal = authenticate(env.ctx, env.req, &env.config.tokens, env.ports.kv)?;
    if !principal.is_admin() {
        return Err(ApiError::Forbidden);
    }
    let pagination = Pagination::from_request(env.req)?;
    let (users, total) = env
        .ports
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
fn patch(env: &Env<'_>, id: &str) -> Result<Response, ApiError> {
    let principal = authenticate(env.ctx, env.req, &env.config.tokens, env.ports.kv)?;
    authorize_for(&principal, id)?;
    let body: PatchBody = env.req.json()?;
    let is_self = principal.user_id == id;
    if (body.role.is_some() && !principal.is_admin()) || (body.password.is_some() && !is_self) {
        return Err(ApiError::Forbidden);
    }
    let current = env
        .ports
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
            env.ports.attempts,
            &[(&bucket, env.config.password_check)],
            env.ctx.now_ms,
        )?;
        let candidate = body.current_password.as_deref().unwrap_or_default();
        if !verify_password(&current.password_hash, candidate) {
            return Err(ApiError::InvalidCredentials);
        }
        limits::succeeded(env.ports.attempts, &[&bucket], &[]);
    }
    let role = role.filter(|r| *r != current.user.role);
    if name.is_none() && password.is_none() && role.is_none() {
        return Ok(user_response(200, &current.user));
    }

    let since = tokens_alive_since(&env.config.tokens, env.ctx.now_ms);
    let mut user = current.user.clone();
    if name.is_some() || role.is_some() {
        let changes = ProfileChanges {
            name: name.map(|n| n.as_str().to_string()),
            role,
        };
        let before = match role {
            Some(_) => {
                let live = env.ports.sessions.live_sessions(id, since)?;
                void_all(env.ports.kv, &env.config.tokens, &live, env.ctx.now_ms)?;
                live
            }
            None => Vec::new(),
        };
        user = env
            .ports
            .accounts
            .update_profile(id, &changes, env.ctx.now_ms)?
            .ok_or(ApiError::NotFound)?;
        if role.is_some() {
            // A login recorded between the two looks was opened with the old role.
            let after = env.ports.sessions.live_sessions(id, since)?;
            end_all(
                env.ports.kv,
                &env.config.tokens,
                &newly_found(&before, &after),
                env.ctx.now_ms,
            )?;
        }
    }
    if let Some(password) = &password {
        let own = principal.claims.sid.as_str();
        let before = env.ports.sessions.live_sessions(id, since)?;
        let others: Vec<String> = before.iter().filter(|s| *s != own).cloned().collect();
        end_all(env.ports.kv, &env.config.tokens, &others, env.ctx.now_ms)?;
        void_all(
            env.ports.kv,
            &env.config.tokens,
            &[own.to_string()],
            env.ctx.now_ms,
        )?;
        let ended = env
            .ports
            .accounts
            .change_password(id, &hash_password(password)?, Some(own), env.ctx.now_ms)?
            .ok_or(ApiError::NotFound)?;
        end_all(
            env.ports.kv,
            &env.config.tokens,
            &newly_found(&before, &ended),
            env.ctx.now_ms,
        )?;
        user.updated_at_ms = env.ctx.now_ms;
    }
    Cache::new(env.ports.kv, env.ctx.now_ms).invalidate(&keys::user(id));
    Ok(user_response(200, &user))
}

/// Deletion: the marks of every live session first (every access token of
/// the user stops at once, in every component), then the row goes with all
/// its sessions, so no refresh token survives either; a session recorded in
/// between is marked after. The user's orders and uploads belong to other
/// components and are left as they are.
fn delete(env: &Env<'_>, id: &str) -> Result<Response, ApiError> {
    let principal = authenticate(env.ctx, env.req, &env.config.tokens, env.ports.kv)?;
    authorize_for(&principal, id)?;
    if env.ports.accounts.find_user(id)?.is_none() {
        return Err(ApiError::NotFound);
    }
    let before = env
        .ports
        .sessions
        .live_sessions(id, tokens_alive_since(&env.config.tokens, env.ctx.now_ms))?;
    end_all(env.ports.kv, &env.config.tokens, &before, env.ctx.now_ms)?;
    let ended = env
        .ports
        .accounts
        .delete_user(id)?
        .ok_or(ApiError::NotFound)?;
    end_all(
        env.ports.kv,
        &env.config.tokens,
        &newly_found(&before, &ended),
        env.ctx.now_ms,
    )?;
    Cache::new(env.ports.kv, env.ctx.now_ms).invalidate(&keys::user(id));
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
            shared::log::warn(format!(
                "health: database: {}",
                ApiError::from(e).log_detail()
            ));
            "unavailable"
        }
    };
    let probe = put_expiring(kv, keys::HEALTH_PROBE, b"ok", ctx.now_ms + 60_000)
        .and_then(|()| get_unexpired(kv, keys::HEALTH_PROBE, ctx.now_ms));
    let cache = match probe {
        Ok(Some(v)) if v == b"ok" => "ok",
        Ok(_) => {
            shared::log::warn("health: cache: probe not read back");
            "unavailable"
        }
        Err(e) => {
            shared::log::warn(format!("health: cache: {}", e.0));
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
mod tests;
