//! Drawing the state. [`Ui`] holds what the person chose (view, selections, zoom, filter);
//! the draw functions read [`State`] and never change it.

mod findings;
mod graph;
mod help;
mod histograms;
mod memory;
mod progress;
mod stream;
pub mod styles;
mod workers;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Tabs};
use traces::Nanos;
use traces::units::{format_count, format_duration};

use crate::state::{Connection, Source, State};

pub use stream::StreamUi;

/// Nodes the graph view shows (for moving its selection).
pub fn graph_nodes(state: &State) -> usize {
    graph::layout(state).0.len()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tab {
    Stream,
    Memory,
    Graph,
    Progress,
    Workers,
    Histograms,
    Findings,
}

impl Tab {
    pub const ALL: [Tab; 7] = [
        Tab::Stream,
        Tab::Memory,
        Tab::Graph,
        Tab::Progress,
        Tab::Workers,
        Tab::Histograms,
        Tab::Findings,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Tab::Stream => "Task stream",
            Tab::Memory => "Memory",
            Tab::Graph => "Graph",
            Tab::Progress => "Progress",
            Tab::Workers => "Workers",
            Tab::Histograms => "Histograms",
            Tab::Findings => "Findings",
        }
    }

    /// The view's name on the command line (`top --view NAME`).
    pub fn name(self) -> &'static str {
        match self {
            Tab::Stream => "stream",
            Tab::Memory => "memory",
            Tab::Graph => "graph",
            Tab::Progress => "progress",
            Tab::Workers => "workers",
            Tab::Histograms => "histograms",
            Tab::Findings => "findings",
        }
    }

    pub fn from_name(name: &str) -> Option<Tab> {
        Tab::ALL.into_iter().find(|t| t.name() == name)
    }

    fn index(self) -> usize {
        Tab::ALL.iter().position(|&t| t == self).unwrap_or(0)
    }
}

/// What a finding points at, highlighted in every view while the finding is selected.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Highlight {
    pub group: Option<u32>,
    pub worker: Option<traces::WorkerId>,
    /// Nanoseconds since the origin.
    pub time_range: Option<(Nanos, Nanos)>,
}

/// `/`: which groups (by name) or keys to show. Text that names no group is looked for in
/// the task keys instead.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    pub text: String,
    pub editing: bool,
    /// Tasks whose key contains the text, when no group name does.
    pub tasks: Option<rustc_hash::FxHashSet<u32>>,
}

impl Filter {
    pub fn is_active(&self) -> bool {
        !self.text.is_empty()
    }

    pub fn matches_group(&self, name: &str) -> bool {
        self.text.is_empty() || self.tasks.is_some() || name.contains(self.text.as_str())
    }

    pub fn matches_task(&self, task: u32, group_name: &str) -> bool {
        match &self.tasks {
            Some(tasks) => tasks.contains(&task),
            None => self.matches_group(group_name),
        }
    }

    /// Decides between group and key matching once, when the text is entered.
    pub fn apply(&mut self, store: &crate::state::Store) {
        self.editing = false;
        self.tasks = None;
        if self.text.is_empty()
            || store
                .groups
                .iter()
                .any(|g| g.name.contains(self.text.as_str()))
        {
            return;
        }
        let tasks = store
            .tasks
            .iter()
            .enumerate()
            .filter(|(_, row)| {
                store.keys[row.key as usize]
                    .to_string()
                    .contains(self.text.as_str())
            })
            .map(|(i, _)| i as u32)
            .collect();
        self.tasks = Some(tasks);
    }
}

/// The person's choices.
pub struct Ui {
    pub tab: Tab,
    pub help: bool,
    pub filter: Filter,
    pub stream: StreamUi,
    /// Selected row per list view.
    pub graph_selected: usize,
    pub progress_selected: usize,
    pub workers_selected: usize,
    pub histograms_selected: usize,
    pub findings_selected: usize,
    /// The person picked a finding (in the Findings view): its scope is highlighted until Esc.
    pub finding_focus: bool,
    pub highlight: Highlight,
}

impl Default for Ui {
    fn default() -> Self {
        Ui {
            tab: Tab::Stream,
            help: false,
            filter: Filter::default(),
            stream: StreamUi::default(),
            graph_selected: 0,
            progress_selected: 0,
            workers_selected: 0,
            histograms_selected: 0,
            findings_selected: 0,
            finding_focus: false,
            highlight: Highlight::default(),
        }
    }
}

impl Ui {
    /// The highlight of the selected finding (shown in every view).
    pub fn update_highlight(&mut self, state: &State) {
        let selected = state
            .findings
            .get(self.findings_selected)
            .filter(|_| self.finding_focus || self.tab == Tab::Findings);
        self.highlight = match selected {
            Some(f) => Highlight {
                group: f
                    .scope
                    .group
                    .as_deref()
                    .and_then(|g| state.store.group_named(g)),
                worker: f.scope.worker.as_deref().and_then(|name| {
                    state
                        .store
                        .workers
                        .iter()
                        .find(|w| w.spec.name == name)
                        .map(|w| w.spec.id)
                }),
                time_range: f
                    .scope
                    .time_range
                    .map(|(a, b)| ((a * 1e9) as Nanos, (b * 1e9) as Nanos)),
            },
            None => Highlight::default(),
        };
    }
}

