use traces::Nanos;
use traces::units::{format_count, format_duration};

use crate::finding::{Finding, Scope, Severity};
use crate::index::TraceIndex;
use crate::rules::{Rule, per_thread_seconds};

/// Time when the whole cluster had nothing to do, split into waiting on the client (the gap
/// ends with a new graph submission: `compute()` in a loop) and waiting on the scheduler;
/// idle threads while work was pending are reported alongside.
pub struct IdleGaps;

/// Cluster idle as a share of the run: 10 / 25 / 50 / 75 % (ours; Sparklens reports the same
/// "wasted" share of cores × wall).
pub const IDLE_SHARE: [f64; 4] = [0.10, 0.25, 0.50, 0.75];
/// Gaps shorter than this are scheduling jitter, not idleness.
pub const MIN_GAP_NS: Nanos = 1_000_000;
/// A submission this close after a gap ends still explains it (the client submits, then the
/// scheduler queues the first task).
pub const SUBMIT_SLACK_NS: Nanos = 5_000_000;

impl Rule for IdleGaps {
    fn id(&self) -> &'static str {
        "idle-gaps"
    }

    fn check(&self, index: &TraceIndex) -> Vec<Finding> {
        let wall = index.wall_ns();
        if wall == 0 {
            return Vec::new();
        }
        let gaps = cluster_gaps(&index.alive);
        let (mut client, mut client_gaps, mut other) = (0, 0, 0);
        for &(from, to) in &gaps {
            let submitted = index
                .submissions
                .iter()
                .any(|&s| s >= from && s <= to + SUBMIT_SLACK_NS);
            // Dask task streams record no submissions: a whole-cluster gap there is the client.
            if submitted || index.submissions.is_empty() {
                client += to - from;
                client_gaps += 1;
            } else {
                other += to - from;
            }
        }
        let idle = client + other;
        let share = idle as f64 / wall as f64;
        let impact = idle as f64 / 1e9;
        let severity = Severity::both(Severity::grade(share, IDLE_SHARE), impact);
        if severity == Severity::None {
            return Vec::new();
        }
        let alive: Nanos = merged(&index.alive).iter().map(|(a, b)| b - a).sum();
        let capacity = alive as f64 * f64::from(index.threads());
        let pending_idle = (capacity - index.busy_ns() as f64).max(0.0);
        let computes = index.submissions.len();
        let (title, advice) = if client >= other {
            (
                format!(
                    "the cluster sat idle {} ({:.0}% of the run) in {} gaps between client calls{}",
                    format_duration(idle),
                    share * 100.0,
                    format_count(client_gaps),
                    if computes > 0 {
                        format!(" ({computes} graph submissions)")
                    } else {
                        String::new()
                    }
                ),
                "The client is the bottleneck: build all the graphs first and compute them \
                 together with `dask.compute(*results)` (or `client.compute(...)` and \
                 `as_completed`) instead of calling `.compute()` in a loop; `persist()` inputs \
                 the iterations share."
                    .to_string(),
            )
        } else {
            (
                format!(
                    "the cluster sat idle {} ({:.0}% of the run) with no client call pending",
                    format_duration(idle),
                    share * 100.0
                ),
                "Idle with work outstanding points at the scheduler or the network: larger \
                 tasks (fewer round trips), fewer dependencies between partitions, and check \
                 the scheduler's event loop."
                    .to_string(),
            )
        };
        vec![Finding {
            rule: self.id(),
            severity,
            impact_seconds: impact,
            title,
            scope: Scope {
                time_range: gaps
                    .iter()
                    .max_by_key(|(a, b)| b - a)
                    .map(|&(a, b)| (index.seconds(a), index.seconds(b))),
                ..Scope::default()
            },
            evidence: vec![
                ("idle_seconds".into(), impact),
                ("idle_share".into(), share),
                ("waiting_on_client_seconds".into(), client as f64 / 1e9),
                ("waiting_on_scheduler_seconds".into(), other as f64 / 1e9),
                ("gaps".into(), gaps.len() as f64),
                ("graph_submissions".into(), computes as f64),
                (
                    "idle_threads_with_work_pending_seconds".into(),
                    per_thread_seconds(pending_idle as u64, 1),
                ),
            ],
            advice,
        }]
    }
}

/// Intervals merged where they overlap.
pub(crate) fn merged(sorted: &[(Nanos, Nanos)]) -> Vec<(Nanos, Nanos)> {
    let mut out: Vec<(Nanos, Nanos)> = Vec::new();
    for &(a, b) in sorted {
        match out.last_mut() {
            Some(last) if a <= last.1 => last.1 = last.1.max(b),
            _ => out.push((a, b)),
        }
    }
    out
}

/// Stretches of at least [`MIN_GAP_NS`] when no task was queued or running anywhere.
fn cluster_gaps(sorted: &[(Nanos, Nanos)]) -> Vec<(Nanos, Nanos)> {
    merged(sorted)
        .windows(2)
        .map(|w| (w[0].1, w[1].0))
        .filter(|(a, b)| b - a >= MIN_GAP_NS)
        .collect()
}
