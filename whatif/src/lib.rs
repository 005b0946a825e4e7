//! What fixing each finding would save: the recorded run replayed on its own shape by the
//! engine's scheduler (`engine::simulate`), with and without the finding's fix, for the rules
//! whose advice the simulator can apply. Where the replay reproduces the run and resolves the
//! saving, the saving becomes the finding's `impact_seconds`
//! ([`analyzer::Finding::attach_simulation`]; the rule's estimate stays in the evidence) and
//! the findings are ranked again.

use std::path::Path;

use analyzer::{Report, SimulatedFix};
use engine::simulate::{
    CpuModel, Fix, Model, Prediction, Replay, Shape, default_shapes, relative_error, simulate,
};
use traces::TraceError;

/// Traces with more task records are not replayed here: the replay holds every task, which a
/// plain `analyze` of a million tasks must not pay for (`taskscope simulate` replays any size).
pub const MAX_TASKS: u64 = 250_000;

/// A replay further than this from the recorded wall time does not reproduce the run well
/// enough to say what a fix saves (the bound `tests/simulate.rs` holds the corpus to).
pub const CALIBRATION_BOUND: f64 = 0.25;

/// The recorded run predicted on other cluster shapes, for the report's "What if" section.
#[derive(Clone, Debug)]
pub struct WhatIf {
    pub recorded: Shape,
    pub recorded_wall_ns: u64,
    /// The replay of the recorded shape (the calibration).
    pub replayed_wall_ns: u64,
    pub calibration_error: f64,
    /// [`engine::simulate::default_shapes`], each with its prediction.
    pub predictions: Vec<(Shape, Prediction)>,
    /// No number of workers beats it.
    pub critical_path_ns: u64,
    /// The cores the shapes' workers share, when the replay knows them (else more workers are
    /// taken to bring their own).
    pub cpu: Option<CpuModel>,
}

/// Fills in `simulated` (and takes it as the impact) for the findings of `report`, read from
/// the trace at `path`, whose fix the simulator applies. Leaves them all empty when the trace
/// is too big, is not a regular file (it cannot be read twice), records neither dependencies
/// nor submissions (a task stream), has nothing to replay or is not reproduced by its replay;
/// leaves a finding's empty when its fix changes nothing in this trace.
pub fn attach(report: &mut Report, path: &Path) -> Result<(), TraceError> {
    if report
        .findings
        .iter()
        .all(|f| Fix::from_rule(f.rule).is_none())
    {
        return Ok(());
    }
    if let Some(run) = Replayed::open(report, path)? {
        run.attach(report);
    }
    Ok(())
}

/// [`attach`], and the run predicted on [`engine::simulate::default_shapes`] when its replay
/// reproduces it (`None` otherwise, for the same reasons `attach` leaves findings alone).
pub fn attach_and_predict(report: &mut Report, path: &Path) -> Result<Option<WhatIf>, TraceError> {
    let Some(run) = Replayed::open(report, path)? else {
        return Ok(None);
    };
    run.attach(report);
    let recorded = run.replay.recorded.shape;
    let predictions = default_shapes(recorded)
        .into_iter()
        .map(|shape| {
            let model = Model {
                shape,
                ..run.model.clone()
            };
            (shape, simulate(&run.replay, &model))
        })
        .collect();
    Ok(Some(WhatIf {
        recorded,
        recorded_wall_ns: run.replay.recorded.wall_ns,
        replayed_wall_ns: run.replayed,
        calibration_error: run.calibration_error,
        predictions,
        critical_path_ns: run.replay.critical_path_ns(&run.model),
        cpu: run.replay.cpu_model(&run.model),
    }))
}

/// A trace's replay on its own shape, when it reproduces the run.
struct Replayed {
    replay: Replay,
    model: Model,
    replayed: u64,
    calibration_error: f64,
}

impl Replayed {
    fn open(report: &Report, path: &Path) -> Result<Option<Replayed>, TraceError> {
        // The replay reads the trace again: a pipe or a FIFO was consumed by the analysis.
        let regular = std::fs::metadata(path).is_ok_and(|m| m.is_file());
        if !regular || report.summary.tasks > MAX_TASKS {
            return Ok(None);
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
            return Ok(None);
        };
        let recorded = replay.recorded.wall_ns;
        if recorded == 0 {
            return Ok(None);
        }
        let model = Model::recorded(&replay, header.cluster.memory, replay.recorded.shape);
        let replayed = simulate(&replay, &model).wall_ns;
        let calibration_error = relative_error(replayed, recorded);
        if calibration_error.abs() > CALIBRATION_BOUND {
            return Ok(None);
        }
        Ok(Some(Replayed {
            replay,
            model,
            replayed,
            calibration_error,
        }))
    }

    /// Each finding's simulated fix, and the findings ranked again.
    fn attach(&self, report: &mut Report) {
        for finding in &mut report.findings {
            let Some(fix) = Fix::from_rule(finding.rule) else {
                continue;
            };
            let scope = &finding.scope;
            // A fix that changes nothing in this trace cannot say what it saves.
            let Some(fixed) = self
                .replay
                .fixed_in(fix, scope.group.as_deref(), &scope.keys)
            else {
                continue;
            };
            let fixed = simulate(&fixed, &self.model).wall_ns;
            finding.attach_simulation(SimulatedFix {
                saves_seconds: self.replayed.saturating_sub(fixed) as f64 / 1e9,
                fixed_wall_seconds: fixed as f64 / 1e9,
                replayed_wall_seconds: self.replayed as f64 / 1e9,
                calibration_error: self.calibration_error,
            });
        }
        analyzer::rank(&mut report.findings);
    }
}
