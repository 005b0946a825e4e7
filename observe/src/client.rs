//! Watching a server from a background thread: connect, follow the stream, reconnect with
//! backoff. The thread hands [`WatchEvent`]s over a bounded channel: a consumer that falls
//! behind stops the reading, and the server then drops (and counts) updates for it.

use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::time::Duration;

use proto::v1::observe_client::ObserveClient;
use proto::{RecordsDecoder, v1};
use tonic::metadata::MetadataValue;
use tonic::transport::{Channel, Endpoint};
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

/// The consumer's end of a watch.
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

/// Starts watching `addr` (`host:port`, or a `http://` URL) in a background thread.
pub fn watch(addr: String, token: Option<String>) -> Watcher {
    let (tx, events) = sync_channel(EVENT_BUFFER);
    let (commands, command_rx) = tokio::sync::mpsc::unbounded_channel();
    std::thread::Builder::new()
        .name("observe-client".into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a tokio runtime");
            runtime.block_on(follow(addr, token, tx, command_rx));
        })
        .expect("spawning the watch thread");
    Watcher { events, commands }
}

fn endpoint(addr: &str) -> Result<Endpoint, String> {
    let url = if addr.contains("://") {
        addr.to_string()
    } else {
        format!("http://{addr}")
    };
    Endpoint::from_shared(url.clone())
        .map(|e| e.connect_timeout(Duration::from_secs(3)))
        .map_err(|e| format!("invalid address {addr:?}: {e}"))
}

/// Hands an event to the consumer; `false` once it is gone. Blocking the connection's runtime
/// while the consumer is behind is the point: the stream stops being read, and the server
/// drops (and counts) updates instead of anyone buffering them.
async fn emit(tx: &SyncSender<WatchEvent>, event: WatchEvent) -> bool {
    tx.send(event).is_ok()
}

async fn follow(
    addr: String,
    token: Option<String>,
    tx: SyncSender<WatchEvent>,
    mut commands: tokio::sync::mpsc::UnboundedReceiver<Command>,
) {
    let endpoint = match endpoint(&addr) {
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
    let mut backoff = FIRST_BACKOFF;
    loop {
        let error = match endpoint.connect().await {
            Ok(channel) => {
                let mut client =
                    ObserveClient::new(channel).max_decoding_message_size(proto::MAX_MESSAGE_BYTES);
                match session(&mut client, &tx, &mut commands, &with_auth, &mut backoff).await {
                    Ok(()) => return,
                    Err(status) if status.code() == Code::Unauthenticated => {
                        let _ = tx.send(WatchEvent::Fatal(format!(
                            "{addr}: unauthenticated: {}",
                            status.message()
                        )));
                        return;
                    }
                    Err(status) => describe(&status),
                }
            }
            Err(e) => format!("cannot connect to {addr}: {}", source_chain(&e)),
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

fn describe(status: &tonic::Status) -> String {
    match status.code() {
        Code::Unavailable | Code::Unknown | Code::Cancelled => {
            format!("connection lost: {}", status.message())
        }
        code => format!("{code:?}: {}", status.message()),
    }
}

fn source_chain(e: &dyn std::error::Error) -> String {
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

/// One connection. `Ok` only when the consumer went away; an error when the stream ended
/// or failed (the server stopping ends it).
async fn session(
    client: &mut ObserveClient<Channel>,
    tx: &SyncSender<WatchEvent>,
    commands: &mut tokio::sync::mpsc::UnboundedReceiver<Command>,
    with_auth: &impl Fn(Request<()>) -> Request<()>,
    backoff: &mut Duration,
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
                for event in events_of(update, &mut decoder, &mut dropped)? {
                    if !emit(tx, event).await {
                        return Ok(());
                    }
                }
            }
            Some(command) = commands.recv() => {
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
