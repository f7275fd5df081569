//! Delivery runs on the in-memory store, a scripted receiver and a clock
//! that advances when the run waits.

use std::cell::{Cell, RefCell};

use super::*;
use crate::model::State;
use crate::repo::MemoryEvents;

const T0: i64 = 1_800_000_000_000;

struct FakeClock(Cell<i64>);

impl Clock for FakeClock {
    fn now_ms(&self) -> i64 {
        self.0.get()
    }
    fn sleep_ms(&self, ms: i64) {
        self.0.set(self.0.get() + ms);
    }
}

/// A request as the receiver saw it: URL, headers, body.
type Seen = (String, Vec<(String, String)>, String);

/// Answers from `script` in turn (then 200), recording every request.
struct Receiver {
    script: RefCell<Vec<Result<u16, String>>>,
    seen: RefCell<Vec<Seen>>,
}

impl Receiver {
    fn answering(script: Vec<Result<u16, String>>) -> Self {
        Self {
            script: RefCell::new(script.into_iter().rev().collect()),
            seen: RefCell::default(),
        }
    }

    fn ids(&self) -> Vec<String> {
        self.seen
            .borrow()
            .iter()
            .map(|(_, headers, _)| header(headers, "webhook-id"))
            .collect()
    }
}

fn header(headers: &[(String, String)], name: &str) -> String {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}

impl Webhook for Receiver {
    fn post(&self, url: &str, headers: &[(&str, String)], body: &[u8]) -> Result<u16, String> {
        self.seen.borrow_mut().push((
            url.to_string(),
            headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.clone()))
                .collect(),
            String::from_utf8_lossy(body).into_owned(),
        ));
        self.script.borrow_mut().pop().unwrap_or(Ok(200))
    }
}

fn event(id: &str, seq: i64) -> Event {
    Event {
        id: id.to_string(),
        seq,
        event_type: "order.created".into(),
        order_id: format!("o-{id}"),
        payload: format!("{{\"id\":\"{id}\"}}"),
        created_at_ms: T0,
        state: State::Pending,
        attempts: 0,
        next_attempt_at_ms: T0,
        delivered_at_ms: None,
        last_status: None,
        last_error: None,
    }
}

/// The signing keys of these tests.
fn keys() -> &'static [SigningKey] {
    static KEYS: std::sync::OnceLock<Vec<SigningKey>> = std::sync::OnceLock::new();
    KEYS.get_or_init(|| {
        SigningKey::parse_all("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").expect("a valid key")
    })
}

fn delivery() -> Delivery<'static> {
    Delivery {
        url: "http://receiver.test/hook",
        keys: keys(),
        max_attempts: 10,
        budget_ms: 20_000,
    }
}

fn run_at(store: &MemoryEvents, receiver: &Receiver, clock: &FakeClock) -> Summary {
    run(store, receiver, clock, &delivery()).unwrap()
}

#[test]
fn pending_events_go_out_oldest_first_signed_and_are_marked_delivered() {
    let store = MemoryEvents::with(vec![event("b", 2), event("a", 1)]);
    let receiver = Receiver::answering(vec![]);
    let clock = FakeClock(Cell::new(T0));
    let summary = run_at(&store, &receiver, &clock);
    assert_eq!(summary.delivered, 2);
    assert_eq!(receiver.ids(), ["a", "b"]);
    let (url, headers, body) = receiver.seen.borrow()[0].clone();
    assert_eq!(url, "http://receiver.test/hook");
    assert_eq!(body, "{\"id\":\"a\"}");
    assert_eq!(header(&headers, "webhook-id"), "a");
    assert_eq!(
        header(&headers, "webhook-timestamp"),
        (T0 / 1000).to_string()
    );
    // HMAC-SHA256 of `a.1800000000.{"id":"a"}` under the test key, computed
    // outside this crate (Python's hmac, openssl): a known answer, not a rerun.
    assert_eq!(
        header(&headers, "webhook-signature"),
        "v1,6+r0oUut/nHkr4xQcIs3lSnyrQOJaRrqb9LBea+s4FM="
    );
    assert!(store.all().iter().all(|e| e.state == State::Delivered));
}

#[test]
fn a_receiver_down_briefly_gets_the_event_after_backoff_in_the_same_run() {
    let store = MemoryEvents::with(vec![event("a", 1)]);
    let receiver = Receiver::answering(vec![Ok(503), Err("connection refused".into())]);
    let clock = FakeClock(Cell::new(T0));
    let summary = run_at(&store, &receiver, &clock);
    assert_eq!((summary.delivered, summary.failed_attempts), (1, 2));
    // 1 s after the first failure, 2 s after the second.
    assert_eq!(clock.now_ms(), T0 + 3_000);
    let a = &store.all()[0];
    assert_eq!((a.state, a.attempts), (State::Delivered, 3));
    assert_eq!(receiver.ids(), ["a", "a", "a"]);
}

