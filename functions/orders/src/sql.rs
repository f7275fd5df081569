//! [`OrderRepo`] over MySQL/MariaDB or SQLite through the [`Sql`] port (one
//! lazily opened connection per request; see `migrations/0002_orders.sql`
//! and its SQLite twin).
//!
//! The protocol below is written for MySQL's row locks. On SQLite the same
//! statements run inside `BEGIN IMMEDIATE`, which takes the database's one
//! write lock before the first statement: transactions that write are
//! serialised whole, `FOR UPDATE` and `LOCK IN SHARE MODE` are dropped
//! ([`shared::db::Dialect`]), and every guarantee below holds because no two
//! of them ever interleave (a busy database is retried like a deadlock).
//!
//! # Why an order can never oversell
//! Placing an order is one transaction on the request's one connection
//! ([`Sql::transaction`]: `SET autocommit = 0` … `SET autocommit = 1`, which
//! commits), in as few statements as the guarantees allow — the fast path:
//! 1. (with an `Idempotency-Key`) the key is reserved by `INSERT` — see below;
//! 2. one conditional `UPDATE products SET stock = stock - CASE id … END …
//!    WHERE id IN (…) AND stock >= CASE id … END` takes every line's stock.
//!    It reads the latest committed stock (an update is never a snapshot
//!    read) and row-locks the products in primary-key order, so two orders
//!    sharing products queue on the first shared row instead of deadlocking;
//! 3. `SELECT ROW_COUNT(), … FROM products WHERE id IN (…)` reads the locked
//!    rows (sku, name, price for the lines) and how many the update changed.
//!    Fewer than the lines means a product is missing or short: the
//!    transaction rolls back — the stock of the lines that could be covered
//!    is given back with it — and is retried on the checked path below;
//! 4. the order, then all its lines in one multi-row `INSERT`;
//! 5. the commit releases the locks, held from step 2: the lock covers four
//!    statements whatever the number of lines. Were the component to die
//!    before it, the connection closes and the server rolls back.
//!
//! The checked path, taken only after the fast path found a line it could
//! not cover, names the refusal: `SELECT … ORDER BY id FOR UPDATE` locks the
//! products in the same order, [`price_order`] checks them in the client's
//! line order, and a missing product or a shortfall ends the transaction
//! with nothing changed (only, under a key, the refusal recorded). Should the
//! stock have come back meanwhile, the order is placed as in steps 2–5.
//!
//! The `CHECK (stock >= 0)` constraint is a second line of defence: if the
//! rules above were ever broken, the server would refuse the update (a 500)
//! rather than sell what is not there.
//!
//! # Idempotency-Key protocol
//! The unique index `uq_idempotency_user_key (user_id, idem_key)` does the
//! coordination; there is no read-then-write:
//! * The key row is `INSERT`ed first, in the order's transaction, holding the
//!   fingerprint. Its answer is filled in by an `UPDATE` just before the commit,
//!   so no other transaction ever sees a reserved key without its answer.
//! * A concurrent request with the same key blocks inside its own `INSERT` on
//!   the first one's uncommitted row. If the first commits, the `INSERT` fails
//!   as a duplicate; the row is then read (`LOCK IN SHARE MODE`: the latest
//!   committed version) and [`decide_key`] answers: the stored answer for the
//!   same fingerprint, 422 for another, or — older than 24 hours — the stale
//!   row is deleted and the key reserved afresh.
//! * A refusal that answers the request itself (`product_not_found`,
//!   `insufficient_stock`) does not roll the key back: the checked path
//!   refuses before any change, so its transaction stores the problem
//!   document under the key and commits, and the waiting duplicates replay
//!   it. That is why a keyed order takes the checked path from the start:
//!   the fast path's rollback after a shortfall would drop the reservation
//!   too, and every waiting duplicate would race for the key again — each
//!   winner rolling back in turn, the losers deadlocking — until some ran
//!   out of attempts (a 500 where docs/API.md promises the first refusal).
//! * Only a service failure rolls the reservation back. The waiting inserts
//!   then proceed; InnoDB lets one win and may end the others with a deadlock
//!   error, which is retried (a fresh transaction) up to [`MAX_ATTEMPTS`] times.
//!
//! # Why a cancel gives stock back once
//! `UPDATE orders SET status = 'cancelled' … WHERE id = ? AND status = 'created'`
//! followed by `ROW_COUNT()` in the same transaction as the stock return
//! (one statement for all lines). Ten
//! racing cancels queue on the order row's lock; InnoDB re-evaluates the
//! `WHERE` for each on the latest version, so exactly one sees `created`,
//! changes one row and gives the stock back; the others change nothing and
//! answer the cancelled order as it now is.

