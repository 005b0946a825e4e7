//! The simulator's driver of the [`Scheduler`]: a virtual clock and an event queue in place of
//! the engine's worker threads and wall clock. It mirrors `worker.rs`: a thread claims a task,
//! spills what the claim picked, fetches its inputs (local first, then peer by peer), reads
//! spilled ones back, deserializes, computes, finishes, spills again, and claims its next task
//! at once; idle threads are offered work whenever the scheduler queued some.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::path::PathBuf;

use traces::TaskStatus;

use super::cpu::Hosts;
use super::replay::{Replay, SMALL_BYTES, Submission};
use super::{Model, Prediction};
use crate::config::ClusterConfig;
use crate::scheduler::{Assignment, Claim, Effect, Finished, Scheduler};
use crate::store::{Located, Size, TaskId};

/// Replays `replay` on `model`'s cluster and predicts its wall time.
pub fn simulate(replay: &Replay, model: &Model) -> Prediction {
    let config = ClusterConfig {
        workers: model.shape.workers,
        threads: model.shape.threads,
        memory_limit: model.memory_limit,
        memory: model.memory,
        network: model.network,
        worker_resources: super::spread(&replay.recorded.worker_resources, model.shape.workers),
        ..ClusterConfig::default()
    };
    let mut sim = Sim {
        sched: Scheduler::new(config, PathBuf::new()),
        model,
        replay,
        now: 0,
        seq: 0,
        events: BinaryHeap::new(),
        threads: (0..model.shape.workers)
            .map(|_| Threads {
                generation: 0,
                busy: vec![false; model.shape.threads as usize],
                idle: model.shape.threads,
                has_argument: false,
            })
            .collect(),
        graphs: Vec::new(),
        hosts: hosts(replay, model),
        computing: Vec::new(),
        idle_keys: Vec::new(),
        submitted: 0,
        completed: 0,
        prediction: Prediction::default(),
    };
    sim.run();
    sim.prediction
}

/// The threads of the worker in one slot, of its current generation.
struct Threads {
    generation: u32,
    busy: Vec<bool>,
    idle: u32,
    /// With [`Replay::inline_once_per_worker`]: the worker holds the (scattered) argument.
    has_argument: bool,
}

/// The hosts the shape's workers share, when the replay models CPU ([`Replay::cpu_model`]):
/// each slot stands on the host of the recorded worker it stands for.
fn hosts(replay: &Replay, model: &Model) -> Option<Hosts> {
    let cpu = replay.cpu_model(model)?;
    let slot_host = (0..model.shape.workers as usize)
        .map(|slot| cpu.worker_host[slot % cpu.worker_host.len()])
        .collect();
    Some(Hosts::new(slot_host, &cpu.host_cores))
}

/// An attempt's end on (slot, generation, thread), with what the scheduler is told then.
struct Ending {
    slot: usize,
    generation: u32,
    thread: u32,
    started: u64,
    task: TaskId,
    working: u64,
    result: Result<Size, String>,
    fetched: Vec<(TaskId, Size)>,
    unspilled: Vec<(TaskId, Size)>,
}

enum Ev {
    Submit(usize),
    Finish(Ending),
    /// An attempt starts computing on a host that its crowd may slow: `work_ns` uncontended,
    /// wanting `share` of a core.
    Compute {
        ending: Ending,
        work_ns: u64,
        share: f64,
    },
    /// A host's next end as last scheduled by [`Hosts`] (stale when its token is old).
    Computed {
        host: usize,
        token: u32,
    },
    /// Spill files are written; `thread` is freed after the spill that followed a finish.
    Spilled {
        slot: usize,
        written: Vec<(TaskId, PathBuf)>,
        thread: Option<(u32, u32, u64)>,
    },
}

/// Events ordered by time, then by when they were scheduled (ties keep causal order).
struct Timed(u64, u64, Ev);

impl PartialEq for Timed {
    fn eq(&self, other: &Self) -> bool {
        (self.0, self.1) == (other.0, other.1)
    }
}
impl Eq for Timed {}
impl PartialOrd for Timed {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Timed {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.0, self.1).cmp(&(other.0, other.1))
    }
}

/// A submission's graph in the scheduler.
struct Submitted {
    /// The scheduler's graph number.
    g: u32,
    done: bool,
}

struct Sim<'a> {
    sched: Scheduler<Size>,
    model: &'a Model,
    replay: &'a Replay,
    now: u64,
    seq: u64,
    events: BinaryHeap<Reverse<Timed>>,
    threads: Vec<Threads>,
    /// Per submission made so far.
    graphs: Vec<Submitted>,
    hosts: Option<Hosts>,
    /// The attempts computing on [`Hosts`], by the key they were given; free keys.
    computing: Vec<Option<Ending>>,
    idle_keys: Vec<usize>,
    /// Submissions scheduled (their `Submit` event is queued or done).
    submitted: usize,
    completed: usize,
    prediction: Prediction,
}

