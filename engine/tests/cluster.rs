//! The engine's behaviour, checked on real runs and on the traces they record.

use std::collections::BTreeMap;
use std::path::PathBuf;

use bytes::Bytes;
use engine::{
    Cluster, ClusterConfig, EngineError, GraphBuilder, Work, generate_output, output_seed,
};
use traces::{Action, EventKind, Key, KeyPart, Record, TaskRecord, TaskStatus, TraceReader};

const MB: u64 = 1 << 20;

struct Run {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl Run {
    fn new() -> Run {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.ndjson");
        Run { _dir: dir, path }
    }

    fn config(&self, workers: u32, threads: u32) -> ClusterConfig {
        ClusterConfig {
            workers,
            threads,
            record_to: Some(self.path.clone()),
            ..ClusterConfig::default()
        }
    }

    fn records(&self) -> Vec<Record> {
        TraceReader::open(&self.path).unwrap().read_all().unwrap().1
    }

    fn tasks(&self) -> Vec<TaskRecord> {
        self.records()
            .into_iter()
            .filter_map(|r| match r {
                Record::Task(t) => Some(t),
                _ => None,
            })
            .collect()
    }

    fn events(&self) -> Vec<EventKind> {
        self.records()
            .into_iter()
            .filter_map(|r| match r {
                Record::Event(e) => Some(e.kind),
                _ => None,
            })
            .collect()
    }
}

fn key(name: &str, i: i64) -> Key {
    Key::Tuple(vec![KeyPart::Str(name.into()), KeyPart::Int(i)])
}

/// What a task with no inputs produces.
fn expected(key: &Key, len: u64) -> Bytes {
    generate_output(output_seed(key, &[]), len as usize)
}

fn executions(tasks: &[TaskRecord], key: &Key) -> usize {
    tasks
        .iter()
        .filter(|t| &t.key == key && t.status == TaskStatus::Ok)
        .count()
}

#[test]
fn a_task_runs_where_its_large_input_is() {
    let run = Run::new();
    let cluster = Cluster::start(run.config(2, 1)).unwrap();
    let client = cluster.client();
    let data: Vec<(Key, Bytes)> = (0..4)
        .map(|i| (key("big", i), Bytes::from(vec![i as u8; 8 * MB as usize])))
        .collect();
    let keys = client.scatter(data, false).unwrap();
    for (i, big) in keys.iter().enumerate() {
        let small = client
            .submit(key("small", i as i64), Work::new(0, 100), &[])
            .unwrap();
        let reader = client
            .submit(
                key("reader", i as i64),
                Work::new(1_000, 8),
                &[big.clone(), small],
            )
            .unwrap();
        client.gather(std::slice::from_ref(&reader)).unwrap();
        assert_eq!(client.who_has(&reader), client.who_has(big));
    }
    cluster.shutdown().unwrap();
    // The readers moved the 100-byte inputs, never the 8 MiB ones.
    for task in run.tasks().iter().filter(|t| t.group == "reader") {
        for phase in task.phases.iter().filter(|p| p.action == Action::Transfer) {
            assert_eq!(phase.bytes, Some(100), "{task:?}");
        }
    }
}

#[test]
fn spilled_values_are_written_to_disk_and_read_back_intact() {
    let run = Run::new();
    let spill = tempfile::tempdir().unwrap();
    let cluster = Cluster::start(ClusterConfig {
        memory_limit: Some(100 * MB),
        spill_root: Some(spill.path().to_path_buf()),
        ..run.config(1, 1)
    })
    .unwrap();
    let client = cluster.client();
    let mut graph = GraphBuilder::new();
    let parts: Vec<_> = (0..12)
        .map(|i| graph.add(key("part", i), Work::new(0, 10 * MB)))
        .collect();
    let graph = graph.build().unwrap();
    let keys = client.persist(&graph).unwrap();
    assert_eq!(keys.len(), 12);
    let values = client.gather(&keys).unwrap();
    for (k, value) in keys.iter().zip(&values) {
        assert_eq!(value, &expected(k, 10 * MB), "value of {k} changed");
    }
    // A task reading spilled inputs reads them back from disk.
    let sum = client
        .submit(Key::from("sum-all"), Work::new(0, 8), &keys)
        .unwrap();
    client.gather(&[sum]).unwrap();
    drop(parts);
    let progress = cluster.progress();
    cluster.shutdown().unwrap();
    // 120 MiB of results on a 100 MiB worker: past the 60 MiB target the oldest went to disk.
    assert!(progress.spills >= 6, "{progress:?}");
    let files = std::fs::read_dir(spill.path().join("worker-0"))
        .unwrap()
        .count();
    assert!(files >= 6, "{files} spill files");

    let tasks = run.tasks();
    let spilled: u64 = tasks
        .iter()
        .flat_map(|t| &t.phases)
        .filter(|p| p.action == Action::DiskWrite)
        .map(|p| p.bytes.unwrap())
        .sum();
    assert!(spilled >= 60 * MB, "{spilled} bytes spilled");
    let sum = tasks.iter().find(|t| t.group == "sum-all").unwrap();
    assert!(
        sum.phases.iter().any(|p| p.action == Action::DiskRead),
        "{sum:?}"
    );
    let samples = run
        .records()
        .iter()
        .filter(|r| matches!(r, Record::Memory(m) if m.spilled > 0))
        .count();
    assert!(samples > 0, "memory samples show spilled bytes");
}

#[test]
fn a_paused_worker_starts_no_new_task() {
    let run = Run::new();
    let cluster = Cluster::start(ClusterConfig {
        memory_limit: Some(100 * MB),
        ..run.config(1, 2)
    })
    .unwrap();
    let client = cluster.client();
    // 85 MiB of working memory: past pause (80 %), under terminate (95 %).
    let hog = client
        .submit(
            Key::from("hog"),
            Work::new(300_000_000, 8).working_bytes(85 * MB),
            &[],
        )
        .unwrap();
    // Submit the small tasks once the hog runs and has paused its worker.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while cluster.progress().pauses == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the worker never paused"
        );
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    let small: Vec<Key> = (0..4)
        .map(|i| {
            client
                .submit(key("small", i), Work::new(1_000_000, 8), &[])
                .unwrap()
        })
        .collect();
    client.gather(&small).unwrap();
    client.gather(&[hog]).unwrap();
    cluster.shutdown().unwrap();

