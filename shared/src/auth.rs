//! Access tokens: issuing and verifying HS256 JWTs, reading the bearer token,
//! and global revocation through the key-value store.
//!
//! Revocation lives in the key-value store so that every component, and every
//! instance sharing the store, refuses a revoked token at once. There is one
//! mark per login session, `rv:s:<sid>` ([`crate::keys::session_revoked`]):
//! the access tokens carrying that `sid` and issued at or before the stored
//! second are void. Ending a session (logout, refresh-token reuse, password
//! change, deletion) stores "every token"; a role change stores "up to now",
//! so the session's next refresh carries the new role. A user-wide revocation
//! writes the mark of each of the user's sessions, which the identity
//! repository lists — so checking a token costs exactly one key-value read,
//! and no revocation is a read-modify-write that a concurrent one could undo.
//! A handler that reads cached data next folds that read into the same call
//! ([`authenticate_reading_ahead`]: one `get-many` of the mark and its keys).
//!
//! A mark lives one access-token lifetime (plus leeway): every token it voids
//! has expired by then, and an ended session can mint no new token (refresh
//! checks the session row in MySQL). If the store cannot be read the request
//! fails with 503: a revoked token must never pass because the cache is down.
//!
//! jsonwebtoken is built without a crypto backend: [`TokenConfig::new`]
//! installs this module's own provider, which knows HS256 and nothing else
//! (every other algorithm is refused before any key is used), so the
//! components carry no asymmetric-signature code. Tokens are signed and
//! checked with jsonwebtoken's JWS primitives (`crypto::sign`/`verify`)
//! around a fixed header: its `encode`/`decode` parse and write the whole
//! JOSE header (JWK, X.509 chains), 130 KB of wasm that an HS256-only API
//! never uses. The tests check both ways that jsonwebtoken's `decode` and
//! `encode` agree with ours.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use serde::{Deserialize, Serialize};

use crate::context::RequestContext;
use crate::error::ApiError;
use crate::http::Request;
use crate::keys;
use crate::kv::{get_unexpired, put_expiring, KeyValue, Prefetched};

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

/// A user's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// An ordinary account.
    User,
    /// May read and change every account, product and order.
    Admin,
}

impl Role {
    /// The role's name as stored and shown.
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Admin => "admin",
        }
    }

    /// Parses a stored or requested role name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "user" => Some(Role::User),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// The claims of an access token (API.md: `sub`, `role`, `jti`, `iat`, `exp`,
/// `iss`, `aud`; plus `sid`, the login session, so logout can end its refresh token).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user id.
    pub sub: String,
    /// The user's role when the token was issued.
    pub role: Role,
    /// Unique token id, for the deny-list.
    pub jti: String,
    /// The login session this token belongs to.
    pub sid: String,
    /// Issued at, seconds since the epoch.
    pub iat: i64,
    /// Expires at, seconds since the epoch.
    pub exp: i64,
    /// Issuer.
    pub iss: String,
    /// Audience.
    pub aud: String,
}

/// Who is calling, once their token has been verified and checked for revocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The user id.
    pub user_id: String,
    /// Their role.
    pub role: Role,
    /// The verified claims.
    pub claims: Claims,
}

impl Principal {
    /// True for admins.
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// True when the caller is `user_id` or an admin.
    pub fn may_access_user(&self, user_id: &str) -> bool {
        self.is_admin() || self.user_id == user_id
    }
}

