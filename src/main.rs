//! The `taskscope` binary: a CLI that wires the crates together and picks exit codes
//! (0 ok, 1 bad input or failure, 2 usage error).

mod analyze;
mod bench;
mod bench_simulate;
mod bench_tui;
mod cli;
mod convert;
mod credentials;
mod export;
mod info;
mod output;
mod run;
mod simulate;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};

/// Opt-in (`--features mimalloc`): live ingest goes from ~270 K to ~350 K task events/s, but
/// `analyze` peaks at 1.7x the memory and `info` at 2.3x (README, Performance).
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // SIGPIPE stays ignored (Rust's default): a watcher closing its socket must not end the
    // Observe server. A closed stdout (`taskscope analyze … | head`) is `output::StdoutClosed`,
    // a quiet exit.
    let cli = Cli::parse();
    let report_peak_memory = cli.report_peak_memory;
    let result = match cli.command {
        Command::Info(args) => info::run(&args).map(|()| ExitCode::SUCCESS),
        Command::Analyze(args) => analyze::run(&args),
        Command::Convert(args) => convert::run(&args).map(|()| ExitCode::SUCCESS),
        Command::Flamegraph(args) => export::flamegraph(&args).map(|()| ExitCode::SUCCESS),
        Command::Report(args) => export::report(&args).map(|()| ExitCode::SUCCESS),
        Command::Export(args) => export::export(&args).map(|()| ExitCode::SUCCESS),
        Command::Run(args) => run::run(&args).map(|()| ExitCode::SUCCESS),
        Command::Demo(args) => run::demo(&args).map(|()| ExitCode::SUCCESS),
        Command::Top(args) => top(args).map(|()| ExitCode::SUCCESS),
        Command::Replay(args) => tui::app::replay(&args.trace).map(|()| ExitCode::SUCCESS),
        Command::Simulate(args) => simulate::run(&args).map(|()| ExitCode::SUCCESS),
        Command::Bench(args) => bench::run(&args).map(|()| ExitCode::SUCCESS),
    };
    if report_peak_memory && let Ok(peak) = bench::peak_rss_bytes() {
        eprintln!("peak memory: {peak} bytes");
    }
    match result {
        Ok(code) => code,
        Err(err) if err.is::<output::StdoutClosed>() => ExitCode::SUCCESS,
        Err(err) => {
            // One line, the whole context chain, no backtrace; names quoted in it are escaped.
            eprintln!("error: {}", traces::units::printable(&format!("{err:#}")));
            ExitCode::from(1)
        }
    }
}

fn top(args: cli::TopArgs) -> anyhow::Result<()> {
    let target = credentials::watch_target(&args)?;
    let Some(after) = args.print_after else {
        return tui::app::live(target);
    };
    output::print(&tui::app::print_live(target, after, args.view)?)
}

/// Prints the reader's warnings (a truncated last line…) to stderr.
fn print_warnings(warnings: &[String]) {
    for warning in warnings {
        eprintln!("warning: {}", traces::units::printable(warning));
    }
}
