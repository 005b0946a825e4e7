//! A worker thread: claim a task, fetch its inputs (transfers, disk reads), deserialize inline
//! arguments, compute, then hand the result back to the scheduler state and spill if needed.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use traces::{Action, TaskStatus, WorkerId};

use std::sync::MutexGuard;

use crate::cluster::{Input, Shared, State, Status, spawn_worker_threads};
use crate::compute;
use crate::graph::Graph;
use crate::recorder::{MAX_PHASES, RawPhase, TaskEvent, ThreadRecorder};
use crate::store::{self, Located, TaskId};

/// A task claimed by a thread, with everything needed to run it outside the lock.
struct Claimed {
    task: TaskId,
    graph: Graph,
    inputs: Vec<Input>,
    attempt: u32,
    ready_at: u64,
    worker: WorkerId,
    working: u64,
    /// Results spilled to make room for this task's working memory.
    spill: Option<RawPhase>,
}

pub(crate) fn run(shared: Arc<Shared>, slot: usize, generation: u32, thread: u32) {
    let sender = shared
        .recorder
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let mut recorder = ThreadRecorder::new(sender, shared.config.tap.is_some());
    let mut next = claim(&shared, slot, generation, thread, &mut recorder);
    while let Some(job) = next {
        // Finishing a task usually claims the next one under the same lock.
        next = execute(&shared, slot, generation, thread, job, &mut recorder)
            .or_else(|| claim(&shared, slot, generation, thread, &mut recorder));
    }
    recorder.flush();
}

/// Waits for a task this thread may run; `None` when the worker is gone or the cluster stops.
fn claim(
    shared: &Arc<Shared>,
    slot: usize,
    generation: u32,
    thread: u32,
    recorder: &mut ThreadRecorder,
) -> Option<Claimed> {
    claim_locked(
        shared,
        shared.lock(),
        slot,
        generation,
        thread,
        recorder,
        true,
    )
}

/// [`claim`] with the lock held; with `wait` false, returns `None` instead of waiting.
fn claim_locked<'a>(
    shared: &'a Arc<Shared>,
    mut st: MutexGuard<'a, State>,
    slot: usize,
    generation: u32,
    thread: u32,
    recorder: &mut ThreadRecorder,
    wait: bool,
) -> Option<Claimed> {
    loop {
        if st.shutdown || st.workers[slot].generation != generation {
            return None;
        }
        if let Some(t) = st.next_task(slot) {
            if let Some(on) = st.workers[slot].on_thread.get_mut(thread as usize) {
                *on = Some((t, shared.now()));
            }
            match st.locate_inputs(t, slot) {
                Ok(inputs) => {
                    let graph = st.graph(t.graph).graph.clone();
                    let ts = st.task(t);
                    let working = graph.task(t.index).work.working_bytes_at(ts.attempt);
                    let claimed = Claimed {
                        task: t,
                        attempt: ts.attempt,
                        ready_at: ts.ready_at,
                        worker: st.workers[slot].id,
                        graph,
                        inputs,
                        working,
                        spill: None,
                    };
                    if working > 0 {
                        st.workers[slot].unmanaged += working;
                        // Over terminate, this kills the worker before the task runs.
                        let victims = st.check_memory(shared, slot);
                        if st.workers[slot].generation != generation {
                            // Its allocation killed the worker: the attempt is lost.
                            let spawn = std::mem::take(&mut st.to_spawn);
                            drop(st);
                            spawn_all(shared, spawn);
                            let now = shared.now();
                            let mut event = new_event(&claimed, thread);
                            event.status = TaskStatus::Lost;
                            event.push(phase(
                                Action::Queued,
                                claimed.ready_at.min(now),
                                now,
                                None,
                                None,
                            ));
                            event.push(phase(Action::Compute, now, now, None, None));
                            recorder.record(event);
                            return None;
                        }
                        if !victims.is_empty() {
                            drop(st);
                            let t0 = shared.now();
                            let bytes = write_spills(shared, slot, victims);
                            let spill =
                                phase(Action::DiskWrite, t0, shared.now(), Some(bytes), None);
                            return Some(Claimed {
                                spill: Some(spill),
                                ..claimed
                            });
                        }
                    }
                    return Some(claimed);
                }
                Err(missing) => {
                    // An input was lost with its worker: wait for it to be computed again.
                    st.release_slot(slot, t);
                    let ts = st.task_mut(t);
                    ts.status = Status::Waiting;
                    ts.waiting_on = missing.len() as u32;
                    for dep in missing {
                        st.ensure_computing(shared, dep);
                    }
                    continue;
                }
            }
        }
        if !wait {
            return None;
        }
        if recorder.holds_live_events() {
            // Going idle: a live view should not wait for this thread's next task.
            drop(st);
            recorder.flush();
            st = shared.lock();
            continue;
        }
        st.idle_threads += 1;
        st = shared.work_cv.wait(st).unwrap_or_else(|e| e.into_inner());
        st.idle_threads -= 1;
    }
}

