"""The Observe server on its own (no Dask): snapshot chunking, dependency continuations, bounded
queues for slow watchers, and the hand-framed updates against the generated classes."""
from __future__ import annotations

import time

import grpc
import pytest

from taskscope_dask import wire
from taskscope_dask._proto import observe_pb2 as pb
from taskscope_dask._proto import observe_pb2_grpc as pb_grpc
from taskscope_dask.observe import QUEUE_UPDATES, ObserveServer, _History, _Watcher
from taskscope_dask.wire import key_from_pb

HEADER = {
    "kind": "header",
    "format": "taskscope-trace",
    "version": "1.0",
    "producer": "test",
    "origin_unix_ns": 1,
    "cluster": {
        "workers": [{"id": 0, "name": "tcp://127.0.0.1:1", "threads": 2, "memory_limit": 1 << 30}],
        "memory": {"target": 0.6, "spill": 0.7, "pause": 0.8, "terminate": 0.95},
    },
}
LIMIT = 4 * 1024 * 1024


def task(i: int, deps=(), pad: int = 0) -> dict:
    return {
        "kind": "task",
        "key": (f"x-{'0' * pad}", i),
        "group": "x",
        "worker": 0,
        "thread": i % 2,
        "status": "ok",
        "nbytes": 8,
        "deps": list(deps),
        "phases": [{"action": "compute", "start": i, "stop": i + 1}],
    }


def decode(messages: list[pb.Records]) -> list[pb.Task]:
    """Tasks with their continuations joined, as proto::RecordsDecoder does."""
    out: list[pb.Task] = []
    pending = None
    for records in messages:
        for t in records.tasks:
            if pending is not None:
                out.append(pending)
                pending = None
            if t.more_deps_follow:
                pending = t
            else:
                out.append(t)
        for piece in records.more_deps:
            assert pending is not None, "a continuation no task announced"
            assert piece.key == pending.key and piece.attempt == pending.attempt
            pending.deps.extend(piece.deps)
            if piece.last:
                out.append(pending)
                pending = None
    assert pending is None
    return out


@pytest.fixture
def server():
    s = ObserveServer(HEADER, "127.0.0.1", 0, None, pause=lambda p: p, tick=0.05)
    s.start()
    yield s
    s.stop()


def wait_drained(s: ObserveServer):
    deadline = time.time() + 30
    while s._incoming and time.time() < deadline:
        time.sleep(0.02)
    s._drain()


def test_batcher_splits_a_huge_dependency_list():
    batcher = wire.Batcher()
    deps = [(f"input-{'f' * 40}", i) for i in range(100_000)]  # ~6 MB of keys
    batcher.push(task(0))
    batcher.push(task(1, deps))
    batcher.push(task(2))
    taken = batcher.take()
    messages = [pb.Records.FromString(data) for data, _, _ in taken]
    assert len(messages) >= 4
    # The plain task before, then the continuation's messages (open until the last), then the
    # plain task after.
    assert [(c, o) for _, c, o in taken][-2:] == [(True, False), (False, False)]
    assert all(c and o for _, c, o in taken[1:-2])
    assert all(m.ByteSize() <= wire.BATCH_BYTES + 64 * 1024 for m in messages)
    tasks = decode(messages)
    assert [key_from_pb(t.key)[1] for t in tasks] == [0, 1, 2]
    assert [key_from_pb(d) for d in tasks[1].deps] == deps
    assert tasks[1].more_deps_follow


def test_framed_updates_parse_as_the_generated_messages():
    records = pb.Records()
    records.tasks.append(wire.task(task(7)))
    header = wire.header(HEADER).SerializeToString()
    u = pb.Update.FromString(wire.update_snapshot(300, header, records.SerializeToString(), True))
    assert u.dropped == 300 and u.snapshot.last and u.snapshot.header.producer == "test"
    assert key_from_pb(u.snapshot.records.tasks[0].key) == ("x-", 7)
    u = pb.Update.FromString(wire.update_records(0, records.SerializeToString()))
    assert u.WhichOneof("kind") == "records" and u.dropped == 0
    p = pb.Progress(time=5, paused=True)
    u = pb.Update.FromString(wire.update_progress(1, p.SerializeToString()))
    assert u.progress.paused and u.dropped == 1


def test_format_1_1_fields_go_on_the_wire():
    """CPU use, Dask's per-group metrics and a warning's worker and source, as the Rust client
    reads them (proto/tests/batch.rs): a live ``taskscope top`` sees what a replay shows."""
    batcher = wire.Batcher()
    batcher.push(
        {"kind": "memory", "time": 5, "worker": 0, "managed": 1, "unmanaged": 2, "spilled": 3,
         "cpu": 1.5}
    )
    batcher.push({"kind": "memory", "time": 6, "worker": 0, "managed": 1, "unmanaged": 2,
                  "spilled": 3})
    batcher.push(
        {"kind": "event", "time": 7, "type": "warning", "message": "high", "worker": 0,
         "source": "distributed.worker.memory"}
    )
    batcher.push({"kind": "event", "time": 8, "type": "warning", "message": "plain"})
    batcher.push(
        {"kind": "group-metrics", "time": 9, "group": "x",
         "metrics": {"execute/thread-cpu/seconds": 0.5}}
    )
    batcher.seal()
    (data, _, _), = batcher.take()
    records = pb.Records.FromString(data)
    assert records.memory[0].HasField("cpu") and records.memory[0].cpu == 1.5
    assert not records.memory[1].HasField("cpu")
    high, plain = records.events
    assert (high.warning, high.warning_worker, high.warning_source) == (
        "high", 0, "distributed.worker.memory"
    )
    assert high.HasField("warning_worker")
    assert not plain.HasField("warning_worker") and not plain.HasField("warning_source")
    (metrics,) = records.group_metrics
    assert (metrics.time, metrics.group, dict(metrics.metrics)) == (
        9, "x", {"execute/thread-cpu/seconds": 0.5}
    )


