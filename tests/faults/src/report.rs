//! The results as markdown: requests sent, faults injected, answers by
//! status during each fault, seconds to the first success after each fault,
//! and every invariant. Printed and written to the results file.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::journal::{FaultWindow, Journal, Kind, Service, Target};
use crate::suite::{Findings, Options};

/// Seconds from the end of `fault` to the first success it is measured by:
/// a 2xx order for the database and Redis (what depends on them), a 2xx
/// upload for the store, an accepted delivery for the receiver, any 2xx
/// from the restarted host for a host. `None`: no such success came.
pub fn recovery_secs(journal: &Journal, fault: &FaultWindow) -> Option<f64> {
    if fault.service == Service::Receiver {
        return fault
            .first_delivery_after
            .map(|t| (t - fault.ended).max(0.0));
    }
    journal
        .requests
        .iter()
        .filter(|r| r.outcome.is_success() && r.ended >= fault.ended)
        .filter(|r| match fault.service {
            Service::Database | Service::Redis => matches!(r.kind, Kind::Order | Kind::OrderRetry),
            Service::Store => matches!(r.kind, Kind::UploadRaw | Kind::Complete | Kind::DirectPut),
            Service::Host(n) => r.target == Target::Host(n),
            Service::Receiver => false,
        })
        .map(|r| r.ended - fault.ended)
        .reduce(f64::min)
}

/// Answers to requests in flight at any time during `fault` (a request
/// stuck on a frozen server started before it), by status label.
pub fn answers_during(journal: &Journal, fault: &FaultWindow) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for r in journal
        .requests
        .iter()
        .filter(|r| fault.overlaps(r.started, r.ended))
    {
        *counts.entry(r.outcome.label()).or_default() += 1;
    }
    counts
}

/// The failures (answers not expected of their kind) during `fault`, by
/// kind and label: which routes a dependency's loss reaches.
pub fn failures_during(journal: &Journal, fault: &FaultWindow) -> BTreeMap<(Kind, String), usize> {
    let mut counts = BTreeMap::new();
    for r in journal
        .requests
        .iter()
        .filter(|r| fault.overlaps(r.started, r.ended))
    {
        let failed = match &r.outcome {
            crate::journal::Outcome::Status { code, .. } => !r.kind.expected(*code),
            crate::journal::Outcome::Transport(_) => true,
        };
        if failed {
            *counts.entry((r.kind, r.outcome.label())).or_default() += 1;
        }
    }
    counts
}

fn counts_text(counts: &BTreeMap<String, usize>) -> String {
    if counts.is_empty() {
        return "—".into();
    }
    counts
        .iter()
        .map(|(label, n)| format!("{label}: {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The whole report.
pub fn markdown(options: &Options, findings: &Findings) -> String {
    let journal = &findings.journal;
    let mut out = String::new();
    let held = findings.verdicts.iter().filter(|v| v.held).count();
    let _ = writeln!(out, "# Fault-injection results (issue 31)\n");
    let _ = writeln!(
        out,
        "Produced by `scripts/faults` (`tests/faults`): two test-host processes of the API \
         (MySQL store on a MariaDB of the suite's own, key-value store on its own Redis, \
         uploads in an s3s-fs bucket, order events delivered by the events app to a webhook \
         receiver), {} workers of mixed load for {:.0} s, request deadline {} s, seed {}, \
         on a machine with {} cores. Wall time {:.0} s (start-up and checks included); \
         outbox drained in {:.1} s; events app restarted {} times after losing Redis.\n",
        options.workers,
        journal.load_secs,
        options.request_timeout_secs,
        options.seed,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        findings.wall_secs,
        findings.drain_secs,
        journal.events_app_restarts,
    );
    let _ = writeln!(
        out,
        "**{held} of {} invariants held.**\n",
        findings.verdicts.len()
    );

    let _ = writeln!(out, "## Requests\n");
    let mut by_kind: BTreeMap<Kind, BTreeMap<String, usize>> = BTreeMap::new();
    let mut all: BTreeMap<String, usize> = BTreeMap::new();
    for r in &journal.requests {
        *by_kind
            .entry(r.kind)
            .or_default()
            .entry(r.outcome.label())
            .or_default() += 1;
        *all.entry(r.outcome.label()).or_default() += 1;
    }
    let _ = writeln!(
        out,
        "{} requests sent ({:.0}/s); {} order requests answered 201 ({} distinct orders: \
         a retry under the same key is answered with the first order), {} uploads answered 201.\n",
        journal.requests.len(),
        journal.requests.len() as f64 / journal.load_secs.max(1.0),
        journal
            .orders
            .iter()
            .filter(|o| o.order_id.is_some())
            .count(),
        journal
            .orders
            .iter()
            .filter_map(|o| o.order_id.as_deref())
            .collect::<std::collections::BTreeSet<_>>()
            .len(),
        journal.uploads.len()
    );
    let _ = writeln!(out, "| request | sent | answers |\n|---|---:|---|");
    for (kind, counts) in &by_kind {
        let sent: usize = counts.values().sum();
        let _ = writeln!(
            out,
            "| {} | {sent} | {} |",
            kind.name(),
            counts_text(counts)
        );
    }
    let _ = writeln!(
        out,
        "| **all** | {} | {} |\n",
        journal.requests.len(),
        counts_text(&all)
    );

    let _ = writeln!(out, "## Faults\n");
    if journal.faults.is_empty() {
        let _ = writeln!(out, "None injected in this run.\n");
    } else {
        let _ = writeln!(
            out,
            "{} faults, one after another. Answers count the requests in flight during \
             the fault; recovery is the time from the fault's end (the dependency back, a \
             restarted process accepting connections) to the first success that needs it.\n",
            journal.faults.len()
        );
        let _ = writeln!(
            out,
            "| fault | window (s) | answers during the fault | first success after (s) |\n|---|---|---|---:|"
        );
        for fault in &journal.faults {
            let recovery = recovery_secs(journal, fault)
                .map_or_else(|| "none".to_owned(), |s| format!("{s:.2}"));
            let _ = writeln!(
                out,
                "| {} | {:.1}–{:.1} | {} | {recovery} |",
                fault.name,
                fault.started,
                fault.ended,
                counts_text(&answers_during(journal, fault))
            );
        }
        let _ = writeln!(out, "\nWhich requests failed during each fault:\n");
        for fault in &journal.faults {
            let failures = failures_during(journal, fault);
            let text = if failures.is_empty() {
                "none".to_owned()
            } else {
                failures
                    .iter()
                    .map(|((kind, label), n)| format!("{} {label}: {n}", kind.name()))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let _ = writeln!(out, "- {}: {text}", fault.name);
        }
        let _ = writeln!(out);
    }

    if !journal.delivered_over_time.is_empty() {
        let _ = writeln!(
            out,
            "Webhook deliveries accepted by the receiver during the load, per 5 s \
             (from {:.0} s): {}.\n",
            journal.delivered_over_time[0].0,
            journal
                .delivered_over_time
                .windows(6)
                .step_by(5)
                .map(|w| (w[5].1 - w[0].1).to_string())
                .collect::<Vec<_>>()
                .join(" ")
        );
    }

    let _ = writeln!(out, "## Invariants\n");
    let _ = writeln!(out, "| invariant | | checked |\n|---|---|---|");
    for v in &findings.verdicts {
        let _ = writeln!(
            out,
            "| {} | {} | {} |",
            v.name,
            if v.held { "held" } else { "**VIOLATED**" },
            v.detail.replace('|', "\\|")
        );
    }
    out
}
