//! The simulator: the same scheduler as the engine, on a virtual clock. Checked against the
//! engine on one graph, and against hand-made traces whose replay is known to the nanosecond.

use std::collections::BTreeMap;

use engine::simulate::{Model, Prediction, Replay, Shape, simulate};
use engine::{Cluster, ClusterConfig, GraphBuilder, Network, Work};
use traces::{
    Action, Cluster as ClusterSpec, Event, EventKind, Header, Key, MemoryFractions, Phase, Record,
    TaskRecord, TaskStatus, TraceReader, WorkerSpec,
};

const MS: u64 = 1_000_000;

fn model(replay: &Replay, workers: u32, threads: u32) -> Model {
    Model::recorded(
        replay,
        MemoryFractions::default(),
        Shape { workers, threads },
    )
}

/// Two chains (the first with 4x bigger results), a join of their ends, and a tail after it:
/// every placement follows from data locality, so no timing can change it.
fn chains() -> engine::Graph {
    let mut graph = GraphBuilder::new();
    let mut ends = Vec::new();
    for (chain, bytes) in [("a", 64 * 1024), ("b", 16 * 1024)] {
        let mut previous = None;
        for step in 0..6 {
            let key = Key::from(format!("{chain}{step}-{chain}").as_str());
            let deps: Vec<_> = previous.into_iter().collect();
            previous = Some(graph.add_with_deps(key, Work::new(2 * MS, bytes), &deps));
        }
        ends.extend(previous);
    }
    let join = graph.add_with_deps(Key::from("join"), Work::new(2 * MS, 4096), &ends);
    let tail = graph.add_with_deps(Key::from("tail-1"), Work::new(MS, 8), &[join]);
    graph.add_with_deps(Key::from("tail-2"), Work::new(MS, 8), &[tail]);
    graph.build().unwrap()
}

#[test]
fn the_engine_and_the_simulator_place_a_graph_alike() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run.ndjson");
    let cluster = Cluster::start(ClusterConfig {
        workers: 2,
        threads: 1,
        record_to: Some(path.clone()),
        ..ClusterConfig::default()
    })
    .unwrap();
    cluster.client().compute(&chains()).unwrap();
    cluster.shutdown().unwrap();
    let (_, records) = TraceReader::open(&path).unwrap().read_all().unwrap();
    let engine: BTreeMap<String, u32> = records
        .iter()
        .filter_map(|r| match r {
            Record::Task(t) if t.status == TaskStatus::Ok => Some((t.key.to_string(), t.worker)),
            _ => None,
        })
        .collect();

    let replay = Replay::from_graphs(vec![chains()], recorded(2, 1));
    let mut model = model(&replay, 2, 1);
    model.keep_placements = true;
    let simulated: BTreeMap<String, u32> = simulate(&replay, &model)
        .placements
        .into_iter()
        .map(|(key, worker)| (key.to_string(), worker))
        .collect();
    assert_eq!(simulated, engine);
    // The join went to the bigger inputs, and the tail followed it.
    assert_eq!(engine["join"], engine["a5-a"]);
    assert_eq!(engine["tail-2"], engine["a5-a"]);
    assert_ne!(engine["b0-b"], engine["a0-a"]);
}

/// A recorded run's figures for replays built from graphs.
fn recorded(workers: u32, threads: u32) -> engine::simulate::Recorded {
    engine::simulate::Recorded {
        shape: Shape { workers, threads },
        wall_ns: 0,
        busy_ns: 0,
        utilisation: 0.0,
        memory_limit: None,
        network: Network::default(),
        round_latency_ns: None,
        disk_write_bps: 1_000_000_000,
        disk_read_bps: 1_000_000_000,
        dispatch_ns: 0,
        ready_latency_ns: 0,
        inline_bps: None,
        worker_resources: Vec::new(),
        worker_host: Vec::new(),
        host_cores: Vec::new(),
    }
}

fn header(workers: u32) -> Header {
    Header::new(
        "test",
        0,
        ClusterSpec {
            workers: (0..workers)
                .map(|id| WorkerSpec {
                    id,
                    name: format!("w{id}"),
                    threads: 1,
                    memory_limit: None,
                    resources: BTreeMap::new(),
                    host: None,
                    host_cores: None,
                })
                .collect(),
            memory: MemoryFractions::default(),
        },
    )
}

