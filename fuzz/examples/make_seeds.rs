//! Writes the seed inputs in `fuzz/seeds/` (committed; copy them into `fuzz/corpus/<target>/`
//! or pass the directory to `cargo fuzz run`, see README.md).
//!
//!     cargo run --manifest-path fuzz/Cargo.toml --example make_seeds
//!
//! Native seeds start with the mode byte `native_reader` consumes (see
//! `common::native_input`: 0 as is, 1 the harness prepends its header line, 0bxxxxxx11 also
//! pads up to just before the read-ahead chunk boundary).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use traces::{
    Action, Cluster, Event, EventKind, FloatBits, Header, Key, KeyPart, MemoryFractions,
    MemorySample, Phase, Record, TaskRecord, TaskStatus, TraceReader, TraceWriter, WorkerSpec,
};

#[path = "../fuzz_targets/common.rs"]
mod common;

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("seeds");
    let native = root.join("native_reader");
    let dask = root.join("dask_task_stream");
    fs::create_dir_all(&native).unwrap();
    fs::create_dir_all(&dask).unwrap();

    let header = header();
    let records = records();
    let plain = write(&header, &records, false);
    let zstd = write(&header, &records, true);
    // Only the records: the harness supplies the header (mode 1).
    let body = &plain[plain.iter().position(|&b| b == b'\n').unwrap() + 1..];
    // A recorder killed mid-line: the reader keeps what came before, with a warning.
    let truncated = &plain[..plain.len() - 25];

    seed(&native, "trace.ndjson", 0, &plain);
    seed(&native, "trace.ndjson.zst", 0, &zstd);
    seed(&native, "records-only.ndjson", 1, body);
    seed(&native, "truncated.ndjson", 0, truncated);
    seed(&native, "reordered.ndjson", 1, REORDERED.as_bytes());
    // Mode 0b101_11: header, blank lines, then the records from 20 bytes before the read-ahead
    // thread's first chunk boundary, so the first record line is split across two chunks.
    seed(&native, "records-at-chunk-boundary.ndjson", 0b101_11, body);

    let fixture = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../traces/tests/data/dask_task_stream.json");
    fs::copy(&fixture, dask.join("recorded.json")).unwrap();
    fs::write(dask.join("small.json"), SMALL_DASK_STREAM).unwrap();

    observe_seeds(&root.join("observe_decoder"), &header, &records);

    // Every seed must read completely, or it teaches the fuzzer nothing past the error.
    for dir in [&native, &dask] {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let mut data = fs::read(&path).unwrap();
            if dir == &native {
                data = common::native_input(&data).unwrap();
            }
            let read = common::read(data).unwrap_or_else(|| panic!("{}: does not read", path.display()));
            common::check_round_trip(&read.header, &read.records);
            println!(
                "{}: {} bytes, {}, {} records, {} warnings",
                path.display(),
                fs::metadata(&path).unwrap().len(),
                read.format.describe(),
                read.records.len(),
                read.warnings.len()
            );
        }
    }
}

/// `observe_decoder` seeds: length-delimited `v1::Update`s as the server sends them — a
/// snapshot (header and records), live records, a task whose dependencies arrive in pieces
/// (a small batch budget splits them), and progress.
fn observe_seeds(dir: &Path, header: &Header, records: &[Record]) {
    use prost::Message;
    use proto::{RecordsBatcher, v1};

    fs::create_dir_all(dir).unwrap();
    let update = |kind| v1::Update { dropped: 0, kind: Some(kind) };
    let mut snapshot = Vec::new();
    let mut batcher = RecordsBatcher::new(proto::BATCH_BYTES);
    for record in records {
        batcher.push(record);
    }
    let batches = batcher.finish();
    for (i, batch) in batches.iter().enumerate() {
        let kind = v1::update::Kind::Snapshot(v1::Snapshot {
            header: (i == 0).then(|| header.into()),
            records: Some(batch.clone()),
            last: i + 1 == batches.len(),
        });
        update(kind).encode_length_delimited(&mut snapshot).unwrap();
    }
    fs::write(dir.join("snapshot.bin"), &snapshot).unwrap();

    let mut live = Vec::new();
    for batch in &batches {
        update(v1::update::Kind::Records(batch.clone()))
            .encode_length_delimited(&mut live)
            .unwrap();
    }
    fs::write(dir.join("live.bin"), &live).unwrap();

    // A task with many dependencies, over a tiny budget: continuation pieces.
    let mut wide = Vec::new();
    if let Some(Record::Task(task)) = records.iter().find(|r| matches!(r, Record::Task(_))) {
        let mut task = task.clone();
        task.deps = (0..40).map(|i| Key::from(format!("dep-{i}").as_str())).collect();
        let mut batcher = RecordsBatcher::new(64);
        batcher.push(&Record::Task(task));
        for batch in batcher.finish() {
            update(v1::update::Kind::Records(batch))
                .encode_length_delimited(&mut wide)
                .unwrap();
        }
    }
    fs::write(dir.join("continued-deps.bin"), &wide).unwrap();

    let progress = v1::Progress::default();
    let mut bytes = Vec::new();
    update(v1::update::Kind::Progress(progress))
        .encode_length_delimited(&mut bytes)
        .unwrap();
    fs::write(dir.join("progress.bin"), &bytes).unwrap();
}

