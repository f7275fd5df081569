//! Routes and handlers of the orders component: plain Rust over the
//! key-value port and the [`OrderRepo`] port, no `spin_sdk`.
//!
//! Decisions where docs/API.md is silent (also in the OpenAPI notes of README):
//! * Checks run in this order: authentication (401), permission (403), input
//!   (400), existence (404), state/stock (409).
//! * Ids that [`is_valid_id`] rejects cannot name a record: 404 without a
//!   database round trip.
//! * Product lists are oldest first (catalogue order); order lists newest first.
//! * `GET /orders?user_id=` is an admin filter; a user may pass their own id,
//!   anyone else's is 403.
//! * Under an `Idempotency-Key`, the first answer is stored when it is the
//!   answer to the request itself: the 201, or a 404 `product_not_found` / 409
//!   `insufficient_stock` refusal (replayed for 24 hours even if stock comes
//!   back, as docs/API.md's "gets the first answer" says; a new key places anew).
//!   Input errors (400/415/413/422) are answered before the key is reserved,
//!   and service failures (5xx) roll the reservation back, so neither is stored
//!   and a retry with the same key is processed afresh. A replay carries the
//!   first body byte for byte, including the first request's `request_id`
//!   inside a problem document (its `X-Request-Id` header is its own).
//! * Every response about orders (placement, replay, list, one order, cancel)
//!   carries `Cache-Control: no-store`: it holds what someone bought, and no
//!   cache, shared or private, may keep it. Products are public catalogue
//!   data and carry no such header.
//! * Product reads are cached (`p:<id>`), but only products that exist: a
//!   request for an unknown id leaves no key behind ([`Cache::read_through`]),
//!   so anonymous probing cannot fill the key-value store. A miss costs one
//!   primary-key lookup. A write invalidates after its commit.
//!   A read racing a write can re-cache the old value until its TTL (a
//!   cache-aside limit); stock shown by `GET /products/{id}` is informative —
//!   placing an order always checks the locked row in MySQL.

use shared::auth::{authenticate, Principal};
use shared::cache::{Cache, Served};
use shared::context::RequestContext;
use shared::domain::{Page, Pagination};
use shared::error::ApiError;
use shared::http::{Method, Request, Response};
use shared::id::{is_valid_id, new_id};
use shared::kv::KeyValue;
use shared::router::{Params, Router};

pub use crate::config::Config;
use crate::model::{
    IdempotencyKey, NewProductBody, Order, OrderView, PlaceOrderBody, Placement, ProductPatchBody,
    ProductView,
};
use crate::publish::EventPublisher;
use crate::repo::{new_product, Cancelled, NewOrder, OrderFilter, OrderRepo};

/// `Cache-Control` of every response that holds an order.
pub const ORDER_CACHE_CONTROL: &str = "no-store";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    CreateProduct,
    ListProducts,
    GetProduct,
    UpdateProduct,
    PlaceOrder,
    ListOrders,
    GetOrder,
    CancelOrder,
}

fn router() -> Router<Route> {
    Router::new()
        .route(Method::Post, "/api/v1/products", Route::CreateProduct)
        .route(Method::Get, "/api/v1/products", Route::ListProducts)
        .route(Method::Get, "/api/v1/products/:id", Route::GetProduct)
        .route(Method::Patch, "/api/v1/products/:id", Route::UpdateProduct)
        .route(Method::Post, "/api/v1/orders", Route::PlaceOrder)
        .route(Method::Get, "/api/v1/orders", Route::ListOrders)
        .route(Method::Get, "/api/v1/orders/:id", Route::GetOrder)
        .route(
            Method::Post,
            "/api/v1/orders/:id/cancel",
            Route::CancelOrder,
        )
}

/// What the routes work with besides the request.
pub struct Ports<'a> {
    /// The product cache, and the revocation marks of tokens.
    pub kv: &'a dyn KeyValue,
    /// Products, orders, idempotency keys and the events outbox.
    pub repo: &'a dyn OrderRepo,
    /// Announces committed order events to the events app.
    pub events: &'a dyn EventPublisher,
}

/// Everything a handler works with.
struct Env<'a> {
    ctx: &'a RequestContext,
    req: &'a Request,
    config: &'a Config,
    kv: &'a dyn KeyValue,
    repo: &'a dyn OrderRepo,
    events: &'a dyn EventPublisher,
}

