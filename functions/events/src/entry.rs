//! The Spin entry points: the Redis trigger (each message — an event id the
//! orders component announced — starts a delivery run) and the admin HTTP
//! routes. Both use the lazy MySQL adapter and Spin's outbound HTTP.

use shared::config::Vars;
use shared::http::{Method, MAX_JSON_BODY};
use shared::outbound::OutboundHttp;
use shared::spin::{optional_variable, serve, SpinDb, SpinHttp, SpinKv};
use shared::ApiError;

use crate::app::{self, Ports};
use crate::config::Config;
use crate::deliver::{Clock, Webhook};
use crate::sql::SqlEvents;

#[spin_sdk::http_component]
async fn handle(req: spin_sdk::http::IncomingRequest) -> spin_sdk::http::Response {
    serve(env!("CARGO_PKG_NAME"), req, MAX_JSON_BODY, |ctx, req| {
        with_ports(|config, ports| app::handle(ctx, req, config, ports))
    })
    .await
}

/// Runs `work` with the configuration and the Spin adapters (MySQL and the
/// key-value store open lazily, on first use).
fn with_ports<T>(
    work: impl FnOnce(&Config, &Ports<'_>) -> Result<T, ApiError>,
) -> Result<T, ApiError> {
    let vars = Vars::new(&optional_variable);
    let config = Config::from_vars(&vars)?;
    let kv = SpinKv::new("default");
    let (sql, replica) = SpinDb::open(&vars.store()?);
    let store = SqlEvents::new(sql).with_replica(replica);
    let ports = Ports {
        kv: &kv,
        store: &store,
        webhook: &SpinHttp,
        clock: &SystemClock,
    };
    work(&config, &ports)
}

/// A message on the events channel. Its content (an event id) only says
/// that something is pending: the run delivers everything due, in order.
/// The outcome is one JSON log line ([`shared::log::triggered`]).
#[spin_sdk::redis_component]
fn on_message(_message: bytes::Bytes) -> anyhow::Result<()> {
    let started = shared::time::now_ms();
    let outcome = deliver_pending()
        .map(|run| serde_json::to_value(run).unwrap_or_default())
        .map_err(|e| e.log_detail());
    shared::log::triggered(env!("CARGO_PKG_NAME"), "redis", started, outcome);
    // A failed run is not the message's fault: Spin would only log an error.
    Ok(())
}

/// A delivery run, or nothing without `webhook_url` (events wait).
fn deliver_pending() -> Result<crate::deliver::Summary, ApiError> {
    with_ports(|config, ports| match config.webhook {
        None => Ok(Default::default()),
        Some(_) => app::deliver_now(config, ports),
    })
}

/// Wall clock; waiting blocks this instance only (wasi:clocks poll).
struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        shared::time::now_ms()
    }
    fn sleep_ms(&self, ms: i64) {
        std::thread::sleep(std::time::Duration::from_millis(ms.max(0).unsigned_abs()));
    }
}

/// Webhooks go out through the shared adapter over Spin's outbound HTTP
/// (`allowed_outbound_hosts` must name the receiver's origin).
impl Webhook for SpinHttp {
    fn post(&self, url: &str, headers: &[(&str, String)], body: &[u8]) -> Result<u16, String> {
        self.send(Method::Post, url, headers, body)
            .map(|reply| reply.status)
    }
}
