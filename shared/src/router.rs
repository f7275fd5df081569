//! Path routing with API.md's 404 and 405 behaviour.
//!
//! Routes are patterns of literal segments and `:name` parameters. When several
//! patterns match a path, the most specific one owns it (a literal segment beats
//! a parameter at the first position where they differ), so `/users/me` is never
//! taken for `/users/:id`. A path whose pattern has no route for this method
//! answers 405 with that pattern's `Allow`; a path matching none answers 404.
//! (The SDK's router answers both with an empty body and no `Allow`, and
//! cannot run in native unit tests, hence this small one.)
//!
//! Why not `routefinder`, which Spin and the test host use to pick the
//! component: within a component we need the set of methods a path allows (for
//! `Allow`) and literal-over-parameter ownership per segment, neither of which
//! it offers; wrapping it would keep this file's logic and add a dependency
//! to every component's wasm.

use crate::context::RequestContext;
use crate::error::ApiError;
use crate::http::Method;

/// Captured `:name` segments of a matched route.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Params(Vec<(&'static str, String)>);

impl Params {
    /// The captured value of `:name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A table of `(method, pattern) → route` entries; `R` is usually a small enum.
#[derive(Debug)]
pub struct Router<R> {
    routes: Vec<(Method, &'static str, R)>,
}

impl<R: Copy> Default for Router<R> {
    fn default() -> Self {
        Self::new()
    }
}

impl<R: Copy> Router<R> {
    /// An empty table.
    pub fn new() -> Self {
        Self { routes: Vec::new() }
    }

    /// Adds a route (builder style).
    pub fn route(mut self, method: Method, pattern: &'static str, route: R) -> Self {
        self.routes.push((method, pattern, route));
        self
    }

    /// Finds the route for `method` and `path`, or the 404/405 error, and
    /// records in `ctx` the pattern that owns the path (for the request's
    /// log line: the template, never the raw path with its ids).
    pub fn dispatch(
        &self,
        ctx: &RequestContext,
        method: &Method,
        path: &str,
    ) -> Result<(R, Params), ApiError> {
        let owner = self.owner(path).ok_or(ApiError::NotFound)?;
        ctx.record_route(owner);
        self.find_owned(owner, method, path)
    }

    /// Finds the route for `method` and `path`, or the 404/405 error.
    /// `HEAD` falls back to a `GET` route, as HTTP expects.
    pub fn find(&self, method: &Method, path: &str) -> Result<(R, Params), ApiError> {
        let owner = self.owner(path).ok_or(ApiError::NotFound)?;
        self.find_owned(owner, method, path)
    }

    /// The most specific pattern matching `path`, whatever the method.
    fn owner(&self, path: &str) -> Option<&'static str> {
        self.routes
            .iter()
            .filter_map(|(_, pattern, _)| match_pattern(pattern, path).map(|_| *pattern))
            .max_by(|a, b| specificity(a).cmp(&specificity(b)))
    }

    fn find_owned(
        &self,
        owner: &'static str,
        method: &Method,
        path: &str,
    ) -> Result<(R, Params), ApiError> {
        let mut allowed: Vec<&str> = Vec::new();
        for (m, pattern, route) in self.routes.iter().filter(|(_, p, _)| *p == owner) {
            if m == method || (*method == Method::Head && *m == Method::Get) {
                let params = match_pattern(pattern, path).unwrap_or_default();
                return Ok((*route, params));
            }
            if !allowed.contains(&m.as_str()) {
                allowed.push(m.as_str());
            }
        }
        Err(ApiError::MethodNotAllowed {
            allow: allowed.join(", "),
        })
    }
}

/// Orders patterns so that, segment by segment, a literal outranks a parameter.
fn specificity(pattern: &str) -> Vec<bool> {
    pattern.split('/').map(|s| !s.starts_with(':')).collect()
}

fn match_pattern(pattern: &'static str, path: &str) -> Option<Params> {
    let path = path
        .strip_suffix('/')
        .filter(|p| !p.is_empty())
        .unwrap_or(path);
    let mut pattern_segments = pattern.split('/');
    let mut path_segments = path.split('/');
    let mut params = Vec::new();
    loop {
        match (pattern_segments.next(), path_segments.next()) {
            (None, None) => return Some(Params(params)),
            (Some(p), Some(s)) => {
                if let Some(name) = p.strip_prefix(':') {
                    if s.is_empty() {
                        return None;
                    }
                    params.push((name, s.to_string()));
                } else if p != s {
                    return None;
                }
            }
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
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
}
