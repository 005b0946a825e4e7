//! Tasks slowing down beside each other: the tasks computing on one host share its cores.
//!
//! A task's compute is a part on the CPU and a part off it (waiting on I/O, sleeping, the GIL
//! of another thread). A task wanting a share `f` of a core alone takes `1 − f + f·s` times
//! as long when its CPU parts run `s` times slower, and then uses `f / (1 − f + f·s)` of a core.
//! The kernel gives the runnable threads equal turns (processor sharing), so on a host of `C`
//! cores `s` is 1 while the shares sum to at most `C`, and beyond that the slowdown at which
//! the tasks together use exactly `C` cores.
//!
//! A task's share is its group's recorded CPU time over its compute time (Dask's
//! `thread-cpu` and `thread-noncpu` metrics, which the engine writes too). Recorded on a host
//! that was short of cores, those shares already carry the slowdown (they sum to the cores at
//! most), so the replay of the recorded shape keeps its durations; smaller shapes are not
//! sped up by what the crowd cost (which the metrics cannot tell from the work's own waits).

use super::{Model, Replay};

/// How a replay shares CPU.
#[derive(Clone, Debug, PartialEq)]
pub struct CpuModel {
    /// Per recorded worker, its host (an index into `host_cores`).
    pub worker_host: Vec<usize>,
    /// Per host, its cores.
    pub host_cores: Vec<u32>,
    /// The least and most share of a core a task wants while it computes.
    pub shares: (f64, f64),
}

impl Replay {
    /// How the replay shares CPU on `model`: `None` (tasks never slow each other down) unless
    /// the trace has its tasks' CPU shares and some host's cores, or `model.cores` gives them.
    pub fn cpu_model(&self, model: &Model) -> Option<CpuModel> {
        let r = &self.recorded;
        let (mut lo, mut hi) = (f64::INFINITY, 0.0f64);
        for s in &self.submissions {
            for &f in s.cpu.iter().filter(|&&f| f > 0.0) {
                lo = lo.min(f64::from(f));
                hi = hi.max(f64::from(f));
            }
        }
        let known = model.cores.is_some() || r.host_cores.iter().any(|&c| c > 0);
        if hi == 0.0 || !known {
            return None;
        }
        let (worker_host, cores) = if r.worker_host.is_empty() {
            (vec![0], vec![0])
        } else {
            (r.worker_host.clone(), r.host_cores.clone())
        };
        Some(CpuModel {
            worker_host,
            host_cores: cores
                .into_iter()
                .map(|c| model.cores.unwrap_or(c))
                .collect(),
            shares: (lo, hi),
        })
    }
}

/// Bisection steps for a slowdown: 2⁻³⁰ of its range, far below a nanosecond's effect.
const SLOWDOWN_STEPS: u32 = 30;

/// A task computing in the replay.
struct Running {
    host: usize,
    share: f64,
    /// Uncontended nanoseconds of compute left, as of `since`.
    left: f64,
    since: u64,
}

struct Host {
    cores: f64,
    demand: f64,
    slowdown: f64,
    running: Vec<usize>,
}

/// The replay's hosts: which tasks compute on each, and when each will end.
pub(crate) struct Hosts {
    hosts: Vec<Host>,
    /// Per slot of the simulated shape, its host.
    slot_host: Vec<usize>,
    running: Vec<Option<Running>>,
    /// Per id, bumped whenever an end is scheduled for it: an end event with an older token is
    /// stale. Never reset, as ids are reused: a stale end of an earlier task must not match.
    tokens: Vec<u32>,
    free: Vec<usize>,
}

/// A computing task's end, to (re)schedule: (id, token, time).
pub(crate) type End = (usize, u32, u64);

impl Hosts {
    /// `slot_host`: each simulated worker's host; `cores`: each host's.
    pub fn new(slot_host: Vec<usize>, cores: &[u32]) -> Hosts {
        Hosts {
            hosts: cores
                .iter()
                .map(|&c| Host {
                    // Unknown cores: nothing to share.
                    cores: if c == 0 { f64::INFINITY } else { f64::from(c) },
                    demand: 0.0,
                    slowdown: 1.0,
                    running: Vec::new(),
                })
                .collect(),
            slot_host,
            running: Vec::new(),
            tokens: Vec::new(),
            free: Vec::new(),
        }
    }

    /// A task of `share` and `work_ns` uncontended starts computing on `slot` at `now`; the
    /// ends to schedule, its own among them (the others' changed with the crowd).
    pub fn start(&mut self, slot: usize, share: f64, work_ns: u64, now: u64) -> (usize, Vec<End>) {
        let host = self.slot_host[slot];
        let running = Running {
            host,
            share,
            left: work_ns as f64,
            since: now,
        };
        let id = match self.free.pop() {
            Some(id) => {
                self.running[id] = Some(running);
                id
            }
            None => {
                self.running.push(Some(running));
                self.tokens.push(0);
                self.running.len() - 1
            }
        };
        self.progress(host, now);
        let h = &mut self.hosts[host];
        h.running.push(id);
        h.demand += share;
        let mut ends = self.reschedule(host, now);
        if !ends.iter().any(|e| e.0 == id) {
            ends.push(self.end(id, now));
        }
        (id, ends)
    }

