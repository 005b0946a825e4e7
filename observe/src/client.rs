//! Watching a server from a background thread: connect, follow the stream, reconnect with
//! backoff. The thread hands [`WatchEvent`]s over a bounded channel: a consumer that falls
//! behind stops the reading, and the server then drops (and counts) updates for it.

use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::time::Duration;

use proto::v1::observe_client::ObserveClient;
use proto::{RecordsDecoder, v1};
use tonic::metadata::MetadataValue;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use tonic::{Code, Request};
use traces::{Header, LiveState, Record};

/// Events a watcher holds before the connection thread waits for the consumer.
const EVENT_BUFFER: usize = 64;

/// The first wait before reconnecting; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

#[derive(Debug)]
pub enum WatchEvent {
    /// A (new) snapshot starts: forget what the previous connection said.
    Reset(Header),
    Records(Vec<Record>),
    /// The snapshot is complete; what follows is live.
    Live,
    Progress(LiveState),
    /// Updates the server dropped for this connection so far (sent when it changes).
    Dropped(u64),
    /// The connection failed or ended; the next attempt is in `retry_in`.
    Disconnected {
        error: String,
        retry_in: Duration,
    },
    /// The answer to a [`Command`].
    Paused(bool),
    /// A failure retrying cannot fix (the token is refused); the thread stops.
    Fatal(String),
    /// A command failed; the connection goes on.
    CommandFailed(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    Pause,
    Resume,
}

/// The consumer's end of a watch; dropping it closes the connection.
pub struct Watcher {
    events: Receiver<WatchEvent>,
    commands: tokio::sync::mpsc::UnboundedSender<Command>,
}

impl Watcher {
    /// Waits up to `timeout` for the next event.
    pub fn next_timeout(&self, timeout: Duration) -> Option<WatchEvent> {
        self.events.recv_timeout(timeout).ok()
    }

    pub fn send(&self, command: Command) {
        let _ = self.commands.send(command);
    }
}

/// A server to watch, and what to present and trust on the way.
#[derive(Clone, Default)]
pub struct WatchTarget {
    /// `host:port`, or an `http://` or `https://` URL.
    pub addr: String,
    /// Sent as `authorization: Bearer TOKEN`.
    pub token: Option<String>,
    /// PEM certificates that may sign the server's TLS certificate; given, the connection is
    /// TLS (`https://`) whatever `addr` says about it without a scheme.
    pub tls_ca: Option<Vec<u8>>,
}

// By hand: a derived Debug would print the token.
impl std::fmt::Debug for WatchTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WatchTarget")
            .field("addr", &self.addr)
            .field("token", &self.token.as_ref().map(|_| "…"))
            .field("tls_ca", &self.tls_ca.is_some())
            .finish()
    }
}

/// Starts watching `addr` (`host:port`, or a `http://` URL) in a background thread.
pub fn watch(addr: String, token: Option<String>) -> Watcher {
    watch_target(WatchTarget {
        addr,
        token,
        tls_ca: None,
    })
}

/// [`watch`] over TLS too.
pub fn watch_target(target: WatchTarget) -> Watcher {
    let (tx, events) = sync_channel(EVENT_BUFFER);
    let (commands, command_rx) = tokio::sync::mpsc::unbounded_channel();
    std::thread::Builder::new()
        .name("observe-client".into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a tokio runtime");
            runtime.block_on(follow(target, tx, command_rx));
        })
        .expect("spawning the watch thread");
    Watcher { events, commands }
}

fn endpoint(target: &WatchTarget) -> Result<Endpoint, String> {
    let addr = &target.addr;
    let url = match addr.split_once("://") {
        Some(("http", _)) if target.tls_ca.is_some() => {
            return Err(format!(
                "{addr}: an http:// address is plain HTTP/2, but a TLS certificate authority is given; write https://"
            ));
        }
        Some(("http" | "https", _)) => addr.clone(),
        Some((scheme, _)) => {
            return Err(format!(
                "invalid address {addr:?}: expected HOST:PORT, http:// or https://, not {scheme}://"
            ));
        }
        None if target.tls_ca.is_some() => format!("https://{addr}"),
        None => format!("http://{addr}"),
    };
    let mut endpoint = Endpoint::from_shared(url)
        .map(|e| e.connect_timeout(Duration::from_secs(3)))
        .map_err(|e| format!("invalid address {addr:?}: {e}"))?;
    if endpoint.uri().scheme_str() == Some("https") {
        let mut tls = ClientTlsConfig::new();
        if let Some(ca) = &target.tls_ca {
            tls = tls.ca_certificate(Certificate::from_pem(ca));
        }
        endpoint = endpoint
            .tls_config(tls)
            .map_err(|e| format!("{addr}: {}", crate::source_chain(&e)))?;
    }
    Ok(endpoint)
}

