//! The admin routes on the in-memory store, a receiver that accepts
//! everything and a clock that never really waits.

use std::cell::{Cell, RefCell};

use shared::auth::Role;
use shared::kv::MemoryKv;
use shared::testing::{authed, token, token_config, NOW};

use super::*;
use crate::config::WebhookConfig;
use crate::model::Event;
use crate::repo::MemoryEvents;

struct Clock0(Cell<i64>);

impl Clock for Clock0 {
    fn now_ms(&self) -> i64 {
        self.0.get()
    }
    fn sleep_ms(&self, ms: i64) {
        self.0.set(self.0.get() + ms);
    }
}

#[derive(Default)]
struct Accepting(RefCell<Vec<String>>);

impl Webhook for Accepting {
    fn post(&self, _: &str, headers: &[(&str, String)], _: &[u8]) -> Result<u16, String> {
        let id = headers
            .iter()
            .find(|(n, _)| *n == "webhook-id")
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        self.0.borrow_mut().push(id);
        Ok(204)
    }
}

fn event(id: &str, seq: i64, state: State) -> Event {
    Event {
        id: id.to_string(),
        seq,
        event_type: "order.created".into(),
        order_id: "o".repeat(32),
        payload: "{}".into(),
        created_at_ms: NOW,
        state,
        attempts: 0,
        next_attempt_at_ms: NOW,
        delivered_at_ms: (state == State::Delivered).then_some(NOW),
        last_status: None,
        last_error: None,
    }
}

fn id(n: u8) -> String {
    format!("{n:0>32}")
}

struct World {
    kv: MemoryKv,
    store: MemoryEvents,
    receiver: Accepting,
    clock: Clock0,
    config: Config,
}

impl World {
    fn new(webhook: bool) -> Self {
        Self {
            kv: MemoryKv::new(),
            store: MemoryEvents::with(vec![
                event(&id(1), 1, State::Delivered),
                event(&id(2), 2, State::Pending),
                event(&id(3), 3, State::Failed),
            ]),
            receiver: Accepting::default(),
            clock: Clock0(Cell::new(NOW)),
            config: Config {
                tokens: token_config(),
                webhook: webhook.then(|| WebhookConfig {
                    url: "http://receiver.test/hook".into(),
                    keys: crate::model::SigningKey::parse_all(
                        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                    )
                    .expect("a valid key"),
                }),
                max_attempts: 15,
            },
        }
    }

    fn send(&self, req: Request) -> Response {
        let ctx = RequestContext::new(&req, NOW);
        let ports = Ports {
            kv: &self.kv,
            store: &self.store,
            webhook: &self.receiver,
            clock: &self.clock,
        };
        ctx.finish(handle(&ctx, &req, &self.config, &ports))
    }
}

fn admin(method: Method, path: &str) -> Request {
    authed(method, path, &token("admin", Role::Admin, "s", NOW))
}

#[test]
fn the_routes_are_for_admins_only() {
    let w = World::new(true);
    let user = authed(
        Method::Get,
        "/api/v1/events",
        &token("u", Role::User, "s", NOW),
    );
    assert_eq!(w.send(user).status, 403);
    assert_eq!(
        w.send(Request::new(Method::Post, "/api/v1/events/deliver"))
            .status,
        401
    );
    assert!(w.receiver.0.borrow().is_empty());
}

#[test]
fn the_list_is_newest_first_and_filters_by_state() {
    let w = World::new(true);
    let all = w.send(admin(Method::Get, "/api/v1/events")).json_body();
    assert_eq!(all["total"], 3);
    assert_eq!(all["items"][0]["id"], id(3).as_str());
    assert_eq!(all["items"][0]["state"], "failed");
    let pending = w
        .send(admin(Method::Get, "/api/v1/events?state=pending"))
        .json_body();
    assert_eq!(pending["total"], 1);
    assert_eq!(pending["items"][0]["id"], id(2).as_str());
    assert!(pending["items"][0]["next_attempt_at"].is_string());
}

#[test]
fn an_unknown_state_filter_is_a_validation_error() {
    let w = World::new(true);
    let resp = w.send(admin(Method::Get, "/api/v1/events?state=lost"));
    assert_eq!(resp.status, 400);
    assert_eq!(resp.json_body()["code"], "validation_failed");
    assert_eq!(resp.json_body()["errors"][0]["field"], "state");
}

#[test]
fn deliver_sends_the_pending_events_and_reports_what_is_left() {
    let w = World::new(true);
    let resp = w.send(admin(Method::Post, "/api/v1/events/deliver"));
    assert_eq!(resp.status, 200);
    let body = resp.json_body();
    assert_eq!(body["delivered"], 1);
    assert_eq!(body["pending"], 0);
    assert_eq!(*w.receiver.0.borrow(), [id(2)]);
}

#[test]
fn deliver_without_a_webhook_url_is_409_and_sends_nothing() {
    let w = World::new(false);
    let resp = w.send(admin(Method::Post, "/api/v1/events/deliver"));
    assert_eq!(resp.status, 409);
    assert_eq!(resp.json_body()["code"], "invalid_state");
    assert_eq!(w.store.all()[1].state, State::Pending);
}

#[test]
fn redelivery_sends_a_delivered_or_failed_event_again() {
    let w = World::new(true);
    let path = format!("/api/v1/events/{}/redeliver", id(3));
    let resp = w.send(admin(Method::Post, &path));
    assert_eq!(resp.status, 200);
    assert_eq!(resp.json_body()["state"], "delivered");
    // The pending event ahead of it went first: order holds.
    assert_eq!(*w.receiver.0.borrow(), [id(2), id(3)]);
}

#[test]
fn redelivery_of_an_unknown_event_is_404() {
    let w = World::new(true);
    let resp = w.send(admin(
        Method::Post,
        &format!("/api/v1/events/{}/redeliver", id(9)),
    ));
    assert_eq!(resp.status, 404);
    let resp = w.send(admin(Method::Post, "/api/v1/events/not-an-id/redeliver"));
    assert_eq!(resp.status, 404);
}
