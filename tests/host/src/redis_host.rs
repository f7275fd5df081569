//! Spin's Redis interfaces: outbound `fermyon:spin/redis@2.0.0` (what
//! `spin_sdk::redis` imports) and the Redis trigger (`[[trigger.redis]]`,
//! calling a component's `fermyon:spin/inbound-redis`), as Spin 4.0.2 does:
//!
//! * `open` checks the address against `allowed_outbound_hosts` (scheme
//!   `redis`), refusing with `invalid-address`; a malformed address is
//!   `invalid-address` too, a failed connection `other(…)`. Each open makes
//!   its own multiplexed connection, dropped with the resource.
//! * The trigger subscribes once per server address (`SUBSCRIBE` per
//!   channel) and handles messages one at a time, each in a fresh instance
//!   of every component on that channel. A handler's error or trap is
//!   logged and the next message handled. When the server cannot be
//!   reached at start, or the connection drops, the subscription ends, and
//!   with it (as on Spin) the whole app, HTTP routes included
//!   ([`crate::TriggerLoss`]; `--keep-serving-without-redis-trigger` keeps
//!   the routes up instead).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use ::redis::AsyncCommands as _;
use futures::StreamExt as _;
use wasmtime::component::Resource;

use crate::bindings::fermyon::spin::redis::{self as outbound, Error, RedisParameter, RedisResult};
use crate::metrics::GuestFailure;
use crate::server::App;
use crate::state::HostState;

/// How long opening an outbound connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// An open outbound connection (`fermyon:spin/redis.connection`).
pub struct RedisConnection {
    conn: ::redis::aio::MultiplexedConnection,
}

/// The guest side of the trigger: `fermyon:spin/inbound-redis`.
pub(crate) mod handler {
    wasmtime::component::bindgen!({
        path: "wit-redis-trigger",
        world: "redis-handler",
        exports: { default: async },
    });
}

fn other(e: impl std::fmt::Display) -> Error {
    Error::Other(e.to_string())
}

impl outbound::Host for HostState {}

impl outbound::HostConnection for HostState {
    async fn open(
        &mut self,
        address: String,
    ) -> wasmtime::Result<Result<Resource<outbound::Connection>, Error>> {
        if !self.component.allowed_hosts.allows_url(&address, "redis") {
            tracing::warn!(
                component = %self.component.id,
                "redis address not permitted by allowed_outbound_hosts"
            );
            return Ok(Err(Error::InvalidAddress));
        }
        let Ok(client) = ::redis::Client::open(address.as_str()) else {
            return Ok(Err(Error::InvalidAddress));
        };
        let conn =
            match tokio::time::timeout(CONNECT_TIMEOUT, client.get_multiplexed_async_connection())
                .await
            {
                Ok(Ok(conn)) => conn,
                Ok(Err(e)) => return Ok(Err(other(e))),
                Err(_) => return Ok(Err(Error::Other("connection timed out".into()))),
            };
        Ok(Ok(self.table.push(RedisConnection { conn })?))
    }

    async fn publish(
        &mut self,
        connection: Resource<outbound::Connection>,
        channel: String,
        payload: Vec<u8>,
    ) -> wasmtime::Result<Result<(), Error>> {
        let conn = &mut self.table.get_mut(&connection)?.conn;
        Ok(conn
            .publish::<_, _, ()>(&channel, &payload)
            .await
            .map_err(other))
    }

