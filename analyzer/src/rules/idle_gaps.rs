use traces::Nanos;
use traces::units::{format_count, format_duration};

use crate::finding::{Finding, Scope, Severity};
use crate::index::{Gap, TraceIndex};
use crate::rules::{Rule, per_thread_seconds};

/// Time when the whole cluster had nothing to do because it waited on the client (the gap
/// ends with a new graph submission: `compute()` in a loop). Gaps waiting on the scheduler and
/// idle threads while work was pending are reported alongside, as evidence.
pub struct IdleGaps;

/// Client-bound idle as a share of the run: 10 / 25 / 50 / 75 % (ours; Sparklens reports
/// the same "wasted" share of cores × wall).
pub const IDLE_SHARE: [f64; 4] = [0.10, 0.25, 0.50, 0.75];

impl Rule for IdleGaps {
    fn id(&self) -> &'static str {
        "idle-gaps"
    }

    fn check(&self, index: &TraceIndex) -> Vec<Finding> {
        let wall = index.wall_ns();
        if wall == 0 {
            return Vec::new();
        }
        // Scheduler-bound gaps between tiny tasks are the per-task overhead that
        // `tiny-partitions` charges; here only the client's gaps count as the impact.
        let gaps = &index.gaps;
        let client: Nanos = gaps.iter().filter(|g| g.client).map(Gap::len).sum();
        let client_gaps = gaps.iter().filter(|g| g.client).count();
        let other = index.scheduler_gap_ns();
        let share = client as f64 / wall as f64;
        let impact = client as f64 / 1e9;
        let severity = Severity::both(Severity::grade(share, IDLE_SHARE), impact);
        if severity == Severity::None {
            return Vec::new();
        }
        let idle = client + other;
        let capacity = index.alive_ns as f64 * f64::from(index.threads());
        let pending_idle = (capacity - index.busy_ns() as f64).max(0.0);
        let computes = index.submissions.len();
        let title = format!(
            "the cluster sat idle {} ({:.0}% of the run) in {} gaps waiting on the client{}",
            format_duration(client),
            share * 100.0,
            format_count(client_gaps as u64),
            if computes > 0 {
                format!(" ({computes} graph submissions)")
            } else {
                String::new()
            }
        );
        let advice = "The client is the bottleneck: build all the graphs first and compute them \
                      together with `dask.compute(*results)` (or `client.compute(...)` and \
                      `as_completed`) instead of calling `.compute()` in a loop; `persist()` \
                      inputs the iterations share."
            .to_string();
        vec![Finding {
            rule: self.id(),
            severity,
            impact_seconds: impact,
            title,
            scope: Scope {
                time_range: gaps
                    .iter()
                    .filter(|g| g.client)
                    .max_by_key(|g| g.len())
                    .map(|g| (index.seconds(g.start), index.seconds(g.stop))),
                ..Scope::default()
            },
            evidence: vec![
                ("idle_seconds".into(), idle as f64 / 1e9),
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
