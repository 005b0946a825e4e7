//! The real task stream recorded from a Dask LocalCluster (`tests/data/record_dask_task_stream.py`)
//! imports with the counts Python computed from the same file
//! (`tests/data/dask_task_stream.expected.txt`).

use std::collections::BTreeMap;

use traces::{
    Action, Record, SourceFormat, TaskRecord, TaskStatus, TraceReader, TraceSummary, WorkerSpec,
};

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/dask_task_stream.json"
);

fn tasks() -> (traces::Header, Vec<TaskRecord>) {
    let trace = TraceReader::open(FIXTURE).unwrap();
    assert_eq!(
        trace.format(),
        SourceFormat::DaskTaskStream { compressed: false }
    );
    let (header, records) = trace.read_all().unwrap();
    let tasks = records
        .into_iter()
        .map(|r| match r {
            Record::Task(t) => t,
            other => panic!("a task stream holds only tasks, got {other:?}"),
        })
        .collect();
    (header, tasks)
}

#[test]
fn workers_and_threads_come_from_the_records() {
    let (header, tasks) = tasks();
    let workers: Vec<(&str, u32)> = header
        .cluster
        .workers
        .iter()
        .map(|w: &WorkerSpec| (w.name.as_str(), w.threads))
        .collect();
    assert_eq!(
        workers,
        [("tcp://127.0.0.1:35717", 2), ("tcp://127.0.0.1:40049", 2)]
    );
    let per_worker = tasks.iter().fold([0; 2], |mut n, t| {
        n[t.worker as usize] += 1;
        n
    });
    assert_eq!(per_worker, [30, 25]);
    assert!(tasks.iter().all(|t| t.thread < 2));
}

#[test]
fn records_phases_and_bytes_match_python() {
    let (_, tasks) = tasks();
    assert_eq!(tasks.len(), 55);
    assert!(tasks.iter().all(|t| t.status == TaskStatus::Ok));
    let mut phases: BTreeMap<Action, usize> = BTreeMap::new();
    for phase in tasks.iter().flat_map(|t| &t.phases) {
        *phases.entry(phase.action).or_default() += 1;
    }
    assert_eq!(
        phases,
        BTreeMap::from([(Action::Transfer, 16), (Action::Compute, 55)])
    );
    assert_eq!(tasks.iter().map(|t| t.nbytes).sum::<u64>(), 24_087_052);
    let tuple_keys = tasks
        .iter()
        .filter(|t| matches!(t.key, traces::Key::Tuple(_)))
        .count();
    assert_eq!(tuple_keys, 40);

    // Transfers by (source → destination): 0 is :35717, 1 is :40049.
    let mut routes: BTreeMap<(u32, u32), usize> = BTreeMap::new();
    for task in &tasks {
        for phase in task.phases.iter().filter(|p| p.action == Action::Transfer) {
            *routes
                .entry((
                    phase.peer.expect("transfers carry their source"),
                    task.worker,
                ))
                .or_default() += 1;
        }
    }
    assert_eq!(routes, BTreeMap::from([((0, 1), 7), ((1, 0), 9)]));
}

#[test]
fn groups_follow_key_split() {
    let (_, tasks) = tasks();
    let mut groups: BTreeMap<&str, usize> = BTreeMap::new();
    for task in &tasks {
        *groups.entry(task.group.as_str()).or_default() += 1;
    }
    assert_eq!(
        groups,
        BTreeMap::from([
            ("add", 4),
            ("finalize-hlgfinalizecompute", 1),
            ("inc", 8),
            ("mean_agg-aggregate-sum", 4),
            ("mean_chunk", 16),
            ("random_sample", 16),
            ("sum", 4),
            ("sum-aggregate", 1),
            ("total", 1),
        ])
    );
}

#[test]
fn times_are_nanoseconds_from_the_first_start() {
    let (header, tasks) = tasks();
    // min start 1795613463.4921944, max stop 1795613463.6999292 (epoch seconds).
    assert!((header.origin_unix_ns - 1_795_613_463_492_194_400).abs() < 1_000);
    assert_eq!(tasks.iter().filter_map(TaskRecord::start).min(), Some(0));
    assert_eq!(
        tasks.iter().filter_map(TaskRecord::stop).max(),
        Some(207_734_823)
    );
    let starts: Vec<u64> = tasks.iter().filter_map(TaskRecord::start).collect();
    assert!(starts.is_sorted(), "records are ordered by start time");
}

#[test]
fn summary_of_the_fixture() {
    let summary = TraceSummary::build(TraceReader::open(FIXTURE).unwrap()).unwrap();
    assert_eq!(summary.tasks.records, 55);
    assert_eq!(summary.wall_ns, 207_734_823);
    assert_eq!(summary.transfers.count, 16);
    assert_eq!(summary.transfers.unknown_size, 16);
    assert_eq!(summary.spilled.count, 0);
    assert_eq!(summary.groups.len(), 9);
    assert_eq!(summary.groups[0].group, "random_sample");
    assert_eq!(summary.groups[0].tasks, 16);
    assert_eq!(summary.workers.len(), 2);
    assert_eq!(
        summary.workers.iter().map(|w| w.tasks).collect::<Vec<_>>(),
        [30, 25]
    );
}