/// Hands an event to the consumer; `false` once it is gone. Blocking the connection's runtime
/// while the consumer is behind is the point: the stream stops being read, and the server
/// drops (and counts) updates instead of anyone buffering them.
async fn emit(tx: &SyncSender<WatchEvent>, event: WatchEvent) -> bool {
    tx.send(event).is_ok()
}

async fn follow(
    target: WatchTarget,
    tx: SyncSender<WatchEvent>,
    mut commands: tokio::sync::mpsc::UnboundedReceiver<Command>,
) {
    let addr = target.addr.clone();
    let token = target.token.clone();
    let endpoint = match endpoint(&target) {
        Ok(e) => e,
        Err(e) => {
            let _ = tx.send(WatchEvent::Fatal(e));
            return;
        }
    };
    let auth: Option<MetadataValue<_>> =
        match token.as_deref().map(|t| format!("Bearer {t}").parse()) {
            Some(Ok(v)) => Some(v),
            Some(Err(_)) => {
                let _ = tx.send(WatchEvent::Fatal(
                    "the token is not valid in a header".into(),
                ));
                return;
            }
            None => None,
        };
    let with_auth = |mut request: Request<_>| {
        if let Some(auth) = &auth {
            request.metadata_mut().insert("authorization", auth.clone());
        }
        request
    };
    let tls = endpoint.uri().scheme_str() == Some("https");
    let mut backoff = FIRST_BACKOFF;
    loop {
        let error = match endpoint.connect().await {
            Ok(channel) => {
                let mut client =
                    ObserveClient::new(channel).max_decoding_message_size(proto::MAX_MESSAGE_BYTES);
                let mut answered = false;
                let result = session(
                    &mut client,
                    &tx,
                    &mut commands,
                    &with_auth,
                    &mut backoff,
                    &mut answered,
                )
                .await;
                match result {
                    Ok(()) => return,
                    Err(status) if status.code() == Code::Unauthenticated => {
                        let _ = tx.send(WatchEvent::Fatal(format!(
                            "{addr}: unauthenticated: {}",
                            status.message()
                        )));
                        return;
                    }
                    Err(status) if !answered && !tls && closed_at_once(&status) => {
                        // What a plain HTTP/2 client gets from a TLS server.
                        format!(
                            "{}; if the server serves TLS, write https://{} and pass --tls-ca",
                            describe(&status),
                            addr.trim_start_matches("http://")
                        )
                    }
                    Err(status) => describe(&status),
                }
            }
            Err(e) => {
                let cause = crate::source_chain(&e);
                match tls_hint(&cause) {
                    // Retrying cannot make an untrusted certificate trusted.
                    Some(hint) if cause.contains(UNTRUSTED) => {
                        let _ = tx.send(WatchEvent::Fatal(format!(
                            "cannot connect to {addr}: {cause}; {hint}"
                        )));
                        return;
                    }
                    Some(hint) => format!("cannot connect to {addr}: {cause}; {hint}"),
                    None => format!("cannot connect to {addr}: {cause}"),
                }
            }
        };
        if !emit(
            &tx,
            WatchEvent::Disconnected {
                error,
                retry_in: backoff,
            },
        )
        .await
        {
            return;
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
        // A pause asked for while disconnected must not reach the next cluster unasked.
        while let Ok(command) = commands.try_recv() {
            let failed = WatchEvent::CommandFailed(format!("{command:?}: not connected"));
            if !emit(&tx, failed).await {
                return;
            }
        }
    }
}

/// A connection that failed before any answer, as a TLS server ends a plain HTTP/2 one: closed
/// (`transport error`), or an alert read as a malformed frame (`h2 protocol error`).
fn closed_at_once(status: &tonic::Status) -> bool {
    let message = status.message();
    message == "transport error" || message.starts_with("h2 protocol error")
}

/// How rustls says the server's certificate is not signed by anyone trusted.
const UNTRUSTED: &str = "invalid peer certificate";

/// What to do about a TLS failure, when `cause` is one.
fn tls_hint(cause: &str) -> Option<&'static str> {
    if cause.contains("CaUsedAsEndEntity") {
        Some(
            "the server presents a CA certificate as its own: serve a certificate that CA signed, or one made with CA:FALSE",
        )
    } else if cause.contains(UNTRUSTED) {
        Some(
            "the server's TLS certificate is not trusted: pass --tls-ca with it or with the CA that signed it",
        )
    } else if cause.contains("InvalidContentType") {
        Some("the server does not speak TLS: write http:// (or no scheme) and drop --tls-ca")
    } else {
        None
    }
}

