//! A worker thread: claim a task, fetch its inputs (transfers, disk reads), deserialize inline
//! arguments, compute, then hand the result back to the scheduler state and spill if needed.

use std::sync::Arc;

use bytes::Bytes;
use std::sync::MutexGuard;

use traces::{Action, EventKind, TaskStatus, WorkerId};

use crate::cluster::{Shared, State};
use crate::compute::{self, thread_cpu_ns};
use crate::config::Gather;
use crate::recorder::{MAX_PHASES, RawPhase, TaskEvent, ThreadRecorder};
use crate::scheduler::{Assignment, Claim, Input};
use crate::store::{self, Located, TaskId};

/// A task claimed by a thread, with everything needed to run it outside the lock.
struct Claimed {
    job: Assignment<Bytes>,
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
    let mut next = None;
    loop {
        // Finishing a task usually claims the next one under the same lock.
        let job = match next.take() {
            Some(job) => job,
            None => {
                let st = shared.lock();
                match claim(&shared, st, slot, generation, thread, &mut recorder, true) {
                    Some(job) => job,
                    None => break,
                }
            }
        };
        next = execute(&shared, slot, generation, thread, job, &mut recorder);
    }
    recorder.flush();
}

/// A task this thread may run; `None` when the worker is gone or the cluster stops, or (without
/// `wait`) when there is nothing to run now.
fn claim<'a>(
    shared: &'a Arc<Shared>,
    mut st: MutexGuard<'a, State>,
    slot: usize,
    generation: u32,
    thread: u32,
    recorder: &mut ThreadRecorder,
    wait: bool,
) -> Option<Claimed> {
    loop {
        if st.shutdown {
            return None;
        }
        let claim = st.sched.claim(slot, generation, thread, shared.now());
        shared.apply(&mut st);
        match claim {
            Claim::Gone => return None,
            Claim::Killed(job) => {
                // Its allocation killed the worker: the attempt is lost.
                drop(st);
                let now = shared.now();
                let mut event = new_event(&job, thread);
                event.status = TaskStatus::Lost;
                event.push(phase(
                    Action::Queued,
                    job.ready_at.min(now),
                    now,
                    None,
                    None,
                ));
                event.push(phase(Action::Compute, now, now, None, None));
                recorder.record(event);
                return None;
            }
            Claim::Run(mut job) => {
                let victims = std::mem::take(&mut job.spill);
                if victims.is_empty() {
                    return Some(Claimed { job, spill: None });
                }
                drop(st);
                let t0 = shared.now();
                let bytes = write_spills(shared, slot, victims);
                let spill = phase(Action::DiskWrite, t0, shared.now(), Some(bytes), None);
                return Some(Claimed {
                    job,
                    spill: Some(spill),
                });
            }
            Claim::Idle => {}
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

fn execute(
    shared: &Arc<Shared>,
    slot: usize,
    generation: u32,
    thread: u32,
    claimed: Claimed,
    recorder: &mut ThreadRecorder,
) -> Option<Claimed> {
    let Claimed { job, spill } = claimed;
    let start = shared.now();
    let mut event = new_event(&job, thread);
    let queued_until = spill.map_or(start, |p| p.start);
    event.push(phase(
        Action::Queued,
        job.ready_at.min(queued_until),
        queued_until,
        None,
        None,
    ));
    if let Some(spill) = spill {
        event.push(spill);
    }

    // Local inputs first, then each peer's in turn (one transfer phase per peer, as Dask
    // gathers); the task still receives them in dependency order.
    let mut order: Vec<usize> = (0..job.inputs.len()).collect();
    order.sort_by_key(|&i| job.inputs[i].from.map(|(slot, _)| slot));
    let mut gather = Gather::new(shared.config.network, job.peers());
    let mut inputs: Vec<Option<Input<Bytes>>> = job.inputs.into_iter().map(Some).collect();
    let mut values: Vec<Bytes> = vec![Bytes::new(); inputs.len()];
    let mut fetched: Vec<(TaskId, Bytes)> = Vec::new();
    let mut unspilled: Vec<(TaskId, Bytes)> = Vec::new();
    let mut failure: Option<String> = None;
    for (i, &position) in order.iter().enumerate() {
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
            Some((slot, peer)) => {
                // A real copy of the bytes, plus the modelled wire time.
                let copy = Bytes::copy_from_slice(&value);
                // Inputs are in peer order: the next one not yet taken tells whether it is the
                // same peer's.
                let more_from_peer = order
                    .get(i + 1)
                    .and_then(|&next| inputs[next].as_ref())
                    .and_then(|next| next.from)
                    .is_some_and(|(next_slot, _)| next_slot == slot);
                if let Some(wire) = gather.arrived(copy.len() as u64, more_from_peer) {
                    std::thread::sleep(wire);
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
                // Unpickling an argument embedded in the task: a real copy of its bytes. Freeing
                // it (tens of ms for 128 MiB) is what the argument costs too: inside the phase,
                // so a replay of the trace pays it.
                let t0 = shared.now();
                let copy = inline.to_vec();
                std::hint::black_box(&copy);
                let bytes = copy.len() as u64;
                drop(copy);
                event.push(phase(
                    Action::Deserialize,
                    t0,
                    shared.now(),
                    Some(bytes),
                    None,
                ));
            }
            let t0 = shared.now();
            let cpu0 = recorder.cpu_clock(t0);
            let sleep = shared.config.sleep_compute;
            let result = compute::run(&spec.key, &spec.work, &values, job.attempt, sleep);
            event.push(phase(Action::Compute, t0, shared.now(), None, None));
            event.cpu_ns = cpu0.and_then(|c0| Some(thread_cpu_ns()?.saturating_sub(c0)));
            result
        }
    };
    drop(values);

    let nbytes = result.as_ref().map_or(0, |value| value.len() as u64);
    let error = result
        .as_ref()
        .err()
        .map(|message| Arc::from(message.as_str()));
    let mut st = shared.lock();
    let finished = st.sched.finish(
        slot,
        generation,
        job.task,
        job.working,
        result,
        fetched,
        unspilled,
        shared.now(),
    );
    shared.apply(&mut st);
    event.status = finished.status;
    match finished.status {
        TaskStatus::Ok => event.nbytes = nbytes,
        TaskStatus::Error => event.error = error,
        TaskStatus::Lost | TaskStatus::Cancelled => {
            drop(st);
            recorder.record(event);
            return None;
        }
    }
    if finished.spill.is_empty() {
        recorder.record(event);
        return claim(shared, st, slot, generation, thread, recorder, false);
    }
    drop(st);
    let t0 = shared.now();
    let bytes = write_spills(shared, slot, finished.spill);
    event.push(phase(
        Action::DiskWrite,
        t0,
        shared.now(),
        Some(bytes),
        None,
    ));
    recorder.record(event);
    None
}

/// Writes values chosen for spilling, then marks them as on disk. Returns the bytes written.
/// Values that cannot be written (a full disk) stay in memory, and the first failure of a
/// batch is recorded as a warning naming the file and the error.
fn write_spills(
    shared: &Arc<Shared>,
    slot: usize,
    victims: Vec<(TaskId, Bytes, std::path::PathBuf)>,
) -> u64 {
    let mut written = Vec::with_capacity(victims.len());
    let mut failed = Vec::new();
    let mut first_error = None;
    let mut bytes = 0;
    for (task, value, path) in victims {
        match store::spill_file(&path, &value) {
            Ok(()) => {
                bytes += value.len() as u64;
                written.push((task, path));
            }
            Err(e) => {
                // A partial file must not be mistaken for the value later.
                let _ = std::fs::remove_file(&path);
                first_error.get_or_insert_with(|| format!("{}: {e}", path.display()));
                failed.push((task, value.len() as u64));
            }
        }
    }
    let mut st = shared.lock();
    if let Some(error) = first_error {
        let worker = st.sched.workers[slot].id;
        shared.event(EventKind::Warning {
            message: format!(
                "cannot spill {} of {} results to disk, kept in memory: {error}",
                failed.len(),
                failed.len() + written.len()
            ),
            worker: Some(worker),
            source: Some(SPILL_WARNING_SOURCE.into()),
        });
    }
    st.sched.spilled(slot, written, &failed);
    shared.apply(&mut st);
    bytes
}

/// The `source` of the warning a failed spill write records.
pub(crate) const SPILL_WARNING_SOURCE: &str = "taskscope.engine.spill";

fn new_event(job: &Assignment<Bytes>, thread: u32) -> TaskEvent {
    TaskEvent {
        task: job.task,
        worker: job.worker,
        thread,
        status: TaskStatus::Ok,
        attempt: job.attempt,
        nbytes: 0,
        error: None,
        cpu_ns: None,
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
