//! The in-memory fake of [`EventStore`], for unit tests (feature `testing`):
//! a claim is a deadline beside each event, as the MySQL store's column is.

use std::sync::Mutex;

use shared::domain::Pagination;
use shared::error::ApiError;

use super::{EventStore, FailedAttempt};
use crate::model::{Event, State};

/// In-memory store for unit tests.
#[derive(Debug, Default)]
pub struct MemoryEvents {
    events: Mutex<Vec<(Event, Option<i64>)>>,
}

impl MemoryEvents {
    /// A store holding `events` (oldest first), none claimed.
    pub fn with(events: Vec<Event>) -> Self {
        Self {
            events: Mutex::new(events.into_iter().map(|e| (e, None)).collect()),
        }
    }

    /// A copy of every event.
    pub fn all(&self) -> Vec<Event> {
        self.lock().iter().map(|(e, _)| e.clone()).collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(Event, Option<i64>)>> {
        self.events.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl EventStore for MemoryEvents {
    fn pending(&self, limit: u32) -> Result<Vec<Event>, ApiError> {
        let mut pending: Vec<Event> = self
            .lock()
            .iter()
            .filter(|(e, _)| e.state == State::Pending)
            .map(|(e, _)| e.clone())
            .collect();
        pending.sort_by_key(|e| e.seq);
        pending.truncate(limit as usize);
        Ok(pending)
    }

    fn claim(&self, id: &str, now_ms: i64, until_ms: i64) -> Result<bool, ApiError> {
        let mut events = self.lock();
        let Some((event, claim)) = events.iter_mut().find(|(e, _)| e.id == id) else {
            return Ok(false);
        };
        if event.state != State::Pending || claim.is_some_and(|c| c >= now_ms) {
            return Ok(false);
        }
        *claim = Some(until_ms);
        Ok(true)
    }

    fn delivered(&self, id: &str, now_ms: i64, status: u16) -> Result<bool, ApiError> {
        let mut events = self.lock();
        let Some((event, claim)) = events.iter_mut().find(|(e, _)| e.id == id) else {
            return Ok(false);
        };
        if event.state != State::Pending {
            return Ok(false);
        }
        event.state = State::Delivered;
        event.attempts += 1;
        event.delivered_at_ms = Some(now_ms);
        event.last_status = Some(status);
        event.last_error = None;
        *claim = None;
        Ok(true)
    }

    fn failed(&self, id: &str, attempt: &FailedAttempt<'_>) -> Result<(), ApiError> {
        let mut events = self.lock();
        if let Some((event, claim)) = events
            .iter_mut()
            .find(|(e, _)| e.id == id && e.state == State::Pending)
        {
            event.attempts += 1;
            event.next_attempt_at_ms = attempt.next_attempt_at_ms;
            event.last_status = attempt.status;
            event.last_error = Some(attempt.error.to_string());
            if attempt.give_up {
                event.state = State::Failed;
            }
            *claim = None;
        }
        Ok(())
    }

    fn list(&self, state: Option<State>, page: Pagination) -> Result<(Vec<Event>, u64), ApiError> {
        let mut matching: Vec<Event> = self
            .lock()
            .iter()
            .filter(|(e, _)| state.is_none_or(|s| e.state == s))
            .map(|(e, _)| e.clone())
            .collect();
        matching.sort_by_key(|e| std::cmp::Reverse(e.seq));
        let total = matching.len() as u64;
        let items = matching
            .into_iter()
            .skip(page.offset() as usize)
            .take(page.limit as usize)
            .collect();
        Ok((items, total))
    }

    fn get(&self, id: &str) -> Result<Option<Event>, ApiError> {
        Ok(self
            .lock()
            .iter()
            .find(|(e, _)| e.id == id)
            .map(|(e, _)| e.clone()))
    }

    fn redeliver(&self, id: &str, now_ms: i64) -> Result<Option<Event>, ApiError> {
        let mut events = self.lock();
        let Some((event, claim)) = events.iter_mut().find(|(e, _)| e.id == id) else {
            return Ok(None);
        };
        // A run that holds it is sending it now: leave it to that run.
        if !(event.state == State::Pending && claim.is_some_and(|c| c >= now_ms)) {
            event.state = State::Pending;
            event.next_attempt_at_ms = now_ms;
            event.delivered_at_ms = None;
            *claim = None;
        }
        Ok(Some(event.clone()))
    }
}
