//! The login component's routes and handlers, over the key-value store and
//! the identity ports (no `spin_sdk` here: unit tests run them natively).

use identity::bootstrap::BootstrapAdmin;
use identity::limits;
use identity::model::{NewSession, RefreshLookup};
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
use shared::password::{
    hash_password, needs_rehash, rehash, verify_against_dummy, verify_password,
};
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

/// What the routes work with besides the request: the key-value store and
/// the three identity repositories, as the users component has them too.
pub use identity::repo::Ports;

/// One request's world: what it is, the configuration, and the ports.
struct Env<'a> {
    ctx: &'a RequestContext,
    req: &'a Request,
    config: &'a Config,
    ports: Ports<'a>,
}

/// Routes and handles one request. Successful responses carry
/// `Cache-Control: no-store` (they hold tokens, or end them); problem
/// responses always do.
pub fn handle(
    ctx: &RequestContext,
    req: &Request,
    config: &Config,
    ports: &Ports<'_>,
) -> Result<Response, ApiError> {
    let (route, _) = router().dispatch(ctx, &req.method, &req.path)?;
    let env = Env {
        ctx,
        req,
        config,
        ports: *ports,
    };
    let response = match route {
        Route::Login => login(&env),
        Route::Refresh => refresh(&env),
        Route::Logout => logout(&env),
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

/// docs/API.md's token response; `user` only on login.
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
fn login(env: &Env<'_>) -> Result<Response, ApiError> {
    let body: LoginBody = env.req.json()?;
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

    let client = env.ctx.client_bucket(&env.config.trusted_proxies);
    let pair = limits::login_pair(&email, &client);
    let address = limits::login_address(&client);
    limits::admit(
        env.ports.attempts,
        &[
            (&address, env.config.per_address),
            (&pair, env.config.per_account),
        ],
        env.ctx.now_ms,
    )?;

    let verified =
        check_credentials(env, &email, &body.password)?.ok_or(ApiError::InvalidCredentials)?;
    limits::succeeded(env.ports.attempts, &[&pair], &[&address]);
    let response = start_session(env, &verified)?;
    rehash_if_outdated(env, &verified, &body.password);
    Ok(response)
}

/// After a successful login whose password verified against a hash made
/// with other parameters than today's (older hashes keep verifying: the PHC
/// string carries its parameters), stores a hash with today's in its place —
/// only if the account still has the hash that was verified, so a password
/// change that committed meanwhile wins. Best effort: a failure is logged and
/// the login succeeds all the same; the next login tries again. Runs after
/// the session is recorded, so this login's own session fence (on the
/// verified hash) is not in its way. A concurrent login of the same account
/// that verified the old hash and records its session after this update
/// finds the hash changed and answers 401, as after a password change: at
/// most once per account, in the moment its hash is replaced.
fn rehash_if_outdated(env: &Env<'_>, verified: &Credentials, password: &str) {
    if !needs_rehash(&verified.password_hash) {
        return;
    }
    let stored = rehash(password).and_then(|new_hash| {
        env.ports.accounts.replace_password_hash(
            &verified.user.id,
            &verified.password_hash,
            &new_hash,
        )
    });
    if let Err(e) = stored {
        shared::log::warn(format!(
            "login: the password hash of {} was not re-hashed with today's parameters: {e}",
            verified.user.id
        ));
    }
}

/// The account these credentials belong to, with the hash that was checked,
/// or `None`. Exactly one argon2 verify whether or not the email exists, so
/// the answer's timing does not tell.
fn check_credentials(
    env: &Env<'_>,
    email: &Email,
    password: &str,
) -> Result<Option<Credentials>, ApiError> {
    if let Some(admin) = &env.config.admin {
        if admin.matches(email, password) {
            return bootstrap_admin(env, admin).map(Some);
        }
    }
    match env
        .ports
        .accounts
        .find_credentials_by_email(email.as_str())?
    {
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
fn bootstrap_admin(env: &Env<'_>, admin: &BootstrapAdmin) -> Result<Credentials, ApiError> {
    let now_ms = env.ctx.now_ms;
    for _ in 0..3 {
        let Some(current) = env
            .ports
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
            match env.ports.accounts.insert_user(&user, &password_hash) {
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
            .ports
            .sessions
            .live_sessions(&id, tokens_alive_since(&env.config.tokens, now_ms))?;
        end_all(env.ports.kv, &env.config.tokens, &before, now_ms)?;
        let password_hash = hash_password(admin.password())?;
        let Some(ended) =
            env.ports
                .accounts
                .take_over(&id, &current.password_hash, &password_hash, now_ms)?
        else {
            continue;
        };
        end_all(
            env.ports.kv,
            &env.config.tokens,
            &newly_found(&before, &ended),
            now_ms,
        )?;
        // The users component caches accounts: drop the entry that still says `user`.
        Cache::new(env.ports.kv, now_ms).invalidate(&keys::user(&id));
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

/// When a refresh token issued at `env.ctx.now_ms` in a session started at
/// `created_at_ms` stops working: `refresh_ttl_secs` from now, but never
/// past the session's absolute lifetime.
fn refresh_deadline(config: &Config, created_at_ms: i64, now_ms: i64) -> i64 {
    (now_ms + config.refresh_ttl_secs * 1000).min(session_end(config, created_at_ms))
}

/// When a session started at `created_at_ms` ends for good; no token of it,
/// refresh or access, works from then on.
fn session_end(config: &Config, created_at_ms: i64) -> i64 {
    created_at_ms.saturating_add(config.session_max_secs.saturating_mul(1000))
}

/// Records a new session and answers with its first token pair. The session
/// is recorded only if the account still has the hash and role that were
/// verified: a password change, role change or deletion that committed while
/// this login was checking the password makes it a 401, so no session
/// outlives the credentials it was opened with.
fn start_session(env: &Env<'_>, verified: &Credentials) -> Result<Response, ApiError> {
    let (config, now_ms) = (env.config, env.ctx.now_ms);
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
    if !env.ports.sessions.create_session(&session, verified)? {
        return Err(ApiError::InvalidCredentials);
    }
    let (access_token, access) = config.tokens.issue(
        &user.id,
        user.role,
        &session_id,
        now_ms,
        session_end(config, now_ms),
    )?;
    env.ctx.record_user(&user.id);
    Ok(Response::json(
        200,
        &TokenResponse {
            access_token,
            token_type: "Bearer",
            expires_in: access.exp - access.iat,
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
fn refresh(env: &Env<'_>) -> Result<Response, ApiError> {
    let body: RefreshBody = env.req.json()?;
    let hash = refresh_token_hash(&body.refresh_token).ok_or(ApiError::InvalidToken)?;
    let session = match env.ports.sessions.find_refresh(&hash)? {
        RefreshLookup::Unknown => return Err(ApiError::InvalidToken),
        RefreshLookup::Superseded { session_id, .. } => {
            return Err(end_reused_session(env, &session_id))
        }
        RefreshLookup::Current(session) => session,
    };
    let lifetime_over = session_end(env.config, session.created_at_ms) <= env.ctx.now_ms;
    if session.revoked || session.expires_at_ms <= env.ctx.now_ms || lifetime_over {
        return Err(ApiError::InvalidToken);
    }
    let (refresh_token, new_hash) = new_refresh_token()?;
    let expires_at_ms = refresh_deadline(env.config, session.created_at_ms, env.ctx.now_ms);
    if !env.ports.sessions.rotate_refresh(
        &session.id,
        &hash,
        &new_hash,
        expires_at_ms,
        env.ctx.now_ms,
    )? {
        // Another request rotated this very token between our read and our
        // update: two holders presented it at once, which is reuse.
        return Err(end_reused_session(env, &session.id));
    }
    let (access_token, access) = env.config.tokens.issue(
        &session.user_id,
        session.role,
        &session.id,
        env.ctx.now_ms,
        session_end(env.config, session.created_at_ms),
    )?;
    env.ctx.record_user(&session.user_id);
    Ok(Response::json(
        200,
        &TokenResponse {
            access_token,
            token_type: "Bearer",
            expires_in: access.exp - access.iat,
            refresh_token,
            refresh_expires_in: (expires_at_ms - env.ctx.now_ms) / 1000,
            user: None,
        },
    ))
}

/// Ends a session whose refresh token was replayed — its access tokens in
/// the key-value store first, so an unreachable store answers 503 and the
/// replayed token can be presented again — and answers `refresh_token_reused`.
fn end_reused_session(env: &Env<'_>, session_id: &str) -> ApiError {
    let ended =
        end_session(env.ports.kv, &env.config.tokens, session_id, env.ctx.now_ms).and_then(|()| {
            env.ports
                .sessions
                .revoke_session(session_id, env.ctx.now_ms)
        });
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
fn logout(env: &Env<'_>) -> Result<Response, ApiError> {
    let principal = authenticate(env.ctx, env.req, &env.config.tokens, env.ports.kv)?;
    end_session(
        env.ports.kv,
        &env.config.tokens,
        &principal.claims.sid,
        env.ctx.now_ms,
    )?;
    env.ports
        .sessions
        .revoke_session(&principal.claims.sid, env.ctx.now_ms)?;
    Ok(Response::new(204))
}

#[cfg(test)]
mod tests;
