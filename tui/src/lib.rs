//! taskscope's terminal UI.
//!
//! [`state`] holds what is known about a run (records, the scheduler's live state, findings,
//! the clock) and is fed either by a trace file ([`app::replay`]) or by the Observe gRPC stream
//! ([`app::live`]); [`view`] draws it with ratatui and never changes it; [`app`] owns the
//! terminal and turns keys into changes. Every view renders only what fits the screen, so a
//! frame costs the same with a thousand tasks or a million.
//!
//! ```no_run
//! tui::app::replay(std::path::Path::new("run.ndjson.zst"))?;
//! # Ok::<(), anyhow::Error>(())
//! ```

pub mod app;
pub mod state;
pub mod view;