/// Everything needed to issue and verify tokens, built from Spin variables.
#[derive(Clone)]
pub struct TokenConfig {
    secret: Vec<u8>,
    /// The `iss` claim issued and required.
    pub issuer: String,
    /// The `aud` claim issued and required.
    pub audience: String,
    /// Access-token lifetime in seconds (API.md: 15 minutes by default).
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

/// True when the token's session was ended, or its tokens voided up to a
/// second at or after the token's `iat`.
pub fn is_revoked(kv: &dyn KeyValue, claims: &Claims, now_ms: i64) -> Result<bool, ApiError> {
    let Some(mark) = get_unexpired(kv, &keys::session_revoked(&claims.sid), now_ms)? else {
        return Ok(false);
    };
    let revoked_through = mark
        .as_slice()
        .try_into()
        .map(i64::from_be_bytes)
        .unwrap_or(i64::MAX);
    // `iat` has one-second resolution, so a token issued in the same second
    // as the mark counts as revoked: better one extra refresh than a token
    // minted just before a role change surviving it.
    Ok(claims.iat <= revoked_through)
}

/// Ends every access token of session `sid`, whenever issued (logout, reuse,
/// password change, deletion).
pub fn end_session(
    kv: &dyn KeyValue,
    config: &TokenConfig,
    sid: &str,
    now_ms: i64,
) -> Result<(), ApiError> {
    write_mark(kv, config, sid, i64::MAX, now_ms)
}

/// Voids the access tokens of session `sid` issued up to `now_ms`; the
/// session itself lives on, and its next refresh issues a fresh token (role
/// change, or the caller's own session after a password change).
pub fn void_session_tokens(
    kv: &dyn KeyValue,
    config: &TokenConfig,
    sid: &str,
    now_ms: i64,
) -> Result<(), ApiError> {
    write_mark(kv, config, sid, now_ms.div_euclid(1000), now_ms)
}

fn write_mark(
    kv: &dyn KeyValue,
    config: &TokenConfig,
    sid: &str,
    through_secs: i64,
    now_ms: i64,
) -> Result<(), ApiError> {
    // A minute beyond the longest token life covers a login or refresh that
    // was still in flight, minting its token, when the mark was written.
    let until_ms = now_ms + (config.access_ttl_secs + LEEWAY_SECS + 60) * 1000;
    put_expiring(
        kv,
        &keys::session_revoked(sid),
        &through_secs.to_be_bytes(),
        until_ms,
    )?;
    Ok(())
}

/// jsonwebtoken's crypto, HS256 only, over the `hmac` and `sha2` crates.
mod hs256 {
    use hmac::{Hmac, Mac};
    use jsonwebtoken::crypto::{CryptoProvider, JwtSigner, JwtVerifier, KeyUtils};
    use jsonwebtoken::errors::{ErrorKind, Result};
    use jsonwebtoken::signature::{self, Signer, Verifier};
    use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, EncodingKey};
    use sha2::Sha256;

    type HmacSha256 = Hmac<Sha256>;

    /// The provider: JWKs are never used here, so their helpers stay unimplemented.
    static PROVIDER: CryptoProvider = CryptoProvider {
        signer_factory,
        verifier_factory,
        key_utils: KeyUtils::new_unimplemented(),
    };

    /// Makes [`PROVIDER`] jsonwebtoken's process-wide default. Idempotent: a
    /// second call finds it installed (jsonwebtoken keeps the first, and no
    /// other provider exists in this build), so the result is ignored.
    pub(super) fn install() {
        let _ = PROVIDER.install_default();
    }

    /// A MAC keyed with an HMAC secret, for HS256 only: any other algorithm
    /// or key kind is refused, so a token naming RS256 or `none` cannot be
    /// checked against the secret as if it were a public key.
    fn keyed(alg: &Algorithm, family: AlgorithmFamily, secret: &[u8]) -> Result<HmacSha256> {
        if *alg != Algorithm::HS256 || family != AlgorithmFamily::Hmac {
            return Err(ErrorKind::InvalidAlgorithm.into());
        }
        HmacSha256::new_from_slice(secret).map_err(|_| ErrorKind::InvalidKeyFormat.into())
    }

    fn signer_factory(alg: &Algorithm, key: &EncodingKey) -> Result<Box<dyn JwtSigner>> {
        Ok(Box::new(Hs256(keyed(alg, key.family(), key.as_bytes())?)))
    }

    fn verifier_factory(alg: &Algorithm, key: &DecodingKey) -> Result<Box<dyn JwtVerifier>> {
        Ok(Box::new(Hs256(keyed(
            alg,
            key.family(),
            key.try_get_as_bytes()?,
        )?)))
    }

    /// HS256 with its key already absorbed; cloned per message.
    struct Hs256(HmacSha256);

    impl Signer<Vec<u8>> for Hs256 {
        fn try_sign(&self, msg: &[u8]) -> std::result::Result<Vec<u8>, signature::Error> {
            let mut mac = self.0.clone();
            mac.update(msg);
            Ok(mac.finalize().into_bytes().to_vec())
        }
    }

