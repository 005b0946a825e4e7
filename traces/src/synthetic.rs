//! A deterministic synthetic trace of any size, for benchmarks of the readers and of everything
//! that consumes traces. Not a workload: real runs come from the engine.

use std::collections::BTreeMap;

use crate::key::{Key, KeyPart, key_split};
use crate::model::{
    Action, Cluster, Header, MemoryFractions, MemorySample, Phase, Record, TaskRecord, TaskStatus,
    WorkerSpec,
};

const GROUPS: [&str; 4] = [
    "read-parquet-9f3a2b1c4d5e6f708192a3b4c5d6e7f8",
    "assign-0c1d2e3f405162738495a6b7c8d9eaf0",
    "groupby-chunk-5e6f708192a3b4c5d6e7f8091a2b3c4d",
    "shuffle-split-1a2b3c4d5e6f708192a3b4c5d6e7f809",
];

/// A memory sample every this many tasks.
const SAMPLE_EVERY: u64 = 1_000;

/// The header of a synthetic trace on `workers` × `threads`.
pub fn header(workers: u32, threads: u32) -> Header {
    let workers = (0..workers)
        .map(|id| WorkerSpec {
            id,
            name: format!("tcp://127.0.0.1:{}", 40_000 + id),
            threads,
            memory_limit: Some(4 << 30),
            resources: BTreeMap::new(),
            host: None,
            host_cores: None,
        })
        .collect();
    Header::new(
        "taskscope synthetic",
        1_795_000_000_000_000_000,
        Cluster {
            workers,
            memory: MemoryFractions::default(),
        },
    )
}

/// `tasks` task records with 2–4 phases each (queued and compute; every third a transfer,
/// every fifth a spill), each depending on the previous task of its lane, plus a memory sample
/// every [`SAMPLE_EVERY`] tasks.
pub fn records(tasks: u64, workers: u32, threads: u32) -> impl Iterator<Item = Record> {
    let lanes = u64::from(workers.max(1)) * u64::from(threads.max(1));
    (0..tasks).flat_map(move |i| {
        let lane = i % lanes;
        let worker = (lane / u64::from(threads.max(1))) as u32;
        let thread = (lane % u64::from(threads.max(1))) as u32;
        // Tasks on one lane run back to back: ~1 ms each, varying deterministically.
        let slot = i / lanes;
        let start = slot * 1_100_000;
        let compute = 600_000 + (i * 7_919) % 400_000;
        let mut phases = vec![Phase {
            action: Action::Queued,
            start,
            stop: start + 20_000,
            bytes: None,
            peer: None,
        }];
        let mut t = start + 20_000;
        if i % 3 == 0 && workers > 1 {
            phases.push(Phase {
                action: Action::Transfer,
                start: t,
                stop: t + 50_000,
                bytes: Some(65_536),
                peer: Some((worker + 1) % workers),
            });
            t += 50_000;
        }
        phases.push(Phase {
            action: Action::Compute,
            start: t,
            stop: t + compute,
            bytes: None,
            peer: None,
        });
        t += compute;
        if i % 5 == 0 {
            phases.push(Phase {
                action: Action::DiskWrite,
                start: t,
                stop: t + 10_000,
                bytes: Some(1 << 20),
                peer: None,
            });
        }
        let group = GROUPS[(i % GROUPS.len() as u64) as usize];
        let task = Record::Task(TaskRecord {
            key: Key::Tuple(vec![KeyPart::Str(group.into()), KeyPart::Int(i as i64)]),
            group: key_split(group),
            worker,
            thread,
            status: TaskStatus::Ok,
            nbytes: 1 << 20,
            inline_bytes: 0,
            working_bytes: 0,
            resources: Default::default(),
            restricted_to: Vec::new(),
            // The previous task on the same lane: chains for the critical path.
            deps: if i >= lanes {
                let prev = i - lanes;
                vec![Key::Tuple(vec![
                    KeyPart::Str(GROUPS[(prev % GROUPS.len() as u64) as usize].into()),
                    KeyPart::Int(prev as i64),
                ])]
            } else {
                Vec::new()
            },
            attempt: 1,
            error: None,
            phases,
        });
        let sample = i
            .is_multiple_of(SAMPLE_EVERY)
            .then_some(Record::Memory(MemorySample {
                time: start,
                worker,
                managed: (i % 1_000) << 20,
                unmanaged: 200 << 20,
                spilled: (i / 5) << 10,
                cpu: None,
            }));
        std::iter::once(task).chain(sample)
    })
}
