//! Prometheus metrics: what Spin would report about the app, for the host's
//! own `--metrics-listen` endpoint.
//!
//! Every series is labelled by component, and requests also by the
//! `spin.toml` route that matched (the trigger's route template, as Spin's
//! telemetry reports `http.route`) and method, never by the raw path, so
//! ids cannot explode cardinality. The component's own log line carries the
//! finer in-component route (`/api/v1/products/:id`).
//!
//! Each host has its own registry (tests run several hosts in one process).

use std::sync::Arc;
use std::time::Duration;

use prometheus::{
    Encoder as _, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};

/// The component and route labels of a request the host answered without
/// routing it (an unknown path).
pub const UNMATCHED: &str = "unmatched";

/// Latency buckets, in seconds: 1 ms to the 30 s request deadline.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Why a guest stopped without finishing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuestFailure {
    /// It trapped (a panic, out of memory, an invalid operation).
    Trap,
    /// It was stopped at the request deadline.
    Deadline,
}

/// The host's metrics and the registry they live in.
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    request_duration: HistogramVec,
    in_flight: IntGauge,
    connections_open: IntGauge,
    instances_in_use: IntGauge,
    instances_max: IntGauge,
    pool_exhausted: IntCounter,
    guest_failures: IntCounterVec,
    kv_calls: IntCounterVec,
    kv_duration: HistogramVec,
    mysql_calls: IntCounterVec,
    mysql_duration: HistogramVec,
    sqlite_calls: IntCounterVec,
    sqlite_duration: HistogramVec,
    redis_messages: IntCounterVec,
    redis_duration: HistogramVec,
}

