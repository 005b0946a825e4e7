//! The Observe service over a [`Hub`], with bearer-token checks, TLS and a background runtime.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use proto::v1;
use proto::v1::observe_server::{Observe, ObserveServer};
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status};

use crate::hub::Hub;

/// Where `taskscope top` looks by default, and `--serve` binds.
pub const DEFAULT_PORT: u16 = 7878;

/// The environment variable that holds the token when no `--token` is given.
pub const TOKEN_ENV: &str = "TASKSCOPE_TOKEN";

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(
        "refusing to serve on {0} without a token: anyone who can reach it could watch and pause the cluster; pass --token-file or set {TOKEN_ENV}, or bind 127.0.0.1"
    )]
    NeedsToken(SocketAddr),
    #[error(
        "refusing to serve on {0} without TLS: the token would travel in clear text, readable by anyone on the network path; pass --tls-cert and --tls-key, bind 127.0.0.1, or pass --insecure to accept that"
    )]
    Cleartext(SocketAddr),
    #[error("invalid TLS certificate or key: {0}")]
    Tls(String),
    #[error("cannot listen on {addr}: {cause}")]
    Bind {
        addr: SocketAddr,
        cause: std::io::Error,
    },
}

/// A certificate chain and its private key, both PEM, for serving over TLS.
#[derive(Clone)]
pub struct TlsIdentity {
    pub cert_pem: Vec<u8>,
    pub key_pem: Vec<u8>,
}

/// Who may watch, and how the connection is protected.
#[derive(Clone, Default)]
pub struct Security {
    /// The bearer token every call must carry; `None` (or empty) lets anyone in.
    pub token: Option<String>,
    /// Serve over TLS with this identity.
    pub tls: Option<TlsIdentity>,
    /// Serve a token over plain HTTP/2 beyond loopback anyway (`--insecure`).
    pub insecure: bool,
}

impl Security {
    /// Only a token, without TLS: what serving on loopback needs.
    pub fn token(token: Option<String>) -> Security {
        Security {
            token,
            ..Security::default()
        }
    }

    fn token_bytes(&self) -> Option<&[u8]> {
        self.token
            .as_deref()
            .filter(|t| !t.is_empty())
            .map(str::as_bytes)
    }
}

// By hand: a derived Debug would print the token and the private key.
impl std::fmt::Debug for Security {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Security")
            .field("token", &self.token.as_ref().map(|_| "…"))
            .field("tls", &self.tls.is_some())
            .field("insecure", &self.insecure)
            .finish()
    }
}

/// Binding beyond loopback exposes the cluster: only with a token, and the token only over TLS
/// (or with `insecure`, said explicitly).
pub fn check_exposure(addr: SocketAddr, security: &Security) -> Result<(), ServeError> {
    if addr.ip().is_loopback() {
        return Ok(());
    }
    if security.token_bytes().is_none() {
        return Err(ServeError::NeedsToken(addr));
    }
    if security.tls.is_none() && !security.insecure {
        return Err(ServeError::Cleartext(addr));
    }
    Ok(())
}

/// How long a connection may take over its TLS handshake: a client that connects and says
/// nothing holds a task and a socket until then.
const TLS_HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// A running server; stops when dropped.
pub struct Server {
    local_addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    /// Binds `addr` (errors come back here, not from a background thread) and serves `hub`
    /// over plain HTTP/2, with `token` if given.
    pub fn start(
        hub: Arc<Hub>,
        addr: SocketAddr,
        token: Option<String>,
    ) -> Result<Server, ServeError> {
        Server::start_secured(hub, addr, Security::token(token))
    }

