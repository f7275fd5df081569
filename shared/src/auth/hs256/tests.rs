use super::*;

#[test]
fn the_provider_signs_and_verifies_hs256_only() {
    use jsonwebtoken::crypto::{sign, verify};
    install();
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
