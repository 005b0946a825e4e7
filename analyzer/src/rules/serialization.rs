use traces::units::format_duration;

use crate::finding::{Finding, Scope, Severity};
use crate::index::TraceIndex;
use crate::rules::{Rule, per_thread_seconds};

/// Deserialization a large share of task time (for reasons other than inline arguments,
/// which `oversized-argument` covers).
pub struct Serialization;

/// Deserialize share of a group's task time: 10 / 25 / 50 / 75 % (ours).
pub const DESERIALIZE_SHARE: [f64; 4] = [0.10, 0.25, 0.50, 0.75];

impl Rule for Serialization {
    fn id(&self) -> &'static str {
        "serialization"
    }

    fn check(&self, index: &TraceIndex) -> Vec<Finding> {
        let threads = index.threads();
        let mut findings = Vec::new();
        for group in index.groups.iter() {
            if group.deserialize_ns == 0 || group.inline_tasks > 0 {
                continue;
            }
            let share = group.deserialize_ns as f64 / group.task_time().max(1) as f64;
            let impact = per_thread_seconds(group.deserialize_ns, threads);
            let severity = Severity::both(Severity::grade(share, DESERIALIZE_SHARE), impact);
            if severity == Severity::None {
                continue;
            }
            findings.push(Finding {
                rule: self.id(),
                severity,
                impact_seconds: impact,
                title: format!(
                    "{}: {:.0}% of its task time is deserialization ({})",
                    group.name,
                    share * 100.0,
                    format_duration(group.deserialize_ns)
                ),
                scope: Scope {
                    group: Some(group.name.clone()),
                    ..Scope::default()
                },
                evidence: vec![
                    (
                        "deserialize_seconds".into(),
                        group.deserialize_ns as f64 / 1e9,
                    ),
                    ("deserialize_share".into(), share),
                    ("deserialized_bytes".into(), group.deserialize_bytes as f64),
                ],
                advice: "Send data that (de)serializes cheaply: NumPy arrays and Arrow-backed \
                         DataFrames instead of Python objects, fewer small pieces, and avoid \
                         object dtype columns."
                    .to_string(),
            });
        }
        findings
    }
}
