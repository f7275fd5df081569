use super::*;
use crate::journal::{FaultWindow, Kind, OrderAttempt, Request, UploadAccepted};
use crate::snapshot::{EventRow, KeyRow, OrderRow, ProductRow, UploadRow};

fn created(code: u16) -> Outcome {
    Outcome::Status {
        code,
        retry_after: false,
    }
}

fn request(kind: Kind, target: Target, outcome: Outcome) -> Request {
    Request {
        kind,
        target,
        started: 10.0,
        ended: 10.2,
        outcome,
    }
}

/// A run where everything held: one product, one keyed order retried once,
/// one cancelled order, one upload, a host killed around a refused request.
fn healthy() -> (Journal, Snapshot) {
    let mut journal = Journal {
        deadline_secs: 10.0,
        ..Journal::default()
    };
    journal.initial_stock.insert("p1".into(), 10);
    for _ in 0..2 {
        journal.orders.push(OrderAttempt {
            user_id: "u1".into(),
            key: Some("k1".into()),
            lines: vec![("p1".into(), 2)],
            outcome: created(201),
            order_id: Some("o1".into()),
        });
    }
    journal.orders.push(OrderAttempt {
        user_id: "u1".into(),
        key: None,
        lines: vec![("p1".into(), 3)],
        outcome: created(201),
        order_id: Some("o2".into()),
    });
    journal.uploads.push(UploadAccepted {
        id: "up1".into(),
        sha256: "aa".into(),
    });
    journal.requests = vec![
        request(Kind::Order, Target::Host(0), created(201)),
        request(Kind::OrderRetry, Target::Host(1), created(201)),
        request(Kind::Order, Target::Host(0), created(409)),
        request(
            Kind::Order,
            Target::Host(0),
            Outcome::Status {
                code: 503,
                retry_after: true,
            },
        ),
        request(Kind::Login, Target::Host(1), created(429)),
        request(
            Kind::Read,
            Target::Host(1),
            Outcome::Transport("refused".into()),
        ),
    ];
    journal.faults.push(FaultWindow {
        name: "host 1 SIGKILL + restart".into(),
        service: Service::Host(1),
        started: 9.0,
        ended: 12.0,
        first_delivery_after: None,
    });
    let snapshot = Snapshot {
        products: vec![ProductRow {
            id: "p1".into(),
            stock: 8,
        }],
        orders: vec![
            OrderRow {
                id: "o1".into(),
                status: "created".into(),
                lines: vec![("p1".into(), 2)],
            },
            OrderRow {
                id: "o2".into(),
                status: "cancelled".into(),
                lines: vec![("p1".into(), 3)],
            },
        ],
        events: vec![
            EventRow {
                id: "e1".into(),
                order_id: "o1".into(),
                kind: "order.created".into(),
            },
            EventRow {
                id: "e2".into(),
                order_id: "o2".into(),
                kind: "order.created".into(),
            },
            EventRow {
                id: "e3".into(),
                order_id: "o2".into(),
                kind: "order.cancelled".into(),
            },
        ],
        keys: vec![KeyRow {
            user_id: "u1".into(),
            key: "k1".into(),
            order_id: Some("o1".into()),
        }],
        uploads: vec![UploadRow {
            id: "up1".into(),
            has_bytes: true,
        }],
        readbacks: [("up1".to_string(), Some("aa".to_string()))].into(),
        delivered: ["e1", "e2", "e3"].map(String::from).into(),
    };
    (journal, snapshot)
}

fn violated(journal: &Journal, snapshot: &Snapshot) -> Vec<&'static str> {
    check(journal, snapshot)
        .into_iter()
        .filter(|v| !v.held)
        .map(|v| v.name)
        .collect()
}

#[test]
fn a_healthy_run_holds_every_invariant() {
    let (journal, snapshot) = healthy();
    let verdicts = check(&journal, &snapshot);
    assert_eq!(verdicts.len(), 10);
    assert!(verdicts.iter().all(|v| v.held), "{verdicts:#?}");
}

#[test]
fn oversold_or_leaked_stock_is_caught() {
    let (journal, mut snapshot) = healthy();
    snapshot.products[0].stock = 7;
    assert_eq!(violated(&journal, &snapshot), [STOCK]);
    // A cancellation that did not give its stock back.
    let (journal, mut snapshot) = healthy();
    snapshot.orders[1].status = "created".into();
    assert!(violated(&journal, &snapshot).contains(&STOCK));
}

#[test]
fn a_lost_order_or_a_lost_line_is_caught() {
    let (journal, mut snapshot) = healthy();
    snapshot.orders.remove(0);
    snapshot.products[0].stock = 10;
    assert!(violated(&journal, &snapshot).contains(&ORDERS_EXIST));
    let (journal, mut snapshot) = healthy();
    snapshot.orders[0].lines[0].1 = 1;
    snapshot.products[0].stock = 9;
    assert_eq!(violated(&journal, &snapshot), [ORDERS_EXIST]);
}