use shared::db::{DbError, Replica, Row, Sql, TxError, UniqueKey, Value};
use shared::domain::Pagination;
use shared::error::ApiError;

use crate::model::{
    decide_cancel, decide_key, is_recorded_refusal, price_lines, price_order, CancelDecision,
    Cents, EventType, IdempotencyKey, KeyDecision, Order, OrderEvent, OrderLine, OrderRequest,
    OrderStatus, Placement, Product, ProductPatch, Stock, StoredAnswer, Wanted,
};
use crate::repo::{Cancelled, NewOrder, OrderFilter, OrderRepo};

/// Transactions ended by a deadlock or lock-wait timeout are retried this many
/// times in all before the request fails.
pub const MAX_ATTEMPTS: u32 = 5;

const PRODUCT_COLUMNS: &str = "id, sku, name, price_cents, stock, created_at_ms, updated_at_ms";
const ORDER_COLUMNS: &str = "id, user_id, status, total_cents, created_at_ms, updated_at_ms";
const KEY_INDEX: UniqueKey = UniqueKey {
    index: "uq_idempotency_user_key",
    columns: "idempotency_keys.user_id, idempotency_keys.idem_key",
};
const KEY_PRIMARY: UniqueKey = UniqueKey {
    index: "PRIMARY",
    columns: "idempotency_keys.user_id, idempotency_keys.idem_key",
};
const SKU_INDEX: UniqueKey = UniqueKey {
    index: "uq_products_sku",
    columns: "products.sku",
};

/// The MySQL repository.
///
/// Which side each read takes: the product list, a product by id (a cache
/// miss of a public read) and order lists read the replica when there is one
/// ([`Replica::reads`]; they tolerate replication lag); an order by id, the
/// product read back after an update, and everything in a transaction read
/// the primary.
pub struct SqlOrders<S: Sql> {
    sql: S,
    replica: Replica<S>,
}

impl<S: Sql> SqlOrders<S> {
    /// A repository over `sql` (which connects lazily), with no replica.
    pub fn new(sql: S) -> Self {
        Self {
            sql,
            replica: Replica::none(),
        }
    }

    /// The same, reading what tolerates replication lag from `replica`.
    pub fn with_replica(self, replica: Option<S>) -> Self {
        Self {
            replica: Replica::new(replica),
            ..self
        }
    }

    /// The port underneath (tests inspect their scripted fake through it).
    #[cfg(test)]
    pub(crate) fn sql(&self) -> &S {
        &self.sql
    }

    /// The replica's port, if any (tests inspect their scripted fake through it).
    #[cfg(test)]
    pub(crate) fn replica_sql(&self) -> Option<&S> {
        self.replica.sql()
    }
}

fn placeholders(n: usize) -> String {
    vec!["?"; n].join(", ")
}

fn product_from(row: &Row) -> Result<Product, DbError> {
    product_at(row, 0)
}

/// The product whose [`PRODUCT_COLUMNS`] start at column `first`.
fn product_at(row: &Row, first: usize) -> Result<Product, DbError> {
    Ok(Product {
        id: row.string(first)?,
        sku: row.string(first + 1)?,
        name: row.string(first + 2)?,
        price_cents: row.i64(first + 3)?,
        stock: row.i64(first + 4)?,
        created_at_ms: row.i64(first + 5)?,
        updated_at_ms: row.i64(first + 6)?,
    })
}

