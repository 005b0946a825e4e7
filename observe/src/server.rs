//! The Observe service over a [`Hub`], with bearer-token checks and a background runtime.

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
        "refusing to serve on {0} without a token: anyone who can reach it could watch and pause the cluster; pass --token or set {TOKEN_ENV}, or bind 127.0.0.1"
    )]
    NeedsToken(SocketAddr),
    #[error("cannot listen on {addr}: {cause}")]
    Bind {
        addr: SocketAddr,
        cause: std::io::Error,
    },
}

/// Binding beyond loopback exposes the cluster: only with a token.
pub fn check_exposure(addr: SocketAddr, token: Option<&str>) -> Result<(), ServeError> {
    if addr.ip().is_loopback() || token.is_some_and(|t| !t.is_empty()) {
        Ok(())
    } else {
        Err(ServeError::NeedsToken(addr))
    }
}

/// A running server; stops when dropped.
pub struct Server {
    local_addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    /// Binds `addr` (errors come back here, not from a background thread) and serves `hub`.
    pub fn start(
        hub: Arc<Hub>,
        addr: SocketAddr,
        token: Option<String>,
    ) -> Result<Server, ServeError> {
        check_exposure(addr, token.as_deref())?;
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
                    let serve = tonic::transport::Server::builder()
                        .add_service(service)
                        .serve_with_incoming(incoming);
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

fn check_token(token: Option<&str>, request: Request<()>) -> Result<Request<()>, Status> {
    let Some(token) = token else {
        return Ok(request);
    };
    let given = request
        .metadata()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if given == Some(token) {
        Ok(request)
    } else {
        Err(Status::unauthenticated("missing or wrong token"))
    }
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
