//! Order events: what the outbox stores for the events component to deliver
//! (see `migrations/0006_order_events.sql` and README "Order events").
//!
//! The payload is fixed when the change commits — the order as it was then —
//! and is exactly the body a webhook receives, so a redelivery days later
//! sends the same bytes under the same event id.

use serde::Serialize;
use shared::time::rfc3339;

use super::Order;

/// What happened to an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// `POST /api/v1/orders` created it.
    Created,
    /// `POST /api/v1/orders/{id}/cancel` cancelled it.
    Cancelled,
}

impl EventType {
    /// The `type` field: `order.created`, `order.cancelled`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "order.created",
            Self::Cancelled => "order.cancelled",
        }
    }
}

/// One outbox row, as inserted in the transaction of its change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderEvent {
    /// The stable event id (a fresh random id).
    pub id: String,
    /// What happened.
    pub event_type: EventType,
    /// The order it happened to.
    pub order_id: String,
    /// The webhook body (JSON).
    pub payload: String,
    /// When the change committed, epoch milliseconds.
    pub created_at_ms: i64,
}

#[derive(Serialize)]
struct Envelope<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    event_type: &'static str,
    created_at: String,
    data: Data<'a>,
}

#[derive(Serialize)]
struct Data<'a> {
    order: super::OrderView<'a>,
}

impl OrderEvent {
    /// The event `id` reporting `event_type` of `order` (as it is after the
    /// change) at `now_ms`.
    pub fn new(id: &str, event_type: EventType, order: &Order, now_ms: i64) -> Self {
        let envelope = Envelope {
            id,
            event_type: event_type.as_str(),
            created_at: rfc3339(now_ms),
            data: Data {
                order: order.view(),
            },
        };
        Self {
            id: id.to_string(),
            event_type,
            order_id: order.id.clone(),
            payload: serde_json::to_string(&envelope).unwrap_or_default(),
            created_at_ms: now_ms,
        }
    }
}
