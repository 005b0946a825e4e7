//! A real server and client over loopback TCP.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use observe::{
    Command, Control, Hub, Security, Server, TlsIdentity, WatchEvent, WatchTarget, Watcher,
};
use prost::Message;
use proto::v1;
use proto::v1::observe_client::ObserveClient;
use traces::{
    Action, Cluster, Event, EventKind, Header, Key, KeyPart, MemorySample, Phase, Record,
    RecordSink, TaskRecordRef, TaskStatus, WorkerSpec,
};

fn header() -> Header {
    Header::new(
        "test",
        1_700_000_000_000_000_000,
        Cluster {
            workers: vec![WorkerSpec {
                id: 0,
                name: "w0".into(),
                threads: 2,
                memory_limit: Some(1 << 30),
                resources: Default::default(),
                host: None,
                host_cores: None,
            }],
            memory: Default::default(),
        },
    )
}

fn feed_tasks(hub: &Hub, from: u64, n: u64) {
    let name: Arc<str> = Arc::from("inc-0a1b2c3d");
    let dep = Key::Tuple(vec![KeyPart::Str(name.clone()), KeyPart::Int(-1)]);
    let deps = [&dep];
    for i in from..from + n {
        let key = Key::Tuple(vec![KeyPart::Str(name.clone()), KeyPart::Int(i as i64)]);
        let phases = [
            Phase {
                action: Action::Queued,
                start: i * 10,
                stop: i * 10 + 3,
                bytes: None,
                peer: None,
            },
            Phase {
                action: Action::Compute,
                start: i * 10 + 3,
                stop: i * 10 + 9,
                bytes: None,
                peer: None,
            },
        ];
        hub.task(&TaskRecordRef {
            key: &key,
            group: "inc",
            worker: 0,
            thread: (i % 2) as u32,
            status: TaskStatus::Ok,
            nbytes: 28,
            inline_bytes: 0,
            working_bytes: 0,
            resources: &Default::default(),
            restricted_to: &[],
            deps: &deps,
            attempt: 1,
            error: None,
            phases: &phases,
        });
    }
    hub.flush();
}

fn start(hub: &Arc<Hub>, token: Option<&str>) -> Server {
    Server::start(
        hub.clone(),
        "127.0.0.1:0".parse().unwrap(),
        token.map(String::from),
    )
    .unwrap()
}

/// Waits for the first event `pick` accepts, failing after 20 s.
fn wait_for<T>(watcher: &Watcher, mut pick: impl FnMut(WatchEvent) -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while std::time::Instant::now() < deadline {
        if let Some(event) = watcher.next_timeout(Duration::from_millis(100))
            && let Some(found) = pick(event)
        {
            return found;
        }
    }
    panic!("timed out waiting for an event");
}

#[test]
fn a_snapshot_of_a_million_tasks_comes_in_messages_under_4_mb() {
    let hub = Arc::new(Hub::new());
    hub.header(&header());
    feed_tasks(&hub, 0, 1_000_000);
    let server = start(&hub, None);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (tasks, sizes) = runtime.block_on(async {
        let mut client = ObserveClient::connect(format!("http://{}", server.local_addr()))
            .await
            .unwrap();
        let mut stream = client
            .watch(v1::WatchRequest {})
            .await
            .unwrap()
            .into_inner();
        let (mut tasks, mut sizes) = (0usize, Vec::new());
        while let Some(update) = stream.message().await.unwrap() {
            sizes.push(update.encoded_len());
            let Some(v1::update::Kind::Snapshot(snapshot)) = update.kind else {
                panic!("not a snapshot")
            };
            tasks += snapshot.records.unwrap().tasks.len();
            if snapshot.last {
                break;
            }
        }
        (tasks, sizes)
    });
    assert_eq!(tasks, 1_000_000);
    let max = *sizes.iter().max().unwrap();
    assert!(max < 4 * 1024 * 1024, "largest message: {max} bytes");
    assert!(sizes.len() >= 50, "{} messages", sizes.len());
    // ~100 bytes a task held for snapshots.
    let per_task = hub.history_bytes() / 1_000_000;
    assert!((40..=150).contains(&per_task), "{per_task} bytes per task");
}

