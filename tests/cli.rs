//! End-to-end tests of the `taskscope` binary: output, exit codes and one-line errors.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use predicates::prelude::*;
use traces::{Record, TraceReader};

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/traces/tests/data/dask_task_stream.json"
);

fn taskscope() -> Command {
    let mut cmd = Command::cargo_bin("taskscope").unwrap();
    cmd.env("NO_COLOR", "1");
    cmd
}

/// `taskscope convert INPUT -o OUTPUT`, to check its outcome.
fn convert(input: &Path, output: &Path) -> assert_cmd::assert::Assert {
    taskscope()
        .arg("convert")
        .arg(input)
        .arg("-o")
        .arg(output)
        .assert()
}

fn read(path: &Path) -> (traces::Header, Vec<Record>) {
    TraceReader::open(path).unwrap().read_all().unwrap()
}

#[test]
fn version_and_help() {
    taskscope()
        .arg("--version")
        .assert()
        .success()
        .stdout(format!("taskscope {}\n", env!("CARGO_PKG_VERSION")));
    for command in ["info", "convert", "bench"] {
        taskscope()
            .args([command, "--help"])
            .assert()
            .success()
            .stdout(predicate::str::contains("Usage: taskscope"));
    }
}

#[test]
fn usage_errors_exit_2() {
    taskscope()
        .assert()
        .code(2)
        .stderr(predicate::str::contains("Usage: taskscope <COMMAND>"));
    taskscope()
        .args(["info", FIXTURE, "--format", "yaml"])
        .assert()
        .code(2)
        .stderr(predicate::str::starts_with(
            "error: invalid value 'yaml' for '--format <FORMAT>'",
        ));
    taskscope()
        .args(["convert", FIXTURE])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--output <OUTPUT>"));
}

#[test]
fn info_summarizes_the_dask_fixture() {
    let expected = "  wall time    208 ms from 2026-11-25T13:31:03.492Z
  tasks        55 (55 ok) in 9 groups
  workers      2 (4 threads)
  transferred  16 transfers (sizes not recorded)
  spilled      none

workers
   id  name                   threads      tasks    busy    peak mem
    0  tcp://127.0.0.1:35717        2         30   26.3%           -
    1  tcp://127.0.0.1:40049        2         25   20.5%           -

groups (by total compute time)
  group                            tasks       total      median         max      output
  random_sample                       16      122 ms     4.70 ms     22.3 ms    22.9 MiB
  mean_chunk                          16     66.9 ms     2.67 ms     14.0 ms    67.6 KiB
  mean_agg-aggregate-sum               4     4.56 ms      395 µs     3.34 ms        32 B
  inc                                  8      344 µs     36.5 µs     85.1 µs       224 B
  sum-aggregate                        1      316 µs      316 µs      316 µs        32 B
  add                                  4      159 µs     33.6 µs     51.0 µs       112 B
  sum                                  4      112 µs     24.3 µs     36.5 µs        32 B
  total                                1     66.3 µs     66.3 µs     66.3 µs        28 B
  finalize-hlgfinalizecompute          1     29.1 µs     29.1 µs     29.1 µs        32 B
";
    let output = taskscope().args(["info", FIXTURE]).output().unwrap();
    assert!(output.status.success());
    let stdout = String::from_utf8(output.stdout).unwrap();
    let (first, rest) = stdout.split_once('\n').unwrap();
    assert_eq!(
        first,
        format!("{FIXTURE}: Dask task stream (producer: imported by taskscope 0.1.0)")
    );
    assert_eq!(rest, expected);
    assert!(output.stderr.is_empty());
}

#[test]
fn info_json() {
    let output = taskscope()
        .args(["info", "--format", "json", FIXTURE])
        .output()
        .unwrap();
    assert!(output.status.success());
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["tasks"]["records"], 55);
    assert_eq!(json["wall_ns"], 207_734_823);
    assert_eq!(json["phases"]["transfer"]["count"], 16);
    assert_eq!(json["groups"][0]["group"], "random_sample");
    assert_eq!(json["workers"][1]["name"], "tcp://127.0.0.1:40049");
}

