//! A real Dask performance report (`tests/data/report/`, recorded with `record_report.py`
//! together with the task stream of the same run) imports as that task stream.

use std::collections::BTreeMap;

use traces::{Action, Record, SourceFormat, TaskRecord, TraceReader};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/report");

fn tasks(file: &str) -> (traces::Header, Vec<TaskRecord>) {
    let (header, records) = TraceReader::open(format!("{DATA}/{file}"))
        .unwrap()
        .read_all()
        .unwrap();
    let tasks = records
        .into_iter()
        .map(|r| match r {
            Record::Task(t) => t,
            other => panic!("only tasks expected, got {other:?}"),
        })
        .collect();
    (header, tasks)
}

#[test]
fn the_report_is_detected_and_read() {
    let trace = TraceReader::open(format!("{DATA}/report.html")).unwrap();
    assert_eq!(
        trace.format(),
        SourceFormat::DaskPerformanceReport { compressed: false }
    );
    let (header, tasks) = tasks("report.html");
    // Facts from FORMAT.md: 89 rows = 72 computes + 17 transfers, on 2 worker threads.
    assert_eq!(tasks.len(), 72);
    let mut actions: BTreeMap<Action, usize> = BTreeMap::new();
    for phase in tasks.iter().flat_map(|t| &t.phases) {
        *actions.entry(phase.action).or_default() += 1;
    }
    assert_eq!(
        actions,
        BTreeMap::from([(Action::Transfer, 17), (Action::Compute, 72)])
    );
    let workers: Vec<(&str, u32)> = header
        .cluster
        .workers
        .iter()
        .map(|w| (w.name.as_str(), w.threads))
        .collect();
    assert_eq!(
        workers,
        [("tcp://127.0.0.1:36019", 1), ("tcp://127.0.0.1:43691", 1)]
    );
    let mut groups: BTreeMap<&str, usize> = BTreeMap::new();
    for task in &tasks {
        *groups.entry(task.group.as_str()).or_default() += 1;
    }
    assert_eq!(groups["random_sample"], 24);
    assert_eq!(groups["mean_chunk"], 25);
    assert_eq!(groups["finalize-hlgfinalizecompute"], 1);
}

#[test]
fn the_report_matches_the_task_stream_of_the_same_run() {
    let (report_header, report) = tasks("report.html");
    let (stream_header, stream) = tasks("task_stream.json");
    assert_eq!(report.len(), stream.len());
    // Both are sorted by start; origins agree to the microsecond.
    assert!((report_header.origin_unix_ns - stream_header.origin_unix_ns).abs() < 1_000);
    for (r, s) in report.iter().zip(&stream) {
        assert_eq!(r.key, s.key);
        assert_eq!(r.group, s.group);
        assert_eq!(
            report_header.cluster.workers[r.worker as usize].name,
            stream_header.cluster.workers[s.worker as usize].name
        );
        assert_eq!(r.phases.len(), s.phases.len(), "{}", r.key);
        for (rp, sp) in r.phases.iter().zip(&s.phases) {
            assert_eq!(rp.action, sp.action);
            // Reports keep a midpoint and a duration in ms: sub-microsecond rounding only.
            assert!(
                rp.start.abs_diff(sp.start) < 1_000,
                "{} {rp:?} {sp:?}",
                r.key
            );
            assert!(rp.stop.abs_diff(sp.stop) < 1_000, "{} {rp:?} {sp:?}", r.key);
        }
        // What a report does not record.
        assert_eq!(r.nbytes, 0);
        assert!(r.phases.iter().all(|p| p.peer.is_none()));
    }
}

fn read_error(html: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("report.html");
    std::fs::write(&path, html).unwrap();
    let err = TraceReader::open(&path)
        .and_then(TraceReader::read_all)
        .unwrap_err()
        .to_string();
    err.replace(&path.display().to_string(), "{path}")
}

#[test]
fn html_without_a_task_stream_or_with_broken_json() {
    assert_eq!(
        read_error("<!DOCTYPE html>\n<html><body>hello</body></html>\n"),
        "{path}: looks like HTML but holds no Dask task stream (the performance_report of a run \
         that computed something has one)"
    );
    assert_eq!(
        read_error(
            "<html>\n<script type=\"application/json\" id=\"x\">\n{\"a\": [1, 2\n</script>\n</html>"
        ),
        "{path}:4: performance report's embedded document: invalid JSON: EOF while parsing a list"
    );
    let bad_thread = r#"<html><script type="application/json" id="x">{"d":{"type":"object","name":"ColumnDataSource","attributes":{"data":{"type":"map","entries":[["start",[1.0]],["duration",[1.0]],["key",["x-1"]],["name",["x"]],["worker_thread",["tcp://w:1"]]]}}}}</script></html>"#;
    assert_eq!(
        read_error(bad_thread),
        "{path}:1: performance report task stream: row 0: column \"worker_thread\": expected \
         WORKER-THREAD, found \"tcp://w:1\""
    );
}

/// 100,000 small JSON scripts, one per line, then `last` on the next line.
fn many_scripts(last: &str) -> String {
    let mut html = String::from("<!DOCTYPE html>\n<html><body>\n");
    for i in 0..100_000 {
        html.push_str(&format!(
            "<script type=\"application/json\" id=\"s{i:06}\">{{}}</script>\n"
        ));
    }
    html.push_str(last);
    html.push_str("\n</body></html>\n");
    html
}

#[test]
fn a_page_of_100000_scripts_is_read_in_one_pass() {
    // 4.4 MB; counting lines from the top of the file for every script took minutes (issue
    // 11). `cargo run --release -- info` on it: see the Performance section of the README.
    let stream = r#"<script type="application/json" id="x">{"d":{"type":"object","name":"ColumnDataSource","attributes":{"data":{"type":"map","entries":[["start",[1.5, 4.0]],["duration",[1.0, 2.0]],["key",["('x-1', 0)", "('x-1', 0)"]],["name",["transfer-x", "x"]],["worker_thread",["tcp://w:1-7", "tcp://w:1-7"]]]}}}}</script>"#;
    let html = many_scripts(stream);
    assert!(html.len() > 4_400_000, "{}", html.len());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("report.html");
    std::fs::write(&path, &html).unwrap();
    let (_, records) = TraceReader::open(&path).unwrap().read_all().unwrap();
    assert_eq!(records.len(), 1);
    let traces::Record::Task(task) = &records[0] else {
        panic!("{records:?}")
    };
    assert_eq!(task.phases.len(), 2);
    assert_eq!(task.time_in(traces::Action::Compute), 2_000_000);

    // Line numbers still count from the top.
    let broken =
        many_scripts("<script type=\"application/json\" id=\"y\">\n{\"a\": [1,\n</script>");
    assert_eq!(
        read_error(&broken),
        "{path}:100005: performance report's embedded document: invalid JSON: EOF while parsing a value"
    );
}
