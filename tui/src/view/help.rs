//! The `?` overlay.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Clear, Paragraph};

use super::styles;

pub fn draw(frame: &mut Frame, area: Rect, live: bool) {
    let mut lines = vec![
        Line::styled("views", styles::header()),
        Line::raw("  tab / shift-tab   next / previous view; 1-7 jump to one"),
        Line::raw("  ↑↓ or k j         select a row (a lane in the task stream)"),
        Line::raw("  ←→ or h l         task stream: previous / next task in the lane"),
        Line::raw("  + / -             zoom in / out     H L   pan     0   fit"),
        Line::raw("  /                 filter by group or key (Enter apply, Esc clear)"),
        Line::raw("  Findings: the selected one is highlighted everywhere; Enter shows it"),
        Line::styled("time", styles::header()),
        Line::raw("  , / .             seek back / forward 10 % of the run"),
        Line::raw("  Home / End        start / newest (End follows a live run)"),
    ];
    if live {
        lines.push(Line::raw(
            "  p                 pause / resume the cluster (no new task starts)",
        ));
    } else {
        lines.push(Line::raw("  space             play / pause the replay"));
        lines.push(Line::raw("  [ / ]             slower / faster"));
    }
    lines.push(Line::raw(
        "  ? / Esc           close this help     q / Ctrl-C   quit",
    ));
    let width = 74.min(area.width);
    let height = (lines.len() as u16 + 2).min(area.height);
    let popup = Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    };
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(lines).block(Block::default().borders(Borders::ALL).title(" help ")),
        popup,
    );
}
