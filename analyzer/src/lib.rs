//! taskscope's analyzer: reads any trace once into a [`TraceIndex`], runs every rule over it,
//! and ranks the [`Finding`]s: most severe first, then by the wall-clock time their fix would
//! save.
//!
//! ```no_run
//! let trace = traces::TraceReader::open("run.ndjson.zst")?;
//! let report = analyzer::analyze(trace)?;
//! for finding in &report.findings {
//!     println!("[{}] {}: {}\n  fix: {}", finding.severity, finding.rule, finding.title, finding.advice);
//! }
//! # Ok::<(), traces::TraceError>(())
//! ```

mod concurrency;
mod critical_path;
mod finding;
pub mod flamegraph;
mod index;
pub mod report;
pub mod rules;

use serde::Serialize;
use traces::{TraceError, TraceReader};

pub use critical_path::{CriticalPath, critical_path};
pub use finding::{Finding, IMPACT_SECONDS, ImpactSource, Scope, Severity, SimulatedFix};
pub use index::{GroupStats, TraceIndex, WorkerStats};

/// Everything `taskscope analyze` reports.
#[derive(Debug, Serialize)]
pub struct Report {
    pub summary: Summary,
    /// Ranked by [`rank`].
    pub findings: Vec<Finding>,
    /// `null` when the trace has no dependencies.
    pub critical_path: Option<CriticalPath>,
    /// Problems reading the trace that did not stop the analysis (a truncated last line).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct Summary {
    pub format: String,
    pub producer: String,
    pub tasks: u64,
    pub failed_tasks: u64,
    pub lost_tasks: u64,
    pub groups: usize,
    pub workers: usize,
    pub threads: u32,
    pub wall_seconds: f64,
    /// Thread-occupying task time.
    pub busy_seconds: f64,
    /// Sparklens' ideal time: task time / threads.
    pub ideal_seconds: f64,
    /// `ideal / wall`: 1.0 is every thread busy all the time.
    pub efficiency: f64,
}

/// Reads the trace and runs every rule.
pub fn analyze(trace: TraceReader) -> Result<Report, TraceError> {
    let index = TraceIndex::build(trace)?;
    Ok(report(&index))
}

/// Runs every rule on an index.
pub fn report(index: &TraceIndex) -> Report {
    let mut findings: Vec<Finding> = rules::all()
        .iter()
        .flat_map(|rule| rule.check(index))
        .collect();
    rules::attribute_causes(index, &mut findings);
    rank(&mut findings);
    let wall = index.wall_ns() as f64 / 1e9;
    let busy = index.busy_ns() as f64 / 1e9;
    let ideal = busy / f64::from(index.threads().max(1));
    Report {
        summary: Summary {
            format: index.format.clone(),
            producer: index.header.producer.clone(),
            tasks: index.task_records,
            failed_tasks: index.failed,
            lost_tasks: index.lost,
            groups: index.groups.len(),
            workers: index.workers.len(),
            threads: index.threads(),
            wall_seconds: wall,
            busy_seconds: busy,
            ideal_seconds: ideal,
            efficiency: if wall > 0.0 { ideal / wall } else { 0.0 },
        },
        findings,
        critical_path: critical_path(index),
        warnings: index.warnings.clone(),
    }
}

/// Most severe first, then by the time the fix would save. Severity leads because it is the
/// rule's own grading of what it measured, while `impact_seconds` may come from a replay
/// (`ImpactSource::Simulation`) that is blind to part of what made the run slow (a P2P
/// shuffle's barrier, the GIL, memory pauses): a replay that finds little to save reorders
/// findings of one severity, and never buries a severe problem under a moderate one.
pub fn rank(findings: &mut [Finding]) {
    findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| b.impact_seconds.total_cmp(&a.impact_seconds))
            .then_with(|| a.rule.cmp(b.rule))
    });
}

impl Report {
    /// The most severe finding, if any.
    pub fn worst(&self) -> Severity {
        self.findings
            .iter()
            .map(|f| f.severity)
            .max()
            .unwrap_or(Severity::None)
    }
}
