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
    }
}

fn bench_info(tasks: u64, dir: Option<&Path>) -> Result<()> {
    let temp;
    let dir = match dir {
        Some(dir) => dir.to_path_buf(),
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
            std::fs::remove_file(&path).ok();
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
    let child = Command::new(exe)
        .arg("info")
        .arg(path)
        .stdout(Stdio::null())
        .spawn()
        .context("cannot start taskscope info")?;
    let (status, max_rss_kib) = wait_with_rusage(child.id())?;
    let secs = started.elapsed().as_secs_f64();
    if !status.success() {
        bail!("taskscope info {} failed: {status}", path.display());
    }
    Ok((secs, max_rss_kib * 1024))
}

/// Waits for `pid` and returns its exit status and peak resident set size (KiB).
fn wait_with_rusage(pid: u32) -> Result<(std::process::ExitStatus, u64)> {
    use std::os::unix::process::ExitStatusExt;
    let mut status = 0;
    // SAFETY: rusage is plain data that wait4 fills in; status is a valid out pointer.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::wait4(pid as libc::pid_t, &mut status, 0, &mut usage) };
    if rc < 0 {
        bail!("wait4: {}", std::io::Error::last_os_error());
    }
    Ok((
        std::process::ExitStatus::from_raw(status),
        usage.ru_maxrss as u64,
    ))
}
