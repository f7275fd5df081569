//! Handler tests on the in-memory fakes: status, body and side effects.

use std::cell::Cell;

use serde_json::{json, Value as Json};
use shared::auth::Role;
use shared::context::RequestContext;
use shared::domain::Pagination;
use shared::error::ApiError;
use shared::http::{Method, Request, Response};
use shared::kv::{FailingKv, KeyValue, MemoryKv};
use shared::testing::{token_config, NOW};

use crate::app::{handle, product_key, Config, Ports, STALE_IF_ERROR_MS};
use crate::model::{Order, OrderStatus, Placement, Product, ProductPatch, IDEMPOTENCY_TTL_MS};
use crate::publish::MemoryPublisher;
use crate::repo::{Cancelled, MemoryOrders, NewOrder, OrderFilter, OrderRepo};

const ADMIN: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const ALICE: &str = "a11ce000000000000000000000000000";
const BOB: &str = "b0b00000000000000000000000000000";

fn config() -> Config {
    Config {
        tokens: token_config(),
        cache_ttl_ms: 300_000,
        redis_url: None,
        events_channel: "order-events".into(),
    }
}

fn token(user: &str, role: Role) -> String {
    shared::testing::token(user, role, "sess", NOW)
}

struct World {
    kv: MemoryKv,
    repo: MemoryOrders,
    events: MemoryPublisher,
    now: i64,
}

impl World {
    fn new() -> Self {
        Self {
            kv: MemoryKv::new(),
            repo: MemoryOrders::new(),
            events: MemoryPublisher::default(),
            now: NOW,
        }
    }

    fn send(&self, req: Request) -> Response {
        self.send_with(req, &self.kv, &self.repo)
    }

    fn send_with(&self, req: Request, kv: &dyn KeyValue, repo: &dyn OrderRepo) -> Response {
        let ctx = RequestContext::new(&req, self.now);
        let ports = Ports {
            kv,
            repo,
            events: &self.events,
        };
        ctx.finish(handle(&ctx, &req, &config(), &ports))
    }

    fn product(&self, sku: &str, price: i64, stock: i64) -> String {
        let resp = self.send(
            as_user(post("/api/v1/products"), ADMIN, Role::Admin).with_json(
                &json!({"sku": sku, "name": "Thing", "price_cents": price, "stock": stock}),
            ),
        );
        assert_eq!(resp.status, 201, "{:?}", resp.json_body());
        resp.json_body()["id"].as_str().unwrap().to_string()
    }

    fn order(&self, user: &str, items: Json) -> Response {
        self.send(
            as_user(post("/api/v1/orders"), user, Role::User).with_json(&json!({ "items": items })),
        )
    }

    fn stock(&self, id: &str) -> i64 {
        self.repo
            .snapshot()
            .products
            .iter()
            .find(|p| p.id == id)
            .unwrap()
            .stock
    }
}

fn post(path: &str) -> Request {
    Request::new(Method::Post, path)
}

fn get(path: &str) -> Request {
    Request::new(Method::Get, path)
}

fn as_user(req: Request, user: &str, role: Role) -> Request {
    req.with_header("authorization", &format!("Bearer {}", token(user, role)))
}

fn code(resp: &Response) -> String {
    resp.json_body()["code"].as_str().unwrap_or("").to_string()
}

// ------------------------------------------------------------------ products

#[test]
fn admin_creates_product_with_location() {
    let w = World::new();
    let resp = w.send(
        as_user(post("/api/v1/products"), ADMIN, Role::Admin)
            .with_json(&json!({"sku":"MUG-1","name":"Mug","price_cents":1250,"stock":3})),
    );
    assert_eq!(resp.status, 201);
    let body = resp.json_body();
    assert_eq!(body["sku"], "MUG-1");
    assert_eq!(body["stock"], 3);
    assert_eq!(body["created_at"], "2027-01-15T08:00:00.000Z");
    let id = body["id"].as_str().unwrap();
    assert_eq!(
        resp.header("location"),
        Some(format!("/api/v1/products/{id}").as_str())
    );
    assert_eq!(w.repo.snapshot().products.len(), 1);
}