    impl Verifier<Vec<u8>> for Hs256 {
        fn verify(
            &self,
            msg: &[u8],
            signature: &Vec<u8>,
        ) -> std::result::Result<(), signature::Error> {
            let mut mac = self.0.clone();
            mac.update(msg);
            // `verify_slice` compares in constant time.
            mac.verify_slice(signature)
                .map_err(signature::Error::from_source)
        }
    }

    impl JwtSigner for Hs256 {
        fn algorithm(&self) -> Algorithm {
            Algorithm::HS256
        }
    }

    impl JwtVerifier for Hs256 {
        fn algorithm(&self) -> Algorithm {
            Algorithm::HS256
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Method;
    use crate::kv::{FailingKv, MemoryKv};

    const NOW: i64 = 1_800_000_000_000;
    /// The end of a session that outlives every token in a test.
    const OPEN: i64 = i64::MAX;

    fn config() -> TokenConfig {
        TokenConfig::new(&"s".repeat(32), "spin-api", "spin-api-clients", 900).unwrap()
    }

    fn request_with(token: &str) -> Request {
        Request::new(Method::Get, "/").with_header("authorization", &format!("Bearer {token}"))
    }

    fn authenticate_at(token: &str, kv: &dyn KeyValue, now_ms: i64) -> Result<Principal, ApiError> {
        let request = request_with(token);
        authenticate(
            &RequestContext::new(&request, now_ms),
            &request,
            &config(),
            kv,
        )
    }

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
    fn short_secret_is_a_configuration_error() {
        assert!(TokenConfig::new("short", "i", "a", 900).is_err());
    }

    #[test]
    fn expired_token_is_refused() {
        let (token, _) = config().issue("u1", Role::User, "s1", NOW, OPEN).unwrap();
        let later = NOW + (900 + LEEWAY_SECS) * 1000;
        assert_eq!(config().verify(&token, later), Err(ApiError::InvalidToken));
    }

    #[test]
    fn token_with_alg_none_is_refused() {
        let (token, _) = config().issue("u1", Role::User, "s1", NOW, OPEN).unwrap();
        let payload = token.split('.').nth(1).unwrap();
        // {"alg":"none","typ":"JWT"}
        let forged = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{payload}.");
        assert_eq!(config().verify(&forged, NOW), Err(ApiError::InvalidToken));
    }

    #[test]
    fn token_claiming_an_asymmetric_algorithm_is_refused() {
        let (token, _) = config().issue("u1", Role::User, "s1", NOW, OPEN).unwrap();
        let (_, rest) = token.split_once('.').unwrap();
        // {"alg":"RS256","typ":"JWT"}, with the HS256 signature left in place:
        // the secret must never be taken for an RSA public key.
        let forged = format!("eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.{rest}");
        assert_eq!(config().verify(&forged, NOW), Err(ApiError::InvalidToken));
    }

    #[test]
    fn the_provider_signs_and_verifies_hs256_only() {
        use jsonwebtoken::crypto::{sign, verify};
        let _ = config();
        let key = EncodingKey::from_secret(&[7; 32]);
        let signature = sign(b"message", &key, Algorithm::HS256).unwrap();
        let decoding = DecodingKey::from_secret(&[7; 32]);
        assert!(verify(&signature, b"message", &decoding, Algorithm::HS256).unwrap());
        assert!(!verify(&signature, b"massage", &decoding, Algorithm::HS256).unwrap());
        for other in [
            Algorithm::HS384,
            Algorithm::HS512,
            Algorithm::RS256,
            Algorithm::EdDSA,
        ] {
            assert!(sign(b"message", &key, other).is_err(), "{other:?}");
            assert!(verify(&signature, b"message", &decoding, other).is_err());
        }
    }

    #[test]
    fn issued_tokens_pass_jsonwebtokens_own_validation() {
        use jsonwebtoken::{decode, Validation};
        let (token, claims) = config().issue("u1", Role::User, "s1", NOW, OPEN).unwrap();
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&["spin-api"]);
        validation.set_audience(&["spin-api-clients"]);
        validation.validate_exp = false;
        let key = DecodingKey::from_secret("s".repeat(32).as_bytes());
        let decoded = decode::<Claims>(&token, &key, &validation).unwrap();
        assert_eq!(decoded.claims, claims);
    }

