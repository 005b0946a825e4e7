//! Task graphs as the client builds them: keys, the work each task does, dependencies.
//!
//! Dependencies are edges of a petgraph `DiGraph` (dependency → dependent), so a graph of a
//! million tasks costs a few words per task beyond the tasks themselves.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use petgraph::Direction;
use petgraph::algo::{kosaraju_scc, toposort};
use petgraph::graph::{DiGraph, NodeIndex};
use rustc_hash::FxHashSet;
use traces::Key;

use crate::error::EngineError;

/// What a task does when it runs. Real work: a CPU loop over its inputs for `compute_ns` of CPU
/// time (longer in wall time on a core other threads share), and a
/// real result buffer of `output_bytes`, filled from the key and the inputs so a result can be
/// checked after it travelled or was spilled.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Work {
    pub compute_ns: u64,
    pub output_bytes: u64,
    /// Rarely used settings, boxed so the common task stays small.
    pub extra: Option<Box<WorkExtra>>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct WorkExtra {
    /// Memory the task allocates while it runs (Dask's unmanaged memory), in bytes.
    pub working_bytes: u64,
    /// A transient spike: this much more working memory during the first `.1` attempts.
    pub spike: Option<(u64, u32)>,
    /// An argument embedded in the task itself (what `scatter` avoids): it travels with the
    /// task and is deserialized (copied) before compute.
    pub inline: Option<bytes::Bytes>,
    /// Abstract resources the task needs on its worker, e.g. `GPU = 1`.
    pub resources: BTreeMap<String, f64>,
    /// How many times to retry after an error.
    pub retries: u32,
    /// Fail the first `fail_attempts` attempts with this message (`u32::MAX`: always).
    pub fail: Option<(String, u32)>,
    /// Keys outside the graph (scattered or persisted earlier) this task reads.
    pub external_deps: Vec<Key>,
}

impl Work {
    pub fn new(compute_ns: u64, output_bytes: u64) -> Work {
        Work {
            compute_ns,
            output_bytes,
            extra: None,
        }
    }

    pub fn extra(&self) -> Option<&WorkExtra> {
        self.extra.as_deref()
    }

    pub fn extra_mut(&mut self) -> &mut WorkExtra {
        self.extra.get_or_insert_with(Default::default)
    }

    pub fn working_bytes(mut self, bytes: u64) -> Work {
        self.extra_mut().working_bytes = bytes;
        self
    }

    /// Allocate `bytes` more working memory during the first `attempts` attempts.
    pub fn spike(mut self, bytes: u64, attempts: u32) -> Work {
        self.extra_mut().spike = Some((bytes, attempts));
        self
    }

    /// Working memory of attempt number `attempt` (from 1).
    pub(crate) fn working_bytes_at(&self, attempt: u32) -> u64 {
        self.extra().map_or(0, |e| {
            let spike = match e.spike {
                Some((bytes, attempts)) if attempt <= attempts => bytes,
                _ => 0,
            };
            e.working_bytes + spike
        })
    }

    pub fn inline(mut self, data: bytes::Bytes) -> Work {
        self.extra_mut().inline = Some(data);
        self
    }

    pub fn resource(mut self, name: &str, amount: f64) -> Work {
        self.extra_mut().resources.insert(name.to_string(), amount);
        self
    }

    pub fn retries(mut self, retries: u32) -> Work {
        self.extra_mut().retries = retries;
        self
    }

    /// Fail the first `attempts` attempts (`u32::MAX`: every attempt).
    pub fn fail(mut self, message: &str, attempts: u32) -> Work {
        self.extra_mut().fail = Some((message.to_string(), attempts));
        self
    }

    /// Read a key that lives outside this graph (scattered data, a persisted result).
    pub fn external(mut self, key: Key) -> Work {
        self.extra_mut().external_deps.push(key);
        self
    }

    pub(crate) fn inline_bytes(&self) -> u64 {
        self.extra()
            .and_then(|e| e.inline.as_ref())
            .map_or(0, |b| b.len() as u64)
    }
}

/// One task of a graph.
#[derive(Clone, Debug)]
pub struct TaskSpec {
    pub key: Key,
    pub group: Arc<str>,
    pub work: Work,
}

/// A graph under construction. Tasks are referred to by the index `add` returns.
#[derive(Default)]
pub struct GraphBuilder {
    graph: DiGraph<TaskSpec, ()>,
    groups: HashMap<String, Arc<str>>,
}

/// A task of a [`GraphBuilder`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TaskRef(pub u32);

impl GraphBuilder {
    pub fn new() -> GraphBuilder {
        GraphBuilder::default()
    }

    pub fn with_capacity(tasks: usize, edges: usize) -> GraphBuilder {
        GraphBuilder {
            graph: DiGraph::with_capacity(tasks, edges),
            groups: HashMap::new(),
        }
    }

    /// Adds a task; its group is Dask's `key_split` of the key.
    pub fn add(&mut self, key: Key, work: Work) -> TaskRef {
        let group = key.group();
        let group = match self.groups.get(&group) {
            Some(g) => g.clone(),
            None => {
                let g: Arc<str> = Arc::from(group.as_str());
                self.groups.insert(group, g.clone());
                g
            }
        };
        let node = self.graph.add_node(TaskSpec { key, group, work });
        TaskRef(node.index() as u32)
    }

    /// `dependent` reads the result of `dependency`.
    pub fn depend(&mut self, dependent: TaskRef, dependency: TaskRef) {
        self.graph.add_edge(
            NodeIndex::new(dependency.0 as usize),
            NodeIndex::new(dependent.0 as usize),
            (),
        );
    }

