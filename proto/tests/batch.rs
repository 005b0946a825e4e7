//! Records survive packing into size-capped messages and unpacking, byte-identical in the model.

use prost::Message;
use proto::{BATCH_BYTES, MAX_MESSAGE_BYTES, RecordsBatcher, RecordsDecoder, v1};
use traces::{
    Action, Event, EventKind, Key, KeyPart, MemorySample, Phase, Record, TaskRecord, TaskStatus,
    WorkerSpec,
};

fn task(name: &str, i: i64, deps: usize) -> TaskRecord {
    TaskRecord {
        key: Key::Tuple(vec![KeyPart::Str(name.into()), KeyPart::Int(i)]),
        group: name.split('-').next().unwrap().to_string(),
        worker: (i % 3) as u32,
        thread: 1,
        status: if i % 7 == 0 {
            TaskStatus::Error
        } else {
            TaskStatus::Ok
        },
        nbytes: 1000 + i as u64,
        inline_bytes: 5,
        working_bytes: 7,
        resources: Default::default(),
        restricted_to: Vec::new(),
        deps: (0..deps)
            .map(|d| {
                Key::Tuple(vec![
                    KeyPart::Str("input-0a1b2c3d".into()),
                    KeyPart::Int(d as i64),
                ])
            })
            .collect(),
        attempt: 1 + (i % 2) as u32,
        error: (i % 7 == 0).then(|| "ZeroDivisionError: division by zero".to_string()),
        phases: vec![
            Phase {
                action: Action::Transfer,
                start: 10,
                stop: 20,
                bytes: Some(100),
                peer: Some(2),
            },
            Phase {
                action: Action::Compute,
                start: 20,
                stop: 40,
                bytes: None,
                peer: None,
            },
        ],
    }
}

fn round_trip(records: &[Record]) -> (Vec<Record>, Vec<usize>) {
    let mut batcher = RecordsBatcher::new(BATCH_BYTES);
    for r in records {
        batcher.push(r);
    }
    let batches = batcher.finish();
    let sizes: Vec<usize> = batches
        .iter()
        .map(|b| {
            v1::Update {
                dropped: 0,
                kind: Some(v1::update::Kind::Records(b.clone())),
            }
            .encoded_len()
        })
        .collect();
    let mut out = Vec::new();
    let mut decoder = RecordsDecoder::new();
    for batch in &batches {
        let bytes = batch.encode_to_vec();
        let decoded = v1::Records::decode(bytes.as_slice()).unwrap();
        decoder.decode(&decoded, |r| out.push(r)).unwrap();
    }
    (out, sizes)
}

#[test]
fn a_reduction_over_a_million_inputs_is_split_and_rejoined() {
    let records = vec![
        Record::Task(task("sum-aggregate", 0, 1_000_000)),
        Record::Task(task("inc-1", 1, 2)),
    ];
    let (out, sizes) = round_trip(&records);
    assert_eq!(out, records);
    assert!(sizes.len() > 20, "{} messages", sizes.len());
    let max = *sizes.iter().max().unwrap();
    assert!(max <= BATCH_BYTES + 1024, "largest message {max} bytes");
    assert!(max < MAX_MESSAGE_BYTES);
}

#[test]
fn many_small_records_fill_batches_up_to_the_budget() {
    let mut records: Vec<Record> = (0..50_000)
        .map(|i| Record::Task(task("inc-1", i, 1)))
        .collect();
    records.push(Record::Memory(MemorySample {
        time: 5,
        worker: 1,
        managed: 10,
        unmanaged: 20,
        spilled: 30,
        cpu: None,
    }));
    records.push(Record::Event(Event {
        time: 6,
        kind: EventKind::WorkerAdded {
            worker: WorkerSpec {
                id: 4,
                name: "w4".into(),
                threads: 2,
                memory_limit: Some(1 << 30),
                resources: [("GPU".to_string(), 1.0)].into(),
                host: Some("10.0.0.4".into()),
                host_cores: Some(16),
            },
        },
    }));
    let (out, sizes) = round_trip(&records);
    assert_eq!(out, records);
    assert!(sizes.len() >= 3);
    assert!(sizes.iter().all(|&s| s <= BATCH_BYTES + 1024), "{sizes:?}");
    // Full batches are nearly full: the budget is used, not wasted.
    assert!(sizes[0] > BATCH_BYTES * 9 / 10, "{sizes:?}");
}

#[test]
fn continuations_of_a_dropped_task_are_skipped() {
    // The server dropped the update holding the task: its continuation arrives alone.
    let mut batcher = RecordsBatcher::new(BATCH_BYTES);
    batcher.push(&Record::Task(task("sum-aggregate", 0, 300_000)));
    batcher.push(&Record::Task(task("inc-1", 1, 2)));
    let batches = batcher.finish();
    assert!(batches.len() >= 3);
    let mut decoder = RecordsDecoder::new();
    let mut out = Vec::new();
    for batch in &batches[1..] {
        decoder.decode(batch, |r| out.push(r)).unwrap();
    }
    assert_eq!(out, vec![Record::Task(task("inc-1", 1, 2))]);
}

