//! Each rule on a small hand-built trace that triggers it, and on one that must not.

use std::io::Cursor;

use analyzer::{Finding, Report, Severity};
use traces::{
    Action, Cluster, Event, EventKind, Header, Key, KeyPart, MemoryFractions, MemorySample, Phase,
    Record, TaskRecord, TaskStatus, TraceReader, TraceWriter, WorkerSpec,
};

const MS: u64 = 1_000_000;
const MB: u64 = 1 << 20;

/// A trace under construction: 2 workers × 1 thread unless told otherwise.
struct Trace {
    header: Header,
    records: Vec<Record>,
    /// Next free time per (worker) lane.
    clock: Vec<u64>,
}

impl Trace {
    fn new(workers: u32) -> Trace {
        Trace::with_limit(workers, None)
    }

    fn with_limit(workers: u32, memory_limit: Option<u64>) -> Trace {
        let specs = (0..workers)
            .map(|id| WorkerSpec {
                id,
                name: format!("tcp://10.0.0.{id}:8786"),
                threads: 1,
                memory_limit,
                resources: Default::default(),
            })
            .collect();
        Trace {
            header: Header::new(
                "test",
                0,
                Cluster {
                    workers: specs,
                    memory: MemoryFractions::default(),
                },
            ),
            records: Vec::new(),
            clock: vec![0; workers as usize],
        }
    }

    /// A task of `group` on `worker`, right after the previous one there.
    fn task(&mut self, group: &str, i: i64, worker: u32, compute: u64) -> &mut TaskRecord {
        let start = self.clock[worker as usize];
        self.clock[worker as usize] = start + compute;
        self.records.push(Record::Task(TaskRecord {
            key: Key::Tuple(vec![
                KeyPart::Str(format!("{group}-0123456789abcdef").into()),
                KeyPart::Int(i),
            ]),
            group: String::new(),
            worker,
            thread: 0,
            status: TaskStatus::Ok,
            nbytes: MB,
            inline_bytes: 0,
            deps: Vec::new(),
            attempt: 1,
            error: None,
            phases: vec![Phase {
                action: Action::Compute,
                start,
                stop: start + compute,
                bytes: None,
                peer: None,
            }],
        }));
        match self.records.last_mut() {
            Some(Record::Task(t)) => t,
            _ => unreachable!(),
        }
    }

    /// Adds a phase before the task's compute, shifting the lane clock.
    fn before(&mut self, action: Action, duration: u64, bytes: u64) {
        let Some(Record::Task(task)) = self.records.last_mut() else {
            unreachable!()
        };
        let start = task.phases[0].start;
        for phase in &mut task.phases {
            phase.start += duration;
            phase.stop += duration;
        }
        task.phases.insert(
            0,
            Phase {
                action,
                start,
                stop: start + duration,
                bytes: Some(bytes),
                peer: (action == Action::Transfer).then_some(1 - task.worker.min(1)),
            },
        );
        self.clock[task.worker as usize] += duration;
    }

    /// Moves every lane's clock to `time` (the cluster idles until then).
    fn idle_until(&mut self, time: u64) {
        for c in &mut self.clock {
            *c = (*c).max(time);
        }
    }

    fn event(&mut self, time: u64, kind: EventKind) {
        self.records.push(Record::Event(Event { time, kind }));
    }

    fn analyze(&self) -> Report {
        let mut writer = TraceWriter::new(Vec::new(), "t.ndjson", &self.header, false).unwrap();
        for record in &self.records {
            writer.write(record).unwrap();
        }
        let bytes = writer.finish().unwrap();
        analyzer::analyze(TraceReader::from_reader(Cursor::new(bytes), "t.ndjson").unwrap())
            .unwrap()
    }
}

fn findings<'a>(report: &'a Report, rule: &str) -> Vec<&'a Finding> {
    report.findings.iter().filter(|f| f.rule == rule).collect()
}

