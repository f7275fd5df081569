//! The HTTP side: accept connections (up to a cap), route, add Spin's
//! headers, run the component in a fresh instance under a deadline, turn
//! failures into Spin's responses, and drain connections on shutdown.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderName, HeaderValue, CONNECTION, HOST, RETRY_AFTER};
use hyper::{Request, Response, StatusCode, Uri};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::Instrument as _;
use wasmtime::{Engine, Store, Trap, UpdateDeadline};
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::WasiHttpView as _;

use crate::body::{prebuffer, PrebufferError};
use crate::kv::KvBackend;
use crate::limits::{Limits, BODY_PREBUFFER_BYTES, RETRY_AFTER_SECS};
use crate::metrics::{method_label, GuestFailure, Metrics, UNMATCHED};
use crate::routes::{Router, PATH_MATCH_PREFIX, SPIN_HEADERS};
use crate::state::{ComponentRuntime, HostState};

/// Everything a request needs, shared by all connections.
pub struct App {
    pub(crate) engine: Engine,
    pub(crate) router: Router,
    pub(crate) components: HashMap<String, ComponentRuntime>,
    pub(crate) kv: KvBackend,
    /// The app's SQLite databases (Spin's `default`).
    pub(crate) sqlite: crate::sqlite::Databases,
    pub(crate) limits: Limits,
    /// One permit per instance that may run at once.
    pub(crate) instances: Arc<Semaphore>,
    pub(crate) metrics: Arc<Metrics>,
    /// Holds the components' copied `files` (preopened per instance);
    /// removed when the app is gone.
    pub(crate) _working_dir: Option<crate::files::WorkingDir>,
}

impl App {
    /// The metrics page, with instance-pool use as of now.
    pub fn render_metrics(&self) -> anyhow::Result<String> {
        let in_use =
            (self.limits.max_instances as usize).saturating_sub(self.instances.available_permits());
        self.metrics.render(in_use)
    }
}

/// How a shutdown went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Connections still open when the grace period ran out, and closed.
    pub cut_off: usize,
}

/// Accepts connections until `stop` delivers a grace period (or its sender
/// is dropped: no grace). Then the listener closes, every connection is
/// asked to finish its request and close, and those still open after the
/// grace period are cut off.
pub async fn serve(
    app: Arc<App>,
    listener: TcpListener,
    mut stop: oneshot::Receiver<Duration>,
) -> ShutdownReport {
    let slots = Arc::new(Semaphore::new(app.limits.max_connections));
    let (closing, closing_rx) = watch::channel(false);
    let mut connections = JoinSet::new();
    let grace = loop {
        // Take a connection slot before accepting: at the cap, new clients
        // wait in the kernel's backlog rather than being reset.
        let slot = match slots.clone().try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                tracing::warn!(
                    "{} connections open (the cap): not accepting until one closes",
                    app.limits.max_connections
                );
                tokio::select! {
                    grace = &mut stop => break grace.unwrap_or_default(),
                    slot = slots.clone().acquire_owned() => match slot {
                        Ok(slot) => slot,
                        Err(_) => break Duration::ZERO,
                    },
                }
            }
        };
        tokio::select! {
            grace = &mut stop => break grace.unwrap_or_default(),
            accepted = listener.accept() => {
                let (stream, client) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // E.g. too many open files: log, keep serving.
                        tracing::warn!("accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                };
                connections.spawn(connection(app.clone(), stream, client, slot, closing_rx.clone()));
                // Reap finished connection tasks so the set stays small.
                while connections.try_join_next().is_some() {}
            }
        }
    };
    // Refuse new connections from here on.
    drop(listener);
    let _ = closing.send(true);
    let drained = tokio::time::timeout(grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await
    .is_ok();
    let cut_off = if drained { 0 } else { connections.len() };
    if cut_off > 0 {
        tracing::warn!("{cut_off} connections still busy after the grace period: closing them");
    }
    connections.shutdown().await;
    ShutdownReport { cut_off }
}

