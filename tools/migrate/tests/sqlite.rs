//! The SQLite schema (`migrations/sqlite/`) as `migrate sqlite:PATH` builds
//! it: the twin of the MySQL schema (`migrations/*.sql`, read here) table by
//! table, column by column, index by index; applied once; and enforcing what
//! the app relies on: cascades, checks, and unique indexes whose refusals the
//! app recognises as duplicates.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use migrate::SqliteFile;
use shared::db::{DbError, Row, Sql, UniqueKey, Value};

/// The one deliberate difference of names: on SQLite `seq` is the primary
/// key (only an INTEGER PRIMARY KEY counts by itself), so the event id has
/// the unique index MySQL gives `seq` (migrations/sqlite/0006_order_events.sql).
const RENAMED_INDEXES: &[(&str, &str)] = &[("uq_order_events_seq", "uq_order_events_id")];

/// Primary keys that differ for the same reason.
const PRIMARY_KEYS: &[(&str, &[&str])] = &[("order_events", &["seq"])];

// ---------------------------------------------------------------------------
// The MySQL schema, read from migrations/*.sql.

#[derive(Debug, Default)]
struct Column {
    sql_type: String,
    not_null: bool,
    default: Option<String>,
}

#[derive(Debug, Default)]
struct Table {
    columns: BTreeMap<String, Column>,
    primary_key: Vec<String>,
    /// Index name -> unique.
    indexes: BTreeMap<String, bool>,
    /// (column, parent table, parent column, ON DELETE action).
    foreign_keys: BTreeSet<(String, String, String, String)>,
    /// Names of CHECK and FOREIGN KEY constraints.
    constraints: BTreeSet<String>,
}

fn mysql_files() -> Vec<PathBuf> {
    sql_files(&migrate::default_dir())
}

fn sql_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "sql"))
        .collect();
    files.sort();
    files
}

fn stem(path: &Path) -> String {
    path.file_stem().unwrap().to_str().unwrap().to_string()
}

/// The columns inside `(…)`, e.g. `(user_id, idem_key)`.
fn column_list(text: &str) -> Vec<String> {
    let inner = text
        .split_once('(')
        .and_then(|(_, rest)| rest.split_once(')'))
        .map(|(inner, _)| inner)
        .unwrap_or_else(|| panic!("no column list in {text:?}"));
    inner.split(',').map(|c| c.trim().to_string()).collect()
}

fn mysql_schema() -> BTreeMap<String, Table> {
    let mut tables: BTreeMap<String, Table> = BTreeMap::new();
    for file in mysql_files() {
        let text: String = std::fs::read_to_string(&file)
            .unwrap()
            .lines()
            .map(|l| l.split_once("--").map_or(l, |(code, _)| code))
            .collect::<Vec<_>>()
            .join("\n");
        for statement in text.split(';').map(str::trim).filter(|s| !s.is_empty()) {
            let mut lines = statement.lines().map(str::trim).filter(|l| !l.is_empty());
            let head: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
            match head.as_slice() {
                ["CREATE", "TABLE", "IF", "NOT", "EXISTS", name, "("] => {
                    let table = tables.entry(name.to_string()).or_default();
                    for line in lines {
                        definition(table, line.trim_end_matches(','));
                    }
                }
                ["ALTER", "TABLE", name] => {
                    let table = tables.get_mut(*name).expect("ALTER of a known table");
                    for line in lines {
                        alteration(table, line.trim_end_matches(','));
                    }
                }
                other => panic!("{}: unexpected statement {other:?}", file.display()),
            }
        }
    }
    tables
}

/// One line of a MySQL CREATE TABLE body.
fn definition(table: &mut Table, line: &str) {
    let words: Vec<&str> = line.split_whitespace().collect();
    match words.as_slice() {
        [")", ..] => {} // `) ENGINE = InnoDB …`
        ["PRIMARY", "KEY", ..] => table.primary_key = column_list(line),
        ["UNIQUE", "KEY", name, ..] => {
            table.indexes.insert(name.to_string(), true);
        }
        ["KEY", name, ..] => {
            table.indexes.insert(name.to_string(), false);
        }
        ["CONSTRAINT", name, rest @ ..] => constraint(table, name, rest, line),
        [name, sql_type, ..] => column(table, name, sql_type, line),
        _ => panic!("unexpected definition {line:?}"),
    }
}