fn phase(action: Action, start: u64, stop: u64, bytes: Option<u64>, peer: Option<u32>) -> Phase {
    Phase {
        action,
        start,
        stop,
        bytes,
        peer,
    }
}

fn task(key: &str, worker: u32, deps: &[&str], phases: Vec<Phase>) -> Record {
    Record::Task(TaskRecord {
        key: Key::from(key),
        group: Key::from(key).group(),
        worker,
        thread: 0,
        status: TaskStatus::Ok,
        nbytes: 1000,
        inline_bytes: 0,
        working_bytes: 0,
        resources: Default::default(),
        restricted_to: Vec::new(),
        deps: deps.iter().map(|d| Key::from(*d)).collect(),
        attempt: 1,
        error: None,
        phases,
    })
}

fn submitted(time: u64) -> Record {
    Record::Event(Event {
        time,
        kind: EventKind::GraphSubmitted {
            tasks: 1,
            client: None,
        },
    })
}

/// Four 10 ms loads, two per worker back to back, and a 5 ms sum on worker 0 that fetched the
/// two results of worker 1 in one 1 ms transfer: 26 ms.
fn map_reduce() -> Vec<Record> {
    use Action::{Compute, Queued, Transfer};
    let load = |key, worker, start| {
        task(
            key,
            worker,
            &[],
            vec![
                phase(Queued, 0, start, None, None),
                phase(Compute, start, start + 10 * MS, None, None),
            ],
        )
    };
    vec![
        submitted(0),
        load("load-0", 0, 0),
        load("load-1", 1, 0),
        load("load-2", 0, 10 * MS),
        load("load-3", 1, 10 * MS),
        task(
            "sum",
            0,
            &["load-0", "load-1", "load-2", "load-3"],
            vec![
                phase(Queued, 20 * MS, 20 * MS, None, None),
                phase(Transfer, 20 * MS, 21 * MS, Some(2000), Some(1)),
                phase(Compute, 21 * MS, 26 * MS, None, None),
            ],
        ),
    ]
}

#[test]
fn a_replay_on_the_recorded_shape_gives_back_the_recorded_wall_time() {
    let replay = Replay::from_trace(&header(2), map_reduce()).unwrap();
    let r = &replay.recorded;
    assert_eq!(
        r.shape,
        Shape {
            workers: 2,
            threads: 1
        }
    );
    assert_eq!(r.wall_ns, 26 * MS);
    // One small transfer: its time is the latency; no big one: Dask's 100 MB/s.
    assert_eq!(r.network.latency_ns, MS);
    assert_eq!(r.network.bandwidth, Some(100_000_000));
    assert_eq!(r.dispatch_ns, 0);
    assert!(replay.has_dependencies);

    // The sum's two remote inputs come from one peer: one latency, 2 x 1000 B at 100 MB/s.
    let p: Prediction = simulate(&replay, &model(&replay, 2, 1));
    assert_eq!(p.wall_ns, 20 * MS + MS + 20_000 + 5 * MS);
    assert_eq!(p.attempts, 5);
    assert_eq!(p.transfers, 2);
    assert_eq!(p.transferred_bytes, 2000);
    assert_eq!(p.busy_ns, 4 * 10 * MS + MS + 20_000 + 5 * MS);

    // On four workers the loads run at once; the sum fetches from three peers at once: one
    // latency, and the three results' bytes one after the other on its link.
    let p = simulate(&replay, &model(&replay, 4, 1));
    assert_eq!(p.wall_ns, 10 * MS + MS + 30_000 + 5 * MS);
    // One worker: no transfer at all.
    let p = simulate(&replay, &model(&replay, 1, 1));
    assert_eq!(p.wall_ns, 45 * MS);
    assert_eq!(p.transfers, 0);

    assert_eq!(replay.critical_path_ns(&model(&replay, 2, 1)), 15 * MS);
}

