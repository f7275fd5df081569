//! The admin routes (docs/API.md "Order events"): the outbox with its delivery
//! state, and delivery on request — the way to deliver where the platform
//! has no Redis trigger (call `POST /api/v1/events/deliver` from a
//! schedule), and after an outage.

use serde::Serialize;
use shared::auth::{authenticate, Principal};
use shared::context::RequestContext;
use shared::domain::{Page, Pagination};
use shared::error::{ApiError, FieldError};
use shared::http::{Method, Request, Response};
use shared::id::is_valid_id;
use shared::kv::KeyValue;
use shared::router::Router;

pub use crate::config::Config;
use crate::deliver::{self, Clock, Delivery, Summary, Webhook};
use crate::model::{EventView, State};
use crate::repo::EventStore;

/// How long one delivery run may take: under the 30 s request deadline of
/// Fermyon's cloud, Akamai Functions and the test host.
pub const RUN_BUDGET_MS: i64 = 20_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    List,
    Deliver,
    Redeliver,
}

fn router() -> Router<Route> {
    Router::new()
        .route(Method::Get, "/api/v1/events", Route::List)
        .route(Method::Post, "/api/v1/events/deliver", Route::Deliver)
        .route(
            Method::Post,
            "/api/v1/events/:id/redeliver",
            Route::Redeliver,
        )
}

/// What the routes work with besides the request.
pub struct Ports<'a> {
    /// The revocation marks of the admin's token.
    pub kv: &'a dyn KeyValue,
    /// The outbox.
    pub store: &'a dyn EventStore,
    /// Sends webhook requests.
    pub webhook: &'a dyn Webhook,
    /// Time and waiting.
    pub clock: &'a dyn Clock,
}

/// Runs one delivery run, or says why there is none: without `webhook_url`
/// it is 409 `invalid_state` (not 503: waiting will not make a receiver
/// appear), and the events stay in the outbox.
pub fn deliver_now(config: &Config, ports: &Ports<'_>) -> Result<Summary, ApiError> {
    let webhook = config.webhook.as_ref().ok_or_else(|| {
        ApiError::InvalidState(
            "No webhook_url is configured; events wait in the outbox until one is.".into(),
        )
    })?;
    deliver::run(
        ports.store,
        ports.webhook,
        ports.clock,
        &Delivery {
            url: &webhook.url,
            keys: &webhook.keys,
            max_attempts: config.max_attempts,
            budget_ms: RUN_BUDGET_MS,
        },
    )
}

/// Routes and answers one request.
pub fn handle(
    ctx: &RequestContext,
    req: &Request,
    config: &Config,
    ports: &Ports<'_>,
) -> Result<Response, ApiError> {
    let (route, params) = router().dispatch(ctx, &req.method, &req.path)?;
    admin(ctx, req, config, ports)?;
    let response = match route {
        Route::List => list(req, ports)?,
        Route::Deliver => Response::json(200, &Delivered::of(deliver_now(config, ports)?, ports)?),
        Route::Redeliver => redeliver(ctx, config, ports, params.get("id").unwrap_or(""))?,
    };
    Ok(response.with_header("cache-control", "no-store"))
}

fn admin(
    ctx: &RequestContext,
    req: &Request,
    config: &Config,
    ports: &Ports<'_>,
) -> Result<Principal, ApiError> {
    let principal = authenticate(ctx, req, &config.tokens, ports.kv)?;
    if principal.is_admin() {
        Ok(principal)
    } else {
        Err(ApiError::Forbidden)
    }
}

/// `GET /api/v1/events?state=&page=&limit=`: newest first.
fn list(req: &Request, ports: &Ports<'_>) -> Result<Response, ApiError> {
    let page = Pagination::from_request(req)?;
    let state = match req.query_param("state") {
        None => None,
        Some(s) => Some(State::parse(&s).ok_or_else(|| {
            ApiError::Validation(vec![FieldError::new(
                "state",
                "must be pending, delivered or failed",
            )])
        })?),
    };
    let (events, total) = ports.store.list(state, page)?;
    let views: Vec<EventView> = events.iter().map(|e| e.view()).collect();
    Ok(Response::json(200, &Page::new(views, page, total)))
}

/// `POST /api/v1/events/{id}/redeliver`: pending again and due now, then a
/// delivery run; answers the event as it is after the run.
fn redeliver(
    ctx: &RequestContext,
    config: &Config,
    ports: &Ports<'_>,
    id: &str,
) -> Result<Response, ApiError> {
    if !is_valid_id(id) {
        return Err(ApiError::NotFound);
    }
    ports
        .store
        .redeliver(id, ctx.now_ms)?
        .ok_or(ApiError::NotFound)?;
    deliver_now(config, ports)?;
    let event = ports.store.get(id)?.ok_or(ApiError::NotFound)?;
    Ok(Response::json(200, &event.view()))
}

/// The answer of `POST /api/v1/events/deliver`.
#[derive(Debug, Serialize)]
struct Delivered {
    #[serde(flatten)]
    run: Summary,
    /// Events still pending after the run.
    pending: u64,
}

impl Delivered {
    fn of(run: Summary, ports: &Ports<'_>) -> Result<Self, ApiError> {
        let one = Pagination { page: 1, limit: 1 };
        let (_, pending) = ports.store.list(Some(State::Pending), one)?;
        Ok(Self { run, pending })
    }
}

#[cfg(test)]
mod tests;