fn constraint(table: &mut Table, name: &str, rest: &[&str], line: &str) {
    table.constraints.insert(name.to_string());
    if rest.first() == Some(&"FOREIGN") {
        let (own, parent) = line.split_once("REFERENCES").unwrap();
        let parent_table = parent.split_whitespace().next().unwrap().to_string();
        let on_delete = parent
            .split_once("ON DELETE ")
            .map_or("NO ACTION".to_string(), |(_, action)| {
                action.trim().to_string()
            });
        table.foreign_keys.insert((
            column_list(own).remove(0),
            parent_table,
            column_list(parent).remove(0),
            on_delete,
        ));
    }
}

fn column(table: &mut Table, name: &str, sql_type: &str, line: &str) {
    let words: Vec<&str> = line.split_whitespace().collect();
    let default = words
        .iter()
        .position(|w| *w == "DEFAULT")
        .map(|i| words[i + 1].to_string());
    table.columns.insert(
        name.to_string(),
        Column {
            sql_type: sql_type.split('(').next().unwrap().to_string(),
            not_null: line.contains("NOT NULL"),
            default,
        },
    );
}

/// One clause of a MySQL ALTER TABLE.
fn alteration(table: &mut Table, line: &str) {
    let words: Vec<&str> = line.split_whitespace().collect();
    match words.as_slice() {
        ["ADD", "INDEX", name, ..] => {
            table.indexes.insert(name.to_string(), false);
        }
        ["ADD", "COLUMN", name, sql_type, ..] => column(table, name, sql_type, line),
        ["MODIFY", name, ..] => {
            let column = table
                .columns
                .get_mut(*name)
                .expect("MODIFY of a known column");
            column.not_null = line.contains("NOT NULL");
        }
        ["ADD", "CONSTRAINT", name, rest @ ..] => constraint(table, name, rest, line),
        _ => panic!("unexpected ALTER clause {line:?}"),
    }
}

/// The SQLite type a MySQL type becomes.
fn sqlite_type(mysql: &str) -> &'static str {
    match mysql {
        "CHAR" | "VARCHAR" | "MEDIUMTEXT" | "TEXT" => "TEXT",
        "BIGINT" | "INT" | "SMALLINT" | "TINYINT" => "INTEGER",
        "LONGBLOB" | "BLOB" => "BLOB",
        other => panic!("no SQLite type for MySQL {other}"),
    }
}

// ---------------------------------------------------------------------------
// The SQLite schema, read from a migrated file.

fn migrated() -> (tempfile::TempDir, SqliteFile) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("api.db");
    migrate::apply_sqlite(&path).unwrap();
    let db = SqliteFile::open(&path).unwrap();
    (dir, db)
}

fn strings(db: &SqliteFile, sql: &str, params: &[Value]) -> Vec<String> {
    db.query(sql, params)
        .unwrap()
        .iter()
        .map(|r| r.string(0).unwrap())
        .collect()
}

fn count(db: &SqliteFile, sql: &str) -> i64 {
    db.query(sql, &[]).unwrap()[0].i64(0).unwrap()
}

fn sqlite_tables(db: &SqliteFile) -> BTreeSet<String> {
    strings(
        db,
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
        &[],
    )
    .into_iter()
    .collect()
}

/// `(name, type, notnull, default, pk position)` of each column.
fn table_info(db: &SqliteFile, table: &str) -> Vec<(String, String, bool, Option<String>, i64)> {
    db.query(
        "SELECT name, type, \"notnull\", dflt_value, pk FROM pragma_table_info(?) ORDER BY cid",
        &[table.into()],
    )
    .unwrap()
    .iter()
    .map(|r| {
        (
            r.string(0).unwrap(),
            r.string(1).unwrap(),
            r.i64(2).unwrap() == 1,
            r.opt_string(3).unwrap(),
            r.i64(4).unwrap(),
        )
    })
    .collect()
}

