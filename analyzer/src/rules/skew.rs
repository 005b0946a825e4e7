use traces::units::{format_bytes, format_duration};

use crate::finding::{Finding, Scope, Severity};
use crate::index::TraceIndex;
use crate::rules::Rule;

/// Within a task group, one partition far above the median: the straggler the whole group
/// (and often the job) waits for.
pub struct Skew;

/// Dr. Elephant Spark task skew, max / median duration: 2 / 4 / 8 / 16.
pub const DURATION_RATIO: [f64; 4] = [2.0, 4.0, 8.0, 16.0];
/// A median needs a few tasks to mean anything.
pub const MIN_TASKS: u64 = 4;
/// Spark AQE calls a partition skewed past 5 × the median size.
pub const SIZE_RATIO: f64 = 5.0;

impl Rule for Skew {
    fn id(&self) -> &'static str {
        "skew"
    }

    fn check(&self, index: &TraceIndex) -> Vec<Finding> {
        let mut findings = Vec::new();
        for group in index.groups.iter() {
            if group.tasks < MIN_TASKS {
                continue;
            }
            let median = group.median_compute().max(1);
            let ratio = group.compute_max as f64 / median as f64;
            let graded = Severity::grade(ratio, DURATION_RATIO);
            if graded == Severity::None {
                continue;
            }
            // Had the largest partition been split to median size, the group ends that much
            // sooner (it runs last: everything else finished while it ran).
            let impact = group.compute_max.saturating_sub(median) as f64 / 1e9;
            let severity = Severity::both(graded, impact);
            if severity == Severity::None {
                continue;
            }
            let median_size = group.median_output().max(1);
            let size_ratio = group.output_max as f64 / median_size as f64;
            let pieces = ratio.ceil() as u64;
            let size_note = if size_ratio >= SIZE_RATIO {
                format!(
                    " and holds {} against a median {}",
                    format_bytes(group.output_max),
                    format_bytes(median_size)
                )
            } else {
                String::new()
            };
            findings.push(Finding {
                rule: self.id(),
                severity,
                impact_seconds: impact,
                title: format!(
                    "{}: task {} took {} against a median {} ({ratio:.1}x){size_note}",
                    group.name,
                    group.slowest_key,
                    format_duration(group.compute_max),
                    format_duration(median),
                ),
                scope: Scope {
                    group: Some(group.name.clone()),
                    keys: vec![group.slowest_key.clone()],
                    ..Scope::default()
                },
                evidence: vec![
                    ("tasks".into(), group.tasks as f64),
                    ("max_seconds".into(), group.compute_max as f64 / 1e9),
                    ("median_seconds".into(), median as f64 / 1e9),
                    ("duration_ratio".into(), ratio),
                    ("max_output_bytes".into(), group.output_max as f64),
                    ("median_output_bytes".into(), median_size as f64),
                    ("size_ratio".into(), size_ratio),
                ],
                advice: if size_ratio >= SIZE_RATIO {
                    format!(
                        "Split the hot partition: repartition so no partition exceeds ~{} \
                         (`df.repartition(partition_size=\"{}\")`), or salt the hot key so its \
                         rows spread over ~{pieces} partitions before the groupby.",
                        format_bytes(median_size),
                        format_bytes(median_size.max(1 << 20)).replace(' ', ""),
                    )
                } else {
                    format!(
                        "The slow task is not larger than the others ({} against a median {}): \
                         its data is costlier to process (a hot key, a pathological record) or \
                         its worker was slow. Salt or split that key over ~{pieces} partitions, \
                         or repartition to spread its rows.",
                        format_bytes(group.output_max),
                        format_bytes(median_size),
                    )
                },
            });
        }
        findings
    }
}