#[test]
fn a_later_event_never_overtakes_one_waiting_out_its_backoff() {
    let store = MemoryEvents::with(vec![event("a", 1), event("b", 2)]);
    // Down for longer than the run's budget.
    let receiver = Receiver::answering(vec![Ok(500); 20]);
    let clock = FakeClock(Cell::new(T0));
    let summary = run_at(&store, &receiver, &clock);
    assert_eq!(summary.delivered, 0);
    assert!(
        receiver.ids().iter().all(|id| id == "a"),
        "{:?}",
        receiver.ids()
    );
    let all = store.all();
    assert_eq!(all[0].state, State::Pending);
    assert_eq!(all[0].last_status, Some(500));
    assert_eq!(all[1].attempts, 0, "b waits behind a");
    assert!(clock.now_ms() - T0 <= delivery().budget_ms);
}

#[test]
fn an_event_whose_attempts_run_out_is_failed_and_the_next_one_goes_out() {
    let mut tired = event("a", 1);
    tired.attempts = 9;
    let store = MemoryEvents::with(vec![tired, event("b", 2)]);
    let receiver = Receiver::answering(vec![Ok(400)]);
    let clock = FakeClock(Cell::new(T0));
    let summary = run_at(&store, &receiver, &clock);
    assert_eq!((summary.gave_up, summary.delivered), (1, 1));
    let all = store.all();
    assert_eq!((all[0].state, all[0].attempts), (State::Failed, 10));
    assert_eq!(all[1].state, State::Delivered);
}

#[test]
fn an_event_another_run_holds_stops_this_run() {
    let store = MemoryEvents::with(vec![event("a", 1), event("b", 2)]);
    assert!(store.claim("a", T0, T0 + CLAIM_MS).unwrap());
    let receiver = Receiver::answering(vec![]);
    let summary = run_at(&store, &receiver, &FakeClock(Cell::new(T0)));
    assert_eq!(summary, Summary::default());
    assert!(receiver.ids().is_empty());
}

#[test]
fn an_expired_claim_of_a_dead_run_is_taken_over() {
    let store = MemoryEvents::with(vec![event("a", 1)]);
    assert!(store.claim("a", T0 - CLAIM_MS - 1, T0 - 1).unwrap());
    let receiver = Receiver::answering(vec![]);
    let summary = run_at(&store, &receiver, &FakeClock(Cell::new(T0)));
    assert_eq!(summary.delivered, 1);
}

#[test]
fn a_delivered_event_is_never_marked_delivered_twice() {
    let store = MemoryEvents::with(vec![event("a", 1)]);
    assert!(store.claim("a", T0, T0 + CLAIM_MS).unwrap());
    assert!(store.delivered("a", T0, 200).unwrap());
    assert!(!store.delivered("a", T0 + 1, 200).unwrap());
    assert!(!store.claim("a", T0 + 2, T0 + CLAIM_MS).unwrap());
}

#[test]
fn transport_errors_are_recorded_without_secrets() {
    let store = MemoryEvents::with(vec![event("a", 1)]);
    let receiver = Receiver::answering(vec![
        Err(
            "connect to https://user:hunter2@hooks.test failed".into(),
        );
        20
    ]);
    run_at(&store, &receiver, &FakeClock(Cell::new(T0)));
    let error = store.all()[0].last_error.clone().unwrap();
    assert!(
        error.contains("failed") && !error.contains("hunter2"),
        "{error}"
    );
}

/// A receiver that takes `ms` of the run's clock to answer each request.
struct SlowReceiver<'a> {
    inner: Receiver,
    clock: &'a FakeClock,
    ms: i64,
}

impl Webhook for SlowReceiver<'_> {
    fn post(&self, url: &str, headers: &[(&str, String)], body: &[u8]) -> Result<u16, String> {
        self.clock.sleep_ms(self.ms);
        self.inner.post(url, headers, body)
    }
}

#[test]
fn a_backlog_longer_than_the_budget_is_left_unclaimed_for_the_next_run() {
    // 30 due events at 1 s each: a run that sent them all would pass the
    // 20 s budget, and the host's deadline, in the middle of one.
    let store = MemoryEvents::with((1..=30).map(|n| event(&format!("e{n:02}"), n)).collect());
    let clock = FakeClock(Cell::new(T0));
    let receiver = SlowReceiver {
        inner: Receiver::answering(vec![]),
        clock: &clock,
        ms: 1_000,
    };
    let first = run(&store, &receiver, &clock, &delivery()).unwrap();
    assert_eq!(first.delivered, 20);
    assert_eq!(clock.now_ms() - T0, 20_000, "ends when its budget is spent");
    let left: Vec<_> = store
        .all()
        .into_iter()
        .filter(|e| e.state == State::Pending)
        .collect();
    assert_eq!(left.len(), 10);
    // Nothing left claimed: the next run takes over at once.
    let second = run(&store, &receiver, &clock, &delivery()).unwrap();
    assert_eq!(second.delivered, 10);
    assert_eq!(receiver.inner.ids().len(), 30);
    assert!(store.all().iter().all(|e| e.state == State::Delivered));
}
