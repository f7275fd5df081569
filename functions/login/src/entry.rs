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
        // Both open lazily: a malformed request never connects to MySQL.
        let kv = SpinKv::new("default");
        // Authentication reads the primary only: a replica is never asked.
        let (sql, _) = SpinDb::open(&vars.store()?);
        let repo = SqlIdentity::new(&sql);
        let ports = Ports::new(&kv, &repo);
        app::handle(ctx, req, &config, &ports)
    })
    .await
}