fn spawn_all(shared: &Arc<Shared>, slots: Vec<usize>) {
    for slot in slots {
        // Without threads the replacement worker takes no work; others steal its queue.
        let _ = spawn_worker_threads(shared, slot);
    }
}

fn execute(
    shared: &Arc<Shared>,
    slot: usize,
    generation: u32,
    thread: u32,
    job: Claimed,
    recorder: &mut ThreadRecorder,
) -> Option<Claimed> {
    let start = shared.now();
    let mut event = new_event(&job, thread);
    let queued_until = job.spill.map_or(start, |p| p.start);
    event.push(phase(
        Action::Queued,
        job.ready_at.min(queued_until),
        queued_until,
        None,
        None,
    ));
    if let Some(spill) = job.spill {
        event.push(spill);
    }

    // Local inputs first, then each peer's in turn (one transfer phase per peer, as Dask
    // gathers); the task still receives them in dependency order.
    let mut order: Vec<usize> = (0..job.inputs.len()).collect();
    order.sort_by_key(|&i| job.inputs[i].from.map(|(slot, _)| slot));
    let mut inputs: Vec<Option<Input>> = job.inputs.into_iter().map(Some).collect();
    let mut values: Vec<Bytes> = vec![Bytes::new(); inputs.len()];
    let mut fetched: Vec<(TaskId, Bytes)> = Vec::new();
    let mut unspilled: Vec<(TaskId, Bytes)> = Vec::new();
    let mut failure: Option<String> = None;
    for position in order {
        let input = inputs[position].take().expect("each input is fetched once");
        let t0 = shared.now();
        let (value, from_disk) = match input.found {
            Located::Memory(bytes) => (bytes, false),
            Located::Disk(path) => match store::read_spilled(&path) {
                Ok(bytes) => (bytes, true),
                Err(e) => {
                    failure = Some(format!("cannot read spilled input {}: {e}", path.display()));
                    break;
                }
            },
        };
        let read_done = shared.now();
        if from_disk {
            // Spilled data is read back first, here or by the peer serving it (`peer` says whose
            // disk), then travels.
            let peer = input.from.map(|(_, id)| id);
            let bytes = Some(value.len() as u64);
            event.push(phase(Action::DiskRead, t0, read_done, bytes, peer));
        }
        match input.from {
            None => {
                if from_disk {
                    unspilled.push((input.task, value.clone()));
                }
                values[position] = value;
            }
            Some((_, peer)) => {
                // A real copy of the bytes, plus the modelled wire time.
                let copy = Bytes::copy_from_slice(&value);
                let delay = shared.config.network.delay_ns(copy.len() as u64);
                if delay > 0 {
                    std::thread::sleep(Duration::from_nanos(delay));
                }
                let bytes = Some(copy.len() as u64);
                event.push(phase(
                    Action::Transfer,
                    read_done,
                    shared.now(),
                    bytes,
                    Some(peer),
                ));
                fetched.push((input.task, copy.clone()));
                values[position] = copy;
            }
        }
    }

    let spec = job.graph.task(job.task.index);
    let result = match failure {
        Some(message) => Err(message),
        None => {
            if let Some(inline) = spec.work.extra().and_then(|e| e.inline.as_ref()) {
                // Unpickling an argument embedded in the task: a real copy of its bytes.
                let t0 = shared.now();
                let copy = inline.to_vec();
                std::hint::black_box(&copy);
                event.push(phase(
                    Action::Deserialize,
                    t0,
                    shared.now(),
                    Some(copy.len() as u64),
                    None,
                ));
            }
            let t0 = shared.now();
            let result = compute::run(&spec.key, &spec.work, &values, job.attempt);
            event.push(phase(Action::Compute, t0, shared.now(), None, None));
            result
        }
    };
    drop(values);

    let mut st = shared.lock();
    if st.workers[slot].generation != generation {
        // The worker died while this ran: the result went down with it.
        event.status = TaskStatus::Lost;
        drop(st);
        recorder.record(event);
        return None;
    }
    st.workers[slot].unmanaged = st.workers[slot].unmanaged.saturating_sub(job.working);
    st.release_slot(slot, job.task);
    let current = st
        .graphs
        .get(job.task.graph as usize)
        .and_then(Option::as_ref)
        .map(|g| g.tasks[job.task.index as usize].status);
    if current != Some(Status::Processing(slot as u16)) {
        // Cancelled, or released by the client, while it ran.
        event.status = TaskStatus::Cancelled;
        drop(st);
        recorder.record(event);
        return None;
    }
    keep_inputs(&mut st, slot, fetched, unspilled);
    match result {
        Ok(value) => {
            event.nbytes = value.len() as u64;
            st.task_done(shared, job.task, slot, value);
        }
        Err(message) => {
            event.status = TaskStatus::Error;
            event.error = Some(Arc::from(message.as_str()));
            st.task_failed(shared, job.task, message);
        }
    }
    let victims = st.check_memory(shared, slot);
    let spawn = std::mem::take(&mut st.to_spawn);
    if victims.is_empty() && spawn.is_empty() {
        recorder.record(event);
        return claim_locked(shared, st, slot, generation, thread, recorder, false);
    }
    drop(st);
    spawn_all(shared, spawn);
    if !victims.is_empty() {
        let t0 = shared.now();
        let bytes = write_spills(shared, slot, victims);
        event.push(phase(
            Action::DiskWrite,
            t0,
            shared.now(),
            Some(bytes),
            None,
        ));
    }
    recorder.record(event);
    None
}

