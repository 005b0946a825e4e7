use traces::units::{format_bytes, format_duration};

use crate::finding::{Finding, Scope, Severity};
use crate::index::TraceIndex;
use crate::rules::{Rule, per_thread_seconds};

/// Groups whose tasks spend a large share of their time fetching inputs from other workers.
pub struct Communication;

/// Transfer share of a group's task time: 10 / 25 / 50 / 75 % (ours, on Sparklens' model of
/// time not spent computing).
pub const TRANSFER_SHARE: [f64; 4] = [0.10, 0.25, 0.50, 0.75];

impl Rule for Communication {
    fn id(&self) -> &'static str {
        "communication"
    }

    fn check(&self, index: &TraceIndex) -> Vec<Finding> {
        let threads = index.threads();
        let mut findings = Vec::new();
        for group in index.groups.iter() {
            if group.transfer_ns == 0 {
                continue;
            }
            let share = group.transfer_ns as f64 / group.task_time().max(1) as f64;
            let impact = per_thread_seconds(group.transfer_ns, threads);
            let severity = Severity::both(Severity::grade(share, TRANSFER_SHARE), impact);
            if severity == Severity::None {
                continue;
            }
            let per_transfer = group.transfer_bytes / group.transfers.max(1);
            // Dask task streams record transfers without their sizes.
            let moved = if group.transfer_bytes > 0 {
                format!(
                    "{} in {} transfers",
                    format_bytes(group.transfer_bytes),
                    group.transfers
                )
            } else {
                format!("{} transfers", group.transfers)
            };
            findings.push(Finding {
                rule: self.id(),
                severity,
                impact_seconds: impact,
                title: format!(
                    "{}: {:.0}% of its task time is spent fetching inputs from other workers \
                     ({moved}, {})",
                    group.name,
                    share * 100.0,
                    format_duration(group.transfer_ns)
                ),
                scope: Scope {
                    group: Some(group.name.clone()),
                    ..Scope::default()
                },
                evidence: vec![
                    ("transfer_seconds".into(), group.transfer_ns as f64 / 1e9),
                    ("transfer_share".into(), share),
                    ("transferred_bytes".into(), group.transfer_bytes as f64),
                    ("transfers".into(), group.transfers as f64),
                    ("bytes_per_transfer".into(), per_transfer as f64),
                    ("compute_seconds".into(), group.compute_total as f64 / 1e9),
                ],
                advice: "Move less data: use fewer, larger partitions so each output reads \
                         fewer pieces (an all-to-all shuffle moves ~all data once: prefer \
                         `shuffle(method=\"p2p\")` or avoid it with a pre-partitioned index), \
                         broadcast the small side of a join (`dd.merge(big, small, \
                         broadcast=True)`), and persist inputs on the workers that use them."
                    .to_string(),
            });
        }
        findings
    }
}
