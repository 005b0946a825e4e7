use traces::Action;
use traces::units::{format_bytes, format_count, format_duration};

use crate::finding::Finding;
use crate::index::TraceIndex;
use crate::rules::{Evidence, Rule, graded, per_thread_seconds};

/// Tasks carrying large objects inline, especially the same size again and again: what
/// `scatter` would have sent once.
pub struct OversizedArgument;

impl OversizedArgument {
    /// Dask warned (until 2023) about objects over 1 MB embedded in a task.
    pub const LARGE_ARGUMENT: u64 = 1_000_000;
    /// Tasks carrying a large argument: 2 / 4 / 16 / 64 (ours: each copy is serialized,
    /// shipped through the scheduler and deserialized again).
    pub const REPEATS: [f64; 4] = [2.0, 4.0, 16.0, 64.0];
    /// What shipping an inline argument costs, client → scheduler → worker: 1 GB/s (ours;
    /// Dask's comms on one machine manage about that).
    pub const SHIP_BYTES_PER_SECOND: f64 = 1e9;
}

impl Rule for OversizedArgument {
    fn id(&self) -> &'static str {
        "oversized-argument"
    }

    fn check(&self, index: &TraceIndex) -> Vec<Finding> {
        let threads = index.threads();
        let mut findings = Vec::new();
        for group in index.groups.iter() {
            if group.inline_max < OversizedArgument::LARGE_ARGUMENT {
                continue;
            }
            let large: u64 = group
                .inline_sizes
                .iter()
                .filter(|(size, _)| **size >= OversizedArgument::LARGE_ARGUMENT)
                .map(|(_, n)| n)
                .sum();
            let (common_size, common_count) = group
                .inline_sizes
                .iter()
                .max_by_key(|(size, n)| (**n, **size))
                .map(|(s, n)| (*s, *n))
                .unwrap_or((group.inline_max, 1));
            let deserialize_ns = group.phases.ns(Action::Deserialize);
            // Scattered once, every copy but one would not be serialized, shipped or unpacked.
            let extra_copies = large.saturating_sub(1);
            let ship_seconds =
                (extra_copies * common_size) as f64 / OversizedArgument::SHIP_BYTES_PER_SECOND;
            let deserialize =
                per_thread_seconds(deserialize_ns - deserialize_ns / large.max(1), threads);
            let impact = ship_seconds + deserialize;
            let Some(severity) = graded(large as f64, OversizedArgument::REPEATS, impact) else {
                continue;
            };
            findings.push(
                Finding::new(
                    self.id(),
                    severity,
                    impact,
                    format!(
                        "{}: {} tasks each carry a {} argument inline ({} in all{})",
                        group.name,
                        format_count(large),
                        format_bytes(common_size),
                        format_bytes(group.inline_total),
                        // Dask's traces time no unpickling of arguments: "0 ns" would say it
                        // was free.
                        if deserialize_ns > 0 {
                            format!(", {} deserializing", format_duration(deserialize_ns))
                        } else {
                            String::new()
                        }
                    ),
                )
                .group(&group.name)
                .with_evidence(
                    Evidence::new()
                        .count("tasks_with_large_argument", large)
                        .bytes("argument", common_size)
                        .count("tasks_with_that_size", common_count)
                        .bytes("inline_total", group.inline_total)
                        .seconds("deserialize", deserialize_ns)
                        .bytes("saved", extra_copies * common_size),
                )
                .advice(format!(
                    "Scatter the {} object once and pass the future instead: \
                     `obj = client.scatter(obj, broadcast=True)` — saves {} of serialization \
                     and transfer ({} copies).",
                    format_bytes(common_size),
                    format_bytes(extra_copies * common_size),
                    format_count(extra_copies)
                )),
            );
        }
        findings
    }
}
