use super::*;
use crate::auth::tests::{config, extreme_i64, NOW, OPEN};
use crate::testing::hostile_text;
use proptest::prelude::*;

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
    // `encode` signs through the provider `TokenConfig::new` installs,
    // whichever test runs first.
    hs256::install();
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
        format!(
            "{message}.{}",
            signature.chars().skip(1).collect::<String>()
        ),
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
}
