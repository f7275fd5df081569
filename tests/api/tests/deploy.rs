//! The SpinKube manifests (`deploy/kubernetes/`) against `spin.toml`: every
//! variable the app requires, marks secret, or defaults to a loopback address
//! is bound in the `SpinApp`; every secret variable (and the Redis URL of the
//! key-value runtime config) comes from a `secretKeyRef` naming a key of the
//! Secret template, never a literal; no binding names a variable spin.toml
//! does not declare; replicas are left to an autoscaler that targets the
//! operator's Deployment. The checker is run against broken copies too, so a
//! checker that accepts anything fails here.

use std::collections::{BTreeMap, BTreeSet};

use api_tests::workspace_root;
use serde_json::{json, Value};

/// One `[variables]` entry of spin.toml.
#[derive(Debug, Clone)]
struct SpinVariable {
    required: bool,
    secret: bool,
    default: Option<String>,
}

fn spin_variables() -> BTreeMap<String, SpinVariable> {
    spin_variables_of("spin.toml")
}

/// The `[variables]` of a Spin manifest at the repository's root.
fn spin_variables_of(file: &str) -> BTreeMap<String, SpinVariable> {
    let text = std::fs::read_to_string(workspace_root().join(file)).unwrap();
    let manifest: toml::Table = text.parse().expect("the manifest parses");
    manifest["variables"]
        .as_table()
        .expect("[variables]")
        .iter()
        .map(|(name, v)| {
            let flag = |key: &str| v.get(key).and_then(toml::Value::as_bool).unwrap_or(false);
            let variable = SpinVariable {
                required: flag("required"),
                secret: flag("secret"),
                default: v.get("default").and_then(|d| d.as_str()).map(String::from),
            };
            (name.clone(), variable)
        })
        .collect()
}

/// Every YAML document of a file under `deploy/kubernetes/`.
fn manifests(file: &str) -> Vec<Value> {
    let path = workspace_root().join("deploy/kubernetes").join(file);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    text.split("\n---")
        .filter(|doc| {
            doc.lines()
                .any(|l| !l.trim().is_empty() && !l.starts_with('#'))
        })
        .map(|doc| serde_norway::from_str(doc).expect("a YAML document"))
        .collect()
}

fn all_manifests() -> Vec<Value> {
    let mut docs = Vec::new();
    for file in ["spinapp.yaml", "secret.example.yaml", "hpa.yaml"] {
        docs.extend(manifests(file));
    }
    docs
}

/// `(secret name, key)` pairs the Secret templates among `docs` define.
fn secret_keys(docs: &[Value]) -> BTreeSet<(String, String)> {
    let mut keys = BTreeSet::new();
    for doc in docs.iter().filter(|d| d["kind"] == "Secret") {
        let name = doc["metadata"]["name"].as_str().unwrap_or_default();
        for field in ["stringData", "data"] {
            for key in doc[field].as_object().into_iter().flat_map(|m| m.keys()) {
                keys.insert((name.to_string(), key.clone()));
            }
        }
    }
    keys
}

/// Where a binding's value comes from.
fn check_source(
    what: &str,
    binding: &Value,
    must_be_secret: bool,
    secrets: &BTreeSet<(String, String)>,
    problems: &mut Vec<String>,
) {
    let literal = binding.get("value");
    let from = binding.get("valueFrom");
    match (literal, from) {
        (Some(_), Some(_)) => problems.push(format!("{what}: both value and valueFrom")),
        (None, None) => problems.push(format!("{what}: neither value nor valueFrom")),
        (Some(_), None) if must_be_secret => {
            problems.push(format!("{what}: a secret given as a literal value"))
        }
        (Some(_), None) => {}
        (None, Some(from)) => match from.get("secretKeyRef") {
            Some(reference) => {
                let name = reference["name"].as_str().unwrap_or_default().to_string();
                let key = reference["key"].as_str().unwrap_or_default().to_string();
                if !secrets.contains(&(name.clone(), key.clone())) {
                    problems.push(format!(
                        "{what}: secretKeyRef {name}/{key} is not in the Secret template"
                    ));
                }
            }
            None if must_be_secret => problems.push(format!(
                "{what}: a secret must come from a secretKeyRef, not {from}"
            )),
            None => {}
        },
    }
}

