//! Worker memory at the cursor (managed / unmanaged / spilled against the limit, with the
//! target / spill / pause / terminate marks) and the cluster's total over time.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Sparkline};
use traces::units::format_bytes;

use super::{Ui, scroll_window, styles};
use crate::state::{State, WorkerStatus};

const NAME_WIDTH: usize = 10;

pub fn draw(frame: &mut Frame, area: Rect, state: &State, ui: &Ui) {
    let [bars, total] = Layout::vertical([Constraint::Min(3), Constraint::Length(6)]).areas(area);
    let store = &state.store;
    let cursor = state.clock.cursor;
    let fractions = store.memory_fractions();
    let numbers_width = 34usize;
    let bar_width = (bars.width as usize)
        .saturating_sub(NAME_WIDTH + numbers_width + 2)
        .max(10);
    let mut lines = vec![Line::from(vec![
        Span::styled(format!("{:<NAME_WIDTH$} ", "worker"), styles::header()),
        Span::styled(
            format!(
                "{:<bar_width$} ",
                "memory (T target S spill P pause K terminate)"
            ),
            styles::header(),
        ),
        Span::styled("managed unmanaged spilled", styles::header()),
    ])];
    // The largest process memory seen scales the bars of workers without a limit.
    let max_seen = store
        .workers
        .iter()
        .filter_map(|w| store.memory_at(w, cursor))
        .map(|m| m.managed + m.unmanaged + m.spilled)
        .max()
        .unwrap_or(0);
    let height = (bars.height as usize).saturating_sub(1);
    let (first, last) = scroll_window(store.workers.len(), ui.workers_selected, height);
    for w in &store.workers[first..last] {
        let sample = store.memory_at(w, cursor);
        let (managed, unmanaged, spilled) =
            sample.map_or((0, 0, 0), |m| (m.managed, m.unmanaged, m.spilled));
        let process = managed + unmanaged;
        let scale = w.spec.memory_limit.unwrap_or(max_seen).max(1);
        let color = styles::memory(
            process,
            w.spec.memory_limit,
            fractions.spill,
            fractions.pause,
        );
        let mut cells: Vec<(char, Style)> = Vec::with_capacity(bar_width);
        let cols = |v: u64| ((v as f64 / scale as f64) * bar_width as f64).round() as usize;
        let (m, u, s) = (
            cols(managed),
            cols(managed + unmanaged),
            cols(managed + unmanaged + spilled),
        );
        for i in 0..bar_width {
            cells.push(if i < m {
                ('█', Style::default().fg(color))
            } else if i < u {
                ('▓', Style::default().fg(styles::UNMANAGED))
            } else if i < s {
                ('░', Style::default().fg(styles::SPILLED))
            } else {
                ('·', styles::dim())
            });
        }
        if w.spec.memory_limit.is_some() {
            for (fraction, mark) in [
                (fractions.target, 'T'),
                (fractions.spill, 'S'),
                (fractions.pause, 'P'),
                (fractions.terminate, 'K'),
            ] {
                let i = ((fraction * bar_width as f64) as usize).min(bar_width - 1);
                cells[i] = (mark, styles::header());
            }
        }
        let mut spans = Vec::new();
        let name_style = if ui.highlight.worker == Some(w.spec.id) {
            styles::selected()
        } else {
            Style::default()
        };
        let status = match w.status {
            WorkerStatus::Running => "",
            WorkerStatus::Paused => " ⏸",
            WorkerStatus::Killed => " ✗",
            WorkerStatus::Removed => " –",
        };
        spans.push(Span::styled(
            format!("{:<NAME_WIDTH$} ", format!("w{}{status}", w.spec.id)),
            name_style,
        ));
        for (ch, style) in cells {
            spans.push(Span::styled(ch.to_string(), style));
        }
        spans.push(Span::raw(format!(
            " {:>7} {:>9} {:>7}",
            format_bytes(managed),
            format_bytes(unmanaged),
            format_bytes(spilled)
        )));
        lines.push(Line::from(spans));
    }
    if store.workers.is_empty() {
        lines.push(Line::styled("no worker yet", styles::dim()));
    }
    frame.render_widget(Paragraph::new(lines), bars);

    // The cluster's process memory over [start, cursor], one point per column.
    let width = total.width.saturating_sub(2) as u64;
    let start = state.clock.start;
    let span = cursor.saturating_sub(start).max(1);
    let points: Vec<u64> = (0..width.max(1))
        .map(|i| store.cluster_memory_at(start + span * (i + 1) / width.max(1)))
        .collect();
    let peak = points.iter().copied().max().unwrap_or(0);
    let limit = store.total_memory_limit();
    let title = match limit {
        Some(limit) => format!(
            " cluster memory over time: now {}, peak {}, limit {} ",
            format_bytes(store.cluster_memory_at(cursor)),
            format_bytes(peak),
            format_bytes(limit)
        ),
        None => format!(
            " cluster memory over time: now {}, peak {} ",
            format_bytes(store.cluster_memory_at(cursor)),
            format_bytes(peak)
        ),
    };
    let sparkline = Sparkline::default()
        .block(Block::default().borders(Borders::ALL).title(title))
        .data(&points)
        .max(limit.unwrap_or(peak).max(1))
        .style(Style::default().fg(styles::UNMANAGED));
    frame.render_widget(sparkline, total);
}
