//! `taskscope bench simulate`: the simulator's speed on a big trace, and its predictions for
//! the engine's workloads against real runs of them on each shape.

use std::path::Path;

use anyhow::{Context, Result};
use engine::simulate::{Fix, Model, Replay, Shape, simulate};
use traces::units::{format_bytes, format_count};
use traces::{TraceWriter, synthetic};

use crate::bench::in_child;
use crate::output::outln;

/// The recorded shape of the validation runs, and the shapes predicted and run for real.
const RECORDED_WORKERS: u32 = 2;
const SHAPES: [u32; 3] = [1, 2, 4];

/// The network every validation run models, so transfers cost something.
const BANDWIDTH: &str = "1GB/s";
const LATENCY: &str = "1ms";

/// Cores of the machine the table in the README was measured on: real runs with more
/// CPU-bound threads than this share cores, which no replay of their recorded times predicts.
fn cores() -> u32 {
    std::thread::available_parallelism().map_or(1, |n| n.get() as u32)
}

pub fn bench_simulate(tasks: u64, validate: bool) -> Result<()> {
    let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
    let path = dir.path().join("synthetic.ndjson.zst");
    let mut writer = TraceWriter::create(&path, &synthetic::header(4, 2))?;
    for record in synthetic::records(tasks, 4, 2) {
        writer.write(&record)?;
    }
    writer.finish()?;
    let trace = path.display().to_string();
    let (secs, peak) = in_child(&["simulate", &trace])?;
    outln!(
        "taskscope bench simulate: `simulate` of a synthetic trace of {} tasks with dependencies \
         on its 4 default shapes: {secs:.2} s, peak RSS {}",
        format_count(tasks),
        format_bytes(peak)
    )?;
    if validate {
        validation(dir.path())?;
    }
    Ok(())
}

/// Each workload recorded on 2 workers, predicted on 1, 2 and 4, and run for real on each.
fn validation(dir: &Path) -> Result<()> {
    outln!(
        "\nworkloads recorded on {RECORDED_WORKERS} workers × 1 thread ({BANDWIDTH}, {LATENCY} \
         network), predicted and run on each shape ({} cores here):",
        cores()
    )?;
    outln!(
        "{:<16} {:>6} {:>10} {:>10} {:>8}",
        "workload",
        "shape",
        "predicted",
        "real",
        "error"
    )?;
    let mut fixes = Vec::new();
    for workload in engine::workloads::all() {
        let record = |workers: u32, name: &str| -> Result<Replay> {
            let path = dir.join(format!("{}-{name}.ndjson.zst", workload.name));
            let path_text = path.display().to_string();
            let workers = workers.to_string();
            in_child(&[
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
            ])?;
            replay_of(&path)
        };
        let recorded = record(RECORDED_WORKERS, "recorded")?;
        fixes.extend(
            FIXES
                .iter()
                .filter(|(name, _)| *name == workload.name)
                .map(|&(_, fix)| (workload.name, fix, recorded.clone())),
        );
        for workers in SHAPES {
            let shape = Shape {
                workers,
                threads: 1,
            };
            let model = Model::recorded(&recorded, Default::default(), shape);
            let predicted = simulate(&recorded, &model).wall_ns;
            let real = record(workers, &format!("{workers}w"))?.recorded.wall_ns;
            let error = (predicted as f64 - real as f64) / real as f64;
            let note = if workers > cores() {
                "  (more CPU-bound threads than cores: the real run shares them)"
            } else {
                ""
            };
            outln!(
                "{:<16} {:>6} {:>9.2}s {:>9.2}s {:>+7.0}%{note}",
                workload.name,
                shape.to_string(),
                predicted as f64 / 1e9,
                real as f64 / 1e9,
                error * 100.0
            )?;
        }
    }
    outln!(
        "\nfixes, predicted from the unfixed recording and run for real (`run WORKLOAD --fix`):"
    )?;
    for (name, fix, recorded) in fixes {
        let shape = recorded.recorded.shape;
        let model = Model::recorded(&recorded, Default::default(), shape);
        let predicted = simulate(&recorded.fixed(fix), &model).wall_ns;
        let path = dir.join(format!("{name}-fixed.ndjson.zst"));
        let path_text = path.display().to_string();
        in_child(&[
            "run",
            name,
            "--fix",
            "-o",
            &path_text,
            "--bandwidth",
            BANDWIDTH,
            "--latency",
            LATENCY,
        ])?;
        let real = replay_of(&path)?.recorded.wall_ns;
        outln!(
            "{name:<16} --fix {:<19} {:>9.2}s {:>9.2}s {:>+7.0}%",
            fix.rule(),
            predicted as f64 / 1e9,
            real as f64 / 1e9,
            (predicted as f64 - real as f64) / real as f64 * 100.0
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