#[test]
fn a_round_of_peers_gathered_at_once_waits_for_the_slowest_of_their_transfers() {
    use Action::{Compute, Transfer};
    // Ten loads on worker 1, and ten tasks on worker 0 that each fetched one of them; their
    // small transfers took 1, 2, …, 10 ms.
    let mut records = vec![submitted(0)];
    for i in 0..10u64 {
        let load = format!("load-{i}");
        records.push(task(&load, 1, &[], vec![phase(Compute, 0, MS, None, None)]));
        records.push(task(
            &format!("use-{i}"),
            0,
            &[&load],
            vec![
                phase(Transfer, MS, (2 + i) * MS, Some(1000), Some(1)),
                phase(Compute, (2 + i) * MS, (3 + i) * MS, None, None),
            ],
        ));
    }
    let replay = Replay::from_trace(&header(2), records).unwrap();
    let rounds = replay.recorded.round_latency_ns.unwrap();
    // One peer: the median; three: the 3/4 quantile; ten: the 10/11 quantile, the slowest here.
    assert_eq!(replay.recorded.network.latency_ns, 6 * MS);
    assert_eq!([rounds[0], rounds[2], rounds[9]], [6 * MS, 8 * MS, 10 * MS]);
    // 25 peers: two full rounds of ten and one of five (5/6 quantile: index 8 of 10).
    let model = model(&replay, 2, 1);
    assert_eq!(model.gather_latency_ns(25), 2 * 10 * MS + 9 * MS);
    assert_eq!(model.gather_latency_ns(0), 0);
    // A latency set by hand is the same for any round.
    let mut flat = model;
    flat.set_latency(4 * MS);
    assert_eq!(flat.gather_latency_ns(25), 3 * 4 * MS);
}

/// `key` on `worker`: queued from `queued`, computing 10 ms from `start`.
fn queued_then_computed(key: &str, worker: u32, deps: &[&str], queued: u64, start: u64) -> Record {
    use Action::{Compute, Queued};
    task(
        key,
        worker,
        deps,
        vec![
            phase(Queued, queued, start, None, None),
            phase(Compute, start, start + 10 * MS, None, None),
        ],
    )
}

#[test]
fn a_dependent_task_reaches_its_worker_a_scheduler_round_trip_after_its_input() {
    // A chain on one worker: b and c each arrive 2 ms after their input ended.
    let chain = vec![
        submitted(0),
        queued_then_computed("a", 0, &[], 0, 0),
        queued_then_computed("b", 0, &["a"], 12 * MS, 12 * MS),
        queued_then_computed("c", 0, &["b"], 24 * MS, 24 * MS),
    ];
    let replay = Replay::from_trace(&header(1), chain.clone()).unwrap();
    assert_eq!(replay.recorded.ready_latency_ns, 2 * MS);
    assert_eq!(replay.recorded.dispatch_ns, 0);
    let model = model(&replay, 1, 1);
    assert_eq!(simulate(&replay, &model).wall_ns, 34 * MS);
    assert_eq!(replay.critical_path_ns(&model), 34 * MS);

    // Inputs made on another worker are left out of the fit: their end is on another clock,
    // and a fetch may lie in between.
    let mut records = chain;
    records.push(queued_then_computed("x", 1, &["a"], 40 * MS, 40 * MS));
    records.push(queued_then_computed("y", 1, &["a"], 45 * MS, 50 * MS));
    let replay = Replay::from_trace(&header(2), records).unwrap();
    assert_eq!(replay.recorded.ready_latency_ns, 2 * MS);
}

#[test]
fn a_client_that_waited_between_graphs_waits_as_long_in_the_replay() {
    use Action::{Compute, Queued};
    let one = |key, start| {
        task(
            key,
            0,
            &[],
            vec![
                phase(Queued, start, start, None, None),
                phase(Compute, start, start + 10 * MS, None, None),
            ],
        )
    };
    // Graph 1 at 0 ms, done at 10; the client works 20 ms; graph 2 at 30 ms, done at 40.
    let records = vec![
        submitted(0),
        one("first", 0),
        submitted(30 * MS),
        one("second", 30 * MS),
    ];
    let replay = Replay::from_trace(&header(1), records).unwrap();
    assert_eq!(replay.submissions.len(), 2);
    assert_eq!(replay.submissions[1].client_gap_ns, Some(20 * MS));
    assert_eq!(simulate(&replay, &model(&replay, 1, 1)).wall_ns, 40 * MS);
    assert_eq!(replay.critical_path_ns(&model(&replay, 4, 1)), 40 * MS);
}