    /// Signs `claims` (any JSON) as jsonwebtoken's `encode` would, with our secret.
    fn foreign_token(claims: &serde_json::Value) -> String {
        let _ = config();
        let key = EncodingKey::from_secret("s".repeat(32).as_bytes());
        jsonwebtoken::encode(&jsonwebtoken::Header::new(Algorithm::HS256), claims, &key).unwrap()
    }

    fn claims_json(now_secs: i64) -> serde_json::Value {
        serde_json::json!({
            "sub": "u1", "role": "user", "jti": "j", "sid": "s1", "iat": now_secs,
            "exp": now_secs + 900, "iss": "spin-api", "aud": "spin-api-clients",
        })
    }

    #[test]
    fn tokens_encoded_by_jsonwebtoken_verify_here() {
        let token = foreign_token(&claims_json(NOW / 1000));
        let claims = config().verify(&token, NOW).unwrap();
        assert_eq!((claims.sub.as_str(), claims.sid.as_str()), ("u1", "s1"));
    }

    #[test]
    fn token_missing_a_claim_is_refused() {
        for claim in ["sub", "exp", "iss", "aud", "sid", "role"] {
            let mut claims = claims_json(NOW / 1000);
            claims.as_object_mut().unwrap().remove(claim);
            let token = foreign_token(&claims);
            assert_eq!(
                config().verify(&token, NOW),
                Err(ApiError::InvalidToken),
                "{claim}"
            );
        }
    }

    #[test]
    fn malformed_tokens_are_refused() {
        let (token, _) = config().issue("u1", Role::User, "s1", NOW, OPEN).unwrap();
        let (message, signature) = token.rsplit_once('.').unwrap();
        for bad in [
            format!("{token}.x"),
            message.to_string(),
            format!("{message}.{signature}="),
            format!("{message}!.{signature}"),
            format!("{message}.{}", &signature[1..]),
            String::new(),
            "..".to_string(),
        ] {
            assert_eq!(
                config().verify(&bad, NOW),
                Err(ApiError::InvalidToken),
                "{bad}"
            );
        }
    }

    #[test]
    fn token_from_another_secret_is_refused() {
        let other = TokenConfig::new(&"t".repeat(32), "spin-api", "spin-api-clients", 900).unwrap();
        let (token, _) = other.issue("u1", Role::User, "s1", NOW, OPEN).unwrap();
        assert_eq!(config().verify(&token, NOW), Err(ApiError::InvalidToken));
    }

    #[test]
    fn wrong_issuer_or_audience_is_refused() {
        let iss = TokenConfig::new(&"s".repeat(32), "other", "spin-api-clients", 900).unwrap();
        let aud = TokenConfig::new(&"s".repeat(32), "spin-api", "other", 900).unwrap();
        for cfg in [iss, aud] {
            let (token, _) = cfg.issue("u1", Role::User, "s1", NOW, OPEN).unwrap();
            assert_eq!(config().verify(&token, NOW), Err(ApiError::InvalidToken));
        }
    }

    #[test]
    fn missing_or_non_bearer_authorization_is_refused() {
        assert!(bearer_token(&Request::new(Method::Get, "/")).is_err());
        let basic = Request::new(Method::Get, "/").with_header("authorization", "Basic abc");
        assert!(bearer_token(&basic).is_err());
    }

    #[test]
    fn ended_session_refuses_its_tokens_and_its_key_is_stored() {
        let kv = MemoryKv::new();
        let (token, _) = config().issue("u1", Role::User, "s1", NOW, OPEN).unwrap();
        end_session(&kv, &config(), "s1", NOW).unwrap();
        assert!(kv.contains("rv:s:s1"));
        let err = authenticate_at(&token, &kv, NOW).unwrap_err();
        assert_eq!(err, ApiError::InvalidToken);
    }

    #[test]
    fn ended_session_also_refuses_a_token_minted_after_the_mark() {
        let kv = MemoryKv::new();
        end_session(&kv, &config(), "s1", NOW).unwrap();
        let (late, _) = config()
            .issue("u1", Role::User, "s1", NOW + 5_000, OPEN)
            .unwrap();
        assert!(authenticate_at(&late, &kv, NOW + 5_000).is_err());
    }

