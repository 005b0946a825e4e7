//! Command-line syntax (clap derive). Behaviour lives in one module per command.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Why is my task-parallel job slow or dying? Record, inspect and explain Dask-style runs.
#[derive(Debug, Parser)]
#[command(name = "taskscope", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Summarize a trace: tasks, groups, workers, wall time, bytes transferred and spilled.
    ///
    /// TRACE may be a taskscope trace (.ndjson, .ndjson.zst) or a Dask task stream saved as
    /// JSON (`json.dump(client.get_task_stream(), f)`, without the pickled `type` field); the
    /// format is told from the content.
    Info(InfoArgs),
    /// Convert any readable trace to the native format (zstd-compressed when OUT ends in .zst).
    Convert(ConvertArgs),
    /// Measure taskscope's own speed and memory on generated data.
    Bench(BenchArgs),
}

#[derive(Debug, Args)]
pub struct InfoArgs {
    /// Trace file (native or Dask task stream).
    pub trace: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
    /// Print this process's peak resident memory to stderr at the end (for `taskscope bench`).
    #[arg(long, hide = true)]
    pub report_peak_memory: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// For people.
    Text,
    /// For programs: the summary as one JSON object.
    Json,
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
