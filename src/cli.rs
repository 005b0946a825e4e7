//! Command-line syntax (clap derive). Behaviour lives in one module per command.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Why is my task-parallel job slow or dying? Record, inspect and explain Dask-style runs.
#[derive(Debug, Parser)]
#[command(name = "taskscope", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Print this process's peak resident memory to stderr at the end (for `taskscope bench`).
    #[arg(long, global = true, hide = true)]
    pub report_peak_memory: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Summarize a trace: tasks, groups, workers, wall time, bytes transferred and spilled.
    ///
    /// TRACE may be a taskscope trace (.ndjson, .ndjson.zst) or a Dask task stream saved as
    /// JSON (`json.dump(client.get_task_stream(), f)`, without the pickled `type` field); the
    /// format is told from the content.
    Info(InfoArgs),
    /// Find what makes a run slow or fragile, ranked by the time each fix would save.
    ///
    /// Exit codes: 0 ok, 1 bad input, 2 usage, 3 a finding at or above --fail-on.
    Analyze(AnalyzeArgs),
    /// Draw where the time went as a flamegraph (SVG), or print folded stacks.
    Flamegraph(FlamegraphArgs),
    /// Write one self-contained HTML page for a run: findings, task stream, memory, task
    /// groups, flamegraph and critical path (no network needed to open it).
    Report(ReportArgs),
    /// Export a trace for another tool.
    Export(ExportArgs),
    /// Convert any readable trace to the native format (zstd-compressed when OUT ends in .zst).
    Convert(ConvertArgs),
    /// Run a workload on the built-in engine and record its trace.
    Run(RunArgs),
    /// Run the demo: a workload with a known problem on the built-in engine, then its summary
    /// and analysis.
    Demo(DemoArgs),
    /// Watch a running cluster live in the terminal (the built-in engine's `run --serve`, or
    /// a Dask scheduler with the taskscope-dask plugin).
    ///
    /// Reconnects with backoff when the cluster goes away. Press ? for keys.
    Top(TopArgs),
    /// Replay a trace in the terminal: play, pause, speed, seek, with the views of `top`.
    Replay(ReplayArgs),
    /// Predict the run on other cluster shapes: replay its trace with the engine's scheduler
    /// in virtual time (placement, stealing, transfers, spilling), Sparklens-style.
    ///
    /// The first line is the model's error on the recorded shape itself.
    Simulate(SimulateArgs),
    /// Measure taskscope's own speed and memory on generated data.
    Bench(BenchArgs),
}

#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Trace file (native, Dask task stream or performance report).
    pub trace: PathBuf,
    /// Worker counts to predict, e.g. 2,4,8, up to 4096 [default: 1, 2, 4 and 8 times the
    /// recorded].
    #[arg(long, value_delimiter = ',', value_parser = clap::value_parser!(u32).range(1..=i64::from(engine::MAX_SIMULATED_WORKERS)))]
    pub workers: Vec<u32>,
    /// Threads per worker to predict, e.g. 1,2 [default: the recorded].
    #[arg(long, value_delimiter = ',', value_parser = clap::value_parser!(u32).range(1..=256))]
    pub threads: Vec<u32>,
    /// Memory limit per worker [default: the recorded]; 0 means no limit, as in Dask.
    #[arg(long, value_parser = size)]
    pub memory_limit: Option<u64>,
    /// Network bandwidth between workers, e.g. 1GB/s [default: fitted to the recorded
    /// transfers].
    #[arg(long, value_parser = bandwidth)]
    pub bandwidth: Option<u64>,
    /// Network latency per transfer, e.g. 1ms [default: fitted to the recorded transfers].
    #[arg(long, value_parser = duration_ns)]
    pub latency: Option<u64>,
    /// Cores of each host the workers run on [default: the recorded]. Tasks computing on one
    /// host beyond its cores slow each other down, by their recorded CPU share.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub cores: Option<u32>,
    /// Also predict each shape with this finding's fix applied: idle-gaps (graphs submitted
    /// together), oversized-argument (the argument scattered once per worker), recomputation
    /// (shared results persisted and computed once), skew (long tasks split to their group's
    /// median) or tiny-partitions (short tasks merged into ~100 ms ones).
    #[arg(long, value_name = "RULE", value_parser = simulated_fix)]
    pub fix: Option<engine::simulate::Fix>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
}

