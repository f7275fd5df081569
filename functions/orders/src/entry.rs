//! The Spin entry point: Spin variables into [`crate::config::Config`], the
//! lazy key-value and MySQL adapters, then [`crate::app::handle`].

use shared::config::Vars;
use shared::http::MAX_JSON_BODY;
use shared::spin::{optional_variable, serve, SpinKv, SpinSql};

use crate::app;
use crate::config::Config;
use crate::mysql::MySqlOrders;

#[spin_sdk::http_component]
async fn handle(req: spin_sdk::http::IncomingRequest) -> spin_sdk::http::Response {
    serve(env!("CARGO_PKG_NAME"), req, MAX_JSON_BODY, |ctx, req| {
        let vars = Vars::new(&optional_variable);
        let config = Config::from_vars(&vars)?;
        // Both adapters connect on first use: a cached product read never
        // opens MySQL, a public list never opens the key-value store.
        let kv = SpinKv::new("default");
        let repo = MySqlOrders::new(SpinSql::new(vars.required("db_url")?));
        app::handle(ctx, req, &config, &kv, &repo)
    })
    .await
}