/// The column that is the table's rowid: a primary key of one INTEGER column.
fn rowid_alias(db: &SqliteFile, table: &str) -> Option<String> {
    match table_info(db, table)
        .into_iter()
        .filter(|c| c.4 > 0)
        .collect::<Vec<_>>()
        .as_slice()
    {
        [(name, sql_type, ..)] if sql_type == "INTEGER" => Some(name.clone()),
        _ => None,
    }
}

// ---------------------------------------------------------------------------

#[test]
fn every_mysql_migration_has_its_sqlite_twin_embedded_in_order() {
    let mysql: Vec<String> = mysql_files().iter().map(|p| stem(p)).collect();
    let sqlite: Vec<String> = sql_files(&migrate::default_dir().join("sqlite"))
        .iter()
        .map(|p| stem(p))
        .collect();
    let embedded: Vec<String> = shared::db::sqlite::MIGRATIONS
        .iter()
        .map(|(name, _)| name.to_string())
        .collect();
    assert_eq!(sqlite, mysql);
    assert_eq!(embedded, mysql);
}

#[test]
fn the_sqlite_schema_is_the_mysql_schema() {
    let (_dir, db) = migrated();
    let mysql = mysql_schema();
    assert_eq!(
        sqlite_tables(&db),
        mysql.keys().cloned().collect::<BTreeSet<_>>(),
        "tables"
    );

    for (name, expected) in &mysql {
        let info = table_info(&db, name);
        let columns: BTreeMap<&str, _> = info.iter().map(|c| (c.0.as_str(), c)).collect();
        assert_eq!(
            columns.keys().copied().collect::<BTreeSet<_>>(),
            expected.columns.keys().map(String::as_str).collect(),
            "{name}: columns"
        );
        for (column, want) in &expected.columns {
            let (_, sql_type, not_null, default, _) = columns[column.as_str()];
            assert_eq!(
                sql_type,
                sqlite_type(&want.sql_type),
                "{name}.{column}: type"
            );
            // An INTEGER PRIMARY KEY is the rowid, which is never NULL.
            let rowid = rowid_alias(&db, name).as_ref() == Some(column);
            assert_eq!(
                *not_null || rowid,
                want.not_null,
                "{name}.{column}: NOT NULL"
            );
            assert_eq!(default, &want.default, "{name}.{column}: default");
        }

        let mut primary_key: Vec<_> = info.iter().filter(|c| c.4 > 0).collect();
        primary_key.sort_by_key(|c| c.4);
        let primary_key: Vec<String> = primary_key.iter().map(|c| c.0.clone()).collect();
        let want_pk = PRIMARY_KEYS
            .iter()
            .find(|(t, _)| t == name)
            .map_or(expected.primary_key.clone(), |(_, pk)| {
                pk.iter().map(|c| c.to_string()).collect()
            });
        assert_eq!(primary_key, want_pk, "{name}: primary key");

        let indexes: BTreeMap<String, bool> = db
            .query(
                "SELECT name, \"unique\" FROM pragma_index_list(?) WHERE origin = 'c'",
                &[name.into()],
            )
            .unwrap()
            .iter()
            .map(|r| (r.string(0).unwrap(), r.i64(1).unwrap() == 1))
            .collect();
        let want_indexes: BTreeMap<String, bool> = expected
            .indexes
            .iter()
            .map(|(index, unique)| {
                let renamed = RENAMED_INDEXES
                    .iter()
                    .find(|(from, _)| from == index)
                    .map_or(index.as_str(), |(_, to)| to);
                (renamed.to_string(), *unique)
            })
            .collect();
        assert_eq!(indexes, want_indexes, "{name}: indexes (name, unique)");

        let foreign_keys: BTreeSet<(String, String, String, String)> = db
            .query(
                "SELECT \"from\", \"table\", \"to\", on_delete FROM pragma_foreign_key_list(?)",
                &[name.into()],
            )
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r.string(0).unwrap(),
                    r.string(1).unwrap(),
                    r.string(2).unwrap(),
                    r.string(3).unwrap(),
                )
            })
            .collect();
        assert_eq!(foreign_keys, expected.foreign_keys, "{name}: foreign keys");

        let ddl = strings(
            &db,
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?",
            &[name.into()],
        )
        .remove(0);
        for constraint in &expected.constraints {
            assert!(
                ddl.contains(&format!("CONSTRAINT {constraint} ")),
                "{name}: constraint {constraint} in {ddl}"
            );
        }
    }
}