def test_keys_round_trip():
    for key in ["a-1", ("a-1", 3), ("a", 1.5, ("b", -2)), ("x", 0, 0)]:
        k = pb.Key()
        wire.set_key(k, key)
        assert key_from_pb(k) == key


def test_snapshot_is_chunked_and_complete(server):
    deps = [(f"input-{'f' * 40}", i) for i in range(60_000)]
    n = 20_000
    for i in range(n):
        server.feed(task(i, pad=100))  # ~200 bytes each: ~4 MB in all
    server.feed(task(n, deps))
    server.feed({"kind": "memory", "time": 5, "worker": 0, "managed": 1, "unmanaged": 2,
                 "spilled": 3})
    server.feed({"kind": "event", "time": 6, "type": "worker-killed", "worker": 0,
                 "reason": "oom"})
    wait_drained(server)
    with grpc.insecure_channel(server.address) as channel:
        stream = pb_grpc.ObserveStub(channel).Watch(pb.WatchRequest())
        snapshot = []
        for update in stream:
            assert update.ByteSize() < LIMIT
            snapshot.append(update)
            if update.snapshot.last:
                break
        stream.cancel()
    assert len(snapshot) >= 4
    assert all(u.WhichOneof("kind") == "snapshot" for u in snapshot)
    assert all(u.ByteSize() <= wire.BATCH_BYTES + 300 * 1024 for u in snapshot)
    assert snapshot[0].snapshot.header.cluster.workers[0].threads == 2
    tasks = decode([u.snapshot.records for u in snapshot])
    assert [key_from_pb(t.key)[1] for t in tasks] == list(range(n + 1))
    assert len(tasks[-1].deps) == len(deps)
    memory = [m for u in snapshot for m in u.snapshot.records.memory]
    events = [e for u in snapshot for e in u.snapshot.records.events]
    assert [(m.managed, m.unmanaged, m.spilled) for m in memory] == [(1, 2, 3)]
    assert events[0].worker_killed.reason == "oom"


def test_slow_watcher_drops_and_counts(server):
    with grpc.insecure_channel(server.address) as channel:
        stream = pb_grpc.ObserveStub(channel).Watch(pb.WatchRequest())
        first = next(stream)  # the (empty) snapshot; then the client stops reading
        assert first.snapshot.last
        produced = 3 * QUEUE_UPDATES
        for i in range(produced):
            server.feed(task(i, pad=20_000))  # one ~20 KB update per drain
            server._drain()
        server.stop()  # ends the stream once what is queued is sent
        rest = list(stream)
    assert all(u.WhichOneof("kind") == "records" for u in rest)
    dropped = [u.dropped for u in rest]
    assert dropped == sorted(dropped), "the dropped count only grows"
    assert dropped[-1] > 0
    assert len(rest) + dropped[-1] == produced


def test_history_evicts_whole_continuations():
    batcher = wire.Batcher()
    batcher.push(task(0, [(f"in-{'f' * 40}", i) for i in range(50_000)]))  # ~2.6 MB
    for i in range(1, 4000):
        batcher.push(task(i, pad=300))  # 1.2 MB: 2 more messages
    history = _History(limit=1)  # keeps only the newest chunk
    taken = batcher.take()
    end = next(i for i, (_, _, o) in enumerate(taken) if not o)
    assert end >= 2 and all(c and o for _, c, o in taken[:end]) and taken[end][1]
    assert not any(c for _, c, _ in taken[end + 1:])
    for data, continued, open_after in taken:
        history.add(data, continued, open_after)
    history._seal()
    chunks = [pb.Records.FromString(c()) for c in history.chunks()]
    assert len(chunks) == 1 and not chunks[0].more_deps
    assert history.evicted == len(taken) - 1
    decode(chunks)  # no orphan continuation


def test_a_dropped_continuation_is_dropped_whole():
    w = _Watcher()
    for i in range(QUEUE_UPDATES):
        w.offer("records", b"x")
    w.offer("records", b"task with more_deps_follow", open_after=True)  # queue full: dropped
    w.next(0)  # room again
    w.offer("records", b"middle piece", open_after=True)
    w.offer("records", b"last piece", open_after=False)
    w.offer("records", b"next")
    assert w.dropped == 3
    items = [w.next(0)[1] for _ in range(QUEUE_UPDATES)]
    assert items[-1] == b"next" and b"last piece" not in items