    #[test]
    fn ending_one_session_leaves_the_users_other_sessions_alone() {
        let kv = MemoryKv::new();
        let (other, _) = config().issue("u1", Role::User, "s2", NOW, OPEN).unwrap();
        end_session(&kv, &config(), "s1", NOW).unwrap();
        assert!(authenticate_at(&other, &kv, NOW).is_ok());
    }

    #[test]
    fn voided_tokens_die_but_the_sessions_newer_tokens_pass() {
        let kv = MemoryKv::new();
        let (old, _) = config().issue("u1", Role::User, "s1", NOW, OPEN).unwrap();
        void_session_tokens(&kv, &config(), "s1", NOW + 500).unwrap();
        let (new, _) = config()
            .issue("u1", Role::User, "s1", NOW + 1_000, OPEN)
            .unwrap();
        assert!(authenticate_at(&old, &kv, NOW + 1_000).is_err());
        assert!(authenticate_at(&new, &kv, NOW + 1_000).is_ok());
    }

    #[test]
    fn a_mark_outlives_every_token_it_voids() {
        let kv = MemoryKv::new();
        let (token, claims) = config().issue("u1", Role::User, "s1", NOW, OPEN).unwrap();
        end_session(&kv, &config(), "s1", NOW).unwrap();
        let last_valid_ms = (claims.exp + LEEWAY_SECS) * 1000 - 1;
        assert!(authenticate_at(&token, &kv, last_valid_ms).is_err());
    }

