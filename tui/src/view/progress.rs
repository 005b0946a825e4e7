//! A bar per task group: done, running, waiting, erred.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use traces::units::format_count;

use super::{Ui, bar, scroll_window, styles};
use crate::state::State;

pub fn draw(frame: &mut Frame, area: Rect, state: &State, ui: &Ui) {
    let groups: Vec<_> = state
        .group_progress()
        .into_iter()
        .filter(|g| ui.filter.matches_group(&g.name))
        .collect();
    let name_width = groups
        .iter()
        .map(|g| g.name.chars().count())
        .max()
        .unwrap_or(5)
        .clamp(5, 28);
    let numbers = 40;
    let bar_width = (area.width as usize)
        .saturating_sub(name_width + numbers + 2)
        .max(10);
    let mut lines = vec![Line::from(vec![
        Span::styled(format!("{:<name_width$} ", "group"), styles::header()),
        Span::styled(
            format!("{:<bar_width$} ", "█ done ▓ running ░ waiting ✗ erred"),
            styles::header(),
        ),
        Span::styled(
            format!(
                "{:>9} {:>7} {:>8} {:>6}",
                "done", "running", "waiting", "erred"
            ),
            styles::header(),
        ),
    ])];
    let height = (area.height as usize).saturating_sub(1);
    let selected = ui.progress_selected.min(groups.len().saturating_sub(1));
    let (first, last) = scroll_window(groups.len(), selected, height);
    for (i, g) in groups[first..last].iter().enumerate() {
        let mut name = g.name.chars().take(name_width).collect::<String>();
        name = format!("{name:<name_width$} ");
        let highlighted = g.group.is_some() && g.group == ui.highlight.group;
        let name_style = if first + i == selected || highlighted {
            styles::selected()
        } else {
            Style::default()
        };
        let mut spans = vec![Span::styled(name, name_style)];
        spans.extend(bar(
            &[
                (g.done, '█', Style::default().fg(styles::DONE)),
                (g.running, '▓', Style::default().fg(styles::RUNNING)),
                (g.waiting, '░', Style::default().fg(styles::WAITING)),
                (g.erred, '✗', Style::default().fg(styles::ERRED)),
            ],
            g.total(),
            bar_width,
        ));
        spans.push(Span::raw(format!(
            " {:>9} {:>7} {:>8} {:>6}",
            format_count(g.done),
            format_count(g.running),
            format_count(g.waiting),
            format_count(g.erred)
        )));
        lines.push(Line::from(spans));
    }
    if groups.is_empty() {
        lines.push(Line::styled("no task group yet", styles::dim()));
    }
    frame.render_widget(Paragraph::new(lines), area);
}
