//! `taskscope bench`: figures for the README, measured on this machine in one run.
//!
//! Timings are printed, never asserted: the machine is shared and noisy.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use traces::units::{format_bytes, format_count};
use traces::{Record, TraceReader, TraceWriter, synthetic};

use crate::cli::{BenchArgs, BenchTarget};

const WORKERS: u32 = 4;
const THREADS: u32 = 2;

pub fn run(args: &BenchArgs) -> Result<()> {
    match &args.target {
        BenchTarget::Info { tasks, dir } => bench_info(*tasks, dir.as_deref()),
        BenchTarget::Engine { tasks } => bench_engine(*tasks),
    }
}

fn bench_info(tasks: u64, dir: Option<&Path>) -> Result<()> {
    let temp;
    let dir = match dir {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("{}: cannot create directory", dir.display()))?;
            dir.to_path_buf()
        }
        None => {
            temp = tempfile::tempdir().context("cannot create a temporary directory")?;
            temp.path().to_path_buf()
        }
    };
    println!(
        "taskscope bench info: synthetic traces, {WORKERS} workers x {THREADS} threads, 2-4 phases per task"
    );
    println!(
        "{:>10}  {:<10}  {:>10}  {:>16}  {:>9}  {:>18}",
        "tasks", "format", "file", "parse records/s", "MB/s", "info peak RSS"
    );
    for n in [tasks / 10, tasks] {
        for suffix in ["ndjson", "ndjson.zst"] {
            let path = dir.join(format!("synthetic-{n}.{suffix}"));
            generate(&path, n)?;
            let size = std::fs::metadata(&path)?.len();
            let (records, secs) = parse(&path)?;
            let (info_secs, peak_rss) = info_in_child(&path)?;
            println!(
                "{:>10}  {:<10}  {:>10}  {:>16}  {:>9.0}  {:>10} ({:.2} s)",
                format_count(n),
                suffix,
                format_bytes(size),
                format_count((records as f64 / secs) as u64),
                size as f64 / secs / 1e6,
                format_bytes(peak_rss),
                info_secs
            );
        }
    }
    Ok(())
}

fn generate(path: &Path, tasks: u64) -> Result<()> {
    let mut writer = TraceWriter::create(path, &synthetic::header(WORKERS, THREADS))?;
    for record in synthetic::records(tasks, WORKERS, THREADS) {
        writer.write(&record)?;
    }
    writer.finish()?;
    Ok(())
}

/// Task records parsed per second, reading in this process.
fn parse(path: &Path) -> Result<(u64, f64)> {
    let started = Instant::now();
    let mut tasks = 0u64;
    for record in TraceReader::open(path)? {
        if let Record::Task(_) = record? {
            tasks += 1;
        }
    }
    Ok((tasks, started.elapsed().as_secs_f64()))
}

/// Runs `taskscope info` on `path` in a child process; returns its wall time and peak RSS.
fn info_in_child(path: &PathBuf) -> Result<(f64, u64)> {
    let exe = std::env::current_exe().context("cannot find the taskscope executable")?;
    let started = Instant::now();
    let output = Command::new(exe)
        .arg("info")
        .arg(path)
        .arg("--report-peak-memory")
        .stdout(Stdio::null())
        .output()
        .context("cannot start taskscope info")?;
    let secs = started.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        bail!(
            "taskscope info {} failed: {}",
            path.display(),
            stderr.trim()
        );
    }
    let peak = stderr
        .lines()
        .find_map(|line| line.strip_prefix("peak memory: "))
        .and_then(|rest| rest.trim_end_matches(" bytes").parse().ok())
        .context("taskscope info did not report its peak memory")?;
    Ok((secs, peak))
}

/// This process's peak resident set (`VmHWM`). Read by the process itself because a child's
/// `ru_maxrss` starts from its parent's when it is spawned with vfork.
pub fn peak_rss_bytes() -> Result<u64> {
    proc_status_kib("VmHWM:").map(|kib| kib * 1024)
}

/// Scheduling overhead of the built-in engine: no-op graphs end to end (submit to results).
fn bench_engine(tasks: u64) -> Result<()> {
    use engine::workloads::{map_graph, tree_graph};
    use engine::{Cluster, ClusterConfig};

    let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
    println!("taskscope bench engine: no-op tasks on 2 workers x 1 thread, submit to results");
    println!(
        "{:<6}  {:>10}  {:<9}  {:>10}  {:>9}  {:>12}  {:>13}",
        "shape", "tasks", "recording", "total", "us/task", "graph build", "peak B/task"
    );
    let mut baseline = std::collections::HashMap::new();
    for shape in ["map", "tree"] {
        for record in [false, true] {
            reset_peak_rss();
            let before = rss_bytes()?;
            let built = Instant::now();
            let graph = match shape {
                "map" => map_graph(tasks)?,
                _ => tree_graph(tasks)?,
            };
            let build_secs = built.elapsed().as_secs_f64();
            let trace = dir.path().join(format!("{shape}.ndjson.zst"));
            let cluster = Cluster::start(ClusterConfig {
                record_to: record.then(|| trace.clone()),
                ..ClusterConfig::default()
            })?;
            let started = Instant::now();
            cluster.client().compute(&graph)?;
            let secs = started.elapsed().as_secs_f64();
            let peak = peak_rss_bytes()?.saturating_sub(before);
            cluster.shutdown()?;
            let n = graph.len() as f64;
            let per_task = secs / n * 1e6;
            let overhead = match baseline.get(shape) {
                Some(off) => format!("  ({:+.1}% vs off)", (per_task / off - 1.0) * 100.0),
                None => {
                    baseline.insert(shape, per_task);
                    String::new()
                }
            };
            println!(
                "{:<6}  {:>10}  {:<9}  {:>8.3} s  {:>9.3}  {:>10.3} s  {:>13.0}{overhead}",
                shape,
                format_count(graph.len() as u64),
                if record { "on" } else { "off" },
                secs,
                per_task,
                build_secs,
                peak as f64 / n,
            );
        }
    }
    Ok(())
}

/// Resets this process's peak RSS (`VmHWM`) to the current RSS (Linux `clear_refs`).
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn rss_bytes() -> Result<u64> {
    proc_status_kib("VmRSS:").map(|kib| kib * 1024)
}

fn proc_status_kib(field: &str) -> Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status").context("/proc/self/status")?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("/proc/self/status has no {field} line"))
}