    let tasks = run.tasks();
    let hog = tasks.iter().find(|t| t.group == "hog").unwrap();
    let hog_end = hog.time_in(Action::Compute) + hog.phases[1].start;
    for task in tasks.iter().filter(|t| t.group == "small") {
        let start = task
            .phases
            .iter()
            .find(|p| p.action == Action::Compute)
            .unwrap()
            .start;
        assert!(
            start >= hog_end,
            "small started at {start} while the hog ran until {hog_end}"
        );
    }
    let events = run.events();
    assert!(events.contains(&EventKind::WorkerPaused { worker: 0 }));
    assert!(events.contains(&EventKind::WorkerResumed { worker: 0 }));
}

#[test]
fn a_killed_worker_loses_its_results_which_are_recomputed() {
    let run = Run::new();
    let cluster = Cluster::start(ClusterConfig {
        memory_limit: Some(100 * MB),
        ..run.config(2, 1)
    })
    .unwrap();
    let client = cluster.client();
    let mut graph = GraphBuilder::new();
    let parts: Vec<_> = (0..6)
        .map(|i| graph.add(key("part", i), Work::new(0, 4 * MB)))
        .collect();
    // The first attempt allocates 120 MiB: the worker running it dies.
    let spike = graph.add_with_deps(
        Key::from("spike"),
        Work::new(0, 8).spike(120 * MB, 1),
        &parts,
    );
    graph.add_with_deps(Key::from("total"), Work::new(0, 8), &[spike]);
    let graph = graph.build().unwrap();
    let out = client.compute(&graph).unwrap();
    assert_eq!(out.len(), 1);
    cluster.shutdown().unwrap();

    let tasks = run.tasks();
    let events = run.events();
    let kills = events
        .iter()
        .filter(|e| matches!(e, EventKind::WorkerKilled { .. }))
        .count();
    assert_eq!(kills, 1, "{events:?}");
    assert!(
        events
            .iter()
            .any(|e| matches!(e, EventKind::WorkerAdded { worker } if worker.id == 2))
    );
    let spikes: Vec<&TaskRecord> = tasks.iter().filter(|t| t.group == "spike").collect();
    assert_eq!(spikes.len(), 2, "{spikes:?}");
    assert_eq!(spikes[0].status, TaskStatus::Lost);
    assert_eq!(spikes[1].status, TaskStatus::Ok);
    assert_eq!(spikes[1].attempt, 2);
    // The parts held by the dead worker ran again.
    let recomputed = (0..6)
        .filter(|&i| executions(&tasks, &key("part", i)) == 2)
        .count();
    assert!(recomputed >= 1, "no part was recomputed");
    // The final result is the same as without the death.
    let seed_inputs: Vec<Bytes> = (0..6).map(|i| expected(&key("part", i), 4 * MB)).collect();
    let spike_out = generate_output(output_seed(&Key::from("spike"), &seed_inputs), 8);
    let total = generate_output(output_seed(&Key::from("total"), &[spike_out]), 8);
    assert_eq!(out[0].1, total);
}

