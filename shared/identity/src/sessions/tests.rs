use super::*;

#[test]
fn refresh_tokens_are_256_bit_hex_and_hash_consistently() {
    let (token, hash) = new_refresh_token().unwrap();
    assert_eq!(token.len(), 64);
    assert_eq!(refresh_token_hash(&token), Some(hash));
    assert_eq!(refresh_token_hash("not-a-token"), None);
}

#[test]
fn newly_found_keeps_only_the_sessions_the_first_look_missed() {
    let before = vec!["a".to_string(), "b".to_string()];
    let after = vec!["b".to_string(), "c".to_string()];
    assert_eq!(newly_found(&before, &after), ["c"]);
}

use proptest::prelude::*;
use shared::testing::hostile_text;

proptest! {
    #[test]
    fn only_64_lower_case_hex_characters_are_refresh_tokens(
        token in prop_oneof![hostile_text(), "[0-9a-fA-F]{62,66}", "[0-9a-f\\u{e9}]{63,65}"]
    ) {
        let well_formed = token.chars().count() == 64
            && token.chars().all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c));
        match refresh_token_hash(&token) {
            Some(hash) => {
                prop_assert!(well_formed, "{token:?}");
                prop_assert_eq!(hash.len(), 64);
                prop_assert_ne!(hash, token);
            }
            None => prop_assert!(!well_formed, "{token:?}"),
        }
    }

    #[test]
    fn newly_found_is_exactly_what_the_second_look_added(
        before in prop::collection::vec(hostile_text(), 0..5),
        after in prop::collection::vec(hostile_text(), 0..5),
    ) {
        let new = newly_found(&before, &after);
        prop_assert!(new.iter().all(|id| after.contains(id) && !before.contains(id)));
        prop_assert!(after.iter().filter(|id| !before.contains(id)).all(|id| new.contains(id)));
    }
}
