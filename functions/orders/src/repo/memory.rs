//! The in-memory fake of [`OrderRepo`], for unit tests (feature `testing`):
//! one lock stands for the MySQL transaction, and the same pure rules of
//! [`crate::model`] decide.

use std::sync::Mutex;

use shared::domain::Pagination;
use shared::error::ApiError;

use super::{Cancelled, NewOrder, OrderFilter, OrderRepo};
use crate::model::{
    decide_cancel, decide_key, is_recorded_refusal, price_order, CancelDecision, EventType,
    KeyDecision, Order, OrderEvent, OrderStatus, Placement, Product, ProductPatch, StoredAnswer,
};

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
