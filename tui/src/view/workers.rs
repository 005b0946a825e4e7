//! A row per worker: threads, running, memory, busy %, spilled, transfers.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::Style;
use ratatui::widgets::{Row, Table, TableState};
use traces::units::{format_bytes, format_count};

use super::{Ui, styles};
use crate::state::{State, WorkerStatus};

pub fn draw(frame: &mut Frame, area: Rect, state: &State, ui: &Ui) {
    let store = &state.store;
    let cursor = state.clock.cursor;
    let running = state.running_at_cursor();
    let elapsed = cursor.saturating_sub(state.clock.start).max(1);
    let rows: Vec<Row> = store
        .workers
        .iter()
        .map(|w| {
            let id = w.spec.id;
            let lanes: Vec<u32> = store
                .lane_order
                .iter()
                .copied()
                .filter(|&l| store.lanes[l as usize].worker == id)
                .collect();
            let busy: u64 = lanes
                .iter()
                .map(|&l| store.lane_busy_until(l, cursor))
                .sum();
            let threads = u64::from(w.spec.threads.max(lanes.len() as u32).max(1));
            let busy_pct = 100.0 * busy as f64 / (threads * elapsed) as f64;
            let running_here = match state.live.as_ref().filter(|_| state.clock.follow) {
                Some(live) => live.running.iter().filter(|r| r.worker == id).count(),
                None => running
                    .iter()
                    .filter(|(l, _)| store.lanes[*l as usize].worker == id)
                    .count(),
            };
            let memory = store.memory_at(w, cursor);
            let process = memory.map_or(0, |m| m.managed + m.unmanaged);
            let spilled = memory.map_or(0, |m| m.spilled);
            let totals = state
                .aggregates
                .workers
                .get(&id)
                .copied()
                .unwrap_or_default();
            let status = match w.status {
                WorkerStatus::Running => "running",
                WorkerStatus::Paused => "paused",
                WorkerStatus::Killed => "killed",
                WorkerStatus::Removed => "removed",
            };
            let limit = w
                .spec
                .memory_limit
                .map(format_bytes)
                .unwrap_or_else(|| "-".into());
            let style = if ui.highlight.worker == Some(id) {
                styles::selected()
            } else if matches!(w.status, WorkerStatus::Killed) {
                styles::bad()
            } else {
                Style::default()
            };
            Row::new(vec![
                format!("w{id}"),
                status.to_string(),
                threads.to_string(),
                running_here.to_string(),
                format_count(totals.tasks),
                format!("{} / {limit}", format_bytes(process)),
                format!("{busy_pct:.0}%"),
                format_bytes(spilled),
                format!(
                    "{} ({})",
                    format_count(totals.transfers),
                    format_bytes(totals.transfer_bytes)
                ),
                w.spec.name.clone(),
            ])
            .style(style)
        })
        .collect();
    let header = Row::new(vec![
        "id",
        "status",
        "threads",
        "running",
        "tasks",
        "memory / limit",
        "busy",
        "spilled",
        "transfers",
        "name",
    ])
    .style(styles::header());
    let table = Table::new(
        rows,
        [
            Constraint::Length(4),
            Constraint::Length(8),
            Constraint::Length(7),
            Constraint::Length(7),
            Constraint::Length(8),
            Constraint::Length(21),
            Constraint::Length(5),
            Constraint::Length(9),
            Constraint::Length(18),
            Constraint::Fill(1),
        ],
    )
    .header(header)
    .row_highlight_style(styles::selected());
    let mut table_state = TableState::default().with_selected(Some(ui.workers_selected));
    frame.render_stateful_widget(table, area, &mut table_state);
}
