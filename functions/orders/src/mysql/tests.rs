//! The MySQL repository's statement protocol, on a scripted [`Sql`] fake:
//! lock order, what a refusal leaves untouched, deadlock retries, the
//! idempotency-key paths and the conditional cancel. (Its behaviour on the
//! real MariaDB under concurrency is proven by tests/api/tests/orders.rs.)

use std::cell::RefCell;

use shared::db::{DbError, Row, Sql, Value};
use shared::error::ApiError;

use crate::model::{IdempotencyKey, OrderRequest, Placement, Quantity, StoredAnswer, Wanted};
use crate::mysql::{MySqlOrders, MAX_ATTEMPTS};
use crate::repo::{Cancelled, NewOrder, OrderRepo};

type Responder = Box<dyn FnMut(&str, &[Value]) -> Result<Vec<Row>, DbError>>;

/// Records every statement and answers it through `respond`.
struct ScriptSql {
    log: RefCell<Vec<(String, Vec<Value>)>>,
    respond: RefCell<Responder>,
}

impl ScriptSql {
    fn new(respond: impl FnMut(&str, &[Value]) -> Result<Vec<Row>, DbError> + 'static) -> Self {
        Self {
            log: RefCell::new(Vec::new()),
            respond: RefCell::new(Box::new(respond)),
        }
    }
}

impl Sql for ScriptSql {
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

fn statements(repo: &MySqlOrders<ScriptSql>) -> Vec<String> {
    repo.sql()
        .log
        .borrow()
        .iter()
        .map(|(s, _)| s.clone())
        .collect()
}

fn count(repo: &MySqlOrders<ScriptSql>, prefix: &str) -> usize {
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

/// Products `a` (stock 5) and `b` (stock 1), both priced 100.
fn shop(sql: &str, _: &[Value]) -> Result<Vec<Row>, DbError> {
    if sql.starts_with("SELECT id, sku") {
        Ok(vec![product_row("a", 100, 5), product_row("b", 100, 1)])
    } else {
        Ok(Vec::new())
    }
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
    repo: &MySqlOrders<ScriptSql>,
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
        now_ms: 1_000,
        render_refusal: &render,
    })
}

#[test]
fn order_locks_its_products_in_id_order_then_writes_and_commits() {
    let repo = MySqlOrders::new(ScriptSql::new(shop));
    let placed = place(&repo, &[("b", 1), ("a", 2)], None).unwrap();
    assert!(matches!(placed, Placement::Created(ref o) if o.total_cents == 300));
    let log = repo.sql().log.borrow().clone();
    let kinds: Vec<&str> = log
        .iter()
        .map(|(s, _)| s.split(' ').next().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["SET", "SELECT", "UPDATE", "UPDATE", "INSERT", "INSERT", "COMMIT", "SET"]
    );
    assert!(log[1].0.ends_with("ORDER BY id FOR UPDATE"));
    assert_eq!(log[1].1, vec![Value::from("a"), Value::from("b")]);
    assert_eq!(
        log[2].1[2],
        Value::from("a"),
        "stock is taken in id order too"
    );
}

#[test]
fn shortfall_changes_nothing() {
    let repo = MySqlOrders::new(ScriptSql::new(shop));
    let placed = place(&repo, &[("a", 1), ("b", 2)], None).unwrap();
    assert_eq!(
        placed,
        Placement::Refused(ApiError::InsufficientStock {
            product_id: "b".into()
        })
    );
    assert_eq!(count(&repo, "UPDATE"), 0);
    assert_eq!(count(&repo, "INSERT"), 0);
}

