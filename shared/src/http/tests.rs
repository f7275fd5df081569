use super::*;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Body {
    name: String,
}

fn post(body: &[u8], content_type: &str) -> Request {
    let mut r = Request::new(Method::Post, "/x").with_header("content-type", content_type);
    r.body = body.to_vec();
    r
}

#[test]
fn json_with_charset_parameter_is_accepted() {
    let r = post(br#"{"name":"a"}"#, "application/json; charset=utf-8");
    assert!(r.json::<Body>().is_ok());
}

#[test]
fn other_content_type_is_415() {
    let r = post(br#"{"name":"a"}"#, "text/plain");
    assert_eq!(r.json::<Body>().unwrap_err().status(), 415);
}

#[test]
fn unknown_field_is_400_invalid_body() {
    let r = post(br#"{"name":"a","admin":true}"#, "application/json");
    assert_eq!(r.json::<Body>().unwrap_err().code(), "invalid_body");
}

#[test]
fn invalid_utf8_is_400() {
    let r = post(b"{\"name\":\"\xff\"}", "application/json");
    assert_eq!(r.json::<Body>().unwrap_err().code(), "invalid_body");
}

#[test]
fn oversized_body_is_413() {
    let r = post(&vec![b' '; MAX_JSON_BODY + 1], "application/json");
    assert_eq!(r.json::<Body>().unwrap_err().status(), 413);
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Login {
    email: String,
    password: String,
}

fn detail_of(body: &[u8]) -> String {
    match post(body, "application/json").json::<Login>().unwrap_err() {
        ApiError::InvalidBody(d) => d,
        other => panic!("{other:?}"),
    }
}

#[test]
fn type_error_names_the_field_but_not_the_value() {
    let d = detail_of(br#"{"email":"a@b.c","password":12345678}"#);
    assert!(d.contains("`password`"), "{d}");
    assert!(d.contains("expected a string"), "{d}");
    assert!(!d.contains("12345678"), "{d}");
}

#[test]
fn string_given_for_a_number_is_not_echoed() {
    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct N {
        n: u8,
    }
    let r = post(br#"{"n":"hunter2-secret"}"#, "application/json");
    let ApiError::InvalidBody(d) = r.json::<N>().unwrap_err() else {
        panic!()
    };
    assert!(!d.contains("hunter2"), "{d}");
    assert!(d.contains("`n`"), "{d}");
}

#[test]
fn unknown_field_is_located_but_not_echoed() {
    let d = detail_of(br#"{"email":"a@b.c","password":"x","s3cr3t-key":1}"#);
    assert!(!d.contains("s3cr3t"), "{d}");
    assert!(d.contains("line 1"), "{d}");
}

#[test]
fn missing_field_is_named() {
    let d = detail_of(br#"{"email":"a@b.c"}"#);
    assert!(d.contains("`password`"), "{d}");
}

#[test]
fn trailing_characters_are_refused() {
    let d = detail_of(br#"{"email":"a","password":"b"} x"#);
    assert!(d.contains("not valid JSON"), "{d}");
}

#[test]
fn query_params_are_percent_decoded() {
    let r = Request::new(Method::Get, "/x?filename=a%20b.png&x=1");
    assert_eq!(r.query_param("filename").as_deref(), Some("a b.png"));
}

use crate::auth::Role;
use crate::testing::hostile_text;
use proptest::prelude::*;

/// Text with the separators a JSON error message is split on mixed in,
/// as a client could write them in a value or a key.
fn text_with_message_separators() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        hostile_text(),
        Just(", expected ".to_string()),
        Just(" at line ".to_string()),
        Just("`".to_string()),
        Just("\"".to_string()),
    ];
    prop::collection::vec(piece, 0..6).prop_map(|pieces| pieces.concat())
}

/// A secret somewhere inside text a client sends.
fn with_secret() -> impl Strategy<Value = String> {
    (
        text_with_message_separators(),
        text_with_message_separators(),
    )
        .prop_map(|(before, after)| format!("{before}hunter2{after}"))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Typed {
    n: u8,
    role: Role,
    tags: Vec<String>,
}

fn invalid_body_detail(body: &serde_json::Value) -> String {
    let request = Request::new(Method::Post, "/x").with_json(body);
    match request.json::<Typed>() {
        Err(ApiError::InvalidBody(detail)) => detail,
        other => panic!("{other:?}"),
    }
}

proptest! {
    #[test]
    fn methods_parse_back_to_the_text_they_were_read_from(
        name in prop_oneof![
            prop::sample::select(vec!["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
                .prop_map(String::from),
            hostile_text(),
        ]
    ) {
        let method = Method::parse(&name);
        prop_assert_eq!(method.as_str(), name.as_str());
        prop_assert_eq!(Method::parse(method.as_str()), method);
    }

    #[test]
    fn a_request_line_splits_into_a_path_without_query_and_the_query(
        path_and_query in prop_oneof![hostile_text(), any::<String>()]
    ) {
        let request = Request::new(Method::Get, &path_and_query);
        prop_assert!(!request.path.contains('?'));
        if path_and_query.contains('?') {
            prop_assert_eq!(format!("{}?{}", request.path, request.query), path_and_query);
        } else {
            prop_assert_eq!(&request.path, &path_and_query);
            prop_assert_eq!(request.query.as_str(), "");
        }
    }

    #[test]
    fn any_query_string_decodes_and_its_first_value_is_the_params(
        query in prop_oneof![hostile_text(), any::<String>()],
        name in prop_oneof![hostile_text(), Just("page".to_string())],
    ) {
        let request = Request { query, ..Request::new(Method::Get, "/x") };
        let pairs = request.query_pairs();
        let first = pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| v.clone());
        prop_assert_eq!(request.query_param(&name), first);
    }

    #[test]
    fn encoded_query_parameters_decode_to_what_was_encoded(
        pairs in prop::collection::vec((hostile_text(), hostile_text()), 0..5)
    ) {
        let query = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&pairs)
            .finish();
        let request = Request::new(Method::Get, &format!("/x?{query}"));
        prop_assert_eq!(request.query_pairs(), pairs.clone());
        for (name, _) in &pairs {
            let first = pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
            prop_assert_eq!(request.query_param(name), first);
        }
    }

    #[test]
    fn header_lookups_ignore_ascii_case_and_pick_the_first_or_last_value(
        headers in prop::collection::vec(
            (prop_oneof![Just("X-Test".to_string()), hostile_text()], hostile_text()),
            0..6,
        ),
        asked in prop_oneof![Just("x-TEST".to_string()), hostile_text()],
    ) {
        let mut request = Request::new(Method::Get, "/");
        for (name, value) in &headers {
            request = request.with_header(name, value);
        }
        let matching: Vec<&str> = headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(&asked))
            .map(|(_, v)| v.as_str())
            .collect();
        prop_assert_eq!(request.header(&asked), matching.first().copied());
        prop_assert_eq!(request.last_header(&asked), matching.last().copied());
    }

    #[test]
    fn any_bytes_as_a_json_body_are_a_value_or_a_client_error(
        body in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..200),
            hostile_text().prop_map(String::into_bytes),
            text_with_message_separators().prop_map(|t| format!("{{\"n\":{t}}}").into_bytes()),
        ],
        content_type in prop_oneof![
            Just("application/json".to_string()),
            Just("Application/JSON ; charset=utf-8".to_string()),
            hostile_text(),
        ],
    ) {
        let mut request = Request::new(Method::Post, "/x").with_header("content-type", &content_type);
        request.body = body;
        let json_type = content_type
            .split(';')
            .next()
            .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"));
        match request.json::<Typed>() {
            Ok(_) => prop_assert!(json_type),
            Err(ApiError::InvalidBody(detail)) => {
                prop_assert!(json_type);
                prop_assert!(!detail.is_empty());
            }
            Err(ApiError::UnsupportedMediaType(_)) => prop_assert!(!json_type),
            Err(other) => prop_assert!(false, "{other:?}"),
        }
    }

    #[test]
    fn invalid_bodies_never_echo_what_the_client_sent(secret in with_secret()) {
        for body in [
            // A string where a number is expected.
            serde_json::json!({ "n": secret, "role": "user", "tags": [] }),
            // An enum variant that does not exist.
            serde_json::json!({ "n": 1, "role": secret, "tags": [] }),
            // An unknown field.
            serde_json::json!({ "n": 1, "role": "user", "tags": [], secret.clone(): 1 }),
            // A wrong type inside an array.
            serde_json::json!({ "n": 1, "role": "user", "tags": ["a", { secret.clone(): secret }] }),
        ] {
            let detail = invalid_body_detail(&body);
            prop_assert!(!detail.contains("hunter2"), "{}", detail);
        }
    }
}

#[test]
fn a_value_holding_the_expected_separator_is_not_echoed() {
    // Found by `invalid_bodies_never_echo_what_the_client_sent`: the
    // expectation was cut at the first ", expected ", which can be the
    // client's own text.
    let detail = invalid_body_detail(&serde_json::json!({
        "n": "x, expected hunter2",
        "role": "user",
        "tags": [],
    }));
    assert!(!detail.contains("hunter2"), "{detail}");
    assert!(detail.ends_with("expected u8."), "{detail}");
}

#[test]
fn if_none_match_handles_star_lists_and_weak_tags() {
    let sha = "ab12";
    assert!(if_none_match_matches("\"ab12\"", sha));
    assert!(if_none_match_matches("*", sha));
    assert!(if_none_match_matches("W/\"ab12\"", sha));
    assert!(if_none_match_matches("\"x\", W/\"y\" ,\"ab12\"", sha));
    assert!(if_none_match_matches("\"a,b\", \"ab12\"", sha));
    assert!(!if_none_match_matches("\"ab1\"", sha));
    assert!(!if_none_match_matches("ab12", sha));
    assert!(!if_none_match_matches("", sha));
    assert!(!if_none_match_matches("\"ab12", sha));
}

/// A strong ETag's opaque value as the app makes it: SHA-256 hex.
fn sha256_hex() -> impl Strategy<Value = String> {
    "[0-9a-f]{64}"
}

/// A well-formed entity tag other than ours, weak or strong, whose opaque
/// part is hostile text (commas, spaces, non-ASCII...) without a quote.
fn other_entity_tag() -> impl Strategy<Value = String> {
    (any::<bool>(), hostile_text()).prop_map(|(weak, opaque)| {
        let opaque: String = opaque.chars().filter(|&c| c != '"').collect();
        format!("{}\"{opaque}\"", if weak { "W/" } else { "" })
    })
}

/// What may stand between list members: optional whitespace around one
/// or more commas (RFC 9110 §5.6.1 allows empty list elements).
fn list_separator() -> impl Strategy<Value = String> {
    "[ \\t]{0,2},([ \\t]{0,2},){0,2}[ \\t]{0,2}"
}

/// A list of members that are not our tag: hostile text, stars and
/// other entity tags.
fn junk_list() -> impl Strategy<Value = String> {
    let member = prop_oneof![
        3 => hostile_text(),
        1 => prop::sample::select(vec!["*", " * ", "W/*", "\"*\""]).prop_map(String::from),
        1 => other_entity_tag(),
    ];
    prop::collection::vec((member, list_separator()), 0..5)
        .prop_map(|members| members.into_iter().map(|(m, s)| m + &s).collect::<String>())
}

proptest! {
    #[test]
    fn any_if_none_match_is_read_without_panicking(
        header in hostile_text(),
        sha in sha256_hex(),
    ) {
        let _ = if_none_match_matches(&header, &sha);
    }
    #[test]
    fn our_tag_matches_after_other_members(
        before in prop::collection::vec((other_entity_tag(), list_separator()), 0..6),
        lead in "[ \\t]{0,2}",
        weak in any::<bool>(),
        after in hostile_text(),
        sha in sha256_hex(),
    ) {
        let mut header = lead;
        for (tag, separator) in before {
            header.push_str(&tag);
            header.push_str(&separator);
        }
        header.push_str(if weak { "W/" } else { "" });
        header.push_str(&format!("\"{sha}\""));
        header.push_str(", ");
        header.push_str(&after);
        prop_assert!(if_none_match_matches(&header, &sha), "{:?}", header);
    }
    #[test]
    fn text_without_our_tag_never_matches(
        header in junk_list(),
        sha in sha256_hex(),
    ) {
        // `*` alone is the one value that matches every tag.
        prop_assume!(header.trim() != "*" && !header.contains(&sha));
        prop_assert!(!if_none_match_matches(&header, &sha), "{:?}", header);
    }
}
