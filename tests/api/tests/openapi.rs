//! The OpenAPI document (`openapi.yaml`) against what actually routes requests:
//! `spin.toml`'s HTTP triggers and each component's route table
//! (`.route(Method::X, "/api/v1/...", …)` in `functions/<crate>/src`, read as
//! text because the tables are plain literals). A route added, removed or
//! moved on one side only fails here. The document's own shape rules (every
//! response names `X-Request-Id`, every JSON body route documents 400/413/415,
//! every bearer route 401, …) are checked too, and the served
//! `/api/v1/openapi.json` must be the same document.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use api_tests::{workspace_root, TestApp};
use serde_json::Value;

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "patch", "head", "options", "trace",
];

fn document() -> Value {
    let path = workspace_root().join("openapi.yaml");
    let text = std::fs::read_to_string(&path).expect("read openapi.yaml");
    serde_norway::from_str(&text).expect("openapi.yaml parses as YAML")
}

/// `(method, path)` of every operation in the document, method upper-case.
fn documented_operations(doc: &Value) -> BTreeSet<(String, String)> {
    let mut ops = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in METHODS {
            if item.get(method).is_some() {
                ops.insert((method.to_ascii_uppercase(), path.clone()));
            }
        }
    }
    ops
}

/// One `[[trigger.http]]` of spin.toml.
#[derive(Debug, Clone)]
struct SpinRoute {
    route: String,
    component: String,
}

impl SpinRoute {
    /// The prefix of a trailing-wildcard route (`/a/b/...` → `/a/b`).
    fn wildcard_prefix(&self) -> Option<&str> {
        self.route.strip_suffix("/...")
    }

    /// Whether a concrete path is matched, Spin's way: an exact route matches
    /// itself (`:name` segments match any one segment); `/p/...` matches `/p`
    /// and everything below it.
    fn matches(&self, path: &str) -> bool {
        match self.wildcard_prefix() {
            Some(prefix) => {
                let head: Vec<&str> = path.split('/').take(prefix.split('/').count()).collect();
                segments_match(prefix, &head.join("/"))
            }
            None => segments_match(&self.route, path),
        }
    }
}

fn segments_match(pattern: &str, path: &str) -> bool {
    let (p, s): (Vec<&str>, Vec<&str>) = (pattern.split('/').collect(), path.split('/').collect());
    p.len() == s.len() && p.iter().zip(&s).all(|(p, s)| p.starts_with(':') || p == s)
}

struct Manifest {
    routes: Vec<SpinRoute>,
    /// Component name → the crate directory that builds its `source`.
    crates: BTreeMap<String, PathBuf>,
}

fn manifest() -> Manifest {
    let root = workspace_root();
    let text = std::fs::read_to_string(root.join("spin.toml")).expect("read spin.toml");
    let manifest: toml::Table = text.parse().expect("spin.toml parses");
    let routes = manifest["trigger"]["http"]
        .as_array()
        .expect("[[trigger.http]]")
        .iter()
        .map(|t| SpinRoute {
            route: t["route"].as_str().expect("route").to_string(),
            component: t["component"].as_str().expect("component").to_string(),
        })
        .collect();
    let mut crates = BTreeMap::new();
    for (name, component) in manifest["component"].as_table().expect("[component]") {
        let source = component["source"].as_str().expect("source");
        let crate_name = Path::new(source)
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("source file name");
        crates.insert(name.clone(), root.join("functions").join(crate_name));
    }
    Manifest { routes, crates }
}

/// Spin's precedence: an exact route beats wildcards; among wildcards the
/// longest prefix wins.
fn spin_route_for<'m>(manifest: &'m Manifest, path: &str) -> Option<&'m SpinRoute> {
    let candidates = manifest.routes.iter().filter(|r| r.matches(path));
    candidates.max_by_key(|r| match r.wildcard_prefix() {
        None => usize::MAX,
        Some(prefix) => prefix.len(),
    })
}

