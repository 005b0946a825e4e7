//! Each rule on a small hand-built trace that triggers it, and on one that must not.

use std::io::Cursor;

use analyzer::{Finding, Report, Severity};
use traces::{
    Action, Cluster, Event, EventKind, GroupMetrics, Header, Key, KeyPart, MemoryFractions,
    MemorySample, Phase, Record, TaskRecord, TaskStatus, TraceReader, TraceWriter, WorkerSpec,
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
                host: None,
                host_cores: None,
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
            working_bytes: 0,
            resources: Default::default(),
            restricted_to: Vec::new(),
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

    fn worker_killed(&mut self, time: u64, worker: u32, reason: &str) {
        let reason = reason.into();
        self.event(time, EventKind::WorkerKilled { worker, reason });
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
fn skew_of_an_array_block_is_rechunked_not_salted() {
    // A 2-D array's blocks `('getitem-…', i, 0)`: ten of 100 ms and one of 2 s, all 1 MiB.
    let mut trace = Trace::new(2);
    for i in 0..11 {
        let compute = if i == 10 { 2_000 * MS } else { 100 * MS };
        trace.task("getitem", i, (i % 2) as u32, compute).key = Key::Tuple(vec![
            KeyPart::Str("getitem-0123456789abcdef".into()),
            KeyPart::Int(i),
            KeyPart::Int(0),
        ]);
    }
    let report = trace.analyze();
    let skew = findings(&report, "skew");
    assert_eq!(
        skew[0].advice,
        "The slow block is not larger than the others (1.00 MiB against a median 1.00 MiB): \
         its values cost more to process, or its worker was slow: split its work over ~20 \
         chunks with `rechunk` (regular chunks, the costly region cut finer), or set `chunks=` \
         when the array is created."
    );
    // The same run without sizes (a performance report's): nothing is said of them.
    for record in &mut trace.records {
        if let Record::Task(task) = record {
            task.nbytes = 0;
        }
    }
    let report = trace.analyze();
    assert!(
        findings(&report, "skew")[0]
            .advice
            .starts_with("The slow block's size is not recorded; its values cost more"),
        "{:#?}",
        report.findings
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
    // 2,000 × 1 ms of overhead, over 2 threads. The work would fit in one 100 ms task, which
    // would leave a thread idle: two partitions a thread, four of 25 ms.
    assert!(
        (tiny[0].impact_seconds - 0.998).abs() < 1e-6,
        "{}",
        tiny[0].impact_seconds
    );
    assert_eq!(tiny[0].evidence("suggested_partitions"), Some(4.0));
    assert!(
        tiny[0].advice.starts_with(
            "Use ~4 partitions of ~25.0 ms each instead of 2,000 (less than 100 ms each: 2 per \
             thread keep the cluster's 2 threads busy): `repartition(npartitions=4)`"
        ),
        "{}",
        tiny[0].advice
    );
    assert_eq!(tiny[0].severity, Severity::Moderate);

    let mut few = Trace::new(2);
    for i in 0..50 {
        few.task("from-sequence", i, (i % 2) as u32, 50_000);
    }
    assert!(findings(&few.analyze(), "tiny-partitions").is_empty());

    // One future per item (`client.map(inc, items)`: keys `inc-<hash>`, not a collection's
    // tuples): there is nothing to repartition, the items are batched.
    let mut futures = Trace::new(2);
    for i in 0..2_000 {
        let task = futures.task("inc", i, (i % 2) as u32, 250_000);
        task.key = Key::from(format!("inc-{i:032x}").as_str());
    }
    let report = futures.analyze();
    assert_eq!(
        findings(&report, "tiny-partitions")[0].advice,
        "Submit ~5 tasks of ~100 ms each instead of one per item (2,000): batch the items, ~400 \
         a task: `client.map(process_batch, batches)` over lists of that many, or \
         `dask.bag.from_sequence(items, npartitions=5).map(process)`."
    );

    // A 2-D array's chunks `('random-…', i, j)`: made bigger, not repartitioned.
    let mut array = Trace::new(2);
    for i in 0..2_000 {
        array.task("random", i, (i % 2) as u32, 250_000).key = Key::Tuple(vec![
            KeyPart::Str("random-0123456789abcdef".into()),
            KeyPart::Int(i / 50),
            KeyPart::Int(i % 50),
        ]);
    }
    let report = array.analyze();
    assert_eq!(
        findings(&report, "tiny-partitions")[0].advice,
        "Use ~5 chunks of ~100 ms each instead of 2,000: larger `chunks=` when the array is \
         created (`da.from_array(x, chunks=...)`, `da.random.random(shape, chunks=...)`), or \
         `x.rechunk(...)` to fewer, larger chunks before this step."
    );
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
    assert_eq!(f[0].evidence("saved_bytes"), Some((19 * 64 * MB) as f64));
    assert_eq!(
        f[0].title,
        "join: 20 tasks each carry a 64.0 MiB argument inline (1.25 GiB in all, 400 ms \
         deserializing)"
    );
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

    // A Dask task stream records no submissions: gaps of 10 ms or more are the client's,
    // beyond what the per-task scheduling cost explains (20 tasks × 1 ms on 2 threads).
    let mut stream = Trace::new(2);
    for round in 0..10u64 {
        stream.idle_until(round * 300 * MS);
        stream.task("score", round as i64 * 2, 0, 100 * MS);
        stream.task("score", round as i64 * 2 + 1, 1, 100 * MS);
    }
    let report = stream.analyze();
    let f = findings(&report, "idle-gaps");
    assert!((f[0].evidence("waiting_on_client_seconds").unwrap() - 1.79).abs() < 1e-9);
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
    assert!(
        f[0].advice
            .starts_with("Move less data (16.0 MiB per transfer on average).")
    );

    // The same time in 8-byte transfers: their round trips cost it, not their bytes.
    let mut small = Trace::new(2);
    for i in 0..20 {
        small.task("sum-partial", i, (i % 2) as u32, 10 * MS);
        small.before(Action::Transfer, 90 * MS, 8);
    }
    let report = small.analyze();
    assert!(
        findings(&report, "communication")[0]
            .advice
            .starts_with("The transfers are small (8 B on average): each costs a round trip"),
        "{:#?}",
        report.findings
    );

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
    trace.worker_killed(900 * MS, 0, "memory");
    for (t, managed) in [(0, 100), (400, 900), (800, 950)] {
        trace.records.push(Record::Memory(MemorySample {
            time: t * MS,
            worker: 0,
            managed: managed * MB,
            unmanaged: 0,
            spilled: 0,
            cpu: None,
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
    // Paused from the pause event to its death.
    assert!((f[0].evidence("paused_seconds").unwrap() - 0.4).abs() < 1e-9);
    assert_eq!(f[0].scope.worker.as_deref(), Some("tcp://10.0.0.0:8786"));

    let mut calm = Trace::with_limit(2, Some(1 << 30));
    balanced(&mut calm, 10);
    assert!(findings(&calm.analyze(), "memory-pressure").is_empty());
}

#[test]
fn memory_pressure_sizes_the_partitions_that_fill_memory() {
    // 20 loads of 64 MiB results spilled, then a tree of 8-byte sums: more groups of tiny
    // results than of big ones, but the loads are what filled the workers.
    let spilling = |load_bytes: u64| {
        let mut trace = Trace::with_limit(2, Some(1 << 30));
        for i in 0..20 {
            trace.task("load", i, (i % 2) as u32, 100 * MS).nbytes = load_bytes;
            trace.before(Action::DiskWrite, 50 * MS, load_bytes);
        }
        for group in ["sum", "sum-partial", "sum-aggregate"] {
            trace.task(group, 0, 0, MS).nbytes = 8;
        }
        let report = trace.analyze();
        findings(&report, "memory-pressure")[0].advice.clone()
    };
    let advice = spilling(64 * MB);
    assert!(
        advice.contains(
            "smaller partitions (`load`, whose results fill memory, are a median 64.0 MiB; try \
             ~16.0 MiB)"
        ),
        "{advice}"
    );
    // Results of 100 KiB do not fill a worker of 1 GiB: no partition size is made up.
    let advice = spilling(100 << 10);
    assert!(
        advice.starts_with(
            "Give each task less data or each worker more memory: smaller partitions, a larger"
        ),
        "{advice}"
    );
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

    // All the work on one of two workers: no ratio to a median of nothing.
    let mut lopsided = Trace::new(2);
    for i in 0..10 {
        lopsided.task("process", i, 0, 300 * MS);
    }
    let report = lopsided.analyze();
    let f = findings(&report, "straggler-worker");
    assert_eq!(
        f[0].title,
        "worker tcp://10.0.0.0:8786 was busy 3.00 s (100% of the run) while the median worker \
         ran nothing"
    );
    assert_eq!(f[0].evidence("median_seconds"), Some(0.0));
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
    assert!(
        f[0].title
            .starts_with("10 keys were computed more than once (1.00 s"),
        "{}",
        f[0].title
    );
    // One key is one key.
    let mut once = Trace::new(2);
    for i in 0..4 {
        once.task("clean", i, 0, 100 * MS);
    }
    once.task("clean", 0, 1, 400 * MS);
    let report = once.analyze();
    assert!(
        findings(&report, "recomputation")[0]
            .title
            .starts_with("1 key was computed more than once (400 ms"),
        "{:#?}",
        report.findings
    );

    // The same re-runs after the first worker died are recovery.
    let mut recovered = Trace::new(2);
    for i in 0..10 {
        recovered.task("clean", i, 0, 100 * MS);
    }
    recovered.worker_killed(1_000 * MS, 0, "oom");
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

impl Trace {
    /// `workers` × `threads`, each worker with `memory_limit`.
    fn threads(workers: u32, threads: u32, memory_limit: Option<u64>) -> Trace {
        let mut trace = Trace::with_limit(workers, memory_limit);
        for spec in &mut trace.header.cluster.workers {
            spec.threads = threads;
        }
        trace
    }

    /// A task at a given place and time (no lane clock).
    #[allow(clippy::too_many_arguments)]
    fn at(
        &mut self,
        group: &str,
        i: i64,
        worker: u32,
        thread: u32,
        start: u64,
        compute: u64,
    ) -> &mut TaskRecord {
        let saved = self.clock[worker as usize];
        self.clock[worker as usize] = start;
        let task = self.task(group, i, worker, compute);
        task.thread = thread;
        let task: *mut TaskRecord = task;
        self.clock[worker as usize] = saved;
        // SAFETY: `task` points into `self.records`, which nothing else touches meanwhile.
        unsafe { &mut *task }
    }

    fn sample(&mut self, time: u64, worker: u32, managed: u64, unmanaged: u64, cpu: Option<f64>) {
        self.records.push(Record::Memory(MemorySample {
            time,
            worker,
            managed,
            unmanaged,
            spilled: 0,
            cpu,
        }));
    }
}

/// Pure-Python work on 4 threads of one worker: 400 ms with 4 busy, 100 ms alone.
fn gil_bound(crowded: u64) -> Trace {
    let mut trace = Trace::threads(1, 4, None);
    let mut i = 0;
    for round in 0..3 {
        for thread in 0..4 {
            trace.at("py_work", i, 0, thread, round * crowded, crowded);
            i += 1;
        }
    }
    for k in 0..4 {
        trace.at("py_work", i, 0, 0, 3 * crowded + k * 100 * MS, 100 * MS);
        i += 1;
    }
    trace
}

#[test]
fn gil_contention_sees_tasks_slow_down_with_busy_threads() {
    let report = gil_bound(400 * MS).analyze();
    let f = findings(&report, "gil-contention");
    assert_eq!(f.len(), 1, "{:#?}", report.findings);
    assert!((f[0].evidence("slowdown_ratio").unwrap() - 4.0).abs() < 0.01);
    assert!(
        f[0].advice.contains("threads_per_worker=1"),
        "{}",
        f[0].advice
    );
    // 12 tasks lose 300 ms each, spread over 4 threads: 0.9 s.
    assert!(
        (f[0].impact_seconds - 0.9).abs() < 0.01,
        "{}",
        f[0].impact_seconds
    );
    assert_eq!(f[0].severity, Severity::Moderate);

    // NumPy on two cores with four threads: twice slower, not four times: not the GIL.
    let report = gil_bound(200 * MS).analyze();
    assert!(
        findings(&report, "gil-contention").is_empty(),
        "{:#?}",
        report.findings
    );
}

#[test]
fn gil_contention_from_cpu_samples_when_no_task_ran_alone() {
    // Four busy threads all the time, the worker at one core: serialized.
    let mut trace = Trace::threads(1, 4, None);
    for round in 0..10 {
        for thread in 0..4 {
            trace.at(
                "py_work",
                round * 4 + thread as i64,
                0,
                thread,
                round as u64 * 400 * MS,
                400 * MS,
            );
        }
    }
    for k in 0..=16 {
        trace.sample(k * 250 * MS, 0, 0, 0, Some(1.02));
    }
    let report = trace.analyze();
    let f = findings(&report, "gil-contention");
    assert_eq!(f.len(), 1, "{:#?}", report.findings);
    assert!(f[0].title.contains("about one core"), "{}", f[0].title);

    // The same at 3.9 cores: the threads ran together.
    for record in &mut trace.records {
        if let Record::Memory(m) = record {
            m.cpu = Some(3.9);
        }
    }
    assert!(findings(&trace.analyze(), "gil-contention").is_empty());
}

fn failing(trace: &mut Trace, key: i64, attempts: u32, error: &str, then_ok: bool) {
    for attempt in 1..=attempts {
        let task = trace.task("load", key, 0, 20 * MS);
        task.status = TaskStatus::Error;
        task.attempt = attempt;
        task.error = Some(error.to_string());
        trace.idle_until(trace.clock[0] + 200 * MS);
    }
    if then_ok {
        trace.task("load", key, 0, 20 * MS).attempt = attempts + 1;
    }
}

#[test]
fn task_failures_name_the_missing_module_and_keep_retries_off_idle_gaps() {
    let mut trace = Trace::new(2);
    balanced(&mut trace, 10);
    let error = "ModuleNotFoundError(\"No module named 'taskscope_missing'\")";
    failing(&mut trace, 100, 3, error, false);
    failing(&mut trace, 101, 3, error, false);
    let report = trace.analyze();
    let f = findings(&report, "task-failures");
    assert_eq!(f.len(), 1, "{:#?}", report.findings);
    assert_eq!(f[0].evidence("failed_attempts"), Some(6.0));
    assert_eq!(f[0].evidence("keys_never_succeeded"), Some(2.0));
    assert_eq!(f[0].evidence("retries"), Some(4.0));
    assert!(f[0].severity >= Severity::Moderate);
    assert!(
        f[0].advice
            .contains("PipInstall(packages=[\"taskscope_missing\"])")
    );
    assert_eq!(report.findings[0].rule, "task-failures");
    // The waits between the attempts are the retries', not the client's.
    assert!(
        findings(&report, "idle-gaps").is_empty(),
        "{:#?}",
        report.findings
    );

    // A flaky error that a retry fixes: low at most.
    let mut flaky = Trace::new(2);
    balanced(&mut flaky, 10);
    failing(
        &mut flaky,
        100,
        1,
        "ConnectionResetError(104, 'reset by peer')",
        true,
    );
    let report = flaky.analyze();
    let f = findings(&report, "task-failures");
    assert!(f.iter().all(|f| f.severity <= Severity::Low), "{f:#?}");
    assert!(
        report.worst() < Severity::Moderate,
        "{:#?}",
        report.findings
    );
}

#[test]
fn unmanaged_memory_sees_a_leak_not_the_interpreter() {
    const GIB: u64 = 1 << 30;
    let mut leak = Trace::with_limit(2, Some(GIB));
    balanced(&mut leak, 100);
    for k in 0..=50u64 {
        for w in 0..2 {
            leak.sample(k * 100 * MS, w, MB, (100 + k * 14) * MB, None);
        }
    }
    let report = leak.analyze();
    let f = findings(&report, "unmanaged-memory");
    assert_eq!(f.len(), 1, "{:#?}", report.findings);
    assert!(f[0].severity >= Severity::Moderate, "{:#?}", f[0]);
    assert!(f[0].advice.contains("malloc_trim"));
    assert!(f[0].evidence("growth_share").unwrap() > 0.4);

    // 150 MiB of interpreter and libraries on a 1 GiB worker: nothing to report.
    let mut calm = Trace::with_limit(2, Some(GIB));
    balanced(&mut calm, 100);
    for k in 0..=50u64 {
        for w in 0..2 {
            calm.sample(k * 100 * MS, w, 20 * MB, 150 * MB, None);
        }
    }
    assert!(findings(&calm.analyze(), "unmanaged-memory").is_empty());
}

fn io_bound(cpu_seconds: f64, noncpu_seconds: f64) -> Trace {
    waiting("fetch", cpu_seconds, noncpu_seconds)
}

/// 40 tasks of `group` on two one-thread workers, and Dask's CPU metrics for the group.
fn waiting(group: &str, cpu_seconds: f64, noncpu_seconds: f64) -> Trace {
    let mut trace = Trace::new(2);
    for i in 0..40 {
        trace.task(group, i, (i % 2) as u32, 200 * MS);
    }
    trace.records.push(Record::GroupMetrics(GroupMetrics {
        time: 4_000 * MS,
        group: group.into(),
        metrics: [
            ("execute/thread-cpu/seconds".to_string(), cpu_seconds),
            ("execute/thread-noncpu/seconds".to_string(), noncpu_seconds),
        ]
        .into(),
    }));
    trace
}

#[test]
fn threads_per_worker_sees_waiting_tasks_on_single_thread_workers() {
    let report = io_bound(0.4, 7.6).analyze();
    let f = findings(&report, "threads-per-worker");
    assert_eq!(f.len(), 1, "{:#?}", report.findings);
    assert!((f[0].evidence("waiting_share").unwrap() - 0.95).abs() < 1e-9);
    assert_eq!(f[0].evidence("suggested_threads"), Some(16.0));
    assert!(
        f[0].advice.contains("threads_per_worker=16"),
        "{}",
        f[0].advice
    );

    // CPU-bound: one thread per worker is right.
    let report = io_bound(7.6, 0.4).analyze();
    assert!(findings(&report, "threads-per-worker").is_empty());

    // A P2P shuffle's transfer tasks wait on its comms: the communication rule's time, not
    // I/O that more threads would overlap.
    let report = waiting("shuffle-transfer", 0.0, 8.0).analyze();
    assert!(
        findings(&report, "threads-per-worker").is_empty(),
        "{:#?}",
        report.findings
    );
}

#[test]
fn skew_looks_past_each_workers_warm_up_task() {
    // `slow`: the tasks taking 2 s.
    let run = |slow: &[i64]| {
        let mut trace = Trace::new(2);
        for i in 0..20 {
            let compute = if slow.contains(&i) {
                2_000 * MS
            } else {
                100 * MS
            };
            trace.task("read", i, (i % 2) as u32, compute);
        }
        trace.analyze()
    };
    // Every worker's first task slow: imports and first allocations, not data.
    let report = run(&[0, 1]);
    assert!(
        findings(&report, "skew").is_empty(),
        "{:#?}",
        report.findings
    );
    // One worker's first task slow, the other's not: a hot partition that ran first.
    let report = run(&[0]);
    assert_eq!(findings(&report, "skew").len(), 1, "{:#?}", report.findings);
    // A slow task later on: skew.
    let report = run(&[10]);
    assert_eq!(findings(&report, "skew").len(), 1, "{:#?}", report.findings);
}

#[test]
fn p2p_shuffle_tasks_count_as_communication() {
    let mut trace = Trace::new(2);
    for i in 0..20 {
        trace.task("shuffle-transfer", i, (i % 2) as u32, 200 * MS);
        trace.task("process", i, (i % 2) as u32, 50 * MS);
    }
    let report = trace.analyze();
    let f = findings(&report, "communication");
    assert_eq!(f.len(), 1, "{:#?}", report.findings);
    assert_eq!(f[0].scope.group.as_deref(), Some("shuffle-transfer"));
    assert!(f[0].advice.contains("set_index"));
    assert!(findings(&report, "skew").is_empty());
}

#[test]
fn a_killed_worker_is_named_with_the_task_it_was_running() {
    let mut trace = Trace::with_limit(2, Some(1 << 30));
    balanced(&mut trace, 10);
    trace.sample(900 * MS, 0, 10 * MB, 980 * MB, None);
    let task = trace.task("make_big", 0, 0, 500 * MS);
    task.status = TaskStatus::Lost;
    let stop = task.phases[0].stop;
    trace.worker_killed(stop, 0, "worker lost");
    let report = trace.analyze();
    let f = findings(&report, "memory-pressure");
    assert_eq!(f.len(), 1, "{:#?}", report.findings);
    assert!(
        f[0].title.contains("make_big-0123456789abcdef"),
        "{}",
        f[0].title
    );
    assert!(f[0].advice.contains("make_big"), "{}", f[0].advice);
    assert!(
        f[0].advice
            .contains("terminate line (95% of its 1.00 GiB limit, 973 MiB)"),
        "{}",
        f[0].advice
    );
    assert!(!f[0].title.contains("paused"), "{}", f[0].title);
}

#[test]
fn the_task_whose_allocation_killed_a_worker_is_named_over_its_neighbour() {
    // The engine records what each attempt allocated: of the two attempts lost on worker 0,
    // the one that allocated 1.2 GiB killed it, though its neighbour on the other thread was
    // recorded lost a moment later.
    let mut trace = Trace::with_limit(2, Some(1 << 30));
    balanced(&mut trace, 10);
    let task = trace.task("make_big", 0, 0, 500 * MS);
    task.status = TaskStatus::Lost;
    task.working_bytes = 1200 << 20;
    let (start, stop) = (task.phases[0].start, task.phases[0].stop);
    let neighbour = trace.task("small", 0, 0, 1);
    neighbour.status = TaskStatus::Lost;
    neighbour.thread = 1;
    neighbour.phases[0].start = start;
    neighbour.phases[0].stop = stop + MS;
    trace.worker_killed(stop + MS, 0, "worker lost");
    let report = trace.analyze();
    let f = findings(&report, "memory-pressure");
    assert_eq!(f.len(), 1, "{:#?}", report.findings);
    assert!(f[0].title.contains("make_big-"), "{}", f[0].title);
    assert!(
        f[0].advice.contains(
            "needs more memory than a worker has: it allocated 1.17 GiB while it ran (117% of \
             the limit), and its worker went past the terminate line"
        ),
        "{}",
        f[0].advice
    );
    assert_eq!(
        f[0].evidence("killer_allocated_bytes"),
        Some((1200 << 20) as f64)
    );
}

#[test]
fn a_worker_holding_the_data_is_a_straggler_with_two_workers() {
    let mut trace = Trace::new(2);
    for i in 0..30 {
        trace.task("process", i, if i % 4 == 0 { 1 } else { 0 }, 100 * MS);
    }
    let report = trace.analyze();
    let f = findings(&report, "straggler-worker");
    assert_eq!(f.len(), 1, "{:#?}", report.findings);
    assert!(f[0].severity >= Severity::Moderate, "{:#?}", f[0]);
}

#[test]
fn failures_differing_only_in_numbers_are_one_failure() {
    let mut trace = Trace::new(2);
    balanced(&mut trace, 10);
    for part in [9, 36, 7] {
        let error = format!("ConnectionError('reset while fetching part {part}')");
        failing(&mut trace, part, 1, &error, true);
    }
    let report = trace.analyze();
    let f = findings(&report, "task-failures");
    assert_eq!(f.len(), 1, "{:#?}", report.findings);
    assert_eq!(f[0].evidence("failed_attempts"), Some(3.0));
    assert_eq!(f[0].evidence("keys"), Some(3.0));
}

fn transfer_metrics(serialize: f64, network: f64) -> Record {
    Record::GroupMetrics(GroupMetrics {
        time: 2_000 * MS,
        group: String::new(),
        metrics: [
            ("get-data/serialize/seconds".to_string(), serialize),
            (
                "gather-dep/deserialize/seconds".to_string(),
                serialize / 4.0,
            ),
            ("gather-dep/network/seconds".to_string(), network),
        ]
        .into(),
    })
}

#[test]
fn serialization_from_dask_transfer_metrics_explains_slow_transfers() {
    let objects = |serialize: f64| {
        let mut trace = Trace::new(2);
        for i in 0..8 {
            trace.task("merge_records", i, (i % 2) as u32, 5 * MS);
            trace.before(Action::Transfer, 400 * MS, 14 * MB);
        }
        trace.records.push(transfer_metrics(serialize, 2.9));
        trace.analyze()
    };
    let report = objects(1.2);
    assert_eq!(
        report.findings[0].rule, "serialization",
        "{:#?}",
        report.findings
    );
    assert!(findings(&report, "communication").is_empty());
    assert!(
        report.findings[0]
            .evidence("explains_communication_seconds")
            .is_some()
    );
    // NumPy data: pickling is nothing, the transfers are communication.
    let report = objects(0.005);
    assert_eq!(
        report.findings[0].rule, "communication",
        "{:#?}",
        report.findings
    );
    assert!(findings(&report, "serialization").is_empty());

    // Results pickled for the client's gathers, and nothing received by a worker: no data
    // moved between workers (it said "100% ... (197 ms of 0 ns)").
    let mut trace = Trace::new(2);
    for i in 0..8 {
        trace.task("merge_records", i, (i % 2) as u32, 5 * MS);
    }
    trace.records.push(Record::GroupMetrics(GroupMetrics {
        time: 2_000 * MS,
        group: String::new(),
        metrics: [("get-data/serialize/seconds".to_string(), 0.2)].into(),
    }));
    let report = trace.analyze();
    assert!(
        findings(&report, "serialization").is_empty(),
        "{:#?}",
        report.findings
    );
}

#[test]
fn a_gap_while_a_worker_restarts_is_not_the_clients() {
    // No submissions (a task stream): a dead worker's replacement starts after a long gap.
    let mut trace = Trace::new(3);
    for i in 0..8 {
        trace.task("sort", i, (i % 2) as u32, 100 * MS);
    }
    trace.idle_until(2_500 * MS);
    for i in 8..12 {
        trace.task("sort", i, 2, 100 * MS);
    }
    let report = trace.analyze();
    assert!(
        findings(&report, "idle-gaps").is_empty(),
        "{:#?}",
        report.findings
    );
}

#[test]
fn a_large_argument_explains_the_clients_gaps() {
    let mut trace = Trace::new(2);
    for i in 0..16u64 {
        // The client pickles 40 MB for each task before submitting it.
        trace.idle_until(i * 200 * MS);
        trace.event(
            i * 200 * MS + 150 * MS,
            EventKind::GraphSubmitted {
                tasks: 1,
                client: None,
            },
        );
        trace.idle_until(i * 200 * MS + 150 * MS);
        trace
            .task("score_rows", i as i64, (i % 2) as u32, MS)
            .inline_bytes = 40 * MB;
    }
    let report = trace.analyze();
    assert_eq!(
        report.findings[0].rule, "oversized-argument",
        "{:#?}",
        report.findings
    );
    assert!(
        findings(&report, "idle-gaps").is_empty(),
        "{:#?}",
        report.findings
    );
    assert!(
        report.findings[0]
            .evidence("explains_idle_gaps_seconds")
            .unwrap()
            > 1.0
    );
    // Unpickling untimed, as in Dask's traces: not "0 ns deserializing".
    assert_eq!(
        report.findings[0].title,
        "score_rows: 16 tasks each carry a 40.0 MiB argument inline (640 MiB in all)"
    );
}