fn order_head(row: &Row) -> Result<Order, DbError> {
    Ok(Order {
        id: row.string(0)?,
        user_id: row.string(1)?,
        status: OrderStatus::parse(&row.string(2)?),
        items: Vec::new(),
        total_cents: row.i64(3)?,
        created_at_ms: row.i64(4)?,
        updated_at_ms: row.i64(5)?,
    })
}

/// Fills in the lines of `orders` with one query.
fn attach_lines<S: Sql>(sql: &S, orders: &mut [Order]) -> Result<(), ApiError> {
    if orders.is_empty() {
        return Ok(());
    }
    let ids: Vec<Value> = orders.iter().map(|o| Value::from(&o.id)).collect();
    let rows = sql.query(
        &format!(
            "SELECT order_id, product_id, sku, name, unit_price_cents, quantity, line_total_cents \
             FROM order_lines WHERE order_id IN ({}) ORDER BY order_id, line_no",
            placeholders(ids.len())
        ),
        &ids,
    )?;
    for row in &rows {
        let order_id = row.string(0)?;
        let line = OrderLine {
            product_id: row.string(1)?,
            sku: row.string(2)?,
            name: row.string(3)?,
            unit_price_cents: row.i64(4)?,
            quantity: row.i64(5)?,
            line_total_cents: row.i64(6)?,
        };
        if let Some(order) = orders.iter_mut().find(|o| o.id == order_id) {
            order.items.push(line);
        }
    }
    Ok(())
}

fn read_key<S: Sql>(
    sql: &S,
    user_id: &str,
    key: &IdempotencyKey,
) -> Result<Option<StoredAnswer>, ApiError> {
    let rows = sql.query(
        &format!(
            "SELECT fingerprint, response_status, response_body, order_id, created_at_ms \
             FROM idempotency_keys WHERE user_id = ? AND idem_key = ?{}",
            sql.dialect().share_lock()
        ),
        &[user_id.into(), key.as_str().into()],
    )?;
    let Some(row) = rows.first() else {
        return Ok(None);
    };
    Ok(Some(StoredAnswer {
        fingerprint: row.string(0)?,
        status: u16::try_from(row.i64(1)?)
            .map_err(|_| ApiError::Internal("stored status out of range".into()))?,
        body: row.bytes(2)?,
        order_id: row.opt_string(3)?,
        created_at_ms: row.i64(4)?,
    }))
}

fn reserve_key<S: Sql>(
    sql: &S,
    user_id: &str,
    key: &IdempotencyKey,
    fingerprint: &str,
    now_ms: i64,
) -> Result<(), DbError> {
    sql.execute(
        "INSERT INTO idempotency_keys \
         (user_id, idem_key, fingerprint, response_status, response_body, order_id, created_at_ms) \
         VALUES (?, ?, ?, 0, '', NULL, ?)",
        &[
            user_id.into(),
            key.as_str().into(),
            fingerprint.into(),
            now_ms.into(),
        ],
    )
}

/// Step 1 of the protocol: `Ok(None)` when the key is now ours, `Ok(Some)`
/// with the answer to replay, or an error (422, or retryable).
fn claim_key<S: Sql>(
    sql: &S,
    user_id: &str,
    key: &IdempotencyKey,
    fingerprint: &str,
    now_ms: i64,
) -> Result<Option<StoredAnswer>, TxError> {
    match reserve_key(sql, user_id, key, fingerprint, now_ms) {
        Ok(()) => return Ok(None),
        // `PRIMARY` too, should a later migration make the pair the primary key
        // (servers with `sql_require_primary_key` refuse tables without one).
        Err(e) if e.is_duplicate(&KEY_INDEX) || e.is_duplicate(&KEY_PRIMARY) => {}
        Err(e) => return Err(e.into()),
    }
    // The duplicate error leaves us a shared lock on the committed row.
    let Some(stored) = read_key(sql, user_id, key)? else {
        // Its owner's transaction rolled back between our insert and our read.
        return Err(TxError::Retry("idempotency key row vanished"));
    };
    match decide_key(&stored, fingerprint, now_ms)? {
        KeyDecision::Replay => Ok(Some(stored)),
        KeyDecision::Expired => {
            sql.execute(
                "DELETE FROM idempotency_keys WHERE user_id = ? AND idem_key = ?",
                &[user_id.into(), key.as_str().into()],
            )?;
            reserve_key(sql, user_id, key, fingerprint, now_ms)?;
            Ok(None)
        }
    }
}