#[test]
fn failed_attempts_are_replayed_as_retries() {
    use Action::{Compute, Queued};
    let mut failed = task(
        "flaky",
        0,
        &[],
        vec![
            phase(Queued, 0, 0, None, None),
            phase(Compute, 0, 5 * MS, None, None),
        ],
    );
    if let Record::Task(t) = &mut failed {
        t.status = TaskStatus::Error;
        t.error = Some("ConnectionError".into());
    }
    let retried = task(
        "flaky",
        0,
        &[],
        vec![
            phase(Queued, 5 * MS, 5 * MS, None, None),
            phase(Compute, 5 * MS, 10 * MS, None, None),
        ],
    );
    let replay = Replay::from_trace(&header(1), vec![submitted(0), failed, retried]).unwrap();
    let p = simulate(&replay, &model(&replay, 1, 1));
    assert_eq!((p.attempts, p.erred, p.wall_ns), (2, 0, 10 * MS));
}

/// `key` on `worker`, ready at `ready`, computing `compute` ns from `start`.
fn attempt(key: &str, worker: u32, deps: &[&str], start: u64, compute: u64) -> TaskRecord {
    use Action::{Compute, Queued};
    let Record::Task(t) = task(
        key,
        worker,
        deps,
        vec![
            phase(Queued, start, start, None, None),
            phase(Compute, start, start + compute, None, None),
        ],
    ) else {
        unreachable!()
    };
    t
}

/// Four independent 10 ms tasks of group `burn` recorded on two workers of one host of
/// `cores` cores, using `cpu` of their compute time on the CPU (`None`: no CPU time recorded).
fn crowd(cores: Option<u32>, cpu: Option<f64>) -> Replay {
    let mut header = header(2);
    for w in &mut header.cluster.workers {
        w.host = Some("node-1".into());
        w.host_cores = cores;
    }
    let mut records = vec![submitted(0)];
    for (i, (worker, start)) in [(0, 0), (1, 0), (0, 10 * MS), (1, 10 * MS)]
        .into_iter()
        .enumerate()
    {
        records.push(Record::Task(attempt(
            &format!("burn-{i}"),
            worker,
            &[],
            start,
            10 * MS,
        )));
    }
    if let Some(cpu) = cpu {
        records.push(Record::GroupMetrics(traces::GroupMetrics {
            time: 20 * MS,
            group: "burn".into(),
            metrics: [
                ("execute/thread-cpu/seconds".to_string(), 0.04 * cpu),
                (
                    "execute/thread-noncpu/seconds".to_string(),
                    0.04 * (1.0 - cpu),
                ),
            ]
            .into(),
        }));
    }
    Replay::from_trace(&header, records).unwrap()
}

#[test]
fn tasks_beyond_their_hosts_cores_slow_each_other_down() {
    let wall = |replay: &Replay, workers: u32, cores: Option<u32>| {
        let model = Model {
            cores,
            ..model(replay, workers, 1)
        };
        simulate(replay, &model).wall_ns
    };
    // CPU-bound on 2 cores: 4 workers run the 4 tasks at half speed, no sooner than 2 did.
    let bound = crowd(Some(2), Some(1.0));
    assert_eq!(wall(&bound, 2, None), 20 * MS);
    assert_eq!(wall(&bound, 4, None), 20 * MS);
    // On a host of 4 cores (`--cores 4`) they run side by side.
    assert_eq!(wall(&bound, 4, Some(4)), 10 * MS);
    // Half on the CPU: 4 tasks want 2 cores, which the host has.
    assert_eq!(wall(&crowd(Some(2), Some(0.5)), 4, None), 10 * MS);
    // Three quarters: the CPU parts run s times slower where 4 × 0.75 / (0.25 + 0.75 s) = 2,
    // s = 5/3: each task takes (0.25 + 0.75 × 5/3) × 10 ms = 15 ms.
    assert_eq!(wall(&crowd(Some(2), Some(0.75)), 4, None), 15 * MS);
    // Without the host's cores, or without CPU times, nothing is shared.
    assert_eq!(wall(&crowd(None, Some(1.0)), 4, None), 10 * MS);
    assert_eq!(wall(&crowd(Some(2), None), 4, None), 10 * MS);
    assert!(
        crowd(Some(2), None)
            .cpu_model(&model(&bound, 4, 1))
            .is_none()
    );
}

