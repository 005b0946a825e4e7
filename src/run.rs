//! `taskscope run` and `taskscope demo`: a workload on the built-in engine, recorded.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use engine::workloads::{self, Explicit, Options, Workload};
use engine::{Client, Cluster, ClusterConfig, Network, Progress};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use observe::{Control, Hub, Server};
use traces::Tap;
use traces::units::{format_bytes, format_count, printable};
use traces::{TraceReader, TraceSummary};

use crate::cli::{ClusterArgs, DemoArgs, RunArgs, ServeArgs};
use crate::output::OutputFile;

/// The demo's workload: a job that runs out of memory, spills, pauses, loses a worker, and
/// recovers — something worth looking at.
const DEMO_WORKLOAD: &str = "memory-pressure";

pub fn run(args: &RunArgs) -> Result<()> {
    if args.list {
        return print_list();
    }
    let name = args.workload.as_deref().expect("clap requires a workload");
    if let Some(workload) = workloads::find(name) {
        let output = args
            .output
            .clone()
            .unwrap_or_else(|| PathBuf::from(format!("{name}.ndjson.zst")));
        let options = Options {
            fix: args.fix,
            scale: args.scale,
        };
        let output = OutputFile::create(&output, "-o", &[])?;
        return run_workload(workload, &options, &args.cluster, &args.serve, output);
    }
    // A graph file: clap let through names ending in .toml / .json.
    let path = Path::new(name);
    let graph = workloads::file::load(path).map_err(anyhow::Error::msg)?;
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("graph");
    let output = args
        .output
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("{stem}.ndjson.zst")));
    let output = OutputFile::create(&output, "-o", &[path])?;
    let config = cluster_config(&args.cluster, output.path());
    execute(name, false, config, &args.serve, output, |client| {
        client.compute(&graph).map(drop)
    })
}

pub fn demo(args: &DemoArgs) -> Result<()> {
    let workload = workloads::find(DEMO_WORKLOAD).expect("the demo workload exists");
    let cluster = ClusterArgs {
        workers: 2,
        threads: 1,
        memory_limit: None,
        bandwidth: None,
        latency: None,
        sleep_compute: false,
    };
    eprintln!("taskscope demo: `{}` on the built-in engine", workload.name);
    eprintln!("  {}", workload.about);
    let output = OutputFile::create(&args.output, "-o", &[])?;
    run_workload(workload, &Options::default(), &cluster, &args.serve, output)
}

fn print_list() -> Result<()> {
    use std::fmt::Write as _;
    let width = workloads::all()
        .iter()
        .map(|w| w.name.len())
        .max()
        .unwrap_or(0);
    let mut text = String::new();
    for w in workloads::all() {
        let _ = writeln!(text, "{:<width$}  {}", w.name, w.about);
        if let Some(fix) = w.fix {
            let _ = writeln!(text, "{:<width$}  --fix: {fix}", "");
        }
    }
    crate::output::print(&text)
}

fn cluster_config(args: &ClusterArgs, output: &Path) -> ClusterConfig {
    ClusterConfig {
        workers: args.workers,
        threads: args.threads,
        // 0 is no limit, as in Dask.
        memory_limit: args.memory_limit.filter(|&limit| limit > 0),
        network: Network {
            bandwidth: args.bandwidth,
            latency_ns: args.latency.unwrap_or(0),
        },
        record_to: Some(output.to_path_buf()),
        sleep_compute: args.sleep_compute,
        ..ClusterConfig::default()
    }
}

fn run_workload(
    workload: &Workload,
    options: &Options,
    args: &ClusterArgs,
    serve: &ServeArgs,
    output: OutputFile,
) -> Result<()> {
    let mut config = cluster_config(args, output.path());
    let explicit = Explicit {
        memory_limit: args.memory_limit.is_some(),
        network: args.bandwidth.is_some() || args.latency.is_some(),
    };
    (workload.configure)(&mut config, &explicit);
    execute(
        workload.name,
        options.fix,
        config,
        serve,
        output,
        |client| (workload.run)(client, options),
    )
}