#[test]
fn user_cannot_create_product() {
    let w = World::new();
    let resp = w.send(
        as_user(post("/api/v1/products"), ALICE, Role::User)
            .with_json(&json!({"sku":"x","name":"x","price_cents":1,"stock":1})),
    );
    assert_eq!((resp.status, code(&resp).as_str()), (403, "forbidden"));
    assert!(w.repo.snapshot().products.is_empty());
}

#[test]
fn anonymous_create_is_401() {
    let w = World::new();
    let resp = w.send(post("/api/v1/products").with_json(&json!({})));
    assert_eq!((resp.status, code(&resp).as_str()), (401, "invalid_token"));
}

#[test]
fn duplicate_sku_is_409_sku_taken() {
    let w = World::new();
    w.product("DUP", 1, 1);
    let resp = w.send(
        as_user(post("/api/v1/products"), ADMIN, Role::Admin)
            .with_json(&json!({"sku":"DUP","name":"x","price_cents":1,"stock":1})),
    );
    assert_eq!((resp.status, code(&resp).as_str()), (409, "sku_taken"));
}

#[test]
fn invalid_product_lists_every_field() {
    let w = World::new();
    let resp = w.send(
        as_user(post("/api/v1/products"), ADMIN, Role::Admin)
            .with_json(&json!({"sku":"","name":"","price_cents":-1,"stock":1.5})),
    );
    assert_eq!(resp.status, 400);
    assert_eq!(resp.json_body()["errors"].as_array().unwrap().len(), 4);
}

#[test]
fn unknown_product_field_is_400_invalid_body() {
    let w = World::new();
    let resp = w.send(
        as_user(post("/api/v1/products"), ADMIN, Role::Admin)
            .with_json(&json!({"sku":"a","name":"a","price_cents":1,"stock":1,"color":"red"})),
    );
    assert_eq!((resp.status, code(&resp).as_str()), (400, "invalid_body"));
}

#[test]
fn product_list_is_public_and_paginated() {
    let w = World::new();
    for i in 0..3 {
        w.product(&format!("L{i}"), 1, 1);
    }
    let resp = w.send(get("/api/v1/products?page=2&limit=2"));
    assert_eq!(resp.status, 200);
    let body = resp.json_body();
    assert_eq!(
        (
            body["page"].as_i64(),
            body["limit"].as_i64(),
            body["total"].as_i64()
        ),
        (Some(2), Some(2), Some(3))
    );
    assert_eq!(body["items"].as_array().unwrap().len(), 1);
    assert_eq!(body["items"][0]["sku"], "L2");
}

#[test]
fn bad_pagination_is_400() {
    let w = World::new();
    let resp = w.send(get("/api/v1/products?limit=0"));
    assert_eq!(
        (resp.status, code(&resp).as_str()),
        (400, "validation_failed")
    );
}

#[test]
fn get_product_fills_the_cache() {
    let w = World::new();
    let id = w.product("C1", 5, 5);
    let resp = w.send(get(&format!("/api/v1/products/{id}")));
    assert_eq!(resp.status, 200);
    assert!(w.kv.contains(&product_key(&id)));
}

/// A repository that counts every call, to prove a cache hit skips it, and
/// that can be made unreachable, as a database that is down.
struct Counting<'a> {
    inner: &'a MemoryOrders,
    calls: Cell<u32>,
    down: bool,
}

impl Counting<'_> {
    fn tick(&self) -> Result<(), ApiError> {
        self.calls.set(self.calls.get() + 1);
        match self.down {
            true => Err(ApiError::Unavailable("database down".into())),
            false => Ok(()),
        }
    }
}

