//! Per-request store data and the Spin interfaces that work on it
//! (key-value, variables; MySQL is in `mysql.rs`, SQLite in `sqlite.rs`),
//! plus engine and linker
//! set-up.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;

use anyhow::Context as _;
use wasmtime::component::{Component, HasSelf, Linker, Resource, ResourceTable};
use wasmtime::{Engine, InstanceAllocationStrategy, PoolingAllocationConfig};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::{
    RequestOptions, WasiBody, WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView,
};

use crate::allowed_hosts::AllowedHosts;
use crate::bindings::fermyon::spin::{key_value, variables};
use crate::kv::KvBackend;
use crate::limits::{Limits, EPOCH_TICK};
use crate::metrics::Metrics;

/// What a component was granted in the manifest, with its variables resolved.
#[derive(Debug)]
pub struct ComponentConfig {
    /// The component id (`[component.ID]`).
    pub id: String,
    /// `key_value_stores`.
    pub kv_stores: HashSet<String>,
    /// `sqlite_databases`.
    pub sqlite_databases: HashSet<String>,
    /// `allowed_outbound_hosts`, rendered and parsed.
    pub allowed_hosts: AllowedHosts,
    /// `[component.ID.variables]`, rendered.
    pub variables: HashMap<String, String>,
    /// The copy of its `files` (`assets/<id>` in the working directory),
    /// preopened read-only as `/` in every instance; `None` without
    /// `files`, and then the instance has no preopen at all, as on Spin.
    pub files: Option<PathBuf>,
    /// Where its stdout and stderr lines are also written (`--log-dir`).
    pub log_files: Option<GuestLogFiles>,
}

/// A component's `{id}_stdout.txt` and `{id}_stderr.txt` in the log
/// directory, named and appended to as `spin up --log-dir` does.
#[derive(Debug, Clone)]
pub struct GuestLogFiles {
    stdout: Arc<Mutex<std::fs::File>>,
    stderr: Arc<Mutex<std::fs::File>>,
}

impl GuestLogFiles {
    /// Opens (creating the directory and files) the two files of `component`.
    pub fn open(dir: &std::path::Path, component: &str) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create log directory {}", dir.display()))?;
        let open = |stream: &str| -> anyhow::Result<Arc<Mutex<std::fs::File>>> {
            let path = dir.join(format!("{component}_{stream}.txt"));
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .with_context(|| format!("cannot open {}", path.display()))?;
            Ok(Arc::new(Mutex::new(file)))
        };
        Ok(Self {
            stdout: open("stdout")?,
            stderr: open("stderr")?,
        })
    }
}

/// A compiled, pre-instantiated component.
pub struct ComponentRuntime {
    /// Its grants and variables.
    pub config: Arc<ComponentConfig>,
    /// Pre-instantiation for HTTP (`wasi:http/incoming-handler`): imports
    /// resolved once, instances made per request. `None` if not exported.
    pub pre: Option<ProxyPre<HostState>>,
    /// Pre-instantiation for the Redis trigger (`fermyon:spin/inbound-redis`).
    pub redis: Option<crate::redis_host::handler::RedisHandlerPre<HostState>>,
}

/// Spin's limit on open key-value stores per instance.
const STORE_TABLE_CAPACITY: usize = 256;

/// A guest's open key-value store (a Spin `store` or a WASI `bucket`).
pub struct KvStore {
    label: String,
}

impl KvStore {
    /// The store's label in the manifest.
    pub fn label(&self) -> &str {
        &self.label
    }
}

/// Why a guest may not open a key-value store.
pub enum StoreRefusal {
    /// The label is not among the component's `key_value_stores`.
    AccessDenied,
    /// The instance already holds Spin's limit of open stores.
    TableFull,
}

/// The data of one request's `Store`.
pub struct HostState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    hooks: OutboundHttp,
    pub(crate) table: ResourceTable,
    pub(crate) component: Arc<ComponentConfig>,
    pub(crate) kv: KvBackend,
    open_stores: usize,
    pub(crate) sqlite: crate::sqlite::InstanceState,
    pub(crate) metrics: Arc<Metrics>,
}

