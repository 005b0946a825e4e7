//! Every kind of bad input gets its exact one-line error (or, for a truncated last line, a
//! warning and every complete record).

use std::path::PathBuf;

use traces::{Event, EventKind, Record, TraceReader, TraceWriter, synthetic};

const HEADER: &str = r#"{"kind":"header","format":"taskscope-trace","version":"1.0","producer":"test","origin_unix_ns":0,"cluster":{"workers":[{"id":0,"name":"w0","threads":1}]}}"#;
const TASK: &str = r#"{"kind":"task","key":"inc-1","group":"inc","worker":0,"thread":0,"status":"ok","nbytes":28,"phases":[{"action":"compute","start":10,"stop":20}]}"#;

struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    fn new() -> Scratch {
        Scratch {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn file(&self, name: &str, content: &[u8]) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, content).unwrap();
        path
    }
}

/// The error from reading `content` as a file named `name`, with `{path}` standing for its path.
fn read_error(name: &str, content: &[u8]) -> String {
    let scratch = Scratch::new();
    let path = scratch.file(name, content);
    let result = TraceReader::open(&path).and_then(TraceReader::read_all);
    let err = result.expect_err("the input is invalid").to_string();
    err.replace(&path.display().to_string(), "{path}")
}

fn lines(lines: &[&str]) -> Vec<u8> {
    let mut out = lines.join("\n");
    out.push('\n');
    out.into_bytes()
}

#[test]
fn empty_file() {
    assert_eq!(
        read_error("t.ndjson", b""),
        "{path}: empty file: expected a taskscope trace, a Dask task stream or a Dask \
         performance report"
    );
    assert_eq!(
        read_error("t.ndjson", b"  \n\n"),
        "{path}: empty file: expected a taskscope trace, a Dask task stream or a Dask \
         performance report"
    );
}

