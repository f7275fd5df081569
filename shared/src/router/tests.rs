use super::*;

#[derive(Debug, Clone, Copy, PartialEq)]
enum R {
    Me,
    Get,
    Patch,
    List,
}

fn router() -> Router<R> {
    Router::new()
        .route(Method::Get, "/api/v1/users", R::List)
        .route(Method::Get, "/api/v1/users/me", R::Me)
        .route(Method::Get, "/api/v1/users/:id", R::Get)
        .route(Method::Patch, "/api/v1/users/:id", R::Patch)
}

#[test]
fn literal_segment_owns_its_path_whatever_the_order() {
    let r = Router::new()
        .route(Method::Patch, "/api/v1/users/:id", R::Patch)
        .route(Method::Get, "/api/v1/users/me", R::Me);
    assert_eq!(r.find(&Method::Get, "/api/v1/users/me").unwrap().0, R::Me);
}

#[test]
fn literal_path_allows_only_its_own_methods() {
    let err = router()
        .find(&Method::Patch, "/api/v1/users/me")
        .unwrap_err();
    assert_eq!(
        err,
        ApiError::MethodNotAllowed {
            allow: "GET".into()
        }
    );
}

#[test]
fn literal_route_listed_first_wins_over_parameter() {
    let (r, _) = router().find(&Method::Get, "/api/v1/users/me").unwrap();
    assert_eq!(r, R::Me);
}

#[test]
fn parameter_is_captured() {
    let (r, p) = router().find(&Method::Patch, "/api/v1/users/abc").unwrap();
    assert_eq!(r, R::Patch);
    assert_eq!(p.get("id"), Some("abc"));
}

#[test]
fn wrong_method_is_405_with_allow() {
    let err = router()
        .find(&Method::Delete, "/api/v1/users/abc")
        .unwrap_err();
    assert_eq!(
        err,
        ApiError::MethodNotAllowed {
            allow: "GET, PATCH".into()
        }
    );
}

#[test]
fn unknown_path_is_404() {
    let err = router()
        .find(&Method::Get, "/api/v1/users/a/b")
        .unwrap_err();
    assert_eq!(err, ApiError::NotFound);
}

#[test]
fn head_falls_back_to_get() {
    let (r, _) = router().find(&Method::Head, "/api/v1/users").unwrap();
    assert_eq!(r, R::List);
}

use crate::testing::hostile_text;
use proptest::prelude::*;

/// Paths built from the router's own segments, hostile text and the
/// separators matching looks at (empty segments, trailing slashes).
fn path() -> impl Strategy<Value = String> {
    let segment = prop_oneof![
        Just(String::new()),
        Just("api".to_string()),
        Just("v1".to_string()),
        Just("users".to_string()),
        Just("me".to_string()),
        Just(":id".to_string()),
        hostile_text(),
    ];
    (
        prop::collection::vec(segment, 0..7),
        prop::bool::ANY,
        prop::bool::ANY,
    )
        .prop_map(|(segments, leading, trailing)| {
            let mut path = segments.join("/");
            if leading {
                path.insert(0, '/');
            }
            if trailing {
                path.push('/');
            }
            path
        })
}

fn method() -> impl Strategy<Value = Method> {
    prop_oneof![
        prop::sample::select(vec!["GET", "HEAD", "POST", "PATCH", "DELETE", "get"])
            .prop_map(Method::parse),
        hostile_text().prop_map(|m| Method::parse(&m)),
    ]
}

/// A segment a client may put where `:id` stands: anything but `/` and
/// not empty.
fn segment() -> impl Strategy<Value = String> {
    prop_oneof![hostile_text(), any::<String>()]
        .prop_map(|s| s.replace('/', ""))
        .prop_filter("a segment is not empty", |s| !s.is_empty())
}

proptest! {
    #[test]
    fn any_path_and_method_is_routed_or_refused_without_panicking(
        method in method(),
        path in prop_oneof![path(), hostile_text(), any::<String>()],
    ) {
        match router().find(&method, &path) {
            Ok((route, params)) => {
                prop_assert!(path.starts_with("/api/v1/users"), "{path:?}");
                // Only the `:id` routes bind anything, and what they bind
                // is one non-empty segment of the path.
                match params.get("id") {
                    Some(id) => {
                        prop_assert!(matches!(route, R::Get | R::Patch));
                        prop_assert!(!id.is_empty() && !id.contains('/'), "{id:?}");
                        prop_assert!(path.split('/').any(|s| s == id), "{id:?} in {path:?}");
                    }
                    None => prop_assert!(matches!(route, R::List | R::Me)),
                }
            }
            Err(ApiError::NotFound) => {}
            Err(ApiError::MethodNotAllowed { allow }) => {
                prop_assert!(allow == "GET" || allow == "GET, PATCH", "{allow:?}");
            }
            Err(other) => prop_assert!(false, "{other:?}"),
        }
    }

    #[test]
    fn a_path_matching_an_id_template_binds_exactly_its_segment(
        id in segment(),
        trailing in prop::bool::ANY,
    ) {
        let slash = if trailing { "/" } else { "" };
        let path = format!("/api/v1/users/{id}{slash}");
        let (route, params) = router().find(&Method::Patch, &path).unwrap();
        prop_assert_eq!(route, R::Patch);
        prop_assert_eq!(params.get("id"), Some(id.as_str()));
        // GET of the same path: `/users/me` is the literal route's.
        let (route, params) = router().find(&Method::Get, &path).unwrap();
        if id == "me" {
            prop_assert_eq!((route, params.get("id")), (R::Me, None));
        } else {
            prop_assert_eq!((route, params.get("id")), (R::Get, Some(id.as_str())));
        }
    }

    #[test]
    fn a_path_with_more_or_fewer_segments_than_a_template_is_not_found(
        id in segment(),
        extra in segment(),
    ) {
        for path in [
            format!("/api/v1/users/{id}/{extra}"),
            format!("/api/v1/{id}"),
            format!("/api/v1/users//{id}"),
        ] {
            if path == "/api/v1/users" {
                continue;
            }
            prop_assert_eq!(
                router().find(&Method::Get, &path).unwrap_err(),
                ApiError::NotFound,
                "{:?}",
                path
            );
        }
    }
}
