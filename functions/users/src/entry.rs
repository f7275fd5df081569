//! The Spin entry point: Spin variables into [`crate::config::Config`], Spin's
//! key-value store and MySQL behind the ports, then [`crate::app::handle`].

use identity::repo::SqlIdentity;
use shared::config::Vars;
use shared::http::MAX_JSON_BODY;
use shared::spin::{optional_variable, serve, SpinDb, SpinKv};

use crate::app::{self, Ports};
use crate::config::Config;

#[spin_sdk::http_component]
async fn handle(req: spin_sdk::http::IncomingRequest) -> spin_sdk::http::Response {
    serve(env!("CARGO_PKG_NAME"), req, MAX_JSON_BODY, |ctx, req| {
        let vars = Vars::new(&optional_variable);
        let config = Config::from_vars(&vars)?;
        // Both open lazily: a cache hit never connects to MySQL.
        let kv = SpinKv::new("default").batching(vars.flag("kv_batch_reads", true)?);
        let (sql, replica) = SpinDb::open(&vars.store()?);
        let repo = SqlIdentity::new(&sql).with_replica(replica.as_ref());
        let ports = Ports {
            identity: identity::repo::Ports::new(&kv, &repo),
            db: &sql,
        };
        app::handle(ctx, req, &config, &ports)
    })
    .await
}
