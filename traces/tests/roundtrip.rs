//! Any trace written is read back equal, plain and zstd.

use std::io::Cursor;

use proptest::prelude::*;
use traces::{
    Action, Cluster, Event, EventKind, FloatBits, GroupMetrics, Header, Key, KeyPart,
    MemoryFractions, MemorySample, Phase, Record, TaskRecord, TaskStatus, TraceReader, TraceWriter,
    WorkerSpec,
};

fn finite() -> impl Strategy<Value = f64> {
    prop::num::f64::NORMAL | prop::num::f64::ZERO | prop::num::f64::SUBNORMAL
}

fn key_part() -> impl Strategy<Value = KeyPart> {
    let leaf = prop_oneof![
        "\\PC{0,12}".prop_map(|s: String| KeyPart::Str(s.into())),
        any::<i64>().prop_map(KeyPart::Int),
        finite().prop_map(|f| KeyPart::Float(FloatBits::new(f))),
    ];
    leaf.prop_recursive(2, 8, 3, |inner| {
        prop::collection::vec(inner, 0..3).prop_map(KeyPart::Tuple)
    })
}

fn key() -> impl Strategy<Value = Key> {
    prop_oneof![
        "[a-z_]{1,8}(-[0-9a-f]{8,32})?".prop_map(|s: String| Key::Str(s.into())),
        "\\PC{0,20}".prop_map(|s: String| Key::Str(s.into())),
        prop::collection::vec(key_part(), 0..4).prop_map(Key::Tuple),
    ]
}

fn action() -> impl Strategy<Value = Action> {
    prop::sample::select(Action::ALL.to_vec())
}

fn phase() -> impl Strategy<Value = Phase> {
    (
        action(),
        any::<u64>(),
        any::<u64>(),
        any::<Option<u64>>(),
        any::<Option<u32>>(),
    )
        // A phase never stops before it starts (readers refuse, or settle, those:
        // `Phase::order`).
        .prop_map(|(action, a, b, bytes, peer)| Phase {
            action,
            start: a.min(b),
            stop: a.max(b),
            bytes,
            peer,
        })
}

fn task() -> impl Strategy<Value = TaskRecord> {
    let status = prop::sample::select(vec![
        TaskStatus::Ok,
        TaskStatus::Error,
        TaskStatus::Cancelled,
        TaskStatus::Lost,
    ]);
    (
        (key(), "\\PC{1,10}", any::<u32>(), any::<u32>(), status),
        (
            any::<u64>(),
            any::<u64>(),
            any::<u64>(),
            prop::collection::btree_map("[A-Za-z]{1,6}", finite(), 0..3),
            prop::collection::vec(any::<u32>(), 0..3),
            prop::collection::vec(key(), 0..3),
        ),
        (
            any::<u32>(),
            any::<Option<String>>(),
            prop::collection::vec(phase(), 0..5),
        ),
    )
        .prop_map(
            |(
                (key, group, worker, thread, status),
                (nbytes, inline_bytes, working_bytes, resources, restricted_to, deps),
                (attempt, error, phases),
            )| TaskRecord {
                key,
                group,
                worker,
                thread,
                status,
                nbytes,
                inline_bytes,
                working_bytes,
                resources,
                restricted_to,
                deps,
                attempt,
                error,
                phases,
            },
        )
}

fn worker_spec() -> impl Strategy<Value = WorkerSpec> {
    (
        any::<u32>(),
        "\\PC{0,20}",
        any::<u32>(),
        any::<Option<u64>>(),
        prop::collection::btree_map("[A-Za-z]{1,6}", finite(), 0..3),
        prop::option::of("\\PC{0,20}"),
        any::<Option<u32>>(),
    )
        .prop_map(
            |(id, name, threads, memory_limit, resources, host, host_cores)| WorkerSpec {
                id,
                name,
                threads,
                memory_limit,
                resources,
                host,
                host_cores,
            },
        )
}

fn event() -> impl Strategy<Value = Event> {
    let kind = prop_oneof![
        worker_spec().prop_map(|worker| EventKind::WorkerAdded { worker }),
        any::<u32>().prop_map(|worker| EventKind::WorkerRemoved { worker }),
        (any::<u32>(), "\\PC{0,20}")
            .prop_map(|(worker, reason)| EventKind::WorkerKilled { worker, reason }),
        any::<u32>().prop_map(|worker| EventKind::WorkerPaused { worker }),
        any::<u32>().prop_map(|worker| EventKind::WorkerResumed { worker }),
        (key(), any::<u32>()).prop_map(|(key, attempt)| EventKind::TaskRetried { key, attempt }),
        (any::<u64>(), any::<Option<String>>())
            .prop_map(|(tasks, client)| EventKind::GraphSubmitted { tasks, client }),
        (
            key(),
            prop::collection::vec(any::<u32>(), 0..3),
            any::<u64>()
        )
            .prop_map(|(key, workers, nbytes)| EventKind::DataAdded {
                key,
                workers,
                nbytes
            }),
        ("\\PC{0,30}", any::<Option<u32>>(), any::<Option<String>>()).prop_map(
            |(message, worker, source)| EventKind::Warning {
                message,
                worker,
                source
            }
        ),
    ];
    (any::<u64>(), kind).prop_map(|(time, kind)| Event { time, kind })
}