/// Serves one client connection: hyper with a header-read timeout, plus
/// the keep-alive idle timeout and the graceful close on shutdown.
async fn connection(
    app: Arc<App>,
    stream: TcpStream,
    client: SocketAddr,
    _slot: OwnedSemaphorePermit,
    mut closing: watch::Receiver<bool>,
) {
    let _open = app.metrics.connection_opened();
    // Without this a response produced after a host call waits for the
    // client's delayed ACK (~40 ms per request; SPIN-FACTS).
    if let Err(e) = stream.set_nodelay(true) {
        tracing::warn!("cannot set TCP_NODELAY: {e}");
    }
    let received = Arc::new(AtomicU64::new(0));
    let io = TokioIo::new(CountingStream {
        inner: stream,
        received: received.clone(),
    });
    let (active_tx, mut active) = watch::channel(0usize);
    let active_tx = Arc::new(active_tx);
    let limits = &app.limits;
    let service_app = app.clone();
    let service = hyper::service::service_fn(move |req| {
        let app = service_app.clone();
        let in_flight = InFlight::begin(active_tx.clone());
        async move {
            let res = handle(app, req, client).await;
            // The request counts as in flight until its body is sent.
            Ok::<_, Infallible>(res.map(|body| {
                body.map_frame(move |frame| {
                    let _in_flight = &in_flight;
                    frame
                })
                .boxed_unsync()
            }))
        }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true)
        .serve_connection(io, service);
    tokio::pin!(conn);

    let mut closing_asked = false;
    // While no request is in flight: when that began and how many bytes
    // the client had sent by then (a byte since means a head is arriving,
    // which hyper's header timeout governs).
    let mut idle: Option<(Instant, u64)> = None;
    loop {
        if !closing_asked {
            idle = match (*active.borrow_and_update(), idle) {
                (0, Some(since)) => Some(since),
                (0, None) => Some((Instant::now(), received.load(Ordering::Relaxed))),
                _ => None,
            };
        }
        let idle_until = idle.map(|(since, _)| since + limits.keep_alive_timeout);
        tokio::select! {
            ended = conn.as_mut() => {
                if let Err(e) = ended {
                    tracing::debug!("connection from {client} ended: {e}");
                }
                return;
            }
            _ = closing.changed(), if !closing_asked => {
                conn.as_mut().graceful_shutdown();
                closing_asked = true;
                idle = None;
            }
            _ = active.changed(), if !closing_asked => {}
            _ = tokio::time::sleep_until(idle_until.unwrap_or_else(Instant::now)), if idle_until.is_some() => {
                let Some((_, bytes_then)) = idle else { continue };
                if received.load(Ordering::Relaxed) == bytes_then {
                    tracing::debug!("closing idle keep-alive connection from {client}");
                    conn.as_mut().graceful_shutdown();
                    closing_asked = true;
                }
                idle = None;
            }
        }
    }
}

/// Counts a connection's requests in flight while alive.
struct InFlight(Arc<watch::Sender<usize>>);

impl InFlight {
    fn begin(active: Arc<watch::Sender<usize>>) -> Self {
        active.send_modify(|n| *n += 1);
        Self(active)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// The client's socket, counting the bytes received so the keep-alive
/// timer can tell an idle client from one sending its next head.
struct CountingStream {
    inner: TcpStream,
    received: Arc<AtomicU64>,
}

impl AsyncRead for CountingStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        let read = buf.filled().len() - before;
        self.received.fetch_add(read as u64, Ordering::Relaxed);
        polled
    }
}

impl AsyncWrite for CountingStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, data)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