#[tokio::test]
async fn migrating_twice_applies_nothing_the_second_time() {
    let dir = tempfile::tempdir().unwrap();
    // A directory that does not exist yet, as `.spin/` before the first `spin up`.
    let path = dir.path().join(".spin").join("sqlite_db.db");
    let url = format!("sqlite:{}", path.display());
    let first = migrate::apply(&url, &migrate::default_dir()).await.unwrap();
    let names: Vec<&str> = shared::db::sqlite::MIGRATIONS
        .iter()
        .map(|(n, _)| *n)
        .collect();
    assert_eq!(first, names);
    let again = migrate::apply(&url, &migrate::default_dir()).await.unwrap();
    assert!(again.is_empty(), "{again:?}");
    // The other spelling names the same file.
    let again = migrate::apply(
        &format!("sqlite://{}", path.display()),
        &migrate::default_dir(),
    )
    .await
    .unwrap();
    assert!(again.is_empty());

    let db = SqliteFile::open(&path).unwrap();
    assert_eq!(
        count(&db, "PRAGMA user_version"),
        shared::db::sqlite::schema_version()
    );
    assert_eq!(strings(&db, "PRAGMA journal_mode", &[]), ["wal"]);
}

#[test]
fn concurrent_first_runs_apply_each_migration_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("api.db");
    let runs: Vec<Vec<String>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| s.spawn(|| migrate::apply_sqlite(&path).unwrap()))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let applied: Vec<&String> = runs.iter().flatten().collect();
    assert_eq!(
        applied.len(),
        shared::db::sqlite::MIGRATIONS.len(),
        "{runs:?}"
    );
}

/// A row for `table` that satisfies its NOT NULL columns and CHECKs, its
/// values derived from `n` so that rows of different `n` differ everywhere.
fn row(db: &SqliteFile, table: &str, n: i64) -> Vec<(String, Value)> {
    table_info(db, table)
        .into_iter()
        .map(|(name, sql_type, not_null, _, pk)| {
            let value = match sql_type.as_str() {
                // `data` (nullable) holds the bytes: upload_blobs' CHECK wants
                // exactly one of data and object_key.
                "BLOB" => Value::Bytes(vec![n as u8; 3]),
                // A primary key column is never NULL (a rowid's NULL would
                // pick a fresh number).
                _ if !not_null && pk == 0 => Value::Null,
                "INTEGER" => Value::Int(n),
                _ => Value::Str(format!("{name}-{n}")),
            };
            (name, value)
        })
        .collect()
}

fn insert(db: &SqliteFile, table: &str, row: &[(String, Value)]) -> Result<(), DbError> {
    let columns: Vec<&str> = row.iter().map(|(c, _)| c.as_str()).collect();
    let marks = vec!["?"; row.len()].join(", ");
    let values: Vec<Value> = row.iter().map(|(_, v)| v.clone()).collect();
    db.execute(
        &format!(
            "INSERT INTO {table} ({}) VALUES ({marks})",
            columns.join(", ")
        ),
        &values,
    )
}