#[test]
fn the_watcher_gets_the_snapshot_then_live_records_and_progress() {
    let hub = Arc::new(Hub::new());
    hub.header(&header());
    feed_tasks(&hub, 0, 10);
    let server = start(&hub, None);
    let watcher = observe::watch(server.local_addr().to_string(), None);
    let reset = wait_for(&watcher, |e| match e {
        WatchEvent::Reset(h) => Some(h),
        _ => None,
    });
    assert_eq!(reset, header());
    let mut snapshot = 0;
    wait_for(&watcher, |e| match e {
        WatchEvent::Records(r) => {
            snapshot += r.len();
            None
        }
        WatchEvent::Live => Some(()),
        _ => None,
    });
    assert_eq!(snapshot, 10);

    feed_tasks(&hub, 10, 5);
    hub.memory(&MemorySample {
        time: 7,
        worker: 0,
        managed: 1,
        unmanaged: 2,
        spilled: 3,
        cpu: None,
    });
    hub.event(&Event {
        time: 8,
        kind: EventKind::WorkerPaused { worker: 0 },
    });
    hub.flush();
    let live = wait_for(&watcher, |e| match e {
        WatchEvent::Records(r) => Some(r),
        _ => None,
    });
    assert_eq!(live.len(), 5);
    let more = wait_for(&watcher, |e| match e {
        WatchEvent::Records(r) => Some(r),
        _ => None,
    });
    assert_eq!(
        more,
        vec![
            Record::Memory(MemorySample {
                time: 7,
                worker: 0,
                managed: 1,
                unmanaged: 2,
                spilled: 3,
                cpu: None,
            }),
            Record::Event(Event {
                time: 8,
                kind: EventKind::WorkerPaused { worker: 0 }
            }),
        ]
    );

    let state = traces::LiveState {
        time: 99,
        paused: false,
        groups: vec![traces::GroupState {
            name: "inc".into(),
            waiting: 3,
            running: 2,
            done: 15,
            erred: 0,
            dependencies: vec![],
        }],
        running: vec![],
    };
    hub.publish_progress(&state);
    let got = wait_for(&watcher, |e| match e {
        WatchEvent::Progress(p) => Some(p),
        _ => None,
    });
    assert_eq!(got, state);
}

/// Format 1.1's records and fields, as a Dask plugin records them.
fn format_1_1_records(time: u64) -> Vec<Record> {
    vec![
        Record::Memory(MemorySample {
            time,
            worker: 0,
            managed: 10,
            unmanaged: 20,
            spilled: 0,
            cpu: Some(1.75),
        }),
        Record::Event(Event {
            time: time + 1,
            kind: EventKind::Warning {
                message: "Unmanaged memory use is high".into(),
                worker: Some(0),
                source: Some("distributed.worker.memory".into()),
            },
        }),
        Record::Event(Event {
            time: time + 2,
            kind: EventKind::Warning {
                message: "from the producer".into(),
                worker: None,
                source: None,
            },
        }),
        Record::GroupMetrics(traces::GroupMetrics {
            time: time + 3,
            group: "inc".into(),
            metrics: [
                ("execute/thread-cpu/seconds".to_string(), 1.25),
                ("execute/thread-noncpu/seconds".to_string(), 0.5),
            ]
            .into(),
        }),
    ]
}

fn publish(hub: &Hub, records: &[Record]) {
    for record in records {
        match record {
            Record::Memory(sample) => hub.memory(sample),
            Record::Event(event) => hub.event(event),
            Record::GroupMetrics(metrics) => hub.group_metrics(metrics),
            Record::Task(_) => unreachable!("tasks go through feed_tasks"),
        }
    }
    hub.flush();
}

#[test]
fn format_1_1_fields_reach_the_watcher_as_recorded() {
    // CPU use, Dask's per-group metrics and where a warning came from: a live `top` sees what
    // a replay of the trace shows, in the snapshot and live alike.
    let hub = Arc::new(Hub::new());
    hub.header(&header());
    let before = format_1_1_records(100);
    publish(&hub, &before);
    let server = start(&hub, None);
    let watcher = observe::watch(server.local_addr().to_string(), None);
    let mut snapshot = Vec::new();
    wait_for(&watcher, |e| match e {
        WatchEvent::Records(r) => {
            snapshot.extend(r);
            None
        }
        WatchEvent::Live => Some(()),
        _ => None,
    });
    assert_eq!(snapshot, before);
    let after = format_1_1_records(200);
    publish(&hub, &after);
    let live = wait_for(&watcher, |e| match e {
        WatchEvent::Records(r) => Some(r),
        _ => None,
    });
    assert_eq!(live, after);
}