impl HostState {
    /// Fresh state for one request of `component`. Guest stdout and stderr
    /// go to the log, line by line, tagged with the component id. A
    /// component with `files` gets their copy as its one preopen, `/`,
    /// read-only, as Spin 4.0.2's `spin up` mounts it (`DirPerms::READ`,
    /// `FilePerms::READ` in Spin's wasmtime 44; `FsPerms::ReadOnly` here).
    /// Fails if that directory cannot be opened.
    pub fn new(
        component: Arc<ComponentConfig>,
        kv: KvBackend,
        sqlite: crate::sqlite::Databases,
        metrics: Arc<Metrics>,
    ) -> anyhow::Result<Self> {
        let id: Arc<str> = Arc::from(component.id.as_str());
        let log_files = component.log_files.as_ref();
        let mut builder = WasiCtx::builder();
        builder
            .stdout(LogStream {
                component: id.clone(),
                stream: "stdout",
                file: log_files.map(|f| f.stdout.clone()),
            })
            .stderr(LogStream {
                component: id,
                stream: "stderr",
                file: log_files.map(|f| f.stderr.clone()),
            });
        if let Some(dir) = &component.files {
            builder
                .preopened_dir(dir, "/", FsPerms::ReadOnly)
                .map_err(anyhow::Error::from)
                .with_context(|| {
                    format!(
                        "component {:?}: cannot open its files at {}",
                        component.id,
                        dir.display()
                    )
                })?;
        }
        let wasi = builder.build();
        Ok(Self {
            wasi,
            http: WasiHttpCtx::new(),
            hooks: OutboundHttp {
                component: component.clone(),
            },
            table: ResourceTable::new(),
            component,
            kv,
            open_stores: 0,
            sqlite: crate::sqlite::InstanceState::new(sqlite),
            metrics,
        })
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

/// Outbound `wasi:http` limited by `allowed_outbound_hosts`, as in Spin: a
/// request to a host not listed fails with `HTTP-request-denied`.
struct OutboundHttp {
    component: Arc<ComponentConfig>,
}

type SendResult = wasmtime_wasi_http::Result<(
    hyper::Response<WasiBody>,
    Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
)>;

impl WasiHttpHooks for OutboundHttp {
    fn send_request(
        &mut self,
        request: hyper::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
    ) -> Box<dyn Future<Output = SendResult> + Send> {
        let uri = request.uri().to_string();
        let scheme = request.uri().scheme_str().unwrap_or("https").to_owned();
        if !self.component.allowed_hosts.allows_url(&uri, &scheme) {
            tracing::warn!(component = %self.component.id, "outbound HTTP to {uri} not permitted by allowed_outbound_hosts");
            return Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) });
        }
        Box::new(async move {
            let (res, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            Ok((
                res.map(http_body_util::BodyExt::boxed_unsync),
                Box::new(io) as Box<dyn Future<Output = _> + Send>,
            ))
        })
    }
}

impl key_value::Host for HostState {}

impl key_value::HostStore for HostState {
    async fn open(
        &mut self,
        label: String,
    ) -> wasmtime::Result<Result<Resource<key_value::Store>, key_value::Error>> {
        match self.admit_store(label) {
            Ok(store) => Ok(Ok(self.table.push(store)?)),
            Err(StoreRefusal::AccessDenied) => Ok(Err(key_value::Error::AccessDenied)),
            Err(StoreRefusal::TableFull) => Ok(Err(key_value::Error::StoreTableFull)),
        }
    }

