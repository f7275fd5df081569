//! Products and orders: validated inputs, records, their JSON views, and the
//! pure rules (totals, stock, state changes, idempotency decisions) that both
//! the MySQL repository and the in-memory fake apply, so the unit tests of the
//! rules cover what production runs.
//!
//! * [`products`] — the catalogue: SKU, price and stock as checked types.
//! * [`orders`] — order requests (quantities), pricing, states.
//! * [`idempotency`] — `Idempotency-Key` and the decisions about stored answers.
//! * [`events`] — the outbox rows that report order changes.

mod events;
mod idempotency;
mod orders;
mod products;

pub use events::*;
pub use idempotency::*;
pub use orders::*;
pub use products::*;

/// Highest `price_cents` accepted (10^12 cents = 10 billion in major units).
pub const MAX_PRICE_CENTS: i64 = 1_000_000_000_000;
/// Highest `stock` accepted.
pub const MAX_STOCK: i64 = 1_000_000_000;
/// Lines per order.
pub const MAX_LINES: usize = 50;
/// Units per line.
pub const MAX_QUANTITY: i64 = 1000;
/// How long an `Idempotency-Key` keeps its first answer.
pub const IDEMPOTENCY_TTL_MS: i64 = 24 * 60 * 60 * 1000;
/// Longest `Idempotency-Key` accepted.
pub const MAX_IDEMPOTENCY_KEY: usize = 255;

#[cfg(test)]
mod tests;