    #[test]
    fn unreadable_revocation_store_is_503_not_a_pass() {
        let (token, _) = config().issue("u1", Role::User, "s1", NOW, OPEN).unwrap();
        let err = authenticate_at(&token, &FailingKv, NOW).unwrap_err();
        assert_eq!(err.status(), 503);
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

    #[test]
    fn a_token_near_its_sessions_end_expires_with_the_session() {
        let ends = NOW + 120_000;
        let (token, claims) = config().issue("u1", Role::User, "s1", NOW, ends).unwrap();
        assert_eq!(claims.exp, ends / 1000 - LEEWAY_SECS);
        assert!(config().verify(&token, ends - 1).is_ok());
        assert_eq!(config().verify(&token, ends), Err(ApiError::InvalidToken));
    }

    #[test]
    fn a_session_within_the_leeway_of_its_end_mints_no_token() {
        let ends = NOW + LEEWAY_SECS * 1000;
        assert_eq!(
            config()
                .issue("u1", Role::User, "s1", NOW, ends)
                .unwrap_err(),
            ApiError::InvalidToken
        );
    }

    #[test]
    fn a_signed_token_expiring_at_the_end_of_time_does_not_overflow() {
        // Found by `tokens_signed_with_our_secret_verify_whatever_their_times`:
        // `exp + LEEWAY_SECS` overflowed (a panic) for `exp` near `i64::MAX`.
        let mut claims = claims_json(NOW / 1000);
        claims["exp"] = (i64::MAX - 29).into();
        let claims = config().verify(&foreign_token(&claims), NOW).unwrap();
        assert_eq!(claims.exp, i64::MAX - 29);
    }

    #[test]
    fn a_lifetime_too_long_for_milliseconds_is_a_configuration_error() {
        // Found by `any_accepted_configuration_issues_verifies_and_revokes_at_any_time`:
        // a lifetime near `i64::MAX` was accepted, and ending a session then
        // overflowed computing how long its mark lives.
        let secret = "s".repeat(32);
        let err = TokenConfig::new(&secret, "i", "a", 9_223_372_036_854_775_707).unwrap_err();
        assert_eq!(err.status(), 500);
        let longest = crate::config::MAX_DURATION_SECS;
        let config = TokenConfig::new(&secret, "i", "a", longest).unwrap();
        assert!(end_session(&MemoryKv::new(), &config, "s1", NOW).is_ok());
    }

    use crate::testing::hostile_text;
    use proptest::prelude::*;

    /// Token-shaped text: dot-separated base64url-ish parts, our own header,
    /// or hostile text.
    fn token_like() -> impl Strategy<Value = String> {
        let part = prop_oneof![
            "[A-Za-z0-9_-]{0,60}",
            Just(HEADER.to_string()),
            hostile_text(),
        ];
        prop::collection::vec(part, 1..5).prop_map(|parts| parts.join("."))
    }

    /// The last millisecond of year 9999, the latest time the API shows.
    const LAST_MS: i64 = 253_402_300_799_999;

    /// Any `i64`, often at or near its ends, where arithmetic overflows.
    fn extreme_i64() -> impl Strategy<Value = i64> {
        prop_oneof![
            any::<i64>(),
            Just(NOW / 1000),
            Just(NOW),
            i64::MAX - 100..=i64::MAX,
            i64::MIN..=i64::MIN + 100,
        ]
    }

    /// One change to `token`: a character replaced, removed or inserted.
    fn altered(token: &str, index: usize, edit: u8, c: char) -> Option<String> {
        let chars: Vec<char> = token.chars().collect();
        let at = index % (chars.len() + 1);
        let mut out = chars.clone();
        match edit % 3 {
            0 if at < chars.len() && chars[at] != c => out[at] = c,
            1 if at < chars.len() => {
                out.remove(at);
            }
            2 => out.insert(at, c),
            _ => return None,
        }
        Some(out.into_iter().collect())
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

        #[test]
        fn no_arbitrary_string_is_a_valid_token(
            token in prop_oneof![token_like(), hostile_text(), any::<String>()],
            now_ms in prop_oneof![Just(NOW), any::<i64>()],
        ) {
            prop_assert_eq!(config().verify(&token, now_ms), Err(ApiError::InvalidToken));
        }

        #[test]
        fn a_token_altered_by_one_character_is_refused(
            index in any::<usize>(),
            edit in any::<u8>(),
            c in prop_oneof![prop::sample::select(vec!['A', 'a', '0', '-', '_', '.', '=']), any::<char>()],
        ) {
            let (token, _) = config().issue("u1", Role::User, "s1", NOW, OPEN).unwrap();
            if let Some(forged) = altered(&token, index, edit, c) {
                prop_assert_eq!(config().verify(&forged, NOW), Err(ApiError::InvalidToken), "{}", forged);
            }
        }

        #[test]
        fn tokens_signed_with_our_secret_verify_whatever_their_times(
            iat in extreme_i64(),
            exp in extreme_i64(),
            now_ms in extreme_i64(),
        ) {
            let mut claims = claims_json(0);
            claims["iat"] = iat.into();
            claims["exp"] = exp.into();
            let token = foreign_token(&claims);
            match config().verify(&token, now_ms) {
                Ok(verified) => {
                    prop_assert_eq!(verified.exp, exp);
                    prop_assert!(i128::from(exp) + i128::from(LEEWAY_SECS) > i128::from(now_ms.div_euclid(1000)));
                }
                Err(e) => prop_assert_eq!(e, ApiError::InvalidToken),
            }
        }

        #[test]
        fn any_accepted_configuration_issues_verifies_and_revokes_at_any_time(
            secret in prop_oneof![hostile_text(), "[a-z]{32,40}"],
            issuer in hostile_text(),
            ttl in extreme_i64(),
            now_ms in 0..=LAST_MS,
            session_ends_at_ms in extreme_i64(),
        ) {
            let Ok(config) = TokenConfig::new(&secret, &issuer, "aud", ttl) else {
                return Ok(());
            };
            match config.issue("u1", Role::User, "s1", now_ms, session_ends_at_ms) {
                Ok((token, claims)) => {
                    prop_assert!(claims.iat < claims.exp);
                    prop_assert_eq!(config.verify(&token, now_ms), Ok(claims));
                }
                Err(e) => prop_assert_eq!(e, ApiError::InvalidToken),
            }
            let kv = MemoryKv::new();
            prop_assert!(end_session(&kv, &config, "s1", now_ms).is_ok());
            prop_assert!(void_session_tokens(&kv, &config, "s1", now_ms).is_ok());
        }

        #[test]
        fn role_names_parse_back_to_themselves_and_nothing_else_is_a_role(
            name in prop_oneof![Just("user".to_string()), Just("admin".to_string()), hostile_text()]
        ) {
            match Role::parse(&name) {
                Some(role) => prop_assert_eq!(role.as_str(), name.as_str()),
                None => prop_assert!(name != "user" && name != "admin"),
            }
        }
    }
}
