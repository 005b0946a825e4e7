//! The same accuracy bar on real Dask task streams (`tests/data/dask/`, recorded from a
//! `LocalCluster` by `record.py`): the top finding is the pathology each run reproduces.

use analyzer::{Report, Severity};
use traces::TraceReader;

fn analyze(name: &str) -> Report {
    analyze_file(&format!("{name}.json"))
}

fn analyze_file(file: &str) -> Report {
    let path = format!("{}/tests/data/dask/{file}", env!("CARGO_MANIFEST_DIR"));
    analyzer::analyze(TraceReader::open(path).unwrap()).unwrap()
}

fn assert_top(name: &str, rule: &str, at_least: Severity) {
    let report = analyze(name);
    let first = report
        .findings
        .first()
        .unwrap_or_else(|| panic!("{name}: no findings"));
    assert_eq!(first.rule, rule, "{name}: {:#?}", report.findings);
    assert!(first.severity >= at_least, "{name}: {:#?}", report.findings);
}

#[test]
fn healthy_has_nothing_moderate_or_worse() {
    let report = analyze("healthy");
    assert!(
        report.worst() < Severity::Moderate,
        "{:#?}",
        report.findings
    );
}

#[test]
fn skewed_partitions() {
    assert_top("skewed", "skew", Severity::Severe);
}

/// A real hot partition (the bridge's `skewed` workload, its plugin trace) that ran beside a
/// load task stalled 76x by a CPU hog sharing the host: its host may have slowed it too, so
/// the skew is graded low, but it is still named first.
#[test]
fn skew_beside_a_stalled_neighbour_is_named_low() {
    let report = analyze_file("skewed-under-load.ndjson.zst");
    let first = &report.findings[0];
    assert_eq!(
        (first.rule, first.severity, first.scope.group.as_deref()),
        ("skew", Severity::Low, Some("groupby_chunk")),
        "{:#?}",
        report.findings
    );
}

#[test]
fn tiny_chunks() {
    assert_top("tiny", "tiny-partitions", Severity::Severe);
}

#[test]
fn compute_in_a_loop() {
    assert_top("loop", "idle-gaps", Severity::Moderate);
}

#[test]
fn spilling_under_a_small_memory_limit() {
    assert_top("spill", "memory-pressure", Severity::Moderate);
}

#[test]
fn transfer_heavy_rechunk() {
    assert_top("rechunk", "communication", Severity::Moderate);
}

#[test]
fn recompute_without_persist() {
    assert_top("recompute", "recomputation", Severity::Moderate);
}

/// The JSON schema, field by field, on a fixed input: a change here is a change for every
/// program reading `taskscope analyze --format json`.
#[test]
fn json_report_schema() {
    let report = analyze("recompute");
    let json: serde_json::Value =
        serde_json::from_str(&analyzer::report::to_json(&report)).unwrap();
    insta::assert_json_snapshot!(json);
}
