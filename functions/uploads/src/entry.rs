//! The Spin entry point: Spin variables into [`crate::config::Config`], Spin's
//! key-value store, MySQL and (with `upload_storage = s3`) the bucket behind
//! the ports, then [`crate::app::handle_admitted`].

use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use shared::config::Vars;
use shared::http::Method;
use shared::spin::{optional_variable, serve_admitted, SpinKv, SpinSql};

use crate::app;
use crate::config::{Config, Storage};
use crate::repo::MySqlUploads;
use crate::store::{Http, ObjectStore, Reply, S3Store};

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
        // of the body is read (API.md: 401 before any of the body is read).
        |ctx, head| {
            let config = Config::from_vars(&vars)?;
            let kv = SpinKv::new("default");
            let admitted = app::admit(ctx, head, &config, &kv)?;
            Ok((config, kv, admitted))
        },
        |ctx, req, (config, kv, admitted)| {
            // MySQL opens lazily: a cached 304 touches neither MySQL nor, for
            // a public upload, anything but one key-value read.
            let sql = SpinSql::new(vars.required("db_url")?);
            let store = match &config.storage {
                Storage::S3(settings) => Some(S3Store::new(settings, SpinHttp)?),
                Storage::Mysql => None,
            };
            let store = store.as_ref().map(|s| s as &dyn ObjectStore);
            app::handle_admitted(
                ctx,
                req,
                &config,
                &kv,
                &MySqlUploads::new(&sql),
                store,
                admitted,
            )
        },
    )
    .await
}

/// Spin's outbound HTTP (`allowed_outbound_hosts` must name `s3_endpoint`).
/// The handlers are synchronous and nothing else is in flight in this
/// instance, so each send is driven to completion where it is made.
struct SpinHttp;

impl SpinHttp {
    fn request(
        method: Method,
        url: &str,
        headers: &[(&str, String)],
        body: &[u8],
    ) -> spin_sdk::http::Request {
        use spin_sdk::http::Method as Spin;
        let mut request = spin_sdk::http::Request::builder();
        request
            // Every method as itself: a method this list lacks must never
            // turn into another (a DELETE sent as a GET would "succeed").
            .method(match method {
                Method::Get => Spin::Get,
                Method::Head => Spin::Head,
                Method::Post => Spin::Post,
                Method::Put => Spin::Put,
                Method::Patch => Spin::Patch,
                Method::Delete => Spin::Delete,
                Method::Options => Spin::Options,
                Method::Other(name) => Spin::Other(name),
            })
            .uri(url)
            .body(body.to_vec());
        for (name, value) in headers {
            request.header(*name, value.as_str());
        }
        request.build()
    }
}

impl Http for SpinHttp {
    fn send(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, String)],
        body: &[u8],
    ) -> Result<Reply, String> {
        let response: spin_sdk::http::Response = spin_sdk::http::run(spin_sdk::http::send(
            Self::request(method, url, headers, body),
        ))
        .map_err(|e| format!("{e}"))?;
        Ok(Reply {
            status: *response.status(),
            headers: response
                .headers()
                .filter_map(|(n, v)| Some((n.to_ascii_lowercase(), v.as_str()?.to_string())))
                .collect(),
            body: response.into_body(),
        })
    }

    fn sha256_of(&self, url: &str) -> Result<Result<[u8; 32], u16>, String> {
        spin_sdk::http::run(async {
            let response: spin_sdk::http::IncomingResponse =
                spin_sdk::http::send(Self::request(Method::Get, url, &[], &[]))
                    .await
                    .map_err(|e| format!("{e}"))?;
            if response.status() != 200 {
                return Ok(Err(response.status()));
            }
            // Chunk by chunk: an object of any size is hashed in bounded memory.
            let mut hasher = Sha256::new();
            let mut body = response.take_body_stream();
            while let Some(chunk) = body.next().await {
                hasher.update(chunk.map_err(|e| format!("{e:?}"))?);
            }
            Ok(Ok(hasher.finalize().into()))
        })
    }
}