#[test]
fn deadlock_victim_is_retried_in_a_fresh_transaction() {
    let mut failed = false;
    let repo = MySqlOrders::new(ScriptSql::new(move |sql, params| {
        if sql.starts_with("SELECT id, sku") && !failed {
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
    let repo = MySqlOrders::new(ScriptSql::new(|sql, params| {
        if sql.starts_with("SELECT id, sku") {
            return Err(DbError::LockWaitTimeout);
        }
        shop(sql, params)
    }));
    assert_eq!(place(&repo, &[("a", 1)], None).unwrap_err().status(), 500);
    assert_eq!(count(&repo, "SET autocommit = 0"), MAX_ATTEMPTS as usize);
}

#[test]
fn other_query_failures_are_not_retried() {
    let repo = MySqlOrders::new(ScriptSql::new(|sql, params| {
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
    let repo = MySqlOrders::new(ScriptSql::new(|_, _| {
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
    let repo = MySqlOrders::new(ScriptSql::new(shop));
    place(&repo, &[("a", 1)], Some("k")).unwrap();
    let s = statements(&repo);
    assert!(s[1].starts_with("INSERT INTO idempotency_keys"));
    let answer_at = s
        .iter()
        .position(|x| x.starts_with("UPDATE idempotency_keys"))
        .unwrap();
    assert_eq!(s[answer_at + 1], "COMMIT");
}

#[test]
fn taken_key_with_same_request_replays_without_touching_products() {
    let fp = request(&[("a", 1)]).fingerprint();
    let repo = MySqlOrders::new(ScriptSql::new(taken(answer(fp, 900))));
    let placed = place(&repo, &[("a", 1)], Some("k")).unwrap();
    assert!(matches!(placed, Placement::Replayed(ref a) if a.order_id.as_deref() == Some("o0")));
    assert!(statements(&repo)
        .iter()
        .any(|s| s.ends_with("LOCK IN SHARE MODE")));
    assert_eq!(count(&repo, "SELECT id, sku"), 0);
}

#[test]
fn taken_key_with_other_request_is_422() {
    let repo = MySqlOrders::new(ScriptSql::new(taken(answer("other".into(), 900))));
    let err = place(&repo, &[("a", 1)], Some("k")).unwrap_err();
    assert_eq!(err, ApiError::IdempotencyKeyReused);
    assert_eq!(count(&repo, "ROLLBACK"), 1);
}

#[test]
fn stale_key_is_deleted_and_reserved_again() {
    let fp = request(&[("a", 1)]).fingerprint();
    let stale = 1_000 - crate::model::IDEMPOTENCY_TTL_MS;
    let repo = MySqlOrders::new(ScriptSql::new(taken(answer(fp, stale))));
    assert!(matches!(
        place(&repo, &[("a", 1)], Some("k")).unwrap(),
        Placement::Created(_)
    ));
    assert_eq!(count(&repo, "DELETE FROM idempotency_keys"), 1);
    assert_eq!(count(&repo, "INSERT INTO idempotency_keys"), 2);
}

#[test]
fn refusal_under_a_key_is_stored_and_committed() {
    let repo = MySqlOrders::new(ScriptSql::new(shop));
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
    assert_eq!(count(&repo, "UPDATE products"), 0);
    assert_eq!(count(&repo, "COMMIT"), 1);
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
fn winning_cancel_gives_each_line_back_in_id_order() {
    let repo = MySqlOrders::new(ScriptSql::new(order_script("created", 1)));
    let result = repo.cancel_order("o1", &|_| true, 5).unwrap();
    assert!(matches!(result, Some(Cancelled::Now(ref o)) if o.updated_at_ms == 5));
    let log = repo.sql().log.borrow().clone();
    let returns: Vec<&Value> = log
        .iter()
        .filter(|(s, _)| s.starts_with("UPDATE products SET stock = stock +"))
        .map(|(_, p)| &p[2])
        .collect();
    assert_eq!(returns, [&Value::from("a"), &Value::from("b")]);
}

#[test]
fn losing_cancel_gives_nothing_back_and_answers_the_cancelled_order() {
    let repo = MySqlOrders::new(ScriptSql::new(order_script("created", 0)));
    let result = repo.cancel_order("o1", &|_| true, 5).unwrap();
    assert!(matches!(result, Some(Cancelled::Already(_))));
    assert_eq!(count(&repo, "UPDATE products"), 0);
}

#[test]
fn cancel_of_someone_elses_order_touches_nothing() {
    let repo = MySqlOrders::new(ScriptSql::new(order_script("created", 1)));
    assert_eq!(repo.cancel_order("o1", &|_| false, 5).unwrap(), None);
    assert_eq!(count(&repo, "UPDATE"), 0);
}