#[test]
fn a_token_is_required_when_set_and_checked() {
    let hub = Arc::new(Hub::new());
    hub.header(&header());
    let server = start(&hub, Some("s3cret"));
    let addr = server.local_addr().to_string();

    let refused = observe::watch(addr.clone(), None);
    let error = wait_for(&refused, |e| match e {
        WatchEvent::Fatal(m) => Some(m),
        _ => None,
    });
    assert_eq!(
        error,
        format!("{addr}: unauthenticated: missing or wrong token")
    );

    let wrong = observe::watch(addr.clone(), Some("guess".into()));
    let error = wait_for(&wrong, |e| match e {
        WatchEvent::Fatal(m) => Some(m),
        _ => None,
    });
    assert_eq!(
        error,
        format!("{addr}: unauthenticated: missing or wrong token")
    );

    let accepted = observe::watch(addr, Some("s3cret".into()));
    wait_for(&accepted, |e| matches!(e, WatchEvent::Live).then_some(()));
}

#[test]
fn serving_beyond_loopback_needs_a_token() {
    let hub = Arc::new(Hub::new());
    let err = Server::start(hub.clone(), "0.0.0.0:0".parse().unwrap(), None)
        .err()
        .unwrap();
    assert_eq!(
        err.to_string(),
        "refusing to serve on 0.0.0.0:0 without a token: anyone who can reach it could watch and pause the cluster; pass --token-file or set TASKSCOPE_TOKEN, or bind 127.0.0.1"
    );
}

#[test]
fn a_token_beyond_loopback_needs_tls_or_insecure() {
    let hub = Arc::new(Hub::new());
    let err = Server::start(hub.clone(), "0.0.0.0:0".parse().unwrap(), Some("t".into()))
        .err()
        .unwrap();
    assert_eq!(
        err.to_string(),
        "refusing to serve on 0.0.0.0:0 without TLS: the token would travel in clear text, readable by anyone on the network path; pass --tls-cert and --tls-key, bind 127.0.0.1, or pass --insecure to accept that"
    );
    // Checked before binding: nothing is listening for either.
    let insecure = Security {
        token: Some("t".into()),
        insecure: true,
        ..Security::default()
    };
    assert!(observe::check_exposure("0.0.0.0:0".parse().unwrap(), &insecure).is_ok());
    let (tls, _) = self_signed();
    let with_tls = Security {
        token: Some("t".into()),
        tls: Some(tls),
        ..Security::default()
    };
    assert!(observe::check_exposure("0.0.0.0:0".parse().unwrap(), &with_tls).is_ok());
    // Debug output keeps the secrets.
    let shown = format!("{with_tls:?}");
    assert!(
        !shown.contains("PRIVATE KEY") && !shown.contains("\"t\""),
        "{shown}"
    );
}

/// A certificate for 127.0.0.1 and localhost, signed by itself, and its PEM.
fn self_signed() -> (TlsIdentity, Vec<u8>) {
    let certified =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .unwrap();
    let cert_pem = certified.cert.pem().into_bytes();
    let identity = TlsIdentity {
        cert_pem: cert_pem.clone(),
        key_pem: certified.signing_key.serialize_pem().into_bytes(),
    };
    (identity, cert_pem)
}