/// Fills in the answer of the key reserved in this transaction.
fn store_answer<S: Sql>(
    sql: &S,
    user_id: &str,
    key: &IdempotencyKey,
    answer: &StoredAnswer,
) -> Result<(), ApiError> {
    sql.execute(
        "UPDATE idempotency_keys SET response_status = ?, response_body = ?, order_id = ? \
         WHERE user_id = ? AND idem_key = ?",
        &[
            Value::UInt(answer.status.into()),
            Value::Str(String::from_utf8_lossy(&answer.body).into_owned()),
            answer.order_id.as_ref().into(),
            user_id.into(),
            key.as_str().into(),
        ],
    )?;
    Ok(())
}

/// `CASE id WHEN ? THEN ? … END` with its parameters: each line's quantity,
/// by product id, so one statement can change every line's stock.
fn quantity_by_id<'a>(lines: impl Iterator<Item = (&'a str, i64)>) -> (String, Vec<Value>) {
    let mut params = Vec::new();
    let mut case = String::from("CASE id");
    for (id, quantity) in lines {
        case.push_str(" WHEN ? THEN ?");
        params.extend([Value::from(id), quantity.into()]);
    }
    case.push_str(" END");
    (case, params)
}

/// Step 2 of the fast path: takes every line's stock in one conditional
/// statement, which row-locks the products in primary-key order (as the
/// `FOR UPDATE` of the checked path does, so the two cannot deadlock), then
/// reads them with the number of rows the update changed. `Some` when every
/// line's product existed and covered it; `None` when some did not, and the
/// transaction must be rolled back (the rows that could be taken were).
fn take_stock<S: Sql>(
    sql: &S,
    request: &OrderRequest,
    now_ms: i64,
) -> Result<Option<Vec<Product>>, DbError> {
    let mut lines: Vec<&Wanted> = request.items.iter().collect();
    lines.sort_by(|a, b| a.product_id.cmp(&b.product_id));
    let (case, case_params) = quantity_by_id(
        lines
            .iter()
            .map(|w| (w.product_id.as_str(), w.quantity.get())),
    );
    let ids: Vec<Value> = lines.iter().map(|w| Value::from(&w.product_id)).collect();
    let mut params = case_params.clone();
    params.push(now_ms.into());
    params.extend(ids.iter().cloned());
    params.extend(case_params);
    sql.execute(
        &format!(
            "UPDATE products SET stock = stock - {case}, updated_at_ms = ? \
             WHERE id IN ({}) AND stock >= {case}",
            placeholders(ids.len())
        ),
        &params,
    )?;
    // ROW_COUNT() (SQLite: changes()) is still the UPDATE's count while
    // this SELECT runs: the check costs no round trip of its own.
    let rows = sql.query(
        &format!(
            "SELECT {}, {PRODUCT_COLUMNS} FROM products WHERE id IN ({})",
            sql.dialect().row_count(),
            placeholders(ids.len())
        ),
        &ids,
    )?;
    let changed = rows.first().map(|r| r.i64(0)).transpose()?.unwrap_or(0);
    if usize::try_from(changed).ok() != Some(lines.len()) {
        return Ok(None);
    }
    let products = rows
        .iter()
        .map(|row| product_at(row, 1))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(products))
}

