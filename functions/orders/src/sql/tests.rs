//! The MySQL repository's statement protocol, on a scripted [`Sql`] fake:
//! the fast path's statements, the checked path after a shortfall, deadlock retries, the
//! idempotency-key paths and the conditional cancel. (Its behaviour on the
//! real MariaDB under concurrency is proven by tests/api/tests/orders.rs.)

use std::cell::RefCell;

use shared::db::{DbError, Dialect, Row, Sql, Value};
use shared::error::ApiError;

use crate::model::{IdempotencyKey, OrderRequest, Placement, Quantity, StoredAnswer, Wanted};
use crate::repo::{Cancelled, NewOrder, OrderRepo};
use crate::sql::{SqlOrders, MAX_ATTEMPTS};

type Responder = Box<dyn FnMut(&str, &[Value]) -> Result<Vec<Row>, DbError>>;

/// Records every statement and answers it through `respond`.
struct ScriptSql {
    log: RefCell<Vec<(String, Vec<Value>)>>,
    respond: RefCell<Responder>,
    dialect: Dialect,
}

impl ScriptSql {
    fn new(respond: impl FnMut(&str, &[Value]) -> Result<Vec<Row>, DbError> + 'static) -> Self {
        Self {
            log: RefCell::new(Vec::new()),
            respond: RefCell::new(Box::new(respond)),
            dialect: Dialect::MySql,
        }
    }

    /// The same script on a connection that speaks SQLite.
    fn sqlite(self) -> Self {
        Self {
            dialect: Dialect::Sqlite,
            ..self
        }
    }
}

