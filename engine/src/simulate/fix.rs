//! What a finding's advice does to the recorded run, applied to the replay so the simulator can
//! predict the fixed run: the same tasks, minus what the fix removes.

use rustc_hash::FxHashSet;

use super::replay::Replay;
use crate::graph::{Graph, GraphBuilder, Work};

/// A fix the simulator can apply, named by the analyzer rule whose advice it follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fix {
    /// `idle-gaps` (client-bound): build the graphs first and compute them together, so the
    /// cluster never waits for the client between them.
    IdleGaps,
    /// `oversized-argument`: `scatter` the argument once per worker (broadcast) instead of
    /// shipping and unpickling it with every task.
    OversizedArgument,
    /// `recomputation`: `persist` what later computations reuse, so it is computed once.
    Recomputation,
}

impl Fix {
    pub const ALL: [Fix; 3] = [Fix::IdleGaps, Fix::OversizedArgument, Fix::Recomputation];

    /// The analyzer rule's id.
    pub fn rule(self) -> &'static str {
        match self {
            Fix::IdleGaps => "idle-gaps",
            Fix::OversizedArgument => "oversized-argument",
            Fix::Recomputation => "recomputation",
        }
    }

    pub fn from_rule(rule: &str) -> Option<Fix> {
        Fix::ALL.into_iter().find(|f| f.rule() == rule)
    }

    /// What the replay changes, in a sentence.
    pub fn describe(self) -> &'static str {
        match self {
            Fix::IdleGaps => "every graph submitted at once, no client time between them",
            Fix::OversizedArgument => {
                "inline arguments shipped and unpickled once per worker (scatter with broadcast)"
            }
            Fix::Recomputation => "results computed by an earlier graph are read, not recomputed",
        }
    }
}

impl Replay {
    /// The replay of the run as it would be with `fix` applied.
    pub fn fixed(&self, fix: Fix) -> Replay {
        let mut fixed = self.clone();
        match fix {
            Fix::IdleGaps => {
                // All made at the first one's time, none waiting for another.
                for (i, s) in fixed.submissions.iter_mut().enumerate() {
                    s.client_gap_ns = (i == 0).then_some(0);
                    s.offset_ns = 0;
                }
            }
            Fix::OversizedArgument => fixed.inline_once_per_worker = true,
            Fix::Recomputation => {
                let mut computed: FxHashSet<traces::Key> = FxHashSet::default();
                for s in &mut fixed.submissions {
                    let repeated: Vec<bool> =
                        s.graph.tasks().map(|t| computed.contains(&t.key)).collect();
                    if repeated.contains(&true) {
                        s.graph = without_compute(&s.graph, &repeated);
                    }
                    computed.extend(s.graph.tasks().map(|t| t.key.clone()));
                }
            }
        }
        fixed
    }
}

/// `graph` with the marked tasks costing nothing to compute (their results already exist).
fn without_compute(graph: &Graph, marked: &[bool]) -> Graph {
    let mut builder = GraphBuilder::with_capacity(graph.len(), 0);
    for (index, spec) in graph.tasks().enumerate() {
        let work = if marked[index] {
            Work {
                compute_ns: 0,
                ..spec.work.clone()
            }
        } else {
            spec.work.clone()
        };
        builder.add(spec.key.clone(), work);
    }
    for index in 0..graph.len() as u32 {
        for dep in graph.dependencies(index) {
            builder.depend(crate::TaskRef(index), crate::TaskRef(dep));
        }
    }
    builder
        .build()
        .expect("the same keys and edges as a graph that built")
}
