//! The task-group DAG (or the tasks themselves, for a small run), laid out in layers: a
//! layer's nodes read only from the layers above. Each node shows its tasks by state.

use petgraph::algo::toposort;
use petgraph::graph::{DiGraph, NodeIndex};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};
use traces::TaskStatus;
use traces::units::format_count;

use super::{Ui, styles};
use crate::state::{GroupProgress, State, TASK_GRAPH_LIMIT};

/// A node: a group, or a task of a small run (then its counts are 0 or 1).
pub struct Node {
    pub label: String,
    pub group: Option<u32>,
    pub counts: GroupProgress,
    pub deps: Vec<usize>,
}

/// The nodes in layer order (what `graph_selected` indexes) and the layers.
pub fn layout(state: &State) -> (Vec<Node>, Vec<Vec<usize>>) {
    let nodes = nodes(state);
    let mut graph: DiGraph<(), ()> = DiGraph::new();
    let ids: Vec<NodeIndex> = nodes.iter().map(|_| graph.add_node(())).collect();
    for (i, n) in nodes.iter().enumerate() {
        for &d in &n.deps {
            graph.add_edge(ids[d], ids[i], ());
        }
    }
    // Longest path from a source; a cycle between groups (possible: groups are names, not
    // tasks) falls back to one layer per node in order.
    let mut layer = vec![0usize; nodes.len()];
    match toposort(&graph, None) {
        Ok(order) => {
            for n in order {
                let i = n.index();
                layer[i] = nodes[i]
                    .deps
                    .iter()
                    .map(|&d| layer[d] + 1)
                    .max()
                    .unwrap_or(0);
            }
        }
        Err(_) => layer.iter_mut().enumerate().for_each(|(i, l)| *l = i),
    }
    let depth = layer.iter().copied().max().map_or(0, |m| m + 1);
    let mut layers = vec![Vec::new(); depth];
    for (i, &l) in layer.iter().enumerate() {
        layers[l].push(i);
    }
    (nodes, layers)
}

fn nodes(state: &State) -> Vec<Node> {
    let store = &state.store;
    let small = !store.tasks.is_empty()
        && store.tasks.len() <= TASK_GRAPH_LIMIT
        && state.live.as_ref().is_none_or(|l| {
            l.groups
                .iter()
                .map(|g| g.waiting + g.running + g.done + g.erred)
                .sum::<u64>()
                <= store.tasks.len() as u64
        });
    if small {
        let t = state.clock.cursor;
        return store
            .tasks
            .iter()
            .enumerate()
            .map(|(i, row)| {
                let (waiting, running, done) = if row.stop <= t {
                    (0, 0, 1)
                } else if row.start <= t {
                    (0, 1, 0)
                } else {
                    (1, 0, 0)
                };
                let erred = u64::from(row.status == TaskStatus::Error && done == 1);
                Node {
                    label: store.keys[row.key as usize].to_string(),
                    group: Some(row.group),
                    counts: GroupProgress {
                        name: store.groups[row.group as usize].name.clone(),
                        group: Some(row.group),
                        waiting,
                        running,
                        done: done - erred,
                        erred,
                        dependencies: Vec::new(),
                    },
                    deps: store
                        .deps
                        .get(i)
                        .map(|d| d.iter().map(|&d| d as usize).collect())
                        .unwrap_or_default(),
                }
            })
            .collect();
    }
    let groups = state.group_progress();
    groups
        .iter()
        .map(|g| Node {
            label: g.name.clone(),
            group: g.group,
            deps: g
                .dependencies
                .iter()
                .filter_map(|d| groups.iter().position(|o| &o.name == d))
                .collect(),
            counts: g.clone(),
        })
        .collect()
}

pub fn draw(frame: &mut Frame, area: Rect, state: &State, ui: &Ui) {
    let (nodes, layers) = layout(state);
    if nodes.is_empty() {
        frame.render_widget(
            Paragraph::new("no task graph yet").style(styles::dim()),
            area,
        );
        return;
    }
    let [body, detail] = Layout::vertical([Constraint::Min(3), Constraint::Length(5)]).areas(area);
    let order: Vec<usize> = layers.iter().flatten().copied().collect();
    let selected = order[ui.graph_selected.min(order.len() - 1)];
    let mut lines: Vec<Line> = Vec::new();
    for (depth, layer) in layers.iter().enumerate() {
        if depth > 0 {
            lines.push(Line::styled("  ↓", styles::dim()));
        }
        let mut spans: Vec<Span> = Vec::new();
        for &i in layer {
            let n = &nodes[i];
            if !ui.filter.matches_group(&n.counts.name) {
                continue;
            }
            let c = &n.counts;
            let state_color = if c.erred > 0 {
                styles::ERRED
            } else if c.running > 0 {
                styles::RUNNING
            } else if c.waiting == 0 && c.total() > 0 {
                styles::DONE
            } else {
                styles::WAITING
            };
            let mut style = Style::default().fg(state_color);
            if i == selected || (n.group.is_some() && n.group == ui.highlight.group) {
                style = style.patch(styles::selected());
            }
            let label: String = n.label.chars().take(30).collect();
            spans.push(Span::styled(format!("[{label}"), style));
            spans.push(Span::styled(
                format!(" ✓{}", format_count(c.done)),
                Style::default().fg(styles::DONE),
            ));
            if c.running > 0 {
                spans.push(Span::styled(
                    format!(" ▶{}", format_count(c.running)),
                    Style::default().fg(styles::RUNNING),
                ));
            }
            if c.waiting > 0 {
                spans.push(Span::styled(
                    format!(" …{}", format_count(c.waiting)),
                    Style::default().fg(styles::WAITING),
                ));
            }
            if c.erred > 0 {
                spans.push(Span::styled(
                    format!(" ✗{}", format_count(c.erred)),
                    Style::default().fg(styles::ERRED),
                ));
            }
            spans.push(Span::styled("] ", style));
        }
        lines.push(Line::from(spans));
    }
    // Keep the selected node's layer in view.
    let selected_layer = layers
        .iter()
        .position(|l| l.contains(&selected))
        .unwrap_or(0);
    let scroll = (selected_layer * 2).saturating_sub(body.height as usize / 2) as u16;
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .scroll((scroll, 0)),
        body,
    );

    let n = &nodes[selected];
    let names = |idx: &mut dyn Iterator<Item = usize>| {
        let list: Vec<String> = idx.map(|i| nodes[i].label.clone()).take(8).collect();
        if list.is_empty() {
            "nothing".to_string()
        } else {
            list.join(", ")
        }
    };
    let dependents = names(&mut (0..nodes.len()).filter(|&i| nodes[i].deps.contains(&selected)));
    let c = &n.counts;
    let text = vec![
        Line::styled(n.label.clone(), styles::header()),
        Line::raw(format!(
            "{} tasks: {} done, {} running, {} waiting, {} erred",
            format_count(c.total()),
            format_count(c.done),
            format_count(c.running),
            format_count(c.waiting),
            format_count(c.erred)
        )),
        Line::raw(format!(
            "reads from: {}",
            names(&mut n.deps.iter().copied())
        )),
        Line::raw(format!("read by: {dependents}")),
    ];
    frame.render_widget(
        Paragraph::new(text).block(
            Block::default()
                .borders(Borders::TOP)
                .title(" selected (↑↓) "),
        ),
        detail,
    );
}
