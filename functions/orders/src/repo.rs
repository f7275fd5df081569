//! The repository port of the orders component, and (tests and feature
//! `testing` only) its in-memory fake.
//!
//! Every method that changes stock is atomic: the MySQL implementation
//! ([`crate::sql::SqlOrders`]) runs it in one transaction, the fake under one
//! lock. Both apply the same pure rules from [`crate::model`].

use shared::domain::Pagination;
use shared::error::ApiError;

use crate::model::{
    IdempotencyKey, NewProduct, Order, OrderRequest, Placement, Product, ProductPatch, StoredAnswer,
};

// Unit tests' fake only: a release wasm carries no second repository.
#[cfg(any(test, feature = "testing"))]
mod memory;
#[cfg(any(test, feature = "testing"))]
pub use memory::{MemoryOrders, State};

/// Whose orders a list shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderFilter {
    /// Every order (admins only).
    All,
    /// The orders of one user.
    User(String),
}

/// The result of a cancel request on an existing order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cancelled {
    /// This request cancelled it; these products' stock changed.
    Now(Order),
    /// It was already cancelled; nothing changed.
    Already(Order),
}

/// Storage of products, orders and idempotency keys.
pub trait OrderRepo {
    /// Stores a new product; 409 `sku_taken` when the SKU exists.
    fn create_product(&self, product: &Product) -> Result<(), ApiError>;
    /// A page of products, oldest first, and the total count.
    fn list_products(&self, page: Pagination) -> Result<(Vec<Product>, u64), ApiError>;
    /// One product.
    fn get_product(&self, id: &str) -> Result<Option<Product>, ApiError>;
    /// Applies `patch`; `None` when the product does not exist.
    fn update_product(
        &self,
        id: &str,
        patch: &ProductPatch,
        now_ms: i64,
    ) -> Result<Option<Product>, ApiError>;
    /// Places an order atomically: reserves its key (if any) for its user,
    /// takes every line's stock or none, stores the order, its
    /// `order.created` event ([`NewOrder::event_id`]) and, under the key, its
    /// answer — the 201, or a [`Placement::Refused`] as the handler renders
    /// it ([`NewOrder::render_refusal`]).
    fn place_order(&self, order: &NewOrder<'_>) -> Result<Placement, ApiError>;
    /// A page of orders, newest first, and the total count.
    fn list_orders(
        &self,
        filter: &OrderFilter,
        page: Pagination,
    ) -> Result<(Vec<Order>, u64), ApiError>;
    /// One order with its lines.
    fn get_order(&self, id: &str) -> Result<Option<Order>, ApiError>;
    /// Cancels order `id` if `may_cancel` allows the caller to touch it
    /// (checked on the order's `user_id`; a refusal reads as "no such order").
    /// Gives stock back and stores the `order.cancelled` event `event_id`
    /// exactly once however many cancels race.
    fn cancel_order(
        &self,
        id: &str,
        may_cancel: &dyn Fn(&str) -> bool,
        event_id: &str,
        now_ms: i64,
    ) -> Result<Option<Cancelled>, ApiError>;
}

/// Builds a product record from a checked request.
pub fn new_product(id: String, input: NewProduct, now_ms: i64) -> Product {
    Product {
        id,
        sku: input.sku.into_inner(),
        name: input.name,
        price_cents: input.price_cents.get(),
        stock: input.stock.get(),
        created_at_ms: now_ms,
        updated_at_ms: now_ms,
    }
}

/// One order to place, as the handler asks for it.
pub struct NewOrder<'a> {
    /// The buyer.
    pub user_id: &'a str,
    /// The validated lines.
    pub request: &'a OrderRequest,
    /// The `Idempotency-Key`, if the client sent one.
    pub key: Option<&'a IdempotencyKey>,
    /// The id the order gets if one is created.
    pub order_id: &'a str,
    /// The id of its `order.created` event if one is created.
    pub event_id: &'a str,
    /// The request's clock, epoch milliseconds.
    pub now_ms: i64,
    /// Renders a refusal (`product_not_found`, `insufficient_stock`) as the
    /// status and body the first request receives, so the repository can
    /// store it under the key for replays without knowing HTTP.
    pub render_refusal: &'a dyn Fn(&ApiError) -> (u16, Vec<u8>),
}

impl NewOrder<'_> {
    /// The answer stored under the key for a refusal.
    pub fn refusal_answer(&self, error: &ApiError, fingerprint: String) -> StoredAnswer {
        let (status, body) = (self.render_refusal)(error);
        StoredAnswer {
            fingerprint,
            status,
            body,
            order_id: None,
            created_at_ms: self.now_ms,
        }
    }
}