    /// [`Server::start`] with TLS and the other choices of [`Security`].
    pub fn start_secured(
        hub: Arc<Hub>,
        addr: SocketAddr,
        security: Security,
    ) -> Result<Server, ServeError> {
        check_exposure(addr, &security)?;
        let mut builder = tonic::transport::Server::builder();
        if let Some(tls) = &security.tls {
            let identity = tonic::transport::Identity::from_pem(&tls.cert_pem, &tls.key_pem);
            let config = tonic::transport::ServerTlsConfig::new()
                .identity(identity)
                .timeout(TLS_HANDSHAKE_TIMEOUT);
            builder = builder.tls_config(config).map_err(|e| {
                let cause = crate::source_chain(&e);
                let cause = cause.strip_prefix("transport error: ").unwrap_or(&cause);
                ServeError::Tls(cause.to_string())
            })?;
        }
        let token = security.token_bytes().map(<[u8]>::to_vec);
        let listener =
            std::net::TcpListener::bind(addr).map_err(|cause| ServeError::Bind { addr, cause })?;
        let local_addr = listener
            .local_addr()
            .map_err(|cause| ServeError::Bind { addr, cause })?;
        listener
            .set_nonblocking(true)
            .map_err(|cause| ServeError::Bind { addr, cause })?;
        let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("observe-server".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .enable_all()
                    .build()
                    .expect("a tokio runtime");
                runtime.block_on(async move {
                    let listener =
                        tokio::net::TcpListener::from_std(listener).expect("a bound listener");
                    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
                    let service = ObserveServer::with_interceptor(
                        ObserveService { hub },
                        move |request: Request<()>| check_token(token.as_deref(), request),
                    );
                    let serve = builder.add_service(service).serve_with_incoming(incoming);
                    // Not a graceful shutdown: watch streams never end by themselves.
                    tokio::select! {
                        _ = serve => {}
                        _ = stopped => {}
                    }
                });
                // Drops the connections' tasks, closing their sockets.
                runtime.shutdown_timeout(std::time::Duration::from_secs(1));
            })
            .map_err(|cause| ServeError::Bind { addr, cause })?;
        Ok(Server {
            local_addr,
            shutdown: Some(shutdown),
            thread: Some(thread),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn check_token(token: Option<&[u8]>, request: Request<()>) -> Result<Request<()>, Status> {
    let Some(token) = token else {
        return Ok(request);
    };
    let given = request
        .metadata()
        .get("authorization")
        .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "));
    if given.is_some_and(|given| same_token(given, token)) {
        Ok(request)
    } else {
        Err(Status::unauthenticated("missing or wrong token"))
    }
}

/// Compares in time that depends on `given`'s length only: neither how much of a guess is
/// right nor the token's length shows in how long the answer takes.
fn same_token(given: &[u8], token: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    if token.is_empty() {
        return given.is_empty();
    }
    let mut same = given.len().ct_eq(&token.len());
    for (i, byte) in given.iter().enumerate() {
        same &= byte.ct_eq(&token[i % token.len()]);
    }
    same.into()
}

struct ObserveService {
    hub: Arc<Hub>,
}

impl ObserveService {
    fn control(
        &self,
        act: impl FnOnce(&dyn crate::hub::Control) -> bool,
    ) -> Result<Response<v1::PauseResponse>, Status> {
        let control = self
            .hub
            .control()
            .ok_or_else(|| Status::unimplemented("this producer cannot be paused"))?;
        Ok(Response::new(v1::PauseResponse {
            paused: act(control.as_ref()),
        }))
    }
}

type UpdateStream = Pin<Box<dyn Stream<Item = Result<v1::Update, Status>> + Send>>;

#[tonic::async_trait]
impl Observe for ObserveService {
    type WatchStream = UpdateStream;

    async fn watch(
        &self,
        _request: Request<v1::WatchRequest>,
    ) -> Result<Response<UpdateStream>, Status> {
        let snapshot = self
            .hub
            .subscribe()
            .ok_or_else(|| Status::unavailable("the run has not started yet"))?;
        let chunks = snapshot.history.len().max(1);
        let mut header = Some(snapshot.header);
        let history = snapshot.history;
        // A run longer than the history keeps: the snapshot says how much of its start is gone.
        let evicted = snapshot.evicted;
        let snapshot_stream = tokio_stream::iter(0..chunks).map(move |i| {
            let records = match history.get(i) {
                Some(bytes) => <v1::Records as prost::Message>::decode(&bytes[..])
                    .map_err(|e| Status::internal(format!("corrupt history: {e}")))?,
                None => v1::Records::default(),
            };
            Ok(v1::Update {
                dropped: evicted,
                kind: Some(v1::update::Kind::Snapshot(v1::Snapshot {
                    header: header.take(),
                    records: Some(records),
                    last: i + 1 == chunks,
                })),
            })
        });
        let progress = tokio_stream::iter(snapshot.progress.map(|p| Ok((*p).clone())));
        let mut dropped = evicted;
        let live = BroadcastStream::new(snapshot.live).filter_map(move |item| match item {
            Ok(update) => {
                let mut update = (*update).clone();
                update.dropped = dropped;
                Some(Ok(update))
            }
            Err(BroadcastStreamRecvError::Lagged(n)) => {
                dropped += n;
                None
            }
        });
        Ok(Response::new(Box::pin(
            snapshot_stream.chain(progress).chain(live),
        )))
    }

    async fn pause(
        &self,
        _request: Request<v1::PauseRequest>,
    ) -> Result<Response<v1::PauseResponse>, Status> {
        self.control(|c| c.pause())
    }

    async fn resume(
        &self,
        _request: Request<v1::ResumeRequest>,
    ) -> Result<Response<v1::PauseResponse>, Status> {
        self.control(|c| c.resume())
    }
}

#[cfg(test)]
mod tests {
    use super::same_token;

    #[test]
    fn tokens_match_only_whole_and_of_the_same_length() {
        assert!(same_token(b"s3cret", b"s3cret"));
        assert!(!same_token(b"s3cre", b"s3cret"));
        assert!(!same_token(b"s3crets", b"s3cret"));
        // A repetition of the token matches it byte for byte modulo its length: the length
        // check is what refuses it.
        assert!(!same_token(b"s3crets3cret", b"s3cret"));
        assert!(!same_token(b"", b"s3cret"));
        assert!(!same_token(b"S3cret", b"s3cret"));
        assert!(!same_token(b"s3creT", b"s3cret"));
    }
}
