use std::fmt::Write as _;

use traces::units::printable;

use crate::Report;
use crate::finding::{Finding, ImpactSource, Severity};

/// One screen for people. `color` adds ANSI colours per severity.
pub fn to_text(report: &Report, color: bool) -> String {
    let mut out = String::new();
    let s = &report.summary;
    let _ = writeln!(
        out,
        "{} tasks in {} groups on {} workers ({} threads), wall {:.2} s; ideal {:.2} s \
         (task time / threads): {:.0}% efficient",
        s.tasks,
        s.groups,
        s.workers,
        s.threads,
        s.wall_seconds,
        s.ideal_seconds,
        s.efficiency * 100.0
    );
    if let Some(path) = &report.critical_path {
        let groups: Vec<String> = path
            .groups
            .iter()
            .map(|(g, n)| {
                if *n > 1 {
                    format!("{} x{n}", printable(g))
                } else {
                    printable(g).into_owned()
                }
            })
            .collect();
        let _ = writeln!(
            out,
            "critical path: {} tasks, {:.2} s = {:.2} s compute + {:.2} s transfer + {:.2} s \
             waiting ({})",
            path.tasks,
            path.length_seconds,
            path.compute_seconds,
            path.transfer_seconds,
            path.wait_seconds,
            groups.join(" -> ")
        );
    }
    if report.findings.is_empty() {
        let _ = writeln!(out, "\nno findings: nothing here costs measurable time");
        return out;
    }
    let _ = writeln!(
        out,
        "\nfindings, most severe first, then by time the fix would save:"
    );
    for (i, f) in report.findings.iter().enumerate() {
        let severity = paint(f.severity, color);
        let _ = writeln!(
            out,
            "\n{}. [{severity}] {} (~{}): {}",
            i + 1,
            f.rule,
            impact_label(f),
            printable(&f.title)
        );
        let _ = writeln!(out, "   fix: {}", printable(&f.advice));
        if let Some(sentence) = simulated_sentence(f) {
            let _ = writeln!(out, "   simulated: {sentence}");
        }
    }
    out
}

/// `1.45 s`, or `0.40 s simulated` where the impact is the replay's figure.
pub fn impact_label(f: &Finding) -> String {
    match f.impact_from {
        ImpactSource::Estimate => format!("{:.2} s", f.impact_seconds),
        ImpactSource::Simulation => format!("{:.2} s simulated", f.impact_seconds),
    }
}

/// What the replay says a finding's fix saves, in a sentence (every report format shows this
/// one), with the rule's own estimate it replaced.
pub fn simulated_sentence(f: &Finding) -> Option<String> {
    let sim = f.simulated?;
    let estimate = match (f.impact_from, f.evidence("estimated_impact_seconds")) {
        (ImpactSource::Simulation, Some(s)) => format!("; the rule's estimate was {s:.2} s"),
        (ImpactSource::Simulation, None) => String::new(),
        (ImpactSource::Estimate, _) => format!(
            ", {:.2} s: more than the saving, so the rule's estimate stands",
            sim.error_seconds()
        ),
    };
    Some(format!(
        "replayed with the fix, the run takes {:.2} s instead of {:.2} s: {:.2} s saved \
         (the replay is {:+.0} % off the recorded run{estimate})",
        sim.fixed_wall_seconds,
        sim.replayed_wall_seconds,
        sim.saves_seconds,
        sim.calibration_error * 100.0
    ))
}

fn paint(severity: Severity, color: bool) -> String {
    if !color {
        return severity.to_string();
    }
    let code = match severity {
        Severity::None => "2",
        Severity::Low => "36",
        Severity::Moderate => "33",
        Severity::Severe => "31",
        Severity::Critical => "1;41;97",
    };
    format!("\x1b[{code}m{severity}\x1b[0m")
}