#[test]
fn input_errors_are_one_line_and_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.ndjson");
    taskscope()
        .arg("info")
        .arg(&missing)
        .assert()
        .code(1)
        .stdout("")
        .stderr(format!(
            "error: {}: cannot open: No such file or directory (os error 2)\n",
            missing.display()
        ));

    let garbage = dir.path().join("garbage.ndjson");
    std::fs::write(&garbage, "{\"kind\":\"header\"\n").unwrap();
    taskscope()
        .arg("info")
        .arg(&garbage)
        .assert()
        .code(1)
        .stderr(format!(
            "error: {}:1: not a taskscope trace header: invalid JSON: EOF while parsing an object\n",
            garbage.display()
        ));
}

#[test]
fn convert_round_trips_through_native_and_zstd() {
    let dir = tempfile::tempdir().unwrap();
    let native = dir.path().join("run.ndjson");
    let compressed = dir.path().join("run.ndjson.zst");
    convert(Path::new(FIXTURE), &native)
        .success()
        .stderr(format!(
            "wrote 55 records from {FIXTURE} (Dask task stream) to {}\n",
            native.display()
        ));
    taskscope()
        .arg("convert")
        .arg(&native)
        .arg("--output")
        .arg(&compressed)
        .assert()
        .success();
    assert_eq!(
        std::fs::read(&compressed).unwrap()[..4],
        [0x28, 0xB5, 0x2F, 0xFD]
    );
    let imported = read(Path::new(FIXTURE));
    assert_eq!(read(&native), imported);
    assert_eq!(read(&compressed), imported);

    // Every command reads every format: info agrees on all three.
    let infos: Vec<serde_json::Value> = [PathBuf::from(FIXTURE), native, compressed]
        .iter()
        .map(|path| {
            let out = taskscope()
                .args(["info", "--format", "json"])
                .arg(path)
                .output()
                .unwrap();
            let mut json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            json.as_object_mut().unwrap().remove("format");
            json
        })
        .collect();
    assert_eq!(infos[0], infos[1]);
    assert_eq!(infos[0], infos[2]);
}

#[test]
fn failed_convert_leaves_no_output() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.ndjson");
    let header = r#"{"kind":"header","format":"taskscope-trace","version":"1.0","producer":"t","origin_unix_ns":0,"cluster":{}}"#;
    std::fs::write(
        &bad,
        format!("{header}\n{{\"kind\":\"memory\",\"time\":\"soon\",\"worker\":0,\"managed\":1}}\n"),
    )
    .unwrap();
    let out = dir.path().join("out.ndjson");
    convert(&bad, &out).code(1).stderr(format!(
        "error: {}:2: field \"time\": expected non-negative integer, found string \"soon\"\n",
        bad.display()
    ));
    assert!(!out.exists());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);

    convert(&bad, &bad).code(1).stderr(format!(
        "error: {}: output is the input file; choose another -o path\n",
        bad.display()
    ));
}

#[test]
fn truncated_trace_is_read_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let native = dir.path().join("run.ndjson");
    convert(Path::new(FIXTURE), &native).success();
    let mut bytes = std::fs::read(&native).unwrap();
    bytes.truncate(bytes.len() - 30);
    std::fs::write(&native, &bytes).unwrap();
    let last_line = bytes.iter().filter(|&&b| b == b'\n').count() + 1;
    let dropped = bytes.len() - bytes.iter().rposition(|&b| b == b'\n').unwrap() - 1;
    taskscope()
        .args(["info", "--format", "json"])
        .arg(&native)
        .assert()
        .success()
        .stdout(predicate::str::contains("\"records\": 54"))
        .stderr(format!(
            "warning: {}:{last_line}: dropped {dropped} bytes at the end (the last line is \
             incomplete; was the recorder interrupted?)\n",
            native.display()
        ));
}

