use traces::Action;
use traces::units::{format_bytes, format_duration};

use crate::finding::Finding;
use crate::index::{GroupStats, TraceIndex};
use crate::rules::{Evidence, Rule, graded, per_thread_seconds};

/// Groups whose tasks spend a large share of their time moving data between workers: fetching
/// inputs (transfer phases), or inside the tasks of Dask's P2P shuffle, rechunk and join, which
/// send and receive their data in their compute.
pub struct Communication;

impl Communication {
    /// Transfer share of a group's task time: 10 / 25 / 50 / 75 % (ours, on Sparklens' model
    /// of time not spent computing).
    pub const TRANSFER_SHARE: [f64; 4] = [0.10, 0.25, 0.50, 0.75];
    /// Name parts of the task groups of Dask's P2P extension (`distributed/shuffle/`):
    /// `shuffle-transfer`, `hash-join-transfer`, `rechunk-transfer` send the data,
    /// `shuffle-barrier` waits for all of it, `shuffle_p2p`/`hashjoinp2p`/`rechunk-p2p` and
    /// `unpack` receive it.
    pub const P2P_GROUP_PARTS: [&str; 5] = ["-transfer", "barrier", "p2p", "unpack", "P2P"];
}

/// Whether the group's compute is data movement of Dask's P2P shuffle.
pub fn is_p2p(group: &GroupStats) -> bool {
    Communication::P2P_GROUP_PARTS
        .iter()
        .any(|part| group.name.contains(part))
}

impl Rule for Communication {
    fn id(&self) -> &'static str {
        "communication"
    }

    fn check(&self, index: &TraceIndex) -> Vec<Finding> {
        let threads = index.threads();
        let mut findings = Vec::new();
        for group in index.groups.iter() {
            let fetch = group.phases.ns(Action::Transfer);
            let p2p = if is_p2p(group) {
                group.compute_total()
            } else {
                0
            };
            let moving = fetch + p2p;
            if moving == 0 {
                continue;
            }
            let share = moving as f64 / group.task_time().max(1) as f64;
            let impact = per_thread_seconds(moving, threads);
            let Some(severity) = graded(share, Communication::TRANSFER_SHARE, impact) else {
                continue;
            };
            let bytes = group.phases.bytes(Action::Transfer);
            let transfers = group.phases.count(Action::Transfer);
            let per_transfer = bytes / transfers.max(1);
            let title = if p2p > 0 {
                format!(
                    "{}: {} of Dask's P2P shuffle moving data between workers ({} tasks)",
                    group.name,
                    format_duration(moving),
                    group.tasks
                )
            } else {
                // Dask task streams record transfers without their sizes.
                let moved = if bytes > 0 {
                    format!("{} in {transfers} transfers", format_bytes(bytes))
                } else {
                    format!("{transfers} transfers")
                };
                format!(
                    "{}: {:.0}% of its task time is spent fetching inputs from other workers \
                     ({moved}, {})",
                    group.name,
                    share * 100.0,
                    format_duration(fetch)
                )
            };
            let advice = if p2p > 0 {
                format!(
                    "The all-to-all shuffle costs {}: avoid it where the data allows. Join on \
                     the index after one `set_index` (later joins and groupbys on that key are \
                     then aligned, with no shuffle), broadcast a small side \
                     (`dd.merge(big, small, broadcast=True)` or `map_partitions` with the small \
                     frame), and `persist()` the shuffled result if several steps use it.",
                    format_duration(moving)
                )
            } else {
                format!(
                    "Move less data: {} per transfer on average. Use fewer, larger partitions \
                     so each output reads fewer pieces (an all-to-all rechunk or shuffle moves \
                     ~all data once: prefer `rechunk(method=\"p2p\")` / `shuffle(method=\"p2p\")` \
                     or avoid it with a pre-partitioned index), broadcast the small side of a \
                     join (`dd.merge(big, small, broadcast=True)`), and persist inputs on the \
                     workers that use them.",
                    if bytes > 0 {
                        format_bytes(per_transfer)
                    } else {
                        "size unknown".to_string()
                    }
                )
            };
            findings.push(
                Finding::new(self.id(), severity, impact, title)
                    .group(&group.name)
                    .with_evidence(
                        Evidence::new()
                            .seconds("transfer", fetch)
                            .seconds("p2p_shuffle", p2p)
                            .ratio("transfer_share", share)
                            .bytes("transferred", bytes)
                            .count("transfers", transfers)
                            .bytes("per_transfer", per_transfer)
                            .seconds("compute", group.compute_total()),
                    )
                    .advice(advice),
            );
        }
        findings
    }
}
