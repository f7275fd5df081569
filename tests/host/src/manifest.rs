//! Reading a Spin manifest (`spin_manifest_version = 2`).
//!
//! Only what the host needs is modelled; other keys (`build`,
//! `description`, …) are accepted and ignored, as the host never builds
//! anything.
//!
//! A component's `files` (plain paths, or `{ source, destination }` tables,
//! nothing else, as Spin's schema) and `exclude_files` are read here and
//! copied at start by `files.rs`, as `spin up` does by default. The host
//! implements plain paths (a file or a directory) and tables; a glob
//! pattern, and a non-empty `exclude_files` next to `files`, stop the start
//! with an error saying the test host does not implement them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context as _};
use serde::Deserialize;

/// A parsed manifest, with component sources made absolute.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// `[application] name`.
    pub name: String,
    /// `[variables]`, by name.
    pub variables: BTreeMap<String, VariableDef>,
    /// `[[trigger.http]]`, in manifest order (the order matters for duplicates).
    pub http_triggers: Vec<HttpTrigger>,
    /// `[[trigger.redis]]`, address and channel still templates.
    pub redis_triggers: Vec<RedisTrigger>,
    /// `[component.NAME]`, by id.
    pub components: BTreeMap<String, ComponentDef>,
    /// The manifest's directory: component `source` and `files` paths are
    /// relative to it.
    pub dir: PathBuf,
}

/// An application variable. `description` and `secret` are read so unknown
/// keys can be refused as Spin refuses them; the host never logs values, so
/// it needs nothing else from them.
#[derive(Debug, Clone, Deserialize)]
#[allow(dead_code)]
#[serde(deny_unknown_fields)]
pub struct VariableDef {
    /// Free text.
    #[serde(default)]
    pub description: Option<String>,
    /// A value must be supplied at run time.
    #[serde(default)]
    pub required: bool,
    /// The value when no provider supplies one.
    #[serde(default)]
    pub default: Option<String>,
    /// Sensitive: never logged.
    #[serde(default)]
    pub secret: bool,
}

/// One `[[trigger.redis]]` entry, as Spin reads it: `address` defaults to
/// `[application.trigger.redis] address`; both it and `channel` may hold
/// `{{ variable }}` templates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisTrigger {
    /// The Redis server to subscribe on.
    pub address: String,
    /// The channel to subscribe to.
    pub channel: String,
    /// The component whose `fermyon:spin/inbound-redis` handles each message.
    pub component: String,
}

/// One `[[trigger.http]]` entry.
#[derive(Debug, Clone)]
pub struct HttpTrigger {
    /// The route as written, e.g. `/api/...`.
    pub route: String,
    /// The component id it runs.
    pub component: String,
}

/// One `[component.NAME]` table.
#[derive(Debug, Clone)]
pub struct ComponentDef {
    /// Absolute path of the `.wasm` file.
    pub source: PathBuf,
    /// Key-value store labels the component may open.
    pub key_value_stores: Vec<String>,
    /// SQLite database labels the component may open (`sqlite_databases`).
    pub sqlite_databases: Vec<String>,
    /// `allowed_outbound_hosts` entries, still templates.
    pub allowed_outbound_hosts: Vec<String>,
    /// Component variables: name to template.
    pub variables: BTreeMap<String, String>,
    /// `files`, in manifest order, as written (relative to [`Manifest::dir`]).
    pub files: Vec<FilesMount>,
    /// `exclude_files` globs.
    pub exclude_files: Vec<String>,
}

/// One entry of a component's `files`, as Spin's `WasiFilesMount`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, untagged)]
pub enum FilesMount {
    /// `"path"`: a file, a directory or a glob pattern, relative to the
    /// manifest's directory, placed at the same path in the guest.
    Pattern(String),
    /// `{ source = "dir-or-file", destination = "/guest/path" }`.
    Placement {
        /// A file or directory, relative to the manifest's directory.
        source: String,
        /// Where it appears in the guest (its leading `/`s are dropped).
        destination: String,
    },
}

#[derive(Deserialize)]
struct RawManifest {
    spin_manifest_version: toml::Value,
    application: RawApplication,
    #[serde(default)]
    variables: BTreeMap<String, VariableDef>,
    #[serde(default)]
    trigger: RawTriggers,
    #[serde(default)]
    component: BTreeMap<String, RawComponent>,
}

#[derive(Deserialize)]
struct RawApplication {
    name: String,
    #[serde(default)]
    trigger: RawAppTriggers,
}