    /// The end event (`id`, `token`) fired at `now`: `None` when stale, else the ends of the
    /// others on its host to reschedule.
    pub fn finish(&mut self, id: usize, token: u32, now: u64) -> Option<Vec<End>> {
        let r = self.running.get(id)?.as_ref()?;
        if self.tokens[id] != token {
            return None;
        }
        let host = r.host;
        self.progress(host, now);
        let r = self.running[id].take()?;
        self.free.push(id);
        let h = &mut self.hosts[host];
        h.running.retain(|&other| other != id);
        h.demand = if h.running.is_empty() {
            0.0
        } else {
            (h.demand - r.share).max(0.0)
        };
        Some(self.reschedule(host, now))
    }

    /// Counts the work done on `host` since each task's last update, at the current slowdown.
    fn progress(&mut self, host: usize, now: u64) {
        let s = self.hosts[host].slowdown;
        for &id in &self.hosts[host].running {
            if let Some(r) = self.running[id].as_mut() {
                r.left = (r.left - now.saturating_sub(r.since) as f64 * rate(r.share, s)).max(0.0);
                r.since = now;
            }
        }
    }

    /// The host's new slowdown; when it changed, every task on it gets a new end.
    fn reschedule(&mut self, host: usize, now: u64) -> Vec<End> {
        let slowdown = self.slowdown(host);
        let h = &mut self.hosts[host];
        if slowdown == h.slowdown {
            return Vec::new();
        }
        h.slowdown = slowdown;
        let ids = h.running.clone();
        ids.into_iter().map(|id| self.end(id, now)).collect()
    }

    /// The slowdown at which the tasks on `host` use its cores and no more: 1 while their
    /// shares fit, else the root of `Σ f / (1 − f + f·s) = C` (decreasing in `s`, and at most
    /// `C` at `s = n / C`), by bisection.
    fn slowdown(&self, host: usize) -> f64 {
        let h = &self.hosts[host];
        if h.demand <= h.cores {
            return 1.0;
        }
        let shares: Vec<f64> = h
            .running
            .iter()
            .filter_map(|&id| self.running[id].as_ref())
            .map(|r| r.share)
            .filter(|&f| f > 0.0)
            .collect();
        let used = |s: f64| shares.iter().map(|&f| f / (1.0 - f + f * s)).sum::<f64>();
        let (mut lo, mut hi) = (1.0, (shares.len() as f64 / h.cores).max(1.0));
        for _ in 0..SLOWDOWN_STEPS {
            let mid = (lo + hi) / 2.0;
            if used(mid) > h.cores {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        hi
    }

    /// A new end for task `id` (any earlier one is stale from now on).
    fn end(&mut self, id: usize, now: u64) -> End {
        let r = self.running[id].as_ref().expect("a running task");
        let s = self.hosts[r.host].slowdown;
        let wall = (r.left / rate(r.share, s)).round();
        self.tokens[id] = self.tokens[id].wrapping_add(1);
        (id, self.tokens[id], now.saturating_add(wall as u64))
    }
}

/// Uncontended nanoseconds done per nanosecond, at slowdown `s`, of a task wanting `share`.
fn rate(share: f64, s: f64) -> f64 {
    1.0 / (1.0 - share + share * s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_cpu_bound_tasks_on_one_core_each_take_twice_as_long() {
        // Events as the driver fires them, in time order.
        let mut hosts = Hosts::new(vec![0, 0], &[1]);
        let (a, ends) = hosts.start(0, 1.0, 100, 0);
        assert_eq!(ends, vec![(a, 1, 100)]);
        let (b, ends) = hosts.start(1, 1.0, 100, 50);
        // a has 50 left, now at half speed: ends at 150; b at 250 unless a leaves first.
        assert_eq!(ends, vec![(a, 2, 150), (b, 1, 250)]);
        assert_eq!(hosts.finish(a, 1, 100), None, "stale");
        // a ends at 150: b did 50 of its 100 and runs alone again.
        assert_eq!(hosts.finish(a, 2, 150), Some(vec![(b, 2, 200)]));
        // c takes a's id: b has 40 left, c 100, both at half speed.
        let (c, ends) = hosts.start(0, 1.0, 100, 160);
        assert_eq!(c, a);
        assert_eq!(ends, vec![(b, 3, 240), (c, 3, 360)]);
        assert_eq!(hosts.finish(b, 2, 200), None, "stale");
        // b ends at 240; c did 40 and has 60 left alone.
        assert_eq!(hosts.finish(b, 3, 240), Some(vec![(c, 4, 300)]));
        // b's first end, and a's ends, are not c's.
        assert_eq!(hosts.finish(b, 1, 250), None, "stale");
        assert_eq!(hosts.finish(c, 2, 250), None, "stale");
        assert_eq!(hosts.finish(c, 4, 300), Some(vec![]));
    }

    #[test]
    fn tasks_off_the_cpu_are_not_slowed() {
        let mut hosts = Hosts::new(vec![0, 0, 0], &[1]);
        hosts.start(0, 0.0, 100, 0);
        hosts.start(1, 0.0, 100, 0);
        let (_, ends) = hosts.start(2, 0.5, 100, 0);
        assert_eq!(ends.len(), 1);
        assert_eq!(ends[0].2, 100);
    }
}