#[test]
fn every_unique_index_refuses_a_duplicate_as_the_app_recognises_it() {
    let (_dir, db) = migrated();
    // Only the unique indexes are under test here, not the foreign keys.
    db.execute("PRAGMA foreign_keys = OFF", &[]).unwrap();
    let mut tested = BTreeSet::new();
    for table in sqlite_tables(&db) {
        // (index name, its columns in order)
        let mut unique: Vec<(String, Vec<String>)> = db
            .query(
                "SELECT name FROM pragma_index_list(?) WHERE \"unique\" = 1",
                &[table.as_str().into()],
            )
            .unwrap()
            .iter()
            .map(|r| {
                let index = r.string(0).unwrap();
                let columns = strings(
                    &db,
                    "SELECT name FROM pragma_index_info(?) ORDER BY seqno",
                    &[index.as_str().into()],
                );
                (index, columns)
            })
            .collect();
        // An INTEGER PRIMARY KEY is the rowid, not an index.
        if let Some(rowid) = rowid_alias(&db, &table) {
            unique.push((format!("{table} rowid"), vec![rowid]));
        }
        for (n, (index, columns)) in (1..).step_by(2).zip(unique) {
            let first = row(&db, &table, n);
            insert(&db, &table, &first).unwrap();
            let mut second = row(&db, &table, n + 1);
            for (column, value) in &mut second {
                if columns.contains(column) {
                    let (_, same) = first.iter().find(|(c, _)| c == column).unwrap();
                    *value = same.clone();
                }
            }
            let named: Vec<String> = columns.iter().map(|c| format!("{table}.{c}")).collect();
            assert_eq!(
                insert(&db, &table, &second),
                Err(DbError::Duplicate {
                    index: named.join(", ")
                }),
                "{index}"
            );
            tested.insert(index);
        }
    }
    for name in [
        "uq_users_email",
        "uq_sessions_refresh_hash",
        "uq_products_sku",
    ] {
        assert!(tested.contains(name), "{name} tested: {tested:?}");
    }
    assert!(tested.contains("uq_idempotency_user_key"));
    assert!(tested.contains("uq_order_events_id"));
    assert!(tested.contains("order_events rowid"));
}

#[test]
fn the_apps_unique_keys_match_what_sqlite_reports() {
    let (_dir, db) = migrated();
    let user = |id: &str, email: &str| {
        db.execute(
            "INSERT INTO users (id, email, name, password_hash, created_at_ms, updated_at_ms) \
             VALUES (?, ?, 'n', 'h', 1, 1)",
            &[id.into(), email.into()],
        )
    };
    user("u1", "a@example.com").unwrap();
    // The constants of shared/identity/src/repo/sql.rs and functions/orders/src/sql.rs.
    let users_email = UniqueKey {
        index: "uq_users_email",
        columns: "users.email",
    };
    assert!(user("u2", "a@example.com")
        .unwrap_err()
        .is_duplicate(&users_email));

    let key = |user: &str| {
        db.execute(
            "INSERT INTO idempotency_keys (user_id, idem_key, fingerprint, response_status, \
             response_body, created_at_ms) VALUES (?, 'k', 'f', 201, '{}', 1)",
            &[user.into()],
        )
    };
    key("u1").unwrap();
    key("u2").unwrap();
    let idempotency = UniqueKey {
        index: "uq_idempotency_user_key",
        columns: "idempotency_keys.user_id, idempotency_keys.idem_key",
    };
    assert!(key("u1").unwrap_err().is_duplicate(&idempotency));

    let product = |id: &str, sku: &str| {
        db.execute(
            "INSERT INTO products (id, sku, name, price_cents, stock, created_at_ms, updated_at_ms) \
             VALUES (?, ?, 'n', 1, 1, 1, 1)",
            &[id.into(), sku.into()],
        )
    };
    product("p1", "SKU-1").unwrap();
    // utf8mb4_bin on MySQL, bytewise on SQLite: case matters.
    product("p2", "sku-1").unwrap();
    let sku = UniqueKey {
        index: "uq_products_sku",
        columns: "products.sku",
    };
    assert!(product("p3", "SKU-1").unwrap_err().is_duplicate(&sku));
}

fn ids(db: &SqliteFile, table: &str) -> Vec<String> {
    let column = if table == "refresh_tokens" {
        "token_hash"
    } else if table == "upload_blobs" {
        "sha256"
    } else if table == "order_lines" {
        "order_id || '/' || line_no"
    } else {
        "id"
    };
    strings(db, &format!("SELECT {column} FROM {table} ORDER BY 1"), &[])
}