/// Balanced work on both workers: every rule stays quiet.
fn balanced(trace: &mut Trace, tasks: i64) {
    for i in 0..tasks {
        trace.task("process", i, (i % 2) as u32, 100 * MS);
    }
}

#[test]
fn a_balanced_trace_has_no_findings() {
    let mut trace = Trace::new(2);
    balanced(&mut trace, 20);
    let report = trace.analyze();
    assert!(report.findings.is_empty(), "{:#?}", report.findings);
    assert!((report.summary.efficiency - 1.0).abs() < 0.01);
}

#[test]
fn skew_names_the_straggler() {
    let mut trace = Trace::new(2);
    balanced(&mut trace, 10);
    trace.task("process", 99, 0, 2_000 * MS).nbytes = 40 * MB;
    let report = trace.analyze();
    let skew = findings(&report, "skew");
    assert_eq!(skew.len(), 1, "{:#?}", report.findings);
    let f = skew[0];
    assert_eq!(f.severity, Severity::Severe);
    assert!(
        (f.impact_seconds - 1.9).abs() < 0.01,
        "{}",
        f.impact_seconds
    );
    // Medians come from a 3-significant-digit histogram.
    assert!((f.evidence("duration_ratio").unwrap() - 20.0).abs() < 0.02);
    assert!((f.evidence("size_ratio").unwrap() - 40.0).abs() < 0.04);
    assert_eq!(f.scope.keys, ["('process-0123456789abcdef', 99)"]);
    assert!(
        f.advice.contains("partition_size=\"1.00MiB\""),
        "{}",
        f.advice
    );
}

#[test]
fn tiny_partitions_counts_dask_overhead() {
    let mut trace = Trace::new(2);
    for i in 0..2_000 {
        trace.task("from-sequence", i, (i % 2) as u32, 50_000);
    }
    let report = trace.analyze();
    let tiny = findings(&report, "tiny-partitions");
    assert_eq!(tiny.len(), 1);
    // 2,000 × 1 ms of overhead, over 2 threads; the work fits in one 100 ms task.
    assert!(
        (tiny[0].impact_seconds - 0.9995).abs() < 1e-6,
        "{}",
        tiny[0].impact_seconds
    );
    assert_eq!(tiny[0].evidence("suggested_partitions"), Some(1.0));
    assert_eq!(tiny[0].severity, Severity::Moderate);

    let mut few = Trace::new(2);
    for i in 0..50 {
        few.task("from-sequence", i, (i % 2) as u32, 50_000);
    }
    assert!(findings(&few.analyze(), "tiny-partitions").is_empty());
}

#[test]
fn oversized_argument_counts_repeated_copies() {
    let mut trace = Trace::new(2);
    for i in 0..20 {
        trace.task("join", i, (i % 2) as u32, 10 * MS).inline_bytes = 64 * MB;
        trace.before(Action::Deserialize, 20 * MS, 64 * MB);
    }
    let report = trace.analyze();
    let f = findings(&report, "oversized-argument");
    assert_eq!(f.len(), 1, "{:#?}", report.findings);
    assert_eq!(f[0].evidence("tasks_with_large_argument"), Some(20.0));
    assert_eq!(f[0].evidence("bytes_saved"), Some((19 * 64 * MB) as f64));
    assert!(f[0].advice.contains("client.scatter(obj, broadcast=True)"));
    // No separate serialization finding for what inline arguments explain.
    assert!(findings(&report, "serialization").is_empty());

    let mut small = Trace::new(2);
    for i in 0..20 {
        small.task("join", i, (i % 2) as u32, 10 * MS).inline_bytes = 100_000;
    }
    assert!(findings(&small.analyze(), "oversized-argument").is_empty());
}