#[test]
fn a_task_that_kills_three_workers_fails_with_killed_worker() {
    let run = Run::new();
    let cluster = Cluster::start(ClusterConfig {
        memory_limit: Some(100 * MB),
        ..run.config(2, 1)
    })
    .unwrap();
    let mut graph = GraphBuilder::new();
    graph.add(Key::from("leaky"), Work::new(0, 8).working_bytes(200 * MB));
    let err = cluster
        .client()
        .compute(&graph.build().unwrap())
        .unwrap_err();
    assert_eq!(
        err,
        EngineError::KilledWorker {
            key: "leaky".into(),
            deaths: 3
        }
    );
    assert_eq!(
        err.to_string(),
        "KilledWorker: task leaky was running on 3 workers that died"
    );
    cluster.shutdown().unwrap();
    let kills = run
        .events()
        .iter()
        .filter(|e| matches!(e, EventKind::WorkerKilled { .. }))
        .count();
    assert_eq!(kills, 3);
}

#[test]
fn persist_prevents_recomputation() {
    for persist in [false, true] {
        let run = Run::new();
        let cluster = Cluster::start(run.config(2, 1)).unwrap();
        let client = cluster.client();
        let shared = key("shared", 0);
        let mut base = GraphBuilder::new();
        base.add(shared.clone(), Work::new(1_000, 1000));
        let base = base.build().unwrap();
        let users = |name: &str| {
            let mut g = GraphBuilder::new();
            if persist {
                g.add(key(name, 0), Work::new(0, 8).external(shared.clone()));
            } else {
                let s = g.add(shared.clone(), Work::new(1_000, 1000));
                g.add_with_deps(key(name, 0), Work::new(0, 8), &[s]);
            }
            g.build().unwrap()
        };
        if persist {
            client.persist(&base).unwrap();
        }
        client.compute(&users("mean")).unwrap();
        client.compute(&users("max")).unwrap();
        cluster.shutdown().unwrap();
        let runs = executions(&run.tasks(), &shared);
        assert_eq!(runs, if persist { 1 } else { 2 }, "persist={persist}");
    }
}

#[test]
fn scattered_data_lost_with_its_worker_fails_the_tasks_that_read_it() {
    // One worker holds the scattered value; a task on it allocates past the terminate line,
    // so the worker dies with the value, which nothing can compute again.
    let cluster = Cluster::start(ClusterConfig {
        workers: 1,
        memory_limit: Some(100 * MB),
        ..ClusterConfig::default()
    })
    .unwrap();
    let client = cluster.client();
    let keys = client
        .scatter(
            vec![(Key::from("only-copy"), Bytes::from(vec![1u8; 10]))],
            false,
        )
        .unwrap();
    let mut graph = GraphBuilder::new();
    graph.add(
        Key::from("hog"),
        Work::new(0, 8).external(keys[0].clone()).spike(200 * MB, 1),
    );
    let err = client.compute(&graph.build().unwrap()).unwrap_err();
    assert_eq!(
        err,
        EngineError::LostData {
            key: "only-copy".into()
        }
    );
    cluster.shutdown().unwrap();
}