#[test]
fn the_readme_format_example_is_a_valid_trace() {
    let readme = include_str!("../README.md");
    let section = readme
        .split("## The native trace format")
        .nth(1)
        .expect("README has a format section");
    let example = section
        .split("```text\n")
        .nth(1)
        .and_then(|block| block.split("```").next())
        .expect("the format section has a text block");
    let trace =
        TraceReader::from_reader(std::io::Cursor::new(example.to_owned()), "README.md").unwrap();
    let (header, records) = trace.read_all().unwrap();
    assert_eq!(header.cluster.workers[0].threads, 2);
    assert_eq!(header.version, traces::FORMAT_VERSION);
    assert_eq!(records.len(), 4);
}

#[test]
fn run_lists_workloads() {
    let output = taskscope().args(["run", "--list"]).output().unwrap();
    assert!(output.status.success());
    let stdout = String::from_utf8(output.stdout).unwrap();
    let names: Vec<&str> = stdout
        .lines()
        .filter(|l| !l.starts_with(' '))
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "healthy",
            "skewed-groupby",
            "tiny-partitions",
            "large-argument",
            "compute-in-loop",
            "memory-pressure",
            "shuffle",
            "recompute"
        ]
    );
}

#[test]
fn run_rejects_unknown_workloads_and_bad_sizes() {
    taskscope()
        .args(["run", "sort"])
        .assert()
        .code(2)
        .stderr(predicate::str::starts_with(
            "error: invalid value 'sort' for '[WORKLOAD]': unknown workload; valid workloads: \
             healthy, skewed-groupby, tiny-partitions, large-argument, compute-in-loop, \
             memory-pressure, shuffle, recompute (or a .toml / .json graph file)",
        ));
    taskscope()
        .args(["run", "healthy", "--memory-limit", "2 gigs"])
        .assert()
        .code(2)
        .stderr(predicate::str::starts_with(
            "error: invalid value '2 gigs' for '--memory-limit <MEMORY_LIMIT>': invalid size \
             \"2 gigs\": expected a number with an optional unit (B, kB, MB, GB, TB, KiB, MiB, \
             GiB, TiB), e.g. 2GiB",
        ));
    taskscope()
        .args(["run", "shuffle", "--bandwidth", "1GB"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "invalid bandwidth \"1GB\": expected a size per second, e.g. 1GB/s",
        ));
    taskscope()
        .args(["run", "shuffle", "--workers", "0"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--workers"));
}

#[test]
fn run_records_a_trace_and_prints_its_summary() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("skew.ndjson.zst");
    let output = taskscope()
        .args(["run", "skewed-groupby", "--scale", "0.25", "--workers", "3"])
        .args([
            "--memory-limit",
            "1GiB",
            "--bandwidth",
            "2GB/s",
            "--latency",
            "500us",
        ])
        .arg("-o")
        .arg(&trace)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(stdout.contains("groupby-chunk"), "{stdout}");
    assert!(stdout.contains("workers      3 (3 threads)"), "{stdout}");
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.starts_with("ran skewed-groupby in "), "{stderr}");
    let (header, records) = read(&trace);
    assert_eq!(header.cluster.workers.len(), 3);
    assert_eq!(header.cluster.workers[0].memory_limit, Some(1 << 30));
    assert!(header.producer.starts_with("taskscope-engine"));
    assert!(records.iter().any(|r| matches!(r, Record::Memory(_))));
}

#[test]
fn run_executes_a_graph_file() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("etl.ndjson");
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/etl.toml");
    taskscope()
        .args(["run", example, "-o"])
        .arg(&trace)
        .assert()
        .success()
        .stdout(predicate::str::contains("read-parquet"));
    let (_, records) = read(&trace);
    let tasks = records
        .iter()
        .filter(|r| matches!(r, Record::Task(_)))
        .count();
    assert_eq!(tasks, 24 + 24 + 6 + 1 + 1);

    let missing = dir.path().join("missing.toml");
    taskscope()
        .arg("run")
        .arg(&missing)
        .assert()
        .code(1)
        .stderr(format!(
            "error: {}: cannot read: No such file or directory (os error 2)\n",
            missing.display()
        ));
}