    /// Adds a task reading `deps`.
    pub fn add_with_deps(&mut self, key: Key, work: Work, deps: &[TaskRef]) -> TaskRef {
        let task = self.add(key, work);
        for &dep in deps {
            self.depend(task, dep);
        }
        task
    }

    pub fn len(&self) -> usize {
        self.graph.node_count()
    }

    pub fn is_empty(&self) -> bool {
        self.graph.node_count() == 0
    }

    /// Checks the graph (unique keys, no cycle) and freezes it.
    pub fn build(self) -> Result<Graph, EngineError> {
        let mut seen: FxHashSet<&Key> = FxHashSet::default();
        seen.reserve(self.graph.node_count());
        let mut duplicates = Vec::new();
        for node in self.graph.node_weights() {
            if !seen.insert(&node.key) {
                duplicates.push(node.key.to_string());
            }
        }
        if !duplicates.is_empty() {
            duplicates.truncate(5);
            return Err(EngineError::DuplicateKeys(duplicates));
        }
        drop(seen);
        // petgraph's toposort and Kosaraju walk with explicit stacks (its Tarjan recurses and
        // overflows on long chains); the components are only needed to name a cycle.
        if toposort(&self.graph, None).is_err() {
            for component in kosaraju_scc(&self.graph) {
                let is_cycle = component.len() > 1
                    || self.graph.find_edge(component[0], component[0]).is_some();
                if is_cycle {
                    let mut keys: Vec<String> = component
                        .iter()
                        .map(|&n| self.graph[n].key.to_string())
                        .collect();
                    keys.sort();
                    return Err(EngineError::Cycle(keys));
                }
            }
        }
        let groups = GroupTable::new(&self.graph);
        Ok(Graph {
            inner: Arc::new(self.graph),
            groups: Arc::new(groups),
        })
    }
}

/// The graph's task groups, numbered, with the groups each reads from: what live progress
/// displays count by.
#[derive(Debug, Default)]
pub(crate) struct GroupTable {
    pub names: Vec<Arc<str>>,
    /// Per group, the groups its tasks depend on.
    pub dependencies: Vec<Vec<u32>>,
    /// Per task, its group's number.
    pub of_task: Vec<u32>,
}

impl GroupTable {
    fn new(graph: &DiGraph<TaskSpec, ()>) -> GroupTable {
        let mut table = GroupTable::default();
        let mut numbers: HashMap<&str, u32> = HashMap::new();
        table.of_task.reserve(graph.node_count());
        for spec in graph.node_weights() {
            let next = numbers.len() as u32;
            let g = *numbers.entry(&spec.group).or_insert_with(|| {
                table.names.push(spec.group.clone());
                next
            });
            table.of_task.push(g);
        }
        let mut edges: FxHashSet<(u32, u32)> = FxHashSet::default();
        for edge in graph.raw_edges() {
            let from = table.of_task[edge.source().index()];
            let to = table.of_task[edge.target().index()];
            if from != to {
                edges.insert((to, from));
            }
        }
        table.dependencies = vec![Vec::new(); table.names.len()];
        for (group, dependency) in edges {
            table.dependencies[group as usize].push(dependency);
        }
        for deps in &mut table.dependencies {
            deps.sort_unstable();
        }
        table
    }
}

/// A checked, immutable task graph, shared by the scheduler, the workers and the recorder.
#[derive(Clone)]
pub struct Graph {
    inner: Arc<DiGraph<TaskSpec, ()>>,
    pub(crate) groups: Arc<GroupTable>,
}

impl std::fmt::Debug for Graph {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Graph {{ {} tasks, {} dependencies }}",
            self.inner.node_count(),
            self.inner.edge_count()
        )
    }
}

impl Graph {
    pub fn len(&self) -> usize {
        self.inner.node_count()
    }

    pub fn is_empty(&self) -> bool {
        self.inner.node_count() == 0
    }

    pub fn task(&self, index: u32) -> &TaskSpec {
        &self.inner[NodeIndex::new(index as usize)]
    }

    pub fn tasks(&self) -> impl Iterator<Item = &TaskSpec> {
        self.inner.node_weights()
    }

    /// In the order they were added (the order a task's function receives its inputs).
    pub fn dependencies(&self, index: u32) -> impl Iterator<Item = u32> + '_ {
        // petgraph lists the newest edge first.
        let mut deps: Vec<u32> = self
            .inner
            .neighbors_directed(NodeIndex::new(index as usize), Direction::Incoming)
            .map(|n| n.index() as u32)
            .collect();
        deps.reverse();
        deps.into_iter()
    }

    pub fn dependents(&self, index: u32) -> impl Iterator<Item = u32> + '_ {
        self.inner
            .neighbors_directed(NodeIndex::new(index as usize), Direction::Outgoing)
            .map(|n| n.index() as u32)
    }

    /// Tasks nothing in the graph depends on: what `compute` returns.
    pub fn sinks(&self) -> impl Iterator<Item = u32> + '_ {
        self.inner
            .externals(Direction::Outgoing)
            .map(|n| n.index() as u32)
    }

    /// The same graph (keys, groups, edges) with each task's work replaced by `f(index, work)`.
    pub fn map_work(&self, mut f: impl FnMut(u32, &Work) -> Work) -> Graph {
        let inner = self.inner.map(
            |node, spec| TaskSpec {
                key: spec.key.clone(),
                group: spec.group.clone(),
                work: f(node.index() as u32, &spec.work),
            },
            |_, &edge| edge,
        );
        Graph {
            inner: Arc::new(inner),
            groups: self.groups.clone(),
        }
    }

    pub fn index_of(&self, key: &Key) -> Option<u32> {
        self.inner
            .node_indices()
            .find(|&n| &self.inner[n].key == key)
            .map(|n| n.index() as u32)
    }
}