#[test]
fn broadcast_scatter_puts_one_copy_on_each_worker() {
    let cluster = Cluster::start(ClusterConfig {
        workers: 3,
        ..ClusterConfig::default()
    })
    .unwrap();
    let client = cluster.client();
    let keys = client
        .scatter(
            vec![(Key::from("lookup"), Bytes::from(vec![7u8; 1000]))],
            true,
        )
        .unwrap();
    let mut holders = client.who_has(&keys[0]);
    holders.sort();
    assert_eq!(holders, [0, 1, 2]);
    let spread = client
        .scatter(
            (0..3)
                .map(|i| (key("spread", i), Bytes::from(vec![1u8; 10])))
                .collect(),
            false,
        )
        .unwrap();
    for k in &spread {
        assert_eq!(client.who_has(k).len(), 1);
    }
    assert_eq!(
        client.gather(&keys).unwrap()[0],
        Bytes::from(vec![7u8; 1000])
    );
}

#[test]
fn resources_are_respected() {
    let run = Run::new();
    let mut gpu = BTreeMap::new();
    gpu.insert("GPU".to_string(), 1.0);
    let cluster = Cluster::start(ClusterConfig {
        worker_resources: vec![BTreeMap::new(), gpu, BTreeMap::new()],
        ..run.config(3, 2)
    })
    .unwrap();
    let mut graph = GraphBuilder::new();
    for i in 0..8 {
        graph.add(
            key("train", i),
            Work::new(2_000_000, 8).resource("GPU", 1.0),
        );
        graph.add(key("load", i), Work::new(2_000_000, 8));
    }
    cluster.client().compute(&graph.build().unwrap()).unwrap();
    let mut needs_tpu = GraphBuilder::new();
    needs_tpu.add(Key::from("tpu-job"), Work::new(0, 8).resource("TPU", 1.0));
    assert_eq!(
        cluster
            .client()
            .compute(&needs_tpu.build().unwrap())
            .unwrap_err()
            .to_string(),
        "task tpu-job needs resources TPU=1 that no worker has"
    );
    cluster.shutdown().unwrap();
    let tasks = run.tasks();
    let mut gpu_computes: Vec<(u64, u64)> = Vec::new();
    for t in tasks.iter().filter(|t| t.group == "train") {
        assert_eq!(t.worker, 1, "{} ran on worker {}", t.key, t.worker);
        let c = t
            .phases
            .iter()
            .find(|p| p.action == Action::Compute)
            .unwrap();
        gpu_computes.push((c.start, c.stop));
    }
    gpu_computes.sort();
    for pair in gpu_computes.windows(2) {
        assert!(pair[1].0 >= pair[0].1, "two GPU tasks overlapped: {pair:?}");
    }
}

#[test]
fn graph_errors_name_the_keys() {
    let mut graph = GraphBuilder::new();
    let a = graph.add(Key::from("a"), Work::default());
    let b = graph.add_with_deps(Key::from("b"), Work::default(), &[a]);
    graph.depend(a, b);
    graph.add(Key::from("c"), Work::default());
    let err = graph.build().err().unwrap();
    assert_eq!(err.to_string(), "graph has a cycle through a, b");

    let cluster = Cluster::start(ClusterConfig::default()).unwrap();
    let mut graph = GraphBuilder::new();
    graph.add(
        Key::from("needs"),
        Work::default().external(Key::from("nowhere")),
    );
    let err = cluster
        .client()
        .compute(&graph.build().unwrap())
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "missing dependencies (not in the graph, not scattered or persisted): nowhere"
    );
}

#[test]
fn task_errors_reach_the_client_and_retries_are_recorded() {
    let run = Run::new();
    let cluster = Cluster::start(run.config(2, 1)).unwrap();
    let client = cluster.client();
    let mut graph = GraphBuilder::new();
    let bad = graph.add(
        Key::from("parse-1"),
        Work::new(0, 8).fail("bad row 17", u32::MAX),
    );
    graph.add_with_deps(Key::from("after-1"), Work::new(0, 8), &[bad]);
    let err = client.compute(&graph.build().unwrap()).unwrap_err();
    assert_eq!(err.to_string(), "task parse-1 failed: bad row 17");

    let mut flaky = GraphBuilder::new();
    flaky.add(
        Key::from("flaky-1"),
        Work::new(0, 8).fail("connection reset", 2).retries(2),
    );
    client.compute(&flaky.build().unwrap()).unwrap();
    cluster.shutdown().unwrap();

    let tasks = run.tasks();
    let attempts: Vec<(u32, TaskStatus)> = tasks
        .iter()
        .filter(|t| t.group == "flaky")
        .map(|t| (t.attempt, t.status))
        .collect();
    assert_eq!(
        attempts,
        [
            (1, TaskStatus::Error),
            (2, TaskStatus::Error),
            (3, TaskStatus::Ok)
        ]
    );
    let bad = tasks.iter().find(|t| t.group == "parse").unwrap();
    assert_eq!(bad.error.as_deref(), Some("bad row 17"));
    let retried = run
        .events()
        .iter()
        .filter(|e| matches!(e, EventKind::TaskRetried { .. }))
        .count();
    assert_eq!(retried, 2);
}

