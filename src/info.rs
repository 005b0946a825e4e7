//! `taskscope info`: a one-screen summary of a trace.

use std::fmt::Write as _;
use std::time::{Duration, UNIX_EPOCH};

use anyhow::Result;
use traces::units::{format_bytes, format_count, format_duration, printable};
use traces::{ByteTotals, TraceReader, TraceSummary};

use crate::cli::{InfoArgs, OutputFormat};

/// Groups listed in the text output; the JSON has them all.
const TEXT_GROUPS: usize = 15;

/// The widest a name column grows; a longer name overflows its column rather than pushing
/// every row (and the formatter's width, which panics past 65,535) as wide as itself.
const MAX_NAME_WIDTH: usize = 48;

pub fn run(args: &InfoArgs) -> Result<()> {
    let trace = TraceReader::open(&args.trace)?;
    let summary = TraceSummary::build(trace)?;
    crate::print_warnings(&summary.warnings);
    match args.format {
        OutputFormat::Json => {
            crate::output::print(&format!("{}\n", serde_json::to_string_pretty(&summary)?))
        }
        OutputFormat::Text => {
            crate::output::print(&render_text(&args.trace.display().to_string(), &summary))
        }
    }
}

pub fn render_text(name: &str, s: &TraceSummary) -> String {
    let mut out = String::new();
    let t = &s.tasks;
    let _ = writeln!(
        out,
        "{}: {} (producer: {})",
        printable(name),
        printable(&s.format),
        printable(&s.producer)
    );
    let _ = writeln!(
        out,
        "  wall time    {} from {}",
        format_duration(s.wall_ns),
        format_origin(s.origin_unix_ns)
    );
    let mut statuses = vec![format!("{} ok", format_count(t.ok))];
    for (n, label) in [
        (t.error, "erred"),
        (t.cancelled, "cancelled"),
        (t.lost, "lost"),
    ] {
        if n > 0 {
            statuses.push(format!("{} {label}", format_count(n)));
        }
    }
    if t.retried > 0 {
        statuses.push(format!("{} retries", format_count(t.retried)));
    }
    let _ = writeln!(
        out,
        "  tasks        {} ({}) in {} groups",
        format_count(t.records),
        statuses.join(", "),
        s.groups.len()
    );
    let threads: u64 = s.workers.iter().map(|w| u64::from(w.threads)).sum();
    let _ = writeln!(
        out,
        "  workers      {} ({threads} threads)",
        s.workers.len()
    );
    let _ = writeln!(
        out,
        "  transferred  {}",
        byte_line(&s.transfers, "transfer")
    );
    let _ = writeln!(out, "  spilled      {}", byte_line(&s.spilled, "write"));
    if s.read_back.count > 0 {
        let _ = writeln!(out, "  read back    {}", byte_line(&s.read_back, "read"));
    }
    if s.memory_samples > 0 || !s.events.is_empty() {
        let events: Vec<String> = s
            .events
            .iter()
            .map(|(name, n)| format!("{n} {}", printable(name)))
            .collect();
        let _ = writeln!(
            out,
            "  recorded     {} memory samples{}{}",
            format_count(s.memory_samples),
            if events.is_empty() { "" } else { ", events: " },
            events.join(", ")
        );
    }

    let _ = writeln!(out, "\nworkers");
    let name_width = column_width(s.workers.iter().map(|w| w.name.as_str()), "name");
    let _ = writeln!(
        out,
        "  {:>3}  {:<name_width$}  {:>7}  {:>9}  {:>6}  {:>10}",
        "id", "name", "threads", "tasks", "busy", "peak mem"
    );
    for w in &s.workers {
        let peak = if w.peak_managed > 0 {
            format_bytes(w.peak_managed)
        } else {
            "-".to_string()
        };
        let _ = writeln!(
            out,
            "  {:>3}  {:<name_width$}  {:>7}  {:>9}  {:>5.1}%  {:>10}{}",
            w.id,
            printable(&w.name),
            w.threads,
            format_count(w.tasks),
            w.busy_fraction * 100.0,
            peak,
            if w.killed { "  killed" } else { "" }
        );
    }

    let _ = writeln!(out, "\ngroups (by total compute time)");
    let group_width = column_width(
        s.groups.iter().take(TEXT_GROUPS).map(|g| g.group.as_str()),
        "group",
    );
    let _ = writeln!(
        out,
        "  {:<group_width$}  {:>9}  {:>10}  {:>10}  {:>10}  {:>10}",
        "group", "tasks", "total", "median", "max", "output"
    );
    for g in s.groups.iter().take(TEXT_GROUPS) {
        let _ = writeln!(
            out,
            "  {:<group_width$}  {:>9}  {:>10}  {:>10}  {:>10}  {:>10}",
            printable(&g.group),
            format_count(g.tasks),
            format_duration(g.total_compute_ns),
            format_duration(g.median_compute_ns),
            format_duration(g.max_compute_ns),
            format_bytes(g.output_bytes)
        );
    }
    if s.groups.len() > TEXT_GROUPS {
        let _ = writeln!(
            out,
            "  … {} more (--format json lists all)",
            s.groups.len() - TEXT_GROUPS
        );
    }
    out
}

/// The width of a column of `names` headed `title`, in characters as printed.
fn column_width<'a>(names: impl Iterator<Item = &'a str>, title: &str) -> usize {
    names
        .map(|n| printable(n).chars().count())
        .max()
        .unwrap_or(0)
        .clamp(title.len(), MAX_NAME_WIDTH)
}

fn byte_line(totals: &ByteTotals, what: &str) -> String {
    if totals.count == 0 {
        return "none".to_string();
    }
    if totals.unknown_size == totals.count {
        return format!(
            "{} {what}s (sizes not recorded)",
            format_count(totals.count)
        );
    }
    let mut line = format!(
        "{} in {} {what}s",
        format_bytes(totals.bytes),
        format_count(totals.count)
    );
    if totals.unknown_size > 0 {
        let _ = write!(
            line,
            " ({} of unknown size)",
            format_count(totals.unknown_size)
        );
    }
    line
}

/// The trace origin as UTC wall-clock time, to the millisecond.
fn format_origin(origin_unix_ns: i64) -> String {
    let since_epoch = Duration::from_nanos(origin_unix_ns.max(0) as u64);
    humantime::format_rfc3339_millis(UNIX_EPOCH + since_epoch).to_string()
}
