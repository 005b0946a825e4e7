//! `taskscope bench`: figures for the README, measured on this machine in one run.
//!
//! Timings are printed, never asserted: the machine is shared and noisy.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use traces::units::{format_bytes, format_count};
use traces::{Record, TraceReader, TraceWriter, synthetic};

use crate::cli::{BenchArgs, BenchTarget};
use crate::output::outln;

const WORKERS: u32 = 4;
const THREADS: u32 = 2;

pub fn run(args: &BenchArgs) -> Result<()> {
    match &args.target {
        BenchTarget::Info { tasks, dir } => bench_info(*tasks, dir.as_deref()),
        BenchTarget::Analyze { tasks } => bench_analyze(*tasks),
        BenchTarget::Tui { tasks, rate } => crate::bench_tui::bench_tui(*tasks, *rate),
        BenchTarget::Engine { tasks, case: None } => bench_engine(*tasks),
        BenchTarget::Engine {
            tasks,
            case: Some(case),
        } => engine_case(*tasks, case),
        BenchTarget::Simulate { tasks, validate } => {
            crate::bench_simulate::bench_simulate(*tasks, *validate)
        }
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
    outln!(
        "taskscope bench info: synthetic traces, {WORKERS} workers x {THREADS} threads, 2-4 phases per task"
    )?;
    outln!(
        "{:>10}  {:<10}  {:>10}  {:>16}  {:>9}  {:>18}",
        "tasks",
        "format",
        "file",
        "parse records/s",
        "MB/s",
        "info peak RSS"
    )?;
    for n in [tasks / 10, tasks] {
        for suffix in ["ndjson", "ndjson.zst"] {
            let path = dir.join(format!("synthetic-{n}.{suffix}"));
            generate(&path, n)?;
            let size = std::fs::metadata(&path)?.len();
            let (records, secs) = parse(&path)?;
            let (info_secs, peak_rss) = in_child(&["info", &path.display().to_string()])?;
            outln!(
                "{:>10}  {:<10}  {:>10}  {:>16}  {:>9.0}  {:>10} ({:.2} s)",
                format_count(n),
                suffix,
                format_bytes(size),
                format_count((records as f64 / secs) as u64),
                size as f64 / secs / 1e6,
                format_bytes(peak_rss),
                info_secs
            )?;
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

/// Runs `taskscope ARGS` in a child process (output discarded); returns its wall time and its
/// own peak RSS.
pub(crate) fn in_child(args: &[&str]) -> Result<(f64, u64)> {
    let exe = std::env::current_exe().context("cannot find the taskscope executable")?;
    let started = Instant::now();
    let output = Command::new(exe)
        .args(args)
        .arg("--report-peak-memory")
        .stdout(Stdio::null())
        .output()
        .context("cannot start taskscope")?;
    let secs = started.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        // The child's own error, without the peak-memory line it adds for us.
        let error: Vec<&str> = stderr
            .lines()
            .filter(|line| !line.starts_with("peak memory: "))
            .collect();
        bail!(
            "taskscope {} failed: {}",
            args.join(" "),
            error.join(" ").trim()
        );
    }
    let peak = stderr
        .lines()
        .find_map(|line| line.strip_prefix("peak memory: "))
        .and_then(|rest| rest.trim_end_matches(" bytes").parse().ok())
        .context("taskscope did not report its peak memory")?;
    Ok((secs, peak))
}

/// `info`, `analyze`, `flamegraph` and `report` on a generated trace, each in its own process.
fn bench_analyze(tasks: u64) -> Result<()> {
    let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
    let path = dir.path().join("synthetic.ndjson.zst");
    generate(&path, tasks)?;
    let trace = path.display().to_string();
    let svg = dir.path().join("out.svg").display().to_string();
    let html = dir.path().join("report.html").display().to_string();
    outln!(
        "taskscope bench analyze: synthetic trace of {} tasks with dependencies ({}), {WORKERS} workers x {THREADS} threads",
        format_count(tasks),
        format_bytes(std::fs::metadata(&path)?.len())
    )?;
    for (label, args) in [
        ("info", vec!["info", &trace]),
        ("analyze", vec!["analyze", "--format", "json", &trace]),
        ("flamegraph", vec!["flamegraph", &trace, "-o", &svg]),
        ("report", vec!["report", &trace, "-o", &html]),
    ] {
        let (secs, peak) = in_child(&args)?;
        outln!(
            "{label:<11} {secs:>6.2} s  {:>10} records/s  peak RSS {:>10} ({:.0} B/task)",
            format_count((tasks as f64 / secs) as u64),
            format_bytes(peak),
            peak as f64 / tasks as f64
        )?;
    }
    outln!(
        "report page {}",
        format_bytes(std::fs::metadata(dir.path().join("report.html"))?.len())
    )?;
    Ok(())
}

/// This process's peak resident set (`VmHWM`). Read by the process itself because a child's
/// `ru_maxrss` starts from its parent's when it is spawned with vfork.
pub fn peak_rss_bytes() -> Result<u64> {
    proc_status_kib("VmHWM:").map(|kib| kib * 1024)
}

/// Scheduling overhead of the built-in engine: no-op graphs end to end (submit to results),
/// each case in a fresh process.
fn bench_engine(tasks: u64) -> Result<()> {
    let exe = std::env::current_exe().context("cannot find the taskscope executable")?;
    outln!("taskscope bench engine: no-op tasks on 2 workers x 1 thread, submit to results")?;
    outln!(
        "{:<6}  {:>10}  {:<9}  {:>9}  {:>9}  {:>12}  {:>12}  {:>11}",
        "shape",
        "tasks",
        "recording",
        "compute",
        "us/task",
        "trace done",
        "graph build",
        "peak B/task"
    )?;
    let mut off = std::collections::HashMap::new();
    // `20us`: a tenth as many tasks doing 20 µs of real work each (the tiny-partitions regime),
    // where recording's cost shows against real work rather than against nothing.
    for shape in ["map", "tree", "20us"] {
        for record in ["off", "on"] {
            let output = Command::new(&exe)
                .args(["bench", "engine", "--tasks", &tasks.to_string()])
                .args(["--case", &format!("{shape}-{record}")])
                .output()
                .context("cannot start the benchmark process")?;
            if !output.status.success() {
                bail!(
                    "bench case {shape}-{record} failed: {}",
                    String::from_utf8_lossy(&output.stderr).trim()
                );
            }
            let case: serde_json::Value = serde_json::from_slice(&output.stdout)?;
            let us = case["us_per_task"].as_f64().unwrap_or(0.0);
            let versus = match off.get(shape) {
                Some(base) => format!("  ({:+.1}% vs off)", (us / base - 1.0) * 100.0),
                None => {
                    off.insert(shape, us);
                    String::new()
                }
            };
            outln!(
                "{:<6}  {:>10}  {:<9}  {:>7.3} s  {:>9.3}  {:>10.3} s  {:>10.3} s  {:>11.0}{versus}",
                shape,
                format_count(case["tasks"].as_u64().unwrap_or(0)),
                record,
                case["compute_seconds"].as_f64().unwrap_or(0.0),
                us,
                case["shutdown_seconds"].as_f64().unwrap_or(0.0),
                case["build_seconds"].as_f64().unwrap_or(0.0),
                case["peak_bytes_per_task"].as_f64().unwrap_or(0.0),
            )?;
        }
    }
    outln!(
        "recording hot path: {:.1} ns per task attempt (event built and buffered; 10,000,000 events)",
        engine::recording_cost_ns(10_000_000)
    )?;
    outln!(
        "compute: submit to results in the client; trace done: until the trace file is complete \
         (the writer runs on idle CPU and catches up after); peak B/task: peak RSS growth over \
         the run (graph, scheduler state, results, buffered records) per task"
    )?;
    Ok(())
}

/// One benchmark case, printed as a JSON object.
fn engine_case(tasks: u64, case: &str) -> Result<()> {
    use engine::workloads::{busy_map_graph, map_graph, tree_graph};
    use engine::{Cluster, ClusterConfig};

    let (shape, record) = match case {
        "map-off" => ("map", false),
        "map-on" => ("map", true),
        "tree-off" => ("tree", false),
        "tree-on" => ("tree", true),
        "20us-off" => ("20us", false),
        "20us-on" => ("20us", true),
        other => bail!(
            "unknown bench case {other:?}: expected map-off, map-on, tree-off, tree-on, \
             20us-off, 20us-on"
        ),
    };
    let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
    let before = rss_bytes()?;
    let built = Instant::now();
    let graph = match shape {
        "map" => map_graph(tasks)?,
        "tree" => tree_graph(tasks)?,
        _ => busy_map_graph(tasks / 10, 20_000)?,
    };
    let build_seconds = built.elapsed().as_secs_f64();
    let cluster = Cluster::start(ClusterConfig {
        record_to: record.then(|| dir.path().join("bench.ndjson.zst")),
        ..ClusterConfig::default()
    })?;
    let started = Instant::now();
    let outputs = cluster.client().compute(&graph)?;
    let compute_seconds = started.elapsed().as_secs_f64();
    drop(outputs);
    cluster.shutdown()?;
    let shutdown_seconds = started.elapsed().as_secs_f64();
    let peak = peak_rss_bytes()?.saturating_sub(before);
    let n = graph.len() as f64;
    outln!(
        "{}",
        serde_json::json!({
            "shape": shape,
            "recording": record,
            "tasks": graph.len(),
            "build_seconds": build_seconds,
            "compute_seconds": compute_seconds,
            "shutdown_seconds": shutdown_seconds,
            "us_per_task": compute_seconds / n * 1e6,
            "peak_bytes_per_task": peak as f64 / n,
        })
    )?;
    Ok(())
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