#[test]
fn analyze_reports_and_gates() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("skew.ndjson.zst");
    taskscope()
        .args(["run", "skewed-groupby", "-o"])
        .arg(&trace)
        .assert()
        .success();

    let output = taskscope()
        .args(["analyze", "--format", "json"])
        .arg(&trace)
        .output()
        .unwrap();
    assert!(output.status.success());
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let top = &json["findings"][0];
    assert_eq!(top["rule"], "skew");
    for field in [
        "severity",
        "impact_seconds",
        "title",
        "scope",
        "evidence",
        "advice",
    ] {
        assert!(!top[field].is_null(), "missing {field}: {top}");
    }
    assert_eq!(top["scope"]["group"], "groupby-chunk");
    assert!(top["evidence"]["duration_ratio"].as_f64().unwrap() > 10.0);
    assert!(json["summary"]["wall_seconds"].as_f64().unwrap() > 0.5);
    assert!(json["critical_path"]["tasks"].as_u64().unwrap() >= 3);
    // Ranked by severity, then by impact (how severe the straggler grades moves with the
    // machine's load: a busy one stretches its short tasks and its long one differently).
    const SEVERITIES: [&str; 5] = ["none", "low", "moderate", "severe", "critical"];
    let ranks: Vec<(usize, f64)> = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let severity = f["severity"].as_str().unwrap();
            let rank = SEVERITIES.iter().position(|s| *s == severity).unwrap();
            (rank, f["impact_seconds"].as_f64().unwrap())
        })
        .collect();
    assert!(
        ranks
            .windows(2)
            .all(|w| w[0].0 > w[1].0 || (w[0].0 == w[1].0 && w[0].1 >= w[1].1)),
        "{ranks:?}"
    );

    // The CI gate: 3 at or above the threshold, 0 below it.
    taskscope()
        .args(["analyze", "--fail-on", "low"])
        .arg(&trace)
        .assert()
        .code(3)
        .stdout(predicate::str::contains("skew"));
    taskscope()
        .args(["analyze", "--fail-on", "critical"])
        .arg(&trace)
        .assert()
        .success();
    taskscope()
        .args(["analyze", "--fail-on", "bad"])
        .arg(&trace)
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "invalid severity \"bad\": expected none, low, moderate, severe or critical",
        ));
    taskscope()
        .args(["analyze", "--format", "markdown"])
        .arg(&trace)
        .assert()
        .success()
        .stdout(predicate::str::is_match(r"\| 1 \| (moderate|severe) \| `skew` \|").unwrap());
    // Text has no colour codes when stdout is not a terminal.
    taskscope()
        .arg("analyze")
        .arg(&trace)
        .assert()
        .success()
        .stdout(predicate::str::contains("\x1b[").not());
}

#[test]
fn analyze_reads_dask_task_streams() {
    let output = taskscope()
        .args(["analyze", "--format", "json", FIXTURE])
        .output()
        .unwrap();
    assert!(output.status.success());
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["summary"]["tasks"], 55);
    assert!(
        json["critical_path"].is_null(),
        "task streams carry no dependencies"
    );
}

/// A recorded run of `workload` in `dir`.
fn recorded(dir: &Path, workload: &str, fix: bool) -> PathBuf {
    let trace = dir.join(format!("{workload}-{fix}.ndjson.zst"));
    let mut cmd = taskscope();
    cmd.args(["run", workload, "-o"]).arg(&trace);
    if fix {
        cmd.arg("--fix");
    }
    cmd.assert().success();
    trace
}

