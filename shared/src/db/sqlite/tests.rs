use std::cell::RefCell;

use proptest::prelude::*;

use super::*;
use crate::db::{Row, Value};

#[test]
fn statements_split_at_line_ending_semicolons_and_drop_comments() {
    let file = "-- a comment; with a semicolon\n\
                CREATE TABLE a (\n    id TEXT NOT NULL, -- trailing comment\n    n INTEGER\n);\n\
                \n\
                CREATE INDEX ix ON a (n);\n";
    assert_eq!(
        statements(file),
        vec![
            "CREATE TABLE a (\n    id TEXT NOT NULL,\n    n INTEGER\n)".to_string(),
            "CREATE INDEX ix ON a (n)".to_string(),
        ]
    );
}

#[test]
fn every_embedded_migration_splits_into_create_statements_only() {
    for (name, file) in MIGRATIONS {
        let statements = statements(file);
        assert!(!statements.is_empty(), "{name} has statements");
        for statement in statements {
            assert!(
                statement.starts_with("CREATE "),
                "{name}: only CREATE statements, got {statement:?}"
            );
            assert!(!statement.contains(';'), "{name}: one statement each");
        }
    }
}

proptest! {
    #[test]
    fn statements_never_panic_and_never_keep_a_line_ending_semicolon(
        text in crate::testing::hostile_text()
    ) {
        for statement in statements(&text) {
            prop_assert!(!statement.is_empty());
            prop_assert!(!statement.lines().any(|l| l.trim_end().ends_with(';')));
        }
    }

    #[test]
    fn statements_give_back_what_was_joined(
        parts in proptest::collection::vec("[A-Za-z0-9 _(),'éß€]{1,40}", 1..6)
    ) {
        let parts: Vec<String> = parts
            .into_iter()
            .map(|p| p.trim().to_string())
            .filter(|p| !p.is_empty())
            .collect();
        let file: String = parts.iter().map(|p| format!("{p};\n")).collect();
        prop_assert_eq!(statements(&file), parts);
    }
}

/// A SQLite connection as far as the schema runner sees it: it records
/// statements and answers `PRAGMA user_version` from its own counter.
struct Recorder {
    version: RefCell<i64>,
    log: RefCell<Vec<String>>,
}

impl Recorder {
    fn at(version: i64) -> Self {
        Self {
            version: RefCell::new(version),
            log: RefCell::new(Vec::new()),
        }
    }
}

impl Sql for Recorder {
    fn dialect(&self) -> crate::db::Dialect {
        crate::db::Dialect::Sqlite
    }

    fn execute(&self, sql: &str, _: &[Value]) -> Result<(), DbError> {
        self.log.borrow_mut().push(sql.to_string());
        if let Some(v) = sql.strip_prefix("PRAGMA user_version = ") {
            *self.version.borrow_mut() = v.parse().map_err(|_| DbError::Query(sql.into()))?;
        }
        Ok(())
    }

    fn query(&self, sql: &str, _: &[Value]) -> Result<Vec<Row>, DbError> {
        self.log.borrow_mut().push(sql.to_string());
        Ok(match sql {
            "PRAGMA user_version" => vec![Row(vec![Value::Int(*self.version.borrow())])],
            _ => Vec::new(),
        })
    }
}

#[test]
fn an_up_to_date_database_costs_one_statement() {
    let db = Recorder::at(schema_version());
    assert_eq!(migrate(&db), Ok(Vec::new()));
    assert_eq!(*db.log.borrow(), vec!["PRAGMA user_version".to_string()]);
}

#[test]
fn a_fresh_database_gets_every_migration_in_one_immediate_transaction() {
    let db = Recorder::at(0);
    let applied = migrate(&db).expect("migrates");
    let names: Vec<&str> = MIGRATIONS.iter().map(|(name, _)| *name).collect();
    assert_eq!(applied, names);
    assert_eq!(*db.version.borrow(), schema_version());
    let log = db.log.borrow();
    let begin = log
        .iter()
        .position(|s| s == "BEGIN IMMEDIATE")
        .expect("BEGIN");
    assert_eq!(log.last().map(String::as_str), Some("COMMIT"));
    assert!(log[begin..].iter().any(|s| s.starts_with("CREATE TABLE")));
    assert!(log[..begin]
        .iter()
        .any(|s| s == "PRAGMA journal_mode = WAL"));
}

#[test]
fn only_pending_migrations_are_applied() {
    let db = Recorder::at(schema_version() - 1);
    let applied = migrate(&db).expect("migrates");
    assert_eq!(applied, vec![MIGRATIONS[MIGRATIONS.len() - 1].0]);
}
