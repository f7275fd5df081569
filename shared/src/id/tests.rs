use super::*;

#[test]
fn ids_are_32_hex_chars_and_sort_by_time() {
    let a = new_id(1_000).unwrap();
    let b = new_id(2_000).unwrap();
    assert!(is_valid_id(&a));
    assert!(a < b);
}

#[test]
fn ids_do_not_repeat() {
    assert_ne!(new_id(5).unwrap(), new_id(5).unwrap());
}

#[test]
fn foreign_strings_are_not_ids() {
    assert!(!is_valid_id("../etc/passwd"));
    assert!(!is_valid_id("ABCDEF0123456789ABCDEF0123456789"));
}

use crate::testing::hostile_text;
use proptest::prelude::*;

proptest! {
    #[test]
    fn only_32_lower_case_hex_characters_are_ids(
        s in prop_oneof![hostile_text(), "[0-9a-fA-F]{30,34}", "[0-9a-f\u{e9}]{31,33}"]
    ) {
        let expected = s.chars().count() == 32
            && s.chars().all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c));
        prop_assert_eq!(is_valid_id(&s), expected, "{:?}", s);
    }

    #[test]
    fn new_ids_are_valid_at_any_time(now_ms in any::<i64>()) {
        prop_assert!(is_valid_id(&new_id(now_ms).unwrap()));
    }

    #[test]
    fn ids_made_later_sort_after(a in 0i64..1 << 48, b in 0i64..1 << 48) {
        prop_assume!(a != b);
        let (early, late) = (a.min(b), a.max(b));
        prop_assert!(new_id(early).unwrap() < new_id(late).unwrap());
    }
}
