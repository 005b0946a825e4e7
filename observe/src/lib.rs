//! taskscope's Observe gRPC, both ends.
//!
//! A producer (the built-in engine, through [`traces::RecordSink`]) feeds a [`Hub`]; a
//! [`Server`] serves the hub to any number of watchers: a snapshot of everything so far in
//! chunks under 4 MB, then live updates through a bounded buffer per watcher (a slow watcher
//! loses updates, counted, and never grows the server's memory). [`watch`] is the client side:
//! a background thread that connects, follows the stream, and reconnects with backoff.
//!
//! A token is compared in constant time; [`Server::start_secured`] serves over TLS (rustls)
//! and refuses to take a token in clear text beyond loopback unless told to
//! ([`Security::insecure`]); [`watch_target`] trusts a given certificate authority.
//!
//! ```no_run
//! use std::sync::Arc;
//! let hub = Arc::new(observe::Hub::new());
//! let server = observe::Server::start(hub.clone(), "127.0.0.1:0".parse().unwrap(), None)?;
//! let watcher = observe::watch(server.local_addr().to_string(), None);
//! # Ok::<(), observe::ServeError>(())
//! ```

mod client;
mod hub;
mod server;

pub use client::{Command, WatchEvent, WatchTarget, Watcher, watch, watch_target};
pub use hub::{Control, HISTORY_LIMIT_BYTES, Hub, LIVE_BUFFER};
pub use server::{
    DEFAULT_PORT, Security, ServeError, Server, TOKEN_ENV, TlsIdentity, check_exposure,
};

/// An error with its sources, each once (some errors print their source themselves).
pub(crate) fn source_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        // Some errors print their source themselves.
        let part = s.to_string();
        if !text.ends_with(&part) {
            text = format!("{text}: {part}");
        }
        source = s.source();
    }
    text
}