impl OrderRepo for Counting<'_> {
    fn create_product(&self, p: &Product) -> Result<(), ApiError> {
        self.tick()?;
        self.inner.create_product(p)
    }
    fn list_products(&self, page: Pagination) -> Result<(Vec<Product>, u64), ApiError> {
        self.tick()?;
        self.inner.list_products(page)
    }
    fn get_product(&self, id: &str) -> Result<Option<Product>, ApiError> {
        self.tick()?;
        self.inner.get_product(id)
    }
    fn update_product(
        &self,
        id: &str,
        patch: &ProductPatch,
        now_ms: i64,
    ) -> Result<Option<Product>, ApiError> {
        self.tick()?;
        self.inner.update_product(id, patch, now_ms)
    }
    fn place_order(&self, order: &NewOrder<'_>) -> Result<Placement, ApiError> {
        self.tick()?;
        self.inner.place_order(order)
    }
    fn list_orders(
        &self,
        filter: &OrderFilter,
        page: Pagination,
    ) -> Result<(Vec<Order>, u64), ApiError> {
        self.tick()?;
        self.inner.list_orders(filter, page)
    }
    fn get_order(&self, id: &str) -> Result<Option<Order>, ApiError> {
        self.tick()?;
        self.inner.get_order(id)
    }
    fn cancel_order(
        &self,
        id: &str,
        may_cancel: &dyn Fn(&str) -> bool,
        event_id: &str,
        now_ms: i64,
    ) -> Result<Option<Cancelled>, ApiError> {
        self.tick()?;
        self.inner.cancel_order(id, may_cancel, event_id, now_ms)
    }
}

#[test]
fn cached_product_is_served_without_the_database() {
    let w = World::new();
    let id = w.product("C2", 5, 5);
    let counting = Counting {
        inner: &w.repo,
        calls: Cell::new(0),
        down: false,
    };
    let path = format!("/api/v1/products/{id}");
    for _ in 0..3 {
        assert_eq!(w.send_with(get(&path), &w.kv, &counting).status, 200);
    }
    assert_eq!(counting.calls.get(), 1);
}

#[test]
fn unknown_products_are_404_and_leave_no_key_in_the_store() {
    let w = World::new();
    for i in 0..100 {
        let resp = w.send(get(&format!("/api/v1/products/{i:032x}")));
        assert_eq!((resp.status, code(&resp).as_str()), (404, "not_found"));
    }
    assert!(w.kv.keys().is_empty());
}

#[test]
fn every_order_response_is_no_store() {
    let w = World::new();
    let a = w.product("NS", 1, 10);
    let placed = w.order(ALICE, json!([{"product_id": a, "quantity": 1}]));
    assert_eq!(placed.status, 201);
    assert_eq!(placed.header("cache-control"), Some("no-store"));
    let id = placed.json_body()["id"].as_str().unwrap().to_string();
    for resp in [
        w.send(as_user(
            get(&format!("/api/v1/orders/{id}")),
            ALICE,
            Role::User,
        )),
        w.send(as_user(get("/api/v1/orders"), ALICE, Role::User)),
        w.send(as_user(
            post(&format!("/api/v1/orders/{id}/cancel")),
            ALICE,
            Role::User,
        )),
    ] {
        assert_eq!(resp.status, 200);
        assert_eq!(resp.header("cache-control"), Some("no-store"));
    }
}

#[test]
fn a_replayed_order_is_no_store() {
    let w = World::new();
    let a = w.product("NR", 1, 10);
    let body = json!({"items": [{"product_id": a, "quantity": 1}]});
    let send = || {
        w.send(
            as_user(post("/api/v1/orders"), ALICE, Role::User)
                .with_header("idempotency-key", "k-1")
                .with_json(&body),
        )
    };
    assert_eq!(send().status, 201);
    let replay = send();
    assert_eq!(replay.status, 201);
    assert_eq!(replay.header("cache-control"), Some("no-store"));
}

#[test]
fn malformed_product_id_is_404_without_lookup() {
    let w = World::new();
    let counting = Counting {
        inner: &w.repo,
        calls: Cell::new(0),
        down: false,
    };
    let resp = w.send_with(get("/api/v1/products/nope"), &w.kv, &counting);
    assert_eq!(resp.status, 404);
    assert_eq!(counting.calls.get(), 0);
}