impl Sql for ScriptSql {
    fn dialect(&self) -> Dialect {
        self.dialect
    }
    fn execute(&self, sql: &str, params: &[Value]) -> Result<(), DbError> {
        self.query(sql, params).map(|_| ())
    }
    fn query(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>, DbError> {
        self.log
            .borrow_mut()
            .push((sql.to_string(), params.to_vec()));
        (self.respond.borrow_mut())(sql, params)
    }
}

fn statements(repo: &SqlOrders<ScriptSql>) -> Vec<String> {
    repo.sql()
        .log
        .borrow()
        .iter()
        .map(|(s, _)| s.clone())
        .collect()
}

fn count(repo: &SqlOrders<ScriptSql>, prefix: &str) -> usize {
    statements(repo)
        .iter()
        .filter(|s| s.starts_with(prefix))
        .count()
}

fn product_row(id: &str, price: i64, stock: i64) -> Row {
    Row(vec![
        Value::Str(id.into()),
        Value::Str(format!("sku-{id}")),
        Value::Str("name".into()),
        Value::Int(price),
        Value::Int(stock),
        Value::Int(0),
        Value::Int(0),
    ])
}

/// A shop of products `a` (stock 5) and `b` (stock 1), both priced 100,
/// that plays the stock statements: the conditional update changes the rows
/// that cover their line and `ROW_COUNT()` reports how many it changed.
/// (The fake has no transactions: a test that rolls back sees the stock as
/// the update left it, which none of them reads.)
fn shop() -> impl FnMut(&str, &[Value]) -> Result<Vec<Row>, DbError> {
    let mut stock = [("a".to_string(), 5), ("b".to_string(), 1)];
    let mut changed = 0;
    move |sql, params| {
        if sql.starts_with("UPDATE products SET stock = stock - CASE id") {
            // (id, quantity) pairs come first.
            let lines = (params.len() - 1) / 5;
            changed = 0;
            for pair in params[..2 * lines].chunks(2) {
                let (Value::Str(id), Value::Int(q)) = (&pair[0], &pair[1]) else {
                    panic!("unexpected parameters {pair:?}");
                };
                if let Some((_, s)) = stock.iter_mut().find(|(p, s)| p == id && *s >= *q) {
                    *s -= q;
                    changed += 1;
                }
            }
            return Ok(Vec::new());
        }
        let row = |id: &str, s: i64| product_row(id, 100, s);
        if sql.starts_with("SELECT ROW_COUNT(), id") || sql.starts_with("SELECT changes(), id") {
            return Ok(stock
                .iter()
                .map(|(id, s)| {
                    let mut r = row(id, *s).0;
                    r.insert(0, Value::Int(changed));
                    Row(r)
                })
                .collect());
        }
        if sql.starts_with("SELECT id, sku") {
            return Ok(stock.iter().map(|(id, s)| row(id, *s)).collect());
        }
        Ok(Vec::new())
    }
}

/// The statements of the last transaction attempt.
fn last_attempt(repo: &SqlOrders<ScriptSql>) -> Vec<String> {
    let all = statements(repo);
    let start = all
        .iter()
        .rposition(|s| s == "SET autocommit = 0")
        .unwrap_or(0);
    all[start..].to_vec()
}

fn request(items: &[(&str, i64)]) -> OrderRequest {
    OrderRequest {
        items: items
            .iter()
            .map(|(id, q)| Wanted {
                product_id: id.to_string(),
                quantity: Quantity::try_from(*q).unwrap(),
            })
            .collect(),
    }
}

fn place(
    repo: &SqlOrders<ScriptSql>,
    items: &[(&str, i64)],
    key: Option<&str>,
) -> Result<Placement, ApiError> {
    let key = key.map(|k| IdempotencyKey::from_header(Some(k)).unwrap().unwrap());
    let render = |e: &ApiError| {
        let response = e.to_response("rid");
        (response.status, response.body)
    };
    repo.place_order(&NewOrder {
        user_id: "u1",
        request: &request(items),
        key: key.as_ref(),
        order_id: "o1",
        event_id: "e1",
        now_ms: 1_000,
        render_refusal: &render,
    })
}

#[test]
fn order_takes_all_its_stock_in_one_conditional_statement_then_writes_and_commits() {
    let repo = SqlOrders::new(ScriptSql::new(shop()));
    let placed = place(&repo, &[("b", 1), ("a", 2)], None).unwrap();
    assert!(matches!(placed, Placement::Created(ref o) if o.total_cents == 300));
    let log = repo.sql().log.borrow().clone();
    let kinds: Vec<&str> = log
        .iter()
        .map(|(s, _)| s.split(' ').next().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["SET", "UPDATE", "SELECT", "INSERT", "INSERT", "INSERT", "SET"]
    );
    assert!(log[1]
        .0
        .ends_with("AND stock >= CASE id WHEN ? THEN ? WHEN ? THEN ? END"));
    assert_eq!(
        log[1].1[..4],
        [
            Value::from("a"),
            Value::Int(2),
            Value::from("b"),
            Value::Int(1)
        ],
        "lines by product id"
    );
    assert!(log[2].0.starts_with("SELECT ROW_COUNT(), id"));
    assert!(log[4]
        .0
        .ends_with("(?, ?, ?, ?, ?, ?, ?, ?), (?, ?, ?, ?, ?, ?, ?, ?)"));
    assert!(
        log[5].0.starts_with("INSERT INTO order_events"),
        "the outbox row, in the order's transaction"
    );
    assert_eq!(log[5].1[0], Value::from("e1"));
    assert_eq!(log[5].1[1], Value::from("order.created"));
    assert_eq!(log[6].0, "SET autocommit = 1", "which commits");
}

#[test]
fn on_sqlite_an_order_is_one_immediate_transaction_counted_by_changes() {
    let repo = SqlOrders::new(ScriptSql::new(shop()).sqlite());
    let placed = place(&repo, &[("b", 1), ("a", 2)], None).unwrap();
    assert!(matches!(placed, Placement::Created(ref o) if o.total_cents == 300));
    let log = statements(&repo);
    assert_eq!(log.first().map(String::as_str), Some("BEGIN IMMEDIATE"));
    assert!(log[2].starts_with("SELECT changes(), id"), "{log:?}");
    assert_eq!(log.last().map(String::as_str), Some("COMMIT"));
    assert!(!log
        .iter()
        .any(|s| s.contains("autocommit") || s.contains("ROW_COUNT")));
}

#[test]
fn on_sqlite_the_checked_path_needs_no_row_locks() {
    let repo = SqlOrders::new(ScriptSql::new(shop()).sqlite());
    let placed = place(&repo, &[("a", 1), ("b", 2)], None).unwrap();
    assert_eq!(
        placed,
        Placement::Refused(ApiError::InsufficientStock {
            product_id: "b".into()
        })
    );
    let log = statements(&repo);
    assert_eq!(count(&repo, "ROLLBACK"), 1, "the fast path's partial take");
    assert!(log.iter().any(|s| s.ends_with("ORDER BY id")));
    assert!(!log
        .iter()
        .any(|s| s.contains("FOR UPDATE") || s.contains("SHARE MODE")));
}

#[test]
fn on_sqlite_a_taken_key_is_recognised_by_its_columns() {
    let fp = request(&[("a", 1)]).fingerprint();
    let mut inner = taken(answer(fp, 900));
    let repo = SqlOrders::new(
        ScriptSql::new(move |sql, params| {
            if sql.starts_with("INSERT INTO idempotency_keys") {
                return Err(DbError::classify_sqlite_error(
                    "UNIQUE constraint failed: idempotency_keys.user_id, idempotency_keys.idem_key",
                ));
            }
            inner(sql, params)
        })
        .sqlite(),
    );
    let placed = place(&repo, &[("a", 1)], Some("k")).unwrap();
    assert!(matches!(placed, Placement::Replayed(ref a) if a.order_id.as_deref() == Some("o0")));
    assert!(!statements(&repo).iter().any(|s| s.contains("SHARE MODE")));
}

#[test]
fn shortfall_rolls_back_and_the_checked_path_names_it_changing_nothing() {
    let repo = SqlOrders::new(ScriptSql::new(shop()));
    let placed = place(&repo, &[("a", 1), ("b", 2)], None).unwrap();
    assert_eq!(
        placed,
        Placement::Refused(ApiError::InsufficientStock {
            product_id: "b".into()
        })
    );
    assert_eq!(count(&repo, "ROLLBACK"), 1, "the fast path's partial take");
    let checked = last_attempt(&repo);
    assert!(checked[1].ends_with("ORDER BY id FOR UPDATE"));
    assert!(!checked.iter().any(|s| s.starts_with("UPDATE")));
    assert!(!checked.iter().any(|s| s.starts_with("INSERT")));
    assert_eq!(checked.last().unwrap(), "SET autocommit = 1");
}

#[test]
fn missing_product_is_named_by_the_checked_path() {
    let repo = SqlOrders::new(ScriptSql::new(shop()));
    let placed = place(&repo, &[("a", 1), ("zz", 1)], None).unwrap();
    assert_eq!(
        placed,
        Placement::Refused(ApiError::ProductNotFound {
            product_id: "zz".into()
        })
    );
    assert_eq!(count(&repo, "INSERT"), 0);
}

#[test]
fn deadlock_victim_is_retried_in_a_fresh_transaction() {
    let mut failed = false;
    let mut shop = shop();
    let repo = SqlOrders::new(ScriptSql::new(move |sql, params| {
        if sql.starts_with("UPDATE products") && !failed {
            failed = true;
            return Err(DbError::Deadlock);
        }
        shop(sql, params)
    }));
    assert!(matches!(
        place(&repo, &[("a", 1)], None).unwrap(),
        Placement::Created(_)
    ));
    assert_eq!(count(&repo, "SET autocommit = 0"), 2);
    assert_eq!(count(&repo, "ROLLBACK"), 1);
}

#[test]
fn retries_are_bounded() {
    let mut shop = shop();
    let repo = SqlOrders::new(ScriptSql::new(move |sql, params| {
        if sql.starts_with("UPDATE products") {
            return Err(DbError::LockWaitTimeout);
        }
        shop(sql, params)
    }));
    assert_eq!(place(&repo, &[("a", 1)], None).unwrap_err().status(), 500);
    assert_eq!(count(&repo, "SET autocommit = 0"), MAX_ATTEMPTS as usize);
}

#[test]
fn other_query_failures_are_not_retried() {
    let mut shop = shop();
    let repo = SqlOrders::new(ScriptSql::new(move |sql, params| {
        if sql.starts_with("INSERT INTO orders") {
            return Err(DbError::Query("syntax".into()));
        }
        shop(sql, params)
    }));
    assert_eq!(place(&repo, &[("a", 1)], None).unwrap_err().status(), 500);
    assert_eq!(count(&repo, "SET autocommit = 0"), 1);
    assert_eq!(count(&repo, "ROLLBACK"), 1);
}

#[test]
fn unreachable_database_is_503() {
    let repo = SqlOrders::new(ScriptSql::new(|_, _| {
        Err(DbError::Unavailable("refused".into()))
    }));
    assert_eq!(place(&repo, &[("a", 1)], None).unwrap_err().status(), 503);
}

fn key_row(answer: &StoredAnswer) -> Row {
    Row(vec![
        Value::Str(answer.fingerprint.clone()),
        Value::Int(answer.status.into()),
        Value::Bytes(answer.body.clone()),
        answer.order_id.clone().into(),
        Value::Int(answer.created_at_ms),
    ])
}

/// A script in which the key is already taken by `answer`.
fn taken(answer: StoredAnswer) -> impl FnMut(&str, &[Value]) -> Result<Vec<Row>, DbError> {
    let mut deleted = false;
    let mut shop = shop();
    move |sql, params| {
        if sql.starts_with("INSERT INTO idempotency_keys") && !deleted {
            return Err(DbError::Duplicate {
                index: "uq_idempotency_user_key".into(),
            });
        }
        if sql.starts_with("DELETE FROM idempotency_keys") {
            deleted = true;
        }
        if sql.starts_with("SELECT fingerprint") {
            return Ok(vec![key_row(&answer)]);
        }
        shop(sql, params)
    }
}

fn answer(fingerprint: String, created_at_ms: i64) -> StoredAnswer {
    StoredAnswer {
        fingerprint,
        status: 201,
        body: b"{\"id\":\"o0\"}".to_vec(),
        order_id: Some("o0".into()),
        created_at_ms,
    }
}

#[test]
fn key_is_reserved_first_and_answered_before_commit() {
    let repo = SqlOrders::new(ScriptSql::new(shop()));
    place(&repo, &[("a", 1)], Some("k")).unwrap();
    let s = statements(&repo);
    assert!(s[1].starts_with("INSERT INTO idempotency_keys"));
    let answer_at = s
        .iter()
        .position(|x| x.starts_with("UPDATE idempotency_keys"))
        .unwrap();
    assert_eq!(s[answer_at + 1], "SET autocommit = 1", "the commit");
}

#[test]
fn taken_key_with_same_request_replays_without_touching_products() {
    let fp = request(&[("a", 1)]).fingerprint();
    let repo = SqlOrders::new(ScriptSql::new(taken(answer(fp, 900))));
    let placed = place(&repo, &[("a", 1)], Some("k")).unwrap();
    assert!(matches!(placed, Placement::Replayed(ref a) if a.order_id.as_deref() == Some("o0")));
    assert!(statements(&repo)
        .iter()
        .any(|s| s.ends_with("LOCK IN SHARE MODE")));
    assert_eq!(count(&repo, "UPDATE products"), 0);
}

#[test]
fn taken_key_with_other_request_is_422() {
    let repo = SqlOrders::new(ScriptSql::new(taken(answer("other".into(), 900))));
    let err = place(&repo, &[("a", 1)], Some("k")).unwrap_err();
    assert_eq!(err, ApiError::IdempotencyKeyReused);
    assert_eq!(count(&repo, "ROLLBACK"), 1);
}

#[test]
fn stale_key_is_deleted_and_reserved_again() {
    let fp = request(&[("a", 1)]).fingerprint();
    let stale = 1_000 - crate::model::IDEMPOTENCY_TTL_MS;
    let repo = SqlOrders::new(ScriptSql::new(taken(answer(fp, stale))));
    assert!(matches!(
        place(&repo, &[("a", 1)], Some("k")).unwrap(),
        Placement::Created(_)
    ));
    assert_eq!(count(&repo, "DELETE FROM idempotency_keys"), 1);
    assert_eq!(count(&repo, "INSERT INTO idempotency_keys"), 2);
}

#[test]
fn refusal_under_a_key_is_stored_and_committed() {
    let repo = SqlOrders::new(ScriptSql::new(shop()));
    let placed = place(&repo, &[("b", 9)], Some("k")).unwrap();
    assert!(matches!(
        placed,
        Placement::Refused(ApiError::InsufficientStock { .. })
    ));
    let log = repo.sql().log.borrow().clone();
    let stored = log
        .iter()
        .find(|(s, _)| s.starts_with("UPDATE idempotency_keys"))
        .unwrap();
    assert_eq!(stored.1[0], Value::UInt(409));
    // A keyed order starts on the checked path: no fast-path rollback drops
    // the reservation that waiting duplicates queue on.
    assert_eq!(count(&repo, "ROLLBACK"), 0);
    assert_eq!(count(&repo, "INSERT INTO idempotency_keys"), 1);
    let checked = last_attempt(&repo);
    assert!(checked[1].starts_with("INSERT INTO idempotency_keys"));
    assert!(checked[2].ends_with("ORDER BY id FOR UPDATE"));
    assert!(!checked.iter().any(|s| s.starts_with("UPDATE products")));
    assert_eq!(checked.last().unwrap(), "SET autocommit = 1");
}

#[test]
fn keyed_order_locks_then_takes_stock_in_one_attempt() {
    let repo = SqlOrders::new(ScriptSql::new(shop()));
    let placed = place(&repo, &[("a", 1)], Some("k")).unwrap();
    assert!(matches!(placed, Placement::Created(_)));
    assert_eq!(count(&repo, "ROLLBACK"), 0);
    let s = statements(&repo);
    let lock = s.iter().position(|x| x.ends_with("FOR UPDATE")).unwrap();
    let take = s
        .iter()
        .position(|x| x.starts_with("UPDATE products"))
        .unwrap();
    assert!(lock < take, "{s:#?}");
}

/// An order `o1` of user `u1` in `status`, with lines for `b` then `a`;
/// the conditional cancel changes `changed` rows.
fn order_script(
    status: &'static str,
    changed: i64,
) -> impl FnMut(&str, &[Value]) -> Result<Vec<Row>, DbError> {
    let mut status = status;
    move |sql, _| {
        if sql.starts_with("SELECT id, user_id") {
            return Ok(vec![Row(vec![
                Value::Str("o1".into()),
                Value::Str("u1".into()),
                Value::Str(status.into()),
                Value::Int(300),
                Value::Int(0),
                Value::Int(0),
            ])]);
        }
        if sql.starts_with("SELECT order_id") {
            let line = |id: &str, q: i64| {
                Row(vec![
                    Value::Str("o1".into()),
                    Value::Str(id.into()),
                    Value::Str("s".into()),
                    Value::Str("n".into()),
                    Value::Int(100),
                    Value::Int(q),
                    Value::Int(100 * q),
                ])
            };
            return Ok(vec![line("b", 1), line("a", 2)]);
        }
        if sql.starts_with("UPDATE orders") && changed == 0 {
            // Another cancel won the race.
            status = "cancelled";
        }
        if sql == "SELECT ROW_COUNT()" {
            return Ok(vec![Row(vec![Value::Int(changed)])]);
        }
        Ok(Vec::new())
    }
}

#[test]
fn winning_cancel_gives_every_line_back_in_one_statement() {
    let repo = SqlOrders::new(ScriptSql::new(order_script("created", 1)));
    let result = repo.cancel_order("o1", &|_| true, "e1", 5).unwrap();
    assert!(matches!(result, Some(Cancelled::Now(ref o)) if o.updated_at_ms == 5));
    let log = repo.sql().log.borrow().clone();
    let returns: Vec<&Vec<Value>> = log
        .iter()
        .filter(|(s, _)| s.starts_with("UPDATE products SET stock = stock + CASE id"))
        .map(|(_, p)| p)
        .collect();
    assert_eq!(
        returns,
        [&vec![
            Value::from("b"),
            Value::Int(1),
            Value::from("a"),
            Value::Int(2),
            Value::Int(5),
            Value::from("b"),
            Value::from("a"),
        ]]
    );
}

#[test]
fn losing_cancel_gives_nothing_back_and_answers_the_cancelled_order() {
    let repo = SqlOrders::new(ScriptSql::new(order_script("created", 0)));
    let result = repo.cancel_order("o1", &|_| true, "e1", 5).unwrap();
    assert!(matches!(result, Some(Cancelled::Already(_))));
    assert_eq!(count(&repo, "UPDATE products"), 0);
}

#[test]
fn cancel_of_someone_elses_order_touches_nothing() {
    let repo = SqlOrders::new(ScriptSql::new(order_script("created", 1)));
    assert_eq!(repo.cancel_order("o1", &|_| false, "e1", 5).unwrap(), None);
    assert_eq!(count(&repo, "UPDATE"), 0);
}

// ------------------------------------------------------------- read replicas

/// Answers a product read with one row and a count with 1.
fn catalogue(sql: &str, _: &[Value]) -> Result<Vec<Row>, DbError> {
    if sql.starts_with("SELECT COUNT(*)") {
        return Ok(vec![Row(vec![Value::Int(1)])]);
    }
    if sql.contains("FROM products") {
        return Ok(vec![product_row("a", 100, 5)]);
    }
    Ok(Vec::new())
}

fn logged(sql: &ScriptSql) -> Vec<String> {
    sql.log.borrow().iter().map(|(s, _)| s.clone()).collect()
}

#[test]
fn product_reads_of_the_catalogue_go_to_the_replica() {
    let repo =
        SqlOrders::new(ScriptSql::new(catalogue)).with_replica(Some(ScriptSql::new(catalogue)));
    let page = shared::domain::Pagination { page: 1, limit: 20 };
    repo.list_products(page).unwrap();
    repo.get_product("a").unwrap();
    assert!(logged(repo.sql()).is_empty(), "{:?}", logged(repo.sql()));
    assert_eq!(logged(repo.replica_sql().unwrap()).len(), 3);
}

#[test]
fn an_order_by_id_and_a_product_after_its_update_read_the_primary() {
    let repo =
        SqlOrders::new(ScriptSql::new(catalogue)).with_replica(Some(ScriptSql::new(catalogue)));
    repo.get_order("o1").unwrap();
    repo.update_product("a", &crate::model::ProductPatch::default(), 1)
        .unwrap();
    assert!(logged(repo.replica_sql().unwrap()).is_empty());
    let primary = logged(repo.sql());
    assert!(primary.iter().any(|s| s.starts_with("UPDATE products")));
    assert!(primary
        .iter()
        .any(|s| s.contains("FROM products WHERE id = ?")));
}

#[test]
fn an_unreachable_replica_leaves_the_catalogue_to_the_primary() {
    let repo =
        SqlOrders::new(ScriptSql::new(catalogue)).with_replica(Some(ScriptSql::new(|_, _| {
            Err(DbError::Unavailable("refused".into()))
        })));
    let page = shared::domain::Pagination { page: 1, limit: 20 };
    let (products, total) = repo.list_products(page).unwrap();
    assert_eq!((products.len(), total), (1, 1));
    assert_eq!(logged(repo.replica_sql().unwrap()).len(), 1, "tried once");
    assert_eq!(logged(repo.sql()).len(), 2);
}
