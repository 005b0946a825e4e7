"""The Observe gRPC served by the plugin, watched with the generated Python stubs."""
from __future__ import annotations

import threading
import time

import grpc
import pytest

from conftest import cluster

from taskscope_dask import TaskscopePlugin
from taskscope_dask._proto import observe_pb2 as pb
from taskscope_dask._proto import observe_pb2_grpc as pb_grpc
from taskscope_dask.observe import free_port
from taskscope_dask.wire import key_from_pb


def inc(x):
    return x + 1


def slow_inc(x):
    time.sleep(0.05)
    return x + 1


class Watch:
    """A Watch stream read on a background thread."""

    def __init__(self, address: str, metadata=()):
        self.channel = grpc.insecure_channel(address)
        self.stub = pb_grpc.ObserveStub(self.channel)
        self.updates: list[pb.Update] = []
        self.error: grpc.RpcError | None = None
        self.call = self.stub.Watch(pb.WatchRequest(), metadata=metadata)
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        try:
            for update in self.call:
                self.updates.append(update)
        except grpc.RpcError as e:
            if e.code() != grpc.StatusCode.CANCELLED:
                self.error = e

    def tasks(self) -> list[pb.Task]:
        out = []
        for u in list(self.updates):
            kind = u.WhichOneof("kind")
            if kind == "snapshot":
                out.extend(u.snapshot.records.tasks)
            elif kind == "records":
                out.extend(u.records.tasks)
        return out

    def wait_for(self, predicate, timeout=20.0):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.error is not None:
                raise self.error
            if predicate(self):
                return
            time.sleep(0.05)
        raise AssertionError(f"timed out; {len(self.updates)} updates received")

    def close(self):
        self.call.cancel()
        self.thread.join(timeout=5)
        self.channel.close()


def test_watch_a_live_run(tmp_path):
    port = free_port()
    with cluster() as (_, client):
        client.register_plugin(TaskscopePlugin(path=str(tmp_path / "run.ndjson"), serve=port))
        address = f"127.0.0.1:{port}"
        early = Watch(address)
        try:
            early.wait_for(lambda w: len(w.updates) >= 1)
            first = early.updates[0]
            assert first.WhichOneof("kind") == "snapshot"
            assert first.snapshot.last
            assert first.snapshot.header.producer.startswith("dask ")
            assert len(first.snapshot.header.cluster.workers) == 2
            assert first.snapshot.header.cluster.memory.pause == pytest.approx(0.8)

            futures = client.map(slow_inc, range(40))
            assert sum(client.gather(futures)) == sum(range(1, 41))
            early.wait_for(lambda w: len({key_from_pb(t.key) for t in w.tasks()}) >= 40)
            live = [u for u in early.updates[1:] if u.WhichOneof("kind") == "records"]
            assert live, "no live record updates"
            tasks = early.tasks()
            assert {key_from_pb(t.key) for t in tasks} == {f.key for f in futures}
            assert all(t.group == "slow_inc" and t.status == pb.TASK_STATUS_OK for t in tasks)
            assert all(t.attempt == 1 for t in tasks)
            assert all(any(p.action == pb.ACTION_COMPUTE for p in t.phases) for t in tasks)
            # Progress arrives a few times a second while someone watches.
            early.wait_for(lambda w: any(u.WhichOneof("kind") == "progress" for u in w.updates))
            events = [e for u in early.updates if u.WhichOneof("kind") == "records"
                      for e in u.records.events]
            assert any(e.WhichOneof("kind") == "graph_submitted" for e in events)

            # A watcher joining now gets the same tasks in its snapshot, then nothing twice.
            late = Watch(address)
            try:
                late.wait_for(lambda w: any(
                    u.WhichOneof("kind") == "snapshot" and u.snapshot.last for u in w.updates))
                snapshot = [u for u in late.updates if u.WhichOneof("kind") == "snapshot"]
                assert snapshot[0].snapshot.HasField("header")
                assert all(not u.snapshot.HasField("header") for u in snapshot[1:])
                keys = [key_from_pb(t.key) for u in snapshot for t in u.snapshot.records.tasks]
                assert sorted(keys, key=str) == sorted((f.key for f in futures), key=str)
                assert all(u.dropped == 0 for u in late.updates)
            finally:
                late.close()
        finally:
            early.close()
        assert early.error is None


