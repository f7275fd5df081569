//! The promises issue 31 checks after the faults, as one pure function of
//! what the client saw ([`Journal`]) and what the stores hold ([`Snapshot`]):
//! no I/O here, so `tests.rs` feeds it broken states directly.

use std::collections::{BTreeMap, BTreeSet};

use crate::journal::{Journal, Outcome, Service, Target};
use crate::snapshot::Snapshot;

/// How much longer than the hosts' request deadline a request may take to
/// be answered: the deadline bounds the guest; connecting, queueing and
/// the bytes on the wire come on top.
pub const DEADLINE_SLACK_SECS: f64 = 2.0;

/// One invariant and whether it held.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// What it promises.
    pub name: &'static str,
    /// Whether it held.
    pub held: bool,
    /// How much was checked, or the first counterexamples.
    pub detail: String,
}

/// The invariants' names, in the order [`check`] returns them.
pub const STOCK: &str = "stock conserved: initial = stock + quantities of non-cancelled orders";
/// See [`STOCK`].
pub const ORDERS_EXIST: &str = "every order answered 201 exists exactly once with all its lines";
/// See [`STOCK`].
pub const NO_SECOND_ORDER: &str =
    "idempotent retries made no second order; no order that no request explains";
/// See [`STOCK`].
pub const OUTBOX: &str = "every order has its outbox events";
/// See [`STOCK`].
pub const DELIVERED: &str = "every event delivered to the receiver (ids deduplicated)";
/// See [`STOCK`].
pub const UPLOADS_READ_BACK: &str = "every upload answered 201 reads back identical";
/// See [`STOCK`].
pub const UPLOAD_BYTES: &str = "no upload row lacks its bytes";
/// See [`STOCK`].
pub const NO_500: &str = "no answer was a 500";
/// See [`STOCK`].
pub const FAILURES_EXPLAINED: &str =
    "every failure was 503 with Retry-After, 429, or a connection error to a killed process";
/// See [`STOCK`].
pub const DEADLINE: &str = "no request took longer than the request deadline";

/// Checks every invariant.
pub fn check(journal: &Journal, snapshot: &Snapshot) -> Vec<Verdict> {
    vec![
        stock(journal, snapshot),
        orders_exist(journal, snapshot),
        no_second_order(journal, snapshot),
        outbox(snapshot),
        delivered(snapshot),
        uploads_read_back(journal, snapshot),
        upload_bytes(snapshot),
        no_500(journal),
        failures_explained(journal),
        deadline(journal),
    ]
}

/// A verdict from the counterexamples found (at most a few shown).
fn verdict(name: &'static str, checked: String, problems: Vec<String>) -> Verdict {
    if problems.is_empty() {
        return Verdict {
            name,
            held: true,
            detail: checked,
        };
    }
    let shown: Vec<&str> = problems.iter().take(3).map(String::as_str).collect();
    let more = problems.len().saturating_sub(shown.len());
    let mut detail = format!("{} violation(s): {}", problems.len(), shown.join("; "));
    if more > 0 {
        detail.push_str(&format!("; and {more} more"));
    }
    Verdict {
        name,
        held: false,
        detail,
    }
}

fn stock(journal: &Journal, snapshot: &Snapshot) -> Verdict {
    let mut taken: BTreeMap<&str, i64> = BTreeMap::new();
    for order in snapshot.orders.iter().filter(|o| o.status != "cancelled") {
        for (product, quantity) in &order.lines {
            *taken.entry(product.as_str()).or_default() += quantity;
        }
    }
    let now: BTreeMap<&str, i64> = snapshot
        .products
        .iter()
        .map(|p| (p.id.as_str(), p.stock))
        .collect();
    let mut problems = Vec::new();
    for (product, initial) in &journal.initial_stock {
        let stock = now.get(product.as_str()).copied();
        let taken = taken.get(product.as_str()).copied().unwrap_or(0);
        match stock {
            None => problems.push(format!("product {product} is gone")),
            Some(stock) if stock + taken != *initial || stock < 0 => problems.push(format!(
                "product {product}: initial {initial} ≠ stock {stock} + ordered {taken}"
            )),
            Some(_) => {}
        }
    }
    verdict(
        STOCK,
        format!("{} products", journal.initial_stock.len()),
        problems,
    )
}

