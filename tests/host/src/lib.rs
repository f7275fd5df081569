//! A test host that runs a Spin app's components under wasmtime the way
//! Spin 4.0.2 does: manifest v2, Spin's routing and request headers,
//! per-request instances from pre-instantiated components (pooling
//! allocator), and the Spin interfaces the project's components import —
//! `fermyon:spin/key-value@2.0.0` (in memory or Redis), `mysql@2.0.0`,
//! `redis@2.0.0`, `sqlite@2.0.0` (Spin's `default` database file in the
//! state directory) and `variables@2.0.0` — next to WASI 0.2 and wasi:http,
//! the Redis trigger (`[[trigger.redis]]`), and components' `files`, copied
//! at start and preopened read-only as `/`, as `spin up` mounts them.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use spin_test_host::{HostConfig, RunningHost};
//! let mut config = HostConfig::new("spin.toml");
//! config.variables.push(("jwt_secret".into(), "x".repeat(32)));
//! let host = RunningHost::start(config).await?;
//! println!("serving {}", host.base_url());
//! host.stop().await;
//! # Ok(()) }
//! ```

// Text is Unicode: slicing a `str` by byte offsets panics on the first
// multi-byte character (and a panic traps the component). Outside tests,
// split where a search found a boundary, or use `str::get`.
#![cfg_attr(not(test), deny(clippy::string_slice))]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use wasmtime::component::Component;
use wasmtime::Engine;

mod allowed_hosts;
mod body;
mod files;
mod kv;
mod limits;
mod manifest;
mod metrics;
mod mysql;
mod redis_host;
mod routes;
mod server;
mod sqlite;
mod state;
mod variables;
mod wasi_kv;

pub use limits::Limits;
pub use server::ShutdownReport;

/// Bindings for the Spin interfaces the host implements (vendored WIT).
mod bindings {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "fermyon:spin/spin-host",
        imports: { default: async | trappable },
        with: {
            "fermyon:spin/key-value.store": crate::state::KvStore,
            "fermyon:spin/mysql.connection": crate::mysql::MysqlConnection,
            "fermyon:spin/redis.connection": crate::redis_host::RedisConnection,
            "fermyon:spin/sqlite.connection": crate::sqlite::SqliteConnection,
        },
    });
}

/// Where `fermyon:spin/key-value` keeps its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyValueBackend {
    /// In this process's memory, shared by all its components.
    Memory,
    /// A Redis server, so several host processes share one store. A value
    /// lives at `{prefix}{store}:{key}`; use a distinct prefix per test.
    Redis {
        /// E.g. `redis://127.0.0.1:6379`.
        url: String,
        /// Prepended to every key.
        prefix: String,
    },
}

/// What the host does when a Redis trigger's subscription ends (its server
/// could not be reached at start, or the connection dropped).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TriggerLoss {
    /// As Spin 4.0.2: the whole app ends ("A trigger exited unexpectedly.
    /// Terminating."), its HTTP routes included. One manifest's triggers
    /// live and die together, so tests see what users of `spin up` see.
    #[default]
    EndApp,
    /// Log it, end that subscription only, and keep serving HTTP.
    KeepServing,
}

/// How to start a host.
#[derive(Debug, Clone)]
pub struct HostConfig {
    /// The `spin.toml`; component `source` and `files` paths are relative
    /// to its directory.
    pub manifest: PathBuf,
    /// Address to listen on; `127.0.0.1:0` picks a free port.
    pub listen: SocketAddr,
    /// Like `spin up --variable name=value`: last wins, beats the environment.
    pub variables: Vec<(String, String)>,
    /// The key-value backend.
    pub key_value: KeyValueBackend,
    /// Deadlines, memory and connection bounds.
    pub limits: Limits,
    /// Where to serve Prometheus metrics (`GET /metrics`); none by default.
    pub metrics_listen: Option<SocketAddr>,
    /// A directory for each component's `{id}_stdout.txt` and
    /// `{id}_stderr.txt`, as `spin up --log-dir`; lines also go to the log.
    pub log_dir: Option<PathBuf>,
    /// What a lost Redis trigger does to the app (Spin's way by default).
    pub trigger_loss: TriggerLoss,
    /// The app's state directory, as `spin up --state-dir` (relative to the
    /// working directory); `None` is `.spin` beside the manifest, as for
    /// `spin up`. The SQLite database `default` is its `sqlite_db.db`,
    /// the directory created when needed.
    pub state_dir: Option<PathBuf>,
    /// Like `spin up --sqlite`, run once at start, in order, before
    /// serving: `@file` or `@file:label` runs the file's statements as a
    /// batch, anything else is one statement on `default`. A failure
    /// stops the start.
    pub sqlite_statements: Vec<String>,
}

