//! The Spin entry point: Spin variables into [`crate::app::Config`], Spin's
//! key-value store and MySQL behind the ports, then [`crate::app::handle`].

use shared::spin::{numeric_variable, serve_admitted, token_config, variable, SpinKv, SpinSql};
use shared::ApiError;

use crate::app::{
    self, Config, DEFAULT_CACHE_TTL_SECS, DEFAULT_MAX_UPLOAD_BYTES, DEFAULT_QUOTA_BYTES,
};
use crate::repo::MySqlUploads;

fn config(max_upload_bytes: usize) -> Result<Config, ApiError> {
    Ok(Config {
        tokens: token_config()?,
        max_upload_bytes,
        cache_ttl_secs: numeric_variable("cache_ttl_secs", DEFAULT_CACHE_TTL_SECS)?,
        quota_bytes: numeric_variable("upload_quota_bytes", DEFAULT_QUOTA_BYTES)?,
    })
}

#[spin_sdk::http_component]
async fn handle(req: spin_sdk::http::IncomingRequest) -> spin_sdk::http::Response {
    // The limit must be known before the body is read. A broken variable is
    // reported from inside `serve` (a 500 with a request id, logged); until
    // then the default bounds what is read.
    let max_upload_bytes = numeric_variable("upload_max_bytes", DEFAULT_MAX_UPLOAD_BYTES);
    let body_limit = Config::body_limit(
        *max_upload_bytes
            .as_ref()
            .unwrap_or(&DEFAULT_MAX_UPLOAD_BYTES),
    );
    serve_admitted(
        req,
        body_limit,
        // On the head alone: the route and the caller's token, before a byte
        // of the body is read (API.md: 401 before any of the body is read).
        |ctx, head| {
            let config = config(max_upload_bytes?)?;
            let kv = SpinKv::new("default");
            let admitted = app::admit(ctx, head, &config, &kv)?;
            Ok((config, kv, admitted))
        },
        |ctx, req, (config, kv, admitted)| {
            // MySQL opens lazily: a cached 304 touches neither MySQL nor, for
            // a public upload, anything but one key-value read.
            let sql = SpinSql::new(variable("db_url")?);
            app::handle_admitted(ctx, req, &config, &kv, &MySqlUploads::new(&sql), admitted)
        },
    )
    .await
}
