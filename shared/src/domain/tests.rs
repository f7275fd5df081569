use super::*;
use crate::http::Method;

#[test]
fn email_is_trimmed_and_lower_cased() {
    assert_eq!(
        Email::parse("  Ann@Example.COM ").unwrap().as_str(),
        "ann@example.com"
    );
}

#[test]
fn malformed_emails_are_refused() {
    for bad in [
        "",
        "a",
        "a@b",
        "@b.c",
        "a@.c",
        "a b@c.d",
        "a@b..c",
        &format!("{}@b.cd", "a".repeat(250)),
    ] {
        assert!(Email::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn password_length_is_counted_in_characters() {
    assert!(Password::parse("ééééééé", None).is_err());
    assert!(Password::parse("éééééééé", None).is_ok());
    assert!(Password::parse(&"x".repeat(129), None).is_err());
}

#[test]
fn password_equal_to_email_is_refused() {
    let email = Email::parse("someone@example.com").unwrap();
    assert!(Password::parse("Someone@Example.com", Some(&email)).is_err());
}

#[test]
fn name_refuses_control_characters_and_blank() {
    assert!(Name::parse("a\u{7}b").is_err());
    assert!(Name::parse("   ").is_err());
    assert_eq!(Name::parse("  Ann ").unwrap().as_str(), "Ann");
}

#[test]
fn name_refuses_bidi_overrides_and_zero_width_characters() {
    for bad in [
        "Ann\u{202E}gpj.exe",
        "A\u{200B}nn",
        "Ann\u{200D}",
        "\u{FEFF}Ann",
        "Ann\u{2066}x",
        "Ann\u{E0041}",
        "Ann\u{00AD}",
    ] {
        assert!(Name::parse(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn name_refuses_line_separators_hangul_fillers_and_the_grapheme_joiner() {
    for bad in [
        "Ann\u{2028}Bob",
        "Ann\u{2029}Bob",
        "\u{3164}\u{3164}",
        "\u{115F}",
        "Ann\u{FFA0}",
        "A\u{034F}nn",
    ] {
        assert!(Name::parse(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn name_keeps_visible_unicode() {
    assert!(Name::parse("Zoë Ångström 李小龍 محمد").is_ok());
    // Emoji with a variation selector and a zero-width-joined family
    // are refused only for the joiner, not for the selector.
    assert!(Name::parse("I \u{2764}\u{FE0F} Rust").is_ok());
}

#[test]
fn format_table_holds_170_code_points() {
    let count: u32 = FORMAT_CHARACTERS
        .iter()
        .map(|&(a, b)| b as u32 - a as u32 + 1)
        .sum();
    assert_eq!(count, 170);
    assert!(FORMAT_CHARACTERS.windows(2).all(|w| w[0].1 < w[1].0));
}

#[test]
fn pagination_defaults_and_bounds() {
    let p = Pagination::from_request(&Request::new(Method::Get, "/x")).unwrap();
    assert_eq!((p.page, p.limit), (1, 20));
    let err =
        Pagination::from_request(&Request::new(Method::Get, "/x?page=0&limit=101")).unwrap_err();
    match err {
        ApiError::Validation(e) => assert_eq!(e.len(), 2),
        other => panic!("{other:?}"),
    }
}

use crate::testing::hostile_text;
use proptest::prelude::*;

/// Text shaped like an email address (hostile parts around an `@` and
/// dots), so that the properties of accepted addresses get exercised.
fn email_like() -> impl Strategy<Value = String> {
    // Letters of every script and case: Σ, İ, ẞ and the Kelvin sign
    // lower-case to something else, İ to two characters.
    let local = prop_oneof![
        4 => r"[\p{L}\p{N}ΣİẞK!#$%&'*+/=?^_`{|}~-]{1,24}",
        // Around the 64-byte limit of the local part.
        1 => r"[a-zé]{60,66}",
        1 => r"[A-Za-z0-9]{1,8}(\.[\p{L}\p{N}_+-]{1,8}){0,2}",
        1 => hostile_text(),
    ];
    let label = || {
        prop_oneof![
            3 => r"[\p{L}\p{N}ΣİẞK]([\p{L}\p{N}-]{0,20}[\p{L}\p{N}])?",
            1 => hostile_text(),
        ]
    };
    (local, label(), label(), " {0,2}", " {0,2}").prop_map(|(local, label, tld, before, after)| {
        format!("{before}{local}@{label}.{tld}{after}")
    })
}

/// Query strings mixing the pagination parameters, numbers of every
/// size and sign, percent escapes and hostile text.
fn pagination_query() -> impl Strategy<Value = String> {
    let value = prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        (0u32..=1_000_001).prop_map(|n| n.to_string()),
        "[+-]?[0-9]{0,12}",
        "%[0-9A-Fa-f]{2}[0-9]{0,3}",
        hostile_text(),
    ];
    let key = prop_oneof![
        "page",
        "limit",
        "Page",
        "page%20",
        "limit%00",
        hostile_text()
    ];
    prop::collection::vec((key, value, prop::bool::ANY), 0..5).prop_map(|pairs| {
        pairs
            .into_iter()
            .map(|(k, v, with_eq)| if with_eq { format!("{k}={v}") } else { k })
            .collect::<Vec<_>>()
            .join("&")
    })
}

proptest! {
    #[test]
    fn any_text_parses_as_an_email_or_an_error(raw in any::<String>()) {
        let _ = Email::parse(&raw);
    }

    #[test]
    fn accepted_emails_are_trimmed_lower_cased_short_and_reparse_to_themselves(
        raw in prop_oneof![email_like(), hostile_text()]
    ) {
        if let Ok(email) = Email::parse(&raw) {
            let s = email.as_str();
            prop_assert_eq!(s, s.trim());
            prop_assert_eq!(s.to_lowercase(), s);
            prop_assert!((1..=254).contains(&s.chars().count()), "{s:?}");
            prop_assert!(!s.chars().any(is_hidden_character), "{s:?}");
            prop_assert_eq!(Email::parse(s), Ok(email.clone()));
        }
    }

    #[test]
    fn passwords_are_accepted_exactly_at_8_to_128_characters(
        raw in prop_oneof![hostile_text(), ".{0,140}"]
    ) {
        let chars = raw.chars().count();
        match Password::parse(&raw, None) {
            Ok(p) => {
                prop_assert!((8..=128).contains(&chars), "{chars} chars accepted");
                prop_assert_eq!(p.expose(), raw.as_str());
            }
            Err(e) => prop_assert!(!(8..=128).contains(&chars), "{chars} chars refused: {e:?}"),
        }
    }

    #[test]
    fn a_password_is_refused_only_when_it_is_the_email(raw in email_like()) {
        let Ok(email) = Email::parse(&raw) else { return Ok(()) };
        let as_password = Password::parse(&raw, Some(&email));
        let len = raw.chars().count();
        prop_assert!(as_password.is_err(), "{len} chars, email {email:?}");
        // Any other text of the right length is fine.
        let other = format!("{raw}!");
        if (8..=128).contains(&other.chars().count()) {
            prop_assert!(Password::parse(&other, Some(&email)).is_ok());
        }
    }

    #[test]
    fn names_never_keep_hidden_characters(raw in prop_oneof![hostile_text(), any::<String>()]) {
        if let Ok(name) = Name::parse(&raw) {
            let s = name.as_str();
            prop_assert!(!s.chars().any(is_hidden_character), "{s:?}");
            prop_assert_eq!(s, s.trim());
            prop_assert!((1..=100).contains(&s.chars().count()), "{s:?}");
            prop_assert_eq!(Name::parse(s), Ok(name.clone()));
        }
    }

    #[test]
    fn names_of_visible_characters_are_kept_trimmed(
        raw in r"[ \t]{0,2}[\p{L}\p{N}\p{So}][\p{L}\p{N}\p{So} '.-]{0,60}[ \t]{0,2}"
    ) {
        // Letters by category, blank on screen: refused on purpose.
        prop_assume!(!raw.chars().any(|c| INVISIBLE_OTHERS.contains(&c)));
        let name = Name::parse(&raw);
        prop_assert_eq!(name.map(|n| n.as_str().to_string()), Ok(raw.trim().to_string()));
    }

    #[test]
    fn pagination_of_any_query_is_in_range_or_a_validation_error(query in pagination_query()) {
        let request = Request::new(Method::Get, &format!("/x?{query}"));
        match Pagination::from_request(&request) {
            Ok(p) => {
                prop_assert!((1..=1_000_000).contains(&p.page), "{p:?}");
                prop_assert!((1..=100).contains(&p.limit), "{p:?}");
                prop_assert_eq!(p.offset(), u64::from(p.page - 1) * u64::from(p.limit));
            }
            Err(ApiError::Validation(errors)) => {
                prop_assert!(!errors.is_empty() && errors.len() <= 2);
                prop_assert!(errors.iter().all(|e| e.field == "page" || e.field == "limit"));
            }
            Err(other) => prop_assert!(false, "{other:?}"),
        }
    }

    #[test]
    fn pagination_keeps_every_in_range_value(page in 1u32..=1_000_000, limit in 1u32..=100) {
        let request = Request::new(Method::Get, &format!("/x?limit={limit}&page={page}"));
        prop_assert_eq!(
            Pagination::from_request(&request).ok(),
            Some(Pagination { page, limit })
        );
    }
}
