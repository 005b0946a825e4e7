use std::fmt::Write as _;

use crate::Report;

/// A table of findings and their fixes, for a pull request or an issue.
pub fn to_markdown(report: &Report) -> String {
    let mut out = String::new();
    let s = &report.summary;
    let _ = writeln!(out, "## taskscope analysis\n");
    let _ = writeln!(
        out,
        "{} tasks in {} groups on {} workers ({} threads); wall **{:.2} s**, ideal {:.2} s \
         ({:.0}% efficient).\n",
        s.tasks,
        s.groups,
        s.workers,
        s.threads,
        s.wall_seconds,
        s.ideal_seconds,
        s.efficiency * 100.0
    );
    if report.findings.is_empty() {
        let _ = writeln!(out, "No findings.");
        return out;
    }
    let _ = writeln!(out, "| # | severity | rule | saves | finding | fix |");
    let _ = writeln!(out, "|---|---|---|---:|---|---|");
    for (i, f) in report.findings.iter().enumerate() {
        let _ = writeln!(
            out,
            "| {} | {} | `{}` | {} | {}{} | {} |",
            i + 1,
            f.severity,
            f.rule,
            super::impact_label(f),
            escape(&f.title),
            super::simulated_sentence(f).map_or(String::new(), |sentence| format!(
                " Simulated: {}.",
                escape(&sentence)
            )),
            escape(&f.advice)
        );
    }
    if let Some(path) = &report.critical_path {
        let _ = writeln!(
            out,
            "\nCritical path: {} tasks, {:.2} s ({:.2} s compute, {:.2} s transfer, {:.2} s \
             waiting).",
            path.tasks,
            path.length_seconds,
            path.compute_seconds,
            path.transfer_seconds,
            path.wait_seconds
        );
    }
    out
}

/// A table cell: no `|` to end it early, no terminal control characters.
fn escape(text: &str) -> String {
    traces::units::printable(&text.replace('|', "\\|").replace('\n', " ")).into_owned()
}