#[test]
fn transfers_move_real_bytes_between_workers() {
    let run = Run::new();
    let cluster = Cluster::start(run.config(2, 1)).unwrap();
    let mut graph = GraphBuilder::new();
    let parts: Vec<_> = (0..8)
        .map(|i| graph.add(key("load", i), Work::new(2_000_000, MB)))
        .collect();
    graph.add_with_deps(Key::from("combine"), Work::new(0, 8), &parts);
    let out = cluster.client().compute(&graph.build().unwrap()).unwrap();
    cluster.shutdown().unwrap();
    let inputs: Vec<Bytes> = (0..8).map(|i| expected(&key("load", i), MB)).collect();
    let want = generate_output(output_seed(&Key::from("combine"), &inputs), 8);
    assert_eq!(out[0].1, want, "inputs arrived intact");
    let tasks = run.tasks();
    let combine = tasks.iter().find(|t| t.group == "combine").unwrap();
    let transfers: Vec<_> = combine
        .phases
        .iter()
        .filter(|p| p.action == Action::Transfer)
        .collect();
    // One transfer phase for the parts on the other worker, as Dask gathers per worker.
    assert_eq!(transfers.len(), 1, "{combine:?}");
    let moved = transfers[0].bytes.unwrap();
    assert!(moved % MB == 0 && moved > 0, "{moved}");
    assert_ne!(transfers[0].peer, Some(combine.worker));
    assert_eq!(combine.deps.len(), 8);
}

#[test]
fn idle_workers_steal_queued_work() {
    let run = Run::new();
    let cluster = Cluster::start(run.config(2, 1)).unwrap();
    let client = cluster.client();
    // One input on one worker: locality queues every reader there.
    let input = client
        .scatter(
            vec![(Key::from("table"), Bytes::from(vec![1u8; 1 << 20]))],
            false,
        )
        .unwrap();
    let home = client.who_has(&input[0])[0];
    let mut graph = GraphBuilder::new();
    for i in 0..20 {
        graph.add(
            key("lookup", i),
            Work::new(5_000_000, 8).external(input[0].clone()),
        );
    }
    client.compute(&graph.build().unwrap()).unwrap();
    cluster.shutdown().unwrap();
    let tasks = run.tasks();
    let stolen: Vec<&TaskRecord> = tasks.iter().filter(|t| t.worker != home).collect();
    assert!(!stolen.is_empty(), "the idle worker stole nothing");
    assert!(stolen.len() < 20);
    // A thief fetches the input once, then holds a replica.
    let fetched = stolen
        .iter()
        .filter(|t| t.phases.iter().any(|p| p.action == Action::Transfer))
        .count();
    assert_eq!(fetched, 1);
}

#[test]
fn cancel_and_restart() {
    let cluster = Cluster::start(ClusterConfig::default()).unwrap();
    let client = cluster.client();
    let slow = client
        .submit(Key::from("slow"), Work::new(200_000_000, 8), &[])
        .unwrap();
    let after = client
        .submit(
            Key::from("after"),
            Work::new(0, 8),
            std::slice::from_ref(&slow),
        )
        .unwrap();
    client.cancel(std::slice::from_ref(&slow));
    assert_eq!(
        client.gather(&[after]).unwrap_err(),
        EngineError::Cancelled {
            key: "after".into()
        }
    );

    let kept = client
        .scatter(vec![(Key::from("kept"), Bytes::from_static(b"data"))], true)
        .unwrap();
    let before = client.workers();
    client.restart();
    let after = client.workers();
    assert_eq!(after.len(), before.len());
    assert!(
        after.iter().all(|w| !before.contains(w)),
        "{before:?} {after:?}"
    );
    // Data is gone; the cluster still works.
    assert!(client.gather(&kept).is_err());
    let mut graph = GraphBuilder::new();
    graph.add(Key::from("fresh"), Work::new(0, 4));
    assert_eq!(
        client.compute(&graph.build().unwrap()).unwrap()[0].1.len(),
        4
    );
}

