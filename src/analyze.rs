//! `taskscope analyze`: findings ranked by the time their fix would save.

use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::Result;
use traces::TraceReader;

use crate::cli::{AnalyzeArgs, ReportFormat};

/// Exit code when a finding reaches `--fail-on`.
const FAIL_ON_EXIT: u8 = 3;

pub fn run(args: &AnalyzeArgs) -> Result<ExitCode> {
    let trace = TraceReader::open(&args.trace)?;
    let mut report = analyzer::analyze(trace)?;
    whatif::attach(&mut report, &args.trace)?;
    crate::print_warnings(&report.warnings);
    crate::output::print(&match args.format {
        ReportFormat::Text => analyzer::report::to_text(&report, use_color()),
        ReportFormat::Json => format!("{}\n", analyzer::report::to_json(&report)),
        ReportFormat::Markdown => analyzer::report::to_markdown(&report),
        ReportFormat::Html => report::findings_html(&report),
    })?;
    match args.fail_on {
        Some(threshold)
            if report.worst() >= threshold && report.worst() > analyzer::Severity::None =>
        {
            Ok(ExitCode::from(FAIL_ON_EXIT))
        }
        _ => Ok(ExitCode::SUCCESS),
    }
}

/// Colour on a terminal, unless `NO_COLOR` is set (no-color.org).
pub fn use_color() -> bool {
    std::env::var_os("NO_COLOR").is_none() && std::io::stdout().is_terminal()
}