fn orders_exist(journal: &Journal, snapshot: &Snapshot) -> Verdict {
    let mut rows: BTreeMap<&str, Vec<&crate::snapshot::OrderRow>> = BTreeMap::new();
    for row in &snapshot.orders {
        rows.entry(row.id.as_str()).or_default().push(row);
    }
    let mut checked = BTreeSet::new();
    let mut problems = Vec::new();
    for attempt in &journal.orders {
        let Some(id) = attempt.order_id.as_deref() else {
            continue;
        };
        // A retry answered with the first answer names the same order.
        if !checked.insert(id) {
            continue;
        }
        match rows.get(id).map(Vec::as_slice) {
            None | Some([]) => problems.push(format!("order {id} answered 201 is missing")),
            Some([row]) => {
                let mut want = attempt.lines.clone();
                let mut have = row.lines.clone();
                want.sort();
                have.sort();
                if want != have {
                    problems.push(format!(
                        "order {id}: lines {have:?} instead of the {want:?} ordered"
                    ));
                }
            }
            Some(many) => problems.push(format!("order {id} exists {} times", many.len())),
        }
    }
    verdict(
        ORDERS_EXIST,
        format!("{} orders answered 201", checked.len()),
        problems,
    )
}

fn no_second_order(journal: &Journal, snapshot: &Snapshot) -> Verdict {
    let mut problems = Vec::new();
    // Every answer under one key names one order, the one the key made.
    let mut by_key: BTreeMap<(&str, &str), BTreeSet<&str>> = BTreeMap::new();
    for attempt in &journal.orders {
        if let (Some(key), Some(id)) = (attempt.key.as_deref(), attempt.order_id.as_deref()) {
            by_key
                .entry((attempt.user_id.as_str(), key))
                .or_default()
                .insert(id);
        }
    }
    let reserved: BTreeMap<(&str, &str), Option<&str>> = snapshot
        .keys
        .iter()
        .map(|k| ((k.user_id.as_str(), k.key.as_str()), k.order_id.as_deref()))
        .collect();
    for ((user, key), ids) in &by_key {
        if ids.len() > 1 {
            problems.push(format!("key {key} answered with {} orders", ids.len()));
        }
        match reserved.get(&(*user, *key)) {
            Some(Some(made)) if ids.contains(made) => {}
            Some(made) => problems.push(format!(
                "key {key}: answered {ids:?} but the key holds {made:?}"
            )),
            None => problems.push(format!("key {key} answered 201 has no reservation")),
        }
    }
    // Orders nobody was told of: only a request whose answer was lost (a
    // connection error, or a 5xx after a commit) may have made one, and a
    // keyed one only if no retry under its key was answered.
    let answered: BTreeSet<&str> = journal
        .orders
        .iter()
        .filter_map(|a| a.order_id.as_deref())
        .collect();
    let unexplained = snapshot
        .orders
        .iter()
        .filter(|o| !answered.contains(o.id.as_str()))
        .count();
    let unknown = journal
        .orders
        .iter()
        .filter(|a| match &a.outcome {
            Outcome::Transport(_) => true,
            Outcome::Status { code, .. } => *code >= 500,
        })
        .filter(|a| match a.key.as_deref() {
            Some(key) => !by_key.contains_key(&(a.user_id.as_str(), key)),
            None => true,
        })
        .count();
    if unexplained > unknown {
        problems.push(format!(
            "{unexplained} orders were never answered 201, but only {unknown} requests lost their answer"
        ));
    }
    verdict(
        NO_SECOND_ORDER,
        format!(
            "{} idempotency keys answered 201; {unexplained} orders made by requests whose answer was lost (of {unknown} such requests)",
            by_key.len()
        ),
        problems,
    )
}

fn outbox(snapshot: &Snapshot) -> Verdict {
    let events: BTreeSet<(&str, &str)> = snapshot
        .events
        .iter()
        .map(|e| (e.order_id.as_str(), e.kind.as_str()))
        .collect();
    let mut problems = Vec::new();
    for order in &snapshot.orders {
        if !events.contains(&(order.id.as_str(), "order.created")) {
            problems.push(format!("order {} has no order.created event", order.id));
        }
        if order.status == "cancelled" && !events.contains(&(order.id.as_str(), "order.cancelled"))
        {
            problems.push(format!("order {} has no order.cancelled event", order.id));
        }
    }
    verdict(
        OUTBOX,
        format!(
            "{} orders, {} events",
            snapshot.orders.len(),
            snapshot.events.len()
        ),
        problems,
    )
}