fn seed(dir: &Path, name: &str, mode: u8, trace: &[u8]) {
    let mut data = vec![mode];
    data.extend_from_slice(trace);
    fs::write(dir.join(name), data).unwrap();
}

fn write(header: &Header, records: &[Record], compress: bool) -> Vec<u8> {
    let mut writer = TraceWriter::new(Vec::new(), "seed", header, compress).unwrap();
    for record in records {
        writer.write(record).unwrap();
    }
    let bytes = writer.finish().unwrap();
    // Sanity: what we wrote reads back.
    let (_, again) = TraceReader::from_reader(std::io::Cursor::new(bytes.clone()), "seed")
        .unwrap()
        .read_all()
        .unwrap();
    assert_eq!(again, records);
    bytes
}

fn header() -> Header {
    Header::new(
        "taskscope fuzz seed",
        1_795_613_463_000_000_000,
        Cluster {
            workers: vec![
                WorkerSpec {
                    id: 0,
                    name: "tcp://127.0.0.1:35717".into(),
                    threads: 2,
                    memory_limit: Some(4_000_000_000),
                    resources: BTreeMap::new(),
                    host: Some("127.0.0.1".into()),
                    host_cores: Some(8),
                },
                WorkerSpec {
                    id: 1,
                    name: "tcp://127.0.0.1:40049".into(),
                    threads: 1,
                    memory_limit: None,
                    resources: BTreeMap::from([("GPU".to_string(), 1.0)]),
                    host: None,
                    host_cores: None,
                },
            ],
            memory: MemoryFractions::default(),
        },
    )
}

fn records() -> Vec<Record> {
    let key_a = Key::Tuple(vec![
        KeyPart::Str("random_sample-b193125ad1291ab42f30576ab87d1fc1".into()),
        KeyPart::Int(3),
        KeyPart::Int(-2),
    ]);
    let key_b = Key::Tuple(vec![
        KeyPart::Tuple(vec![KeyPart::Str("x".into()), KeyPart::Float(FloatBits::new(2.5))]),
        KeyPart::Int(0),
    ]);
    let phase = |action, start, stop| Phase { action, start, stop, bytes: None, peer: None };
    let mut records = vec![
        Record::Event(Event {
            time: 0,
            kind: EventKind::GraphSubmitted { tasks: 3, client: Some("Client-1".into()) },
        }),
        Record::Task(TaskRecord {
            key: key_a.clone(),
            group: String::new(),
            worker: 0,
            thread: 1,
            status: TaskStatus::Ok,
            nbytes: 2_000_000,
            inline_bytes: 0,
            working_bytes: 0,
            resources: Default::default(),
            restricted_to: Vec::new(),
            deps: vec![],
            attempt: 1,
            error: None,
            phases: vec![phase(Action::Queued, 10, 20), phase(Action::Compute, 20, 7_000)],
        }),
        Record::Memory(MemorySample {
            time: 7_500,
            worker: 0,
            managed: 2_000_000,
            unmanaged: 50_000_000,
            spilled: 0,
            cpu: Some(0.9),
        }),
        Record::Task(TaskRecord {
            key: key_b,
            group: String::new(),
            worker: 1,
            thread: 0,
            status: TaskStatus::Ok,
            nbytes: 8,
            inline_bytes: 1_000,
            working_bytes: 0,
            resources: Default::default(),
            restricted_to: Vec::new(),
            deps: vec![key_a.clone()],
            attempt: 2,
            error: None,
            phases: vec![
                Phase {
                    action: Action::Transfer,
                    start: 7_100,
                    stop: 9_000,
                    bytes: Some(2_000_000),
                    peer: Some(0),
                },
                Phase { bytes: Some(2_000_000), ..phase(Action::Deserialize, 9_000, 9_500) },
                phase(Action::Compute, 9_500, 12_000),
                Phase { bytes: Some(8), ..phase(Action::DiskWrite, 12_000, 12_100) },
                Phase { bytes: Some(8), ..phase(Action::DiskRead, 13_000, 13_050) },
            ],
        }),
        Record::Task(TaskRecord {
            key: Key::from("inc-8f3a2b1c"),
            group: "inc".into(),
            worker: 1,
            thread: 0,
            status: TaskStatus::Error,
            nbytes: 0,
            inline_bytes: 0,
            working_bytes: 0,
            resources: Default::default(),
            restricted_to: Vec::new(),
            deps: vec![],
            attempt: 1,
            error: Some("ZeroDivisionError('division by zero')".into()),
            phases: vec![phase(Action::Compute, 14_000, 14_500)],
        }),
        Record::Event(Event { time: 14_600, kind: EventKind::TaskRetried { key: key_a, attempt: 2 } }),
        Record::Event(Event { time: 15_000, kind: EventKind::WorkerPaused { worker: 0 } }),
        Record::Event(Event { time: 16_000, kind: EventKind::WorkerResumed { worker: 0 } }),
        Record::Event(Event {
            time: 17_000,
            kind: EventKind::WorkerAdded {
                worker: WorkerSpec {
                    id: 2,
                    name: "tcp://127.0.0.1:41000".into(),
                    threads: 4,
                    memory_limit: Some(1_000_000),
                    resources: BTreeMap::new(),
                    host: None,
                    host_cores: None,
                },
            },
        }),
        Record::Event(Event {
            time: 18_000,
            kind: EventKind::WorkerKilled { worker: 2, reason: "memory".into() },
        }),
        Record::Event(Event { time: 18_500, kind: EventKind::WorkerRemoved { worker: 2 } }),
        Record::Event(Event { time: 19_000, kind: EventKind::Warning { message: "slow".into(), worker: Some(1), source: Some("distributed.worker".into()) } }),
        Record::Memory(MemorySample {
            time: 20_000,
            worker: 1,
            managed: 8,
            unmanaged: 0,
            spilled: 8,
            cpu: None,
        }),
    ];
    // The reader derives an empty group from the key; do it here so records compare equal.
    for record in &mut records {
        if let Record::Task(task) = record {
            if task.group.is_empty() {
                task.group = task.key.group();
            }
        }
    }
    records
}

