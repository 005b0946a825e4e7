use rustc_hash::FxHashMap;
use traces::units::{format_bytes, format_duration};
use traces::{Action, Nanos, WorkerId};

use crate::concurrency::busy_levels;
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
    /// Transfers at most this big on average cost their round trip, not their bytes: at Dask's
    /// 100 MB/s bandwidth estimate 64 KiB take 0.66 ms, under a round trip between worker
    /// processes (the corpus' small transfers took a median 1.2–20 ms a run, up to 94 ms on a
    /// loaded machine). Advice for them is fewer transfers, not less data ("Move less data (8 B
    /// per transfer)").
    pub const SMALL_TRANSFER_BYTES: u64 = 64 * 1024;
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

/// Thread time each group's workers sat idle while its inputs were on the way: a transfer
/// that overlaps other tasks' compute costs nothing (Dask fetches on the event loop).
fn exposed_transfer_ns(index: &TraceIndex) -> FxHashMap<u32, Nanos> {
    let levels = busy_levels(index);
    let mut spans: FxHashMap<(WorkerId, u32), Vec<(Nanos, Nanos)>> = FxHashMap::default();
    for &(worker, group, a, b) in &index.transfers {
        spans.entry((worker, group)).or_default().push((a, b));
    }
    let mut exposed: FxHashMap<u32, Nanos> = FxHashMap::default();
    for ((worker, group), mut intervals) in spans {
        intervals.sort_unstable();
        let threads = index.workers.get(&worker).map_or(1, |w| w.threads.max(1));
        let mut idle = 0.0;
        let mut merged: Option<(Nanos, Nanos)> = None;
        let mut add = |(a, b): (Nanos, Nanos)| {
            let busy = levels
                .get(&worker)
                .map_or(0.0, |l| l.mean(a, b))
                .min(f64::from(threads));
            idle += (f64::from(threads) - busy) * (b - a) as f64;
        };
        for (a, b) in intervals {
            match merged {
                Some((ma, mb)) if a <= mb => merged = Some((ma, mb.max(b))),
                Some(span) => {
                    add(span);
                    merged = Some((a, b));
                }
                None => merged = Some((a, b)),
            }
        }
        if let Some(span) = merged {
            add(span);
        }
        *exposed.entry(group).or_default() += idle as Nanos;
    }
    exposed
}

/// One group's data movement.
struct Moving<'a> {
    group: &'a GroupStats,
    fetch: Nanos,
    p2p: Nanos,
    /// Thread time it cost: P2P tasks hold their threads; fetches cost only the idle time
    /// they cause.
    cost: Nanos,
}

