use super::*;

#[test]
fn integer_columns_read_across_signedness() {
    let row = Row(vec![Value::UInt(5), Value::Int(-1), Value::Int(1)]);
    assert_eq!(row.i64(0).unwrap(), 5);
    assert!(row.u64(1).is_err());
    assert!(row.bool(2).unwrap());
}

#[test]
fn duplicate_error_names_its_index_on_mariadb_and_mysql() {
    let maria = DbError::classify_server_error(
        "ServerError { code: 1062, message: \"Duplicate entry 'a' for key 'uq_users_email'\", state: \"23000\" }",
    );
    assert!(maria.is_duplicate(&USERS_EMAIL));
    assert!(!maria.is_duplicate(&PRODUCTS_SKU));
    let mysql = DbError::classify_server_error(
        "ServerError { code: 1062, message: \"Duplicate entry 'a' for key 'users.uq_users_email'\" }",
    );
    assert!(mysql.is_duplicate(&USERS_EMAIL));
}

const USERS_EMAIL: UniqueKey = UniqueKey {
    index: "uq_users_email",
    columns: "users.email",
};
const PRODUCTS_SKU: UniqueKey = UniqueKey {
    index: "uq_products_sku",
    columns: "products.sku",
};

#[test]
fn duplicate_error_on_sqlite_names_its_columns() {
    let e = DbError::classify_sqlite_error("UNIQUE constraint failed: users.email");
    assert!(e.is_duplicate(&USERS_EMAIL));
    assert!(!e.is_duplicate(&PRODUCTS_SKU));
    let composite = DbError::classify_sqlite_error(
        "UNIQUE constraint failed: idempotency_keys.user_id, idempotency_keys.idem_key",
    );
    assert_eq!(
        composite,
        DbError::Duplicate {
            index: "idempotency_keys.user_id, idempotency_keys.idem_key".into()
        }
    );
}

#[test]
fn sqlite_foreign_key_busy_and_other_failures_are_classified() {
    let fk = DbError::classify_sqlite_error("FOREIGN KEY constraint failed");
    assert!(fk.is_foreign_key("fk_uploads_user"));
    assert_eq!(
        DbError::classify_sqlite_error("database is locked"),
        DbError::LockWaitTimeout
    );
    assert!(DbError::classify_sqlite_error("database is locked").is_transient());
    assert!(matches!(
        DbError::classify_sqlite_error("unable to open database file"),
        DbError::Unavailable(_)
    ));
    assert!(matches!(
        DbError::classify_sqlite_error("no such column: nope"),
        DbError::Query(_)
    ));
}

#[test]
fn a_named_foreign_key_matches_only_its_own_name() {
    let e = DbError::ForeignKey {
        constraint: "fk_uploads_blob".into(),
    };
    assert!(!e.is_foreign_key("fk_uploads_user"));
}

#[test]
fn foreign_key_error_names_its_constraint() {
    let e = DbError::classify_server_error(
        "ServerError { code: 1452, message: \"Cannot add or update a child row: a foreign key \
         constraint fails (`db`.`uploads`, CONSTRAINT `fk_uploads_user` FOREIGN KEY (`user_id`) \
         REFERENCES `users` (`id`))\" }",
    );
    assert!(e.is_foreign_key("fk_uploads_user"));
}

#[test]
fn deadlocks_and_lock_timeouts_are_transient_and_connection_loss_is_an_outage() {
    assert_eq!(
        DbError::classify_server_error("ServerError { code: 1213, message: \"Deadlock found\" }"),
        DbError::Deadlock
    );
    assert_eq!(
        DbError::classify_server_error("ServerError { code: 1205, message: \"Lock wait\" }"),
        DbError::LockWaitTimeout
    );
    assert!(DbError::Deadlock.is_transient());
    assert!(matches!(
        DbError::classify_server_error("Io(Io(Kind(ConnectionReset)))"),
        DbError::Unavailable(_)
    ));
    assert!(matches!(
        DbError::classify_server_error("ServerError { code: 1064, message: \"syntax\" }"),
        DbError::Query(_)
    ));
}