def test_progress_and_running_tasks():
    port = free_port()
    with cluster() as (_, client):
        client.register_plugin(TaskscopePlugin(serve=port, progress_interval=0.1))
        watch = Watch(f"127.0.0.1:{port}")
        try:
            futures = client.map(time.sleep, [0.3] * 8, pure=False)

            def saw_running(w):
                return any(
                    u.WhichOneof("kind") == "progress" and len(u.progress.running) > 0
                    for u in w.updates
                )

            watch.wait_for(saw_running)
            client.gather(futures)
            progress = [u.progress for u in watch.updates if u.WhichOneof("kind") == "progress"]
            running = [r for p in progress for r in p.running]
            assert {r.group for r in running} == {"sleep"}
            assert all(r.worker in (0, 1) for r in running)
            groups = [g for p in progress for g in p.groups if g.name == "sleep"]
            assert groups and max(g.waiting + g.running + g.done for g in groups) == 8
            assert not any(p.paused for p in progress)
        finally:
            watch.close()


def test_pause_holds_new_tasks_until_resume():
    port = free_port()
    with cluster() as (_, client):
        client.register_plugin(TaskscopePlugin(serve=port))
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = pb_grpc.ObserveStub(channel)
            assert stub.Pause(pb.PauseRequest()).paused is True
            futures = client.map(inc, range(10))
            time.sleep(1.0)
            assert not any(f.done() for f in futures), "tasks ran while paused"
            assert stub.Resume(pb.ResumeRequest()).paused is False
            assert client.gather(futures) == list(range(1, 11))


def test_token_accepted_or_refused():
    port = free_port()
    token = "s3cret-token"
    with cluster(n_workers=1) as (_, client):
        client.register_plugin(TaskscopePlugin(serve=f"127.0.0.1:{port}", token=token))
        address = f"127.0.0.1:{port}"
        for metadata in [(), (("authorization", "Bearer wrong"),), (("authorization", token),)]:
            with grpc.insecure_channel(address) as channel:
                stub = pb_grpc.ObserveStub(channel)
                with pytest.raises(grpc.RpcError) as refused:
                    next(iter(stub.Watch(pb.WatchRequest(), metadata=metadata)))
                assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
                assert refused.value.details() == "missing or wrong token"
                with pytest.raises(grpc.RpcError) as refused:
                    stub.Pause(pb.PauseRequest(), metadata=metadata)
                assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
        good = (("authorization", f"Bearer {token}"),)
        with grpc.insecure_channel(address) as channel:
            stub = pb_grpc.ObserveStub(channel)
            first = next(iter(stub.Watch(pb.WatchRequest(), metadata=good)))
            assert first.snapshot.header.producer.startswith("dask ")
            assert stub.Resume(pb.ResumeRequest(), metadata=good).paused is False


def test_non_loopback_address_needs_a_token_and_tls(monkeypatch):
    monkeypatch.delenv("TASKSCOPE_TOKEN", raising=False)
    with cluster(n_workers=0, processes=False) as (_, client):
        with pytest.raises(Exception, match="without a token"):
            client.register_plugin(TaskscopePlugin(serve="0.0.0.0:0"))
        # With a token but no TLS, the token would travel in clear text: refused unless said.
        with pytest.raises(Exception, match="without TLS"):
            client.register_plugin(TaskscopePlugin(serve="0.0.0.0:0", token="t"))
        # Said, it binds (every interface, an ephemeral port).
        client.register_plugin(TaskscopePlugin(serve="0.0.0.0:0", token="t", insecure=True))


def test_malformed_serve_address_fails_on_the_client():
    with pytest.raises(ValueError, match="port"):
        TaskscopePlugin(serve="127.0.0.1:http")
    with pytest.raises(ValueError, match="trace path"):
        TaskscopePlugin()


def test_registering_again_replaces_the_plugin(tmp_path):
    """A second registration (a notebook cell run twice) closes the first one's file and port."""
    from conftest import info

    port = free_port()
    path = tmp_path / "run.ndjson"
    with cluster(n_workers=1) as (_, client):
        client.register_plugin(TaskscopePlugin(path=str(path), serve=port))
        client.gather(client.map(inc, range(10)))
        client.register_plugin(TaskscopePlugin(path=str(path), serve=port))
        client.gather(client.map(inc, range(100, 120)))
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            first = next(iter(pb_grpc.ObserveStub(channel).Watch(pb.WatchRequest())))
            assert first.WhichOneof("kind") == "snapshot"
    assert info(path)["tasks"]["ok"] == 20