#[test]
fn a_retry_that_made_a_second_order_is_caught() {
    let (mut journal, mut snapshot) = healthy();
    journal.orders[1].order_id = Some("o3".into());
    snapshot.orders.push(OrderRow {
        id: "o3".into(),
        status: "cancelled".into(),
        lines: vec![("p1".into(), 2)],
    });
    snapshot.events.push(EventRow {
        id: "e4".into(),
        order_id: "o3".into(),
        kind: "order.created".into(),
    });
    snapshot.events.push(EventRow {
        id: "e5".into(),
        order_id: "o3".into(),
        kind: "order.cancelled".into(),
    });
    snapshot.delivered.extend(["e4".into(), "e5".into()]);
    assert_eq!(violated(&journal, &snapshot), [NO_SECOND_ORDER]);
}

#[test]
fn an_order_nobody_asked_for_is_caught_unless_an_answer_was_lost() {
    let (mut journal, mut snapshot) = healthy();
    snapshot.orders.push(OrderRow {
        id: "o9".into(),
        status: "cancelled".into(),
        lines: vec![("p1".into(), 1)],
    });
    for (id, kind) in [("e8", "order.created"), ("e9", "order.cancelled")] {
        snapshot.events.push(EventRow {
            id: id.into(),
            order_id: "o9".into(),
            kind: kind.into(),
        });
        snapshot.delivered.insert(id.into());
    }
    assert_eq!(violated(&journal, &snapshot), [NO_SECOND_ORDER]);
    journal.orders.push(OrderAttempt {
        user_id: "u1".into(),
        key: None,
        lines: vec![("p1".into(), 1)],
        outcome: Outcome::Transport("reset".into()),
        order_id: None,
    });
    assert!(violated(&journal, &snapshot).is_empty());
}

#[test]
fn a_missing_outbox_row_or_undelivered_event_is_caught() {
    let (journal, mut snapshot) = healthy();
    snapshot.events.retain(|e| e.id != "e3");
    assert_eq!(violated(&journal, &snapshot), [OUTBOX]);
    let (journal, mut snapshot) = healthy();
    snapshot.delivered.remove("e2");
    assert_eq!(violated(&journal, &snapshot), [DELIVERED]);
}

#[test]
fn an_upload_that_reads_back_otherwise_or_lost_its_bytes_is_caught() {
    let (journal, mut snapshot) = healthy();
    snapshot.readbacks.insert("up1".into(), Some("bb".into()));
    assert_eq!(violated(&journal, &snapshot), [UPLOADS_READ_BACK]);
    let (journal, mut snapshot) = healthy();
    snapshot.readbacks.clear();
    assert_eq!(violated(&journal, &snapshot), [UPLOADS_READ_BACK]);
    let (journal, mut snapshot) = healthy();
    snapshot.uploads[0].has_bytes = false;
    assert_eq!(violated(&journal, &snapshot), [UPLOAD_BYTES]);
}

#[test]
fn a_500_is_a_violation_twice_over() {
    let (mut journal, snapshot) = healthy();
    journal
        .requests
        .push(request(Kind::Read, Target::Host(0), created(500)));
    assert_eq!(violated(&journal, &snapshot), [NO_500, FAILURES_EXPLAINED]);
}

#[test]
fn unexplained_failures_are_caught() {
    // A 503 without Retry-After.
    let (mut journal, snapshot) = healthy();
    journal.requests.push(request(
        Kind::Order,
        Target::Host(0),
        Outcome::Status {
            code: 503,
            retry_after: false,
        },
    ));
    assert_eq!(violated(&journal, &snapshot), [FAILURES_EXPLAINED]);
    // A connection error to the host that was not killed.
    let (mut journal, snapshot) = healthy();
    journal.requests.push(request(
        Kind::Read,
        Target::Host(0),
        Outcome::Transport("refused".into()),
    ));
    assert_eq!(violated(&journal, &snapshot), [FAILURES_EXPLAINED]);
    // A connection error to the killed host, but after it was back.
    let (mut journal, snapshot) = healthy();
    let mut late = request(Kind::Read, Target::Host(1), Outcome::Transport("x".into()));
    late.started = 13.0;
    late.ended = 13.1;
    journal.requests.push(late);
    assert_eq!(violated(&journal, &snapshot), [FAILURES_EXPLAINED]);
    // An unexpected client error.
    let (mut journal, snapshot) = healthy();
    journal
        .requests
        .push(request(Kind::Read, Target::Host(0), created(401)));
    assert_eq!(violated(&journal, &snapshot), [FAILURES_EXPLAINED]);
}

#[test]
fn a_request_past_the_deadline_is_caught() {
    let (mut journal, snapshot) = healthy();
    let mut slow = request(Kind::Order, Target::Host(0), created(201));
    slow.ended = slow.started + journal.deadline_secs + DEADLINE_SLACK_SECS + 0.5;
    journal.requests.push(slow);
    assert_eq!(violated(&journal, &snapshot), [DEADLINE]);
}