/// Starts the cluster, runs `work` under a progress bar, then prints what the trace shows.
fn execute(
    name: &str,
    fix: bool,
    mut config: ClusterConfig,
    serve: &ServeArgs,
    output: OutputFile,
    work: impl FnOnce(&Client) -> Result<(), engine::EngineError>,
) -> Result<()> {
    let served = match serve.serve {
        Some(addr) => {
            let hub = Arc::new(Hub::new());
            let security = crate::credentials::serve_security(serve)?;
            let tls = security.tls.is_some();
            let server = Server::start_secured(hub.clone(), addr, security)?;
            config.tap = Some(Tap(hub.clone()));
            let shown = if tls {
                format!("https://{} --tls-ca CA.pem", server.local_addr())
            } else {
                server.local_addr().to_string()
            };
            eprintln!(
                "serving Observe on {}: watch with `taskscope top {shown}`",
                server.local_addr(),
            );
            Some((hub, server))
        }
        None => None,
    };
    let cluster = Cluster::start(config)?;
    let hub = served.as_ref().map(|(hub, _)| hub.as_ref());
    if let Some(hub) = hub {
        hub.set_control(Arc::new(EngineControl(cluster.client())));
    }
    let started = Instant::now();
    let result = with_progress(&cluster, hub, || work(&cluster.client()));
    let elapsed = started.elapsed();
    let progress = cluster.progress();
    let last_state = cluster.client().live_state();
    let records = cluster.shutdown()?;
    if let Some(hub) = hub {
        hub.publish_progress(&last_state);
    }
    // The trace is complete even when the workload failed: it is what explains the failure.
    let readable = output.is_regular();
    let output_name = output.name().to_path_buf();
    let committed = output.commit();
    let output = output_name.as_path();
    result.with_context(|| format!("workload {name} failed"))?;
    committed?;

    eprintln!(
        "ran {}{} in {:.2} s: {} tasks, {} spilled ({} values), {} workers killed, wrote {} task records to {}",
        printable(name),
        if fix { " --fix" } else { "" },
        elapsed.as_secs_f64(),
        format_count(progress.tasks_done),
        format_bytes(progress.spilled_bytes),
        format_count(progress.spills),
        progress.kills,
        format_count(records),
        printable(&output.display().to_string())
    );
    if readable {
        let summary = TraceSummary::build(TraceReader::open(output)?)?;
        crate::print_warnings(&summary.warnings);
        let report = analyzer::analyze(TraceReader::open(output)?)?;
        crate::output::print(&format!(
            "{}\nanalysis\n{}",
            crate::info::render_text(&output.display().to_string(), &summary),
            analyzer::report::to_text(&report, crate::analyze::use_color())
        ))?;
    } else {
        // A FIFO or a device cannot be read back (reading a FIFO would wait forever).
        eprintln!(
            "{} is not a regular file: no summary",
            printable(&output.display().to_string())
        );
    }
    if let Some((_, server)) = served {
        eprintln!(
            "\nthe run is over; still serving on {} for `taskscope top` (Ctrl-C to stop)",
            server.local_addr()
        );
        // Ctrl-C's default action ends the process; the trace is complete by now.
        loop {
            std::thread::park();
        }
    }
    Ok(())
}

/// `Pause` / `Resume` from a watcher: the engine stops starting tasks.
struct EngineControl(Client);

impl Control for EngineControl {
    fn pause(&self) -> bool {
        self.0.pause()
    }

    fn resume(&self) -> bool {
        self.0.resume()
    }
}

/// Runs `work` while a progress bar on stderr shows tasks done / submitted, spills and kills,
/// and the scheduler's state goes to watchers, if any.
fn with_progress<T>(cluster: &Cluster, hub: Option<&Hub>, work: impl FnOnce() -> T) -> T {
    let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr_with_hz(10));
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} tasks {msg}",
        )
        .expect("the progress template is valid"),
    );
    let done = Arc::new(AtomicBool::new(false));
    /// Sets `done` however `work` ends: a panic that skipped it would leave the scope waiting
    /// for the progress thread forever.
    struct Done<'a>(&'a AtomicBool);
    impl Drop for Done<'_> {
        fn drop(&mut self) {
            self.0.store(true, Ordering::Relaxed);
        }
    }
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let mut ticks = 0u64;
            while !done.load(Ordering::Relaxed) {
                update(&bar, cluster.progress());
                // Every 300 ms: sampling walks every task held under the scheduler's lock
                // (a few ms at a million tasks).
                if let Some(hub) = hub
                    && ticks.is_multiple_of(3)
                {
                    hub.publish_progress(&cluster.client().live_state());
                }
                ticks += 1;
                std::thread::sleep(Duration::from_millis(100));
            }
            update(&bar, cluster.progress());
            bar.finish_and_clear();
        });
        let _done = Done(&done);
        work()
    })
}

fn update(bar: &ProgressBar, p: Progress) {
    bar.set_length(p.tasks_submitted);
    bar.set_position(p.tasks_done + p.tasks_erred);
    bar.set_message(format!(
        "| {} spilled | {} paused | {} killed",
        format_bytes(p.spilled_bytes),
        p.pauses,
        p.kills
    ));
}