fn describe(status: &tonic::Status) -> String {
    match status.code() {
        Code::Unavailable | Code::Unknown | Code::Cancelled => {
            format!("connection lost: {}", status.message())
        }
        code => format!("{code:?}: {}", status.message()),
    }
}

/// One connection. `Ok` only when the consumer went away; an error when the stream ended
/// or failed (the server stopping ends it).
async fn session(
    client: &mut ObserveClient<Channel>,
    tx: &SyncSender<WatchEvent>,
    commands: &mut tokio::sync::mpsc::UnboundedReceiver<Command>,
    with_auth: &impl Fn(Request<()>) -> Request<()>,
    backoff: &mut Duration,
    answered: &mut bool,
) -> Result<(), tonic::Status> {
    let request = with_auth(Request::new(())).map(|()| v1::WatchRequest {});
    let mut stream = client.watch(request).await?.into_inner();
    let mut decoder = RecordsDecoder::new();
    let mut dropped = 0;
    loop {
        tokio::select! {
            message = stream.message() => {
                let Some(update) = message? else {
                    return Err(tonic::Status::unavailable("the server ended the stream"));
                };
                // A message arrived: the connection works; the next failure starts afresh.
                *backoff = FIRST_BACKOFF;
                *answered = true;
                for event in events_of(update, &mut decoder, &mut dropped)? {
                    if !emit(tx, event).await {
                        return Ok(());
                    }
                }
            }
            command = commands.recv() => {
                // The `Watcher` is gone: close the connection now, not at the next update
                // (a finished run sends none).
                let Some(command) = command else {
                    return Ok(());
                };
                let request = with_auth(Request::new(()));
                let answer = match command {
                    Command::Pause => client.pause(request.map(|()| v1::PauseRequest {})).await,
                    Command::Resume => client.resume(request.map(|()| v1::ResumeRequest {})).await,
                };
                let event = match answer {
                    Ok(response) => WatchEvent::Paused(response.into_inner().paused),
                    Err(status) => WatchEvent::CommandFailed(format!("{command:?}: {}", status.message())),
                };
                if !emit(tx, event).await {
                    return Ok(());
                }
            }
        }
    }
}

fn events_of(
    update: v1::Update,
    decoder: &mut RecordsDecoder,
    dropped: &mut u64,
) -> Result<Vec<WatchEvent>, tonic::Status> {
    let invalid = |e: proto::InvalidMessage| tonic::Status::data_loss(e.to_string());
    let mut events = Vec::new();
    if update.dropped != *dropped {
        *dropped = update.dropped;
        events.push(WatchEvent::Dropped(update.dropped));
    }
    match update.kind {
        Some(v1::update::Kind::Snapshot(snapshot)) => {
            if let Some(header) = &snapshot.header {
                *decoder = RecordsDecoder::new();
                events.push(WatchEvent::Reset(header.into()));
            }
            let mut records = Vec::new();
            if let Some(r) = &snapshot.records {
                decoder
                    .decode(r, |record| records.push(record))
                    .map_err(invalid)?;
            }
            if !records.is_empty() {
                events.push(WatchEvent::Records(records));
            }
            if snapshot.last {
                events.push(WatchEvent::Live);
            }
        }
        Some(v1::update::Kind::Records(r)) => {
            let mut records = Vec::new();
            decoder
                .decode(&r, |record| records.push(record))
                .map_err(invalid)?;
            if !records.is_empty() {
                events.push(WatchEvent::Records(records));
            }
        }
        Some(v1::update::Kind::Progress(p)) => {
            events.push(WatchEvent::Progress((&p).try_into().map_err(invalid)?));
        }
        None => {}
    }
    Ok(events)
}