#[test]
fn failing_cache_falls_back_to_the_database() {
    let w = World::new();
    let id = w.product("C3", 5, 5);
    let resp = w.send_with(get(&format!("/api/v1/products/{id}")), &FailingKv, &w.repo);
    assert_eq!(resp.status, 200);
}

#[test]
fn admin_update_changes_fields_and_invalidates_cache() {
    let w = World::new();
    let id = w.product("U1", 5, 5);
    w.send(get(&format!("/api/v1/products/{id}")));
    assert!(w.kv.contains(&product_key(&id)));
    let resp = w.send(
        as_user(
            Request::new(Method::Patch, &format!("/api/v1/products/{id}")),
            ADMIN,
            Role::Admin,
        )
        .with_json(&json!({"price_cents": 99, "stock": 0})),
    );
    assert_eq!(resp.status, 200);
    assert_eq!(resp.json_body()["price_cents"], 99);
    assert_eq!(resp.json_body()["sku"], "U1");
    assert!(!w.kv.contains(&product_key(&id)));
    assert_eq!(w.stock(&id), 0);
}

#[test]
fn update_of_unknown_product_is_404_and_by_user_403() {
    let w = World::new();
    let path = format!("/api/v1/products/{}", "1".repeat(32));
    let body = json!({"name": "x"});
    let resp =
        w.send(as_user(Request::new(Method::Patch, &path), ADMIN, Role::Admin).with_json(&body));
    assert_eq!(resp.status, 404);
    let resp =
        w.send(as_user(Request::new(Method::Patch, &path), ALICE, Role::User).with_json(&body));
    assert_eq!(resp.status, 403);
}

#[test]
fn sku_cannot_be_patched() {
    let w = World::new();
    let id = w.product("U2", 5, 5);
    let resp = w.send(
        as_user(
            Request::new(Method::Patch, &format!("/api/v1/products/{id}")),
            ADMIN,
            Role::Admin,
        )
        .with_json(&json!({"sku": "other"})),
    );
    assert_eq!((resp.status, code(&resp).as_str()), (400, "invalid_body"));
}

#[test]
fn wrong_method_is_405_with_allow() {
    let w = World::new();
    let resp = w.send(Request::new(Method::Delete, "/api/v1/products"));
    assert_eq!(resp.status, 405);
    assert_eq!(resp.header("allow"), Some("POST, GET"));
    let resp = w.send(get("/api/v1/orders/x/cancel"));
    assert_eq!(resp.header("allow"), Some("POST"));
}

#[test]
fn unknown_path_is_404() {
    let w = World::new();
    assert_eq!(w.send(get("/api/v1/products/a/b")).status, 404);
}

// ------------------------------------------------------------------ orders

#[test]
fn placing_an_order_takes_stock_and_copies_prices() {
    let w = World::new();
    let a = w.product("A", 250, 5);
    let b = w.product("B", 1000, 2);
    w.send(get(&format!("/api/v1/products/{a}")));
    let resp = w.order(
        ALICE,
        json!([{"product_id": a, "quantity": 2}, {"product_id": b, "quantity": 2}]),
    );
    assert_eq!(resp.status, 201, "{:?}", resp.json_body());
    let body = resp.json_body();
    assert_eq!(body["status"], "created");
    assert_eq!(body["user_id"], ALICE);
    assert_eq!(body["total_cents"], 2 * 250 + 2 * 1000);
    assert_eq!(body["items"][0]["unit_price_cents"], 250);
    assert_eq!(body["items"][0]["line_total_cents"], 500);
    assert_eq!(body["items"][1]["sku"], "B");
    let id = body["id"].as_str().unwrap();
    assert_eq!(
        resp.header("location"),
        Some(format!("/api/v1/orders/{id}").as_str())
    );
    assert_eq!((w.stock(&a), w.stock(&b)), (3, 0));
    assert!(
        !w.kv.contains(&product_key(&a)),
        "stock change invalidates the cache"
    );
}