fn loopback_default(variable: &SpinVariable) -> bool {
    variable
        .default
        .as_deref()
        .is_some_and(|d| d.contains("127.0.0.1") || d.contains("localhost"))
}

/// How an app's replicas are decided.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Replicas {
    /// By a HorizontalPodAutoscaler (the API).
    Autoscaled,
    /// Exactly one (the events app: one Redis subscriber).
    One,
}

/// Everything wrong with `docs` (a SpinApp, its Secret template and its
/// autoscaler) for an app declaring `variables`.
fn check(variables: &BTreeMap<String, SpinVariable>, docs: &[Value]) -> Vec<String> {
    check_app(variables, docs, Replicas::Autoscaled)
}

/// As [`check`], for an app whose replicas are decided as `replicas` says.
fn check_app(
    variables: &BTreeMap<String, SpinVariable>,
    docs: &[Value],
    replicas: Replicas,
) -> Vec<String> {
    let mut problems = Vec::new();
    let apps: Vec<&Value> = docs.iter().filter(|d| d["kind"] == "SpinApp").collect();
    let [app] = apps.as_slice() else {
        return vec![format!("expected one SpinApp, found {}", apps.len())];
    };
    if app["apiVersion"] != "core.spinkube.dev/v1alpha1" {
        problems.push(format!("SpinApp apiVersion {}", app["apiVersion"]));
    }
    let spec = &app["spec"];
    if spec["executor"] != "containerd-shim-spin" {
        problems.push(format!("executor {}", spec["executor"]));
    }
    if spec["image"].as_str().is_none_or(str::is_empty) {
        problems.push("no image".into());
    }
    let secrets = secret_keys(docs);

    let mut bound = BTreeSet::new();
    for binding in spec["variables"].as_array().into_iter().flatten() {
        let name = binding["name"].as_str().unwrap_or_default();
        if !bound.insert(name.to_string()) {
            problems.push(format!("variable {name} bound twice"));
        }
        let Some(variable) = variables.get(name) else {
            problems.push(format!("variable {name} is not declared in spin.toml"));
            continue;
        };
        check_source(
            &format!("variable {name}"),
            binding,
            variable.secret,
            &secrets,
            &mut problems,
        );
    }
    for (name, variable) in variables {
        let needed = variable.required || variable.secret || loopback_default(variable);
        if needed && !bound.contains(name) {
            let why = if variable.required {
                "required"
            } else if variable.secret {
                "secret"
            } else {
                "defaults to a loopback address"
            };
            problems.push(format!("variable {name} ({why}) is not bound"));
        }
    }

    // The key-value store every replica shares.
    let stores = spec["runtimeConfig"]["keyValueStores"].as_array();
    match stores.and_then(|s| s.iter().find(|s| s["name"] == "default")) {
        None => problems.push("no runtime config for the key-value store `default`".into()),
        Some(store) => {
            if store["type"] != "redis" {
                problems.push(format!(
                    "key-value store default has type {}",
                    store["type"]
                ));
            }
            let url = store["options"]
                .as_array()
                .and_then(|o| o.iter().find(|o| o["name"] == "url"));
            match url {
                None => problems.push("key-value store default has no url option".into()),
                Some(url) => {
                    check_source("key-value store url", url, true, &secrets, &mut problems)
                }
            }
        }
    }

    if replicas == Replicas::One {
        if spec["replicas"] != 1 || spec["enableAutoscaling"] == true {
            problems.push(format!(
                "expected exactly one replica, found replicas {} and enableAutoscaling {}",
                spec["replicas"], spec["enableAutoscaling"]
            ));
        }
        return problems;
    }

    // Replicas: an autoscaler owns them.
    let name = app["metadata"]["name"].as_str().unwrap_or_default();
    if spec["enableAutoscaling"] != true {
        problems.push("enableAutoscaling is not true".into());
    }
    if spec.get("replicas").is_some() {
        problems.push("replicas set together with an autoscaler".into());
    }
    if spec["resources"]["requests"]["cpu"].is_null() {
        problems.push("no CPU request: a CPU autoscaler cannot work".into());
    }
    let scalers: Vec<&Value> = docs
        .iter()
        .filter(|d| d["kind"] == "HorizontalPodAutoscaler")
        .filter(|d| {
            let target = &d["spec"]["scaleTargetRef"];
            target["kind"] == "Deployment" && target["name"] == name
        })
        .collect();
    match scalers.as_slice() {
        [hpa] => {
            let min = hpa["spec"]["minReplicas"].as_u64().unwrap_or(1);
            let max = hpa["spec"]["maxReplicas"].as_u64().unwrap_or(0);
            if min < 2 || max < min {
                problems.push(format!("autoscaler bounds {min}..{max}"));
            }
        }
        _ => problems.push(format!(
            "expected one HorizontalPodAutoscaler for Deployment {name}, found {}",
            scalers.len()
        )),
    }
    problems
}