/// Format 1.1's records as the Dask plugin writes them.
fn format_1_1_records() -> Vec<Record> {
    vec![
        Record::Memory(MemorySample {
            time: 5,
            worker: 1,
            managed: 10,
            unmanaged: 20,
            spilled: 30,
            cpu: Some(0.25),
        }),
        Record::Event(Event {
            time: 6,
            kind: EventKind::Warning {
                message: "Unmanaged memory use is high".into(),
                worker: Some(1),
                source: Some("distributed.worker.memory".into()),
            },
        }),
        Record::GroupMetrics(traces::GroupMetrics {
            time: 7,
            group: String::new(),
            metrics: [("gather-dep/decompress/seconds".to_string(), 0.125)].into(),
        }),
    ]
}

#[test]
fn format_1_1_fields_round_trip() {
    let records = format_1_1_records();
    let (out, _) = round_trip(&records);
    assert_eq!(out, records);
}

/// `Records`, `MemorySample` and `Event` as the schema had them before format 1.1's fields.
mod before_1_1 {
    use proto::v1;

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Records {
        #[prost(message, repeated, tag = "1")]
        pub tasks: Vec<v1::Task>,
        #[prost(message, repeated, tag = "2")]
        pub memory: Vec<MemorySample>,
        #[prost(message, repeated, tag = "3")]
        pub events: Vec<Event>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct MemorySample {
        #[prost(uint64, tag = "1")]
        pub time: u64,
        #[prost(uint32, tag = "2")]
        pub worker: u32,
        #[prost(uint64, tag = "3")]
        pub managed: u64,
        #[prost(uint64, tag = "4")]
        pub unmanaged: u64,
        #[prost(uint64, tag = "5")]
        pub spilled: u64,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Event {
        #[prost(uint64, tag = "1")]
        pub time: u64,
        #[prost(oneof = "proto::v1::event::Kind", tags = "2, 3, 4, 5, 6, 7, 8, 9")]
        pub kind: Option<v1::event::Kind>,
    }
}

#[test]
fn format_1_1_fields_are_compatible_both_ways() {
    // An older client reading a newer server: the new fields are skipped, the rest is read.
    let mut batcher = RecordsBatcher::new(BATCH_BYTES);
    for record in format_1_1_records() {
        batcher.push(&record);
    }
    let bytes = batcher.finish()[0].encode_to_vec();
    let old = before_1_1::Records::decode(bytes.as_slice()).unwrap();
    assert_eq!(old.memory.len(), 1);
    assert_eq!(old.memory[0].spilled, 30);
    assert_eq!(
        old.events[0].kind,
        Some(v1::event::Kind::Warning(
            "Unmanaged memory use is high".into()
        ))
    );

    // A newer client reading an older server: what it did not send is unknown, not an error.
    let old = before_1_1::Records {
        tasks: Vec::new(),
        memory: vec![before_1_1::MemorySample {
            time: 5,
            worker: 1,
            managed: 10,
            unmanaged: 20,
            spilled: 30,
        }],
        events: vec![before_1_1::Event {
            time: 6,
            kind: Some(v1::event::Kind::Warning("hi".into())),
        }],
    };
    let new = v1::Records::decode(old.encode_to_vec().as_slice()).unwrap();
    let mut out = Vec::new();
    RecordsDecoder::new().decode(&new, |r| out.push(r)).unwrap();
    assert_eq!(
        out,
        [
            Record::Memory(MemorySample {
                time: 5,
                worker: 1,
                managed: 10,
                unmanaged: 20,
                spilled: 30,
                cpu: None,
            }),
            Record::Event(Event {
                time: 6,
                kind: EventKind::Warning {
                    message: "hi".into(),
                    worker: None,
                    source: None,
                },
            }),
        ]
    );
}

/// An event of a kind a newer server knows and this client does not.
mod from_the_future {
    use proto::v1;

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Records {
        #[prost(message, repeated, tag = "3")]
        pub events: Vec<Event>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Event {
        #[prost(uint64, tag = "1")]
        pub time: u64,
        #[prost(message, optional, tag = "99")]
        pub unheard_of: Option<v1::GraphSubmitted>,
    }
}

#[test]
fn an_event_kind_from_a_newer_server_is_skipped() {
    let newer = from_the_future::Records {
        events: vec![
            from_the_future::Event {
                time: 1,
                unheard_of: Some(v1::GraphSubmitted::default()),
            },
            from_the_future::Event {
                time: 2,
                unheard_of: None,
            },
        ],
    };
    let records = v1::Records::decode(newer.encode_to_vec().as_slice()).unwrap();
    assert_eq!(records.events.len(), 2);
    let mut out = Vec::new();
    RecordsDecoder::new()
        .decode(&records, |r| out.push(r))
        .unwrap();
    assert_eq!(out, []);
}

#[test]
fn a_phase_stopping_long_before_it_starts_is_refused() {
    // As a trace file's are: views count on start <= stop. A clock step back is a phase of no
    // length.
    let phase = |start, stop| v1::Phase {
        action: v1::Action::Compute as i32,
        start,
        stop,
        bytes: None,
        peer: None,
    };
    let stepped = Phase::try_from(&phase(2_000_000_000, 1_000_000_000)).unwrap();
    assert_eq!(
        (stepped.start, stepped.stop),
        (2_000_000_000, 2_000_000_000)
    );
    assert_eq!(
        Phase::try_from(&phase(3_600_000_000_000, 0))
            .unwrap_err()
            .to_string(),
        "invalid phase in an Observe message: the phase stops 3600 s before it starts (at most \
         60 s is read, as a clock stepped back)"
    );
}