#[test]
fn tls_serves_whoever_trusts_its_certificate() {
    let hub = Arc::new(Hub::new());
    hub.header(&header());
    let (identity, ca) = self_signed();
    let security = Security {
        token: Some("s3cret".into()),
        tls: Some(identity),
        insecure: false,
    };
    let server = Server::start_secured(hub, "127.0.0.1:0".parse().unwrap(), security).unwrap();
    let port = server.local_addr().port();

    let trusted = observe::watch_target(WatchTarget {
        addr: format!("127.0.0.1:{port}"),
        token: Some("s3cret".into()),
        tls_ca: Some(ca.clone()),
    });
    wait_for(&trusted, |e| matches!(e, WatchEvent::Live).then_some(()));
    // By name too: the certificate names both.
    let by_name = observe::watch_target(WatchTarget {
        addr: format!("https://localhost:{port}"),
        token: Some("s3cret".into()),
        tls_ca: Some(ca.clone()),
    });
    wait_for(&by_name, |e| matches!(e, WatchEvent::Live).then_some(()));

    // Without the certificate, nothing to retry: the certificate will not become trusted.
    let untrusting = observe::watch_target(WatchTarget {
        addr: format!("https://127.0.0.1:{port}"),
        token: Some("s3cret".into()),
        tls_ca: None,
    });
    let error = wait_for(&untrusting, |e| match e {
        WatchEvent::Fatal(m) => Some(m),
        _ => None,
    });
    assert!(
        error.contains("invalid peer certificate: UnknownIssuer; the server's TLS certificate is not trusted: pass --tls-ca"),
        "{error}"
    );

    // Plain HTTP/2 to a TLS server: a hint, and retries (it may be a plain server restarting).
    let plain = observe::watch(format!("127.0.0.1:{port}"), Some("s3cret".into()));
    let error = wait_for(&plain, |e| match e {
        WatchEvent::Disconnected { error, .. } => Some(error),
        _ => None,
    });
    assert!(
        error.ends_with(&format!(
            "if the server serves TLS, write https://127.0.0.1:{port} and pass --tls-ca"
        )),
        "{error}"
    );

    // The token is still checked over TLS.
    let wrong = observe::watch_target(WatchTarget {
        addr: format!("127.0.0.1:{port}"),
        token: Some("guess".into()),
        tls_ca: Some(ca),
    });
    let error = wait_for(&wrong, |e| match e {
        WatchEvent::Fatal(m) => Some(m),
        _ => None,
    });
    assert!(
        error.ends_with("unauthenticated: missing or wrong token"),
        "{error}"
    );
}

#[test]
fn a_mismatched_key_is_refused_before_serving() {
    let (mut identity, _) = self_signed();
    let (other, _) = self_signed();
    identity.key_pem = other.key_pem;
    let security = Security {
        tls: Some(identity),
        ..Security::default()
    };
    let err = Server::start_secured(
        Arc::new(Hub::new()),
        "127.0.0.1:0".parse().unwrap(),
        security,
    )
    .err()
    .unwrap();
    assert_eq!(
        err.to_string(),
        "invalid TLS certificate or key: keys may not be consistent: KeyMismatch"
    );
}

#[test]
fn a_stalled_client_loses_updates_and_is_told_how_many() {
    let hub = Arc::new(Hub::new());
    hub.header(&header());
    let server = start(&hub, None);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let mut client = ObserveClient::connect(format!("http://{}", server.local_addr()))
            .await
            .unwrap();
        let mut stream = client
            .watch(v1::WatchRequest {})
            .await
            .unwrap()
            .into_inner();
        let first = stream.message().await.unwrap().unwrap();
        assert!(matches!(
            first.kind,
            Some(v1::update::Kind::Snapshot(v1::Snapshot { last: true, .. }))
        ));
        // The client reads nothing while 5,000 updates of ~10 KB go out: far more than the
        // buffer and the transport's windows hold.
        let published = 5_000u64;
        let hub2 = hub.clone();
        tokio::task::spawn_blocking(move || {
            for i in 0..published {
                feed_tasks(&hub2, i * 100, 100);
            }
        })
        .await
        .unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut received = 0u64;
        let mut last_dropped = 0;
        // A marker after the stall carries the final count.
        let hub3 = hub.clone();
        tokio::task::spawn_blocking(move || {
            hub3.event(&Event {
                time: 1,
                kind: EventKind::Warning {
                    message: "marker".into(),
                    worker: None,
                    source: None,
                },
            });
            hub3.flush();
        })
        .await
        .unwrap();
        loop {
            let update = stream.message().await.unwrap().unwrap();
            assert!(update.dropped >= last_dropped, "the count never goes down");
            last_dropped = update.dropped;
            received += 1;
            let Some(v1::update::Kind::Records(records)) = update.kind else {
                continue;
            };
            if records
                .events
                .iter()
                .any(|e| matches!(&e.kind, Some(v1::event::Kind::Warning(m)) if m == "marker"))
            {
                break;
            }
        }
        assert!(last_dropped > 0, "nothing was dropped");
        assert_eq!(
            received + last_dropped,
            published + 1,
            "every update is received or counted"
        );
    });
}

struct Switch(AtomicBool);

