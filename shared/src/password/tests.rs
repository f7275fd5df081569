use super::*;

/// A cheap cost for tests that only need "some other parameters".
const TINY: Cost = Cost {
    memory_kib: 64,
    passes: 1,
    lanes: 1,
};

#[test]
fn hash_verifies_the_right_password_only() {
    let pw = Password::parse("correct horse", None).unwrap();
    let hash = hash_password(&pw).unwrap();
    assert!(hash.starts_with("$argon2id$v=19$m=7168,t=5,p=1$"));
    assert!(verify_password(&hash, "correct horse"));
    assert!(!verify_password(&hash, "wrong horse"));
    assert!(!needs_rehash(&hash));
}

#[test]
fn current_cost_is_an_owasp_argon2id_configuration() {
    // OWASP's Password Storage Cheat Sheet: argon2id with one of these
    // (m KiB, t), p = 1, all "an equal level of defense".
    let owasp = [(47104, 1), (19456, 2), (12288, 3), (9216, 4), (7168, 5)];
    for cost in [CURRENT, PREVIOUS] {
        assert!(
            owasp.contains(&(cost.memory_kib, cost.passes)) && cost.lanes == 1,
            "{cost:?}"
        );
    }
    assert_ne!(CURRENT, PREVIOUS);
}

#[test]
fn dummy_hash_costs_what_a_real_one_does() {
    let dummy = PasswordHash::new(DUMMY_HASH).unwrap();
    let pw = Password::parse("correct horse", None).unwrap();
    let real = hash_password(&pw).unwrap();
    let real = PasswordHash::new(&real).unwrap();
    assert_eq!(dummy.algorithm, real.algorithm);
    assert_eq!(dummy.version, real.version);
    assert_eq!(dummy.params, real.params);
    assert_eq!(dummy.salt.map(|s| s.len()), real.salt.map(|s| s.len()));
    assert_eq!(dummy.hash.map(|h| h.len()), real.hash.map(|h| h.len()));
    assert!(!needs_rehash(DUMMY_HASH));
    assert!(!verify_against_dummy("anything"));
}

#[test]
fn hashes_with_other_parameters_verify_and_need_a_rehash() {
    for cost in [PREVIOUS, TINY] {
        let old = hash_password_with("correct horse", cost).unwrap();
        assert!(old.contains(&format!(
            "$m={},t={},p={}$",
            cost.memory_kib, cost.passes, cost.lanes
        )));
        assert!(verify_password(&old, "correct horse"));
        assert!(!verify_password(&old, "wrong horse"));
        assert!(needs_rehash(&old), "{old}");
        let new = rehash("correct horse").unwrap();
        assert!(!needs_rehash(&new));
        assert!(verify_password(&new, "correct horse"));
    }
}

#[test]
fn rehash_takes_passwords_todays_rules_would_refuse() {
    // Set under older rules (shorter than 8 characters today): still
    // verifies, and is re-hashed rather than refused.
    let old = hash_password_with("short", TINY).unwrap();
    assert!(verify_password(&old, "short"));
    let new = rehash("short").unwrap();
    assert!(verify_password(&new, "short"));
}

#[test]
fn other_algorithms_versions_and_lengths_need_a_rehash() {
    let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
    let params =
        |len| Params::new(CURRENT.memory_kib, CURRENT.passes, CURRENT.lanes, Some(len)).unwrap();
    let with = |algorithm, version, len| {
        Argon2::new(algorithm, version, params(len))
            .hash_password(b"pw", &salt)
            .unwrap()
            .to_string()
    };
    let current = with(Algorithm::Argon2id, Version::V0x13, 32);
    assert!(!needs_rehash(&current));
    for other in [
        with(Algorithm::Argon2i, Version::V0x13, 32),
        with(Algorithm::Argon2d, Version::V0x13, 32),
        with(Algorithm::Argon2id, Version::V0x10, 32),
        with(Algorithm::Argon2id, Version::V0x13, 16),
    ] {
        assert!(verify_password(&other, "pw"), "{other}");
        assert!(needs_rehash(&other), "{other}");
    }
}

#[test]
fn garbage_hash_never_verifies() {
    assert!(!verify_password("not a hash", "x"));
    assert!(needs_rehash("not a hash"));
}