#[test]
fn shortfall_is_409_and_changes_nothing() {
    let w = World::new();
    let a = w.product("A", 1, 5);
    let b = w.product("B", 1, 1);
    let resp = w.order(
        ALICE,
        json!([{"product_id": a, "quantity": 1}, {"product_id": b, "quantity": 2}]),
    );
    assert_eq!(
        (resp.status, code(&resp).as_str()),
        (409, "insufficient_stock")
    );
    assert_eq!(resp.json_body()["product_id"], b.as_str());
    assert_eq!((w.stock(&a), w.stock(&b)), (5, 1));
    assert!(w.repo.snapshot().orders.is_empty());
}

#[test]
fn unknown_product_in_order_is_404_naming_it() {
    let w = World::new();
    let a = w.product("A", 1, 5);
    let ghost = "f".repeat(32);
    let resp = w.order(
        ALICE,
        json!([{"product_id": a, "quantity": 1}, {"product_id": ghost, "quantity": 1}]),
    );
    assert_eq!(
        (resp.status, code(&resp).as_str()),
        (404, "product_not_found")
    );
    assert_eq!(resp.json_body()["product_id"], ghost.as_str());
    assert_eq!(w.stock(&a), 5);
}

#[test]
fn order_validation_is_400() {
    let w = World::new();
    let resp = w.order(ALICE, json!([{"product_id": "p", "quantity": 0}]));
    assert_eq!(
        (resp.status, code(&resp).as_str()),
        (400, "validation_failed")
    );
    assert_eq!(resp.json_body()["errors"][0]["field"], "items[0].quantity");
}

#[test]
fn anonymous_order_is_401() {
    let w = World::new();
    let resp = w.send(post("/api/v1/orders").with_json(&json!({"items": []})));
    assert_eq!(resp.status, 401);
}

#[test]
fn order_body_must_be_json() {
    let w = World::new();
    let mut req = as_user(post("/api/v1/orders"), ALICE, Role::User)
        .with_header("content-type", "text/plain");
    req.body = b"{}".to_vec();
    assert_eq!(w.send(req).status, 415);
}

fn keyed(w: &World, key: &str, items: Json) -> Response {
    w.send(
        as_user(post("/api/v1/orders"), ALICE, Role::User)
            .with_header("idempotency-key", key)
            .with_json(&json!({ "items": items })),
    )
}

#[test]
fn same_key_same_body_replays_the_first_answer() {
    let w = World::new();
    let a = w.product("A", 7, 10);
    let first = keyed(&w, "k1", json!([{"product_id": a, "quantity": 1}]));
    let again = keyed(&w, "k1", json!([{"product_id": a, "quantity": 1}]));
    assert_eq!(first.status, 201);
    assert_eq!((again.status, &again.body), (201, &first.body));
    assert_eq!(again.header("location"), first.header("location"));
    assert_eq!(w.repo.snapshot().orders.len(), 1);
    assert_eq!(w.stock(&a), 9);
}

#[test]
fn same_key_other_body_is_422() {
    let w = World::new();
    let a = w.product("A", 7, 10);
    keyed(&w, "k1", json!([{"product_id": a, "quantity": 1}]));
    let resp = keyed(&w, "k1", json!([{"product_id": a, "quantity": 2}]));
    assert_eq!(
        (resp.status, code(&resp).as_str()),
        (422, "idempotency_key_reused")
    );
    assert_eq!(w.stock(&a), 9);
}

#[test]
fn keys_are_per_user() {
    let w = World::new();
    let a = w.product("A", 7, 10);
    keyed(&w, "k1", json!([{"product_id": a, "quantity": 1}]));
    let bob = w.send(
        as_user(post("/api/v1/orders"), BOB, Role::User)
            .with_header("idempotency-key", "k1")
            .with_json(&json!({"items": [{"product_id": a, "quantity": 1}]})),
    );
    assert_eq!(bob.status, 201);
    assert_eq!(w.repo.snapshot().orders.len(), 2);
}