#[test]
fn a_long_lost_lineage_is_recomputed_without_deep_recursion() {
    // A 100,000-task chain whose intermediates were released: when the worker holding its end
    // dies, the whole chain runs again (walked iteratively, not recursively).
    let cluster = Cluster::start(ClusterConfig {
        workers: 1,
        memory_limit: Some(100 * MB),
        ..ClusterConfig::default()
    })
    .unwrap();
    let mut graph = GraphBuilder::with_capacity(100_001, 100_000);
    let mut previous = graph.add(key("step", 0), Work::new(0, 8));
    for i in 1..100_000 {
        previous = graph.add_with_deps(key("step", i), Work::new(0, 8), &[previous]);
    }
    graph.add_with_deps(
        Key::from("end"),
        Work::new(0, 8).spike(200 * MB, 1),
        &[previous],
    );
    let out = cluster.client().compute(&graph.build().unwrap()).unwrap();
    assert_eq!(out[0].0, Key::from("end"));
    assert_eq!(cluster.progress().kills, 1);
}

#[test]
fn released_futures_free_their_graphs() {
    let cluster = Cluster::start(ClusterConfig::default()).unwrap();
    let client = cluster.client();
    let keys: Vec<Key> = (0..200)
        .map(|i| {
            client
                .submit(key("future", i), Work::new(0, 64), &[])
                .unwrap()
        })
        .collect();
    client.gather(&keys).unwrap();
    let reader = client
        .submit(Key::from("reader"), Work::new(0, 8), &keys[..2])
        .unwrap();
    client.gather(std::slice::from_ref(&reader)).unwrap();
    assert_eq!(client.graphs_held(), 201);
    // The two read by a live future stay until that one goes too.
    client.release(&keys);
    assert_eq!(client.graphs_held(), 3);
    client.release(&[reader]);
    assert_eq!(client.graphs_held(), 0);
    assert!(client.gather(&keys[..1]).is_err(), "released keys are gone");
}

#[test]
fn a_persisted_graph_is_forgotten_once_released() {
    let cluster = Cluster::start(ClusterConfig::default()).unwrap();
    let client = cluster.client();
    let mut base = GraphBuilder::new();
    base.add(key("clean", 0), Work::new(0, 1000));
    let persisted = client.persist(&base.build().unwrap()).unwrap();
    let mut user = GraphBuilder::new();
    user.add(
        key("mean", 0),
        Work::new(0, 8).external(persisted[0].clone()),
    );
    client.compute(&user.build().unwrap()).unwrap();
    assert_eq!(
        client.graphs_held(),
        1,
        "the computed graph is gone, the persisted one stays"
    );
    client.release(&persisted);
    assert_eq!(client.graphs_held(), 0);
}

