use super::*;
use proptest::prelude::*;

#[test]
fn url_userinfo_is_removed() {
    assert_eq!(
        redact("address mysql://root:s3cret@db.example.com:3306/app is not permitted"),
        "address mysql://***@db.example.com:3306/app is not permitted"
    );
    assert_eq!(
        redact("redis://:pw@127.0.0.1:6379/0"),
        "redis://***@127.0.0.1:6379/0"
    );
}

#[test]
fn a_password_containing_at_signs_is_removed_whole() {
    assert_eq!(redact("mysql://u:p@ss@h:1/d"), "mysql://***@h:1/d");
}

#[test]
fn several_urls_are_all_redacted() {
    let out = redact("a mysql://a:b@h/x and redis://c:d@i:1 end");
    assert_eq!(out, "a mysql://***@h/x and redis://***@i:1 end");
}

#[test]
fn urls_without_userinfo_are_unchanged() {
    let text = "connect to mysql://db:3306/app failed: Io(refused)";
    assert_eq!(redact(text), text);
}

#[test]
fn password_parameters_are_masked() {
    assert_eq!(
        redact("mysql://h/d?user=a&password=xyz&x=1"),
        "mysql://h/d?user=a&password=***&x=1"
    );
    assert_eq!(redact("Password: hunter2, more"), "Password: ***, more");
    assert_eq!(redact("passwords are fine"), "passwords are fine");
}

#[test]
fn a_url_right_after_another_scheme_is_still_redacted() {
    assert_eq!(redact("x://mysql://u:pw@h/d"), "x://mysql://***@h/d");
}

#[test]
fn non_ascii_text_passes_through_and_around_secrets() {
    assert_eq!(
        redact("Duplicate entry 'zoë@example.com' for key 'email'"),
        "Duplicate entry 'zoë@example.com' for key 'email'"
    );
    assert_eq!(
        redact("ünïcode password=pässwörd €"),
        "ünïcode password=*** €"
    );
    assert_eq!(redact("€ mysql://ü:pä@hö/d"), "€ mysql://***@hö/d");
}

/// A password as a URL's userinfo may hold (unreserved characters,
/// percent escapes, sub-delimiters) or a `password=` value (anything up
/// to a separator), multi-byte included.
fn secret() -> impl Strategy<Value = String> {
    "[A-Za-z0-9._~!$'*+=%\\u{e9}\\u{5bc6}\\u{1f511}\\u{301}-]{1,24}"
        .prop_filter("long enough to be told apart", |s| s.chars().count() >= 4)
}

proptest! {
    #[test]
    fn any_text_is_redacted_without_panicking(text in any::<String>()) {
        let _ = redact(&text);
    }

    #[test]
    fn redacting_twice_changes_nothing_more(text in any::<String>()) {
        let once = redact(&text);
        prop_assert_eq!(redact(&once), once);
    }

    #[test]
    fn text_without_secrets_comes_back_unchanged(text in "[^:=]*") {
        prop_assert_eq!(redact(&text), text);
    }

    #[test]
    fn a_url_password_never_survives(
        before in any::<String>(),
        after in any::<String>(),
        user in "[a-z\\u{e9}]{1,8}",
        password in secret(),
    ) {
        prop_assume!(!before.contains(&password) && !after.contains(&password));
        let text = format!("{before} mysql://{user}:{password}@db.example:3306/app {after}");
        let out = redact(&text);
        prop_assert!(!out.contains(&password), "{:?} kept the password: {:?}", text, out);
    }

    #[test]
    fn a_password_parameter_never_survives(
        before in any::<String>(),
        after in any::<String>(),
        key in prop::sample::select(SECRET_KEYS),
        upper in any::<bool>(),
        separator in prop::sample::select(&["=", ":", ": "][..]),
        password in secret(),
    ) {
        prop_assume!(!before.contains(&password) && !after.contains(&password));
        let key = if upper { key.to_ascii_uppercase() } else { key.to_string() };
        let text = format!("{before} {key}{separator}{password} {after}");
        let out = redact(&text);
        prop_assert!(!out.contains(&password), "{:?} kept the password: {:?}", text, out);
    }
}
