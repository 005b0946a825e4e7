//! One rule per file, each a small type behind [`Rule`], thresholds as named constants with
//! their source (`shared/reference/thresholds.md`).

use crate::finding::Finding;
use crate::index::TraceIndex;

mod communication;
mod idle_gaps;
mod memory_pressure;
mod oversized_argument;
mod recomputation;
mod serialization;
mod skew;
mod straggler_worker;
mod tiny_partitions;

/// A check over a trace.
pub trait Rule {
    /// The id findings carry (`skew`, `tiny-partitions`, …).
    fn id(&self) -> &'static str;
    fn check(&self, index: &TraceIndex) -> Vec<Finding>;
}

pub fn all() -> Vec<Box<dyn Rule>> {
    vec![
        Box::new(skew::Skew),
        Box::new(tiny_partitions::TinyPartitions),
        Box::new(oversized_argument::OversizedArgument),
        Box::new(idle_gaps::IdleGaps),
        Box::new(communication::Communication),
        Box::new(memory_pressure::MemoryPressure),
        Box::new(straggler_worker::StragglerWorker),
        Box::new(recomputation::Recomputation),
        Box::new(serialization::Serialization),
    ]
}

/// Seconds of `ns` spread over `threads` threads.
pub(crate) fn per_thread_seconds(ns: u64, threads: u32) -> f64 {
    ns as f64 / 1e9 / f64::from(threads.max(1))
}