fn empty(status: StatusCode) -> Response<HyperOutgoingBody> {
    let mut res = Response::new(
        Empty::<Bytes>::new()
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    *res.status_mut() = status;
    res
}

fn text(status: StatusCode, body: &'static str) -> Response<HyperOutgoingBody> {
    let mut res = Response::new(
        Full::new(Bytes::from_static(body.as_bytes()))
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    *res.status_mut() = status;
    res
}

/// 503 for a full instance pool: try again shortly.
fn busy() -> Response<HyperOutgoingBody> {
    let mut res = empty(StatusCode::SERVICE_UNAVAILABLE);
    res.headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
    res
}

/// An answer after which the connection cannot be reused (the body was not
/// read to its end).
fn closing(status: StatusCode) -> Response<HyperOutgoingBody> {
    let mut res = empty(status);
    res.headers_mut()
        .insert(CONNECTION, HeaderValue::from_static("close"));
    res
}

/// Serves one request and records it in the metrics (the time to the
/// response head: a streamed body may go on after it).
async fn handle(
    app: Arc<App>,
    req: Request<Incoming>,
    client: SocketAddr,
) -> Response<HyperOutgoingBody> {
    let started = Instant::now();
    let _in_flight = app.metrics.request_started();
    let method = method_label(req.method());
    let mut target = Target {
        component: UNMATCHED.to_owned(),
        route: UNMATCHED.to_owned(),
    };
    let response = dispatch(app.clone(), req, client, &mut target).await;
    app.metrics.request_done(
        &target.component,
        &target.route,
        method,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

/// The component and `spin.toml` route a request went to, for the metrics.
struct Target {
    component: String,
    route: String,
}

/// Answers one request. Never fails: errors become 404 / 500 as in Spin, a
/// stalled body 408, a full instance pool 503.
async fn dispatch(
    app: Arc<App>,
    mut req: Request<Incoming>,
    client: SocketAddr,
    target: &mut Target,
) -> Response<HyperOutgoingBody> {
    // The deadline covers reading the body and running the guest.
    let deadline = Instant::now() + app.limits.request_timeout;
    let path = req.uri().path().to_owned();
    tracing::debug!("processing request on path '{path}'");

    // Spin answers its well-known paths itself.
    if let Some(well_known) = path.strip_prefix("/.well-known/spin/") {
        return match well_known {
            "health" => {
                target.component = "spin".to_owned();
                target.route = "/.well-known/spin/health".to_owned();
                text(StatusCode::OK, "OK")
            }
            _ => empty(StatusCode::NOT_FOUND),
        };
    }

    let Some(route) = app.router.route(&path) else {
        return empty(StatusCode::NOT_FOUND);
    };
    target.component = route.component().to_owned();
    target.route = route.raw_route().to_owned();
    let Some(component) = app.components.get(route.component()) else {
        tracing::error!(
            "route {} names a component that is not loaded",
            route.raw_route()
        );
        return empty(StatusCode::INTERNAL_SERVER_ERROR);
    };

    // Spin gives the guest an absolute URI: scheme http, authority from Host
    // (or the request target); with neither, Spin fails the request.
    let host_header = req
        .headers()
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned);
    let authority = host_header
        .clone()
        .or_else(|| req.uri().authority().map(|a| a.to_string()));
    let Some(authority) = authority else {
        tracing::error!("no 'Host' header present in request");
        return empty(StatusCode::INTERNAL_SERVER_ERROR);
    };
    let path_and_query = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "/".to_owned());
    match Uri::builder()
        .scheme("http")
        .authority(authority.as_str())
        .path_and_query(path_and_query.as_str())
        .build()
    {
        Ok(uri) => *req.uri_mut() = uri,
        Err(e) => {
            tracing::error!("invalid request authority {authority:?}: {e}");
            return empty(StatusCode::INTERNAL_SERVER_ERROR);
        }
    }

    // A client must not be able to forge what Spin tells the component.
    let headers = req.headers_mut();
    for name in SPIN_HEADERS {
        headers.remove(name);
    }
    let forged: Vec<HeaderName> = headers
        .keys()
        .filter(|k| k.as_str().starts_with(PATH_MATCH_PREFIX))
        .cloned()
        .collect();
    for name in forged {
        headers.remove(name);
    }
    let host_for_url = host_header.unwrap_or_else(|| "localhost".to_owned());
    for (name, value) in route.spin_headers(&host_for_url, &path_and_query, client) {
        // Spin silently skips a header it cannot represent.
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            headers.append(n, v);
        }
    }

    let component_id = component.config.id.clone();
    let span = tracing::info_span!("request", component = %component_id, path = %path);
    async {
        let (parts, body) = req.into_parts();
        let body = match prebuffer(
            body,
            BODY_PREBUFFER_BYTES,
            app.limits.body_idle_timeout,
            deadline,
        )
        .await
        {
            Ok(body) => body,
            Err(PrebufferError::TimedOut) => {
                tracing::info!("request body too slow: 408");
                return closing(StatusCode::REQUEST_TIMEOUT);
            }
            Err(PrebufferError::Client(e)) => {
                tracing::debug!("cannot read the request body: {e}");
                return closing(StatusCode::BAD_REQUEST);
            }
        };
        let Ok(instance) = app.instances.clone().try_acquire_owned() else {
            tracing::warn!("all {} instances busy: 503", app.limits.max_instances);
            app.metrics.pool_exhausted();
            return busy();
        };
        run_component(
            &app,
            component,
            Request::from_parts(parts, body),
            deadline,
            instance,
        )
        .await
    }
    .instrument(span)
    .await
}

/// A store for one guest run of `component`: past `deadline` it traps. At
/// the other epoch ticks it simply runs on, as on Spin 4.0.2 (whose stores
/// have a deadline and no callback): a guest keeps its worker thread until
/// it calls the host. Yielding at every tick, as this host once did, let
/// other requests run in the middle of a guest that held the hot product's
/// row lock, and every order queued on that lock waited for it: 10% fewer
/// orders per second at 32 connections, and a p99 / p50 of 1.45 against
/// 1.2 (issue 32, bench/RESULTS.md).
///
/// Fails when the instance's state cannot be built (its `files` cannot be
/// opened).
pub(crate) fn guest_store(
    app: &App,
    component: &ComponentRuntime,
    deadline: Instant,
) -> anyhow::Result<Store<HostState>> {
    let mut store = Store::new(
        &app.engine,
        HostState::new(
            component.config.clone(),
            app.kv.clone(),
            app.sqlite.clone(),
            app.metrics.clone(),
        )?,
    );
    store.set_epoch_deadline(1);
    let trap_at = deadline.into_std();
    store.epoch_deadline_callback(move |_| {
        Ok(if std::time::Instant::now() >= trap_at {
            UpdateDeadline::Interrupt
        } else {
            UpdateDeadline::Continue(1)
        })
    });
    Ok(store)
}

/// Why a guest stopped without finishing.
pub(crate) fn classify_failure(e: &wasmtime::Error) -> GuestFailure {
    if e.downcast_ref::<Trap>() == Some(&Trap::Interrupt) || e.is::<DeadlineExceeded>() {
        GuestFailure::Deadline
    } else {
        GuestFailure::Trap
    }
}

/// [`classify_failure`] for the log.
fn describe_failure(e: &wasmtime::Error) -> &'static str {
    match classify_failure(e) {
        GuestFailure::Deadline => "stopped at the request deadline",
        GuestFailure::Trap => "failed",
    }
}