fn record() -> impl Strategy<Value = Record> {
    prop_oneof![
        4 => task().prop_map(Record::Task),
        1 => (
            (any::<u64>(), any::<u32>()),
            (any::<u64>(), any::<u64>(), any::<u64>()),
            prop::option::of(finite())
        )
            .prop_map(
                |((time, worker), (managed, unmanaged, spilled), cpu)| Record::Memory(MemorySample {
                    time,
                    worker,
                    managed,
                    unmanaged,
                    spilled,
                    cpu,
                })
            ),
        1 => event().prop_map(Record::Event),
        1 => (
            any::<u64>(),
            "\\PC{0,20}",
            prop::collection::btree_map("[a-z/-]{1,30}", finite(), 0..4)
        )
            .prop_map(|(time, group, metrics)| Record::GroupMetrics(GroupMetrics {
                time,
                group,
                metrics
            })),
    ]
}

fn header() -> impl Strategy<Value = Header> {
    (
        "\\PC{0,30}",
        any::<i64>(),
        prop::collection::vec(worker_spec(), 0..4),
        (finite(), finite(), finite(), finite()),
    )
        .prop_map(
            |(producer, origin, workers, (target, spill, pause, terminate))| {
                Header::new(
                    producer,
                    origin,
                    Cluster {
                        workers,
                        memory: MemoryFractions {
                            target,
                            spill,
                            pause,
                            terminate,
                        },
                    },
                )
            },
        )
}

fn write_and_read(header: &Header, records: &[Record], compress: bool) -> (Header, Vec<Record>) {
    let mut writer = TraceWriter::new(Vec::new(), "mem.ndjson", header, compress).unwrap();
    for record in records {
        writer.write(record).unwrap();
    }
    let bytes = writer.finish().unwrap();
    let trace = TraceReader::from_reader(Cursor::new(bytes), "mem.ndjson").unwrap();
    assert!(trace.warnings().is_empty());
    trace.read_all().unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn borrowed_task_records_are_written_identically(task in task()) {
        let header = Header::new("test", 0, Cluster::default());
        let deps: Vec<&Key> = task.deps.iter().collect();
        let borrowed = task.borrowed(&deps);
        let mut owned = TraceWriter::new(Vec::new(), "a", &header, false).unwrap();
        owned.write_task(&task).unwrap();
        let mut by_ref = TraceWriter::new(Vec::new(), "b", &header, false).unwrap();
        by_ref.write_task_ref(&borrowed).unwrap();
        prop_assert_eq!(owned.finish().unwrap(), by_ref.finish().unwrap());
    }

    #[test]
    fn written_traces_read_back_equal(header in header(), records in prop::collection::vec(record(), 0..40)) {
        for compress in [false, true] {
            let (read_header, read_records) = write_and_read(&header, &records, compress);
            prop_assert_eq!(&read_header, &header);
            prop_assert_eq!(&read_records, &records);
        }
    }
}

#[test]
fn an_empty_group_is_derived_from_the_key() {
    let header = Header::new("test", 0, Cluster::default());
    let task = TaskRecord {
        key: Key::Tuple(vec![
            KeyPart::Str("read-parquet-9f3a2b1c4d5e6f708192a3b4c5d6e7f8".into()),
            KeyPart::Int(12),
        ]),
        group: String::new(),
        worker: 0,
        thread: 0,
        status: TaskStatus::Ok,
        nbytes: 0,
        inline_bytes: 0,
        working_bytes: 0,
        resources: Default::default(),
        restricted_to: Vec::new(),
        deps: vec![],
        attempt: 1,
        error: None,
        phases: vec![],
    };
    let (_, records) = write_and_read(&header, &[Record::Task(task)], false);
    let Record::Task(read) = &records[0] else {
        panic!("expected a task, got {:?}", records[0]);
    };
    assert_eq!(read.group, "read-parquet");
}

#[test]
fn a_large_trace_streams_through_both_codecs() {
    let header = traces::synthetic::header(3, 2);
    let records: Vec<Record> = traces::synthetic::records(20_000, 3, 2).collect();
    for compress in [false, true] {
        let (read_header, read_records) = write_and_read(&header, &records, compress);
        assert_eq!(read_header, header);
        assert_eq!(read_records.len(), records.len());
        assert!(
            read_records == records,
            "records differ after the round trip"
        );
    }
}
