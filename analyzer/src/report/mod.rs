//! One file per output format, behind plain functions: text for people, JSON for programs,
//! Markdown for a pull request or an issue.

mod json;
mod markdown;
mod text;

pub use text::{impact_label, simulated_sentence};

pub use json::to_json;
pub use markdown::to_markdown;
pub use text::to_text;