fn delivered(snapshot: &Snapshot) -> Verdict {
    let problems = snapshot
        .events
        .iter()
        .filter(|e| !snapshot.delivered.contains(&e.id))
        .map(|e| format!("event {} ({}) never delivered", e.id, e.kind))
        .collect();
    verdict(
        DELIVERED,
        format!("{} events delivered", snapshot.delivered.len()),
        problems,
    )
}

fn uploads_read_back(journal: &Journal, snapshot: &Snapshot) -> Verdict {
    let mut problems = Vec::new();
    for upload in &journal.uploads {
        match snapshot.readbacks.get(&upload.id) {
            Some(Some(sha)) if *sha == upload.sha256 => {}
            Some(Some(sha)) => problems.push(format!(
                "upload {} reads back {sha}, sent {}",
                upload.id, upload.sha256
            )),
            _ => problems.push(format!("upload {} does not read back", upload.id)),
        }
    }
    verdict(
        UPLOADS_READ_BACK,
        format!("{} uploads", journal.uploads.len()),
        problems,
    )
}

fn upload_bytes(snapshot: &Snapshot) -> Verdict {
    let problems = snapshot
        .uploads
        .iter()
        .filter(|u| !u.has_bytes)
        .map(|u| format!("upload {} has no bytes", u.id))
        .collect();
    verdict(
        UPLOAD_BYTES,
        format!("{} upload rows", snapshot.uploads.len()),
        problems,
    )
}

fn no_500(journal: &Journal) -> Verdict {
    let problems = journal
        .requests
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::Status { code: 500, .. }))
        .map(|r| format!("{} at {:.1} s", r.kind.name(), r.started))
        .collect();
    verdict(
        NO_500,
        format!("{} requests", journal.requests.len()),
        problems,
    )
}

fn failures_explained(journal: &Journal) -> Verdict {
    let mut failures = 0;
    let mut problems = Vec::new();
    for request in &journal.requests {
        let explained = match &request.outcome {
            Outcome::Status { code, .. } if request.kind.expected(*code) => continue,
            Outcome::Status {
                code: 503,
                retry_after,
            } => *retry_after,
            Outcome::Status { code: 429, .. } => true,
            Outcome::Status { .. } => false,
            Outcome::Transport(_) => journal.faults.iter().any(|fault| {
                let killed = matches!(
                    (fault.service, request.target),
                    (Service::Host(a), Target::Host(b)) if a == b
                ) || (fault.service == Service::Store
                    && request.target == Target::Store);
                killed && fault.overlaps(request.started, request.ended)
            }),
        };
        failures += 1;
        if !explained {
            let what = match &request.outcome {
                Outcome::Status { code, retry_after } => format!(
                    "{code}{}",
                    if *retry_after {
                        ""
                    } else {
                        " without Retry-After"
                    }
                ),
                Outcome::Transport(error) => format!("connection error ({error})"),
            };
            problems.push(format!(
                "{} to {:?} at {:.1} s: {what}",
                request.kind.name(),
                request.target,
                request.started
            ));
        }
    }
    verdict(
        FAILURES_EXPLAINED,
        format!("{failures} failures, each explained"),
        problems,
    )
}

fn deadline(journal: &Journal) -> Verdict {
    let limit = journal.deadline_secs + DEADLINE_SLACK_SECS;
    let longest = journal
        .requests
        .iter()
        .map(|r| r.ended - r.started)
        .fold(0.0_f64, f64::max);
    let problems = journal
        .requests
        .iter()
        .filter(|r| r.ended - r.started > limit)
        .map(|r| {
            format!(
                "{} to {:?} at {:.1} s took {:.1} s",
                r.kind.name(),
                r.target,
                r.started,
                r.ended - r.started
            )
        })
        .collect();
    verdict(
        DEADLINE,
        format!(
            "longest {longest:.2} s; deadline {:.0} s (+{DEADLINE_SLACK_SECS:.0} s slack)",
            journal.deadline_secs
        ),
        problems,
    )
}

#[cfg(test)]
mod tests;
