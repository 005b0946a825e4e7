//! The analyzer's findings, most severe first, then by impact; the selected one's evidence and fix.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};

use super::{Ui, scroll_window, styles};
use crate::state::State;

pub fn draw(frame: &mut Frame, area: Rect, state: &State, ui: &Ui) {
    let findings = &state.findings;
    if findings.is_empty() {
        let text = if state.store.tasks.is_empty() {
            "no findings yet: waiting for tasks"
        } else if state.is_live() {
            "no findings: nothing the rules flag so far"
        } else {
            "no findings: nothing the rules flag"
        };
        frame.render_widget(Paragraph::new(text).style(styles::dim()), area);
        return;
    }
    let list_height = (findings.len() as u16 + 1).min(area.height / 2).max(3);
    let [list, detail] =
        Layout::vertical([Constraint::Length(list_height), Constraint::Min(3)]).areas(area);
    let selected = ui.findings_selected.min(findings.len() - 1);
    let (first, last) = scroll_window(findings.len(), selected, list.height as usize);
    let lines: Vec<Line> = findings[first..last]
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let mut line = Line::from(vec![
                Span::styled(
                    format!("{:<9}", f.severity.as_str()),
                    styles::severity(f.severity),
                ),
                Span::raw(format!("{:<18} ", f.rule)),
                Span::raw(f.title.clone()),
            ]);
            if first + i == selected {
                line = line.style(styles::selected());
            }
            line
        })
        .collect();
    frame.render_widget(Paragraph::new(lines), list);
    let f = &findings[selected];
    let mut text = vec![
        Line::styled(f.title.clone(), styles::header()),
        Line::raw(format!(
            "impact: ~{} of wall time",
            analyzer::report::impact_label(f)
        )),
    ];
    let mut scope = Vec::new();
    if let Some(g) = &f.scope.group {
        scope.push(format!("group {g}"));
    }
    if let Some(w) = &f.scope.worker {
        scope.push(format!("worker {w}"));
    }
    if let Some((a, b)) = f.scope.time_range {
        scope.push(format!("{a:.2}–{b:.2} s"));
    }
    if !f.scope.keys.is_empty() {
        scope.push(format!("e.g. {}", f.scope.keys.join(", ")));
    }
    if !scope.is_empty() {
        text.push(Line::raw(format!(
            "scope: {} (highlighted in the other views)",
            scope.join("; ")
        )));
    }
    let evidence: Vec<String> = f
        .evidence
        .iter()
        .map(|(name, value)| format!("{name} = {}", analyzer_number(*value)))
        .collect();
    text.push(Line::raw(format!("evidence: {}", evidence.join(", "))));
    text.push(Line::from(vec![
        Span::styled("fix: ", styles::good()),
        Span::raw(f.advice.clone()),
    ]));
    frame.render_widget(
        Paragraph::new(text).wrap(Wrap { trim: false }).block(
            Block::default()
                .borders(Borders::TOP)
                .title(format!(" {} ", f.rule)),
        ),
        detail,
    );
}

/// Three significant digits, as the reports print them.
fn analyzer_number(v: f64) -> String {
    if v == v.trunc() && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v:.3}")
    }
}