impl Env<'_> {
    fn principal(&self) -> Result<Principal, ApiError> {
        authenticate(self.ctx, self.req, &self.config.tokens, self.kv)
    }

    fn admin(&self) -> Result<Principal, ApiError> {
        let p = self.principal()?;
        if p.is_admin() {
            Ok(p)
        } else {
            Err(ApiError::Forbidden)
        }
    }

    fn cache(&self) -> Cache<'_> {
        Cache::new(self.kv, self.ctx.now_ms)
    }

    /// Announces a committed event; a failure only delays its delivery.
    fn announce(&self, event_id: &str) {
        if let Err(e) = self.events.publish(event_id) {
            shared::log::warn(format!(
                "events: announcing {event_id} failed (it stays pending): {e}"
            ));
        }
    }

    fn forget_products<'i>(&self, ids: impl IntoIterator<Item = &'i str>) {
        let cache = self.cache();
        for id in ids {
            cache.invalidate(&product_key(id));
        }
    }
}

/// The cache key of a product ([`shared::keys`] holds every prefix).
pub fn product_key(id: &str) -> String {
    shared::keys::product(id)
}

/// Routes and answers one request.
pub fn handle(
    ctx: &RequestContext,
    req: &Request,
    config: &Config,
    ports: &Ports<'_>,
) -> Result<Response, ApiError> {
    let (route, params) = router().dispatch(ctx, &req.method, &req.path)?;
    let env = Env {
        ctx,
        req,
        config,
        kv: ports.kv,
        repo: ports.repo,
        events: ports.events,
    };
    match route {
        Route::CreateProduct => create_product(&env),
        Route::ListProducts => list_products(&env),
        Route::GetProduct => get_product(&env, id(&params)),
        Route::UpdateProduct => update_product(&env, id(&params)),
        Route::PlaceOrder => place_order(&env),
        Route::ListOrders => list_orders(&env),
        Route::GetOrder => get_order(&env, id(&params)),
        Route::CancelOrder => cancel_order(&env, id(&params)),
    }
}

fn id(params: &Params) -> &str {
    params.get("id").unwrap_or("")
}

fn product_response(status: u16, view: &ProductView) -> Response {
    Response::json(status, view)
}

fn order_response(status: u16, order: &Order) -> Response {
    Response::json(status, &order.view()).with_header("cache-control", ORDER_CACHE_CONTROL)
}

fn create_product(env: &Env) -> Result<Response, ApiError> {
    env.admin()?;
    let input = env.req.json::<NewProductBody>()?.validate()?;
    let product = new_product(new_id(env.ctx.now_ms)?, input, env.ctx.now_ms);
    env.repo.create_product(&product)?;
    Ok(product_response(201, &product.view())
        .with_header("location", &format!("/api/v1/products/{}", product.id)))
}

fn list_products(env: &Env) -> Result<Response, ApiError> {
    let page = Pagination::from_request(env.req)?;
    let (products, total) = env.repo.list_products(page)?;
    let views: Vec<ProductView> = products.iter().map(|p| p.view()).collect();
    Ok(Response::json(200, &Page::new(views, page, total)))
}

fn get_product(env: &Env, id: &str) -> Result<Response, ApiError> {
    if !is_valid_id(id) {
        return Err(ApiError::NotFound);
    }
    // A hit answers from the key-value store alone: the loader, and with it
    // the lazily opened MySQL connection, runs only on a miss.
    let served = env
        .cache()
        .read_through_stale_if_error(
            &product_key(id),
            env.config.cache_ttl_ms,
            STALE_IF_ERROR_MS,
            || env.repo.get_product(id),
        )?
        .ok_or(ApiError::NotFound)?;
    Ok(match served {
        Served::Fresh(product) => product_response(200, &product.view()),
        Served::Stale {
            value,
            age_ms,
            stale_for_ms,
        } => product_response(200, &value.view())
            .with_header("age", &(age_ms.max(0) / 1000).to_string())
            .with_header("cache-status", &stale_cache_status(stale_for_ms)),
    })
}

/// How long past its freshness a cached product may still answer while the
/// database is unavailable (stale-if-error).
pub const STALE_IF_ERROR_MS: i64 = 60 * 60 * 1000;

/// The RFC 9211 `Cache-Status` of a stale answer: a hit whose `ttl` is
/// negative (how many seconds ago it went stale), served because of an error.
fn stale_cache_status(stale_for_ms: i64) -> String {
    let stale_secs = (stale_for_ms.max(0) + 999) / 1000;
    format!("spin-api; hit; ttl=-{stale_secs}; detail=stale-if-error")
}