#[test]
fn garbage() {
    assert_eq!(
        read_error("t.ndjson", b"hello world\n"),
        "{path}: not a trace: expected a taskscope trace (NDJSON starting with a header object), \
         a Dask task stream (a JSON list) or a Dask performance report (HTML)"
    );
    assert_eq!(
        read_error("t.ndjson", b"{nope\n"),
        "{path}:1: not a taskscope trace header: invalid JSON: key must be a string (column 2)"
    );
    assert_eq!(
        read_error("t.ndjson", br#"{"kind":"task"}"#),
        "{path}:1: not a taskscope trace: line 1 must be the header \
         ({\"kind\":\"header\",\"format\":\"taskscope-trace\",…})"
    );
    assert_eq!(
        read_error("t.ndjson", &lines(&[HEADER, "???"])),
        "{path}:2: invalid JSON: expected value (column 1)"
    );
}

#[test]
fn wrong_type_in_a_field() {
    let bad = TASK.replace(r#""start":10"#, r#""start":"10""#);
    assert_eq!(
        read_error("t.ndjson", &lines(&[HEADER, TASK, &bad])),
        "{path}:3: field \"phases[0].start\": expected non-negative integer, found string \"10\""
    );
    let negative = TASK.replace(r#""nbytes":28"#, r#""nbytes":-1"#);
    assert_eq!(
        read_error("t.ndjson", &lines(&[HEADER, &negative])),
        "{path}:2: field \"nbytes\": expected non-negative integer, found integer `-1`"
    );
    let action = TASK.replace(r#""action":"compute""#, r#""action":7"#);
    assert_eq!(
        read_error("t.ndjson", &lines(&[HEADER, &action])),
        "{path}:2: field \"phases[0].action\": expected string or map, found integer `7`"
    );
    assert_eq!(
        read_error(
            "t.ndjson",
            &lines(&[
                HEADER,
                r#"{"kind":"memory","time":1,"worker":0,"managed":true}"#
            ])
        ),
        "{path}:2: field \"managed\": expected non-negative integer, found boolean `true`"
    );
}

#[test]
fn missing_required_field() {
    let bad = TASK.replace(r#","stop":20"#, "");
    assert_eq!(
        read_error("t.ndjson", &lines(&[HEADER, &bad])),
        "{path}:2: missing required field \"phases[0].stop\""
    );
    let no_worker = TASK.replace(r#""worker":0,"#, "");
    assert_eq!(
        read_error("t.ndjson", &lines(&[HEADER, &no_worker])),
        "{path}:2: missing required field \"worker\""
    );
    assert_eq!(
        read_error("t.ndjson", &lines(&[HEADER, r#"{"time":1}"#])),
        "{path}:2: missing required field \"kind\""
    );
    let no_threads = HEADER.replace(r#","threads":1"#, "");
    assert_eq!(
        read_error("t.ndjson", &lines(&[&no_threads])),
        "{path}:1: missing required field \"cluster.workers[0].threads\""
    );
}

#[test]
fn newer_major_version_is_refused() {
    let newer = HEADER.replace(r#""version":"1.0""#, r#""version":"2.0""#);
    assert_eq!(
        read_error("t.ndjson", &lines(&[&newer, TASK])),
        "{path}: trace format version 2.0 is newer than this build of taskscope reads (1.x); \
         upgrade taskscope"
    );
}

#[test]
fn newer_minor_version_and_unknown_fields_are_read() {
    let scratch = Scratch::new();
    let newer = HEADER.replace(r#""version":"1.0""#, r#""version":"1.7","future":{"x":1}"#);
    let task = TASK.replace(r#""nbytes":28"#, r#""nbytes":28,"gpu_time":5"#);
    let path = scratch.file("t.ndjson", &lines(&[&newer, &task]));
    let (_, records) = TraceReader::open(&path).unwrap().read_all().unwrap();
    assert_eq!(records.len(), 1);
}

/// What a newer 1.x writer may add: record kinds, event types, statuses and phase actions this
/// build does not know are skipped (a phase alone when only its action is new), with one
/// warning, by both readers; the 1.1 additions are read.
#[test]
fn unknown_kinds_and_values_are_skipped_with_one_warning() {
    let scratch = Scratch::new();
    let newer = HEADER.replace(r#""version":"1.0""#, r#""version":"1.9""#);
    let new_action = TASK.replace(
        r#""phases":["#,
        r#""phases":[{"action":"gpu-copy","start":1,"stop":2},"#,
    );
    let new_status = TASK.replace(r#""status":"ok""#, r#""status":"skipped""#);
    let content = lines(&[
        &newer,
        r#"{"kind":"profile","time":3,"stacks":[]}"#,
        TASK,
        r#"{"kind":"event","time":4,"type":"worker-renamed","worker":0}"#,
        &new_action,
        &new_status,
        r#"{"kind":"memory","time":5,"worker":0,"managed":1,"cpu":1.5}"#,
        r#"{"kind":"group-metrics","time":6,"group":"inc","metrics":{"execute/thread-cpu/seconds":0.5}}"#,
        r#"{"kind":"event","time":7,"type":"warning","message":"Unmanaged memory use is high","worker":0,"source":"distributed.worker.memory"}"#,
        r#"{"kind":"profile","time":8,"stacks":[]}"#,
    ]);
    let path = scratch.file("t.ndjson", &content);
    let expected = format!(
        "{}:2: skipped 5 records or phases this reader does not know (event type \
         \"worker-renamed\" ×1, kind \"profile\" ×2, phase action \"gpu-copy\" ×1, task \
         status \"skipped\" ×1); written by a newer taskscope?",
        path.display()
    );
    let mut trace = TraceReader::open(&path).unwrap();
    let records: Vec<Record> = (&mut trace).map(Result::unwrap).collect();
    assert_eq!(trace.warnings(), std::slice::from_ref(&expected));
    assert_eq!(records.len(), 5, "{records:#?}");
    let Record::Task(task) = &records[1] else {
        panic!("{records:#?}")
    };
    assert_eq!(
        task.phases.len(),
        1,
        "the unknown phase is dropped, the task kept"
    );
    assert!(matches!(&records[2], Record::Memory(m) if m.cpu == Some(1.5)));
    assert!(
        matches!(&records[3], Record::GroupMetrics(g) if g.get("execute/thread-cpu/seconds") == 0.5)
    );
    assert!(matches!(
        &records[4],
        Record::Event(Event { kind: EventKind::Warning { worker: Some(0), source: Some(s), .. }, .. })
            if s == "distributed.worker.memory"
    ));
    let (_, warnings) = TraceReader::open(&path)
        .unwrap()
        .par_fold(2, || 0usize, |n, _| *n += 1)
        .unwrap();
    assert_eq!(warnings, [expected]);
}

#[test]
fn truncated_last_line_keeps_complete_records() {
    let scratch = Scratch::new();
    let mut content = lines(&[HEADER, TASK, TASK]);
    content.extend_from_slice(&TASK.as_bytes()[..40]);
    let path = scratch.file("t.ndjson", &content);
    let mut trace = TraceReader::open(&path).unwrap();
    let records: Vec<Record> = (&mut trace).map(Result::unwrap).collect();
    assert_eq!(records.len(), 2);
    assert_eq!(
        trace.warnings(),
        [format!(
            "{}:4: dropped 40 bytes at the end (the last line is incomplete; was the recorder \
             interrupted?)",
            path.display()
        )]
    );
}

#[test]
fn a_last_line_without_newline_is_kept() {
    let scratch = Scratch::new();
    let content = format!("{HEADER}\n{TASK}\n{TASK}");
    let path = scratch.file("t.ndjson", content.as_bytes());
    let mut trace = TraceReader::open(&path).unwrap();
    assert_eq!((&mut trace).map(Result::unwrap).count(), 2);
    assert!(trace.warnings().is_empty());
}

#[test]
fn truncated_zstd_stream_keeps_what_decodes() {
    let mut writer =
        TraceWriter::new(Vec::new(), "t.ndjson.zst", &synthetic::header(2, 1), true).unwrap();
    for record in synthetic::records(2_000, 2, 1) {
        writer.write(&record).unwrap();
    }
    // A recorder that flushed part-way and then crashed: the frame is never finished.
    writer.flush().unwrap();
    let flushed = writer.finish().unwrap();
    let cut = &flushed[..flushed.len() * 3 / 4];
    let scratch = Scratch::new();
    let path = scratch.file("t.ndjson.zst", cut);
    let mut trace = TraceReader::open(&path).unwrap();
    let records: Vec<Record> = (&mut trace).map(Result::unwrap).collect();
    assert!(records.len() > 1_000, "kept {} records", records.len());
    assert!(records.len() < 2_002);
    assert_eq!(trace.warnings().len(), 1);
    assert!(
        trace.warnings()[0].contains("dropped"),
        "{:?}",
        trace.warnings()
    );
}

#[test]
fn non_existent_file() {
    let err = TraceReader::open("/nonexistent/run.ndjson")
        .err()
        .unwrap()
        .to_string();
    assert_eq!(
        err,
        "/nonexistent/run.ndjson: cannot open: No such file or directory (os error 2)"
    );
}

#[test]
fn dask_task_stream_errors_name_the_record_and_field() {
    assert_eq!(
        read_error(
            "ts.json",
            br#"[{"key": "x", "worker": "w", "startstops": [{"action": "compute", "start": 1, "stop": 2}]},
{"key": "y", "worker": "w", "startstops": [{"action": "compute", "start": "a", "stop": 2}]}]"#
        ),
        "{path}:2: task-stream record 1: field \"startstops[0].start\": expected number, found string \"a\""
    );
    assert_eq!(
        read_error("ts.json", br#"[{"key": "x", "startstops": []}]"#),
        "{path}:1: task-stream record 0: missing required field \"worker\""
    );
    assert_eq!(
        read_error("ts.json", b"[{\"key\": \"x\",\n"),
        "{path}:2: invalid JSON: EOF while parsing a value"
    );
    assert_eq!(
        read_error("ts.json", br#"[{"key": 5, "worker": "w"}]"#),
        "{path}:1: task-stream record 0: field \"key\": expected a string or an array (a tuple key), found integer `5`"
    );
}

#[test]
fn an_overlong_line_is_refused_without_reading_it_all() {
    // 70 MiB without a newline, compressed to a few KiB: a decompression bomb for a naive reader.
    let mut writer = zstd::Encoder::new(Vec::new(), 3).unwrap();
    std::io::Write::write_all(&mut writer, format!("{HEADER}\n").as_bytes()).unwrap();
    let chunk = vec![b' '; 1 << 20];
    for _ in 0..70 {
        std::io::Write::write_all(&mut writer, &chunk).unwrap();
    }
    let bytes = writer.finish().unwrap();
    assert_eq!(
        read_error("bomb.ndjson.zst", &bytes),
        "{path}:2: read error: line longer than 64 MiB"
    );
}
