use traces::units::{format_count, format_duration};

use crate::finding::{Finding, Scope, Severity};
use crate::index::TraceIndex;
use crate::rules::{Rule, per_thread_seconds};

/// The same key computed more than once without a worker death in between: an intermediate
/// used by several computations that was not persisted.
pub struct Recomputation;

/// Repeated compute as a share of all compute: 5 / 10 / 25 / 50 % (ours).
pub const REPEATED_SHARE: [f64; 4] = [0.05, 0.10, 0.25, 0.50];

impl Rule for Recomputation {
    fn id(&self) -> &'static str {
        "recomputation"
    }

    fn check(&self, index: &TraceIndex) -> Vec<Finding> {
        let (mut keys, mut repeated) = (0u64, 0u64);
        for repeat in index.repeats.iter().filter(|r| !r.after_death) {
            keys += 1;
            repeated += repeat.repeated_ns;
        }
        if keys == 0 {
            return Vec::new();
        }
        let total: u64 = index.groups.iter().map(|g| g.compute_total).sum();
        let share = repeated as f64 / total.max(1) as f64;
        let impact = per_thread_seconds(repeated, index.threads());
        let severity = Severity::both(Severity::grade(share, REPEATED_SHARE), impact);
        if severity == Severity::None {
            return Vec::new();
        }
        let examples: Vec<String> = index.repeated().map(str::to_string).collect();
        vec![Finding {
            rule: self.id(),
            severity,
            impact_seconds: impact,
            title: format!(
                "{} keys were computed more than once ({} of repeated compute, {:.0}% of all \
                 compute), e.g. {}",
                format_count(keys),
                format_duration(repeated),
                share * 100.0,
                examples.first().map_or("", String::as_str)
            ),
            scope: Scope {
                keys: examples,
                ..Scope::default()
            },
            evidence: vec![
                ("keys".into(), keys as f64),
                ("repeated_compute_seconds".into(), repeated as f64 / 1e9),
                ("repeated_share".into(), share),
            ],
            advice: "Persist the shared intermediate before the computations that reuse it \
                     (`clean = clean.persist()`), or compute the results together \
                     (`dask.compute(mean, max)`) so the graph is shared."
                .to_string(),
        }]
    }
}
