//! Compute-time distribution per task group (HdrHistogram's buckets, kept sparse): p50 / p99 /
//! max, and the selected group's shape on a log scale.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Paragraph};
use traces::units::{format_count, format_duration};

use super::{Ui, scroll_window, styles};
use crate::state::State;

pub fn draw(frame: &mut Frame, area: Rect, state: &State, ui: &Ui) {
    let [table, shape] = Layout::vertical([Constraint::Min(3), Constraint::Length(8)]).areas(area);
    let store = &state.store;
    let histograms: Vec<_> = state
        .aggregates
        .histograms()
        .filter(|h| {
            ui.filter
                .matches_group(&store.groups[h.group as usize].name)
        })
        .collect();
    let mut lines = vec![Line::styled(
        format!(
            "{:<28} {:>9} {:>10} {:>10} {:>10}",
            "group (compute time)", "tasks", "p50", "p99", "max"
        ),
        styles::header(),
    )];
    let selected = ui
        .histograms_selected
        .min(histograms.len().saturating_sub(1));
    let (first, last) = scroll_window(
        histograms.len(),
        selected,
        (table.height as usize).saturating_sub(1),
    );
    let us = |v: u64| format_duration(v * 1_000);
    for (i, h) in histograms[first..last].iter().enumerate() {
        let name: String = store.groups[h.group as usize]
            .name
            .chars()
            .take(28)
            .collect();
        let highlighted = ui.highlight.group == Some(h.group);
        let style = if first + i == selected || highlighted {
            styles::selected()
        } else {
            Style::default()
        };
        lines.push(Line::styled(
            format!(
                "{name:<28} {:>9} {:>10} {:>10} {:>10}",
                format_count(h.micros.len()),
                us(h.micros.value_at_quantile(0.5)),
                us(h.micros.value_at_quantile(0.99)),
                us(h.micros.max())
            ),
            style,
        ));
    }
    if histograms.is_empty() {
        lines.push(Line::styled("no finished task yet", styles::dim()));
    }
    frame.render_widget(Paragraph::new(lines), table);

    let Some(h) = histograms.get(selected) else {
        return;
    };
    // Power-of-two buckets from 1 µs: one column each.
    let buckets: Vec<(u64, u64)> = h
        .micros
        .powers_of_two()
        .into_iter()
        .map(|(upto, count)| (upto.max(1), count))
        .collect();
    let peak = buckets.iter().map(|b| b.1).max().unwrap_or(1).max(1);
    let rows = shape.height.saturating_sub(3) as u64;
    let bars = "▁▂▃▄▅▆▇█";
    let mut grid: Vec<String> = Vec::new();
    for row in (0..rows).rev() {
        let mut line = String::new();
        for &(_, count) in &buckets {
            let height = count as f64 / peak as f64 * rows as f64;
            let ch = if height >= (row + 1) as f64 {
                '█'
            } else if height > row as f64 {
                let frac = height - row as f64;
                bars.chars()
                    .nth(((frac * 8.0) as usize).min(7))
                    .unwrap_or(' ')
            } else {
                ' '
            };
            line.push_str(&format!("{ch}{ch}{ch}{ch}{ch}{ch} "));
        }
        grid.push(line);
    }
    let mut shape_lines: Vec<Line> = grid
        .into_iter()
        .map(|l| Line::styled(l, Style::default().fg(styles::group_color(h.group))))
        .collect();
    shape_lines.push(Line::styled(
        buckets
            .iter()
            .map(|(v, _)| format!("{:<7}", format!("≤{}", us(*v))))
            .collect::<String>(),
        styles::dim(),
    ));
    let title = format!(
        " {}: tasks per compute time ",
        store.groups[h.group as usize].name
    );
    frame.render_widget(
        Paragraph::new(shape_lines).block(Block::default().borders(Borders::TOP).title(title)),
        shape,
    );
}
