//! The Spin entry point: Spin variables into [`crate::app::Config`], Spin's
//! key-value store and MySQL behind the ports, then [`crate::app::handle`].

use shared::http::MAX_JSON_BODY;
use shared::spin::{numeric_variable, serve, token_config, variable, SpinKv, SpinSql};
use shared::users::MySqlUsers;
use shared::ApiError;

use crate::app::{self, Config};

fn config() -> Result<Config, ApiError> {
    let cache_ttl_secs: i64 = numeric_variable("cache_ttl_secs", 300)?;
    Ok(Config {
        tokens: token_config()?,
        cache_ttl_ms: cache_ttl_secs.saturating_mul(1000),
    })
}

#[spin_sdk::http_component]
async fn handle(req: spin_sdk::http::IncomingRequest) -> spin_sdk::http::Response {
    serve(req, MAX_JSON_BODY, |ctx, req| {
        let config = config()?;
        // Both open lazily: a cache hit never connects to MySQL.
        let kv = SpinKv::new("default");
        let sql = SpinSql::new(variable("db_url")?);
        app::handle(ctx, req, &config, &kv, &MySqlUsers::new(&sql))
    })
    .await
}