/// Fetched inputs stay on this worker (a replica, as in Dask); read-back ones are in memory again.
fn keep_inputs(
    st: &mut State,
    slot: usize,
    fetched: Vec<(TaskId, Bytes)>,
    unspilled: Vec<(TaskId, Bytes)>,
) {
    for (dep, value) in fetched {
        let alive = st
            .graphs
            .get(dep.graph as usize)
            .is_some_and(Option::is_some);
        if alive && st.task(dep).status == Status::Memory && !st.workers[slot].store.contains(dep) {
            st.tick += 1;
            let tick = st.tick;
            st.workers[slot].store.insert(dep, value, tick);
            st.task_mut(dep).holders |= 1 << slot;
            st.progress.transfers += 1;
        }
    }
    for (dep, value) in unspilled {
        st.tick += 1;
        let tick = st.tick;
        st.workers[slot].store.unspill(dep, value, tick);
    }
}

/// Writes values chosen for spilling, then marks them as on disk. Returns the bytes written.
fn write_spills(
    shared: &Arc<Shared>,
    slot: usize,
    victims: Vec<(TaskId, Bytes, std::path::PathBuf)>,
) -> u64 {
    let mut written = Vec::with_capacity(victims.len());
    let mut bytes = 0;
    for (task, value, path) in victims {
        if store::spill_file(&path, &value).is_ok() {
            bytes += value.len() as u64;
            written.push((task, path));
        }
    }
    let mut st = shared.lock();
    for (task, path) in written {
        st.workers[slot].store.spilled_to(task, path);
    }
    bytes
}

fn new_event(job: &Claimed, thread: u32) -> TaskEvent {
    TaskEvent {
        task: job.task,
        worker: job.worker,
        thread,
        status: TaskStatus::Ok,
        attempt: job.attempt,
        nbytes: 0,
        error: None,
        n_phases: 0,
        phases: [RawPhase::EMPTY; MAX_PHASES],
    }
}

fn phase(
    action: Action,
    start: u64,
    stop: u64,
    bytes: Option<u64>,
    peer: Option<WorkerId>,
) -> RawPhase {
    RawPhase {
        action,
        start,
        stop,
        bytes,
        peer,
    }
}