#[test]
fn an_attempt_lost_with_its_worker_mid_run_is_replayed_as_a_failed_run() {
    // Dask: worker 0 died 4 ms into `hog`, which then ran on worker 1; `idle` was only queued
    // on worker 0 (no compute) when it died: it cost no run.
    let mut lost = attempt("hog", 0, &[], 0, 4 * MS);
    lost.status = TaskStatus::Lost;
    let mut queued = attempt("idle", 0, &[], 0, 0);
    queued.status = TaskStatus::Lost;
    queued.phases.pop();
    let records = vec![
        submitted(0),
        Record::Task(lost),
        Record::Task(queued),
        Record::Task(attempt("hog", 1, &[], 4 * MS, 5 * MS)),
        Record::Task(attempt("idle", 1, &[], 9 * MS, MS)),
    ];
    let replay = Replay::from_trace(&header(2), records).unwrap();
    let p = simulate(&replay, &model(&replay, 1, 1));
    assert_eq!((p.attempts, p.erred, p.kills), (3, 0, 0));
    assert_eq!(p.wall_ns, 11 * MS);
}

#[test]
fn an_allocation_that_killed_its_worker_kills_it_in_the_replay() {
    // The engine: `sort` allocated 120 MB on a 100 MB worker, which died and lost `load`'s
    // result; the replacement computed `load` again, then `sort` with 10 MB.
    let mut header = header(1);
    header.cluster.workers[0].memory_limit = Some(100_000_000);
    let mut killed = attempt("sort", 0, &["load"], 10 * MS, 0);
    killed.status = TaskStatus::Lost;
    killed.working_bytes = 120_000_000;
    let mut reloaded = attempt("load", 0, &[], 10 * MS, 10 * MS);
    reloaded.attempt = 2;
    let mut sorted = attempt("sort", 0, &["load"], 20 * MS, 5 * MS);
    sorted.working_bytes = 10_000_000;
    sorted.attempt = 2;
    let records = vec![
        submitted(0),
        Record::Task(attempt("load", 0, &[], 0, 10 * MS)),
        Record::Task(killed),
        Record::Task(reloaded),
        Record::Task(sorted),
    ];
    let replay = Replay::from_trace(&header, records).unwrap();
    let sort = replay.submissions[0].graph.task(1);
    assert_eq!(sort.key, Key::from("sort"));
    assert_eq!(
        sort.work,
        Work::new(5 * MS, 1000)
            .working_bytes(10_000_000)
            .spike(110_000_000, 1)
    );
    let p = simulate(&replay, &model(&replay, 1, 1));
    // load, sort (killed at its claim), load again, sort.
    assert_eq!((p.attempts, p.kills, p.erred), (4, 1, 0));
    assert_eq!(p.wall_ns, 25 * MS);
}

#[test]
fn tasks_that_need_a_resource_replay_on_the_workers_that_have_it() {
    // Recorded: four 10 ms tasks needing the GPU only worker 0 has, one after the other there.
    let mut header = header(2);
    header.cluster.workers[0]
        .resources
        .insert("GPU".into(), 1.0);
    let mut records = vec![submitted(0)];
    for i in 0..4 {
        let mut t = attempt(&format!("gpu-{i}"), 0, &[], i * 10 * MS, 10 * MS);
        t.resources.insert("GPU".into(), 1.0);
        records.push(Record::Task(t));
    }
    let replay = Replay::from_trace(&header, records).unwrap();
    let wall = |workers| simulate(&replay, &model(&replay, workers, 1)).wall_ns;
    // One worker stands for both recorded ones and has the GPU; four are the recorded pair
    // twice, two GPUs.
    assert_eq!([wall(1), wall(2), wall(4)], [40 * MS, 40 * MS, 20 * MS]);
}

#[test]
fn tasks_restricted_to_a_worker_replay_on_the_workers_that_stand_for_it() {
    // Recorded: four 10 ms tasks pinned to worker 1 (`workers=`), one after the other there.
    let mut records = vec![submitted(0)];
    for i in 0..4 {
        let mut t = attempt(&format!("pinned-{i}"), 1, &[], i * 10 * MS, 10 * MS);
        t.restricted_to = vec![1];
        records.push(Record::Task(t));
    }
    let replay = Replay::from_trace(&header(2), records).unwrap();
    let wall = |workers| simulate(&replay, &model(&replay, workers, 1)).wall_ns;
    assert_eq!([wall(1), wall(2), wall(4)], [40 * MS, 40 * MS, 20 * MS]);
    // Unpinned, two workers share them.
    let mut unpinned = replay.clone();
    unpinned.recorded.worker_resources.clear();
    unpinned.submissions[0].graph = unpinned.submissions[0].graph.map_work(|_, w| Work {
        extra: None,
        ..w.clone()
    });
    assert_eq!(
        simulate(&unpinned, &model(&unpinned, 2, 1)).wall_ns,
        20 * MS
    );
}