#[test]
fn foreign_keys_cascade_and_refuse_as_on_mysql() {
    let (_dir, db) = migrated();
    let run = |sql: &str| db.execute(sql, &[]);
    run(
        "INSERT INTO users (id, email, name, password_hash, created_at_ms, updated_at_ms) VALUES \
         ('u1', 'a@x', 'A', 'h', 1, 1), ('u2', 'b@x', 'B', 'h', 1, 1)",
    )
    .unwrap();
    run(
        "INSERT INTO sessions (id, user_id, refresh_hash, created_at_ms, expires_at_ms) VALUES \
         ('s1', 'u1', 'r1', 1, 2), ('s2', 'u2', 'r2', 1, 2)",
    )
    .unwrap();
    run(
        "INSERT INTO refresh_tokens (token_hash, session_id, superseded_at_ms) VALUES \
         ('t1', 's1', 1), ('t2', 's2', 1)",
    )
    .unwrap();
    run("INSERT INTO upload_blobs (sha256, size, data, created_at_ms) VALUES ('b1', 1, x'00', 1)")
        .unwrap();
    run(
        "INSERT INTO uploads (id, user_id, filename, content_type, size, sha256, visibility, \
         created_at_ms) VALUES ('up1', 'u1', 'f', 'image/png', 1, 'b1', 'private', 1), \
         ('up2', 'u2', 'f', 'image/png', 1, 'b1', 'private', 1)",
    )
    .unwrap();
    run("INSERT INTO pending_uploads (id, user_id, filename, size, sha256, visibility, object_key, \
         created_at_ms, expires_at_ms) VALUES ('pu1', 'u1', 'f', 1, 'b2', 'private', 'incoming/pu1', 1, 2)")
    .unwrap();
    run(
        "INSERT INTO orders (id, user_id, status, total_cents, created_at_ms, updated_at_ms) \
         VALUES ('o1', 'u1', 'created', 2, 1, 1)",
    )
    .unwrap();
    run(
        "INSERT INTO order_lines (order_id, line_no, product_id, sku, name, unit_price_cents, \
         quantity, line_total_cents) VALUES ('o1', 1, 'p1', 's', 'n', 1, 2, 2)",
    )
    .unwrap();

    // A reference to nothing, and deleting what is referred to, are refused.
    let orphan = run(
        "INSERT INTO sessions (id, user_id, refresh_hash, created_at_ms, \
                      expires_at_ms) VALUES ('s9', 'nobody', 'r9', 1, 2)",
    )
    .unwrap_err();
    assert!(orphan.is_foreign_key("fk_sessions_user"), "{orphan:?}");
    let referenced = run("DELETE FROM upload_blobs WHERE sha256 = 'b1'").unwrap_err();
    assert!(
        referenced.is_foreign_key("fk_uploads_blob"),
        "{referenced:?}"
    );

    // Deleting a user takes their sessions (and those sessions' superseded
    // tokens), uploads and pending uploads; their orders and the blob stay.
    run("DELETE FROM users WHERE id = 'u1'").unwrap();
    assert_eq!(ids(&db, "users"), ["u2"]);
    assert_eq!(ids(&db, "sessions"), ["s2"]);
    assert_eq!(ids(&db, "refresh_tokens"), ["t2"]);
    assert_eq!(ids(&db, "uploads"), ["up2"]);
    assert!(ids(&db, "pending_uploads").is_empty());
    assert_eq!(ids(&db, "orders"), ["o1"]);
    assert_eq!(ids(&db, "upload_blobs"), ["b1"]);
    assert_eq!(ids(&db, "order_lines"), ["o1/1"]);

    // An order's lines go with it.
    run("DELETE FROM orders WHERE id = 'o1'").unwrap();
    assert!(ids(&db, "order_lines").is_empty());
}