impl HostConfig {
    /// Listens on `127.0.0.1:0`, no variables, in-memory key-value, state
    /// in `.spin` beside the manifest, no SQLite statements.
    pub fn new(manifest: impl Into<PathBuf>) -> Self {
        Self {
            manifest: manifest.into(),
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            variables: Vec::new(),
            key_value: KeyValueBackend::Memory,
            limits: Limits::default(),
            metrics_listen: None,
            log_dir: None,
            trigger_loss: TriggerLoss::default(),
            state_dir: None,
            sqlite_statements: Vec::new(),
        }
    }
}

/// A host serving requests in the background of the current tokio runtime.
pub struct RunningHost {
    addr: SocketAddr,
    metrics_addr: Option<SocketAddr>,
    metrics_task: Option<JoinHandle<()>>,
    /// One subscription task per Redis server of `[[trigger.redis]]`.
    redis_tasks: Vec<JoinHandle<()>>,
    /// Taken by whoever stops the server first: [`RunningHost::shutdown`],
    /// or a lost trigger ([`TriggerLoss::EndApp`]).
    shutdown: Arc<Mutex<Option<oneshot::Sender<Duration>>>>,
    /// Becomes true when a lost trigger ended the app.
    ended: tokio::sync::watch::Receiver<bool>,
    task: Option<JoinHandle<ShutdownReport>>,
}

