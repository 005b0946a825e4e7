//! A worker's results: in memory, or spilled to files in the worker's spill directory, with
//! least-recently-used order for choosing what to spill (as Dask's `zict` buffer does).
//!
//! The store decides and counts; it does no I/O. Spill files are written by whoever drives the
//! scheduler ([`spill_file`]), and files no longer needed are left in [`Store::trash`] for the
//! driver to delete, so the simulator can run the same store on sizes alone ([`Size`]).

use std::collections::BTreeMap;

use rustc_hash::FxHashMap;
use std::path::{Path, PathBuf};

use bytes::Bytes;

/// A task across all graphs of a cluster: (graph number, index in the graph).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct TaskId {
    pub graph: u32,
    pub index: u32,
}

/// A result as the store holds it: real bytes in the engine, a size in the simulator.
pub(crate) trait Payload: Clone {
    fn size(&self) -> u64;
}

impl Payload for Bytes {
    fn size(&self) -> u64 {
        self.len() as u64
    }
}

/// A result that is only its size (the simulator's payload).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Size(pub u64);

impl Payload for Size {
    fn size(&self) -> u64 {
        self.0
    }
}

pub(crate) enum Entry<P> {
    Memory(P),
    /// Being written to disk by a worker thread; still readable from memory meanwhile.
    Spilling(P),
    Spilled(PathBuf),
}

struct Slot<P> {
    entry: Entry<P>,
    len: u64,
    tick: u64,
}

/// Where a value can be read from.
pub(crate) enum Located<P> {
    Memory(P),
    Disk(PathBuf),
}

pub(crate) struct Store<P> {
    /// Fx hashing: task ids are small integers, SipHash's DoS resistance buys nothing here.
    slots: FxHashMap<TaskId, Slot<P>>,
    /// In-memory, non-empty values by last use.
    lru: BTreeMap<u64, TaskId>,
    dir: PathBuf,
    /// Bytes of results in memory (Dask's managed memory).
    pub managed: u64,
    /// Bytes on disk.
    pub spilled: u64,
    /// Spill files of values that are gone, for the driver to delete.
    pub trash: Vec<PathBuf>,
}

impl<P: Payload> Store<P> {
    pub fn new(dir: PathBuf) -> Store<P> {
        Store {
            slots: FxHashMap::default(),
            lru: BTreeMap::new(),
            dir,
            managed: 0,
            spilled: 0,
            trash: Vec::new(),
        }
    }

    pub fn contains(&self, task: TaskId) -> bool {
        self.slots.contains_key(&task)
    }

    pub fn insert(&mut self, task: TaskId, value: P, tick: u64) {
        let len = value.size();
        if let Some(old) = self.slots.remove(&task) {
            self.forget(task, old);
        }
        if len > 0 {
            self.lru.insert(tick, task);
        }
        self.managed = self.managed.saturating_add(len);
        self.slots.insert(
            task,
            Slot {
                entry: Entry::Memory(value),
                len,
                tick,
            },
        );
    }

    /// Finds a value and marks it used.
    pub fn get(&mut self, task: TaskId, tick: u64) -> Option<Located<P>> {
        let slot = self.slots.get_mut(&task)?;
        match &slot.entry {
            Entry::Memory(bytes) => {
                let bytes = bytes.clone();
                if slot.len > 0 {
                    self.lru.remove(&slot.tick);
                    self.lru.insert(tick, task);
                }
                slot.tick = tick;
                Some(Located::Memory(bytes))
            }
            Entry::Spilling(bytes) => Some(Located::Memory(bytes.clone())),
            Entry::Spilled(path) => Some(Located::Disk(path.clone())),
        }
    }

    /// A value read back from disk is in memory again (Dask "unspills" on access).
    pub fn unspill(&mut self, task: TaskId, value: P, tick: u64) {
        if let Some(slot) = self.slots.get_mut(&task)
            && let Entry::Spilled(path) = &mut slot.entry
        {
            self.trash.push(std::mem::take(path));
            self.spilled = self.spilled.saturating_sub(slot.len);
            self.managed = self.managed.saturating_add(slot.len);
            slot.entry = Entry::Memory(value);
            slot.tick = tick;
            self.lru.insert(tick, task);
        }
    }