#[test]
fn pause_holds_every_task_and_live_state_counts_groups() {
    let run = Run::new();
    let cluster = Cluster::start(run.config(2, 1)).unwrap();
    let client = cluster.client();
    assert!(client.pause());
    let mut graph = GraphBuilder::new();
    let loads: Vec<_> = (0..6)
        .map(|i| {
            graph.add(
                Key::Tuple(vec![KeyPart::Str("load-ab12cd34".into()), KeyPart::Int(i)]),
                Work::new(1_000_000, 1_000),
            )
        })
        .collect();
    graph.add_with_deps(Key::from("total-ff00aa11"), Work::new(1_000_000, 8), &loads);
    let graph = graph.build().unwrap();
    let worker = {
        let client = client.clone();
        std::thread::spawn(move || client.compute(&graph).map(|out| out.len()))
    };
    // Submitted but held: everything waits, nothing runs.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let held = loop {
        let state = client.live_state();
        if state.groups.iter().map(|g| g.waiting).sum::<u64>() == 7 {
            break state;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never saw the graph: {state:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    std::thread::sleep(std::time::Duration::from_millis(100));
    let still = client.live_state();
    assert!(still.paused);
    assert_eq!(
        still
            .groups
            .iter()
            .map(|g| (g.name.to_string(), g.waiting, g.running, g.done))
            .collect::<Vec<_>>(),
        vec![
            ("load".to_string(), 6, 0, 0),
            ("total".to_string(), 1, 0, 0)
        ]
    );
    assert_eq!(
        held.groups[1].dependencies,
        vec![std::sync::Arc::from("load")]
    );
    assert!(still.running.is_empty());
    assert!(!client.resume());
    assert_eq!(worker.join().unwrap().unwrap(), 1);
    let done = client.live_state();
    assert!(!done.paused);
    cluster.shutdown().unwrap();
    assert_eq!(run.tasks().len(), 7);
}

#[test]
fn live_state_lists_the_running_task_with_its_thread() {
    let run = Run::new();
    let cluster = Cluster::start(run.config(1, 2)).unwrap();
    let client = cluster.client();
    let mut graph = GraphBuilder::new();
    graph.add(Key::from("slow-0a0b0c0d"), Work::new(400_000_000, 8));
    let graph = graph.build().unwrap();
    let submitted = cluster.now();
    let compute = {
        let client = client.clone();
        std::thread::spawn(move || client.compute(&graph).map(|out| out.len()))
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let running = loop {
        let state = client.live_state();
        if let Some(r) = state.running.first() {
            break r.clone();
        }
        assert!(std::time::Instant::now() < deadline, "never saw it running");
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    assert_eq!(running.key, Key::from("slow-0a0b0c0d"));
    assert_eq!(&*running.group, "slow");
    assert_eq!(running.worker, 0);
    assert!(running.thread < 2);
    assert!(running.start >= submitted);
    assert_eq!(compute.join().unwrap().unwrap(), 1);
    assert!(client.live_state().running.is_empty());
    cluster.shutdown().unwrap();
}

#[test]
fn the_trace_says_how_much_of_each_groups_compute_was_on_the_cpu_and_on_which_host() {
    const MS: u64 = 1_000_000;
    // (compute burnt or slept, the least and most CPU seconds it used): a burning task uses its
    // 20 ms of CPU however long other threads keep it waiting (and tasks 20 ms apart are all
    // measured), a sleep almost none.
    for (sleep, least, most) in [(false, 0.16, f64::INFINITY), (true, 0.0, 0.03)] {
        let run = Run::new();
        let cluster = Cluster::start(ClusterConfig {
            sleep_compute: sleep,
            ..run.config(2, 1)
        })
        .unwrap();
        let client = cluster.client();
        let mut graph = GraphBuilder::new();
        for i in 0..8 {
            graph.add(key("spin", i), Work::new(20 * MS, 8));
        }
        client.compute(&graph.build().unwrap()).unwrap();
        cluster.shutdown().unwrap();

        let records = run.records();
        let metrics: Vec<_> = records
            .iter()
            .filter_map(|r| match r {
                Record::GroupMetrics(m) if m.group == "spin" => Some(m),
                _ => None,
            })
            .collect();
        assert_eq!(metrics.len(), 1, "{metrics:?}");
        let cpu = metrics[0].get("execute/thread-cpu/seconds");
        let off = metrics[0].get("execute/thread-noncpu/seconds");
        // The split covers the whole compute time: 8 tasks of at least 20 ms.
        let compute: u64 = run
            .tasks()
            .iter()
            .flat_map(|t| &t.phases)
            .filter(|p| p.action == Action::Compute)
            .map(|p| p.stop - p.start)
            .sum();
        assert!(
            (cpu + off - compute as f64 / 1e9).abs() < 1e-6,
            "{cpu} + {off}"
        );
        assert!(compute >= 160 * MS, "{compute}");
        assert!(
            (least..=most).contains(&cpu),
            "sleep {sleep}: {cpu} s on the CPU of {off} s off it"
        );
    }
    let run = Run::new();
    let cluster = Cluster::start(run.config(2, 1)).unwrap();
    cluster.shutdown().unwrap();
    let header = TraceReader::open(&run.path).unwrap().header().clone();
    let cores = std::thread::available_parallelism().unwrap().get() as u32;
    for worker in &header.cluster.workers {
        assert_eq!(worker.host.as_deref(), Some("localhost"));
        assert_eq!(worker.host_cores, Some(cores));
    }
}