#[test]
fn a_deadlock_that_outlives_its_retries_is_500_and_an_outage_503() {
    assert_eq!(ApiError::from(DbError::Deadlock).status(), 500);
    assert_eq!(ApiError::from(TxError::Retry("row vanished")).status(), 500);
    assert_eq!(
        ApiError::from(TxError::Db(DbError::Unavailable("x".into()))).status(),
        503
    );
}

/// Records statements; fails the one equal to `fail_on`.
struct Recorder {
    log: std::cell::RefCell<Vec<String>>,
    fail_on: &'static str,
    dialect: Dialect,
}

impl Sql for Recorder {
    fn dialect(&self) -> Dialect {
        self.dialect
    }
    fn execute(&self, sql: &str, params: &[Value]) -> Result<(), DbError> {
        self.query(sql, params).map(|_| ())
    }
    fn query(&self, sql: &str, _: &[Value]) -> Result<Vec<Row>, DbError> {
        self.log.borrow_mut().push(sql.to_string());
        if sql == self.fail_on {
            return Err(DbError::Query("refused".into()));
        }
        Ok(Vec::new())
    }
}

fn recorder(fail_on: &'static str) -> Recorder {
    Recorder {
        log: Default::default(),
        fail_on,
        dialect: Dialect::MySql,
    }
}

fn sqlite_recorder(fail_on: &'static str) -> Recorder {
    Recorder {
        dialect: Dialect::Sqlite,
        ..recorder(fail_on)
    }
}

#[test]
fn a_sqlite_transaction_takes_the_write_lock_at_once_and_commits() {
    let sql = sqlite_recorder("");
    sql.transaction(|s| Ok(s.execute("INSERT x", &[])?))
        .unwrap();
    assert_eq!(*sql.log.borrow(), ["BEGIN IMMEDIATE", "INSERT x", "COMMIT"]);
}

#[test]
fn a_failed_sqlite_transaction_rolls_back() {
    let sql = sqlite_recorder("INSERT x");
    let result: Result<(), ApiError> = sql.transaction(|s| Ok(s.execute("INSERT x", &[])?));
    assert_eq!(result.unwrap_err().status(), 500);
    assert_eq!(
        *sql.log.borrow(),
        ["BEGIN IMMEDIATE", "INSERT x", "ROLLBACK"]
    );
}

#[test]
fn a_sqlite_commit_that_fails_still_rolls_back() {
    let sql = sqlite_recorder("COMMIT");
    let result: Result<(), ApiError> = sql.transaction(|s| Ok(s.execute("INSERT x", &[])?));
    assert!(result.is_err());
    assert_eq!(
        *sql.log.borrow(),
        ["BEGIN IMMEDIATE", "INSERT x", "COMMIT", "ROLLBACK"]
    );
}

#[test]
fn a_busy_sqlite_transaction_is_retried_from_the_start() {
    let sql = sqlite_recorder("");
    let mut tries = 0;
    let result = sql.transaction_retrying(3, |s| {
        tries += 1;
        s.execute("UPDATE x", &[])?;
        if tries < 2 {
            return Err(TxError::Db(DbError::classify_sqlite_error(
                "database is locked",
            )));
        }
        Ok(tries)
    });
    assert_eq!(result, Ok(2));
    assert_eq!(
        *sql.log.borrow(),
        [
            "BEGIN IMMEDIATE",
            "UPDATE x",
            "ROLLBACK",
            "BEGIN IMMEDIATE",
            "UPDATE x",
            "COMMIT"
        ]
    );
}

#[test]
fn row_counts_use_the_dialect_s_function() {
    assert_eq!(Dialect::MySql.row_count(), "ROW_COUNT()");
    assert_eq!(Dialect::Sqlite.row_count(), "changes()");
    assert_eq!(Dialect::MySql.for_update(), " FOR UPDATE");
    assert_eq!(Dialect::Sqlite.for_update(), "");
}

