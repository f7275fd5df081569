//! The repository port of the orders component, and its in-memory fake.
//!
//! Every method that changes stock is atomic: the MySQL implementation
//! ([`crate::mysql::MySqlOrders`]) runs it in one transaction, the fake under one
//! lock. Both apply the same pure rules from [`crate::model`].

use std::sync::Mutex;

use shared::domain::Pagination;
use shared::error::ApiError;

use crate::model::{
    decide_cancel, decide_key, is_recorded_refusal, price_order, CancelDecision, EventType,
    IdempotencyKey, KeyDecision, NewProduct, Order, OrderEvent, OrderRequest, OrderStatus,
    Placement, Product, ProductPatch, StoredAnswer,
};

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

/// In-memory repository for unit tests.
#[derive(Debug, Default)]
pub struct MemoryOrders {
    state: Mutex<State>,
}

/// The fake's tables, public so tests can assert side effects.
#[derive(Debug, Default, Clone)]
pub struct State {
    /// Products in insertion order.
    pub products: Vec<Product>,
    /// Orders in insertion order.
    pub orders: Vec<Order>,
    /// `(user_id, key, answer)`.
    pub keys: Vec<(String, String, StoredAnswer)>,
    /// The outbox, in insertion order.
    pub events: Vec<OrderEvent>,
}

impl MemoryOrders {
    /// An empty repository.
    pub fn new() -> Self {
        Self::default()
    }

    /// A copy of the tables.
    pub fn snapshot(&self) -> State {
        self.lock().clone()
    }

    /// Runs `f` on the tables (to seed or alter them in tests).
    pub fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.lock())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl OrderRepo for MemoryOrders {
    fn create_product(&self, product: &Product) -> Result<(), ApiError> {
        let mut s = self.lock();
        if s.products.iter().any(|p| p.sku == product.sku) {
            return Err(ApiError::SkuTaken);
        }
        s.products.push(product.clone());
        Ok(())
    }

    fn list_products(&self, page: Pagination) -> Result<(Vec<Product>, u64), ApiError> {
        let s = self.lock();
        let items = s
            .products
            .iter()
            .skip(page.offset() as usize)
            .take(page.limit as usize)
            .cloned()
            .collect();
        Ok((items, s.products.len() as u64))
    }

    fn get_product(&self, id: &str) -> Result<Option<Product>, ApiError> {
        Ok(self.lock().products.iter().find(|p| p.id == id).cloned())
    }

    fn update_product(
        &self,
        id: &str,
        patch: &ProductPatch,
        now_ms: i64,
    ) -> Result<Option<Product>, ApiError> {
        let mut s = self.lock();
        let Some(p) = s.products.iter_mut().find(|p| p.id == id) else {
            return Ok(None);
        };
        *p = patch.apply(p, now_ms);
        Ok(Some(p.clone()))
    }

    fn place_order(&self, new: &NewOrder<'_>) -> Result<Placement, ApiError> {
        let NewOrder {
            user_id,
            request,
            key,
            order_id: new_order_id,
            event_id,
            now_ms,
            ..
        } = *new;
        let mut s = self.lock();
        let fingerprint = request.fingerprint();
        if let Some(key) = key {
            let found = s
                .keys
                .iter()
                .position(|(u, k, _)| u == user_id && k == key.as_str());
            if let Some(i) = found {
                match decide_key(&s.keys[i].2, &fingerprint, now_ms)? {
                    KeyDecision::Replay => return Ok(Placement::Replayed(s.keys[i].2.clone())),
                    KeyDecision::Expired => {
                        s.keys.remove(i);
                    }
                }
            }
        }
        let (items, total_cents) = match price_order(request, &s.products) {
            Ok(priced) => priced,
            Err(e) if is_recorded_refusal(&e) => {
                if let Some(key) = key {
                    let answer = new.refusal_answer(&e, fingerprint);
                    s.keys
                        .push((user_id.to_string(), key.as_str().to_string(), answer));
                }
                return Ok(Placement::Refused(e));
            }
            Err(e) => return Err(e),
        };
        for line in &items {
            if let Some(p) = s.products.iter_mut().find(|p| p.id == line.product_id) {
                p.stock -= line.quantity;
                p.updated_at_ms = now_ms;
            }
        }
        let order = Order {
            id: new_order_id.to_string(),
            user_id: user_id.to_string(),
            status: OrderStatus::Created,
            items,
            total_cents,
            created_at_ms: now_ms,
            updated_at_ms: now_ms,
        };
        if let Some(key) = key {
            let answer = StoredAnswer {
                fingerprint,
                status: 201,
                body: order.json_bytes(),
                order_id: Some(order.id.clone()),
                created_at_ms: now_ms,
            };
            s.keys
                .push((user_id.to_string(), key.as_str().to_string(), answer));
        }
        s.events.push(OrderEvent::new(
            event_id,
            EventType::Created,
            &order,
            now_ms,
        ));
        s.orders.push(order.clone());
        Ok(Placement::Created(order))
    }

    fn list_orders(
        &self,
        filter: &OrderFilter,
        page: Pagination,
    ) -> Result<(Vec<Order>, u64), ApiError> {
        let s = self.lock();
        let mut matching: Vec<&Order> = s
            .orders
            .iter()
            .filter(|o| match filter {
                OrderFilter::All => true,
                OrderFilter::User(u) => &o.user_id == u,
            })
            .collect();
        matching.sort_by(|a, b| (b.created_at_ms, &b.id).cmp(&(a.created_at_ms, &a.id)));
        let total = matching.len() as u64;
        let items = matching
            .into_iter()
            .skip(page.offset() as usize)
            .take(page.limit as usize)
            .cloned()
            .collect();
        Ok((items, total))
    }

    fn get_order(&self, id: &str) -> Result<Option<Order>, ApiError> {
        Ok(self.lock().orders.iter().find(|o| o.id == id).cloned())
    }

    fn cancel_order(
        &self,
        id: &str,
        may_cancel: &dyn Fn(&str) -> bool,
        event_id: &str,
        now_ms: i64,
    ) -> Result<Option<Cancelled>, ApiError> {
        let mut s = self.lock();
        let Some(i) = s.orders.iter().position(|o| o.id == id) else {
            return Ok(None);
        };
        if !may_cancel(&s.orders[i].user_id) {
            return Ok(None);
        }
        match decide_cancel(&s.orders[i].status)? {
            CancelDecision::AlreadyCancelled => Ok(Some(Cancelled::Already(s.orders[i].clone()))),
            CancelDecision::Cancel => {
                let items = s.orders[i].items.clone();
                for line in &items {
                    if let Some(p) = s.products.iter_mut().find(|p| p.id == line.product_id) {
                        p.stock += line.quantity;
                        p.updated_at_ms = now_ms;
                    }
                }
                let order = &mut s.orders[i];
                order.status = OrderStatus::Cancelled;
                order.updated_at_ms = now_ms;
                let order = order.clone();
                s.events.push(OrderEvent::new(
                    event_id,
                    EventType::Cancelled,
                    &order,
                    now_ms,
                ));
                Ok(Some(Cancelled::Now(order)))
            }
        }
    }
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