/// The checked path's step 2: locks the products (`FOR UPDATE`, id order)
/// and prices the order against them, stock check included.
fn lock_and_price<S: Sql>(
    sql: &S,
    request: &OrderRequest,
) -> Result<Result<(Vec<OrderLine>, i64), ApiError>, DbError> {
    let params: Vec<Value> = request
        .product_ids_sorted()
        .iter()
        .map(Value::from)
        .collect();
    let rows = sql.query(
        &format!(
            "SELECT {PRODUCT_COLUMNS} FROM products WHERE id IN ({}) ORDER BY id{}",
            placeholders(params.len()),
            sql.dialect().for_update()
        ),
        &params,
    )?;
    let products = rows
        .iter()
        .map(product_from)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(price_order(request, &products))
}

impl<S: Sql> SqlOrders<S> {
    fn place_in_transaction(&self, new: &NewOrder<'_>) -> Result<Placement, ApiError> {
        let NewOrder {
            user_id,
            request,
            key,
            order_id: new_order_id,
            event_id,
            now_ms,
            ..
        } = *new;
        let fingerprint = request.fingerprint();
        // The fast path first; once it has found a line it cannot cover, the
        // retry takes the checked path, which names the refusal. A keyed
        // order starts checked: see "Idempotency-Key protocol" above.
        let mut checked = key.is_some();
        self.sql.transaction_retrying(MAX_ATTEMPTS, |sql| {
            if let Some(key) = key {
                if let Some(stored) = claim_key(sql, user_id, key, &fingerprint, now_ms)? {
                    return Ok(Placement::Replayed(stored));
                }
            }
            let (items, total_cents) = if checked {
                match lock_and_price(sql, request)? {
                    Ok(priced) => {
                        // The rows are locked and cover every line, so this
                        // changes one row per line.
                        take_stock(sql, request, now_ms)?
                            .ok_or(TxError::Retry("stock changed under lock"))?;
                        priced
                    }
                    Err(e) if is_recorded_refusal(&e) => {
                        if let Some(key) = key {
                            let answer = new.refusal_answer(&e, fingerprint.clone());
                            store_answer(sql, user_id, key, &answer)?;
                        }
                        return Ok(Placement::Refused(e));
                    }
                    Err(e) => return Err(e.into()),
                }
            } else {
                let Some(products) = take_stock(sql, request, now_ms)? else {
                    checked = true;
                    return Err(TxError::Retry("a line was not covered"));
                };
                price_lines(request, &products)?
            };
            let order = Order {
                id: new_order_id.to_string(),
                user_id: user_id.to_string(),
                status: OrderStatus::Created,
                items,
                total_cents,
                created_at_ms: now_ms,
                updated_at_ms: now_ms,
            };
            insert_order(sql, &order)?;
            insert_event(
                sql,
                &OrderEvent::new(event_id, EventType::Created, &order, now_ms),
            )?;
            if let Some(key) = key {
                let answer = StoredAnswer {
                    fingerprint: fingerprint.clone(),
                    status: 201,
                    body: order.json_bytes(),
                    order_id: Some(order.id.clone()),
                    created_at_ms: now_ms,
                };
                store_answer(sql, user_id, key, &answer)?;
            }
            Ok(Placement::Created(order))
        })
    }
}

/// The outbox row of `event`, in the transaction of the change it reports.
fn insert_event<S: Sql>(sql: &S, event: &OrderEvent) -> Result<(), DbError> {
    sql.execute(
        "INSERT INTO order_events (id, type, order_id, payload, created_at_ms, state, \
         next_attempt_at_ms) VALUES (?, ?, ?, ?, ?, 'pending', ?)",
        &[
            (&event.id).into(),
            event.event_type.as_str().into(),
            (&event.order_id).into(),
            (&event.payload).into(),
            event.created_at_ms.into(),
            event.created_at_ms.into(),
        ],
    )
}