    async fn get(
        &mut self,
        connection: Resource<outbound::Connection>,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, Error>> {
        let conn = &mut self.table.get_mut(&connection)?.conn;
        Ok(conn.get(&key).await.map_err(other))
    }

    async fn set(
        &mut self,
        connection: Resource<outbound::Connection>,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), Error>> {
        let conn = &mut self.table.get_mut(&connection)?.conn;
        Ok(conn.set::<_, _, ()>(&key, &value).await.map_err(other))
    }

    async fn incr(
        &mut self,
        connection: Resource<outbound::Connection>,
        key: String,
    ) -> wasmtime::Result<Result<i64, Error>> {
        let conn = &mut self.table.get_mut(&connection)?.conn;
        Ok(conn.incr(&key, 1).await.map_err(type_or_other))
    }

    async fn del(
        &mut self,
        connection: Resource<outbound::Connection>,
        keys: Vec<String>,
    ) -> wasmtime::Result<Result<u32, Error>> {
        let conn = &mut self.table.get_mut(&connection)?.conn;
        Ok(conn.del(&keys).await.map_err(other))
    }

    async fn sadd(
        &mut self,
        connection: Resource<outbound::Connection>,
        key: String,
        values: Vec<String>,
    ) -> wasmtime::Result<Result<u32, Error>> {
        let conn = &mut self.table.get_mut(&connection)?.conn;
        Ok(conn.sadd(&key, &values).await.map_err(type_or_other))
    }

    async fn smembers(
        &mut self,
        connection: Resource<outbound::Connection>,
        key: String,
    ) -> wasmtime::Result<Result<Vec<String>, Error>> {
        let conn = &mut self.table.get_mut(&connection)?.conn;
        Ok(conn.smembers(&key).await.map_err(other))
    }

    async fn srem(
        &mut self,
        connection: Resource<outbound::Connection>,
        key: String,
        values: Vec<String>,
    ) -> wasmtime::Result<Result<u32, Error>> {
        let conn = &mut self.table.get_mut(&connection)?.conn;
        Ok(conn.srem(&key, &values).await.map_err(other))
    }

    async fn execute(
        &mut self,
        connection: Resource<outbound::Connection>,
        command: String,
        arguments: Vec<RedisParameter>,
    ) -> wasmtime::Result<Result<Vec<RedisResult>, Error>> {
        let conn = &mut self.table.get_mut(&connection)?.conn;
        let mut cmd = ::redis::cmd(&command);
        for argument in arguments {
            match argument {
                RedisParameter::Int64(n) => cmd.arg(n),
                RedisParameter::Binary(bytes) => cmd.arg(bytes),
            };
        }
        let value: ::redis::Value = match cmd.query_async(conn).await {
            Ok(v) => v,
            Err(e) => return Ok(Err(other(e))),
        };
        let mut results = Vec::new();
        Ok(flatten(value, &mut results).map(|()| results))
    }

    async fn drop(&mut self, connection: Resource<outbound::Connection>) -> wasmtime::Result<()> {
        self.table.delete(connection)?;
        Ok(())
    }
}

fn type_or_other(e: ::redis::RedisError) -> Error {
    // redis 1.x names Spin's type error "unexpected return type".
    if e.kind() == ::redis::ErrorKind::UnexpectedReturnType {
        Error::TypeError
    } else {
        other(e)
    }
}

/// A reply as `execute`'s flat list: arrays are spread, scalars kept.
fn flatten(value: ::redis::Value, into: &mut Vec<RedisResult>) -> Result<(), Error> {
    use ::redis::Value as V;
    match value {
        V::Nil => into.push(RedisResult::Nil),
        V::Int(n) => into.push(RedisResult::Int64(n)),
        V::BulkString(bytes) => into.push(RedisResult::Binary(bytes)),
        V::SimpleString(s) => into.push(RedisResult::Status(s)),
        V::Okay => into.push(RedisResult::Status("OK".into())),
        V::Array(items) | V::Set(items) => {
            for item in items {
                flatten(item, into)?;
            }
        }
        other => return Err(Error::Other(format!("unsupported reply {other:?}"))),
    }
    Ok(())
}

/// One server's subscriptions: channel → the components it triggers.
pub type Subscriptions = BTreeMap<String, Vec<String>>;

/// Subscribes on `address` and handles messages until the connection ends.
pub async fn subscribe(app: Arc<App>, address: String, subscriptions: Subscriptions) {
    let shown = crate::kv::without_credentials(&address);
    let pubsub = async {
        let client = ::redis::Client::open(address.as_str())?;
        let mut pubsub = client.get_async_pubsub().await?;
        for channel in subscriptions.keys() {
            pubsub.subscribe(channel).await?;
        }
        Ok::<_, ::redis::RedisError>(pubsub)
    };
    let mut pubsub = match pubsub.await {
        Ok(p) => p,
        Err(e) => {
            tracing::error!("redis trigger: cannot subscribe on {shown}: {e}");
            return;
        }
    };
    for (channel, components) in &subscriptions {
        tracing::info!(
            "redis trigger: {shown} channel {channel:?} → {}",
            components.join(", ")
        );
    }
    let mut messages = pubsub.on_message();
    while let Some(message) = messages.next().await {
        let channel = message.get_channel_name().to_owned();
        let payload = message.get_payload_bytes().to_vec();
        let Some(components) = subscriptions.get(&channel) else {
            tracing::error!("redis trigger: message from unexpected channel {channel:?}");
            continue;
        };
        for component in components {
            if let Err(e) = handle_message(&app, component, &payload).await {
                tracing::info!(component = %component, "redis handler failed: {e:#}");
            }
        }
    }
    tracing::error!("redis trigger: disconnected from {shown}");
}

/// Runs `component`'s handler on one message in a fresh instance, under
/// the request deadline (as an HTTP request would be).
async fn handle_message(app: &App, component_id: &str, payload: &[u8]) -> anyhow::Result<()> {
    let component = app
        .components
        .get(component_id)
        .ok_or_else(|| anyhow::anyhow!("component {component_id:?} is not loaded"))?;
    let pre = component.redis.as_ref().ok_or_else(|| {
        anyhow::anyhow!("component {component_id:?} does not export fermyon:spin/inbound-redis")
    })?;
    // Wait for an instance slot: a message is not refused like a request.
    let _instance = app.instances.clone().acquire_owned().await?;
    let started = tokio::time::Instant::now();
    let deadline = started + app.limits.request_timeout;
    let mut store = crate::server::guest_store(app, component, deadline)?;
    let run = async {
        let guest = pre.instantiate_async(&mut store).await?;
        guest
            .fermyon_spin_inbound_redis()
            .call_handle_message(&mut store, &payload.to_vec())
            .await
    };
    let outcome = match tokio::time::timeout_at(deadline, run).await {
        Ok(outcome) => outcome,
        Err(_) => Err(wasmtime::Error::new(crate::server::DeadlineExceeded)),
    };
    match outcome {
        Ok(Ok(())) => {
            app.metrics
                .redis_message(component_id, "ok", started.elapsed());
            Ok(())
        }
        Ok(Err(_)) => {
            app.metrics
                .redis_message(component_id, "error", started.elapsed());
            anyhow::bail!("Redis handler returned an error")
        }
        Err(e) => {
            let failure = crate::server::classify_failure(&e);
            app.metrics.guest_failed(component_id, failure);
            app.metrics
                .redis_message(component_id, "error", started.elapsed());
            if failure == GuestFailure::Deadline {
                anyhow::bail!("stopped at the request deadline")
            }
            anyhow::bail!("guest failed: {e:?}")
        }
    }
}