impl RunningHost {
    /// Loads the manifest, resolves variables (failing on a required one
    /// without a value), compiles every component, and starts serving.
    pub async fn start(config: HostConfig) -> anyhow::Result<RunningHost> {
        let manifest = manifest::Manifest::load(&config.manifest)?;
        // As `spin up`'s loader: every component's `files` are copied before
        // anything else runs; the copies live as long as the app.
        let mut files = files::copy_all(&manifest)
            .with_context(|| format!("invalid manifest {}", config.manifest.display()))?;

        let dotenv = variables::load_dotenv()?;
        let env = |k: &str| std::env::var(k).ok();
        let providers = variables::Providers {
            cli: &config.variables,
            env: &env,
            dotenv: &dotenv,
        };
        let app_values = variables::resolve_app_variables(&manifest.variables, &providers)
            .with_context(|| format!("cannot start {:?}", manifest.name))?;
        let mut component_vars = variables::resolve_component_variables(&manifest, &app_values)?;

        let mut configs = Vec::new();
        for (id, def) in &manifest.components {
            // Spin refuses at load a label its runtime config does not define;
            // without one (and with the usual Redis one) only "default" exists.
            if let Some(label) = def.key_value_stores.iter().find(|l| *l != "default") {
                anyhow::bail!(
                    "unknown key_value_stores label {label:?} for component {id:?} \
                     (Spin defines only \"default\" without a runtime config)"
                );
            }
            let mut hosts = Vec::new();
            for entry in &def.allowed_outbound_hosts {
                let t = variables::Template::parse(entry)
                    .with_context(|| format!("component {id:?} allowed_outbound_hosts"))?;
                variables::check_references(&t, &manifest)
                    .with_context(|| format!("component {id:?} allowed_outbound_hosts"))?;
                hosts.push(t.render(&app_values)?);
            }
            let allowed_hosts = allowed_hosts::AllowedHosts::parse(&hosts)
                .with_context(|| format!("component {id:?} allowed_outbound_hosts"))?;
            configs.push((
                state::ComponentConfig {
                    id: id.clone(),
                    kv_stores: def.key_value_stores.iter().cloned().collect(),
                    sqlite_databases: def.sqlite_databases.iter().cloned().collect(),
                    allowed_hosts,
                    variables: component_vars.remove(id).unwrap_or_default(),
                    files: files.roots.remove(id),
                    log_files: match &config.log_dir {
                        Some(dir) => Some(state::GuestLogFiles::open(dir, id)?),
                        None => None,
                    },
                },
                def.source.clone(),
            ));
        }

        // Redis triggers: address and channel are templates over the
        // application variables, as in Spin; grouped per server.
        let mut subscriptions: HashMap<String, redis_host::Subscriptions> = HashMap::new();
        for t in &manifest.redis_triggers {
            let render = |what: &str, text: &str| -> anyhow::Result<String> {
                let template = variables::Template::parse(text)
                    .with_context(|| format!("redis trigger {what} for {:?}", t.component))?;
                variables::check_references(&template, &manifest)
                    .with_context(|| format!("redis trigger {what} for {:?}", t.component))?;
                template.render(&app_values)
            };
            let address = render("address", &t.address)?;
            let channel = render("channel", &t.channel)?;
            subscriptions
                .entry(address)
                .or_default()
                .entry(channel)
                .or_default()
                .push(t.component.clone());
        }

        // SQLite, as Spin configures it: unknown labels refused at load, then
        // `--sqlite` statements, then the summary line (which, as Spin's,
        // creates the state directory when some component uses `default`).
        let state_dir = sqlite::state_dir(config.state_dir.as_deref(), &config.manifest)?;
        let databases = sqlite::Databases::new(&state_dir);
        sqlite::check_grants(
            &databases,
            manifest
                .components
                .iter()
                .map(|(id, def)| (id.as_str(), def.sqlite_databases.as_slice())),
        )?;
        sqlite::run_statements(&databases, &config.sqlite_statements).await?;
        let default_used = manifest.components.values().any(|def| {
            def.sqlite_databases
                .iter()
                .any(|l| l == sqlite::DEFAULT_LABEL)
        });
        if default_used && matches!(databases.connect(sqlite::DEFAULT_LABEL).await, Some(Ok(_))) {
            tracing::info!(
                "Storing default SQLite data to \"{}\".",
                databases.default_file().display()
            );
        }

        let router = routes::Router::build(
            manifest
                .http_triggers
                .iter()
                .map(|t| (t.route.as_str(), t.component.as_str())),
        )?;

        let kv = match &config.key_value {
            KeyValueBackend::Memory => kv::KvBackend::memory(),
            KeyValueBackend::Redis { url, prefix } => {
                kv::KvBackend::redis(url, prefix).context("invalid Redis URL")?
            }
        };

        // Compiling is CPU-bound (or a cache read): keep it off the reactor.
        let limits = config.limits.clone();
        let (engine, components) =
            tokio::task::spawn_blocking(move || compile_all(&limits, configs))
                .await
                .context("compilation task failed")??;

        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        let addr = listener.local_addr()?;
        tracing::info!(
            "serving http://{addr} ({}), key-value {}",
            manifest.name,
            kv.summary()
        );
        for (route, component) in router.routes() {
            tracing::info!("  {component}: http://{addr}{route}");
        }

        let instances = Arc::new(tokio::sync::Semaphore::new(
            config.limits.max_instances as usize,
        ));
        for (route, component) in router.routes() {
            anyhow::ensure!(
                components.get(component).is_some_and(|c| c.pre.is_some()),
                "route {route:?}: component {component:?} does not export wasi:http/incoming-handler"
            );
        }
        for t in &manifest.redis_triggers {
            anyhow::ensure!(
                components
                    .get(&t.component)
                    .is_some_and(|c| c.redis.is_some()),
                "redis trigger: component {:?} does not export fermyon:spin/inbound-redis",
                t.component
            );
        }
        let metrics = metrics::Metrics::new(config.limits.max_instances)?;
        let app = Arc::new(server::App {
            engine,
            router,
            components,
            kv,
            sqlite: databases,
            limits: config.limits,
            instances,
            metrics,
            _working_dir: files.working_dir,
        });
        let (metrics_addr, metrics_task) = match config.metrics_listen {
            Some(listen) => {
                let listener = tokio::net::TcpListener::bind(listen)
                    .await
                    .with_context(|| format!("cannot listen for metrics on {listen}"))?;
                let addr = listener.local_addr()?;
                tracing::info!("metrics: http://{addr}/metrics");
                let task = tokio::spawn(server::serve_metrics(app.clone(), listener));
                (Some(addr), Some(task))
            }
            None => (None, None),
        };
        let (tx, rx) = oneshot::channel();
        let shutdown = Arc::new(Mutex::new(Some(tx)));
        let (ended_tx, ended) = tokio::sync::watch::channel(false);
        let ended_tx = Arc::new(ended_tx);
        let redis_tasks = subscriptions
            .into_iter()
            .map(|(address, channels)| {
                let subscription = redis_host::subscribe(app.clone(), address, channels);
                let (shutdown, ended_tx) = (shutdown.clone(), ended_tx.clone());
                let loss = config.trigger_loss;
                tokio::spawn(async move {
                    subscription.await;
                    if loss == TriggerLoss::EndApp {
                        tracing::error!("A trigger exited unexpectedly. Terminating.");
                        ended_tx.send_replace(true);
                        if let Some(tx) = take_sender(&shutdown) {
                            let _ = tx.send(Duration::ZERO);
                        }
                    }
                })
            })
            .collect();
        let task = tokio::spawn(server::serve(app, listener, rx));
        Ok(RunningHost {
            addr,
            metrics_addr,
            metrics_task,
            redis_tasks,
            shutdown,
            ended,
            task: Some(task),
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The address the host listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where `GET /metrics` is served, when `metrics_listen` was set.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// Resolves when a lost Redis trigger has ended the app
    /// ([`TriggerLoss::EndApp`]); never, otherwise.
    pub async fn ended(&self) {
        // The sender goes away with the last subscription task (or was never
        // held): then the app cannot end this way.
        if self.ended.clone().wait_for(|ended| *ended).await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    /// True once a lost Redis trigger has ended the app.
    pub fn has_ended(&self) -> bool {
        *self.ended.borrow()
    }

    /// Stops accepting, closes open connections and frees the port.
    pub async fn stop(self) {
        self.shutdown(Duration::ZERO).await;
    }

    /// Stops accepting (the port is freed at once), lets requests in flight
    /// finish for up to `grace`, then closes what is left.
    pub async fn shutdown(mut self, grace: Duration) -> ShutdownReport {
        if let Some(metrics) = self.metrics_task.take() {
            metrics.abort();
        }
        for task in self.redis_tasks.drain(..) {
            task.abort();
        }
        if let Some(tx) = take_sender(&self.shutdown) {
            let _ = tx.send(grace);
        }
        match self.task.take() {
            Some(task) => task.await.unwrap_or(ShutdownReport { cut_off: 0 }),
            None => ShutdownReport { cut_off: 0 },
        }
    }
}

impl Drop for RunningHost {
    fn drop(&mut self) {
        // Dropping without `stop` still shuts the server down.
        if let Some(metrics) = self.metrics_task.take() {
            metrics.abort();
        }
        for task in self.redis_tasks.drain(..) {
            task.abort();
        }
        if let Some(tx) = take_sender(&self.shutdown) {
            let _ = tx.send(Duration::ZERO);
        }
    }
}

/// The server's stop sender, for whoever asks first.
fn take_sender(
    shutdown: &Mutex<Option<oneshot::Sender<Duration>>>,
) -> Option<oneshot::Sender<Duration>> {
    shutdown.lock().map(|mut s| s.take()).unwrap_or(None)
}

/// One engine per process and pool shape: hosts started by one test binary
/// with the same instance and memory limits share its instance pool and
/// compiled-code memory.
fn shared_engine(limits: &Limits) -> anyhow::Result<Engine> {
    type Engines = HashMap<(u32, usize), Engine>;
    static ENGINES: Mutex<Option<Engines>> = Mutex::new(None);
    let mut guard = ENGINES
        .lock()
        .map_err(|_| anyhow::anyhow!("engine lock poisoned"))?;
    let engines = guard.get_or_insert_with(HashMap::new);
    let shape = (limits.max_instances, limits.max_instance_memory);
    if let Some(engine) = engines.get(&shape) {
        return Ok(engine.clone());
    }
    let engine = state::engine(limits)?;
    engines.insert(shape, engine.clone());
    Ok(engine)
}

type Compiled = (Engine, HashMap<String, state::ComponentRuntime>);

/// Compiles each distinct `.wasm` once, then pre-instantiates every component.
fn compile_all(
    limits: &Limits,
    configs: Vec<(state::ComponentConfig, PathBuf)>,
) -> anyhow::Result<Compiled> {
    let engine = shared_engine(limits)?;
    let linker = state::linker(&engine)?;
    let mut compiled: HashMap<PathBuf, Component> = HashMap::new();
    let mut components = HashMap::new();
    for (config, source) in configs {
        let component = match compiled.get(&source) {
            Some(c) => c.clone(),
            None => {
                let started = std::time::Instant::now();
                let c = Component::from_file(&engine, &source)
                    .map_err(anyhow::Error::from)
                    .with_context(|| {
                        format!(
                            "component {:?}: cannot load {}",
                            config.id,
                            source.display()
                        )
                    })?;
                tracing::debug!(source = %source.display(), elapsed = ?started.elapsed(), "compiled");
                compiled.insert(source.clone(), c.clone());
                c
            }
        };
        let id = config.id.clone();
        components.insert(id, state::prepare(&linker, config, &component)?);
    }
    Ok((engine, components))
}