/// The order row and all its lines: two statements, whatever the line count.
fn insert_order<S: Sql>(sql: &S, order: &Order) -> Result<(), DbError> {
    sql.execute(
        "INSERT INTO orders (id, user_id, status, total_cents, created_at_ms, updated_at_ms) \
         VALUES (?, ?, ?, ?, ?, ?)",
        &[
            (&order.id).into(),
            (&order.user_id).into(),
            order.status.as_str().into(),
            order.total_cents.into(),
            order.created_at_ms.into(),
            order.updated_at_ms.into(),
        ],
    )?;
    let mut line_params = Vec::with_capacity(order.items.len() * 8);
    for (i, line) in order.items.iter().enumerate() {
        line_params.extend([
            Value::from(&order.id),
            Value::Int(i as i64),
            Value::from(&line.product_id),
            Value::from(&line.sku),
            Value::from(&line.name),
            Value::Int(line.unit_price_cents),
            Value::Int(line.quantity),
            Value::Int(line.line_total_cents),
        ]);
    }
    sql.execute(
        &format!(
            "INSERT INTO order_lines (order_id, line_no, product_id, sku, name, \
             unit_price_cents, quantity, line_total_cents) VALUES {}",
            vec!["(?, ?, ?, ?, ?, ?, ?, ?)"; order.items.len()].join(", ")
        ),
        &line_params,
    )
}

impl<S: Sql> OrderRepo for SqlOrders<S> {
    fn create_product(&self, p: &Product) -> Result<(), ApiError> {
        self.sql
            .execute(
                &format!("INSERT INTO products ({PRODUCT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)"),
                &[
                    (&p.id).into(),
                    (&p.sku).into(),
                    (&p.name).into(),
                    p.price_cents.into(),
                    p.stock.into(),
                    p.created_at_ms.into(),
                    p.updated_at_ms.into(),
                ],
            )
            .map_err(|e| {
                if e.is_duplicate(&SKU_INDEX) {
                    ApiError::SkuTaken
                } else {
                    e.into()
                }
            })
    }

    fn list_products(&self, page: Pagination) -> Result<(Vec<Product>, u64), ApiError> {
        let reads = self.replica.reads(&self.sql);
        let rows = reads.query(
            &format!(
                "SELECT {PRODUCT_COLUMNS} FROM products ORDER BY created_at_ms, id LIMIT ? OFFSET ?"
            ),
            &[page.limit.into(), page.offset().into()],
        )?;
        let items = rows
            .iter()
            .map(product_from)
            .collect::<Result<Vec<_>, _>>()?;
        let total = count(&reads, "SELECT COUNT(*) FROM products", &[])?;
        Ok((items, total))
    }

    fn get_product(&self, id: &str) -> Result<Option<Product>, ApiError> {
        product_by_id(&self.replica.reads(&self.sql), id)
    }

    fn update_product(
        &self,
        id: &str,
        patch: &ProductPatch,
        now_ms: i64,
    ) -> Result<Option<Product>, ApiError> {
        // One statement: absent fields are NULL and COALESCE keeps the column.
        self.sql.execute(
            "UPDATE products SET name = COALESCE(?, name), price_cents = COALESCE(?, price_cents), \
             stock = COALESCE(?, stock), updated_at_ms = ? WHERE id = ?",
            &[
                patch.name.as_ref().into(),
                patch.price_cents.map(Cents::get).into(),
                patch.stock.map(Stock::get).into(),
                now_ms.into(),
                id.into(),
            ],
        )?;
        // Read back on the primary: a replica may not have the change yet.
        product_by_id(&self.sql, id)
    }

    fn place_order(&self, new: &NewOrder<'_>) -> Result<Placement, ApiError> {
        self.place_in_transaction(new)
    }

    fn list_orders(
        &self,
        filter: &OrderFilter,
        page: Pagination,
    ) -> Result<(Vec<Order>, u64), ApiError> {
        let (condition, mut params): (&str, Vec<Value>) = match filter {
            OrderFilter::All => ("", Vec::new()),
            OrderFilter::User(u) => ("WHERE user_id = ?", vec![u.into()]),
        };
        let reads = self.replica.reads(&self.sql);
        let total = count(
            &reads,
            &format!("SELECT COUNT(*) FROM orders {condition}"),
            &params,
        )?;
        params.extend([page.limit.into(), page.offset().into()]);
        let rows = reads.query(
            &format!(
                "SELECT {ORDER_COLUMNS} FROM orders {condition} \
                 ORDER BY created_at_ms DESC, id DESC LIMIT ? OFFSET ?"
            ),
            &params,
        )?;
        let mut orders = rows.iter().map(order_head).collect::<Result<Vec<_>, _>>()?;
        attach_lines(&reads, &mut orders)?;
        Ok((orders, total))
    }

