//! The Spin entry point: Spin variables into [`crate::config::Config`], the
//! lazy key-value and MySQL adapters, then [`crate::app::handle`].

use shared::config::Vars;
use shared::http::MAX_JSON_BODY;
use shared::spin::{optional_variable, serve, SpinDb, SpinKv};

use crate::app::{self, Ports};
use crate::config::Config;
use crate::publish::EventPublisher;
use crate::sql::SqlOrders;

#[spin_sdk::http_component]
async fn handle(req: spin_sdk::http::IncomingRequest) -> spin_sdk::http::Response {
    serve(env!("CARGO_PKG_NAME"), req, MAX_JSON_BODY, |ctx, req| {
        let vars = Vars::new(&optional_variable);
        let config = Config::from_vars(&vars)?;
        // Both adapters connect on first use: a cached product read never
        // opens MySQL, a public list never opens the key-value store.
        let kv = SpinKv::new("default");
        let (sql, replica) = SpinDb::open(&vars.store()?);
        let repo = SqlOrders::new(sql).with_replica(replica);
        let events = RedisPublisher {
            url: config.redis_url.as_deref(),
            channel: &config.events_channel,
        };
        let ports = Ports {
            kv: &kv,
            repo: &repo,
            events: &events,
        };
        app::handle(ctx, req, &config, &ports)
    })
    .await
}

/// Publishes through Spin's outbound Redis (`fermyon:spin/redis`), one
/// connection per announcement (an order announces at most one event).
/// Without `redis_url` there is nothing to announce to.
struct RedisPublisher<'a> {
    url: Option<&'a str>,
    channel: &'a str,
}

impl EventPublisher for RedisPublisher<'_> {
    fn publish(&self, event_id: &str) -> Result<(), String> {
        let Some(url) = self.url else {
            return Ok(());
        };
        let connection =
            spin_sdk::redis::Connection::open(url).map_err(|e| format!("open: {e}"))?;
        connection
            .publish(self.channel, event_id.as_bytes())
            .map_err(|e| format!("publish: {e}"))
    }
}