#[test]
fn key_older_than_a_day_places_a_new_order() {
    let mut w = World::new();
    let a = w.product("A", 7, 10);
    keyed(&w, "k1", json!([{"product_id": a, "quantity": 1}]));
    w.now = NOW + IDEMPOTENCY_TTL_MS;
    // Tokens are verified at `now`: issue one for the later clock.
    let token = config()
        .tokens
        .issue(ALICE, Role::User, "s", w.now, i64::MAX)
        .unwrap()
        .0;
    let resp = w.send(
        post("/api/v1/orders")
            .with_header("authorization", &format!("Bearer {token}"))
            .with_header("idempotency-key", "k1")
            .with_json(&json!({"items": [{"product_id": a, "quantity": 1}]})),
    );
    assert_eq!(resp.status, 201);
    assert_eq!(w.repo.snapshot().orders.len(), 2);
    assert_eq!(w.repo.snapshot().keys.len(), 1);
}

#[test]
fn refused_order_under_a_key_is_replayed_even_after_a_restock() {
    let w = World::new();
    let a = w.product("A", 7, 1);
    let items = json!([{"product_id": a, "quantity": 2}]);
    let short = keyed(&w, "k1", items.clone());
    assert_eq!(short.status, 409);
    assert_eq!(w.repo.snapshot().keys[0].2.status, 409);
    w.repo.with(|s| s.products[0].stock = 10);
    let again = keyed(&w, "k1", items.clone());
    assert_eq!((again.status, &again.body), (409, &short.body));
    assert_eq!(
        again.header("content-type"),
        Some("application/problem+json")
    );
    assert!(w.repo.snapshot().orders.is_empty());
    // Without the key the same request now succeeds.
    assert_eq!(w.order(ALICE, items).status, 201);
}

#[test]
fn refused_order_without_a_key_leaves_no_trace() {
    let w = World::new();
    let a = w.product("A", 7, 1);
    assert_eq!(
        w.order(ALICE, json!([{"product_id": a, "quantity": 2}]))
            .status,
        409
    );
    assert!(w.repo.snapshot().keys.is_empty());
}

#[test]
fn bad_idempotency_key_is_400() {
    let w = World::new();
    let a = w.product("A", 7, 1);
    let resp = keyed(
        &w,
        &"k".repeat(256),
        json!([{"product_id": a, "quantity": 1}]),
    );
    assert_eq!((resp.status, code(&resp).as_str()), (400, "bad_request"));
}

fn place(w: &World, user: &str, product: &str) -> String {
    let resp = w.order(user, json!([{"product_id": product, "quantity": 1}]));
    assert_eq!(resp.status, 201);
    resp.json_body()["id"].as_str().unwrap().to_string()
}

#[test]
fn users_list_their_own_orders_admin_lists_all() {
    let w = World::new();
    let a = w.product("A", 1, 10);
    place(&w, ALICE, &a);
    place(&w, ALICE, &a);
    place(&w, BOB, &a);
    let mine = w
        .send(as_user(get("/api/v1/orders"), ALICE, Role::User))
        .json_body();
    assert_eq!(mine["total"], 2);
    let all = w
        .send(as_user(get("/api/v1/orders"), ADMIN, Role::Admin))
        .json_body();
    assert_eq!(all["total"], 3);
    let bobs = w
        .send(as_user(
            get(&format!("/api/v1/orders?user_id={BOB}")),
            ADMIN,
            Role::Admin,
        ))
        .json_body();
    assert_eq!(bobs["total"], 1);
    assert_eq!(bobs["items"][0]["user_id"], BOB);
}

#[test]
fn user_filtering_by_someone_else_is_403() {
    let w = World::new();
    let resp = w.send(as_user(
        get(&format!("/api/v1/orders?user_id={BOB}")),
        ALICE,
        Role::User,
    ));
    assert_eq!(resp.status, 403);
}

#[test]
fn other_users_order_is_404_but_admin_sees_it() {
    let w = World::new();
    let a = w.product("A", 1, 10);
    let id = place(&w, ALICE, &a);
    let path = format!("/api/v1/orders/{id}");
    assert_eq!(w.send(as_user(get(&path), BOB, Role::User)).status, 404);
    assert_eq!(w.send(as_user(get(&path), ALICE, Role::User)).status, 200);
    assert_eq!(w.send(as_user(get(&path), ADMIN, Role::Admin)).status, 200);
}