#[test]
fn checks_refuse_what_mysql_refuses() {
    let (_dir, db) = migrated();
    let refused = |sql: &str, params: &[Value], constraint: &str| match db.execute(sql, params) {
        Err(DbError::Query(m)) => assert!(
            m.contains(&format!("CHECK constraint failed: {constraint}")),
            "{m}"
        ),
        other => panic!("{sql}: {other:?}"),
    };
    let product = "INSERT INTO products (id, sku, name, price_cents, stock, created_at_ms, \
                   updated_at_ms) VALUES ('p', ?, 'n', ?, ?, 1, 1)";
    refused(
        product,
        &["s".into(), 1i64.into(), (-1i64).into()],
        "ck_products_stock",
    );
    refused(
        product,
        &["s".into(), (-1i64).into(), 1i64.into()],
        "ck_products_price",
    );
    refused(
        product,
        &["x".repeat(65).into(), 1i64.into(), 1i64.into()],
        "ck_products_sku_length",
    );
    db.execute(product, &["x".repeat(64).into(), 1i64.into(), 1i64.into()])
        .unwrap();

    let blob = "INSERT INTO upload_blobs (sha256, size, data, object_key, created_at_ms) \
                VALUES (?, 1, ?, ?, 1)";
    refused(
        blob,
        &["b".into(), Value::Null, Value::Null],
        "ck_upload_blobs_one_place",
    );
    refused(
        blob,
        &["b".into(), Value::Bytes(vec![0]), "blobs/b".into()],
        "ck_upload_blobs_one_place",
    );
    db.execute(blob, &["b".into(), Value::Null, "blobs/b".into()])
        .unwrap();

    db.execute(
        "INSERT INTO users (id, email, name, password_hash, created_at_ms, updated_at_ms) \
         VALUES ('u', 'e', 'n', 'h', 1, 1)",
        &[],
    )
    .unwrap();
    // 128 characters, 256 bytes: the bound is the sanitiser's, in bytes.
    let long = "é".repeat(128);
    let fits = "é".repeat(127);
    let upload = "INSERT INTO uploads (id, user_id, filename, content_type, size, sha256, \
                  visibility, created_at_ms) VALUES (?, 'u', ?, 'image/png', 1, 'b', 'public', 1)";
    refused(
        upload,
        &["up".into(), long.as_str().into()],
        "ck_uploads_filename_length",
    );
    db.execute(upload, &["up".into(), fits.as_str().into()])
        .unwrap();
    let pending = "INSERT INTO pending_uploads (id, user_id, filename, size, sha256, visibility, \
                   object_key, created_at_ms, expires_at_ms) VALUES ('pu', 'u', ?, 1, 'b', 'public', 'k', 1, 2)";
    refused(
        pending,
        &[long.as_str().into()],
        "ck_pending_uploads_filename_length",
    );

    refused(
        "INSERT INTO auth_attempts (bucket, attempts, window_ends_ms) VALUES ('b', -1, 1)",
        &[],
        "attempts >= 0",
    );
    // NOT NULL and DEFAULT, as on MySQL.
    assert!(db
        .execute(
            "INSERT INTO users (id, email, name, password_hash, created_at_ms, updated_at_ms) \
             VALUES ('u2', NULL, 'n', 'h', 1, 1)",
            &[],
        )
        .is_err());
    assert_eq!(
        strings(&db, "SELECT role FROM users WHERE id = 'u'", &[]),
        ["user"]
    );
}

#[test]
fn order_event_numbers_are_never_handed_out_twice() {
    let (_dir, db) = migrated();
    let event = |id: &str| -> Row {
        db.execute(
            "INSERT INTO order_events (id, type, order_id, payload, created_at_ms, state, \
             next_attempt_at_ms) VALUES (?, 'order.created', 'o', '{}', 1, 'pending', 1)",
            &[id.into()],
        )
        .unwrap();
        db.query(
            "SELECT seq, attempts FROM order_events WHERE id = ?",
            &[id.into()],
        )
        .unwrap()
        .remove(0)
    };
    assert_eq!(event("e1").0, [Value::Int(1), Value::Int(0)]);
    assert_eq!(event("e2").i64(0), Ok(2));
    // The newest event purged: its number is not reused.
    db.execute("DELETE FROM order_events WHERE id = 'e2'", &[])
        .unwrap();
    assert_eq!(event("e3").i64(0), Ok(3));
}