/// The guest was still waiting on the host at the request deadline.
#[derive(Debug)]
pub(crate) struct DeadlineExceeded;

impl std::fmt::Display for DeadlineExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("request deadline exceeded")
    }
}

impl std::error::Error for DeadlineExceeded {}

/// Runs the guest's `incoming-handler` in a fresh instance. As in Spin's
/// wasi executor, the guest runs in its own task so it can keep streaming
/// the body after the response head is sent; a trap before a response is
/// a 500 with an empty body. At `deadline` a guest running code traps (the
/// epoch callback) and one waiting on the host is dropped; either way its
/// instance, and `instance`'s permit, are freed.
async fn run_component(
    app: &App,
    component: &ComponentRuntime,
    req: Request<crate::body::GuestBody>,
    deadline: Instant,
    instance: OwnedSemaphorePermit,
) -> Response<HyperOutgoingBody> {
    let id = component.config.id.clone();
    let Some(pre) = component.pre.clone() else {
        tracing::error!(component = %id, "component does not export wasi:http/incoming-handler");
        return empty(StatusCode::INTERNAL_SERVER_ERROR);
    };
    let mut store = match guest_store(app, component, deadline) {
        Ok(store) => store,
        Err(e) => {
            tracing::error!(component = %id, "cannot prepare an instance: {e:#}");
            return empty(StatusCode::INTERNAL_SERVER_ERROR);
        }
    };
    let (sender, receiver) = oneshot::channel();
    let prepared = (|| {
        let req = store
            .data_mut()
            .http()
            .new_incoming_request(Scheme::Http, req)?;
        let out = store.data_mut().http().new_response_outparam(sender)?;
        wasmtime::Result::<_>::Ok((req, out))
    })();
    let (guest_req, out) = match prepared {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(component = %id, "cannot pass the request to the guest: {e:?}");
            return empty(StatusCode::INTERNAL_SERVER_ERROR);
        }
    };
    let task = tokio::spawn(
        async move {
            let _instance = instance;
            let run = async {
                let proxy = pre.instantiate_async(&mut store).await?;
                proxy
                    .wasi_http_incoming_handler()
                    .call_handle(&mut store, guest_req, out)
                    .await
            };
            match tokio::time::timeout_at(deadline, run).await {
                Ok(done) => done,
                Err(_) => Err(wasmtime::Error::new(DeadlineExceeded)),
            }
        }
        .in_current_span(),
    );

    match receiver.await {
        Ok(Ok(response)) => {
            // The head is out; report a later failure (e.g. a trap while
            // streaming the body) without blocking the response.
            let id = id.clone();
            let metrics = app.metrics.clone();
            tokio::spawn(
                async move {
                    match task.await {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => {
                            metrics.guest_failed(&id, classify_failure(&e));
                            tracing::error!(component = %id, "component {} after its response started: {e:?}", describe_failure(&e));
                        }
                        Err(e) => tracing::error!(component = %id, "guest task failed: {e}"),
                    }
                }
                .in_current_span(),
            );
            response
        }
        Ok(Err(code)) => {
            tracing::error!(component = %id, "guest failed to produce a response: {code:?}");
            empty(StatusCode::INTERNAL_SERVER_ERROR)
        }
        Err(_) => {
            match task.await {
                Ok(Ok(())) => tracing::error!(
                    component = %id,
                    "guest failed to produce a response prior to returning"
                ),
                Ok(Err(e)) if e.is::<wasmtime::PoolConcurrencyLimitError>() => {
                    // Another host in this process holds the engine's slots.
                    tracing::warn!(component = %id, "instance pool exhausted: 503");
                    app.metrics.pool_exhausted();
                    return busy();
                }
                Ok(Err(e)) => {
                    app.metrics.guest_failed(&id, classify_failure(&e));
                    tracing::error!(component = %id, "guest {}: {e:?}", describe_failure(&e))
                }
                Err(e) => tracing::error!(component = %id, "guest task failed: {e}"),
            }
            empty(StatusCode::INTERNAL_SERVER_ERROR)
        }
    }
}

/// Serves `GET /metrics` (Prometheus' text format) on its own listener, so
/// the app's port never exposes it. Runs until its task is aborted.
pub async fn serve_metrics(app: Arc<App>, listener: TcpListener) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::warn!("metrics: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let app = app.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let page = match (req.method(), req.uri().path()) {
                    (&hyper::Method::GET, "/metrics") => app.render_metrics().map_err(|e| {
                        tracing::error!("metrics: cannot render: {e:#}");
                    }),
                    _ => Err(()),
                };
                async move {
                    match page {
                        Ok(text) => Response::builder()
                            .header(
                                hyper::header::CONTENT_TYPE,
                                "text/plain; version=0.0.4; charset=utf-8",
                            )
                            .body(Full::new(Bytes::from(text))),
                        Err(()) => Response::builder()
                            .status(StatusCode::NOT_FOUND)
                            .body(Full::new(Bytes::new())),
                    }
                }
            });
            let served = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .serve_connection(TokioIo::new(stream), service)
                .await;
            if let Err(e) = served {
                tracing::debug!("metrics connection: {e}");
            }
        });
    }
}