fn update_product(env: &Env, id: &str) -> Result<Response, ApiError> {
    env.admin()?;
    let patch = env.req.json::<ProductPatchBody>()?.validate()?;
    if !is_valid_id(id) {
        return Err(ApiError::NotFound);
    }
    let updated = env.repo.update_product(id, &patch, env.ctx.now_ms)?;
    env.forget_products([id]);
    let product = updated.ok_or(ApiError::NotFound)?;
    Ok(product_response(200, &product.view()))
}

fn place_order(env: &Env) -> Result<Response, ApiError> {
    let principal = env.principal()?;
    let key = IdempotencyKey::from_header(env.req.header("idempotency-key"))?;
    let request = env.req.json::<PlaceOrderBody>()?.validate()?;
    let order_id = new_id(env.ctx.now_ms)?;
    let event_id = new_id(env.ctx.now_ms)?;
    // A refusal is stored under the key exactly as this request receives it.
    let render_refusal = |e: &ApiError| {
        let response = e.to_response(&env.ctx.request_id);
        (response.status, response.body)
    };
    let placement = env.repo.place_order(&NewOrder {
        user_id: &principal.user_id,
        request: &request,
        key: key.as_ref(),
        order_id: &order_id,
        event_id: &event_id,
        now_ms: env.ctx.now_ms,
        render_refusal: &render_refusal,
    })?;
    match placement {
        Placement::Created(order) => {
            env.forget_products(order.items.iter().map(|l| l.product_id.as_str()));
            env.announce(&event_id);
            Ok(order_response(201, &order)
                .with_header("location", &format!("/api/v1/orders/{}", order.id)))
        }
        Placement::Refused(e) => Err(e),
        Placement::Replayed(stored) => {
            let content_type = if stored.status >= 400 {
                "application/problem+json"
            } else {
                "application/json"
            };
            let mut response = Response::new(stored.status)
                .with_header("content-type", content_type)
                .with_header("cache-control", ORDER_CACHE_CONTROL)
                .with_body(stored.body);
            if let Some(id) = stored.order_id {
                response = response.with_header("location", &format!("/api/v1/orders/{id}"));
            }
            Ok(response)
        }
    }
}

fn list_orders(env: &Env) -> Result<Response, ApiError> {
    let principal = env.principal()?;
    let page = Pagination::from_request(env.req)?;
    let filter = match env.req.query_param("user_id") {
        None if principal.is_admin() => OrderFilter::All,
        None => OrderFilter::User(principal.user_id.clone()),
        Some(u) if principal.may_access_user(&u) => OrderFilter::User(u),
        Some(_) => return Err(ApiError::Forbidden),
    };
    let (orders, total) = env.repo.list_orders(&filter, page)?;
    let views: Vec<OrderView> = orders.iter().map(Order::view).collect();
    Ok(Response::json(200, &Page::new(views, page, total))
        .with_header("cache-control", ORDER_CACHE_CONTROL))
}

fn get_order(env: &Env, id: &str) -> Result<Response, ApiError> {
    let principal = env.principal()?;
    if !is_valid_id(id) {
        return Err(ApiError::NotFound);
    }
    // Someone else's order is 404, not 403: its existence is not the caller's to know.
    let order = env
        .repo
        .get_order(id)?
        .filter(|o| principal.may_access_user(&o.user_id))
        .ok_or(ApiError::NotFound)?;
    Ok(order_response(200, &order))
}

fn cancel_order(env: &Env, id: &str) -> Result<Response, ApiError> {
    let principal = env.principal()?;
    if !is_valid_id(id) {
        return Err(ApiError::NotFound);
    }
    let may = |owner: &str| principal.may_access_user(owner);
    let event_id = new_id(env.ctx.now_ms)?;
    match env.repo.cancel_order(id, &may, &event_id, env.ctx.now_ms)? {
        None => Err(ApiError::NotFound),
        Some(Cancelled::Now(order)) => {
            env.forget_products(order.items.iter().map(|l| l.product_id.as_str()));
            env.announce(&event_id);
            Ok(order_response(200, &order))
        }
        Some(Cancelled::Already(order)) => Ok(order_response(200, &order)),
    }
}

#[cfg(test)]
mod tests;