#[test]
fn a_transaction_commits_by_turning_autocommit_back_on() {
    let sql = recorder("");
    sql.transaction(|s| Ok(s.execute("INSERT x", &[])?))
        .unwrap();
    assert_eq!(
        *sql.log.borrow(),
        ["SET autocommit = 0", "INSERT x", "SET autocommit = 1"]
    );
}

#[test]
fn a_failed_transaction_rolls_back_before_autocommit_returns() {
    let sql = recorder("INSERT x");
    let result: Result<(), ApiError> = sql.transaction(|s| Ok(s.execute("INSERT x", &[])?));
    assert_eq!(result.unwrap_err().status(), 500);
    assert_eq!(
        *sql.log.borrow(),
        [
            "SET autocommit = 0",
            "INSERT x",
            "ROLLBACK",
            "SET autocommit = 1"
        ]
    );
}

#[test]
fn unreachable_database_maps_to_503() {
    let e: ApiError = DbError::Unavailable("refused".into()).into();
    assert_eq!(e.status(), 503);
}

// ------------------------------------------------------------- read replicas

/// A connection that answers every query with one row naming itself, or
/// fails as told; it counts its queries.
struct Named {
    name: &'static str,
    failure: Option<DbError>,
    queries: std::cell::Cell<u32>,
}

impl Named {
    fn up(name: &'static str) -> Self {
        Self {
            name,
            failure: None,
            queries: std::cell::Cell::new(0),
        }
    }
    fn failing(name: &'static str, failure: DbError) -> Self {
        Self {
            failure: Some(failure),
            ..Self::up(name)
        }
    }
}

impl Sql for Named {
    fn execute(&self, sql: &str, params: &[Value]) -> Result<(), DbError> {
        self.query(sql, params).map(|_| ())
    }
    fn query(&self, _: &str, _: &[Value]) -> Result<Vec<Row>, DbError> {
        self.queries.set(self.queries.get() + 1);
        match &self.failure {
            Some(e) => Err(e.clone()),
            None => Ok(vec![Row(vec![Value::Str(self.name.into())])]),
        }
    }
}

fn answered_by(sql: &impl Sql) -> Result<String, DbError> {
    sql.query("SELECT who", &[])?[0].string(0)
}

#[test]
fn lag_tolerant_reads_go_to_the_replica() {
    let (primary, replica) = (Named::up("primary"), Named::up("replica"));
    let replica = Replica::new(Some(&replica));
    assert_eq!(answered_by(&replica.reads(&primary)).unwrap(), "replica");
    assert_eq!(primary.queries.get(), 0);
}

#[test]
fn without_a_replica_reads_go_to_the_primary() {
    let primary = Named::up("primary");
    let replica: Replica<&Named> = Replica::none();
    assert_eq!(answered_by(&replica.reads(&primary)).unwrap(), "primary");
}

#[test]
fn an_unreachable_replica_falls_back_to_the_primary_for_the_rest_of_the_request() {
    let primary = Named::up("primary");
    let lost = Named::failing("replica", DbError::Unavailable("refused".into()));
    let replica = Replica::new(Some(&lost));
    for _ in 0..3 {
        assert_eq!(answered_by(&replica.reads(&primary)).unwrap(), "primary");
    }
    assert_eq!(lost.queries.get(), 1, "one failed connection per request");
    assert_eq!(primary.queries.get(), 3);
}

#[test]
fn a_query_the_replica_refuses_is_not_retried_on_the_primary() {
    let primary = Named::up("primary");
    let broken = Named::failing("replica", DbError::Query("syntax".into()));
    let replica = Replica::new(Some(&broken));
    assert_eq!(
        answered_by(&replica.reads(&primary)),
        Err(DbError::Query("syntax".into()))
    );
    assert_eq!(primary.queries.get(), 0);
}

#[test]
fn writes_through_a_read_side_go_to_the_primary() {
    let (primary, replica) = (Named::up("primary"), Named::up("replica"));
    let replica = Replica::new(Some(&replica));
    replica.reads(&primary).execute("UPDATE x", &[]).unwrap();
    assert_eq!(primary.queries.get(), 1);
}