    fn get_order(&self, id: &str) -> Result<Option<Order>, ApiError> {
        get_order(&self.sql, id)
    }

    fn cancel_order(
        &self,
        id: &str,
        may_cancel: &dyn Fn(&str) -> bool,
        event_id: &str,
        now_ms: i64,
    ) -> Result<Option<Cancelled>, ApiError> {
        let Some(order) = get_order(&self.sql, id)? else {
            return Ok(None);
        };
        if !may_cancel(&order.user_id) {
            return Ok(None);
        }
        if decide_cancel(&order.status)? == CancelDecision::AlreadyCancelled {
            return Ok(Some(Cancelled::Already(order)));
        }
        let cancelled = Order {
            status: OrderStatus::Cancelled,
            updated_at_ms: now_ms,
            ..order
        };
        let event = OrderEvent::new(event_id, EventType::Cancelled, &cancelled, now_ms);
        let won = self.sql.transaction_retrying(MAX_ATTEMPTS, |sql| {
            sql.execute(
                "UPDATE orders SET status = 'cancelled', updated_at_ms = ? \
                 WHERE id = ? AND status = 'created'",
                &[now_ms.into(), id.into()],
            )?;
            if sql.affected_rows()? != 1 {
                return Ok(false);
            }
            // One statement for every line; it locks the rows in id order,
            // as placing does.
            let (case, mut params) = quantity_by_id(
                cancelled
                    .items
                    .iter()
                    .map(|l| (l.product_id.as_str(), l.quantity)),
            );
            params.push(now_ms.into());
            params.extend(cancelled.items.iter().map(|l| Value::from(&l.product_id)));
            sql.execute(
                &format!(
                    "UPDATE products SET stock = stock + {case}, updated_at_ms = ? WHERE id IN ({})",
                    placeholders(cancelled.items.len())
                ),
                &params,
            )?;
            insert_event(sql, &event)?;
            Ok(true)
        })?;
        if won {
            return Ok(Some(Cancelled::Now(cancelled)));
        }
        // Another request changed the order first: answer it as it now is
        // (autocommit again, so this read sees the latest commit).
        let Some(current) = get_order(&self.sql, id)? else {
            return Ok(None);
        };
        match decide_cancel(&current.status)? {
            CancelDecision::AlreadyCancelled => Ok(Some(Cancelled::Already(current))),
            CancelDecision::Cancel => Err(ApiError::Internal(
                "order still 'created' after a failed conditional cancel".into(),
            )),
        }
    }
}

fn product_by_id<S: Sql>(sql: &S, id: &str) -> Result<Option<Product>, ApiError> {
    let rows = sql.query(
        &format!("SELECT {PRODUCT_COLUMNS} FROM products WHERE id = ?"),
        &[id.into()],
    )?;
    Ok(rows.first().map(product_from).transpose()?)
}

fn get_order<S: Sql>(sql: &S, id: &str) -> Result<Option<Order>, ApiError> {
    let rows = sql.query(
        &format!("SELECT {ORDER_COLUMNS} FROM orders WHERE id = ?"),
        &[id.into()],
    )?;
    let Some(row) = rows.first() else {
        return Ok(None);
    };
    let mut orders = [order_head(row)?];
    attach_lines(sql, &mut orders)?;
    let [order] = orders;
    Ok(Some(order))
}

fn count<S: Sql>(sql: &S, statement: &str, params: &[Value]) -> Result<u64, ApiError> {
    let rows = sql.query(statement, params)?;
    let n = rows
        .first()
        .ok_or_else(|| ApiError::Internal("COUNT(*) returned no row".into()))?
        .i64(0)?;
    Ok(n.max(0) as u64)
}

#[cfg(test)]
mod tests;