fn simulated_fix(rule: &str) -> Result<engine::simulate::Fix, String> {
    engine::simulate::Fix::from_rule(rule).ok_or_else(|| {
        let known: Vec<&str> = engine::simulate::Fix::ALL
            .iter()
            .map(|f| f.rule())
            .collect();
        format!(
            "no simulated fix for {rule:?}; the simulator applies: {}",
            known.join(", ")
        )
    })
}

#[derive(Debug, Args)]
pub struct TopArgs {
    /// Address of the Observe server: HOST:PORT, or https://HOST:PORT for TLS.
    #[arg(default_value = DEFAULT_ADDR)]
    pub addr: String,
    #[command(flatten)]
    pub token: TokenArgs,
    /// Trust the server's TLS certificate when this CA (PEM) signed it, or when it is this
    /// certificate; the connection is TLS (https://).
    #[arg(long, value_name = "PATH")]
    pub tls_ca: Option<PathBuf>,
    /// No interactive screen: watch for this long (e.g. 3s), then print VIEW as text and exit
    /// (for scripts and CI logs).
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    pub print_after: Option<std::time::Duration>,
    /// The view --print-after prints: stream, memory, graph, progress, workers, histograms or
    /// findings.
    #[arg(long, default_value = "stream", value_parser = view_name, requires = "print_after")]
    pub view: tui::view::Tab,
}

/// The bearer token, from the command line, a file or `TASKSCOPE_TOKEN`.
#[derive(Debug, Args)]
pub struct TokenArgs {
    /// Bearer token. Visible to every user of this machine in `ps`: prefer TASKSCOPE_TOKEN or
    /// --token-file.
    #[arg(long, value_name = "TOKEN", conflicts_with = "token_file")]
    pub token: Option<String>,
    /// Read the bearer token from the first line of this file. Without --token or
    /// --token-file, the token is $TASKSCOPE_TOKEN.
    #[arg(long, value_name = "PATH")]
    pub token_file: Option<PathBuf>,
}

fn view_name(s: &str) -> Result<tui::view::Tab, String> {
    use tui::view::Tab;
    Tab::from_name(s).ok_or_else(|| {
        let names: Vec<&str> = Tab::ALL.iter().map(|t| t.name()).collect();
        format!("invalid view {s:?}: expected one of {}", names.join(", "))
    })
}

fn duration(s: &str) -> Result<std::time::Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("invalid duration {s:?}: {e}"))
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// A taskscope trace, Dask task stream JSON, or Dask performance report HTML.
    pub trace: PathBuf,
}

/// Where `--serve` binds and `top` connects by default.
pub const DEFAULT_ADDR: &str = "127.0.0.1:7878";

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Serve the Observe gRPC while running (and after, until Ctrl-C), for `taskscope top`.
    /// Any address but loopback needs a token, and TLS (or --insecure).
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = DEFAULT_ADDR)]
    pub serve: Option<SocketAddr>,
    #[command(flatten)]
    pub token: TokenArgs,
    /// Serve over TLS with this certificate chain (PEM); needs --tls-key.
    #[arg(long, value_name = "PATH", requires_all = ["tls_key", "serve"])]
    pub tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, value_name = "PATH", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Serve a token beyond loopback without TLS: anyone on the network path can read the
    /// token and then watch and pause the cluster. Only for a network you trust whole.
    #[arg(long, requires = "serve")]
    pub insecure: bool,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Workload to run (see --list), or a graph described in a .toml / .json file.
    #[arg(required_unless_present = "list", value_parser = workload_name)]
    pub workload: Option<String>,
    /// List the workloads with a sentence each.
    #[arg(long)]
    pub list: bool,
    /// Trace file to write (.zst compresses) [default: WORKLOAD.ndjson.zst].
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Run the workload's corrected variant (scatter, persist, repartition…).
    #[arg(long)]
    pub fix: bool,
    /// Multiply the workload's task counts (above 0, at most 50).
    #[arg(long, default_value_t = 1.0, value_parser = scale)]
    pub scale: f64,
    #[command(flatten)]
    pub cluster: ClusterArgs,
    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Trace file to write.
    #[arg(short, long, default_value = "taskscope-demo.ndjson.zst")]
    pub output: PathBuf,
    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Debug, Args)]