    /// A value picked for spilling could not be written: it stays in memory.
    pub fn spill_failed(&mut self, task: TaskId, tick: u64) {
        if let Some(slot) = self.slots.get_mut(&task)
            && let Entry::Spilling(value) = &slot.entry
        {
            slot.entry = Entry::Memory(value.clone());
            self.spilled = self.spilled.saturating_sub(slot.len);
            self.managed = self.managed.saturating_add(slot.len);
            slot.tick = tick;
            if slot.len > 0 {
                self.lru.insert(tick, task);
            }
        }
    }

    pub fn remove(&mut self, task: TaskId) {
        if let Some(slot) = self.slots.remove(&task) {
            self.forget(task, slot);
        }
    }

    fn forget(&mut self, task: TaskId, slot: Slot<P>) {
        match slot.entry {
            Entry::Memory(_) => {
                self.managed = self.managed.saturating_sub(slot.len);
                if slot.len > 0 && self.lru.get(&slot.tick) == Some(&task) {
                    self.lru.remove(&slot.tick);
                }
            }
            Entry::Spilling(_) => self.spilled = self.spilled.saturating_sub(slot.len),
            Entry::Spilled(path) => {
                self.spilled = self.spilled.saturating_sub(slot.len);
                self.trash.push(path);
            }
        }
    }

    /// Takes least-recently-used values out of memory until at least `bytes` are freed; the
    /// caller writes them with [`spill_file`] and then calls [`Store::spilled`].
    pub fn pick_victims(&mut self, bytes: u64) -> Vec<(TaskId, P, PathBuf)> {
        let mut victims = Vec::new();
        let mut freed = 0;
        while freed < bytes {
            let Some((_, task)) = self.lru.pop_first() else {
                break;
            };
            let slot = self
                .slots
                .get_mut(&task)
                .expect("lru entries are in the store");
            let Entry::Memory(value) = &slot.entry else {
                continue;
            };
            let value = value.clone();
            slot.entry = Entry::Spilling(value.clone());
            freed = freed.saturating_add(slot.len);
            self.managed = self.managed.saturating_sub(slot.len);
            self.spilled = self.spilled.saturating_add(slot.len);
            victims.push((task, value, self.path_for(task)));
        }
        victims
    }

    /// A value written by [`spill_file`] is now only on disk.
    pub fn spilled_to(&mut self, task: TaskId, path: PathBuf) {
        match self.slots.get_mut(&task) {
            Some(slot) if matches!(slot.entry, Entry::Spilling(_)) => {
                slot.entry = Entry::Spilled(path);
            }
            // Released while it was being written.
            _ => self.trash.push(path),
        }
    }

    fn path_for(&self, task: TaskId) -> PathBuf {
        self.dir.join(format!("{}-{}.bin", task.graph, task.index))
    }

    pub fn tasks(&self) -> impl Iterator<Item = TaskId> + '_ {
        self.slots.keys().copied()
    }

    /// Drops everything (the worker died): memory freed, files to the trash; new values go to
    /// `dir` from now on.
    pub fn clear(&mut self, dir: PathBuf) {
        for (_, slot) in self.slots.drain() {
            if let Entry::Spilled(path) = slot.entry {
                self.trash.push(path);
            }
        }
        self.dir = dir;
        self.lru.clear();
        self.managed = 0;
        self.spilled = 0;
    }
}

/// Writes a spilled value to its file (outside the scheduler lock).
pub(crate) fn spill_file(path: &Path, value: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, value)
}

/// Reads a spilled value back.
pub(crate) fn read_spilled(path: &Path) -> std::io::Result<Bytes> {
    std::fs::read(path).map(Bytes::from)
}
