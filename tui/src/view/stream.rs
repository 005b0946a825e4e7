//! The task stream: one lane per worker thread, time left to right, a cell per time slice.
//!
//! Each cell shows what covers the middle of its slice (found by binary search in the lane),
//! so a frame costs O(lanes shown × width × log tasks) whatever the number of tasks.

use ratatui::Frame;
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Widget, Wrap};
use traces::units::{format_bytes, format_duration};
use traces::{Action, Nanos};

use super::{Ui, scroll_window, styles};
use crate::state::State;

/// Columns of lane labels.
const LABEL_WIDTH: u16 = 9;

/// Where the person is in the stream.
#[derive(Clone, Debug, Default)]
pub struct StreamUi {
    /// Index into the store's lane order.
    pub lane: usize,
    /// Width of the window in nanoseconds; `None`: the whole run so far.
    pub span: Option<Nanos>,
    /// End of the window; `None`: the clock's cursor (it moves with a live run or a replay).
    pub end: Option<Nanos>,
    pub selected_task: Option<u32>,
}

impl StreamUi {
    /// The time window shown: `[start, end)`.
    pub fn window(&self, state: &State) -> (Nanos, Nanos) {
        let first = state.store.first.min(state.clock.cursor);
        let end = self.end.unwrap_or(state.clock.cursor).max(first + 1);
        let span = self.span.unwrap_or(end - first).max(1_000);
        (end.saturating_sub(span), end)
    }

    pub fn zoom(&mut self, state: &State, factor: f64) {
        let (start, end) = self.window(state);
        let span = ((end - start) as f64 * factor).max(1_000.0) as Nanos;
        let middle = start + (end - start) / 2;
        self.span = Some(span);
        self.end = Some(middle + span / 2);
        if self.end.is_some_and(|e| e >= state.clock.cursor) {
            // Zoomed around "now": keep following.
            self.end = None;
        }
    }

    pub fn pan(&mut self, state: &State, fraction: f64) {
        let (start, end) = self.window(state);
        let span = end - start;
        let shift = (span as f64 * fraction.abs()) as Nanos;
        let first = state.store.first.min(state.clock.cursor);
        let new_end = if fraction < 0.0 {
            // Not before the run's start.
            end.saturating_sub(shift).max(first.saturating_add(span))
        } else {
            end + shift
        };
        self.span = Some(span);
        self.end = (new_end < state.clock.cursor).then_some(new_end);
    }

    pub fn fit(&mut self) {
        self.span = None;
        self.end = None;
    }

    /// Selects the next (`forward`) or previous task in the selected lane, panning to it.
    pub fn step_task(&mut self, state: &State, forward: bool) {
        let Some(&lane) = state.store.lane_order.get(self.lane) else {
            return;
        };
        let tasks = &state.store.lanes[lane as usize].tasks;
        let visible = |&&t: &&u32| state.store.tasks[t as usize].start <= state.clock.cursor;
        let current = self
            .selected_task
            .and_then(|sel| tasks.iter().position(|&t| t == sel));
        let next = match (current, forward) {
            (Some(i), true) => tasks.get(i + 1).filter(visible),
            (Some(i), false) => i.checked_sub(1).and_then(|i| tasks.get(i)),
            (None, _) => {
                // Start from the window's middle.
                let (start, end) = self.window(state);
                let middle = start + (end - start) / 2;
                let i = tasks.partition_point(|&t| state.store.tasks[t as usize].start < middle);
                tasks
                    .get(i)
                    .filter(visible)
                    .or_else(|| i.checked_sub(1).and_then(|i| tasks.get(i)))
            }
        };
        if let Some(&t) = next {
            self.selected_task = Some(t);
            let row = &state.store.tasks[t as usize];
            let (start, end) = self.window(state);
            if row.start < start || row.start >= end {
                let span = end - start;
                let new_end = row.start + span / 2;
                self.span = Some(span);
                self.end = (new_end < state.clock.cursor).then_some(new_end);
            }
        }
    }

    pub fn step_lane(&mut self, state: &State, down: bool) {
        let lanes = state.store.lane_order.len();
        if lanes == 0 {
            return;
        }
        self.lane = if down {
            (self.lane + 1).min(lanes - 1)
        } else {
            self.lane.saturating_sub(1)
        };
        self.selected_task = None;
    }
}

pub fn draw(frame: &mut Frame, area: Rect, state: &State, ui: &Ui) {
    let detail_height = if ui.stream.selected_task.is_some() {
        6
    } else {
        2
    };
    let [axis, lanes, detail] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(1),
        Constraint::Length(detail_height),
    ])
    .areas(area);
    let (start, end) = ui.stream.window(state);
    frame.render_widget(axis_line(start, end, state.clock.start, axis.width), axis);
    frame.render_widget(
        Lanes {
            state,
            ui,
            start,
            end,
        },
        lanes,
    );
    frame.render_widget(detail_lines(state, ui), detail);
}

fn axis_line(start: Nanos, end: Nanos, origin: Nanos, width: u16) -> Paragraph<'static> {
    let left = format!(
        "{:w$}{}",
        "",
        format_duration(start.saturating_sub(origin)),
        w = LABEL_WIDTH as usize
    );
    let right = format!(
        "{} ({} shown)",
        format_duration(end.saturating_sub(origin)),
        format_duration(end - start)
    );
    let pad = (width as usize).saturating_sub(left.chars().count() + right.chars().count());
    Paragraph::new(format!("{left}{}{right}", " ".repeat(pad))).style(styles::dim())
}

