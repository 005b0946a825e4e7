use traces::Action;
use traces::units::format_duration;

use crate::finding::Finding;
use crate::index::TraceIndex;
use crate::rules::{Evidence, Rule, graded, per_thread_seconds};

/// Deserialization a large share of task time (for reasons other than inline arguments,
/// which `oversized-argument` covers).
pub struct Serialization;

impl Serialization {
    /// Deserialize share of a group's task time: 10 / 25 / 50 / 75 % (ours).
    pub const DESERIALIZE_SHARE: [f64; 4] = [0.10, 0.25, 0.50, 0.75];
    /// (De)serialization share of the time transfers took, from Dask's fine metrics:
    /// 40 / 50 / 65 / 80 %. Measured on the corpus: NumPy and pandas data ≤ 36 % (and then
    /// under 40 ms in all), lists of dicts 48 % (1.5 s).
    pub const TRANSFER_SHARE: [f64; 4] = [0.40, 0.50, 0.65, 0.80];
    /// ... and that pickling as a share of the job's work (the tasks' thread time plus the
    /// pickling): 10 / 25 / 50 / 75 % (the lines of [`Self::DESERIALIZE_SHARE`]). Transfers
    /// that are a small part of a job cannot slow it much, however much of them is pickling.
    /// Measured on the corpus and its variants: lists of dicts moved between workers pickle
    /// 8–12× the tasks' own time (89–92 % of the work), a healthy bag on 4 one-thread workers
    /// (`healthy-bag-4x1`) 1.05 s beside 8.8 s of tasks (11 %, though 55 % of its transfers).
    pub const JOB_SHARE: [f64; 4] = Serialization::DESERIALIZE_SHARE;
    /// Dask's metrics of data leaving a worker (`get-data`) and arriving (`gather-dep`).
    pub const SERIALIZE: &str = "get-data/serialize/seconds";
    pub const DESERIALIZE: &str = "gather-dep/deserialize/seconds";
    pub const RECEIVE: [&str; 4] = [
        "gather-dep/network/seconds",
        "gather-dep/deserialize/seconds",
        "gather-dep/decompress/seconds",
        "gather-dep/other/seconds",
    ];
}

/// Transfers whose time went to pickling: Dask's metrics of all transfers (the plugin's
/// group-less metrics record).
fn transfer_serialization(index: &TraceIndex, threads: u32) -> Option<Finding> {
    let metrics = index.group_metrics.get("")?;
    let pickling = metrics.get(Serialization::SERIALIZE) + metrics.get(Serialization::DESERIALIZE);
    let receiving: f64 = Serialization::RECEIVE.iter().map(|m| metrics.get(m)).sum();
    // `get-data` also serves the client's gathers of results: with nothing received by a
    // worker, no data moved between workers, whatever was pickled for the client.
    if receiving <= 0.0 {
        return None;
    }
    // The sender's pickling happens while the receiver waits on the network.
    let share = pickling / receiving.max(pickling).max(f64::MIN_POSITIVE);
    let pickling_ns = (pickling * 1e9) as u64;
    let impact = per_thread_seconds(pickling_ns, threads);
    let job_share = pickling_ns as f64 / index.busy_ns().saturating_add(pickling_ns).max(1) as f64;
    let severity = graded(share, Serialization::TRANSFER_SHARE, impact)?.min(graded(
        job_share,
        Serialization::JOB_SHARE,
        impact,
    )?);
    Some(
        Finding::new(
            "serialization",
            severity,
            impact,
            format!(
                "{:.0}% of the time data moved between workers went to pickling and unpickling \
                 it ({} of {})",
                share * 100.0,
                format_duration(pickling_ns),
                format_duration((receiving * 1e9) as u64)
            ),
        )
        .with_evidence(
            Evidence::new()
                .secs("serialize", metrics.get(Serialization::SERIALIZE))
                .secs("deserialize", metrics.get(Serialization::DESERIALIZE))
                .secs("receive", receiving)
                .ratio("serialization_share", share)
                .ratio("job_share", job_share),
        )
        .advice(
            "The data moved between workers are slow to pickle: Python objects (lists of \
             dicts, object-dtype or Python-string columns) are serialized object by object, \
             while NumPy arrays and Arrow-backed DataFrames (`dtype_backend=\"pyarrow\"`, \
             `string[pyarrow]`) go as buffers. Convert before the step that shuffles or \
             gathers, and keep related work on one worker so less data moves."
                .to_string(),
        ),
    )
}

impl Rule for Serialization {
    fn id(&self) -> &'static str {
        "serialization"
    }

    fn check(&self, index: &TraceIndex) -> Vec<Finding> {
        let threads = index.threads();
        let mut findings: Vec<Finding> =
            transfer_serialization(index, threads).into_iter().collect();
        for group in index.groups.iter() {
            let deserialize_ns = group.phases.ns(Action::Deserialize);
            if deserialize_ns == 0 || group.inline_tasks > 0 {
                continue;
            }
            let share = deserialize_ns as f64 / group.task_time().max(1) as f64;
            let impact = per_thread_seconds(deserialize_ns, threads);
            let Some(severity) = graded(share, Serialization::DESERIALIZE_SHARE, impact) else {
                continue;
            };
            findings.push(
                Finding::new(
                    self.id(),
                    severity,
                    impact,
                    format!(
                        "{}: {:.0}% of its task time is deserialization ({})",
                        group.name,
                        share * 100.0,
                        format_duration(deserialize_ns)
                    ),
                )
                .group(&group.name)
                .with_evidence(
                    Evidence::new()
                        .seconds("deserialize", deserialize_ns)
                        .ratio("deserialize_share", share)
                        .bytes("deserialized", group.phases.bytes(Action::Deserialize)),
                )
                .advice(format!(
                    "Send data that (de)serializes cheaply: {} went to unpickling {} tasks' \
                     inputs ({} each). Use NumPy arrays and Arrow-backed DataFrames \
                     (`string[pyarrow]`) instead of Python objects and object-dtype columns, \
                     and fewer, larger pieces.",
                    format_duration(deserialize_ns),
                    group.tasks,
                    format_duration(deserialize_ns / group.tasks.max(1)),
                )),
            );
        }
        findings
    }
}
