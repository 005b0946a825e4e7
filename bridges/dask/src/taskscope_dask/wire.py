"""Trace records (the dicts written to the native trace) as Observe gRPC messages, packed into
``Records`` batches that stay far below gRPC's 4 MB message limit.

Mirrors the Rust side (``proto/src/convert.rs`` and ``proto/src/batch.rs``): a batch holds about
1 MiB; a task whose encoding is over 256 KiB (a reduction reading a million inputs) is sent
without its dependencies, flagged ``more_deps_follow``, and the dependencies follow in
``Records.more_deps`` pieces of about 256 KiB, the last one flagged ``last``; such a
continuation ends its message.

Updates are framed here as bytes, so one serialized batch is shared by every watcher and by the
snapshot history: protobuf's encoding of an embedded message is its tag, its length and its
bytes, whatever the enclosing message.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ._proto import observe_pb2 as pb
from .records import Event, GroupMetrics, Header, MemorySample, Record, TaskRecord, WorkerSpec

#: What one ``Records`` message holds (``proto::BATCH_BYTES``).
BATCH_BYTES = 1024 * 1024
#: A task encoded larger than this sends its dependencies separately, in pieces this big.
DEPS_PIECE_BYTES = BATCH_BYTES // 4
#: Tag and length prefix of a repeated element.
FIELD_OVERHEAD = 1 + 5
#: Error messages are cut to this many bytes on the wire (``proto::MAX_ERROR_BYTES``).
MAX_ERROR_BYTES = 64 * 1024

_STATUS = {
    "ok": pb.TASK_STATUS_OK,
    "error": pb.TASK_STATUS_ERROR,
    "cancelled": pb.TASK_STATUS_CANCELLED,
    "lost": pb.TASK_STATUS_LOST,
}
_ACTION = {
    "queued": pb.ACTION_QUEUED,
    "transfer": pb.ACTION_TRANSFER,
    "deserialize": pb.ACTION_DESERIALIZE,
    "compute": pb.ACTION_COMPUTE,
    "disk-write": pb.ACTION_DISK_WRITE,
    "disk-read": pb.ACTION_DISK_READ,
}


def set_key(out: pb.Key, key: Any) -> None:
    """Fills ``out`` with a Dask key: a string, or a (nested) tuple of str / int / float."""
    if isinstance(key, tuple):
        _set_tuple(out.tuple, key)
    elif isinstance(key, bytes):
        out.str = key.decode("utf-8", "replace")
    else:
        out.str = key if isinstance(key, str) else str(key)


def _set_tuple(out: pb.KeyTuple, parts: tuple[Any, ...]) -> None:
    for part in parts:
        p = out.parts.add()
        if isinstance(part, str):
            p.str = part
        elif isinstance(part, bool) or not isinstance(part, (int, float, tuple)):
            p.str = part.decode("utf-8", "replace") if isinstance(part, bytes) else str(part)
        elif isinstance(part, int):
            p.int = part
        elif isinstance(part, float):
            p.float = part
        else:
            _set_tuple(p.tuple, part)


def key_from_pb(key: pb.Key) -> Any:
    """The Python value of a wire key (strings, ints, floats and tuples)."""
    if key.WhichOneof("kind") == "tuple":
        return _tuple_from_pb(key.tuple)
    return key.str


def _tuple_from_pb(t: pb.KeyTuple) -> tuple[Any, ...]:
    out: list[Any] = []
    for part in t.parts:
        kind = part.WhichOneof("kind")
        out.append(_tuple_from_pb(part.tuple) if kind == "tuple" else getattr(part, kind))
    return tuple(out)


def worker_spec(out: pb.WorkerSpec, spec: WorkerSpec) -> None:
    out.id = spec["id"]
    out.name = spec["name"]
    out.threads = spec["threads"]
    if spec.get("memory_limit") is not None:
        out.memory_limit = spec["memory_limit"]
    for name, amount in spec.get("resources", {}).items():
        out.resources[name] = float(amount)
    if "host" in spec:
        out.host = spec["host"]
    if "host_cores" in spec:
        out.host_cores = spec["host_cores"]


def header(h: Header) -> pb.Header:
    out = pb.Header(producer=h["producer"], origin_unix_ns=h["origin_unix_ns"])
    for spec in h["cluster"]["workers"]:
        worker_spec(out.cluster.workers.add(), spec)
    m = h["cluster"]["memory"]
    out.cluster.memory.CopyFrom(
        pb.MemoryFractions(
            target=m["target"], spill=m["spill"], pause=m["pause"], terminate=m["terminate"]
        )
    )
    return out


def task(rec: TaskRecord) -> pb.Task:
    out = pb.Task(
        group=rec["group"],
        worker=rec["worker"],
        thread=rec.get("thread", 0),
        status=_STATUS[rec.get("status", "ok")],
        nbytes=rec.get("nbytes", 0),
        inline_bytes=rec.get("inline_bytes", 0),
        working_bytes=rec.get("working_bytes", 0),
        attempt=rec.get("attempt", 1),
    )
    for name, amount in rec.get("resources", {}).items():
        out.resources[name] = amount
    out.restricted_to.extend(rec.get("restricted_to", ()))
    set_key(out.key, rec["key"])
    for dep in rec.get("deps", ()):
        set_key(out.deps.add(), dep)
    error = rec.get("error")
    if error is not None:
        raw = error.encode("utf-8")
        if len(raw) > MAX_ERROR_BYTES:
            error = raw[:MAX_ERROR_BYTES].decode("utf-8", "ignore")
        out.error = error
    for p in rec["phases"]:
        phase = out.phases.add(action=_ACTION[p["action"]], start=p["start"], stop=p["stop"])
        if "bytes" in p:
            phase.bytes = p["bytes"]
        if "peer" in p:
            phase.peer = p["peer"]
    return out


def memory(rec: MemorySample) -> pb.MemorySample:
    out = pb.MemorySample(
        time=rec["time"],
        worker=rec["worker"],
        managed=rec["managed"],
        unmanaged=rec.get("unmanaged", 0),
        spilled=rec.get("spilled", 0),
    )
    cpu = rec.get("cpu")
    if cpu is not None:
        out.cpu = cpu
    return out


def group_metrics(rec: GroupMetrics) -> pb.GroupMetrics:
    return pb.GroupMetrics(time=rec["time"], group=rec["group"], metrics=rec["metrics"])


def event(rec: Event) -> pb.Event:
    out = pb.Event(time=rec["time"])
    if rec["type"] == "worker-added":
        worker_spec(out.worker_added, rec["worker"])
    elif rec["type"] == "worker-removed":
        out.worker_removed = rec["worker"]
    elif rec["type"] == "worker-killed":
        out.worker_killed.worker = rec["worker"]
        out.worker_killed.reason = rec.get("reason", "")
    elif rec["type"] == "worker-paused":
        out.worker_paused = rec["worker"]
    elif rec["type"] == "worker-resumed":
        out.worker_resumed = rec["worker"]
    elif rec["type"] == "task-retried":
        set_key(out.task_retried.key, rec["key"])
        out.task_retried.attempt = rec["attempt"]
    elif rec["type"] == "graph-submitted":
        out.graph_submitted.tasks = rec["tasks"]
        client = rec.get("client")
        if client is not None:
            out.graph_submitted.client = client
    elif rec["type"] == "data-added":
        set_key(out.data_added.key, rec["key"])
        out.data_added.workers.extend(rec["workers"])
        out.data_added.nbytes = rec["nbytes"]
    elif rec["type"] == "warning":
        out.warning = rec["message"]
        # Beside the oneof (see the schema): older clients still read the message.
        worker = rec.get("worker")
        if worker is not None:
            out.warning_worker = worker
        source = rec.get("source")
        if source is not None:
            out.warning_source = source
    else:
        raise ValueError(f"unknown event type {rec['type']!r}")
    return out


class Batcher:
    """Packs records into serialized ``Records`` messages of at most ``budget`` bytes (plus one
    element). :meth:`take` returns ``(bytes, continued, open)`` triples: ``continued`` marks a
    message holding part of a dependency continuation, which must not be merged with another;
    ``open``, one whose continuation goes on in the next message."""

    def __init__(self, budget: int = BATCH_BYTES):
        self.budget = budget
        self._current = pb.Records()
        self._size = 0
        self._continued = False
        self._open = False
        self._full: list[tuple[bytes, bool, bool]] = []

    def push(self, rec: Record) -> None:
        if rec["kind"] == "task":
            self._push_task(task(rec))
        elif rec["kind"] == "memory":
            sample = memory(rec)
            self._make_room(sample.ByteSize() + FIELD_OVERHEAD)
            self._current.memory.append(sample)
        elif rec["kind"] == "event":
            msg = event(rec)
            self._make_room(msg.ByteSize() + FIELD_OVERHEAD)
            self._current.events.append(msg)
        elif rec["kind"] == "group-metrics":
            metrics = group_metrics(rec)
            self._make_room(metrics.ByteSize() + FIELD_OVERHEAD)
            self._current.group_metrics.append(metrics)

    def extend(self, records: Iterable[Record]) -> None:
        for rec in records:
            self.push(rec)

    def _push_task(self, t: pb.Task) -> None:
        size = t.ByteSize() + FIELD_OVERHEAD
        if size <= min(DEPS_PIECE_BYTES, self.budget):
            self._make_room(size)
            self._current.tasks.append(t)
            return
        deps = list(t.deps)
        del t.deps[:]
        t.more_deps_follow = True
        self._make_room(t.ByteSize() + FIELD_OVERHEAD)
        self._current.tasks.append(t)
        self._continued = self._open = True
        base = pb.TaskDeps(key=t.key, attempt=t.attempt).ByteSize() + FIELD_OVERHEAD
        piece = pb.TaskDeps(key=t.key, attempt=t.attempt)
        piece_size = base
        for i, dep in enumerate(deps):
            piece.deps.append(dep)
            piece_size += dep.ByteSize() + FIELD_OVERHEAD
            last = i + 1 == len(deps)
            if piece_size >= DEPS_PIECE_BYTES or last:
                piece.last = last
                self._make_room(piece_size)
                self._current.more_deps.append(piece)
                self._continued = True
                self._open = not last
                piece = pb.TaskDeps(key=t.key, attempt=t.attempt)
                piece_size = base
        if not deps:
            piece.last = True
            self._current.more_deps.append(piece)
        self._open = False
        self.seal()

    def _make_room(self, size: int) -> None:
        if self._size > 0 and self._size + size > self.budget:
            self.seal()
        self._size += size

    def seal(self) -> None:
        """Ends the current message."""
        if self._size > 0 or len(self._current.more_deps):
            self._full.append((self._current.SerializeToString(), self._continued, self._open))
            self._current = pb.Records()
            self._size = 0
            self._continued = self._open

    def take(self) -> list[tuple[bytes, bool, bool]]:
        """Every message, the current one included."""
        self.seal()
        full, self._full = self._full, []
        return full


# --- Update framing -------------------------------------------------------------------------


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _dropped(dropped: int) -> bytes:
    return b"\x08" + _varint(dropped) if dropped else b""


def update_records(dropped: int, records: bytes) -> bytes:
    """``Update{dropped, records}`` from a serialized ``Records``."""
    return _dropped(dropped) + _field(3, records)


def update_progress(dropped: int, progress: bytes) -> bytes:
    """``Update{dropped, progress}`` from a serialized ``Progress``."""
    return _dropped(dropped) + _field(4, progress)


def update_snapshot(dropped: int, header: bytes | None, records: bytes, last: bool) -> bytes:
    """``Update{dropped, snapshot: Snapshot{header, records, last}}`` from serialized parts."""
    snapshot = (_field(1, header) if header is not None else b"") + _field(2, records)
    if last:
        snapshot += b"\x18\x01"
    return _dropped(dropped) + _field(2, snapshot)