#[test]
fn scattered_data_replays_on_the_worker_that_held_it() {
    // Four 100 MB arrays scattered to worker 0 (no task made them), each read by a 10 ms task
    // there.
    let mut records = vec![submitted(0)];
    for i in 0..4 {
        records.push(Record::Event(Event {
            time: i * 10 * MS,
            kind: EventKind::DataAdded {
                key: Key::from(format!("big-{i}").as_str()),
                workers: vec![0],
                nbytes: 100_000_000,
            },
        }));
        let big = format!("big-{i}");
        let t = attempt(&format!("use-{i}"), 0, &[&big], i * 10 * MS, 10 * MS);
        records.push(Record::Task(t));
    }
    let replay = Replay::from_trace(&header(2), records.clone()).unwrap();
    assert_eq!(replay.unknown_dependencies, 0);
    assert_eq!(replay.submissions[0].held, vec![vec![0]; 4]);
    // On a 10 GB/s network, idle worker 1 steals two of the tasks and fetches their 100 MB
    // (10 ms each) from worker 0, which runs the other two.
    let mut fast = model(&replay, 2, 1);
    fast.network.bandwidth = Some(10_000_000_000);
    let p = simulate(&replay, &fast);
    assert_eq!(
        (p.wall_ns, p.transfers, p.transferred_bytes),
        (40 * MS, 2, 200_000_000)
    );
    // Without the data's whereabouts, the tasks look independent: nothing to fetch.
    records.retain(|r| !matches!(r, Record::Event(e) if e.kind.name() == "data-added"));
    let blind = Replay::from_trace(&header(2), records).unwrap();
    assert_eq!(blind.unknown_dependencies, 4);
    let p = simulate(&blind, &fast);
    assert_eq!((p.wall_ns, p.transfers), (20 * MS, 0));
}

#[test]
fn a_trace_without_finished_tasks_cannot_be_replayed() {
    let error = Replay::from_trace(&header(1), vec![submitted(0)]).unwrap_err();
    assert_eq!(
        error.to_string(),
        "the trace has no finished task to replay"
    );
}

#[test]
fn a_spill_that_cannot_be_written_stays_in_memory_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run.ndjson");
    let spill = tempfile::tempdir().unwrap();
    // Directories where the results' spill files would go: writing them fails.
    for index in 0..8 {
        std::fs::create_dir_all(spill.path().join(format!("worker-0/0-{index}.bin"))).unwrap();
    }
    let cluster = Cluster::start(ClusterConfig {
        workers: 1,
        threads: 1,
        memory_limit: Some(100 << 20),
        spill_root: Some(spill.path().to_path_buf()),
        record_to: Some(path.clone()),
        ..ClusterConfig::default()
    })
    .unwrap();
    let client = cluster.client();
    let mut graph = GraphBuilder::new();
    for i in 0..8 {
        graph.add(
            Key::from(format!("part-{i}").as_str()),
            Work::new(0, 10 << 20),
        );
    }
    let keys = client.persist(&graph.build().unwrap()).unwrap();
    let values = client.gather(&keys).unwrap();
    assert!(values.iter().all(|v| v.len() == 10 << 20));
    cluster.shutdown().unwrap();
    let (_, records) = TraceReader::open(&path).unwrap().read_all().unwrap();
    let warning = records
        .iter()
        .find_map(|r| match r {
            Record::Event(Event {
                kind: EventKind::Warning {
                    message, source, ..
                },
                ..
            }) => Some((message.clone(), source.clone())),
            _ => None,
        })
        .expect("a warning for the failed spill");
    assert!(
        warning
            .0
            .starts_with("cannot spill 1 of 1 results to disk, kept in memory: "),
        "{warning:?}"
    );
    assert!(warning.0.contains("0-0.bin"), "{warning:?}");
    assert_eq!(warning.1.as_deref(), Some("taskscope.engine.spill"));
    // Nothing was written, and the trace does not say otherwise.
    let written: u64 = records
        .iter()
        .filter_map(|r| match r {
            Record::Task(t) => Some(t),
            _ => None,
        })
        .flat_map(|t| &t.phases)
        .filter(|p| p.action == Action::DiskWrite)
        .filter_map(|p| p.bytes)
        .sum();
    assert_eq!(written, 0);
}