impl Control for Switch {
    fn pause(&self) -> bool {
        self.0.store(true, Ordering::SeqCst);
        true
    }
    fn resume(&self) -> bool {
        self.0.store(false, Ordering::SeqCst);
        false
    }
}

#[test]
fn pause_and_resume_reach_the_producer() {
    let hub = Arc::new(Hub::new());
    hub.header(&header());
    let server = start(&hub, None);
    let watcher = observe::watch(server.local_addr().to_string(), None);
    wait_for(&watcher, |e| matches!(e, WatchEvent::Live).then_some(()));
    watcher.send(Command::Pause);
    let failed = wait_for(&watcher, |e| match e {
        WatchEvent::CommandFailed(m) => Some(m),
        _ => None,
    });
    assert_eq!(failed, "Pause: this producer cannot be paused");

    let switch = Arc::new(Switch(AtomicBool::new(false)));
    hub.set_control(switch.clone());
    watcher.send(Command::Pause);
    assert!(wait_for(&watcher, |e| match e {
        WatchEvent::Paused(p) => Some(p),
        _ => None,
    }));
    assert!(switch.0.load(Ordering::SeqCst));
    watcher.send(Command::Resume);
    assert!(!wait_for(&watcher, |e| match e {
        WatchEvent::Paused(p) => Some(p),
        _ => None,
    }));
}

#[test]
fn dropping_a_watcher_closes_its_stream_even_when_nothing_is_sent() {
    let hub = Arc::new(Hub::new());
    hub.header(&header());
    feed_tasks(&hub, 0, 3);
    let server = start(&hub, None);
    let watcher = observe::watch(server.local_addr().to_string(), None);
    wait_for(&watcher, |e| matches!(e, WatchEvent::Live).then_some(()));
    assert_eq!(hub.watchers(), 1);
    // A finished run publishes nothing more: the client learns it is dropped from its own
    // command channel closing, not from a failed hand-over of the next update.
    drop(watcher);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while hub.watchers() > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the stream stayed open"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_watcher_reconnects_after_the_server_restarts() {
    let hub = Arc::new(Hub::new());
    hub.header(&header());
    feed_tasks(&hub, 0, 3);
    let server = start(&hub, None);
    let addr = server.local_addr();
    let watcher = observe::watch(addr.to_string(), None);
    wait_for(&watcher, |e| matches!(e, WatchEvent::Live).then_some(()));
    drop(server);
    let error = wait_for(&watcher, |e| match e {
        WatchEvent::Disconnected { error, .. } => Some(error),
        _ => None,
    });
    assert!(
        error.starts_with("connection lost") || error.starts_with("cannot connect"),
        "{error}"
    );
    // A pause asked for while nobody is there is refused, not kept for the next cluster.
    watcher.send(Command::Pause);
    let failed = wait_for(&watcher, |e| match e {
        WatchEvent::CommandFailed(m) => Some(m),
        _ => None,
    });
    assert_eq!(failed, "Pause: not connected");

    let hub = Arc::new(Hub::new());
    hub.header(&header());
    feed_tasks(&hub, 0, 7);
    let _server = Server::start(hub, addr, None).unwrap();
    wait_for(&watcher, |e| {
        matches!(e, WatchEvent::Reset(_)).then_some(())
    });
    let records = wait_for(&watcher, |e| match e {
        WatchEvent::Records(r) => Some(r),
        _ => None,
    });
    assert_eq!(records.len(), 7);
}

#[test]
fn a_run_longer_than_the_history_keeps_its_end_and_says_what_is_gone() {
    let hub = Arc::new(Hub::with_history_limit(100_000));
    hub.header(&header());
    for i in 0..100 {
        feed_tasks(&hub, i * 100, 100);
    }
    assert!(hub.history_bytes() <= 100_000);
    let server = start(&hub, None);
    let watcher = observe::watch(server.local_addr().to_string(), None);
    let dropped = wait_for(&watcher, |e| match e {
        WatchEvent::Dropped(n) => Some(n),
        _ => None,
    });
    let mut tasks = 0;
    wait_for(&watcher, |e| match e {
        WatchEvent::Records(r) => {
            tasks += r.len() as u64;
            None
        }
        WatchEvent::Live => Some(()),
        _ => None,
    });
    // Each flush of 100 tasks was one batch: what is kept and what is gone add up.
    assert!(dropped > 0);
    assert_eq!(tasks + dropped * 100, 10_000);
}