impl Metrics {
    /// Fresh metrics for a host running at most `max_instances` at once.
    pub fn new(max_instances: u32) -> anyhow::Result<Arc<Self>> {
        let registry = Registry::new();
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels)?;
            registry.register(Box::new(c.clone()))?;
            anyhow::Ok(c)
        };
        let histogram = |name: &str, help: &str, labels: &[&str]| {
            let h = HistogramVec::new(
                HistogramOpts::new(name, help).buckets(LATENCY_BUCKETS.to_vec()),
                labels,
            )?;
            registry.register(Box::new(h.clone()))?;
            anyhow::Ok(h)
        };
        let gauge = |name: &str, help: &str| {
            let g = IntGauge::new(name, help)?;
            registry.register(Box::new(g.clone()))?;
            anyhow::Ok(g)
        };
        let pool_exhausted = IntCounter::new(
            "spin_host_instance_pool_exhausted_total",
            "Requests answered 503 because every instance was busy.",
        )?;
        registry.register(Box::new(pool_exhausted.clone()))?;
        let metrics = Self {
            requests: counter(
                "spin_host_http_requests_total",
                "HTTP requests answered, by component, spin.toml route, method and status.",
                &["component", "route", "method", "status"],
            )?,
            request_duration: histogram(
                "spin_host_http_request_duration_seconds",
                "Time from the request's arrival to its response head, by component, route and method.",
                &["component", "route", "method"],
            )?,
            in_flight: gauge(
                "spin_host_http_requests_in_flight",
                "Requests being answered now.",
            )?,
            connections_open: gauge(
                "spin_host_connections_open",
                "Client connections open now.",
            )?,
            instances_in_use: gauge(
                "spin_host_instances_in_use",
                "Component instances running now (instance-pool use).",
            )?,
            instances_max: gauge(
                "spin_host_instances_max",
                "The most component instances that may run at once (--max-instances).",
            )?,
            pool_exhausted,
            guest_failures: counter(
                "spin_host_guest_failures_total",
                "Guests that stopped without finishing: reason trap or deadline.",
                &["component", "reason"],
            )?,
            kv_calls: counter(
                "spin_host_key_value_calls_total",
                "Key-value calls by component, operation and outcome (ok or error).",
                &["component", "op", "outcome"],
            )?,
            kv_duration: histogram(
                "spin_host_key_value_call_duration_seconds",
                "Key-value call latency by component and operation.",
                &["component", "op"],
            )?,
            mysql_calls: counter(
                "spin_host_mysql_calls_total",
                "MySQL calls by component, operation (open, query, execute) and outcome (ok or error).",
                &["component", "op", "outcome"],
            )?,
            mysql_duration: histogram(
                "spin_host_mysql_call_duration_seconds",
                "MySQL call latency by component and operation.",
                &["component", "op"],
            )?,
            sqlite_calls: counter(
                "spin_host_sqlite_calls_total",
                "SQLite calls by component, operation (open, execute) and outcome (ok or error); each execute is one statement.",
                &["component", "op", "outcome"],
            )?,
            sqlite_duration: histogram(
                "spin_host_sqlite_call_duration_seconds",
                "SQLite call latency by component and operation (an execute includes waiting for the write lock).",
                &["component", "op"],
            )?,
            redis_messages: counter(
                "spin_host_redis_messages_total",
                "Redis trigger messages handled, by component and outcome (ok or error).",
                &["component", "outcome"],
            )?,
            redis_duration: histogram(
                "spin_host_redis_message_duration_seconds",
                "Time a Redis-triggered component took per message.",
                &["component"],
            )?,
            registry,
        };
        metrics.instances_max.set(i64::from(max_instances));
        Ok(Arc::new(metrics))
    }

    /// Counts a request as in flight until the guard drops.
    pub fn request_started(self: &Arc<Self>) -> InFlight {
        self.in_flight.inc();
        InFlight(self.clone(), Gauge::Requests)
    }

    /// Counts a connection as open until the guard drops.
    pub fn connection_opened(self: &Arc<Self>) -> InFlight {
        self.connections_open.inc();
        InFlight(self.clone(), Gauge::Connections)
    }

    /// Records an answered request.
    pub fn request_done(
        &self,
        component: &str,
        route: &str,
        method: &str,
        status: u16,
        elapsed: Duration,
    ) {
        // hyper's `StatusCode` keeps statuses to three digits.
        let status = status.to_string();
        self.requests
            .with_label_values(&[component, route, method, status.as_str()])
            .inc();
        self.request_duration
            .with_label_values(&[component, route, method])
            .observe(elapsed.as_secs_f64());
    }

    /// Records a 503 for a full instance pool.
    pub fn pool_exhausted(&self) {
        self.pool_exhausted.inc();
    }

    /// Records a guest that trapped or was stopped at its deadline.
    pub fn guest_failed(&self, component: &str, failure: GuestFailure) {
        let reason = match failure {
            GuestFailure::Trap => "trap",
            GuestFailure::Deadline => "deadline",
        };
        self.guest_failures
            .with_label_values(&[component, reason])
            .inc();
    }

    /// Records one key-value call.
    pub fn key_value_call(&self, component: &str, op: &str, ok: bool, elapsed: Duration) {
        observe_call(
            &self.kv_calls,
            &self.kv_duration,
            component,
            op,
            ok,
            elapsed,
        );
    }

    /// Records one MySQL call.
    pub fn mysql_call(&self, component: &str, op: &str, ok: bool, elapsed: Duration) {
        observe_call(
            &self.mysql_calls,
            &self.mysql_duration,
            component,
            op,
            ok,
            elapsed,
        );
    }

    /// Records one SQLite call.
    pub fn sqlite_call(&self, component: &str, op: &str, ok: bool, elapsed: Duration) {
        observe_call(
            &self.sqlite_calls,
            &self.sqlite_duration,
            component,
            op,
            ok,
            elapsed,
        );
    }

    /// Records one Redis trigger message.
    pub fn redis_message(&self, component: &str, outcome: &str, elapsed: Duration) {
        self.redis_messages
            .with_label_values(&[component, outcome])
            .inc();
        self.redis_duration
            .with_label_values(&[component])
            .observe(elapsed.as_secs_f64());
    }

    /// The metrics in Prometheus' text format, with instance-pool use as of now.
    pub fn render(&self, instances_in_use: usize) -> anyhow::Result<String> {
        self.instances_in_use
            .set(i64::try_from(instances_in_use).unwrap_or(i64::MAX));
        let mut text = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut text)?;
        Ok(String::from_utf8(text)?)
    }
}

fn observe_call(
    calls: &IntCounterVec,
    duration: &HistogramVec,
    component: &str,
    op: &str,
    ok: bool,
    elapsed: Duration,
) {
    let outcome = if ok { "ok" } else { "error" };
    calls.with_label_values(&[component, op, outcome]).inc();
    duration
        .with_label_values(&[component, op])
        .observe(elapsed.as_secs_f64());
}

/// A request method as a label: the standard ones by name, anything else
/// as `OTHER` (a client may send any token as a method).
pub fn method_label(method: &hyper::Method) -> &'static str {
    match *method {
        hyper::Method::GET => "GET",
        hyper::Method::HEAD => "HEAD",
        hyper::Method::POST => "POST",
        hyper::Method::PUT => "PUT",
        hyper::Method::PATCH => "PATCH",
        hyper::Method::DELETE => "DELETE",
        hyper::Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

enum Gauge {
    Requests,
    Connections,
}

/// Decrements its gauge when dropped.
pub struct InFlight(Arc<Metrics>, Gauge);

impl Drop for InFlight {
    fn drop(&mut self) {
        match self.1 {
            Gauge::Requests => self.0.in_flight.dec(),
            Gauge::Connections => self.0.connections_open.dec(),
        }
    }
}
