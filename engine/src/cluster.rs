//! The engine's driver of the [`Scheduler`]: the scheduler behind one lock, worker threads on
//! the wall clock, the memory sampler, the recorder.
//!
//! Worker threads run the scheduler's transitions themselves when they finish a task (there is
//! no scheduler thread to hop through), so a task costs one lock round-trip to claim and one to
//! finish. Heavy work — transfers, spill writes, disk reads, compute — happens outside the lock.

use std::path::PathBuf;
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use traces::{Cluster as ClusterSpec, Event, EventKind, Header, WorkerId};

use crate::config::ClusterConfig;
use crate::error::EngineError;
use crate::recorder::{Message, Recorder};
use crate::scheduler::{Effect, MAX_WORKERS, Progress, Scheduler, spill_dir};
use crate::worker;

/// What the worker threads and clients share behind one lock: the scheduler, and the
/// driver's own bookkeeping.
pub(crate) struct State {
    pub sched: Scheduler<Bytes>,
    /// Threads waiting for work (only they need waking when tasks are queued).
    pub idle_threads: u32,
    pub shutdown: bool,
}

pub(crate) struct Shared {
    pub state: Mutex<State>,
    pub work_cv: Condvar,
    pub client_cv: Condvar,
    pub origin: Instant,
    pub config: ClusterConfig,
    /// Taken at shutdown so the writer sees the end of its channel, whoever still holds a client.
    pub recorder: Mutex<Option<SyncSender<Message>>>,
    pub spill_root: PathBuf,
    pub threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Shared {
    pub fn now(&self) -> u64 {
        self.origin.elapsed().as_nanos() as u64
    }

    pub fn lock(&self) -> MutexGuard<'_, State> {
        // A panic in a worker thread is a bug; the state is still consistent enough to shut down.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn record(&self, message: Message) {
        if let Some(tx) = &*self.recorder.lock().unwrap_or_else(|e| e.into_inner()) {
            // The writer only goes away after shutdown.
            let _ = tx.send(message);
        }
    }

    pub fn recording(&self) -> bool {
        self.recorder
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
    }

    pub fn event(&self, kind: EventKind) {
        self.record(Message::Event(Event {
            time: self.now(),
            kind,
        }));
    }

    /// Carries out what the scheduler left in its outbox: records events, samples and graphs,
    /// deletes spill files nobody needs, starts replacement workers, wakes threads and clients.
    /// Called before the lock is released after every scheduler call.
    pub fn apply(self: &Arc<Self>, st: &mut State) {
        for effect in std::mem::take(&mut st.sched.effects) {
            match effect {
                Effect::Event(event) => self.record(Message::Event(event)),
                Effect::Memory(sample) => self.record(Message::Memory(sample)),
                Effect::Graph(g, graph) => self.record(Message::Graph(g, graph)),
                Effect::Spawn(slot) => {
                    let w = &st.sched.workers[slot];
                    let dir = spill_dir(&self.spill_root, w.id);
                    // A failure here surfaces as spill write errors; the worker still runs tasks.
                    let _ = std::fs::create_dir_all(&dir);
                    // Without threads the replacement takes no work; others steal its queue.
                    let _ = spawn_worker_threads(self, slot, w.generation, w.id);
                }
            }
        }
        for path in st.sched.take_trash() {
            let _ = std::fs::remove_file(path);
        }
        if std::mem::take(&mut st.sched.wake_workers) && st.idle_threads > 0 {
            self.work_cv.notify_all();
        }
        if std::mem::take(&mut st.sched.wake_clients) {
            self.client_cv.notify_all();
        }
    }
}

/// A running cluster. Dropping it shuts the workers down and finishes the trace.
pub struct Cluster {
    pub(crate) shared: Arc<Shared>,
    sampler: Option<JoinHandle<()>>,
    recorder: Option<Recorder>,
    _spill_temp: Option<tempfile::TempDir>,
}