#[test]
fn manifests_bind_every_variable_and_take_secrets_from_the_secret() {
    let variables = spin_variables();
    assert!(variables["jwt_secret"].required && variables["jwt_secret"].secret);
    let problems = check(&variables, &all_manifests());
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The events app (spin-events.toml) is bound like the API, with one
/// replica: every replica would receive every announcement.
#[test]
fn the_events_app_binds_every_variable_of_its_manifest_with_one_replica() {
    let variables = spin_variables_of("spin-events.toml");
    let mut docs = manifests("spinapp-events.yaml");
    docs.extend(manifests("secret.example.yaml"));
    let problems = check_app(&variables, &docs, Replicas::One);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // And the checker is not blind: two replicas, or a literal secret, fail.
    let app = docs.iter_mut().find(|d| d["kind"] == "SpinApp").unwrap();
    app["spec"]["replicas"] = json!(2);
    *variable_mut(app, "webhook_secret") = json!({"name": "webhook_secret", "value": "whsec_x"});
    let problems = check_app(&variables, &docs, Replicas::One);
    assert_caught(problems.clone(), "expected exactly one replica");
    assert_caught(
        problems,
        "variable webhook_secret: a secret given as a literal value",
    );
}

/// The API's manifest has HTTP triggers only: no Redis can take it down.
#[test]
fn the_api_manifest_has_no_redis_trigger_and_the_events_manifest_has_one() {
    let read = |file: &str| -> toml::Table {
        std::fs::read_to_string(workspace_root().join(file))
            .unwrap()
            .parse()
            .unwrap()
    };
    let api = read("spin.toml");
    assert!(
        api["trigger"].get("redis").is_none(),
        "spin.toml has a Redis trigger"
    );
    assert!(api
        .get("application")
        .and_then(|a| a.get("trigger"))
        .is_none());
    let events = read("spin-events.toml");
    assert_eq!(
        events["trigger"]["redis"][0]["component"].as_str(),
        Some("events")
    );
    assert!(events["trigger"].get("http").is_none());
}

/// The delivery schedule logs in as the API's admin with the Secret's
/// password and calls the delivery route.
#[test]
fn the_delivery_cronjob_takes_the_admin_password_from_the_secret() {
    let docs = manifests("cronjob-deliver.yaml");
    let [job] = docs.as_slice() else {
        panic!("one CronJob, found {}", docs.len())
    };
    assert_eq!(job["kind"], "CronJob");
    let container = &job["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0];
    let env = container["env"].as_array().expect("env");
    let secrets = secret_keys(&manifests("secret.example.yaml"));
    let mut problems = Vec::new();
    let password = env
        .iter()
        .find(|e| e["name"] == "ADMIN_PASSWORD")
        .expect("ADMIN_PASSWORD");
    check_source("ADMIN_PASSWORD", password, true, &secrets, &mut problems);
    assert!(problems.is_empty(), "{problems:?}");
    let api_app = manifests("spinapp.yaml");
    let admin_email = api_app[0]["spec"]["variables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "admin_email")
        .expect("admin_email bound")["value"]
        .clone();
    let email = env
        .iter()
        .find(|e| e["name"] == "ADMIN_EMAIL")
        .expect("ADMIN_EMAIL");
    assert_eq!(email["value"], admin_email);
    let script = container["command"].to_string();
    for route in [
        "/api/v1/auth/login",
        "/api/v1/events/deliver",
        "/api/v1/auth/logout",
    ] {
        assert!(script.contains(route), "{route} in {script}");
    }
}

/// The Secret template holds exactly the secrets, as placeholders only.
#[test]
fn secret_template_holds_placeholders_for_exactly_the_secrets() {
    let docs = manifests("secret.example.yaml");
    let keys: BTreeSet<String> = secret_keys(&docs).into_iter().map(|(_, k)| k).collect();
    let mut expected: BTreeSet<String> = spin_variables()
        .into_iter()
        .filter(|(_, v)| v.secret)
        .map(|(name, _)| name)
        .collect();
    expected.insert("redis_url".into());
    assert_eq!(keys, expected);
    for (key, value) in docs[0]["stringData"].as_object().unwrap() {
        assert!(
            value.as_str().unwrap().contains("REPLACE_WITH_"),
            "{key}: the template must not carry a real value"
        );
    }
}

/// Applies `edit` to a copy of the SpinApp and returns the checker's problems.
fn problems_after(edit: impl FnOnce(&mut Value)) -> Vec<String> {
    let mut docs = all_manifests();
    let app = docs.iter_mut().find(|d| d["kind"] == "SpinApp").unwrap();
    edit(app);
    check(&spin_variables(), &docs)
}

fn variable_mut<'a>(app: &'a mut Value, name: &str) -> &'a mut Value {
    app["spec"]["variables"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|v| v["name"] == name)
        .unwrap()
}

fn assert_caught(problems: Vec<String>, expected: &str) {
    assert!(
        problems.iter().any(|p| p.contains(expected)),
        "expected a problem containing {expected:?}, got {problems:?}"
    );
}

#[test]
fn checker_rejects_broken_manifests() {
    assert_caught(
        problems_after(|app| {
            *variable_mut(app, "jwt_secret") =
                json!({"name": "jwt_secret", "value": "hunter2hunter2hunter2hunter2hunter2"})
        }),
        "variable jwt_secret: a secret given as a literal value",
    );
    assert_caught(
        problems_after(
            |app| *variable_mut(app, "db_url") = json!({"name": "db_url", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "db_url"}}}),
        ),
        "variable db_url: a secret must come from a secretKeyRef",
    );
    assert_caught(
        problems_after(|app| {
            variable_mut(app, "admin_password")["valueFrom"]["secretKeyRef"]["key"] = json!("nope")
        }),
        "secretKeyRef spin-api-secrets/nope is not in the Secret template",
    );
    assert_caught(
        problems_after(|app| {
            app["spec"]["variables"]
                .as_array_mut()
                .unwrap()
                .retain(|v| v["name"] != "jwt_secret")
        }),
        "variable jwt_secret (required) is not bound",
    );
    assert_caught(
        problems_after(|app| {
            app["spec"]["variables"]
                .as_array_mut()
                .unwrap()
                .retain(|v| v["name"] != "db_host")
        }),
        "variable db_host (defaults to a loopback address) is not bound",
    );
    assert_caught(
        problems_after(|app| {
            app["spec"]["variables"]
                .as_array_mut()
                .unwrap()
                .push(json!({"name": "jwt_secert", "value": "x"}))
        }),
        "variable jwt_secert is not declared in spin.toml",
    );
    assert_caught(
        problems_after(|app| {
            app["spec"]["runtimeConfig"]["keyValueStores"][0]["options"][0] =
                json!({"name": "url", "value": "redis://:pw@redis:6379"})
        }),
        "key-value store url: a secret given as a literal value",
    );
    assert_caught(
        problems_after(|app| app["spec"]["runtimeConfig"] = json!({})),
        "no runtime config for the key-value store `default`",
    );
    assert_caught(
        problems_after(|app| app["spec"]["executor"] = json!("containerd-shim-wasmtime")),
        "executor",
    );
    assert_caught(
        problems_after(|app| app["spec"]["replicas"] = json!(3)),
        "replicas set together with an autoscaler",
    );
    assert_caught(
        problems_after(|app| app["metadata"]["name"] = json!("renamed")),
        "expected one HorizontalPodAutoscaler for Deployment renamed",
    );
}
