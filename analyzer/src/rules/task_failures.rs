use traces::units::{counted, format_count, format_duration};

use crate::finding::{Finding, Severity};
use crate::index::{FailureStats, GapCause, TraceIndex};
use crate::rules::{Evidence, Rule, per_thread_seconds, seconds};

/// Attempts that raised, grouped by task group and error: a task that fails on every retry
/// (the guide's "zombie worker": a library missing on the workers) fails the job; one that
/// succeeds on retry costs the retries.
pub struct TaskFailures;

impl TaskFailures {
    /// A key that never succeeded failed the computation: graded severe, critical with
    /// [`crate::IMPACT_SECONDS`]' last step (ours: a failed job is the worst outcome).
    pub const FAILED_JOB: Severity = Severity::Critical;
    /// Failures that retries absorbed are worth knowing, no more (ours).
    pub const RECOVERED: Severity = Severity::Low;
    /// Errors that come from the environment rather than the data: a retry cannot help.
    pub const ENVIRONMENT_ERRORS: [&str; 3] =
        ["ModuleNotFoundError", "ImportError", "No module named"];
}

/// Dask's own verdict on a task that killed its workers: `memory-pressure` explains it.
pub const KILLED_WORKER: &str = "KilledWorker";

/// The module a `No module named 'x'` error names.
fn missing_module(error: &str) -> Option<&str> {
    let rest = error.split("No module named").nth(1)?;
    let name = rest
        .trim_matches(|c: char| c == ' ' || c == ':' || c == '\\')
        .trim_start_matches(['\'', '"'])
        .split(['\'', '"', '\\'])
        .next()?;
    // `foo.bar` is installed as `foo`.
    name.split('.').next().filter(|n| !n.is_empty())
}

fn advice(f: &FailureStats, retries: u64) -> String {
    if f.error.is_empty() {
        return format!(
            "This trace does not keep the error text (Dask task streams and reports keep only \
             the status): read it from the future (`future.exception()`), the worker logs, or \
             record the run with the taskscope plugin. {} of {} keys never succeeded.",
            format_count(f.keys_never_succeeded),
            format_count(f.keys)
        );
    }
    if let Some(module) = missing_module(&f.error) {
        return format!(
            "`{module}` is not installed on the workers (the client has it, so graphs build but \
             every attempt fails): install it in the workers' environment or image, or \
             `client.register_plugin(PipInstall(packages=[\"{module}\"]))` \
             (`from distributed.diagnostics.plugin import PipInstall`). Retrying cannot help: \
             {} attempts all failed the same way.",
            format_count(f.attempts)
        );
    }
    if f.keys_never_succeeded == 0 {
        return format!(
            "The error is transient: all {} succeeded on a retry ({} failed). \
             `retries=` absorbs it; if it is a flaky service or file system, retry inside the \
             task with a backoff so the scheduler does not reschedule.",
            counted(f.keys, "key"),
            counted(f.attempts, "attempt")
        );
    }
    format!(
        "Every attempt of {} raised `{}`{}: the task (or its input) has a bug or bad data \
         that retrying does not fix. Reproduce it locally with `dask.config.set(scheduler=\
         \"sync\")` on one partition, or `client.recreate_error_locally(future)`.",
        counted(f.keys_never_succeeded, "key"),
        f.error,
        if retries > 0 {
            format!(" ({} retries spent)", format_count(retries))
        } else {
            String::new()
        }
    )
}

impl Rule for TaskFailures {
    fn id(&self) -> &'static str {
        "task-failures"
    }

    fn check(&self, index: &TraceIndex) -> Vec<Finding> {
        let threads = index.threads();
        let wall = seconds(index.wall_ns());
        // The retries' turnaround (whole-cluster gaps right after a failure) is theirs too.
        let waits = index.gap_ns(GapCause::Failure);
        let attempts: u64 = index.failures.iter().map(|f| f.attempts).sum();
        let mut findings = Vec::new();
        for f in &index.failures {
            if f.error.starts_with(KILLED_WORKER) {
                continue;
            }
            let retries = f.attempts.saturating_sub(f.keys);
            let wait_share = f.attempts as f64 / attempts.max(1) as f64;
            let lost = per_thread_seconds(f.compute_ns, threads) + seconds(waits) * wait_share;
            let failed_job = f.keys_never_succeeded > 0;
            let environment = TaskFailures::ENVIRONMENT_ERRORS
                .iter()
                .any(|e| f.error.contains(e));
            // A failed computation loses the whole run: it must be run again.
            let impact = if failed_job { lost.max(wall) } else { lost };
            let graded = if failed_job || environment {
                TaskFailures::FAILED_JOB
            } else {
                TaskFailures::RECOVERED
            };
            let severity = Severity::both(graded, impact).max(if failed_job {
                Severity::Moderate
            } else {
                Severity::None
            });
            if severity == Severity::None {
                continue;
            }
            let what = if f.error.is_empty() {
                "erred".to_string()
            } else {
                format!("raised `{}`", f.error)
            };
            let outcome = if failed_job {
                format!(
                    "{} of {} never succeeded",
                    format_count(f.keys_never_succeeded),
                    counted(f.keys, "key")
                )
            } else {
                format!("all {} succeeded on a retry", counted(f.keys, "key"))
            };
            findings.push(
                Finding::new(
                    self.id(),
                    severity,
                    impact,
                    format!(
                        "{}: {} {what}; {outcome} ({} lost)",
                        f.group,
                        counted(f.attempts, "attempt"),
                        format_duration((lost * 1e9) as u64)
                    ),
                )
                .group(&f.group)
                .keys(vec![f.example_key.clone()])
                .time_range(Some((index.seconds(f.first), index.seconds(f.last))))
                .with_evidence(
                    Evidence::new()
                        .count("failed_attempts", f.attempts)
                        .count("keys", f.keys)
                        .count("keys_never_succeeded", f.keys_never_succeeded)
                        .count("retries", retries)
                        .seconds("failed_compute", f.compute_ns)
                        .secs("lost", lost),
                )
                .advice(advice(f, retries)),
            );
        }
        findings
    }
}

#[cfg(test)]
mod tests {
    use super::missing_module;

    #[test]
    fn names_the_missing_module() {
        let repr = "ModuleNotFoundError(\"No module named 'sklearn.linear_model'\")";
        assert_eq!(missing_module(repr), Some("sklearn"));
        let text = "ModuleNotFoundError: No module named 'taskscope_missing'";
        assert_eq!(missing_module(text), Some("taskscope_missing"));
        assert_eq!(missing_module("ValueError: bad"), None);
    }
}
