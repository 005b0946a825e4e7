use traces::Action;
use traces::units::format_duration;

use crate::finding::Finding;
use crate::index::TraceIndex;
use crate::rules::{Evidence, Rule, graded, per_thread_seconds};

/// Deserialization a large share of task time (for reasons other than inline arguments,
/// which `oversized-argument` covers).
pub struct Serialization;

impl Serialization {
    /// Deserialize share of a group's task time: 10 / 25 / 50 / 75 % (ours).
    pub const DESERIALIZE_SHARE: [f64; 4] = [0.10, 0.25, 0.50, 0.75];
}

impl Rule for Serialization {
    fn id(&self) -> &'static str {
        "serialization"
    }

    fn check(&self, index: &TraceIndex) -> Vec<Finding> {
        let threads = index.threads();
        let mut findings = Vec::new();
        for group in index.groups.iter() {
            let deserialize_ns = group.phases.ns(Action::Deserialize);
            if deserialize_ns == 0 || group.inline_tasks > 0 {
                continue;
            }
            let share = deserialize_ns as f64 / group.task_time().max(1) as f64;
            let impact = per_thread_seconds(deserialize_ns, threads);
            let Some(severity) = graded(share, Serialization::DESERIALIZE_SHARE, impact) else {
                continue;
            };
            findings.push(
                Finding::new(
                    self.id(),
                    severity,
                    impact,
                    format!(
                        "{}: {:.0}% of its task time is deserialization ({})",
                        group.name,
                        share * 100.0,
                        format_duration(deserialize_ns)
                    ),
                )
                .group(&group.name)
                .with_evidence(
                    Evidence::new()
                        .seconds("deserialize", deserialize_ns)
                        .ratio("deserialize_share", share)
                        .bytes("deserialized", group.phases.bytes(Action::Deserialize)),
                )
                .advice(format!(
                    "Send data that (de)serializes cheaply: {} went to unpickling {} tasks' \
                     inputs ({} each). Use NumPy arrays and Arrow-backed DataFrames \
                     (`string[pyarrow]`) instead of Python objects and object-dtype columns, \
                     and fewer, larger pieces.",
                    format_duration(deserialize_ns),
                    group.tasks,
                    format_duration(deserialize_ns / group.tasks.max(1)),
                )),
            );
        }
        findings
    }
}
