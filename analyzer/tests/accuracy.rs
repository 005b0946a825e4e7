//! The point of the analyzer: on each engine workload, the top finding is its pathology, and
//! the healthy run yields nothing moderate or worse.

use analyzer::{Report, Severity};
use engine::workloads::{self, Options};
use traces::TraceReader;

/// One workload at a time: run side by side on two cores they would time each other, and the
/// findings are about timing.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn analyze_workload(name: &str, fix: bool) -> Report {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run.ndjson.zst");
    workloads::find(name)
        .unwrap()
        .record(&Options { fix, scale: 1.0 }, &path)
        .unwrap();
    analyzer::analyze(TraceReader::open(&path).unwrap()).unwrap()
}

fn top(report: &Report) -> (&str, Severity) {
    let first = report
        .findings
        .first()
        .unwrap_or_else(|| panic!("no findings: {report:#?}"));
    (first.rule, first.severity)
}

fn assert_top(name: &str, rule: &str, at_least: Severity) {
    let report = analyze_workload(name, false);
    let (top_rule, severity) = top(&report);
    assert_eq!(top_rule, rule, "{name}: {:#?}", report.findings);
    assert!(
        severity >= at_least,
        "{name}: {severity} < {at_least}: {:#?}",
        report.findings
    );
}

#[test]
fn healthy_has_nothing_moderate_or_worse() {
    let report = analyze_workload("healthy", false);
    assert!(
        report.worst() < Severity::Moderate,
        "{:#?}",
        report.findings
    );
    assert!(report.summary.efficiency > 0.8, "{:#?}", report.summary);
}

#[test]
fn skewed_groupby_is_skew() {
    assert_top("skewed-groupby", "skew", Severity::Moderate);
}

#[test]
fn tiny_partitions_is_tiny_partitions() {
    assert_top("tiny-partitions", "tiny-partitions", Severity::Severe);
}

#[test]
fn large_argument_is_oversized_argument() {
    assert_top("large-argument", "oversized-argument", Severity::Severe);
    let fixed = analyze_workload("large-argument", true);
    assert!(
        fixed
            .findings
            .iter()
            .all(|f| f.rule != "oversized-argument")
    );
}

#[test]
fn compute_in_loop_is_idle_gaps() {
    assert_top("compute-in-loop", "idle-gaps", Severity::Moderate);
    let fixed = analyze_workload("compute-in-loop", true);
    assert!(
        fixed.findings.iter().all(|f| f.rule != "idle-gaps"),
        "{:#?}",
        fixed.findings
    );
}

#[test]
fn memory_pressure_is_memory_pressure() {
    assert_top("memory-pressure", "memory-pressure", Severity::Severe);
}

#[test]
fn shuffle_is_communication() {
    assert_top("shuffle", "communication", Severity::Low);
}

#[test]
fn recompute_is_recomputation() {
    assert_top("recompute", "recomputation", Severity::Moderate);
    let fixed = analyze_workload("recompute", true);
    assert!(
        fixed.findings.iter().all(|f| f.rule != "recomputation"),
        "{:#?}",
        fixed.findings
    );
}