#[test]
fn cancel_gives_stock_back_once_and_repeats_the_same_answer() {
    let w = World::new();
    let a = w.product("A", 1, 10);
    let id = place(&w, ALICE, &a);
    assert_eq!(w.stock(&a), 9);
    let path = format!("/api/v1/orders/{id}/cancel");
    let first = w.send(as_user(post(&path), ALICE, Role::User));
    assert_eq!(first.status, 200);
    assert_eq!(first.json_body()["status"], "cancelled");
    let second = w.send(as_user(post(&path), ALICE, Role::User));
    assert_eq!((second.status, &second.body), (200, &first.body));
    assert_eq!(w.stock(&a), 10);
}

#[test]
fn cancel_by_stranger_is_404_and_changes_nothing() {
    let w = World::new();
    let a = w.product("A", 1, 10);
    let id = place(&w, ALICE, &a);
    let resp = w.send(as_user(
        post(&format!("/api/v1/orders/{id}/cancel")),
        BOB,
        Role::User,
    ));
    assert_eq!(resp.status, 404);
    assert_eq!(w.stock(&a), 9);
}

#[test]
fn admin_may_cancel_anyones_order() {
    let w = World::new();
    let a = w.product("A", 1, 10);
    let id = place(&w, ALICE, &a);
    let resp = w.send(as_user(
        post(&format!("/api/v1/orders/{id}/cancel")),
        ADMIN,
        Role::Admin,
    ));
    assert_eq!(resp.status, 200);
    assert_eq!(w.stock(&a), 10);
}

#[test]
fn cancel_in_a_final_state_is_409_invalid_state() {
    let w = World::new();
    let a = w.product("A", 1, 10);
    let id = place(&w, ALICE, &a);
    w.repo
        .with(|s| s.orders[0].status = OrderStatus::parse("fulfilled"));
    let resp = w.send(as_user(
        post(&format!("/api/v1/orders/{id}/cancel")),
        ALICE,
        Role::User,
    ));
    assert_eq!((resp.status, code(&resp).as_str()), (409, "invalid_state"));
    assert_eq!(w.stock(&a), 9);
}

#[test]
fn cancel_of_unknown_order_is_404() {
    let w = World::new();
    let resp = w.send(as_user(
        post(&format!("/api/v1/orders/{}/cancel", "e".repeat(32))),
        ALICE,
        Role::User,
    ));
    assert_eq!(resp.status, 404);
}

#[test]
fn revocation_store_down_is_503() {
    let w = World::new();
    let resp = w.send_with(
        as_user(get("/api/v1/orders"), ALICE, Role::User),
        &FailingKv,
        &w.repo,
    );
    assert_eq!((resp.status, code(&resp).as_str()), (503, "unavailable"));
}

#[test]
fn a_placed_order_leaves_its_created_event_and_announces_it() {
    let w = World::new();
    let p = w.product("EV-1", 100, 5);
    let resp = w.order(ALICE, json!([{"product_id": p, "quantity": 2}]));
    assert_eq!(resp.status, 201);
    let order_id = resp.json_body()["id"].as_str().unwrap().to_string();
    let events = w.repo.snapshot().events;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event_type.as_str(), "order.created");
    assert_eq!(events[0].order_id, order_id);
    let payload: Json = serde_json::from_str(&events[0].payload).unwrap();
    assert_eq!(payload["id"], events[0].id.as_str());
    assert_eq!(payload["type"], "order.created");
    assert_eq!(payload["data"]["order"], resp.json_body());
    assert_eq!(*w.events.published.borrow(), [events[0].id.clone()]);
}

#[test]
fn a_failed_announcement_still_places_the_order_and_keeps_its_event() {
    let mut w = World::new();
    w.events.failing = true;
    let p = w.product("EV-2", 100, 5);
    let resp = w.order(ALICE, json!([{"product_id": p, "quantity": 1}]));
    assert_eq!(resp.status, 201);
    assert_eq!(w.repo.snapshot().events.len(), 1);
    assert!(w.events.published.borrow().is_empty());
}