    async fn get(
        &mut self,
        store: Resource<key_value::Store>,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, key_value::Error>> {
        let label = &self.table.get(&store)?.label;
        let started = Instant::now();
        let result = self.kv.get(label, &key).await;
        self.metrics
            .key_value_call(&self.component.id, "get", result.is_ok(), started.elapsed());
        Ok(result.map_err(key_value::Error::Other))
    }

    async fn set(
        &mut self,
        store: Resource<key_value::Store>,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), key_value::Error>> {
        let label = &self.table.get(&store)?.label;
        let started = Instant::now();
        let result = self.kv.set(label, &key, value).await;
        self.metrics
            .key_value_call(&self.component.id, "set", result.is_ok(), started.elapsed());
        Ok(result.map_err(key_value::Error::Other))
    }

    async fn delete(
        &mut self,
        store: Resource<key_value::Store>,
        key: String,
    ) -> wasmtime::Result<Result<(), key_value::Error>> {
        let label = &self.table.get(&store)?.label;
        let started = Instant::now();
        let result = self.kv.delete(label, &key).await;
        self.metrics.key_value_call(
            &self.component.id,
            "delete",
            result.is_ok(),
            started.elapsed(),
        );
        Ok(result.map_err(key_value::Error::Other))
    }

    async fn exists(
        &mut self,
        store: Resource<key_value::Store>,
        key: String,
    ) -> wasmtime::Result<Result<bool, key_value::Error>> {
        let label = &self.table.get(&store)?.label;
        let started = Instant::now();
        let result = self.kv.exists(label, &key).await;
        self.metrics.key_value_call(
            &self.component.id,
            "exists",
            result.is_ok(),
            started.elapsed(),
        );
        Ok(result.map_err(key_value::Error::Other))
    }

    async fn get_keys(
        &mut self,
        store: Resource<key_value::Store>,
    ) -> wasmtime::Result<Result<Vec<String>, key_value::Error>> {
        let label = &self.table.get(&store)?.label;
        let started = Instant::now();
        let result = self.kv.get_keys(label).await;
        self.metrics.key_value_call(
            &self.component.id,
            "get_keys",
            result.is_ok(),
            started.elapsed(),
        );
        Ok(result.map_err(key_value::Error::Other))
    }

    async fn drop(&mut self, store: Resource<key_value::Store>) -> wasmtime::Result<()> {
        self.close_store(store)
    }
}

impl HostState {
    /// Admits the opening of store `label` for this instance, through either
    /// key-value interface.
    pub(crate) fn admit_store(&mut self, label: String) -> Result<KvStore, StoreRefusal> {
        // Spin checks the grant first: an ungranted label is access-denied
        // whether or not such a store exists.
        if !self.component.kv_stores.contains(&label) {
            return Err(StoreRefusal::AccessDenied);
        }
        if self.open_stores >= STORE_TABLE_CAPACITY {
            return Err(StoreRefusal::TableFull);
        }
        self.open_stores += 1;
        Ok(KvStore { label })
    }

    /// Closes a store opened through either interface.
    pub(crate) fn close_store(&mut self, store: Resource<KvStore>) -> wasmtime::Result<()> {
        self.table.delete(store)?;
        self.open_stores = self.open_stores.saturating_sub(1);
        Ok(())
    }
}

impl variables::Host for HostState {
    async fn get(&mut self, name: String) -> wasmtime::Result<Result<String, variables::Error>> {
        // Spin validates the name first, then looks it up among the
        // component's variables (its error texts are reproduced).
        if let Err(e) = crate::variables::validate_key(&name) {
            return Ok(Err(variables::Error::InvalidName(e)));
        }
        Ok(match self.component.variables.get(&name) {
            Some(v) => Ok(v.clone()),
            None => Err(variables::Error::Undefined(format!(
                "no variable for {:?}.{name:?}",
                self.component.id
            ))),
        })
    }
}

/// Guest output: each complete line becomes one log event.
struct LogStream {
    component: Arc<str>,
    stream: &'static str,
    file: Option<Arc<Mutex<std::fs::File>>>,
}

impl IsTerminal for LogStream {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for LogStream {
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(LineLogger {
            component: self.component.clone(),
            stream: self.stream,
            file: self.file.clone(),
            buf: Vec::new(),
        })
    }
}

struct LineLogger {
    component: Arc<str>,
    stream: &'static str,
    file: Option<Arc<Mutex<std::fs::File>>>,
    buf: Vec<u8>,
}

impl LineLogger {
    fn emit(&self, line: &[u8]) {
        let line = String::from_utf8_lossy(line);
        let line = line.trim_end_matches('\r');
        tracing::info!(target: "guest", component = %self.component, stream = self.stream, "{line}");
        if let Some(file) = &self.file {
            use std::io::Write as _;
            // One write per line under the lock keeps concurrent instances'
            // lines whole; a full disk loses log lines, never requests.
            let mut file = file.lock().unwrap_or_else(|p| p.into_inner());
            if let Err(e) = file.write_all(format!("{line}\n").as_bytes()) {
                tracing::warn!(component = %self.component, "cannot write the guest log file: {e}");
            }
        }
    }

    fn flush_lines(&mut self) {
        while let Some(pos) = self.buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.buf.drain(..=pos).collect();
            self.emit(&line[..line.len() - 1]);
        }
    }
}

