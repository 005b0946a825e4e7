//! What fixing each finding would save: the recorded run replayed on its own shape by the
//! engine's scheduler (`engine::simulate`), with and without the finding's fix, for the rules
//! whose advice the simulator can apply. Where the replay reproduces the run and resolves the
//! saving, the saving becomes the finding's `impact_seconds`
//! ([`analyzer::Finding::attach_simulation`]; the rule's estimate stays in the evidence) and
//! the findings are ranked again.

use std::path::Path;

use analyzer::{Report, SimulatedFix};
use engine::simulate::{Fix, Model, Replay, relative_error, simulate};
use traces::TraceError;

/// Traces with more task records are not replayed here: the replay holds every task, which a
/// plain `analyze` of a million tasks must not pay for (`taskscope simulate` replays any size).
pub const MAX_TASKS: u64 = 250_000;

/// A replay further than this from the recorded wall time does not reproduce the run well
/// enough to say what a fix saves (the bound `tests/simulate.rs` holds the corpus to).
pub const CALIBRATION_BOUND: f64 = 0.25;

/// Fills in `simulated` (and takes it as the impact) for the findings of `report`, read from the trace at `path`, whose fix
/// the simulator applies. Leaves them all empty when the trace is too big, is not a regular
/// file (it cannot be read twice), records neither dependencies nor submissions (a task
/// stream), has nothing to replay or is not reproduced by its replay; leaves a finding's empty
/// when its fix changes nothing in this trace.
pub fn attach(report: &mut Report, path: &Path) -> Result<(), TraceError> {
    let fixes: Vec<Option<Fix>> = report
        .findings
        .iter()
        .map(|f| Fix::from_rule(f.rule))
        .collect();
    // The replay reads the trace again: a pipe or a FIFO was consumed by the analysis.
    let regular = std::fs::metadata(path).is_ok_and(|m| m.is_file());
    if !regular || fixes.iter().all(Option::is_none) || report.summary.tasks > MAX_TASKS {
        return Ok(());
    }
    let file = Replay::open(path)?;
    let header = file.header;
    // A task stream records neither dependencies nor submissions: its replay is a bag of
    // tasks, with no graph to fix.
    let Some(replay) = file
        .replay
        .ok()
        .filter(|r| r.has_dependencies || r.has_submissions)
    else {
        return Ok(());
    };
    let recorded = replay.recorded.wall_ns;
    if recorded == 0 {
        return Ok(());
    }
    let model = Model::recorded(&replay, header.cluster.memory, replay.recorded.shape);
    let replayed = simulate(&replay, &model).wall_ns;
    let calibration_error = relative_error(replayed, recorded);
    if calibration_error.abs() > CALIBRATION_BOUND {
        return Ok(());
    }
    for (finding, fix) in report.findings.iter_mut().zip(fixes) {
        let Some(fix) = fix else { continue };
        let scope = &finding.scope;
        // A fix that changes nothing in this trace cannot say what it saves.
        let Some(fixed) = replay.fixed_in(fix, scope.group.as_deref(), &scope.keys) else {
            continue;
        };
        let fixed = simulate(&fixed, &model).wall_ns;
        finding.attach_simulation(SimulatedFix {
            saves_seconds: replayed.saturating_sub(fixed) as f64 / 1e9,
            fixed_wall_seconds: fixed as f64 / 1e9,
            replayed_wall_seconds: replayed as f64 / 1e9,
            calibration_error,
        });
    }
    analyzer::rank(&mut report.findings);
    Ok(())
}
