//! The HTTP side: accept connections, route, add Spin's headers, run the
//! component in a fresh instance, and turn failures into Spin's responses.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderName, HeaderValue, HOST};
use hyper::{Request, Response, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinSet;
use tracing::Instrument as _;
use wasmtime::{Engine, Store};
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::WasiHttpView as _;

use crate::kv::KvBackend;
use crate::routes::{Router, PATH_MATCH_PREFIX, SPIN_HEADERS};
use crate::state::{ComponentRuntime, HostState};

/// Everything a request needs, shared by all connections.
pub struct App {
    pub(crate) engine: Engine,
    pub(crate) router: Router,
    pub(crate) components: HashMap<String, ComponentRuntime>,
    pub(crate) kv: KvBackend,
}

/// Accepts connections until `shutdown` fires (or its sender is dropped);
/// then every connection task is aborted with the `JoinSet`.
pub async fn serve(app: Arc<App>, listener: TcpListener, mut shutdown: oneshot::Receiver<()>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => {
                let (stream, client) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // E.g. too many open files: log, keep serving.
                        tracing::warn!("accept failed: {e}");
                        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                        continue;
                    }
                };
                // Without this a response produced after a host call waits for
                // the client's delayed ACK (~40 ms per request; SPIN-FACTS).
                if let Err(e) = stream.set_nodelay(true) {
                    tracing::warn!("cannot set TCP_NODELAY: {e}");
                }
                let app = app.clone();
                connections.spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let app = app.clone();
                        async move { Ok::<_, Infallible>(handle(app, req, client).await) }
                    });
                    if let Err(e) = hyper::server::conn::http1::Builder::new()
                        .keep_alive(true)
                        .serve_connection(TokioIo::new(stream), service)
                        .await
                    {
                        tracing::debug!("connection from {client} ended: {e}");
                    }
                });
                // Reap finished connection tasks so the set stays small.
                while connections.try_join_next().is_some() {}
            }
        }
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

/// Serves one request. Never fails: errors become 404 / 500 as in Spin.
async fn handle(
    app: Arc<App>,
    mut req: Request<Incoming>,
    client: SocketAddr,
) -> Response<HyperOutgoingBody> {
    let path = req.uri().path().to_owned();
    tracing::debug!("processing request on path '{path}'");

    // Spin answers its well-known paths itself.
    if let Some(well_known) = path.strip_prefix("/.well-known/spin/") {
        return match well_known {
            "health" => text(StatusCode::OK, "OK"),
            _ => empty(StatusCode::NOT_FOUND),
        };
    }

    let Some(route) = app.router.route(&path) else {
        return empty(StatusCode::NOT_FOUND);
    };
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
    run_component(&app, component, req).instrument(span).await
}

/// Runs the guest's `incoming-handler` in a fresh instance. As in Spin's
/// wasi executor, the guest runs in its own task so it can keep streaming
/// the body after the response head is sent; a trap before a response is
/// a 500 with an empty body.
async fn run_component(
    app: &App,
    component: &ComponentRuntime,
    req: Request<Incoming>,
) -> Response<HyperOutgoingBody> {
    let id = component.config.id.clone();
    let mut store = Store::new(
        &app.engine,
        HostState::new(component.config.clone(), app.kv.clone()),
    );
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
    let pre = component.pre.clone();
    let task = tokio::spawn(
        async move {
            let proxy = pre.instantiate_async(&mut store).await?;
            proxy
                .wasi_http_incoming_handler()
                .call_handle(&mut store, guest_req, out)
                .await
        }
        .in_current_span(),
    );

    match receiver.await {
        Ok(Ok(response)) => {
            // The head is out; report a later failure (e.g. a trap while
            // streaming the body) without blocking the response.
            let id = id.clone();
            tokio::spawn(
                async move {
                    match task.await {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => tracing::error!(component = %id, "component error after response started: {e:?}"),
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
                Ok(Err(e)) => tracing::error!(component = %id, "guest invocation failed: {e:?}"),
                Err(e) => tracing::error!(component = %id, "guest task failed: {e}"),
            }
            empty(StatusCode::INTERNAL_SERVER_ERROR)
        }
    }
}