impl Rule for Communication {
    fn id(&self) -> &'static str {
        "communication"
    }

    /// One finding for the run: a shuffle or rechunk spreads its transfers over several
    /// groups, and it is the sum that the job waits on.
    fn check(&self, index: &TraceIndex) -> Vec<Finding> {
        let threads = index.threads();
        let exposed = exposed_transfer_ns(index);
        let mut moving: Vec<Moving> = index
            .groups
            .iter()
            .enumerate()
            .map(|(id, group)| {
                let p2p = if is_p2p(group) {
                    group.compute_total()
                } else {
                    0
                };
                let waited = exposed.get(&(id as u32)).copied().unwrap_or(0);
                Moving {
                    group,
                    fetch: group.phases.ns(Action::Transfer),
                    p2p,
                    cost: p2p + waited,
                }
            })
            .filter(|m| m.fetch + m.p2p > 0)
            .collect();
        if moving.is_empty() {
            return Vec::new();
        }
        moving.sort_by(|a, b| b.cost.cmp(&a.cost).then(a.group.name.cmp(&b.group.name)));
        let fetch: Nanos = moving.iter().map(|m| m.fetch).sum();
        let p2p: Nanos = moving.iter().map(|m| m.p2p).sum();
        let cost: Nanos = moving.iter().map(|m| m.cost).sum();
        // A share of the whole job's task time: a shuffle inside a larger job is part of it.
        let task_time: Nanos = index.groups.iter().map(|g| g.task_time()).sum();
        let share = (fetch + p2p) as f64 / task_time.max(1) as f64;
        let impact = per_thread_seconds(cost, threads);
        let Some(severity) = graded(share, Communication::TRANSFER_SHARE, impact) else {
            return Vec::new();
        };
        let bytes: u64 = moving
            .iter()
            .map(|m| m.group.phases.bytes(Action::Transfer))
            .sum();
        let transfers: u64 = moving
            .iter()
            .map(|m| m.group.phases.count(Action::Transfer))
            .sum();
        let per_transfer = bytes / transfers.max(1);
        let top = &moving[0];
        let names: Vec<&str> = moving
            .iter()
            .take(3)
            .map(|m| m.group.name.as_str())
            .collect();
        let title = if p2p > 0 {
            format!(
                "{} of Dask's P2P shuffle moving data between workers ({}), {:.0}% of the \
                 job's task time",
                format_duration(p2p + fetch),
                names.join(", "),
                share * 100.0
            )
        } else {
            // Dask task streams record transfers without their sizes.
            let moved = if bytes > 0 {
                format!("{} in {transfers} transfers", format_bytes(bytes))
            } else {
                format!("{transfers} transfers")
            };
            format!(
                "{:.0}% of the job's task time is spent fetching inputs from other workers, \
                 mostly for {} ({moved}, {}; threads idle waiting {})",
                share * 100.0,
                names.join(", "),
                format_duration(fetch),
                format_duration(cost),
            )
        };
        let advice = if p2p > 0 {
            format!(
                "The all-to-all shuffle costs {}: avoid it where the data allows. Join on \
                 the index after one `set_index` (later joins and groupbys on that key are \
                 then aligned, with no shuffle), broadcast a small side \
                 (`dd.merge(big, small, broadcast=True)` or `map_partitions` with the small \
                 frame), and `persist()` the shuffled result if several steps use it.",
                format_duration(p2p + fetch)
            )
        } else if bytes > 0 && per_transfer <= Communication::SMALL_TRANSFER_BYTES {
            format!(
                "The transfers are small ({} on average): each costs a round trip between \
                 workers, not bandwidth. Make fewer of them: fewer, larger partitions, \
                 reductions with fewer levels (a larger `split_every=`), and dependent work kept \
                 on the worker holding its inputs (`persist()` what several steps read).",
                format_bytes(per_transfer)
            )
        } else {
            let size = if bytes > 0 {
                format!(" ({} per transfer on average)", format_bytes(per_transfer))
            } else {
                String::new()
            };
            format!(
                "Move less data{size}. Use fewer, larger partitions so each output reads fewer \
                 pieces (an all-to-all rechunk or shuffle moves ~all data once: prefer \
                 `rechunk(method=\"p2p\")` / `shuffle(method=\"p2p\")` or avoid it with a \
                 pre-partitioned index), broadcast the small side of a join \
                 (`dd.merge(big, small, broadcast=True)`), and persist inputs on the workers that \
                 use them. Python objects (lists of dicts, object columns) move at pickling \
                 speed: NumPy arrays and Arrow-backed frames move far faster."
            )
        };
        vec![
            Finding::new(self.id(), severity, impact, title)
                .group(&top.group.name)
                .with_evidence(
                    Evidence::new()
                        .seconds("transfer", fetch)
                        .seconds("threads_idle_waiting", cost - p2p)
                        .seconds("p2p_shuffle", p2p)
                        .ratio("transfer_share", share)
                        .bytes("transferred", bytes)
                        .count("transfers", transfers)
                        .bytes("per_transfer", per_transfer)
                        .count("groups", moving.len() as u64),
                )
                .advice(advice),
        ]
    }
}
