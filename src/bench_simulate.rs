//! `taskscope bench simulate`: the simulator's speed on a big trace, and its predictions for
//! the engine's workloads against real runs of them on each shape.

use std::path::Path;

use anyhow::{Context, Result};
use engine::simulate::{Fix, Model, Replay, Shape, relative_error, simulate};
use engine::{CPU_METRIC, NONCPU_METRIC};
use traces::units::{format_bytes, format_count};
use traces::{GroupMetrics, Record, TraceWriter, synthetic};

use crate::bench::in_child;
use crate::output::outln;

/// The recorded shape of the validation runs, and the shapes predicted and run for real.
const RECORDED_WORKERS: u32 = 2;
const SHAPES: [u32; 3] = [1, 2, 4];

/// The synthetic trace's host, and its groups' shares of a core while computing.
const BENCH_HOST_CORES: u32 = 2;
const BENCH_SHARES: [f64; 4] = [1.0, 0.9, 0.7, 0.5];

/// The network every validation run models, so transfers cost something.
const BANDWIDTH: &str = "1GB/s";
const LATENCY: &str = "1ms";

/// Cores of the machine the table in the README was measured on.
fn cores() -> u32 {
    std::thread::available_parallelism().map_or(1, |n| n.get() as u32)
}

pub fn bench_simulate(tasks: u64, validate: bool) -> Result<()> {
    let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
    let path = dir.path().join("synthetic.ndjson.zst");
    // A LocalCluster of 4 × 2 on one host of 2 cores, its groups' CPU shares recorded: the
    // larger shapes crowd the host, the replay's costliest case.
    let mut header = synthetic::header(4, 2);
    for worker in &mut header.cluster.workers {
        worker.host = Some("127.0.0.1".into());
        worker.host_cores = Some(BENCH_HOST_CORES);
    }
    let mut writer = TraceWriter::create(&path, &header)?;
    let mut groups = std::collections::BTreeSet::new();
    for record in synthetic::records(tasks, 4, 2) {
        if let Record::Task(task) = &record {
            groups.insert(task.group.clone());
        }
        writer.write(&record)?;
    }
    for (i, group) in groups.into_iter().enumerate() {
        let share = BENCH_SHARES[i % BENCH_SHARES.len()];
        writer.write(&Record::GroupMetrics(GroupMetrics {
            time: 0,
            group,
            metrics: [
                (CPU_METRIC.to_string(), share),
                (NONCPU_METRIC.to_string(), 1.0 - share),
            ]
            .into(),
        }))?;
    }
    writer.finish()?;
    let trace = path.display().to_string();
    let (secs, peak) = in_child(&["simulate", &trace])?;
    outln!(
        "taskscope bench simulate: `simulate` of a synthetic trace of {} tasks with dependencies \
         on its 4 default shapes ({BENCH_HOST_CORES} cores shared by its 8 chains of tasks): {secs:.2} \
         s, peak RSS {}",
        format_count(tasks),
        format_bytes(peak)
    )?;
    if validate {
        validation(dir.path())?;
    }
    Ok(())
}

/// Each workload recorded on 2 workers, predicted on 1, 2 and 4, and run for real on each;
/// then each simulated fix against the real `run --fix`.
fn validation(dir: &Path) -> Result<()> {
    outln!(
        "\nworkloads recorded on {RECORDED_WORKERS} workers × 1 thread ({BANDWIDTH}, {LATENCY} \
         network), predicted and run on each shape ({} cores here); `burn` rows burn their \
         compute time on the CPU (more workers than cores share them), `sleep` rows wait it out \
         (--sleep-compute):",
        cores()
    )?;
    outln!(
        "{:<16} {:<6} {:>6} {:>10} {:>10} {:>8}",
        "workload",
        "tasks",
        "shape",
        "predicted",
        "real",
        "error"
    )?;
    let mut fixes = Vec::new();
    for workload in engine::workloads::all() {
        for sleep in [false, true] {
            let run = |workers: u32, extra: &[&str]| -> Result<Replay> {
                let name = format!("{}-{workers}-{sleep}-{}", workload.name, extra.len());
                let path = dir.join(format!("{name}.ndjson.zst"));
                let path_text = path.display().to_string();
                let workers = workers.to_string();
                let mut args = vec![
                    "run",
                    workload.name,
                    "-o",
                    &path_text,
                    "--workers",
                    &workers,
                    "--bandwidth",
                    BANDWIDTH,
                    "--latency",
                    LATENCY,
                ];
                if sleep {
                    args.push("--sleep-compute");
                }
                args.extend_from_slice(extra);
                in_child(&args)?;
                replay_of(&path)
            };
            let recorded = run(RECORDED_WORKERS, &[])?;
            for workers in SHAPES {
                let shape = Shape {
                    workers,
                    threads: 1,
                };
                let model = Model::recorded(&recorded, Default::default(), shape);
                let predicted = simulate(&recorded, &model).wall_ns;
                let real = run(workers, &[])?.recorded.wall_ns;
                outln!(
                    "{:<16} {:<6} {:>6} {:>9.2}s {:>9.2}s {:>+7.0}%",
                    workload.name,
                    if sleep { "sleep" } else { "burn" },
                    shape.to_string(),
                    predicted as f64 / 1e9,
                    real as f64 / 1e9,
                    relative_error(predicted, real) * 100.0
                )?;
            }
            if !sleep && let Some(&(_, fix)) = FIXES.iter().find(|(name, _)| *name == workload.name)
            {
                let shape = recorded.recorded.shape;
                let model = Model::recorded(&recorded, Default::default(), shape);
                let Some(fixed) = recorded.fixed(fix) else {
                    continue;
                };
                let predicted = simulate(&fixed, &model).wall_ns;
                let real = run(RECORDED_WORKERS, &["--fix"])?.recorded.wall_ns;
                fixes.push((workload.name, fix, predicted, real));
            }
        }
    }
    outln!(
        "\nfixes, predicted from the unfixed recording and run for real (`run WORKLOAD --fix`):"
    )?;
    for (name, fix, predicted, real) in fixes {
        outln!(
            "{name:<16} --fix {:<19} {:>9.2}s {:>9.2}s {:>+7.0}%",
            fix.rule(),
            predicted as f64 / 1e9,
            real as f64 / 1e9,
            relative_error(predicted, real) * 100.0
        )?;
    }
    Ok(())
}

fn replay_of(path: &Path) -> Result<Replay> {
    Ok(Replay::open(path)?.replay?)
}

/// The workloads whose `--fix` follows a finding the simulator can apply.
const FIXES: [(&str, Fix); 5] = [
    ("skewed-groupby", Fix::Skew),
    ("tiny-partitions", Fix::TinyPartitions),
    ("large-argument", Fix::OversizedArgument),
    ("compute-in-loop", Fix::IdleGaps),
    ("recompute", Fix::Recomputation),
];
