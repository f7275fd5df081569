//! The Spin entry point: Spin variables into [`crate::config::Config`], Spin's
//! key-value store, MySQL and (with `upload_storage = s3`) the bucket behind
//! the ports, then [`crate::app::handle_admitted`].

use shared::config::Vars;
use shared::spin::{optional_variable, serve_admitted, SpinDb, SpinHttp, SpinKv};

use crate::app::{self, Ports};
use crate::config::{Config, Storage};
use crate::sql::SqlUploads;
use crate::store::{ObjectStore, S3Store};

#[spin_sdk::http_component]
async fn handle(req: spin_sdk::http::IncomingRequest) -> spin_sdk::http::Response {
    let vars = Vars::new(&optional_variable);
    // The limit must be known before the body is read. A broken variable is
    // reported from inside `serve_admitted` (a 500 with a request id,
    // logged); until then the default bounds what is read.
    let body_limit = Config::body_limit_of(&vars);
    serve_admitted(
        env!("CARGO_PKG_NAME"),
        req,
        body_limit,
        // On the head alone: the route and the caller's token, before a byte
        // of the body is read (docs/API.md: 401 before any of the body is read).
        |ctx, head| {
            let config = Config::from_vars(&vars)?;
            let kv = SpinKv::new("default");
            let admitted = app::admit(ctx, head, &config, &kv)?;
            Ok((config, kv, admitted))
        },
        |ctx, req, (config, kv, admitted)| {
            // MySQL opens lazily: a cached 304 touches neither MySQL nor, for
            // a public upload, anything but one key-value read.
            let (sql, replica) = SpinDb::open(&vars.store()?);
            let store = match &config.storage {
                Storage::S3(settings) => Some(S3Store::new(settings, SpinHttp)?),
                Storage::Database => None,
            };
            let ports = Ports {
                kv: &kv,
                repo: &SqlUploads::new(&sql).with_replica(replica.as_ref()),
                store: store.as_ref().map(|s| s as &dyn ObjectStore),
            };
            app::handle_admitted(ctx, req, &config, &ports, admitted)
        },
    )
    .await
}