impl tokio::io::AsyncWrite for LineLogger {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.buf.extend_from_slice(data);
        self.flush_lines();
        // A guest printing without newlines must not grow memory forever.
        if self.buf.len() > 64 * 1024 {
            let rest = std::mem::take(&mut self.buf);
            self.emit(&rest);
        }
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl Drop for LineLogger {
    fn drop(&mut self) {
        // The last line may lack a newline.
        if !self.buf.is_empty() {
            let rest = std::mem::take(&mut self.buf);
            self.emit(&rest);
        }
    }
}

/// The engine: Cranelift, pooling allocator sized by `limits`, epoch
/// interruption driven by a ticker thread, on-disk compilation cache.
pub fn engine(limits: &Limits) -> anyhow::Result<Engine> {
    let mut config = wasmtime::Config::new();
    config.wasm_component_model(true);
    config.epoch_interruption(true);

    let instances = limits.max_instances.max(1);
    let mut pool = PoolingAllocationConfig::new();
    pool.total_component_instances(instances)
        // A Rust wasip2 component has a handful of core instances (the
        // program plus small shims); leave room.
        .max_core_instances_per_component(32)
        .total_core_instances(instances.saturating_mul(8))
        .total_memories(instances.saturating_mul(2))
        .total_tables(instances.saturating_mul(8))
        .total_stacks(instances)
        .max_memories_per_component(8)
        .max_tables_per_component(16)
        .max_memory_size(limits.max_instance_memory)
        // As Spin 4.0.2 sets them (crates/core): a freed slot keeps its first
        // 2 MiB of linear memory and 512 KiB of tables mapped and zeroes them
        // in place, so the next instance in it does not fault those pages in
        // again. Without this every request paid for page faults Spin's do not.
        .linear_memory_keep_resident(2 << 20)
        .table_keep_resident(512 << 10);
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));

    match cache_dir() {
        Some(dir) => {
            let mut cache_config = wasmtime::CacheConfig::new();
            cache_config.with_directory(&dir);
            match wasmtime::Cache::new(cache_config) {
                Ok(cache) => {
                    config.cache(Some(cache));
                }
                Err(e) => tracing::warn!("compilation cache disabled ({}): {e:#}", dir.display()),
            }
        }
        None => tracing::warn!("compilation cache disabled: no cache directory"),
    }
    let engine = Engine::new(&config)
        .map_err(anyhow::Error::from)
        .context("cannot create the wasmtime engine")?;
    start_epoch_ticker(&engine)?;
    Ok(engine)
}

/// Advances `engine`'s epoch every [`EPOCH_TICK`] until the engine is gone.
fn start_epoch_ticker(engine: &Engine) -> anyhow::Result<()> {
    let engine = engine.weak();
    std::thread::Builder::new()
        .name("epoch-ticker".to_owned())
        .spawn(move || loop {
            std::thread::sleep(EPOCH_TICK);
            match engine.upgrade() {
                Some(engine) => engine.increment_epoch(),
                None => break,
            }
        })
        .context("cannot start the epoch ticker")?;
    Ok(())
}

/// `$SPIN_TEST_HOST_CACHE_DIR`, else `$XDG_CACHE_HOME/spin-test-host`,
/// else `~/.cache/spin-test-host`.
fn cache_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("SPIN_TEST_HOST_CACHE_DIR") {
        return Some(PathBuf::from(dir));
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("spin-test-host"))
}

/// A linker with WASI 0.2, wasi:http and the Spin interfaces.
pub fn linker(engine: &Engine) -> anyhow::Result<Linker<HostState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
    crate::bindings::SpinHost::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)?;
    crate::wasi_kv::bindings::KeyvalueHost::add_to_linker::<HostState, HasSelf<HostState>>(
        &mut linker,
        |s| s,
    )?;
    Ok(linker)
}

/// Pre-instantiates one compiled component with its grants.
pub fn prepare(
    linker: &Linker<HostState>,
    config: ComponentConfig,
    component: &Component,
) -> anyhow::Result<ComponentRuntime> {
    let pre = linker
        .instantiate_pre(component)
        .map_err(anyhow::Error::from)
        .with_context(|| format!("component {:?}: cannot link its imports", config.id))?;
    // Which triggers may use it is checked at start, against the manifest.
    let redis = crate::redis_host::handler::RedisHandlerPre::new(pre.clone()).ok();
    let pre = ProxyPre::new(pre).ok();
    Ok(ComponentRuntime {
        config: Arc::new(config),
        pre,
        redis,
    })
}
