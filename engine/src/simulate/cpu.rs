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

impl CpuModel {
    /// A host's cores: "2 cores", or when the hosts differ, "8–16 cores".
    pub fn cores_text(&self) -> String {
        let known = self.host_cores.iter().copied().filter(|&c| c > 0);
        let (lo, hi) = (known.clone().min().unwrap_or(0), known.max().unwrap_or(0));
        if lo == hi {
            traces::units::counted(u64::from(hi), "core")
        } else {
            format!("{lo}–{hi} cores")
        }
    }

    /// "72 %", or "29–72 %".
    pub fn shares_text(&self) -> String {
        let (lo, hi) = (
            (self.shares.0 * 100.0).round(),
            (self.shares.1 * 100.0).round(),
        );
        if lo == hi {
            format!("{hi:.0} %")
        } else {
            format!("{lo:.0}–{hi:.0} %")
        }
    }
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

/// Newton steps for a slowdown at most (it converges in under ten).
const SLOWDOWN_STEPS: u32 = 50;

/// Shares are counted in steps of this (a 0.4 % error at most): tasks of one group share one,
/// so the slowdown is solved over a few classes, not over every task running.
const SHARE_STEPS: f64 = 256.0;

/// A task computing in the replay.
struct Running {
    /// The driver's name for it.
    key: usize,
    share: f64,
    /// Uncontended nanoseconds of compute left, as of its host's `since`.
    left: f64,
}

struct Host {
    cores: f64,
    slowdown: f64,
    /// When `left` of its tasks was last brought up to date.
    since: u64,
    /// Bumped whenever its next end is scheduled: an end event with an older token is stale.
    token: u32,
    running: Vec<Running>,
    /// (share, tasks running with it).
    classes: Vec<(f64, u32)>,
}

/// The replay's hosts: which tasks compute on each, and when the next of them ends. One end
/// event per host is pending at a time, so a change in the crowd costs a scan of the host's
/// tasks, not an event for each.
pub(crate) struct Hosts {
    hosts: Vec<Host>,
    /// Per slot of the simulated shape, its host.
    slot_host: Vec<usize>,
}

/// A host's next end, to schedule: (host, token, time).
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
                    slowdown: 1.0,
                    since: 0,
                    token: 0,
                    running: Vec::new(),
                    classes: Vec::new(),
                })
                .collect(),
            slot_host,
        }
    }

    /// Task `key`, wanting `share` of a core for `work_ns` uncontended, starts computing on
    /// `slot` at `now`: its host's next end.
    pub fn start(&mut self, slot: usize, key: usize, share: f64, work_ns: u64, now: u64) -> End {
        let host = self.slot_host[slot];
        let h = &mut self.hosts[host];
        h.progress(now);
        let share = ((share * SHARE_STEPS).round() / SHARE_STEPS).clamp(1.0 / SHARE_STEPS, 1.0);
        h.running.push(Running {
            key,
            share,
            left: work_ns as f64,
        });
        match h.classes.iter_mut().find(|(f, _)| *f == share) {
            Some((_, n)) => *n += 1,
            None => h.classes.push((share, 1)),
        }
        h.slowdown = h.solve();
        h.next(host, now)
    }

    /// The end event (`host`, `token`) fired at `now`: `None` when stale, else the tasks done
    /// and the host's next end, if it still runs any.
    pub fn finish(
        &mut self,
        host: usize,
        token: u32,
        now: u64,
    ) -> Option<(Vec<usize>, Option<End>)> {
        let h = self.hosts.get_mut(host)?;
        if h.token != token {
            return None;
        }
        h.progress(now);
        let s = h.slowdown;
        let wall = |r: &Running| r.left / rate(r.share, s);
        // Due: under half a nanosecond left. The event was for the soonest task, so that one
        // is done even if rounding left it a hair more (or time could not advance).
        let soonest = h
            .running
            .iter()
            .min_by(|a, b| wall(a).total_cmp(&wall(b)))?
            .key;
        let mut done = Vec::new();
        let mut i = 0;
        while i < h.running.len() {
            if h.running[i].key == soonest || wall(&h.running[i]) <= 0.5 {
                let r = h.running.swap_remove(i);
                if let Some(c) = h.classes.iter().position(|(f, _)| *f == r.share) {
                    h.classes[c].1 -= 1;
                    if h.classes[c].1 == 0 {
                        h.classes.swap_remove(c);
                    }
                }
                done.push(r.key);
            } else {
                i += 1;
            }
        }
        h.slowdown = h.solve();
        let next = (!h.running.is_empty()).then(|| h.next(host, now));
        Some((done, next))
    }
}

