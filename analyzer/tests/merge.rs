//! The index is built on several threads, each over its own batches of lines, and merged: any
//! split of a trace must give the report of the whole.

use analyzer::{TraceIndex, report};
use proptest::prelude::*;
use traces::{
    Action, Cluster, Event, EventKind, GroupMetrics, Header, Key, KeyPart, MemorySample, Phase,
    Record, TaskRecord, TaskStatus, WorkerSpec,
};

const MS: u64 = 1_000_000;

fn header() -> Header {
    let workers = (0..2)
        .map(|id| WorkerSpec {
            id,
            name: format!("w{id}"),
            threads: 2,
            memory_limit: Some(1 << 30),
            resources: Default::default(),
            host: None,
            host_cores: None,
        })
        .collect();
    Header::new(
        "test",
        0,
        Cluster {
            workers,
            memory: Default::default(),
        },
    )
}

prop_compose! {
    fn task()(
        group in 0..3usize,
        index in 0..40i64,
        worker in 0..2u32,
        thread in 0..2u32,
        start in 0..5_000u64,
        compute in 1..400u64,
        transfer in prop::option::of(1..50u64),
        status in prop::sample::select(vec![TaskStatus::Ok, TaskStatus::Ok, TaskStatus::Ok, TaskStatus::Error, TaskStatus::Lost]),
        nbytes in prop::sample::select(vec![0u64, 1 << 10, 1 << 20, 8 << 20]),
        inline in prop::sample::select(vec![0u64, 2_000_000]),
        error in prop::sample::select(vec!["ValueError('x')", "ModuleNotFoundError(\"No module named 'm'\")"]),
        dep in prop::option::of(0..40i64),
    ) -> TaskRecord {
        let name = ["load", "shuffle-transfer", "sum"][group];
        let key = |i: i64| Key::Tuple(vec![KeyPart::Str(format!("{name}-abcdef0123").into()), KeyPart::Int(i)]);
        let start = start * MS;
        let mut phases = Vec::new();
        let mut at = start;
        if let Some(t) = transfer {
            phases.push(Phase { action: Action::Transfer, start: at, stop: at + t * MS, bytes: Some(nbytes), peer: Some(1 - worker) });
            at += t * MS;
        }
        phases.push(Phase { action: Action::Compute, start: at, stop: at + compute * MS, bytes: None, peer: None });
        TaskRecord {
            key: key(index),
            group: name.to_string(),
            worker,
            thread,
            status,
            nbytes,
            inline_bytes: inline,
            working_bytes: 0,
            resources: Default::default(),
            restricted_to: Vec::new(),
            deps: dep.map(key).into_iter().collect(),
            attempt: 1,
            error: (status == TaskStatus::Error).then(|| error.to_string()),
            phases,
        }
    }
}

fn record() -> impl Strategy<Value = Record> {
    prop_oneof![
        8 => task().prop_map(Record::Task),
        2 => (0..6_000u64, 0..2u32, 0..900u64, 0..900u64, prop::option::of(0.0..4.0f64)).prop_map(
            |(t, worker, managed, unmanaged, cpu)| Record::Memory(MemorySample {
                time: t * MS,
                worker,
                managed: managed << 20,
                unmanaged: unmanaged << 20,
                spilled: 0,
                cpu,
            })
        ),
        1 => (0..6_000u64, 0..2u32, 0..5u8).prop_map(|(t, worker, kind)| Record::Event(Event {
            time: t * MS,
            kind: match kind {
                0 => EventKind::WorkerPaused { worker },
                1 => EventKind::WorkerResumed { worker },
                2 => EventKind::GraphSubmitted { tasks: 1, client: None },
                3 => EventKind::Warning { message: "Unmanaged memory use is high".into(), worker: Some(worker), source: None },
                _ => EventKind::WorkerKilled { worker, reason: "memory".into() },
            },
        })),
        1 => (0..6_000u64, 0..3usize, 0.0..10.0f64).prop_map(|(t, group, cpu)| Record::GroupMetrics(GroupMetrics {
            time: t * MS,
            group: ["load", "shuffle-transfer", "sum"][group].into(),
            metrics: [("execute/thread-cpu/seconds".to_string(), cpu)].into(),
        })),
    ]
}

/// The report as JSON, without the recomputed keys' examples: a key repeated across the halves
/// is counted but may go unnamed (its text was only kept on one side).
fn comparable(index: &TraceIndex) -> serde_json::Value {
    let mut json = serde_json::to_value(report(index)).unwrap();
    for finding in json["findings"].as_array_mut().unwrap() {
        if finding["rule"] == "recomputation" {
            finding["title"] = serde_json::Value::Null;
            finding["scope"]["keys"] = serde_json::Value::Null;
            finding["advice"] = serde_json::Value::Null;
        }
    }
    json
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn indexing_two_halves_and_merging_equals_indexing_the_whole(
        records in prop::collection::vec(record(), 1..120),
        split in 0.0..1.0f64,
    ) {
        let at = (records.len() as f64 * split) as usize;
        let mut whole = TraceIndex::empty(header(), "test".into());
        for r in records.iter().cloned() {
            whole.add(r);
        }
        let mut first = TraceIndex::empty(header(), "test".into());
        let mut second = TraceIndex::empty(header(), "test".into());
        for r in records[..at].iter().cloned() {
            first.add(r);
        }
        for r in records[at..].iter().cloned() {
            second.add(r);
        }
        first.merge(second);
        prop_assert_eq!(comparable(&first.finished()), comparable(&whole.finished()));
    }
}
