use traces::units::{format_count, format_duration};

use crate::finding::Finding;
use crate::index::TraceIndex;
use crate::rules::{Evidence, Rule, graded, per_thread_seconds};

/// The same key computed more than once without a worker death in between: an intermediate
/// used by several computations that was not persisted.
pub struct Recomputation;

impl Recomputation {
    /// Repeated compute as a share of all compute: 5 / 10 / 25 / 50 % (ours).
    pub const REPEATED_SHARE: [f64; 4] = [0.05, 0.10, 0.25, 0.50];
}

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
        let total: u64 = index.groups.iter().map(|g| g.compute_total()).sum();
        let share = repeated as f64 / total.max(1) as f64;
        let impact = per_thread_seconds(repeated, index.threads());
        let Some(severity) = graded(share, Recomputation::REPEATED_SHARE, impact) else {
            return Vec::new();
        };
        let examples: Vec<String> = index.repeated().map(str::to_string).collect();
        let group = examples
            .first()
            .map_or(String::new(), |k| traces::key_split(k));
        vec![
            Finding::new(
                self.id(),
                severity,
                impact,
                format!(
                    "{} computed more than once ({} of repeated compute, {:.0}% of all \
                     compute), e.g. {}",
                    if keys == 1 {
                        "1 key was".to_string()
                    } else {
                        format!("{} keys were", format_count(keys))
                    },
                    format_duration(repeated),
                    share * 100.0,
                    examples.first().map_or("", String::as_str)
                ),
            )
            .keys(examples)
            .with_evidence(
                Evidence::new()
                    .count("keys", keys)
                    .seconds("repeated_compute", repeated)
                    .ratio("repeated_share", share),
            )
            .advice(format!(
                "Persist the shared intermediate (here the `{group}` tasks) before the \
                 computations that reuse it (`x = x.persist()` on the collection that produces \
                 them), or compute the results together (`dask.compute(a, b)`) so the graph is \
                 shared: saves {} of compute on {} keys.",
                format_duration(repeated),
                format_count(keys),
            )),
        ]
    }
}
