use super::*;
use std::collections::HashMap;

fn router(routes: &[(&str, &str)]) -> Router {
    Router::build(routes.iter().map(|(r, c)| (*r, *c))).unwrap()
}

#[test]
fn exact_beats_wildcard_and_longest_prefix_wins() {
    let r = router(&[
        ("/...", "all"),
        ("/one", "one"),
        ("/one/...", "one_w"),
        ("/one/two/...", "two_w"),
    ]);
    assert_eq!(r.route("/one").unwrap().component(), "one");
    assert_eq!(r.route("/one/x").unwrap().component(), "one_w");
    assert_eq!(r.route("/one/two/three").unwrap().component(), "two_w");
    assert_eq!(r.route("/zzz").unwrap().component(), "all");
}

#[test]
fn trailing_wildcard_keeps_slashes_like_spin() {
    let r = router(&[("/test/...", "c")]);
    assert_eq!(r.route("/test").unwrap().trailing, "");
    assert_eq!(r.route("/test/").unwrap().trailing, "/");
    assert_eq!(r.route("/test/a").unwrap().trailing, "/a");
    assert_eq!(r.route("/test/a/").unwrap().trailing, "/a/");
}

#[test]
fn headers_match_spin_examples() {
    let r = router(&[("/foo/:userid/...", "c")]);
    let m = r.route("/foo/42/bar").unwrap();
    let h: HashMap<_, _> = m
        .spin_headers(
            "fermyon.dev",
            "/foo/42/bar?key1=value1",
            "127.0.0.1:8777".parse().unwrap(),
        )
        .into_iter()
        .collect();
    assert_eq!(
        h["spin-full-url"],
        "http://fermyon.dev/foo/42/bar?key1=value1"
    );
    assert_eq!(h["spin-path-info"], "/bar");
    assert_eq!(h["spin-matched-route"], "/foo/:userid/...");
    assert_eq!(h["spin-raw-component-route"], "/foo/:userid/...");
    assert_eq!(h["spin-component-route"], "/foo/:userid");
    assert_eq!(h["spin-base-path"], "/");
    assert_eq!(h["spin-client-addr"], "127.0.0.1:8777");
    assert_eq!(h["spin-path-match-userid"], "42");
}

#[test]
fn duplicate_routes_last_wins() {
    let r = router(&[("/foo", "first"), ("/foo", "second")]);
    assert_eq!(r.route("/foo").unwrap().component(), "second");
}