/// Draws the whole screen.
pub fn draw(frame: &mut Frame, state: &State, ui: &Ui) {
    let [status, tabs, body, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Min(3),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    frame.render_widget(status_line(state), status);
    let titles: Vec<Line> = Tab::ALL
        .iter()
        .enumerate()
        .map(|(i, t)| Line::from(format!("{} {}", i + 1, t.title())))
        .collect();
    frame.render_widget(
        Tabs::new(titles)
            .select(ui.tab.index())
            .highlight_style(styles::selected_tab())
            .divider("│"),
        tabs,
    );
    match ui.tab {
        Tab::Stream => stream::draw(frame, body, state, ui),
        Tab::Memory => memory::draw(frame, body, state, ui),
        Tab::Graph => graph::draw(frame, body, state, ui),
        Tab::Progress => progress::draw(frame, body, state, ui),
        Tab::Workers => workers::draw(frame, body, state, ui),
        Tab::Histograms => histograms::draw(frame, body, state, ui),
        Tab::Findings => findings::draw(frame, body, state, ui),
    }
    frame.render_widget(footer_line(state, ui), footer);
    if ui.help {
        help::draw(frame, frame.area(), state.is_live());
    }
}

fn status_line(state: &State) -> Paragraph<'static> {
    let mut spans = vec![Span::styled(" taskscope ", styles::title())];
    match &state.source {
        Source::Live { addr } => spans.push(Span::raw(format!(" {addr} "))),
        Source::Replay { path } => spans.push(Span::raw(format!(" {path} "))),
    }
    let connection = match &state.connection {
        Connection::Connecting => Span::styled("connecting…", styles::warn()),
        Connection::Loading => Span::styled("loading snapshot…", styles::warn()),
        Connection::Live => Span::styled("● live", styles::good()),
        Connection::Disconnected { error, retry_at } => {
            let left = retry_at.saturating_duration_since(std::time::Instant::now());
            Span::styled(
                format!(
                    "disconnected, retrying in {:.1} s ({error})",
                    left.as_secs_f64()
                ),
                styles::bad(),
            )
        }
        Connection::Failed(error) => Span::styled(format!("✗ {error}"), styles::bad()),
        Connection::Replay => {
            let clock = &state.clock;
            let mode = if clock.playing {
                format!("▶ playing ×{}", clock.speed())
            } else if clock.follow {
                "at end".to_string()
            } else {
                format!("⏸ paused ×{}", clock.speed())
            };
            Span::styled(mode, styles::good())
        }
    };
    spans.push(connection);
    spans.push(Span::raw(format!(
        "  t={} / {}  tasks {}",
        format_duration(state.clock.cursor.saturating_sub(state.clock.start)),
        format_duration(state.end().saturating_sub(state.clock.start)),
        format_count(state.store.tasks.len() as u64),
    )));
    if state.is_live() && !state.clock.follow {
        spans.push(Span::styled(
            "  (viewing the past: End to follow)",
            styles::warn(),
        ));
    }
    if state.cluster_paused {
        spans.push(Span::styled("  CLUSTER PAUSED", styles::bad()));
    }
    if state.dropped > 0 {
        spans.push(Span::styled(
            format!(
                "  {} updates dropped (slow reader)",
                format_count(state.dropped)
            ),
            styles::bad(),
        ));
    }
    if let Some((notice, _)) = &state.notice {
        spans.push(Span::styled(format!("  {notice}"), styles::warn()));
    }
    Paragraph::new(Line::from(spans))
}

fn footer_line(state: &State, ui: &Ui) -> Paragraph<'static> {
    if ui.filter.editing {
        return Paragraph::new(Line::from(vec![
            Span::styled(" filter: ", styles::title()),
            Span::raw(ui.filter.text.clone()),
            Span::styled("█", Style::default().add_modifier(Modifier::SLOW_BLINK)),
            Span::raw("  (Enter: apply, Esc: clear)"),
        ]));
    }
    let mut text = String::from(" ?:help  tab/1-7:views  q:quit  /:filter");
    if state.is_live() {
        text.push_str("  p:pause cluster  ,/.:seek  End:follow");
    } else {
        text.push_str("  space:play  [/]:speed  ,/.:seek  Home/End");
    }
    if ui.filter.is_active() {
        text.push_str(&format!("  filter: {}", ui.filter.text));
    }
    Paragraph::new(text).style(styles::dim())
}

/// Rows `[first, first + height)` of a list of `len`, keeping `selected` visible.
pub(crate) fn scroll_window(len: usize, selected: usize, height: usize) -> (usize, usize) {
    if height == 0 || len == 0 {
        return (0, 0);
    }
    let first = selected
        .saturating_sub(height - 1)
        .min(len.saturating_sub(height));
    (first, (first + height).min(len))
}

/// A `width`-cell bar of `parts` (value, character, style) out of `total`; each part has its
/// own character so the bar reads without colour too.
pub(crate) fn bar(parts: &[(u64, char, Style)], total: u64, width: usize) -> Vec<Span<'static>> {
    let mut spans = Vec::new();
    let mut used = 0usize;
    let mut acc = 0u64;
    for &(value, ch, style) in parts {
        acc += value;
        let end = if total == 0 {
            0
        } else {
            ((acc as f64 / total as f64) * width as f64).round() as usize
        }
        .min(width);
        if end > used {
            spans.push(Span::styled(ch.to_string().repeat(end - used), style));
            used = end;
        }
    }
    if used < width {
        spans.push(Span::styled("·".repeat(width - used), styles::dim()));
    }
    spans
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scroll_window_keeps_the_selection_visible() {
        assert_eq!(scroll_window(100, 0, 10), (0, 10));
        assert_eq!(scroll_window(100, 15, 10), (6, 16));
        assert_eq!(scroll_window(100, 99, 10), (90, 100));
        assert_eq!(scroll_window(5, 3, 10), (0, 5));
        assert_eq!(scroll_window(0, 0, 10), (0, 0));
    }
}
