use crate::Report;

/// The stable schema: `{"summary": {...}, "findings": [{"rule", "severity", "impact_seconds",
/// "impact_from", "title", "scope", "evidence", "advice", "simulated"?}, ...], "critical_path":
/// {...} | null}`.
pub fn to_json(report: &Report) -> String {
    serde_json::to_string_pretty(report).expect("reports serialize to JSON")
}
