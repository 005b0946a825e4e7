//! What a rule reports.

use std::fmt;

use serde::Serialize;

/// Dr. Elephant's severity scale (linkedin/dr-elephant, `Severity.java`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    None,
    Low,
    Moderate,
    Severe,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 5] = [
        Severity::None,
        Severity::Low,
        Severity::Moderate,
        Severity::Severe,
        Severity::Critical,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::None => "none",
            Severity::Low => "low",
            Severity::Moderate => "moderate",
            Severity::Severe => "severe",
            Severity::Critical => "critical",
        }
    }

    /// The severity whose threshold `value` reaches; `limits` are the low / moderate / severe /
    /// critical thresholds, increasing.
    pub fn grade(value: f64, limits: [f64; 4]) -> Severity {
        let reached = limits.iter().filter(|&&limit| value >= limit).count();
        Severity::ALL[reached]
    }

    /// Severity needs both a large ratio and a large absolute impact: a 2-second job never
    /// gets `critical`, and a tiny ratio on a long job stays low.
    pub fn both(ratio: Severity, impact_seconds: f64) -> Severity {
        ratio.min(Severity::grade(impact_seconds, IMPACT_SECONDS))
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Severity {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Severity::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| {
                format!("invalid severity {s:?}: expected none, low, moderate, severe or critical")
            })
    }
}

/// Wall-clock seconds a fix would save for each severity (low, moderate, severe, critical).
/// Ours: a finding worth under 50 ms is noise on any job; one worth 10 s is worth a meeting.
pub const IMPACT_SECONDS: [f64; 4] = [0.05, 0.25, 1.0, 10.0];

/// Where a finding applies.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Scope {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worker: Option<String>,
    /// Seconds since the trace origin.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_range: Option<(f64, f64)>,
    /// Example task keys.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<String>,
}

/// One problem, with its numbers and its fix.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Finding {
    /// Rule id: `skew`, `tiny-partitions`, …
    pub rule: &'static str,
    pub severity: Severity,
    /// Wall-clock seconds the fix would save: the rule's estimate, or the replay's figure where
    /// the fix can be simulated (`impact_from` says which). Findings of one severity are ranked
    /// by it.
    pub impact_seconds: f64,
    pub impact_from: ImpactSource,
    /// One sentence: what is wrong, with the measured numbers.
    pub title: String,
    pub scope: Scope,
    /// Named numbers behind the finding (a JSON object, in this order).
    #[serde(serialize_with = "evidence_as_object")]
    pub evidence: Vec<(String, f64)>,
    /// The fix, in Dask's vocabulary, with concrete parameters.
    pub advice: String,
    /// What replaying the run with the fix applied predicts (`taskscope simulate --fix`), where
    /// the fix can be simulated and the replay reproduces the run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub simulated: Option<SimulatedFix>,
}

/// How a finding's `impact_seconds` was obtained.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ImpactSource {
    /// The rule's estimate from the recorded ratios (e.g. the slow task's excess over its
    /// group's median), which assumes the freed time is not taken up by other work.
    #[default]
    Estimate,
    /// The replay of the run with the fix applied, on the recorded cluster shape: it counts
    /// what the cluster does with the freed time.
    Simulation,
}

/// A fix's effect, predicted by replaying the recorded run with and without it.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct SimulatedFix {
    /// Wall-clock seconds the fix saves in the replay.
    #[serde(serialize_with = "rounded")]
    pub saves_seconds: f64,
    /// The replayed wall time with the fix.
    #[serde(serialize_with = "rounded")]
    pub fixed_wall_seconds: f64,
    /// The replay of the run as recorded (against which the saving is counted).
    #[serde(serialize_with = "rounded")]
    pub replayed_wall_seconds: f64,
    /// How far that replay is from the recorded wall time (+0.05: 5 % longer).
    #[serde(serialize_with = "rounded")]
    pub calibration_error: f64,
}

impl SimulatedFix {
    /// How far, in seconds, the replay of the run as recorded is from the recorded run.
    pub fn error_seconds(&self) -> f64 {
        let recorded = self.replayed_wall_seconds / (1.0 + self.calibration_error).max(1e-9);
        (self.replayed_wall_seconds - recorded).abs()
    }

    /// Whether the saving stands out of the replay's own error on this run. One that does not
    /// is not a measurement: a replay that misses a P2P shuffle's barriers by 1.3 s cannot say
    /// that splitting a hot key in it saves nothing (a real Dask run of that fix saved 16 %).
    pub fn resolves_saving(&self) -> bool {
        self.saves_seconds > self.error_seconds()
    }
}

fn rounded<S: serde::Serializer>(value: &f64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(round3(*value))
}

impl Finding {
    /// Attaches what the replay predicts, and takes its saving as the finding's impact where
    /// the replay can resolve it ([`SimulatedFix::resolves_saving`]). The rule's estimate then
    /// moves to the evidence (`estimated_impact_seconds`), so the report still shows both;
    /// severity stays the rule's, graded on the ratio it measured.
    pub fn attach_simulation(&mut self, sim: SimulatedFix) {
        self.simulated = Some(sim);
        if !sim.resolves_saving() || self.impact_from == ImpactSource::Simulation {
            return;
        }
        self.evidence
            .push(("estimated_impact_seconds".to_string(), self.impact_seconds));
        self.impact_seconds = sim.saves_seconds;
        self.impact_from = ImpactSource::Simulation;
    }

    pub fn evidence(&self, name: &str) -> Option<f64> {
        self.evidence
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| *v)
    }
}

/// Rounds for reports: 3 significant digits.
pub(crate) fn round3(v: f64) -> f64 {
    if v == 0.0 || !v.is_finite() {
        return v;
    }
    let digits = 3 - v.abs().log10().ceil() as i32;
    let scale = 10f64.powi(digits);
    (v * scale).round() / scale
}

fn evidence_as_object<S: serde::Serializer>(
    evidence: &[(String, f64)],
    s: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut map = s.serialize_map(Some(evidence.len()))?;
    for (name, value) in evidence {
        map.serialize_entry(name, &round3(*value))?;
    }
    map.end()
}