/// A concrete path for a templated one: `{id}` becomes a sample segment.
fn sample_path(template: &str) -> String {
    template
        .split('/')
        .map(|s| {
            if s.starts_with('{') && s.ends_with('}') {
                "x0"
            } else {
                s
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// `/a/{id}/b` and `/a/:id/b` both become `/a/{}/b`: parameter names are
/// documentation, not routing.
fn normalise(path: &str) -> String {
    path.split('/')
        .map(|s| {
            if s.starts_with(':') || (s.starts_with('{') && s.ends_with('}')) {
                "{}"
            } else {
                s
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `(METHOD, normalised path)` of every `.route(Method::X, "…", …)` in a crate's sources.
fn router_table(crate_dir: &Path) -> BTreeSet<(String, String)> {
    let re = regex::Regex::new(r#"\.route\(\s*Method::([A-Za-z]+)\s*,\s*"([^"]+)""#).unwrap();
    let mut files = Vec::new();
    rust_files(&crate_dir.join("src"), &mut files);
    let mut table = BTreeSet::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for cap in re.captures_iter(&text) {
            table.insert((cap[1].to_ascii_uppercase(), normalise(&cap[2])));
        }
    }
    table
}

#[test]
fn every_documented_path_is_routed_by_spin_toml() {
    let (doc, manifest) = (document(), manifest());
    let unrouted: Vec<String> = doc["paths"]
        .as_object()
        .unwrap()
        .keys()
        .filter(|p| spin_route_for(&manifest, &sample_path(p)).is_none())
        .cloned()
        .collect();
    assert!(
        unrouted.is_empty(),
        "documented in openapi.yaml but not routed by spin.toml: {unrouted:?}"
    );
}

#[test]
fn every_spin_route_has_a_documented_path() {
    let (doc, manifest) = (document(), manifest());
    let paths: Vec<String> = doc["paths"]
        .as_object()
        .unwrap()
        .keys()
        .map(|p| sample_path(p))
        .collect();
    let undocumented: Vec<&str> = manifest
        .routes
        .iter()
        .filter(|route| {
            !paths
                .iter()
                .any(|p| spin_route_for(&manifest, p).is_some_and(|r| r.route == route.route))
        })
        .map(|r| r.route.as_str())
        .collect();
    assert!(
        undocumented.is_empty(),
        "routed by spin.toml but no path in openapi.yaml: {undocumented:?}"
    );
}

#[test]
fn each_component_router_matches_the_document() {
    let (doc, manifest) = (document(), manifest());
    let mut documented: BTreeMap<String, BTreeSet<(String, String)>> = BTreeMap::new();
    for (method, path) in documented_operations(&doc) {
        if let Some(route) = spin_route_for(&manifest, &sample_path(&path)) {
            documented
                .entry(route.component.clone())
                .or_default()
                .insert((method, normalise(&path)));
        }
    }
    let mut problems = Vec::new();
    for (component, crate_dir) in &manifest.crates {
        let routed = router_table(crate_dir);
        let expected = documented.remove(component).unwrap_or_default();
        if routed.is_empty() {
            problems.push(format!(
                "{component}: no `.route(Method::…, \"…\")` table found in {}",
                crate_dir.display()
            ));
            continue;
        }
        for op in expected.difference(&routed) {
            problems.push(format!(
                "{component}: documented {} {} is not in its router",
                op.0, op.1
            ));
        }
        for op in routed.difference(&expected) {
            problems.push(format!(
                "{component}: its router has {} {}, which openapi.yaml does not document (or spin.toml sends elsewhere)",
                op.0, op.1
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "router tables and openapi.yaml disagree:\n{}",
        problems.join("\n")
    );
}

/// Follows a local `$ref` (`#/components/...`) to its target.
fn resolve<'d>(doc: &'d Value, value: &'d Value) -> &'d Value {
    match value.get("$ref").and_then(Value::as_str) {
        Some(reference) => {
            let pointer = reference.strip_prefix('#').expect("local $ref");
            resolve(
                doc,
                doc.pointer(pointer)
                    .unwrap_or_else(|| panic!("dangling $ref {reference}")),
            )
        }
        None => value,
    }
}

fn collect_refs<'d>(value: &'d Value, out: &mut Vec<&'d str>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("$ref", Value::String(r)) => out.push(r),
                    _ => collect_refs(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

#[test]
fn document_is_openapi_3_1_and_every_ref_resolves() {
    let doc = document();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1."));
    let mut refs = Vec::new();
    collect_refs(&doc, &mut refs);
    let dangling: Vec<&&str> = refs
        .iter()
        .filter(|r| r.strip_prefix('#').and_then(|p| doc.pointer(p)).is_none())
        .collect();
    assert!(dangling.is_empty(), "dangling $ref: {dangling:?}");
}

/// Every operation with the responses that docs/API.md's conventions make possible.
#[test]
fn every_operation_documents_its_conventional_responses() {
    let doc = document();
    let mut problems = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in METHODS {
            let Some(op) = item.get(method) else { continue };
            let name = format!("{} {path}", method.to_ascii_uppercase());
            let responses = op["responses"].as_object().expect("responses");
            let bearer_only = op["security"]
                .as_array()
                .or_else(|| doc["security"].as_array())
                .is_some_and(|s| !s.is_empty() && s.iter().all(|r| r.get("bearerAuth").is_some()));
            let json_body = op
                .get("requestBody")
                .map(|b| resolve(&doc, b))
                .is_some_and(|b| b["content"].get("application/json").is_some());
            let mut required = vec!["413"];
            // The docs component serves files built into it: no store, no
            // database, nothing that can be unavailable.
            let built_in = op["tags"]
                .as_array()
                .is_some_and(|tags| tags.iter().any(|t| t == "docs"));
            if !built_in {
                required.extend(["500", "503"]);
            }
            if bearer_only {
                required.push("401");
            }
            if json_body {
                required.extend(["400", "415"]);
            }
            for status in required {
                if !responses.contains_key(status) {
                    problems.push(format!("{name}: no {status} response"));
                }
            }
            for (status, response) in responses {
                let response = resolve(&doc, response);
                if response["headers"].get("X-Request-Id").is_none() {
                    problems.push(format!("{name} {status}: no X-Request-Id header"));
                }
                let is_error = status.starts_with('4') || status.starts_with('5');
                let problem_json = response["content"]
                    .get("application/problem+json")
                    .is_some();
                let json_503_health = path == "/api/v1/health" && status == "503";
                if is_error && !problem_json && !json_503_health {
                    problems.push(format!("{name} {status}: not application/problem+json"));
                }
                if matches!(status.as_str(), "429" | "503")
                    && response["headers"].get("Retry-After").is_none()
                {
                    problems.push(format!("{name} {status}: no Retry-After header"));
                }
                if status == "201" && response["headers"].get("Location").is_none() {
                    problems.push(format!("{name} 201: no Location header"));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Request bodies are closed (unknown fields are 400) and bounded.
#[test]
fn json_request_bodies_are_closed_and_bounded() {
    let doc = document();
    let mut problems = Vec::new();
    fn check(doc: &Value, schema: &Value, at: &str, problems: &mut Vec<String>) {
        let schema = resolve(doc, schema);
        for combinator in ["anyOf", "oneOf", "allOf"] {
            for branch in schema[combinator].as_array().into_iter().flatten() {
                check(doc, branch, at, problems);
            }
        }
        match schema["type"].as_str() {
            Some("object") => {
                if schema["additionalProperties"] != Value::Bool(false) {
                    problems.push(format!("{at}: object without additionalProperties: false"));
                }
                for (name, field) in schema["properties"].as_object().into_iter().flatten() {
                    check(doc, field, &format!("{at}.{name}"), problems);
                }
            }
            Some("array") => {
                if schema.get("maxItems").is_none() {
                    problems.push(format!("{at}: array without maxItems"));
                }
                check(doc, &schema["items"], &format!("{at}[]"), problems);
            }
            Some("integer")
                if schema.get("minimum").is_none() || schema.get("maximum").is_none() =>
            {
                problems.push(format!("{at}: integer without minimum and maximum"));
            }
            _ => {}
        }
    }
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in METHODS {
            let Some(body) = item.get(method).and_then(|op| op.get("requestBody")) else {
                continue;
            };
            if let Some(media) = resolve(&doc, body)["content"].get("application/json") {
                check(
                    &doc,
                    &media["schema"],
                    &format!("{} {path}", method.to_ascii_uppercase()),
                    &mut problems,
                );
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The running app serves this very document (converted to JSON at build time).
#[tokio::test]
async fn served_document_is_openapi_yaml() {
    let app = TestApp::start().await;
    let resp = app
        .http
        .get(app.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["cache-control"], "public, max-age=300");
    assert!(resp.headers().contains_key("x-request-id"));
    let etag = resp.headers()["etag"].to_str().unwrap().to_string();
    let served: Value = resp.json().await.unwrap();
    assert_eq!(
        served,
        document(),
        "rebuild docs.wasm after editing openapi.yaml"
    );

    let again = app
        .http
        .get(app.url("/api/v1/openapi.json"))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    assert_eq!(again.headers()["etag"].to_str().unwrap(), etag);
    app.stop().await;
}

/// The reference page and every file it loads are served, the page under its
/// strict policy; the files come gzipped to a browser and plain to others.
#[tokio::test]
async fn served_reference_page_and_its_files() {
    let app = TestApp::start().await;
    let page = app.http.get(app.url("/api/v1/docs")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["content-type"], "text/html; charset=utf-8");
    assert!(page.headers().contains_key("x-request-id"));
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        csp.starts_with("default-src 'none'; script-src 'self';"),
        "{csp}"
    );
    let documented = document()["paths"]["/api/v1/docs"]["get"]["responses"]["200"]["headers"]
        ["Content-Security-Policy"]["schema"]["const"]
        .clone();
    assert_eq!(
        documented,
        csp.as_str(),
        "openapi.yaml names the policy served"
    );
    let html = page.text().await.unwrap();

    let names = document()["paths"]["/api/v1/docs/{asset}"]["get"]["parameters"][0]["schema"]
        ["enum"]
        .as_array()
        .unwrap()
        .clone();
    for name in names {
        let name = name.as_str().unwrap();
        if name != "LICENSE.txt" {
            assert!(
                html.contains(&format!("\"docs/{name}\"")),
                "the page loads {name}"
            );
        }
        let url = app.url(&format!("/api/v1/docs/{name}"));
        let plain = app.http.get(&url).send().await.unwrap();
        assert_eq!(plain.status(), 200, "{name}");
        assert!(!plain.headers().contains_key("content-encoding"));
        let plain_len = plain.bytes().await.unwrap().len();
        let zipped = app
            .http
            .get(&url)
            .header("accept-encoding", "gzip")
            .send()
            .await
            .unwrap();
        assert_eq!(zipped.status(), 200);
        assert_eq!(zipped.headers()["content-encoding"], "gzip");
        assert_eq!(zipped.headers()["vary"], "Accept-Encoding");
        let etag = zipped.headers()["etag"].to_str().unwrap().to_string();
        assert!(zipped.bytes().await.unwrap().len() < plain_len);
        let again = app
            .http
            .get(&url)
            .header("accept-encoding", "gzip")
            .header("if-none-match", &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), 304, "{name}");
    }
    let missing = app
        .http
        .get(app.url("/api/v1/docs/swagger-ui-bundle.js.map"))
        .send()
        .await
        .unwrap();
    api_tests::assert_problem(missing, 404, "not_found").await;
    app.stop().await;
}

/// docs.wasm deployed without the `files` spin.toml gives it (Swagger UI is
/// not in the wasm): the page is 503 with `Retry-After`, never a 500, and the
/// document, which is in the wasm, is still served.
#[tokio::test]
async fn reference_page_without_its_files_is_503_and_the_document_still_served() {
    use spin_test_host::{HostConfig, RunningHost};
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("spin.toml");
    let wasm = workspace_root().join("target/wasm32-wasip2/release/docs.wasm");
    std::fs::write(
        &manifest,
        format!(
            "spin_manifest_version = 2\n\
             [application]\nname = \"docs-without-files\"\n\
             [[trigger.http]]\nroute = \"/api/v1/openapi.json\"\ncomponent = \"docs\"\n\
             [[trigger.http]]\nroute = \"/api/v1/docs/...\"\ncomponent = \"docs\"\n\
             [component.docs]\nsource = {:?}\n",
            wasm.display().to_string()
        ),
    )
    .unwrap();
    let host = RunningHost::start(HostConfig::new(manifest)).await.unwrap();
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    for path in ["/api/v1/docs", "/api/v1/docs/swagger-ui-bundle.js"] {
        let resp = http
            .get(format!("{}{path}", host.base_url()))
            .send()
            .await
            .unwrap();
        assert!(resp.headers().contains_key("retry-after"), "{path}");
        api_tests::assert_problem(resp, 503, "unavailable").await;
    }
    let document = http
        .get(format!("{}/api/v1/openapi.json", host.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(document.status(), 200);
    host.stop().await;
}