#[test]
fn flamegraphs_are_svg_with_the_groups() {
    let dir = tempfile::tempdir().unwrap();
    let before = recorded(dir.path(), "skewed-groupby", false);
    let after = recorded(dir.path(), "skewed-groupby", true);

    let folded = taskscope()
        .args(["flamegraph", "--folded"])
        .arg(&before)
        .output()
        .unwrap();
    assert!(folded.status.success());
    let text = String::from_utf8(folded.stdout).unwrap();
    let stacks: Vec<(&str, u64)> = text
        .lines()
        .map(|l| {
            let (stack, weight) = l.rsplit_once(' ').unwrap();
            (stack, weight.parse().unwrap())
        })
        .collect();
    let chunk = stacks
        .iter()
        .find(|(s, _)| *s == "groupby-chunk;compute")
        .unwrap();
    // The trace's compute time of the group, in microseconds: 23 partitions of 40 ms of CPU and
    // one of 800 ms, longer on a machine whose cores other tests share.
    let (_, records) = TraceReader::open(&before).unwrap().read_all().unwrap();
    let compute_ns: u64 = records
        .iter()
        .filter_map(|r| match r {
            Record::Task(t) if t.group == "groupby-chunk" => {
                Some(t.time_in(traces::Action::Compute))
            }
            _ => None,
        })
        .sum();
    assert!(compute_ns >= 1_720_000_000, "{compute_ns}");
    assert!(
        chunk.1.abs_diff(compute_ns / 1000) <= 24,
        "{chunk:?} vs {compute_ns} ns"
    );

    let by_worker = taskscope()
        .args(["flamegraph", "--folded", "--by", "worker"])
        .arg(&before)
        .output()
        .unwrap();
    let text = String::from_utf8(by_worker.stdout).unwrap();
    assert!(
        text.lines().all(|l| l.starts_with("inproc://worker-")),
        "{text}"
    );

    for args in [
        vec![before.clone()],
        vec!["--diff".into(), before.clone(), after.clone()],
    ] {
        let svg = dir.path().join("out.svg");
        taskscope()
            .arg("flamegraph")
            .args(&args)
            .arg("-o")
            .arg(&svg)
            .assert()
            .success();
        let text = std::fs::read_to_string(&svg).unwrap();
        let options = roxmltree::ParsingOptions {
            allow_dtd: true,
            ..roxmltree::ParsingOptions::default()
        };
        let doc = roxmltree::Document::parse_with_options(&text, options).expect("well-formed SVG");
        assert_eq!(doc.root_element().tag_name().name(), "svg");
        for group in ["groupby-chunk", "read-csv", "groupby-agg"] {
            assert!(text.contains(group), "{group} missing from {args:?}");
        }
    }
}

#[test]
fn chrome_export_has_every_event_type() {
    let dir = tempfile::tempdir().unwrap();
    let trace = recorded(dir.path(), "shuffle", false);
    let out = dir.path().join("trace.json");
    taskscope()
        .args(["export", "chrome"])
        .arg(&trace)
        .arg("-o")
        .arg(&out)
        .assert()
        .success()
        .stderr(predicate::str::starts_with("wrote "));
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    let events = json["traceEvents"].as_array().unwrap();
    let phases: std::collections::BTreeSet<&str> =
        events.iter().map(|e| e["ph"].as_str().unwrap()).collect();
    for ph in ["M", "X", "C", "s", "f", "i"] {
        assert!(phases.contains(ph), "no {ph} event: {phases:?}");
    }
    let names: Vec<&str> = events
        .iter()
        .filter(|e| e["ph"] == "M" && e["name"] == "thread_name")
        .map(|e| e["args"]["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"thread 0"));
    let transfer = events
        .iter()
        .find(|e| e["ph"] == "X" && e["cat"] == "transfer")
        .unwrap();
    assert!(transfer["dur"].as_f64().unwrap() > 0.0);
    assert!(transfer["args"]["bytes"].as_u64().unwrap() > 0);
    // Flows pair up.
    let starts = events.iter().filter(|e| e["ph"] == "s").count();
    let ends = events.iter().filter(|e| e["ph"] == "f").count();
    assert_eq!(starts, ends);
}

#[test]
fn run_names_an_unwritable_trace() {
    taskscope()
        .args(["run", "healthy", "-o", "/nonexistent/dir/run.ndjson"])
        .assert()
        .code(1)
        .stderr(
            "error: /nonexistent/dir/run.ndjson: cannot write: No such file or directory (os \
             error 2)\n",
        );
}

#[test]
fn every_command_reads_a_dask_performance_report() {
    let report = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/traces/tests/data/report/report.html"
    );
    let output = taskscope()
        .args(["analyze", "--format", "json", report])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["summary"]["format"], "Dask performance report");
    assert_eq!(json["summary"]["tasks"], 72);
    taskscope()
        .args(["info", report])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "tasks        72 (72 ok) in 9 groups",
        ));
}