#[test]
fn a_refused_or_replayed_order_leaves_no_event() {
    let w = World::new();
    let p = w.product("EV-3", 100, 1);
    let resp = w.order(ALICE, json!([{"product_id": p, "quantity": 2}]));
    assert_eq!(resp.status, 409);
    assert!(w.repo.snapshot().events.is_empty());
    assert!(w.events.published.borrow().is_empty());
}

#[test]
fn a_cancel_leaves_one_cancelled_event_however_often_it_is_asked() {
    let w = World::new();
    let p = w.product("EV-4", 100, 5);
    let order = w.order(ALICE, json!([{"product_id": p, "quantity": 1}]));
    let id = order.json_body()["id"].as_str().unwrap().to_string();
    for _ in 0..3 {
        let resp = w.send(as_user(
            post(&format!("/api/v1/orders/{id}/cancel")),
            ALICE,
            Role::User,
        ));
        assert_eq!(resp.status, 200);
    }
    let events = w.repo.snapshot().events;
    let kinds: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(kinds, ["order.created", "order.cancelled"]);
    let payload: Json = serde_json::from_str(&events[1].payload).unwrap();
    assert_eq!(payload["data"]["order"]["status"], "cancelled");
    assert_eq!(w.events.published.borrow().len(), 2);
}

// ------------------------------------------------------------ stale-if-error

fn down(w: &World) -> Counting<'_> {
    Counting {
        inner: &w.repo,
        calls: Cell::new(0),
        down: true,
    }
}

#[test]
fn an_expired_product_is_served_stale_and_marked_while_the_database_is_down() {
    let mut w = World::new();
    let id = w.product("S1", 5, 5);
    let path = format!("/api/v1/products/{id}");
    let fresh = w.send(get(&path));
    assert_eq!(fresh.status, 200);
    assert_eq!(fresh.header("cache-status"), None);
    // Past the cache TTL (300 s, ±10 %), the database down.
    w.now += 400_000;
    let resp = w.send_with(get(&path), &w.kv, &down(&w));
    assert_eq!(resp.status, 200);
    assert_eq!(resp.json_body(), fresh.json_body());
    assert_eq!(resp.header("age"), Some("400"));
    let status = resp.header("cache-status").unwrap();
    assert!(
        status.starts_with("spin-api; hit; ttl=-") && status.ends_with("; detail=stale-if-error"),
        "{status}"
    );
}

#[test]
fn a_product_stale_for_over_an_hour_is_503_while_the_database_is_down() {
    let mut w = World::new();
    let id = w.product("S2", 5, 5);
    let path = format!("/api/v1/products/{id}");
    assert_eq!(w.send(get(&path)).status, 200);
    w.now += 330_000 + STALE_IF_ERROR_MS + 1;
    let resp = w.send_with(get(&path), &w.kv, &down(&w));
    assert_eq!(resp.status, 503);
    assert!(resp.header("retry-after").is_some());
}

#[test]
fn orders_are_never_served_stale() {
    let w = World::new();
    let product = w.product("S3", 5, 5);
    let placed = w.order(ALICE, json!([{"product_id": product, "quantity": 1}]));
    let order = placed.json_body()["id"].as_str().unwrap().to_string();
    let resp = w.send_with(
        as_user(get(&format!("/api/v1/orders/{order}")), ALICE, Role::User),
        &w.kv,
        &down(&w),
    );
    assert_eq!(resp.status, 503);
    assert_eq!(resp.header("cache-status"), None);
}

#[test]
fn a_product_never_cached_is_503_and_leaves_no_key_while_the_database_is_down() {
    let w = World::new();
    let id = w.product("S4", 5, 5);
    let resp = w.send_with(get(&format!("/api/v1/products/{id}")), &w.kv, &down(&w));
    assert_eq!(resp.status, 503);
    assert!(!w.kv.contains(&product_key(&id)));
}
