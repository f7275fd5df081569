//! From a request to its caller: the bearer token of its `Authorization`
//! header, verified ([`super::TokenConfig::verify`]), then its session's
//! revocation mark read — one key-value read, or, for a handler that reads
//! cached data next, one batch holding the mark and that data
//! ([`authenticate_reading_ahead`]).

use super::principal::{Claims, Principal};
use super::revocation::is_revoked;
use super::token::TokenConfig;
use crate::context::RequestContext;
use crate::error::ApiError;
use crate::http::Request;
use crate::keys;
use crate::kv::{KeyValue, Prefetched};

/// The token of an `Authorization: Bearer <token>` header, or 401 `invalid_token`.
pub fn bearer_token(request: &Request) -> Result<&str, ApiError> {
    let value = request
        .header("authorization")
        .ok_or(ApiError::InvalidToken)?;
    let (scheme, token) = value.split_once(' ').ok_or(ApiError::InvalidToken)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(ApiError::InvalidToken);
    }
    Ok(token)
}

/// Authenticates a request: bearer token, signature and claims, then the
/// session's revocation mark in the key-value store (one read).
pub fn authenticate(
    ctx: &RequestContext,
    request: &Request,
    config: &TokenConfig,
    kv: &dyn KeyValue,
) -> Result<Principal, ApiError> {
    let claims = config.verify(bearer_token(request)?, ctx.now_ms)?;
    admit(ctx, claims, kv)
}

/// [`authenticate`] for a handler that reads cached data next: the
/// revocation mark and the keys `ahead` names for the verified claims are
/// read in one batch (one round trip), and the returned view answers the
/// handler's reads of those keys from it. A warm `GET /users/me` is then one
/// key-value call in all.
pub fn authenticate_reading_ahead<'a>(
    ctx: &RequestContext,
    request: &Request,
    config: &TokenConfig,
    kv: &'a dyn KeyValue,
    ahead: impl FnOnce(&Claims) -> Vec<String>,
) -> Result<(Principal, Prefetched<'a>), ApiError> {
    let claims = config.verify(bearer_token(request)?, ctx.now_ms)?;
    let mut wanted = vec![keys::session_revoked(&claims.sid)];
    wanted.extend(ahead(&claims));
    let wanted: Vec<&str> = wanted.iter().map(String::as_str).collect();
    let view = Prefetched::read(kv, &wanted);
    let principal = admit(ctx, claims, &view)?;
    Ok((principal, view))
}

/// The caller behind verified `claims`, unless their session's tokens were
/// revoked.
fn admit(ctx: &RequestContext, claims: Claims, kv: &dyn KeyValue) -> Result<Principal, ApiError> {
    if is_revoked(kv, &claims, ctx.now_ms)? {
        return Err(ApiError::InvalidToken);
    }
    ctx.record_user(&claims.sub);
    Ok(Principal {
        user_id: claims.sub.clone(),
        role: claims.role,
        claims,
    })
}

#[cfg(test)]
mod tests;
