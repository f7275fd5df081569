//! Issuing and verifying access tokens: [`TokenConfig`], built once from
//! Spin variables, signs HS256 JWTs and checks them.
//!
//! Tokens are signed and checked with jsonwebtoken's JWS primitives
//! (`crypto::sign`/`verify`) around a fixed header: its `encode`/`decode`
//! parse and write the whole JOSE header (JWK, X.509 chains), 130 KB of wasm
//! that an HS256-only API never uses. The tests check both ways that
//! jsonwebtoken's `decode` and `encode` agree with ours.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use serde::Deserialize;

use super::hs256;
use super::principal::{Claims, Role};
use crate::error::ApiError;

/// Clock skew tolerated on `exp`, in seconds. A session must outlive it to
/// mint any token ([`TokenConfig::issue`]).
pub const LEEWAY_SECS: i64 = 30;

/// The secret's minimum length; shorter HS256 keys can be brute-forced.
pub const MIN_SECRET_BYTES: usize = 32;

/// The encoded header of every token issued: `{"alg":"HS256","typ":"JWT"}`.
const HEADER: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9";

/// The one header field checked: which algorithm the token claims.
#[derive(Deserialize)]
struct JoseHeader {
    alg: String,
}

/// Everything needed to issue and verify tokens, built from Spin variables.
#[derive(Clone)]
pub struct TokenConfig {
    secret: Vec<u8>,
    /// The `iss` claim issued and required.
    pub issuer: String,
    /// The `aud` claim issued and required.
    pub audience: String,
    /// Access-token lifetime in seconds (docs/API.md: 15 minutes by default).
    pub access_ttl_secs: i64,
}

impl std::fmt::Debug for TokenConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenConfig")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("access_ttl_secs", &self.access_ttl_secs)
            .finish_non_exhaustive()
    }
}

impl TokenConfig {
    /// Checks the configuration: a secret shorter than [`MIN_SECRET_BYTES`] or
    /// a lifetime that is not positive or exceeds
    /// [`crate::config::MAX_DURATION_SECS`] is a deployment error (500, logged).
    pub fn new(
        secret: &str,
        issuer: &str,
        audience: &str,
        access_ttl_secs: i64,
    ) -> Result<Self, ApiError> {
        if secret.len() < MIN_SECRET_BYTES {
            return Err(ApiError::Internal(format!(
                "configuration: jwt_secret must be at least {MIN_SECRET_BYTES} bytes"
            )));
        }
        if access_ttl_secs <= 0 {
            return Err(ApiError::Internal(
                "configuration: access token lifetime must be positive".into(),
            ));
        }
        // Bounded: `issue` adds the lifetime to the clock, and revocation
        // marks live `(lifetime + leeway) * 1000` ms; an unbounded one
        // overflows `i64` (a panic traps the component).
        if access_ttl_secs > crate::config::MAX_DURATION_SECS {
            return Err(ApiError::Internal(format!(
                "configuration: access token lifetime must be at most {} seconds",
                crate::config::MAX_DURATION_SECS
            )));
        }
        // jsonwebtoken has no crypto backend in this build: signing and
        // verifying need the provider, and every token passes through here.
        hs256::install();
        Ok(Self {
            secret: secret.as_bytes().to_vec(),
            issuer: issuer.to_string(),
            audience: audience.to_string(),
            access_ttl_secs,
        })
    }

    /// Signs a new access token for `user_id` in session `session_id`, which
    /// ends for good at `session_ends_at_ms` (its absolute lifetime).
    ///
    /// The token expires `access_ttl_secs` from now, or earlier so that it is
    /// refused from the session's end on, leeway included: no component
    /// knows the session's lifetime, but every one checks `exp`. A session
    /// with less than the leeway left can mint no token: 401 `invalid_token`.
    pub fn issue(
        &self,
        user_id: &str,
        role: Role,
        session_id: &str,
        now_ms: i64,
        session_ends_at_ms: i64,
    ) -> Result<(String, Claims), ApiError> {
        let iat = now_ms.div_euclid(1000);
        let exp = (iat + self.access_ttl_secs).min(
            session_ends_at_ms
                .div_euclid(1000)
                .saturating_sub(LEEWAY_SECS),
        );
        if exp <= iat {
            return Err(ApiError::InvalidToken);
        }
        let jti = hex::encode(crate::id::random_bytes::<16>()?);
        let claims = Claims {
            sub: user_id.to_string(),
            role,
            jti,
            sid: session_id.to_string(),
            iat,
            exp,
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
        };
        let payload = serde_json::to_vec(&claims)
            .map_err(|e| ApiError::Internal(format!("jwt claims: {e}")))?;
        let message = format!("{HEADER}.{}", URL_SAFE_NO_PAD.encode(payload));
        let signature = jsonwebtoken::crypto::sign(
            message.as_bytes(),
            &EncodingKey::from_secret(&self.secret),
            Algorithm::HS256,
        )
        .map_err(|e| ApiError::Internal(format!("jwt sign: {e}")))?;
        let token = format!("{message}.{signature}");
        Ok((token, claims))
    }

    /// Verifies the token's form (three base64url parts), algorithm (HS256
    /// only: `none` and every other algorithm are refused), signature, then
    /// claims: all present, `iss` and `aud` ours, `exp` not passed at `now_ms`.
    pub fn verify(&self, token: &str, now_ms: i64) -> Result<Claims, ApiError> {
        let claims = self.checked_claims(token).ok_or(ApiError::InvalidToken)?;
        if claims.iss != self.issuer
            || claims.aud != self.audience
            // Expiry against the request's clock, so tests can fix time.
            // Saturating: `exp` is whatever a signed token says, and near
            // `i64::MAX` the sum would overflow (a panic traps the component).
            || claims.exp.saturating_add(LEEWAY_SECS) <= now_ms.div_euclid(1000)
        {
            return Err(ApiError::InvalidToken);
        }
        Ok(claims)
    }

    /// The claims of a well-formed HS256 token signed with our secret.
    fn checked_claims(&self, token: &str) -> Option<Claims> {
        // The signed message is the two encoded parts as received.
        let (message, signature) = token.rsplit_once('.')?;
        let (header, payload) = message.split_once('.')?;
        if payload.contains('.') {
            return None;
        }
        let header: JoseHeader =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).ok()?).ok()?;
        if header.alg != "HS256" {
            return None;
        }
        let valid = jsonwebtoken::crypto::verify(
            signature,
            message.as_bytes(),
            &DecodingKey::from_secret(&self.secret),
            Algorithm::HS256,
        )
        .ok()?;
        if !valid {
            return None;
        }
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()
    }
}

#[cfg(test)]
mod tests;