pub struct ClusterArgs {
    /// Number of workers.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=i64::from(engine::MAX_WORKERS)))]
    pub workers: u32,
    /// Threads per worker.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub threads: u32,
    /// Memory limit per worker, e.g. 2GiB or 512MB (spill at 60%, pause at 80%, kill at 95%);
    /// 0 means no limit, as in Dask.
    #[arg(long, value_parser = size)]
    pub memory_limit: Option<u64>,
    /// Network bandwidth between workers, e.g. 1GB/s, at least 1MB/s (transfers are delayed to
    /// match).
    #[arg(long, value_parser = bandwidth)]
    pub bandwidth: Option<u64>,
    /// Network latency per transfer, e.g. 1ms (once per 10 peers a task fetches from: a Dask
    /// worker gathers from 10 at once).
    #[arg(long, value_parser = duration_ns)]
    pub latency: Option<u64>,
    /// Tasks wait out their compute time instead of burning a core, as I/O-bound or
    /// GIL-releasing work does: more workers than cores then still run side by side.
    #[arg(long)]
    pub sleep_compute: bool,
}

fn workload_name(name: &str) -> Result<String, String> {
    if name.ends_with(".toml") || name.ends_with(".json") {
        return Ok(name.to_string());
    }
    match engine::workloads::find(name) {
        Some(w) => Ok(w.name.to_string()),
        None => Err(format!(
            "unknown workload; valid workloads: {} (or a .toml / .json graph file)",
            engine::workloads::all()
                .iter()
                .map(|w| w.name)
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// The largest `--scale`: tiny-partitions, the biggest workload, has about 100,000 tasks, so 50
/// makes 5 million, the bound a graph file has too; far beyond, the engine aborts on allocation.
const MAX_SCALE: f64 = 50.0;

/// The slowest `--bandwidth`: below it the workloads' transfers of a few MiB take minutes each,
/// and a run looks hung.
const MIN_BANDWIDTH: u64 = 1_000_000;

fn scale(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(scale) if scale > 0.0 && scale <= MAX_SCALE => Ok(scale),
        _ => Err(format!(
            "invalid scale {text:?}: expected a number above 0 and at most {MAX_SCALE}"
        )),
    }
}

fn size(text: &str) -> Result<u64, String> {
    traces::units::parse_bytes(text)
}

fn bandwidth(text: &str) -> Result<u64, String> {
    let per_second = text.strip_suffix("/s").ok_or_else(|| {
        format!("invalid bandwidth {text:?}: expected a size per second, e.g. 1GB/s")
    })?;
    let bandwidth = size(per_second)?;
    if bandwidth < MIN_BANDWIDTH {
        return Err(format!(
            "invalid bandwidth {text:?}: below the slowest this engine models, 1MB/s"
        ));
    }
    Ok(bandwidth)
}

fn duration_ns(text: &str) -> Result<u64, String> {
    let duration = humantime::parse_duration(text)
        .map_err(|e| format!("invalid duration {text:?}: {e} (e.g. 1ms, 250us)"))?;
    u64::try_from(duration.as_nanos())
        .map_err(|_| format!("invalid duration {text:?}: longer than 584 years"))
}

#[derive(Debug, Args)]
pub struct InfoArgs {
    /// Trace file (native or Dask task stream).
    pub trace: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// For people.
    Text,
    /// For programs: the summary as one JSON object.
    Json,
}

#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    /// Trace file (native or Dask task stream).
    pub trace: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    pub format: ReportFormat,
    /// Exit with code 3 when any finding is at or above this severity (a CI gate).
    #[arg(long, value_parser = severity)]
    pub fail_on: Option<analyzer::Severity>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    /// One screen for people (colour unless NO_COLOR or not a terminal).
    Text,
    /// The stable schema: summary, findings (most severe first, then by impact), critical path.
    Json,
    /// A table for a pull request or an issue.
    Markdown,
    /// The findings as an HTML fragment with its own style (what notebooks show; the same
    /// markup as `taskscope report`'s).
    Html,
}

fn severity(text: &str) -> Result<analyzer::Severity, String> {
    text.parse()
}

#[derive(Debug, Args)]
pub struct FlamegraphArgs {
    /// Trace file (native or Dask task stream).
    #[arg(required_unless_present = "diff", conflicts_with = "diff")]
    pub trace: Option<PathBuf>,
    /// Differential flamegraph of two traces: AFTER's shape, red where it grew, blue where it
    /// shrank.
    #[arg(long, num_args = 2, value_names = ["BEFORE", "AFTER"])]
    pub diff: Option<Vec<PathBuf>>,
    /// Output file [default: stdout].
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Print folded stacks (`group;action microseconds`) instead of an SVG.
    #[arg(long)]
    pub folded: bool,
    /// Root stacks at the task group or at the worker.
    #[arg(long, value_enum, default_value_t = StackRoot::Group)]
    pub by: StackRoot,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Trace file (native, Dask task stream or performance report).
    pub trace: PathBuf,
    /// Output file [default: stdout].
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// The page's title [default: the trace's file name].
    #[arg(long)]
    pub title: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum StackRoot {
    /// `group;action`
    Group,
    /// `worker;group;action`
    Worker,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(subcommand)]
    pub format: ExportFormat,
}

#[derive(Debug, Subcommand)]
pub enum ExportFormat {
    /// Chrome trace / Perfetto JSON (open in ui.perfetto.dev or chrome://tracing).
    Chrome {
        /// Trace file (native or Dask task stream).
        trace: PathBuf,
        /// Output file.
        #[arg(short, long)]
        output: PathBuf,
    },
}

#[derive(Debug, Args)]
pub struct ConvertArgs {
    /// Input trace (native or Dask task stream).
    pub input: PathBuf,
    /// Output file; a .zst suffix compresses it.
    #[arg(short, long)]
    pub output: PathBuf,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub target: BenchTarget,
}

#[derive(Debug, Subcommand)]
pub enum BenchTarget {
    /// Engine scheduling overhead: no-op tasks as a map and as a tree reduction, on 2 workers x
    /// 1 thread, with recording off and on.
    Engine {
        /// Tasks per graph.
        #[arg(long, default_value_t = 1_000_000)]
        tasks: u64,
        /// Run one case (`map-off`, `tree-on`, …) in this process and print it as JSON; the
        /// table runs each case in a fresh process so peak memory is its own.
        #[arg(long, hide = true)]
        case: Option<String>,
    },
    /// The terminal UI: frame render time per view with TASKS tasks in the state, and live
    /// ingest over gRPC while frames are drawn.
    Tui {
        /// Tasks in the state.
        #[arg(long, default_value_t = 1_000_000)]
        tasks: u64,
        /// Task events per second the live producer publishes.
        #[arg(long, default_value_t = 150_000)]
        rate: u64,
    },
    /// Analysis: `analyze` records/s and peak memory, and `flamegraph` time, on a generated
    /// trace of TASKS tasks with dependencies.
    Analyze {
        /// Number of task records.
        #[arg(long, default_value_t = 1_000_000)]
        tasks: u64,
    },
    /// The simulator: `simulate`'s time and peak memory on a generated trace of TASKS tasks
    /// (4 shapes); with --validate, each engine workload recorded on 2 workers, predicted on
    /// 1, 2 and 4, and run for real on each.
    Simulate {
        /// Number of task records.
        #[arg(long, default_value_t = 1_000_000)]
        tasks: u64,
        /// Also compare predictions with real runs of the engine's workloads (a few minutes).
        #[arg(long)]
        validate: bool,
    },
    /// Trace reading: records/s parsed and `taskscope info`'s peak memory, on generated native
    /// traces of a tenth of TASKS and of TASKS tasks (2-4 phases each), plain and zstd.
    Info {
        /// Number of task records in the largest trace.
        #[arg(long, default_value_t = 1_000_000)]
        tasks: u64,
        /// Directory for the generated traces (default: a temporary directory, removed after).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}
