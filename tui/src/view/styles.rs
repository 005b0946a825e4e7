//! Colours and characters, in one place.

use ratatui::style::{Color, Modifier, Style};
use traces::Action;

/// Task-group colours: distinct from the phase colours below (red transfer, yellow disk, grey
/// deserialize), so a group is never mistaken for a phase.
const PALETTE: [Color; 12] = [
    Color::Indexed(39),
    Color::Indexed(77),
    Color::Indexed(141),
    Color::Indexed(44),
    Color::Indexed(213),
    Color::Indexed(112),
    Color::Indexed(75),
    Color::Indexed(179),
    Color::Indexed(99),
    Color::Indexed(150),
    Color::Indexed(205),
    Color::Indexed(67),
];

pub fn group_color(group: u32) -> Color {
    PALETTE[group as usize % PALETTE.len()]
}

/// How a phase looks in the task stream: compute in its group's colour, the others each with
/// their own character and colour so they read apart even without colour.
pub fn phase_cell(action: Action, group: u32) -> (char, Color) {
    match action {
        Action::Compute => ('█', group_color(group)),
        Action::Transfer => ('▒', Color::Red),
        Action::Deserialize => ('▓', Color::Gray),
        Action::DiskWrite | Action::DiskRead => ('░', Color::Yellow),
        Action::Queued => (' ', Color::Reset),
    }
}

pub fn title() -> Style {
    Style::default().add_modifier(Modifier::BOLD | Modifier::REVERSED)
}

pub fn header() -> Style {
    Style::default().add_modifier(Modifier::BOLD)
}

pub fn selected() -> Style {
    Style::default().add_modifier(Modifier::REVERSED)
}

pub fn selected_tab() -> Style {
    Style::default()
        .fg(Color::Cyan)
        .add_modifier(Modifier::BOLD | Modifier::UNDERLINED)
}

pub fn dim() -> Style {
    Style::default().fg(Color::DarkGray)
}

pub fn good() -> Style {
    Style::default().fg(Color::Green)
}

pub fn warn() -> Style {
    Style::default().fg(Color::Yellow)
}

pub fn bad() -> Style {
    Style::default().fg(Color::Red).add_modifier(Modifier::BOLD)
}

pub fn severity(severity: analyzer::Severity) -> Style {
    use analyzer::Severity;
    match severity {
        Severity::Critical => Style::default().fg(Color::Red).add_modifier(Modifier::BOLD),
        Severity::Severe => Style::default().fg(Color::Red),
        Severity::Moderate => Style::default().fg(Color::Yellow),
        Severity::Low => Style::default().fg(Color::Cyan),
        Severity::None => dim(),
    }
}

/// Memory bars as the Dask dashboard colours them: normal, past spill, past pause.
pub fn memory(process: u64, limit: Option<u64>, spill: f64, pause: f64) -> Color {
    let Some(limit) = limit.filter(|&l| l > 0) else {
        return Color::Blue;
    };
    let fraction = process as f64 / limit as f64;
    if fraction >= pause {
        Color::Red
    } else if fraction >= spill {
        Color::Indexed(208)
    } else {
        Color::Blue
    }
}

pub const DONE: Color = Color::Green;
pub const RUNNING: Color = Color::Yellow;
pub const WAITING: Color = Color::DarkGray;
pub const ERRED: Color = Color::Red;
pub const SPILLED: Color = Color::Indexed(246);
pub const UNMANAGED: Color = Color::Indexed(110);
