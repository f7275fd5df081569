//! [`EventStore`] over MySQL/MariaDB (`migrations/0006_order_events.sql`).
//! Every change is one conditional `UPDATE` of one row; `ROW_COUNT()` says
//! whether it applied, so concurrent runs decide who sends without locks held
//! across the webhook call.

use shared::db::{DbError, Replica, Row, Sql, Value};
use shared::domain::Pagination;
use shared::error::ApiError;

use crate::model::{Event, State};
use crate::repo::{EventStore, FailedAttempt};

const COLUMNS: &str = "id, seq, type, order_id, payload, created_at_ms, state, attempts, \
                       next_attempt_at_ms, delivered_at_ms, last_status, last_error";

/// The event store on a MySQL connection.
///
/// Which side each read takes: the admin's list of events reads the replica
/// when there is one ([`Replica::reads`]; it tolerates replication lag);
/// delivery runs, claims and redelivery read and write the primary.
pub struct SqlEvents<S: Sql> {
    sql: S,
    replica: Replica<S>,
}

impl<S: Sql> SqlEvents<S> {
    /// A store over `sql`, with no replica.
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

    fn changed(&self, statement: &str, params: &[Value]) -> Result<bool, ApiError> {
        self.sql.execute(statement, params)?;
        Ok(self.sql.affected_rows()? == 1)
    }
}

fn event_from(row: &Row) -> Result<Event, DbError> {
    let state = row.string(6)?;
    Ok(Event {
        id: row.string(0)?,
        seq: row.i64(1)?,
        event_type: row.string(2)?,
        order_id: row.string(3)?,
        payload: row.string(4)?,
        created_at_ms: row.i64(5)?,
        state: State::parse(&state)
            .ok_or_else(|| DbError::Decode(format!("unknown event state {state:?}")))?,
        attempts: u32::try_from(row.i64(7)?).unwrap_or(u32::MAX),
        next_attempt_at_ms: row.i64(8)?,
        delivered_at_ms: row.opt_i64(9)?,
        last_status: row.opt_i64(10)?.and_then(|s| u16::try_from(s).ok()),
        last_error: row.opt_string(11)?,
    })
}

fn events_from(rows: &[Row]) -> Result<Vec<Event>, ApiError> {
    Ok(rows.iter().map(event_from).collect::<Result<Vec<_>, _>>()?)
}

impl<S: Sql> EventStore for SqlEvents<S> {
    fn pending(&self, limit: u32) -> Result<Vec<Event>, ApiError> {
        let rows = self.sql.query(
            &format!(
                "SELECT {COLUMNS} FROM order_events WHERE state = 'pending' ORDER BY seq LIMIT ?"
            ),
            &[limit.into()],
        )?;
        events_from(&rows)
    }

    fn claim(&self, id: &str, now_ms: i64, until_ms: i64) -> Result<bool, ApiError> {
        self.changed(
            "UPDATE order_events SET claimed_until_ms = ? WHERE id = ? AND state = 'pending' \
             AND (claimed_until_ms IS NULL OR claimed_until_ms < ?)",
            &[until_ms.into(), id.into(), now_ms.into()],
        )
    }

    fn delivered(&self, id: &str, now_ms: i64, status: u16) -> Result<bool, ApiError> {
        self.changed(
            "UPDATE order_events SET state = 'delivered', delivered_at_ms = ?, \
             attempts = attempts + 1, last_status = ?, last_error = NULL, claimed_until_ms = NULL \
             WHERE id = ? AND state = 'pending'",
            &[now_ms.into(), i64::from(status).into(), id.into()],
        )
    }

    fn failed(&self, id: &str, attempt: &FailedAttempt<'_>) -> Result<(), ApiError> {
        let state = if attempt.give_up {
            State::Failed
        } else {
            State::Pending
        };
        self.sql.execute(
            "UPDATE order_events SET state = ?, attempts = attempts + 1, next_attempt_at_ms = ?, \
             last_status = ?, last_error = ?, claimed_until_ms = NULL \
             WHERE id = ? AND state = 'pending'",
            &[
                state.as_str().into(),
                attempt.next_attempt_at_ms.into(),
                attempt.status.map(i64::from).into(),
                attempt.error.into(),
                id.into(),
            ],
        )?;
        Ok(())
    }

    fn list(&self, state: Option<State>, page: Pagination) -> Result<(Vec<Event>, u64), ApiError> {
        let (condition, mut params): (&str, Vec<Value>) = match state {
            None => ("", Vec::new()),
            Some(s) => ("WHERE state = ?", vec![s.as_str().into()]),
        };
        let reads = self.replica.reads(&self.sql);
        let rows = reads.query(
            &format!("SELECT COUNT(*) FROM order_events {condition}"),
            &params,
        )?;
        let total = rows.first().map(|r| r.u64(0)).transpose()?.unwrap_or(0);
        params.extend([page.limit.into(), page.offset().into()]);
        let rows = reads.query(
            &format!(
                "SELECT {COLUMNS} FROM order_events {condition} ORDER BY seq DESC LIMIT ? OFFSET ?"
            ),
            &params,
        )?;
        Ok((events_from(&rows)?, total))
    }

    fn get(&self, id: &str) -> Result<Option<Event>, ApiError> {
        let rows = self.sql.query(
            &format!("SELECT {COLUMNS} FROM order_events WHERE id = ?"),
            &[id.into()],
        )?;
        Ok(events_from(&rows)?.into_iter().next())
    }

    fn redeliver(&self, id: &str, now_ms: i64) -> Result<Option<Event>, ApiError> {
        // A run holding the event is sending it now: left to that run.
        self.sql.execute(
            "UPDATE order_events SET state = 'pending', next_attempt_at_ms = ?, \
             delivered_at_ms = NULL, claimed_until_ms = NULL WHERE id = ? \
             AND NOT (state = 'pending' AND claimed_until_ms IS NOT NULL AND claimed_until_ms >= ?)",
            &[now_ms.into(), id.into(), now_ms.into()],
        )?;
        self.get(id)
    }
}
