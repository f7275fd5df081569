use super::*;

#[test]
fn hash_verifies_the_right_password_only() {
    let pw = Password::parse("correct horse", None).unwrap();
    let hash = hash_password(&pw).unwrap();
    assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
    assert!(verify_password(&hash, "correct horse"));
    assert!(!verify_password(&hash, "wrong horse"));
}

#[test]
fn dummy_hash_is_well_formed_with_real_parameters() {
    let parsed = PasswordHash::new(DUMMY_HASH).unwrap();
    assert_eq!(parsed.params.get_str("m"), Some("19456"));
    assert!(!verify_against_dummy("anything"));
}

#[test]
fn garbage_hash_never_verifies() {
    assert!(!verify_password("not a hash", "x"));
}