/// Records as another producer might spell them: `kind` not first (the reader's slow path),
/// optional fields left out, whitespace, blank lines, CRLF.
const REORDERED: &str = concat!(
    "\r\n",
    r#"{ "phases": [{"stop": 5, "start": 1, "action": "compute"}], "worker": 0, "key": "f-x", "kind": "task" }"#,
    "\r\n\n",
    r#"{"worker": 1, "time": 6, "kind": "memory", "managed": 0}"#,
    "\n",
    r#"{"type": "graph-submitted", "tasks": 18446744073709551615, "kind": "event", "time": 7}"#,
    "\n",
    r#"{"kind": "event", "type": "worker-added", "time": 8, "worker": {"resources": {"GPU": 0.5, "MEM": 1e10}, "threads": 1, "name": "w", "id": 3}}"#,
    "\n",
);

/// A few hand-written task-stream records covering what the recorded fixture does not: string
/// keys, errors, cancelled tasks, a missing thread, unknown actions, transfer sources that never
/// execute anything, disk phases.
const SMALL_DASK_STREAM: &str = r#"[
{"worker": "tcp://127.0.0.1:1", "thread": 7, "nbytes": 28, "status": "OK", "key": "inc-8f3a2b1c", "startstops": [{"action": "compute", "start": 1795613463.25, "stop": 1795613463.5}]},
{"worker": "tcp://127.0.0.1:2", "status": "error", "key": ["x-1", 0, 1.5], "exception_text": "ZeroDivisionError('division by zero')", "startstops": [{"action": "transfer", "start": 1795613463.5, "stop": 1795613463.4, "source": "tcp://127.0.0.1:3"}, {"action": "compute", "start": 1795613463.6, "stop": 1795613463.7}, {"action": "spill", "start": 1795613463.7, "stop": 1795613463.8}]},
{"worker": "tcp://127.0.0.1:2", "thread": 9, "status": "cancelled", "key": [["y", 2], -3], "startstops": [{"action": "disk-write", "start": 1795613463.9, "stop": 1795613464}, {"action": "disk-read", "start": 1795613464.5, "stop": 1795613464.75}, {"action": "deserialize", "start": 1795613465, "stop": 1795613465.5}, {"action": "queued", "start": 1795613463, "stop": 1795613463.1}]},
{"worker": "tcp://127.0.0.1:1", "thread": 8, "status": "memory", "key": "finalize-hlgfinalizecompute-7b666e1a1f4141b296816a05d9c2ef99", "startstops": []}
]
"#;