impl Sim<'_> {
    fn at(&mut self, time: u64, ev: Ev) {
        self.seq += 1;
        self.events.push(Reverse(Timed(time, self.seq, ev)));
    }

    fn run(&mut self) {
        if !self.replay.submissions.is_empty() {
            self.at(0, Ev::Submit(0));
            self.submitted = 1;
        }
        while let Some(Reverse(Timed(time, _, ev))) = self.events.pop() {
            self.now = time;
            match ev {
                Ev::Submit(i) => self.submit(i),
                Ev::Finish(ending) => self.end(ending),
                Ev::Compute {
                    ending,
                    work_ns,
                    share,
                } => {
                    let slot = ending.slot;
                    let key = match self.idle_keys.pop() {
                        Some(key) => {
                            self.computing[key] = Some(ending);
                            key
                        }
                        None => {
                            self.computing.push(Some(ending));
                            self.computing.len() - 1
                        }
                    };
                    let hosts = self.hosts.as_mut().expect("computes go to hosts");
                    let (host, token, at) = hosts.start(slot, key, share, work_ns, time);
                    self.at(at, Ev::Computed { host, token });
                }
                Ev::Computed { host, token } => {
                    let hosts = self.hosts.as_mut().expect("computes go to hosts");
                    if let Some((done, next)) = hosts.finish(host, token, time) {
                        if let Some((host, token, at)) = next {
                            self.at(at, Ev::Computed { host, token });
                        }
                        for key in done {
                            let ending = self.computing[key].take().expect("a computing attempt");
                            self.idle_keys.push(key);
                            self.end(ending);
                        }
                    }
                }
                Ev::Spilled {
                    slot,
                    written,
                    thread,
                } => {
                    self.sched.spilled(slot, written, &[]);
                    self.apply();
                    if let Some((generation, thread, started)) = thread {
                        self.prediction.busy_ns =
                            self.prediction.busy_ns.saturating_add(time - started);
                        if self.threads[slot].generation == generation {
                            self.free(slot, generation, thread);
                            self.claim(slot, thread);
                        }
                    }
                }
            }
            self.dispatch();
            self.check_graphs();
        }
        let p = &mut self.prediction;
        p.wall_ns = self.now;
        let slot_time = self.now as f64 * self.model.shape.slots() as f64;
        p.utilisation = if slot_time > 0.0 {
            p.busy_ns as f64 / slot_time
        } else {
            0.0
        };
        let progress = self.sched.progress;
        p.transfers = progress.transfers;
        p.transferred_bytes = progress.transferred_bytes;
        p.spilled_bytes = progress.spilled_bytes;
        p.kills = progress.kills;
        p.erred = progress.tasks_erred;
    }

    /// An attempt ends: the scheduler takes its result.
    fn end(&mut self, e: Ending) {
        let finished = self.sched.finish(
            e.slot,
            e.generation,
            e.task,
            e.working,
            e.result,
            e.fetched,
            e.unspilled,
            self.now,
        );
        self.apply();
        self.finished(e.slot, e.generation, e.thread, e.started, e.task, finished);
    }

    /// After an attempt: record where it ran, spill, and let its thread claim its next task.
    fn finished(
        &mut self,
        slot: usize,
        generation: u32,
        thread: u32,
        started: u64,
        task: TaskId,
        finished: Finished<Size>,
    ) {
        if finished.status == TaskStatus::Lost {
            // Its worker was replaced meanwhile: that thread is gone.
            return;
        }
        if finished.status == TaskStatus::Ok && self.model.keep_placements {
            let key = self
                .sched
                .graph(task.graph)
                .graph
                .task(task.index)
                .key
                .clone();
            let worker = self.sched.workers[slot].id;
            self.prediction.placements.push((key, worker));
        }
        if finished.spill.is_empty() {
            self.prediction.busy_ns = self.prediction.busy_ns.saturating_add(self.now - started);
            self.free(slot, generation, thread);
            self.claim(slot, thread);
            return;
        }
        let (written, bytes) = spill_files(finished.spill);
        let end = self
            .now
            .saturating_add(cost(bytes, self.model.disk_write_bps));
        self.at(
            end,
            Ev::Spilled {
                slot,
                written,
                thread: Some((generation, thread, started)),
            },
        );
    }

    fn submit(&mut self, i: usize) {
        let submission: &Submission = &self.replay.submissions[i];
        // External keys come from earlier persisted submissions; should one be missing, the
        // submission is replayed without it rather than not at all.
        let g = if !submission.held.is_empty() {
            self.scatter(submission)
        } else {
            match self
                .sched
                .submit(submission.graph.clone(), submission.persist, self.now)
            {
                Ok(g) => g,
                Err(_) => {
                    let graph = submission.graph.map_work(|_, work| {
                        let mut work = work.clone();
                        if let Some(extra) = work.extra.as_deref_mut() {
                            extra.external_deps.clear();
                        }
                        work
                    });
                    self.sched
                        .submit(graph, submission.persist, self.now)
                        .expect("a graph without external keys always registers")
                }
            }
        };
        // Graph numbers are submission numbers.
        debug_assert_eq!(g as usize, i);
        self.graphs.push(Submitted { g, done: false });
        self.apply();
        // Submissions made while the earlier ones ran keep their recorded offset.
        if let Some(next) = self.replay.submissions.get(i + 1)
            && next.client_gap_ns.is_none()
        {
            let offset = next.offset_ns.saturating_sub(submission.offset_ns);
            self.at(self.now.saturating_add(offset), Ev::Submit(i + 1));
            self.submitted = i + 2;
        }
    }

    /// Puts a submission of held data on the workers that stand for the recorded holders (the
    /// recorded slot itself, or the one it falls on in a smaller shape).
    fn scatter(&mut self, submission: &Submission) -> u32 {
        let workers = self.model.shape.workers as usize;
        let targets: Vec<Vec<usize>> = submission
            .held
            .iter()
            .map(|slots| {
                let mut mapped: Vec<usize> = slots.iter().map(|&s| s % workers).collect();
                mapped.sort_unstable();
                mapped.dedup();
                mapped
            })
            .collect();
        let values = submission
            .graph
            .tasks()
            .map(|t| Size(t.work.output_bytes))
            .collect();
        let g = self
            .sched
            .scatter_to(submission.graph.clone(), values, &targets, |v| *v, self.now);
        // Nothing to run: done as soon as it is made.
        self.sched.wake_clients = true;
        g
    }

    /// Graphs whose wanted tasks all finished: released unless persisted; a submission that
    /// waited for them is made after its recorded client gap.
    fn check_graphs(&mut self) {
        if !std::mem::take(&mut self.sched.wake_clients) {
            return;
        }
        for i in 0..self.graphs.len() {
            let g = self.graphs[i].g;
            if self.graphs[i].done || !self.sched.graph_alive(g) {
                continue;
            }
            if self.sched.graph(g).remaining == 0 {
                self.graphs[i].done = true;
                self.completed += 1;
                self.sched.release_graph(g);
            }
        }
        self.apply();
        if self.completed == self.graphs.len()
            && self.submitted == self.graphs.len()
            && let Some(next) = self.replay.submissions.get(self.submitted)
        {
            let gap = next.client_gap_ns.unwrap_or(0);
            self.at(self.now.saturating_add(gap), Ev::Submit(self.submitted));
            self.submitted += 1;
        }
    }

    /// Offers work to idle threads while the scheduler has queued some. A worker with nothing
    /// queued can only steal; while nothing can be stolen it is not asked, which keeps a round
    /// linear in the workers (asking each made it quadratic: 47 s to replay 3,601 tasks on
    /// 4,096 workers).
    fn dispatch(&mut self) {
        while std::mem::take(&mut self.sched.wake_workers) {
            let mut stealable = self.sched.anything_to_steal();
            for slot in 0..self.threads.len() {
                for thread in 0..self.model.shape.threads {
                    if self.threads[slot].idle == 0 {
                        break;
                    }
                    if self.threads[slot].busy[thread as usize] {
                        continue;
                    }
                    if !stealable && self.sched.workers[slot].queue.is_empty() {
                        break;
                    }
                    if !self.claim(slot, thread) {
                        break;
                    }
                    stealable = self.sched.anything_to_steal();
                }
            }
        }
    }

    fn free(&mut self, slot: usize, generation: u32, thread: u32) {
        let t = &mut self.threads[slot];
        if t.generation == generation && t.busy[thread as usize] {
            t.busy[thread as usize] = false;
            t.idle += 1;
        }
    }

    /// Asks the scheduler for work for an idle thread; false when the worker has none for it.
    fn claim(&mut self, slot: usize, thread: u32) -> bool {
        let generation = self.threads[slot].generation;
        let claim = self.sched.claim(slot, generation, thread, self.now);
        self.apply();
        match claim {
            Claim::Run(job) => {
                let t = &mut self.threads[slot];
                t.busy[thread as usize] = true;
                t.idle -= 1;
                self.start(slot, generation, thread, job);
                true
            }
            // The attempt's allocation killed the worker (its threads were replaced).
            Claim::Killed(_) => {
                self.prediction.attempts += 1;
                false
            }
            Claim::Idle | Claim::Gone => false,
        }
    }

    /// Runs an assignment: its finish is an event at the sum of its phases' costs.
    fn start(&mut self, slot: usize, generation: u32, thread: u32, mut job: Assignment<Size>) {
        self.prediction.attempts += 1;
        let submission = &self.replay.submissions[job.task.graph as usize];
        let mut inline = submission.inline_bytes(job.task.index);
        let mut deserialize = submission.deserialize_ns(job.task.index);
        if self.replay.inline_once_per_worker && inline > SMALL_BYTES {
            // Scattered: the first task on a worker brings the argument, the others read it.
            if std::mem::replace(&mut self.threads[slot].has_argument, true) {
                (inline, deserialize) = (0, 0);
            }
        }
        // A task made ready by its inputs, claimed within the scheduler's round trip of that,
        // has not reached its worker yet. Dispatch keeps the thread but is not task time: busy
        // time starts after it.
        let round_trip = if job.inputs.is_empty() {
            0
        } else {
            self.model.ready_latency_ns
        };
        let arrived = job.ready_at.saturating_add(round_trip).max(self.now);
        let mut t = arrived.saturating_add(self.model.dispatch_cost(inline));
        let started = t;
        if !job.spill.is_empty() {
            let (written, bytes) = spill_files(std::mem::take(&mut job.spill));
            t = t.saturating_add(cost(bytes, self.model.disk_write_bps));
            self.at(
                t,
                Ev::Spilled {
                    slot,
                    written,
                    thread: None,
                },
            );
        }
        // Local inputs first, then each peer's in turn, as the engine's worker gathers.
        job.inputs
            .sort_by_key(|input| input.from.map(|(peer, _)| peer));
        let mut fetched = Vec::new();
        let mut unspilled = Vec::new();
        t = t.saturating_add(self.model.gather_latency_ns(job.peers()));
        for input in job.inputs {
            let bytes = submission.input_bytes(job.task.index, self.sched.task(input.task).nbytes);
            if let Located::Disk(_) = input.found {
                t = t.saturating_add(cost(bytes, self.model.disk_read_bps));
                if input.from.is_none() {
                    unspilled.push((input.task, Size(bytes)));
                }
            }
            if input.from.is_some() {
                t = t.saturating_add(self.model.network.wire_ns(bytes));
                fetched.push((input.task, Size(bytes)));
            }
        }
        let spec = job.graph.task(job.task.index);
        let result = match spec.work.extra().and_then(|e| e.fail.as_ref()) {
            Some((message, attempts)) if job.attempt <= *attempts => Err(message.clone()),
            _ => Ok(Size(spec.work.output_bytes)),
        };
        let ending = Ending {
            slot,
            generation,
            thread,
            started,
            task: job.task,
            working: job.working,
            result,
            fetched,
            unspilled,
        };
        // Unpickling is CPU work: with the compute, one stretch that wants the blend of its
        // parts' shares.
        let compute_ns = spec.work.compute_ns;
        let work_ns = deserialize.saturating_add(compute_ns);
        let share = if work_ns > 0 {
            (deserialize as f64 + submission.cpu_share(job.task.index) * compute_ns as f64)
                / work_ns as f64
        } else {
            0.0
        };
        if self.hosts.is_some() && share > 0.0 {
            self.at(
                t,
                Ev::Compute {
                    ending,
                    work_ns,
                    share,
                },
            );
        } else {
            self.at(t.saturating_add(work_ns), Ev::Finish(ending));
        }
    }

    /// Carries out the scheduler's outbox: a replaced worker gets fresh idle threads; events,
    /// samples and spill files have no use here.
    fn apply(&mut self) {
        for effect in std::mem::take(&mut self.sched.effects) {
            if let Effect::Spawn(slot) = effect {
                let threads = self.model.shape.threads;
                self.threads[slot] = Threads {
                    generation: self.sched.workers[slot].generation,
                    busy: vec![false; threads as usize],
                    idle: threads,
                    has_argument: false,
                };
                self.sched.wake_workers = true;
            }
        }
        self.sched.take_trash();
    }
}

/// Spill victims as written files (the simulator writes none), and their bytes.
fn spill_files(victims: Vec<(TaskId, Size, PathBuf)>) -> (Vec<(TaskId, PathBuf)>, u64) {
    let bytes = victims
        .iter()
        .fold(0u64, |sum, (_, size, _)| sum.saturating_add(size.0));
    let written = victims.into_iter().map(|(t, _, path)| (t, path)).collect();
    (written, bytes)
}

/// Nanoseconds to move `bytes` at `bytes_per_second`.
pub(crate) fn cost(bytes: u64, bytes_per_second: u64) -> u64 {
    if bytes_per_second == 0 {
        return 0;
    }
    u64::try_from(u128::from(bytes) * 1_000_000_000 / u128::from(bytes_per_second))
        .unwrap_or(u64::MAX)
}