/// A "clean" step (10 ms) and a use of it (10 ms) in each of two graphs, the client thinking
/// 20 ms between them: 60 ms recorded.
fn recomputed() -> Vec<Record> {
    use Action::{Compute, Queued};
    let step = |key, deps: &[&str], start| {
        task(
            key,
            0,
            deps,
            vec![
                phase(Queued, start, start, None, None),
                phase(Compute, start, start + 10 * MS, None, None),
            ],
        )
    };
    vec![
        submitted(0),
        step("clean", &[], 0),
        step("use-1", &["clean"], 10 * MS),
        submitted(40 * MS),
        step("clean", &[], 40 * MS),
        step("use-2", &["clean"], 50 * MS),
    ]
}

#[test]
fn fixes_change_the_replay_as_their_advice_says() {
    use engine::simulate::Fix;
    let replay = Replay::from_trace(&header(1), recomputed()).unwrap();
    let wall = |replay: &Replay| simulate(replay, &model(replay, 1, 1)).wall_ns;
    assert_eq!(wall(&replay), 60 * MS);
    // The second graph reads the first one's clean data instead of computing it again.
    assert_eq!(wall(&replay.fixed(Fix::Recomputation).unwrap()), 50 * MS);
    // Both graphs submitted together: no client time, both run back to back.
    assert_eq!(wall(&replay.fixed(Fix::IdleGaps).unwrap()), 40 * MS);
    // Nothing here for the others to change: no saving can be told.
    assert!(replay.fixed(Fix::OversizedArgument).is_none());
    assert!(replay.fixed(Fix::Skew).is_none());
    assert_eq!(
        Fix::from_rule("oversized-argument"),
        Some(Fix::OversizedArgument)
    );
    assert_eq!(Fix::from_rule("communication"), None);
}

#[test]
fn a_cluster_of_a_thousand_workers_is_replayed_with_its_locality() {
    // 1,000 chains of two 10 ms tasks with 1 MiB between them, recorded on 100 workers: on 1,000
    // workers each chain's second task runs where its first did, also on the slots past the
    // 64 that fit the inline mask of holders, so nothing moves.
    let mut graph = GraphBuilder::new();
    for i in 0..1000 {
        let first = graph.add(
            Key::from(format!("a-{i}").as_str()),
            Work::new(10 * MS, 1 << 20),
        );
        graph.add_with_deps(
            Key::from(format!("b-{i}").as_str()),
            Work::new(10 * MS, 8),
            &[first],
        );
    }
    let replay = Replay::from_graphs(vec![graph.build().unwrap()], recorded(100, 1));
    let on = |workers| {
        let mut model = model(&replay, workers, 1);
        model.dispatch_ns = 0;
        simulate(&replay, &model)
    };
    let thousand = on(1000);
    assert_eq!(thousand.transferred_bytes, 0);
    assert_eq!(thousand.wall_ns, 20 * MS);
    // On the recorded 100, ten chains each.
    assert_eq!(on(100).wall_ns, 200 * MS);
}