/// `[application.trigger.*]`: trigger defaults.
#[derive(Deserialize, Default)]
struct RawAppTriggers {
    #[serde(default)]
    redis: Option<RawRedisDefaults>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRedisDefaults {
    address: String,
}

#[derive(Deserialize, Default)]
struct RawTriggers {
    #[serde(default)]
    http: Vec<RawHttpTrigger>,
    #[serde(default)]
    redis: Vec<RawRedisTrigger>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRedisTrigger {
    component: String,
    channel: String,
    #[serde(default)]
    address: Option<String>,
}

#[derive(Deserialize)]
struct RawHttpTrigger {
    route: RawRoute,
    #[serde(default)]
    component: Option<toml::Value>,
    #[serde(default)]
    executor: Option<toml::Value>,
}

/// `route = "/x"` or `route = { private = true }` (unroutable, as in Spin).
#[derive(Deserialize)]
#[serde(untagged)]
enum RawRoute {
    Route(String),
    Private { private: bool },
}

#[derive(Deserialize)]
struct RawComponent {
    source: toml::Value,
    #[serde(default)]
    key_value_stores: Vec<String>,
    #[serde(default)]
    sqlite_databases: Vec<String>,
    #[serde(default)]
    allowed_outbound_hosts: Vec<String>,
    #[serde(default)]
    variables: BTreeMap<String, String>,
    #[serde(default)]
    files: Vec<FilesMount>,
    #[serde(default)]
    exclude_files: Vec<String>,
}

impl Manifest {
    /// Reads and checks `path`; component sources are resolved against its directory.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read manifest {}", path.display()))?;
        let base = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        Self::parse(&text, &base).with_context(|| format!("invalid manifest {}", path.display()))
    }

    /// Parses manifest text; `base` is the directory sources are relative to.
    pub fn parse(text: &str, base: &Path) -> anyhow::Result<Self> {
        let raw: RawManifest = toml::from_str(text)?;
        ensure!(
            raw.spin_manifest_version.as_integer() == Some(2)
                || raw.spin_manifest_version.as_str() == Some("2"),
            "only spin_manifest_version = 2 is supported"
        );
        for (name, var) in &raw.variables {
            // Spin's loader: "must be `required` OR have a `default`".
            ensure!(
                var.required ^ var.default.is_some(),
                "variable {name:?}: must be `required` OR have a `default`"
            );
        }

        let mut components = BTreeMap::new();
        for (id, c) in raw.component {
            let source = match &c.source {
                toml::Value::String(s) => base.join(s),
                _ => bail!("component {id:?}: only a local file `source` is supported"),
            };
            components.insert(
                id,
                ComponentDef {
                    source,
                    key_value_stores: c.key_value_stores,
                    sqlite_databases: c.sqlite_databases,
                    allowed_outbound_hosts: c.allowed_outbound_hosts,
                    variables: c.variables,
                    files: c.files,
                    exclude_files: c.exclude_files,
                },
            );
        }

        let mut http_triggers = Vec::new();
        for t in raw.trigger.http {
            let route = match t.route {
                RawRoute::Route(r) => r,
                // Private endpoints are reachable only by service chaining,
                // which this host does not offer.
                RawRoute::Private { private: true } => continue,
                RawRoute::Private { private: false } => {
                    bail!("route must be a string pattern or '{{ private = true }}'")
                }
            };
            if let Some(executor) = &t.executor {
                let kind = executor.get("type").and_then(toml::Value::as_str);
                ensure!(
                    kind.is_none() || kind == Some("http"),
                    "route {route:?}: only the default (wasi:http) executor is supported"
                );
            }
            let component = match t.component {
                Some(toml::Value::String(c)) => c,
                Some(_) => bail!("route {route:?}: inline components are not supported"),
                None => bail!("route {route:?}: no component (static responses are not supported)"),
            };
            ensure!(
                components.contains_key(&component),
                "route {route:?} names unknown component {component:?}"
            );
            http_triggers.push(HttpTrigger { route, component });
        }

        let default_address = raw.application.trigger.redis.map(|r| r.address);
        let mut redis_triggers = Vec::new();
        for t in raw.trigger.redis {
            let address = t.address.or_else(|| default_address.clone()).with_context(|| {
                format!(
                    "redis trigger for {:?}: no address, and no [application.trigger.redis] address",
                    t.component
                )
            })?;
            ensure!(
                components.contains_key(&t.component),
                "redis trigger on {:?} names unknown component {:?}",
                t.channel,
                t.component
            );
            redis_triggers.push(RedisTrigger {
                address,
                channel: t.channel,
                component: t.component,
            });
        }

        Ok(Self {
            name: raw.application.name,
            variables: raw.variables,
            http_triggers,
            redis_triggers,
            components,
            dir: base.to_path_buf(),
        })
    }
}

#[cfg(test)]
mod tests;