struct Lanes<'a> {
    state: &'a State,
    ui: &'a Ui,
    start: Nanos,
    end: Nanos,
}

impl Widget for Lanes<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let store = &self.state.store;
        if store.lane_order.is_empty() {
            Paragraph::new("no task has finished yet")
                .style(styles::dim())
                .render(area, buf);
            return;
        }
        let cursor = self.state.clock.cursor;
        let width = area.width.saturating_sub(LABEL_WIDTH) as u64;
        if width == 0 {
            return;
        }
        let slice = ((self.end - self.start) / width).max(1);
        let highlight = &self.ui.highlight;
        let filter = &self.ui.filter;
        let (first, last) = scroll_window(
            store.lane_order.len(),
            self.ui.stream.lane,
            area.height as usize,
        );
        for (row, &lane) in store.lane_order[first..last].iter().enumerate() {
            let y = area.y + row as u16;
            let lane_info = &store.lanes[lane as usize];
            let selected_lane = first + row == self.ui.stream.lane;
            let label = format!("w{}/t{}", lane_info.worker, lane_info.thread);
            let label_style = if selected_lane {
                styles::selected()
            } else {
                styles::dim()
            };
            buf.set_stringn(
                area.x,
                y,
                format!("{label:<8} "),
                LABEL_WIDTH as usize,
                label_style,
            );
            let dim_lane = highlight.worker.is_some_and(|w| w != lane_info.worker);
            for col in 0..width {
                let from = self.start + col * slice;
                if from > cursor {
                    break;
                }
                let to = (from + slice).min(cursor.max(from + 1));
                let middle = from + (to - from) / 2;
                // What covers the middle of the slice, else the first task inside it.
                let task = store
                    .lane_task_at(lane, middle)
                    .or_else(|| store.lane_task_in(lane, from, to));
                let Some(t) = task else { continue };
                let task_row = &store.tasks[t as usize];
                if !filter.matches_task(t, &store.groups[task_row.group as usize].name) {
                    continue;
                }
                let at = middle.clamp(
                    task_row.start,
                    task_row.stop.saturating_sub(1).max(task_row.start),
                );
                let action = store
                    .task_phases(task_row)
                    .iter()
                    .filter(|p| {
                        p.action != Action::Queued && p.start <= at && at < p.stop.max(p.start + 1)
                    })
                    .map(|p| p.action)
                    .max_by_key(|a| *a == Action::Compute)
                    .unwrap_or(Action::Compute);
                let (ch, mut color) = styles::phase_cell(action, task_row.group);
                let dimmed = dim_lane
                    || highlight.group.is_some_and(|g| g != task_row.group)
                    || highlight
                        .time_range
                        .is_some_and(|(a, b)| task_row.stop < a || task_row.start > b);
                if dimmed {
                    color = Color::DarkGray;
                }
                let mut style = Style::default().fg(color);
                if task_row.status != traces::TaskStatus::Ok {
                    style = style.fg(Color::Red).add_modifier(Modifier::BOLD);
                }
                let ch = if task_row.status == traces::TaskStatus::Ok {
                    ch
                } else {
                    '✗'
                };
                if self.ui.stream.selected_task == Some(t) {
                    style = style.add_modifier(Modifier::REVERSED);
                }
                let x = area.x + LABEL_WIDTH + col as u16;
                buf[(x, y)].set_char(ch).set_style(style);
            }
        }
    }
}

fn detail_lines(state: &State, ui: &Ui) -> Paragraph<'static> {
    let block = Block::default().borders(Borders::TOP).title(" task ");
    let store = &state.store;
    let Some(t) = ui.stream.selected_task else {
        return Paragraph::new(Line::from(vec![
            Span::styled("█", Style::default().fg(styles::group_color(0))),
            Span::raw(" compute (group colour)  "),
            Span::styled("▒", Style::default().fg(Color::Red)),
            Span::raw(" transfer  "),
            Span::styled("▓", Style::default().fg(Color::Gray)),
            Span::raw(" deserialize  "),
            Span::styled("░", Style::default().fg(Color::Yellow)),
            Span::raw(" disk  ✗ failed   ←/→ select a task, +/- zoom, H/L pan, 0 fit"),
        ]))
        .block(block)
        .style(styles::dim());
    };
    let row = &store.tasks[t as usize];
    let lane = &store.lanes[row.lane as usize];
    let mut lines = vec![Line::from(vec![
        Span::styled(store.keys[row.key as usize].to_string(), styles::header()),
        Span::raw(format!(
            "  group {}  worker {} thread {}  {}  attempt {}  result {}",
            store.groups[row.group as usize].name,
            lane.worker,
            lane.thread,
            row.status.as_str(),
            row.attempt,
            format_bytes(row.nbytes)
        )),
    ])];
    let origin = state.clock.start;
    let phases: Vec<String> = store
        .task_phases(row)
        .iter()
        .map(|p| {
            let bytes = p
                .bytes
                .map(|b| format!(" {}", format_bytes(b)))
                .unwrap_or_default();
            let peer = p.peer.map(|w| format!(" from w{w}")).unwrap_or_default();
            format!(
                "{} {} at {}{bytes}{peer}",
                p.action.as_str(),
                format_duration(p.duration()),
                format_duration(p.start.saturating_sub(origin))
            )
        })
        .collect();
    lines.push(Line::raw(phases.join("  ·  ")));
    Paragraph::new(lines).block(block).wrap(Wrap { trim: true })
}