#[test]
fn idle_gaps_tell_client_waits_from_scheduler_waits() {
    let mut trace = Trace::new(2);
    for round in 0..10u64 {
        let t0 = round * 300 * MS;
        trace.idle_until(t0);
        trace.event(
            t0,
            EventKind::GraphSubmitted {
                tasks: 2,
                client: None,
            },
        );
        trace.task("score", round as i64 * 2, 0, 100 * MS);
        trace.task("score", round as i64 * 2 + 1, 1, 100 * MS);
    }
    let report = trace.analyze();
    let f = findings(&report, "idle-gaps");
    assert_eq!(f.len(), 1, "{:#?}", report.findings);
    assert!((f[0].evidence("waiting_on_client_seconds").unwrap() - 1.8).abs() < 1e-9);
    assert_eq!(f[0].evidence("waiting_on_scheduler_seconds"), Some(0.0));
    assert!(f[0].advice.contains("dask.compute(*results)"));
    assert_eq!(f[0].severity, Severity::Severe);

    // The same gaps with no submission to explain them wait on the scheduler, not the client:
    // no idle-gaps finding (tiny-partitions charges scheduler gaps as per-task overhead).
    let mut stalled = Trace::new(2);
    stalled.event(
        0,
        EventKind::GraphSubmitted {
            tasks: 20,
            client: None,
        },
    );
    for round in 0..10u64 {
        stalled.idle_until(round * 300 * MS);
        stalled.task("score", round as i64 * 2, 0, 100 * MS);
        stalled.task("score", round as i64 * 2 + 1, 1, 100 * MS);
    }
    assert!(findings(&stalled.analyze(), "idle-gaps").is_empty());

    // A Dask task stream records no submissions: gaps of 10 ms or more are the client's.
    let mut stream = Trace::new(2);
    for round in 0..10u64 {
        stream.idle_until(round * 300 * MS);
        stream.task("score", round as i64 * 2, 0, 100 * MS);
        stream.task("score", round as i64 * 2 + 1, 1, 100 * MS);
    }
    let report = stream.analyze();
    let f = findings(&report, "idle-gaps");
    assert!((f[0].evidence("waiting_on_client_seconds").unwrap() - 1.8).abs() < 1e-9);
}

#[test]
fn communication_flags_transfer_bound_groups() {
    let mut trace = Trace::new(2);
    for i in 0..20 {
        trace.task("shuffle-combine", i, (i % 2) as u32, 10 * MS);
        trace.before(Action::Transfer, 90 * MS, 16 * MB);
    }
    let report = trace.analyze();
    let f = findings(&report, "communication");
    assert_eq!(f.len(), 1);
    assert!((f[0].evidence("transfer_share").unwrap() - 0.9).abs() < 1e-9);
    // A 90 % share is critical by ratio, but 0.9 s saved caps it at moderate.
    assert!((f[0].impact_seconds - 0.9).abs() < 1e-9);
    assert_eq!(f[0].severity, Severity::Moderate);

    let mut light = Trace::new(2);
    for i in 0..20 {
        light.task("combine", i, (i % 2) as u32, 100 * MS);
        light.before(Action::Transfer, MS, MB);
    }
    assert!(findings(&light.analyze(), "communication").is_empty());
}