impl Host {
    /// Counts the work done since `since`, at the current slowdown.
    fn progress(&mut self, now: u64) {
        let elapsed = now.saturating_sub(self.since) as f64;
        self.since = now;
        if elapsed == 0.0 {
            return;
        }
        let s = self.slowdown;
        for r in &mut self.running {
            r.left = (r.left - elapsed * rate(r.share, s)).max(0.0);
        }
    }

    /// The slowdown at which the running tasks use the cores and no more: 1 while their
    /// shares fit, else the root of `g(s) = Σ f / (1 − f + f·s) − C`. `g` is convex and
    /// decreasing, so Newton's method from `s = 1` (where `g > 0`) climbs to the root without
    /// overshooting it, in a handful of steps.
    fn solve(&self) -> f64 {
        let demand: f64 = self.classes.iter().map(|&(f, n)| f * f64::from(n)).sum();
        if demand <= self.cores {
            return 1.0;
        }
        let mut s = 1.0f64;
        for _ in 0..SLOWDOWN_STEPS {
            let (mut g, mut slope) = (-self.cores, 0.0);
            for &(f, n) in &self.classes {
                let d = 1.0 - f + f * s;
                g += f64::from(n) * f / d;
                slope -= f64::from(n) * f * f / (d * d);
            }
            if slope >= 0.0 {
                break;
            }
            let step = -g / slope;
            s += step;
            if step <= s * 1e-12 {
                break;
            }
        }
        s.max(1.0)
    }

    /// The next end on this host (any earlier one is stale from now on).
    fn next(&mut self, host: usize, now: u64) -> End {
        let s = self.slowdown;
        let soonest = self
            .running
            .iter()
            .map(|r| r.left / rate(r.share, s))
            .fold(f64::INFINITY, f64::min);
        self.token = self.token.wrapping_add(1);
        (host, self.token, now.saturating_add(soonest.round() as u64))
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
        // Events as the driver fires them, in time order. Host 0 has one core.
        let mut hosts = Hosts::new(vec![0, 0], &[1]);
        assert_eq!(hosts.start(0, 10, 1.0, 100, 0), (0, 1, 100));
        // a has 50 left, now at half speed: ends at 150 (b, with 100, at 250).
        assert_eq!(hosts.start(1, 11, 1.0, 100, 50), (0, 2, 150));
        assert_eq!(hosts.finish(0, 1, 100), None, "stale");
        // a ends at 150: b did 50 of its 100 and runs alone again.
        assert_eq!(hosts.finish(0, 2, 150), Some((vec![10], Some((0, 3, 200)))));
        // c joins at 160: b has 40 left, c 100, both at half speed.
        assert_eq!(hosts.start(0, 12, 1.0, 100, 160), (0, 4, 240));
        assert_eq!(hosts.finish(0, 3, 200), None, "stale");
        // b ends at 240; c did 40 and has 60 left alone.
        assert_eq!(hosts.finish(0, 4, 240), Some((vec![11], Some((0, 5, 300)))));
        assert_eq!(hosts.finish(0, 5, 300), Some((vec![12], None)));
    }

    #[test]
    fn tasks_off_the_cpu_are_not_slowed() {
        let mut hosts = Hosts::new(vec![0, 0, 0], &[1]);
        hosts.start(0, 0, 0.0, 100, 0);
        hosts.start(1, 1, 0.0, 100, 0);
        // Shares of 0 count as the least step: 1/256 + 1/256 + 1/2 fit in one core.
        assert_eq!(hosts.start(2, 2, 0.5, 100, 0).2, 100);
        // Two finishing at once are done together.
        assert_eq!(hosts.finish(0, 3, 100), Some((vec![0, 2, 1], None)));
    }

    #[test]
    fn unknown_cores_share_nothing() {
        let mut hosts = Hosts::new(vec![0, 0], &[0]);
        hosts.start(0, 0, 1.0, 100, 0);
        assert_eq!(hosts.start(1, 1, 1.0, 100, 0), (0, 2, 100));
    }
}