#[test]
fn a_skewed_task_is_split_and_tiny_tasks_are_merged() {
    use engine::simulate::Fix;
    let independent = |computes: &[u64], sink: bool| {
        let mut graph = GraphBuilder::new();
        let parts: Vec<_> = computes
            .iter()
            .enumerate()
            .map(|(i, &c)| graph.add(Key::from(format!("part-{i}").as_str()), Work::new(c, 100)))
            .collect();
        if sink {
            graph.add_with_deps(Key::from("total"), Work::new(MS, 8), &parts);
        }
        Replay::from_graphs(vec![graph.build().unwrap()], recorded(1, 1))
    };
    let wall = |replay: &Replay, workers, dispatch_ns| {
        let mut model = model(replay, workers, 1);
        model.dispatch_ns = dispatch_ns;
        simulate(replay, &model).wall_ns
    };
    // Three 10 ms partitions and one of 40 ms on four workers: the 40 ms one is the run.
    let skewed = independent(&[10 * MS, 10 * MS, 10 * MS, 40 * MS], false);
    assert_eq!(wall(&skewed, 4, 0), 40 * MS);
    // Split into four pieces of the median: seven 10 ms tasks on four workers.
    let split = skewed.fixed(Fix::Skew).unwrap();
    assert_eq!(split.submissions[0].graph.len(), 7);
    assert_eq!(wall(&split, 4, 0), 20 * MS);

    // 200 tasks of 1 ms and their sum, 1 ms of dispatch each, on one worker: 402 ms.
    let tiny = independent(&[MS; 200], true);
    assert_eq!(wall(&tiny, 1, MS), 402 * MS);
    // Merged into two 100 ms tasks: two dispatches instead of two hundred.
    let merged = tiny.fixed(Fix::TinyPartitions).unwrap();
    assert_eq!(merged.submissions[0].graph.len(), 3);
    assert_eq!(wall(&merged, 1, MS), 2 * 101 * MS + 2 * MS);
}

#[test]
fn tiny_tasks_are_merged_into_enough_partitions_for_every_thread() {
    use engine::simulate::Fix;
    // 200 tasks of 1 ms on 4 workers: 200 ms of work is two ~100 ms partitions, which would
    // leave two workers idle; the tiny-partitions rule advises two a thread: 8 of 25 ms.
    let mut graph = GraphBuilder::new();
    for i in 0..200 {
        graph.add(Key::from(format!("part-{i}").as_str()), Work::new(MS, 100));
    }
    let replay = Replay::from_graphs(vec![graph.build().unwrap()], recorded(4, 1));
    let merged = replay.fixed(Fix::TinyPartitions).unwrap();
    let pieces: Vec<u64> = merged.submissions[0]
        .graph
        .tasks()
        .map(|t| t.work.compute_ns)
        .collect();
    assert_eq!(pieces, [25 * MS; 8]);
}

#[test]
fn merged_tiny_tasks_keep_their_lineage_and_resources() {
    use engine::simulate::Fix;
    // 200 loads of 1 ms, recorded in an interleaved order, and a 1 ms map of each, listed as
    // the maps ran: 0, 100, 1, 101, … The merged maps of one merged load are made from it
    // alone, as a map over repartitioned data is.
    let mut graph = GraphBuilder::new();
    let order: Vec<usize> = (0..100).flat_map(|i| [i, i + 100]).collect();
    let loads: Vec<_> = (0..200)
        .map(|i| {
            let work = Work::new(MS, 100).resource("GPU", 1.0);
            graph.add(Key::from(format!("load-{i}").as_str()), work)
        })
        .collect();
    for &i in &order {
        graph.add_with_deps(
            Key::from(format!("map-{i}").as_str()),
            Work::new(MS, 100),
            &[loads[i]],
        );
    }
    let replay = Replay::from_graphs(vec![graph.build().unwrap()], recorded(1, 1));
    let merged = replay.fixed(Fix::TinyPartitions).unwrap();
    let graph = &merged.submissions[0].graph;
    assert_eq!(graph.len(), 4);
    for i in 0..4 {
        let deps: Vec<u32> = graph.dependencies(i).collect();
        let task = graph.task(i);
        if &*task.group == "map" {
            assert_eq!(deps.len(), 1, "{:?}", task.key);
        } else {
            // What the merged loads needed of their worker, the merged task needs.
            let needs = &task.work.extra().unwrap().resources;
            assert_eq!(needs.get("GPU"), Some(&1.0), "{:?}", task.key);
        }
    }
}

#[test]
fn a_split_whose_piece_key_is_taken_leaves_the_graph_as_it_was() {
    use engine::simulate::Fix;
    let mut graph = GraphBuilder::new();
    for (key, compute) in [
        ("part-0", 10),
        ("part-1", 10),
        ("part-2", 10),
        ("part-3", 40),
    ] {
        graph.add(Key::from(key), Work::new(compute * MS, 100));
    }
    // The name the second piece of part-3 would take.
    graph.add(Key::from("part-3-split-1"), Work::new(10 * MS, 100));
    let replay = Replay::from_graphs(vec![graph.build().unwrap()], recorded(1, 1));
    assert!(replay.fixed(Fix::Skew).is_none());
}
