"""The native trace's records as typed Python: ``TypedDict`` mirrors of ``traces/src/model.rs``
(format 1.2).

They are plain dicts at run time — what the plugin builds in its hooks and what ``trace.encode``
writes, at no cost over untyped dicts — and mypy checks every field name and type against these
declarations. Field names, optionality and the ``kind`` / ``type`` tags follow the Rust model's
serde attributes: a field the Rust side skips when empty (``inline_bytes`` 0, ``deps`` empty,
``attempt`` 1, ``error`` ``None``) is ``NotRequired`` here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, TypedDict

if TYPE_CHECKING:
    # typing.NotRequired is 3.11+; the annotations are never evaluated at run time.
    from typing_extensions import NotRequired

#: ``TaskStatus`` (``rename_all = "kebab-case"``).
TaskStatus = Literal["ok", "error", "cancelled", "lost"]
#: ``Action``: what a phase of a task attempt did.
Action = Literal["queued", "transfer", "deserialize", "compute", "disk-write", "disk-read"]
#: A Dask key as written: a string, or a (nested) tuple of strings and numbers (a JSON array).
Key = Any
#: ``WorkerId``: the worker's index in the trace, not its address.
WorkerId = int
#: ``Nanos``: nanoseconds since the header's ``origin_unix_ns``.
Nanos = int


class WorkerSpec(TypedDict):
    id: WorkerId
    #: Address or name, e.g. ``tcp://127.0.0.1:39245``.
    name: str
    threads: int
    memory_limit: NotRequired[int]
    resources: NotRequired[dict[str, float]]
    #: The machine it runs on; workers naming the same host share its cores. Since 1.3.
    host: NotRequired[str]
    #: CPU cores of that host, when known. Since 1.3.
    host_cores: NotRequired[int]


class MemoryFractions(TypedDict):
    """Dask's ``distributed.worker.memory.*`` fractions of the memory limit."""

    target: float
    spill: float
    pause: float
    terminate: float


class Cluster(TypedDict):
    workers: list[WorkerSpec]
    memory: MemoryFractions


class Header(TypedDict):
    """Line 1 of every native trace."""

    kind: Literal["header"]
    format: str
    version: str
    producer: str
    origin_unix_ns: int
    cluster: Cluster


class Phase(TypedDict):
    action: Action
    start: Nanos
    stop: Nanos
    #: Bytes moved: transferred, (de)serialized, written to or read from disk.
    bytes: NotRequired[int]
    #: For ``transfer``: the worker the data came from.
    peer: NotRequired[WorkerId]


class TaskRecord(TypedDict):
    """One attempt at running one task."""

    kind: Literal["task"]
    key: Key
    #: Dask's task prefix (``key_split``).
    group: str
    worker: WorkerId
    thread: int
    status: TaskStatus
    nbytes: int
    inline_bytes: NotRequired[int]
    #: Memory the attempt allocated while it ran; Dask does not measure it, so the plugin
    #: never writes it (traces from taskscope's engine do).
    working_bytes: NotRequired[int]
    #: Dask's ``resources=`` restrictions (``ts.resource_restrictions``). Since 1.2.
    resources: NotRequired[dict[str, float]]
    #: Worker ids of a strict ``workers=`` restriction (``ts.worker_restrictions`` without
    #: ``allow_other_workers``). Since 1.2.
    restricted_to: NotRequired[list[WorkerId]]
    deps: NotRequired[list[Key]]
    attempt: NotRequired[int]
    error: NotRequired[str]
    phases: list[Phase]


class MemorySample(TypedDict):
    kind: Literal["memory"]
    time: Nanos
    worker: WorkerId
    managed: int
    unmanaged: int
    spilled: int
    #: Cores the worker process used, from its heartbeat. Since 1.1.
    cpu: NotRequired[float]


class GroupMetrics(TypedDict):
    """Dask's fine performance metrics of one task group, cumulative. Since 1.1."""

    kind: Literal["group-metrics"]
    time: Nanos
    #: Empty for metrics tied to no group (``gather-dep/…``).
    group: str
    metrics: dict[str, float]


# Events: ``Event { time, #[serde(flatten)] kind: EventKind }`` with ``tag = "type"``.


class WorkerAdded(TypedDict):
    kind: Literal["event"]
    time: Nanos
    type: Literal["worker-added"]
    worker: WorkerSpec


class WorkerRemoved(TypedDict):
    kind: Literal["event"]
    time: Nanos
    type: Literal["worker-removed"]
    worker: WorkerId


class WorkerKilled(TypedDict):
    kind: Literal["event"]
    time: Nanos
    type: Literal["worker-killed"]
    worker: WorkerId
    reason: str


class WorkerPaused(TypedDict):
    kind: Literal["event"]
    time: Nanos
    type: Literal["worker-paused"]
    worker: WorkerId


class WorkerResumed(TypedDict):
    kind: Literal["event"]
    time: Nanos
    type: Literal["worker-resumed"]
    worker: WorkerId


class TaskRetried(TypedDict):
    kind: Literal["event"]
    time: Nanos
    type: Literal["task-retried"]
    key: Key
    attempt: int


class GraphSubmitted(TypedDict):
    kind: Literal["event"]
    time: Nanos
    type: Literal["graph-submitted"]
    tasks: int
    client: NotRequired[str]


class DataAdded(TypedDict):
    """Workers held a result no recorded task made (scattered). Since 1.2."""

    kind: Literal["event"]
    time: Nanos
    type: Literal["data-added"]
    key: Key
    workers: list[WorkerId]
    nbytes: int


class Warning(TypedDict):
    kind: Literal["event"]
    time: Nanos
    type: Literal["warning"]
    message: str
    #: The worker it came from (1.1).
    worker: NotRequired[WorkerId]
    #: The logger that wrote it, e.g. ``distributed.worker.memory`` (1.1).
    source: NotRequired[str]


Event = (
    WorkerAdded
    | WorkerRemoved
    | WorkerKilled
    | WorkerPaused
    | WorkerResumed
    | TaskRetried
    | GraphSubmitted
    | DataAdded
    | Warning
)

#: Everything after the header.
Record = TaskRecord | MemorySample | Event | GroupMetrics