#[test]
fn memory_pressure_sees_spills_pauses_and_kills() {
    let mut trace = Trace::with_limit(2, Some(1 << 30));
    for i in 0..20 {
        trace.task("load", i, (i % 2) as u32, 100 * MS);
        trace.before(Action::DiskRead, 50 * MS, 4 * MB);
    }
    trace.event(500 * MS, EventKind::WorkerPaused { worker: 0 });
    trace.event(
        900 * MS,
        EventKind::WorkerKilled {
            worker: 0,
            reason: "memory".into(),
        },
    );
    for (t, managed) in [(0, 100), (400, 900), (800, 950)] {
        trace.records.push(Record::Memory(MemorySample {
            time: t * MS,
            worker: 0,
            managed: managed * MB,
            unmanaged: 0,
            spilled: 0,
        }));
    }
    let report = trace.analyze();
    let f = findings(&report, "memory-pressure");
    assert_eq!(f.len(), 1, "{:#?}", report.findings);
    // A death makes it severe by ratio; 0.5 s of disk + 0.4 s over pause on one of two
    // workers (0.7 s) caps it at moderate.
    assert!(
        (f[0].impact_seconds - 0.7).abs() < 1e-9,
        "{}",
        f[0].impact_seconds
    );
    assert_eq!(f[0].severity, Severity::Moderate);
    assert_eq!(f[0].evidence("workers_killed"), Some(1.0));
    assert_eq!(f[0].evidence("pauses"), Some(1.0));
    // Over 80 % of 1 GiB from the 400 ms sample to the 800 ms one.
    assert!((f[0].evidence("seconds_over_pause").unwrap() - 0.4).abs() < 1e-9);
    assert_eq!(f[0].scope.worker.as_deref(), Some("tcp://10.0.0.0:8786"));

    let mut calm = Trace::with_limit(2, Some(1 << 30));
    balanced(&mut calm, 10);
    assert!(findings(&calm.analyze(), "memory-pressure").is_empty());
}

#[test]
fn straggler_worker_compares_busy_time() {
    let mut trace = Trace::new(3);
    for i in 0..10 {
        trace.task("process", i, 0, 300 * MS);
        trace.task("process", 100 + i, 1, 100 * MS);
        trace.task("process", 200 + i, 2, 100 * MS);
    }
    let report = trace.analyze();
    let f = findings(&report, "straggler-worker");
    assert_eq!(f.len(), 1, "{:#?}", report.findings);
    assert_eq!(f[0].evidence("load_ratio"), Some(3.0));
    assert_eq!(f[0].scope.worker.as_deref(), Some("tcp://10.0.0.0:8786"));
}

#[test]
fn recomputation_ignores_recovery_after_a_death() {
    let mut trace = Trace::new(2);
    for i in 0..10 {
        trace.task("clean", i, 0, 100 * MS);
    }
    for i in 0..10 {
        trace.task("clean", i, 1, 100 * MS);
    }
    let report = trace.analyze();
    let f = findings(&report, "recomputation");
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].evidence("keys"), Some(10.0));
    assert!((f[0].evidence("repeated_compute_seconds").unwrap() - 1.0).abs() < 1e-9);
    assert!(f[0].advice.contains(".persist()"));

    // The same re-runs after the first worker died are recovery.
    let mut recovered = Trace::new(2);
    for i in 0..10 {
        recovered.task("clean", i, 0, 100 * MS);
    }
    recovered.event(
        1_000 * MS,
        EventKind::WorkerKilled {
            worker: 0,
            reason: "oom".into(),
        },
    );
    recovered.idle_until(1_000 * MS);
    for i in 0..10 {
        recovered.task("clean", i, 1, 100 * MS);
    }
    assert!(findings(&recovered.analyze(), "recomputation").is_empty());
}

#[test]
fn serialization_flags_costly_deserialization() {
    let mut trace = Trace::new(2);
    for i in 0..20 {
        trace.task("from-pandas", i, (i % 2) as u32, 20 * MS);
        trace.before(Action::Deserialize, 80 * MS, 32 * MB);
    }
    let report = trace.analyze();
    let f = findings(&report, "serialization");
    assert_eq!(f.len(), 1);
    assert!((f[0].evidence("deserialize_share").unwrap() - 0.8).abs() < 1e-9);
}

#[test]
fn a_short_job_is_never_critical() {
    // 20x skew, but the whole job takes 0.2 s: the impact caps the severity.
    let mut trace = Trace::new(2);
    for i in 0..10 {
        trace.task("process", i, (i % 2) as u32, 5 * MS);
    }
    trace.task("process", 99, 0, 100 * MS);
    let report = trace.analyze();
    let skew = findings(&report, "skew");
    assert_eq!(skew[0].severity, Severity::Low);
}
