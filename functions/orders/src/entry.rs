//! The Spin entry point: configuration from Spin variables, the lazy
//! key-value and MySQL adapters, then [`crate::app::handle`].

use shared::http::MAX_JSON_BODY;
use shared::spin::{numeric_variable, serve, token_config, variable, SpinKv, SpinSql};

use crate::app::{handle as app_handle, Config};
use crate::mysql::MySqlRepo;

#[spin_sdk::http_component]
async fn handle(req: spin_sdk::http::IncomingRequest) -> spin_sdk::http::Response {
    serve(req, MAX_JSON_BODY, |ctx, req| {
        let tokens = token_config()?;
        let cache_ttl_secs: i64 = numeric_variable("cache_ttl_secs", 300)?;
        let config = Config {
            tokens,
            cache_ttl_ms: cache_ttl_secs.max(0) * 1000,
        };
        // Both adapters connect on first use: a cached product read never
        // opens MySQL, a public list never opens the key-value store.
        let kv = SpinKv::new("default");
        let repo = MySqlRepo::new(SpinSql::new(variable("db_url")?));
        app_handle(ctx, req, &config, &kv, &repo)
    })
    .await
}