impl Cluster {
    pub fn start(config: ClusterConfig) -> Result<Cluster, EngineError> {
        if config.workers == 0 || config.workers > MAX_WORKERS {
            return Err(EngineError::Spawn(format!(
                "workers must be between 1 and {MAX_WORKERS}, not {}",
                config.workers
            )));
        }
        if config.threads == 0 {
            return Err(EngineError::Spawn("threads must be at least 1".into()));
        }
        let (spill_temp, spill_root) = match &config.spill_root {
            Some(dir) => (None, dir.clone()),
            None => {
                let temp = tempfile::Builder::new()
                    .prefix("taskscope-spill-")
                    .tempdir()
                    .map_err(|e| EngineError::SpillDir(e.to_string()))?;
                let path = temp.path().to_path_buf();
                (Some(temp), path)
            }
        };
        for id in 0..config.workers {
            let dir = spill_dir(&spill_root, id);
            std::fs::create_dir_all(&dir)
                .map_err(|e| EngineError::SpillDir(format!("{}: {e}", dir.display())))?;
        }
        let sched = Scheduler::new(config.clone(), spill_root.clone());
        let origin = Instant::now();
        let recorder = match &config.record_to {
            Some(path) => {
                let header = Header::new(
                    format!("taskscope-engine {}", env!("CARGO_PKG_VERSION")),
                    unix_now_ns(),
                    ClusterSpec {
                        workers: (0..sched.workers.len())
                            .map(|slot| sched.worker_spec(slot))
                            .collect(),
                        memory: config.memory,
                    },
                );
                Some(
                    Recorder::start(path.clone(), header, config.tap.clone())
                        .map_err(|e| EngineError::Trace(e.to_string()))?,
                )
            }
            None => None,
        };
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                sched,
                idle_threads: 0,
                shutdown: false,
            }),
            work_cv: Condvar::new(),
            client_cv: Condvar::new(),
            origin,
            recorder: Mutex::new(recorder.as_ref().map(Recorder::sender)),
            spill_root,
            threads: Mutex::new(Vec::new()),
            config,
        });
        for id in 0..shared.config.workers {
            spawn_worker_threads(&shared, id as usize, 0, id)?;
        }
        let sampler = if shared.recording() {
            Some(spawn_sampler(&shared)?)
        } else {
            None
        };
        Ok(Cluster {
            shared,
            sampler,
            recorder,
            _spill_temp: spill_temp,
        })
    }

    pub fn client(&self) -> crate::Client {
        crate::Client::new(self.shared.clone())
    }

    pub fn progress(&self) -> Progress {
        self.shared.lock().sched.progress
    }

    /// Nanoseconds since the cluster started (the trace's time origin).
    pub fn now(&self) -> u64 {
        self.shared.now()
    }

    /// Stops the workers, finishes the trace; returns the number of task records written.
    pub fn shutdown(mut self) -> Result<u64, EngineError> {
        self.stop()
    }

    fn stop(&mut self) -> Result<u64, EngineError> {
        {
            let mut st = self.shared.lock();
            st.shutdown = true;
            st.sched.sample_all(self.shared.now());
            self.shared.apply(&mut st);
        }
        self.shared.work_cv.notify_all();
        self.shared.client_cv.notify_all();
        if let Some(sampler) = self.sampler.take() {
            let _ = sampler.join();
        }
        loop {
            let handles: Vec<_> = std::mem::take(&mut *self.shared.threads.lock().unwrap());
            if handles.is_empty() {
                break;
            }
            for handle in handles {
                let _ = handle.join();
            }
        }
        // The worker threads flushed their buffers on exit; the shared sender is the last one.
        self.shared
            .recorder
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        let recorded = match self.recorder.take() {
            Some(recorder) => recorder
                .finish()
                .map_err(|e| EngineError::Trace(e.to_string()))?,
            None => 0,
        };
        Ok(recorded)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if self.recorder.is_some() || self.sampler.is_some() || !self.shared.lock().shutdown {
            let _ = self.stop();
        }
    }
}

fn unix_now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

/// Starts the threads of the worker in `slot`, of `generation`; they exit once it is replaced.
fn spawn_worker_threads(
    shared: &Arc<Shared>,
    slot: usize,
    generation: u32,
    id: WorkerId,
) -> Result<(), EngineError> {
    let mut handles = shared.threads.lock().unwrap_or_else(|e| e.into_inner());
    for thread in 0..shared.config.threads {
        let shared = shared.clone();
        let handle = std::thread::Builder::new()
            .name(format!("worker-{id}-{thread}"))
            .spawn(move || worker::run(shared, slot, generation, thread))
            .map_err(|e| EngineError::Spawn(e.to_string()))?;
        handles.push(handle);
    }
    Ok(())
}

fn spawn_sampler(shared: &Arc<Shared>) -> Result<JoinHandle<()>, EngineError> {
    let shared = shared.clone();
    std::thread::Builder::new()
        .name("memory-sampler".into())
        .spawn(move || {
            let period = Duration::from_nanos(shared.config.sample_every_ns.max(1_000_000));
            let mut st = shared.lock();
            while !st.shutdown {
                st.sched.sample_all(shared.now());
                shared.apply(&mut st);
                st = shared
                    .client_cv
                    .wait_timeout(st, period)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
        })
        .map_err(|e| EngineError::Spawn(e.to_string()))
}
