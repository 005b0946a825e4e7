from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TaskStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TASK_STATUS_OK: _ClassVar[TaskStatus]
    TASK_STATUS_ERROR: _ClassVar[TaskStatus]
    TASK_STATUS_CANCELLED: _ClassVar[TaskStatus]
    TASK_STATUS_LOST: _ClassVar[TaskStatus]

class Action(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ACTION_QUEUED: _ClassVar[Action]
    ACTION_TRANSFER: _ClassVar[Action]
    ACTION_DESERIALIZE: _ClassVar[Action]
    ACTION_COMPUTE: _ClassVar[Action]
    ACTION_DISK_WRITE: _ClassVar[Action]
    ACTION_DISK_READ: _ClassVar[Action]
TASK_STATUS_OK: TaskStatus
TASK_STATUS_ERROR: TaskStatus
TASK_STATUS_CANCELLED: TaskStatus
TASK_STATUS_LOST: TaskStatus
ACTION_QUEUED: Action
ACTION_TRANSFER: Action
ACTION_DESERIALIZE: Action
ACTION_COMPUTE: Action
ACTION_DISK_WRITE: Action
ACTION_DISK_READ: Action

class WatchRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class PauseRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ResumeRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class PauseResponse(_message.Message):
    __slots__ = ("paused",)
    PAUSED_FIELD_NUMBER: _ClassVar[int]
    paused: bool
    def __init__(self, paused: _Optional[bool] = ...) -> None: ...

class Update(_message.Message):
    __slots__ = ("dropped", "snapshot", "records", "progress")
    DROPPED_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    dropped: int
    snapshot: Snapshot
    records: Records
    progress: Progress
    def __init__(self, dropped: _Optional[int] = ..., snapshot: _Optional[_Union[Snapshot, _Mapping]] = ..., records: _Optional[_Union[Records, _Mapping]] = ..., progress: _Optional[_Union[Progress, _Mapping]] = ...) -> None: ...

class Snapshot(_message.Message):
    __slots__ = ("header", "records", "last")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    LAST_FIELD_NUMBER: _ClassVar[int]
    header: Header
    records: Records
    last: bool
    def __init__(self, header: _Optional[_Union[Header, _Mapping]] = ..., records: _Optional[_Union[Records, _Mapping]] = ..., last: _Optional[bool] = ...) -> None: ...

class Records(_message.Message):
    __slots__ = ("tasks", "memory", "events", "more_deps", "group_metrics")
    TASKS_FIELD_NUMBER: _ClassVar[int]
    MEMORY_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    MORE_DEPS_FIELD_NUMBER: _ClassVar[int]
    GROUP_METRICS_FIELD_NUMBER: _ClassVar[int]
    tasks: _containers.RepeatedCompositeFieldContainer[Task]
    memory: _containers.RepeatedCompositeFieldContainer[MemorySample]
    events: _containers.RepeatedCompositeFieldContainer[Event]
    more_deps: _containers.RepeatedCompositeFieldContainer[TaskDeps]
    group_metrics: _containers.RepeatedCompositeFieldContainer[GroupMetrics]
    def __init__(self, tasks: _Optional[_Iterable[_Union[Task, _Mapping]]] = ..., memory: _Optional[_Iterable[_Union[MemorySample, _Mapping]]] = ..., events: _Optional[_Iterable[_Union[Event, _Mapping]]] = ..., more_deps: _Optional[_Iterable[_Union[TaskDeps, _Mapping]]] = ..., group_metrics: _Optional[_Iterable[_Union[GroupMetrics, _Mapping]]] = ...) -> None: ...

class Header(_message.Message):
    __slots__ = ("producer", "origin_unix_ns", "cluster")
    PRODUCER_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_UNIX_NS_FIELD_NUMBER: _ClassVar[int]
    CLUSTER_FIELD_NUMBER: _ClassVar[int]
    producer: str
    origin_unix_ns: int
    cluster: Cluster
    def __init__(self, producer: _Optional[str] = ..., origin_unix_ns: _Optional[int] = ..., cluster: _Optional[_Union[Cluster, _Mapping]] = ...) -> None: ...

class Cluster(_message.Message):
    __slots__ = ("workers", "memory")
    WORKERS_FIELD_NUMBER: _ClassVar[int]
    MEMORY_FIELD_NUMBER: _ClassVar[int]
    workers: _containers.RepeatedCompositeFieldContainer[WorkerSpec]
    memory: MemoryFractions
    def __init__(self, workers: _Optional[_Iterable[_Union[WorkerSpec, _Mapping]]] = ..., memory: _Optional[_Union[MemoryFractions, _Mapping]] = ...) -> None: ...

class WorkerSpec(_message.Message):
    __slots__ = ("id", "name", "threads", "memory_limit", "resources", "host", "host_cores")
    class ResourcesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    THREADS_FIELD_NUMBER: _ClassVar[int]
    MEMORY_LIMIT_FIELD_NUMBER: _ClassVar[int]
    RESOURCES_FIELD_NUMBER: _ClassVar[int]
    HOST_FIELD_NUMBER: _ClassVar[int]
    HOST_CORES_FIELD_NUMBER: _ClassVar[int]
    id: int
    name: str
    threads: int
    memory_limit: int
    resources: _containers.ScalarMap[str, float]
    host: str
    host_cores: int
    def __init__(self, id: _Optional[int] = ..., name: _Optional[str] = ..., threads: _Optional[int] = ..., memory_limit: _Optional[int] = ..., resources: _Optional[_Mapping[str, float]] = ..., host: _Optional[str] = ..., host_cores: _Optional[int] = ...) -> None: ...

class MemoryFractions(_message.Message):
    __slots__ = ("target", "spill", "pause", "terminate")
    TARGET_FIELD_NUMBER: _ClassVar[int]
    SPILL_FIELD_NUMBER: _ClassVar[int]
    PAUSE_FIELD_NUMBER: _ClassVar[int]
    TERMINATE_FIELD_NUMBER: _ClassVar[int]
    target: float
    spill: float
    pause: float
    terminate: float
    def __init__(self, target: _Optional[float] = ..., spill: _Optional[float] = ..., pause: _Optional[float] = ..., terminate: _Optional[float] = ...) -> None: ...

class Key(_message.Message):
    __slots__ = ("str", "tuple")
    STR_FIELD_NUMBER: _ClassVar[int]
    TUPLE_FIELD_NUMBER: _ClassVar[int]
    str: str
    tuple: KeyTuple
    def __init__(self, str: _Optional[str] = ..., tuple: _Optional[_Union[KeyTuple, _Mapping]] = ...) -> None: ...

class KeyTuple(_message.Message):
    __slots__ = ("parts",)
    PARTS_FIELD_NUMBER: _ClassVar[int]
    parts: _containers.RepeatedCompositeFieldContainer[KeyPart]
    def __init__(self, parts: _Optional[_Iterable[_Union[KeyPart, _Mapping]]] = ...) -> None: ...

class KeyPart(_message.Message):
    __slots__ = ("str", "int", "float", "tuple")
    STR_FIELD_NUMBER: _ClassVar[int]
    INT_FIELD_NUMBER: _ClassVar[int]
    FLOAT_FIELD_NUMBER: _ClassVar[int]
    TUPLE_FIELD_NUMBER: _ClassVar[int]
    str: str
    int: int
    float: float
    tuple: KeyTuple
    def __init__(self, str: _Optional[str] = ..., int: _Optional[int] = ..., float: _Optional[float] = ..., tuple: _Optional[_Union[KeyTuple, _Mapping]] = ...) -> None: ...

class Task(_message.Message):
    __slots__ = ("key", "group", "worker", "thread", "status", "nbytes", "inline_bytes", "deps", "attempt", "error", "phases", "more_deps_follow", "working_bytes", "resources", "restricted_to")
    class ResourcesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    KEY_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    WORKER_FIELD_NUMBER: _ClassVar[int]
    THREAD_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    NBYTES_FIELD_NUMBER: _ClassVar[int]
    INLINE_BYTES_FIELD_NUMBER: _ClassVar[int]
    DEPS_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    PHASES_FIELD_NUMBER: _ClassVar[int]
    MORE_DEPS_FOLLOW_FIELD_NUMBER: _ClassVar[int]
    WORKING_BYTES_FIELD_NUMBER: _ClassVar[int]
    RESOURCES_FIELD_NUMBER: _ClassVar[int]
    RESTRICTED_TO_FIELD_NUMBER: _ClassVar[int]
    key: Key
    group: str
    worker: int
    thread: int
    status: TaskStatus
    nbytes: int
    inline_bytes: int
    deps: _containers.RepeatedCompositeFieldContainer[Key]
    attempt: int
    error: str
    phases: _containers.RepeatedCompositeFieldContainer[Phase]
    more_deps_follow: bool
    working_bytes: int
    resources: _containers.ScalarMap[str, float]
    restricted_to: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, key: _Optional[_Union[Key, _Mapping]] = ..., group: _Optional[str] = ..., worker: _Optional[int] = ..., thread: _Optional[int] = ..., status: _Optional[_Union[TaskStatus, str]] = ..., nbytes: _Optional[int] = ..., inline_bytes: _Optional[int] = ..., deps: _Optional[_Iterable[_Union[Key, _Mapping]]] = ..., attempt: _Optional[int] = ..., error: _Optional[str] = ..., phases: _Optional[_Iterable[_Union[Phase, _Mapping]]] = ..., more_deps_follow: _Optional[bool] = ..., working_bytes: _Optional[int] = ..., resources: _Optional[_Mapping[str, float]] = ..., restricted_to: _Optional[_Iterable[int]] = ...) -> None: ...

class TaskDeps(_message.Message):
    __slots__ = ("key", "attempt", "deps", "last")
    KEY_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    DEPS_FIELD_NUMBER: _ClassVar[int]
    LAST_FIELD_NUMBER: _ClassVar[int]
    key: Key
    attempt: int
    deps: _containers.RepeatedCompositeFieldContainer[Key]
    last: bool
    def __init__(self, key: _Optional[_Union[Key, _Mapping]] = ..., attempt: _Optional[int] = ..., deps: _Optional[_Iterable[_Union[Key, _Mapping]]] = ..., last: _Optional[bool] = ...) -> None: ...

class Phase(_message.Message):
    __slots__ = ("action", "start", "stop", "bytes", "peer")
    ACTION_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    STOP_FIELD_NUMBER: _ClassVar[int]
    BYTES_FIELD_NUMBER: _ClassVar[int]
    PEER_FIELD_NUMBER: _ClassVar[int]
    action: Action
    start: int
    stop: int
    bytes: int
    peer: int
    def __init__(self, action: _Optional[_Union[Action, str]] = ..., start: _Optional[int] = ..., stop: _Optional[int] = ..., bytes: _Optional[int] = ..., peer: _Optional[int] = ...) -> None: ...

class MemorySample(_message.Message):
    __slots__ = ("time", "worker", "managed", "unmanaged", "spilled", "cpu")
    TIME_FIELD_NUMBER: _ClassVar[int]
    WORKER_FIELD_NUMBER: _ClassVar[int]
    MANAGED_FIELD_NUMBER: _ClassVar[int]
    UNMANAGED_FIELD_NUMBER: _ClassVar[int]
    SPILLED_FIELD_NUMBER: _ClassVar[int]
    CPU_FIELD_NUMBER: _ClassVar[int]
    time: int
    worker: int
    managed: int
    unmanaged: int
    spilled: int
    cpu: float
    def __init__(self, time: _Optional[int] = ..., worker: _Optional[int] = ..., managed: _Optional[int] = ..., unmanaged: _Optional[int] = ..., spilled: _Optional[int] = ..., cpu: _Optional[float] = ...) -> None: ...

class Event(_message.Message):
    __slots__ = ("time", "worker_added", "worker_removed", "worker_killed", "worker_paused", "worker_resumed", "task_retried", "graph_submitted", "warning", "data_added", "warning_worker", "warning_source")
    TIME_FIELD_NUMBER: _ClassVar[int]
    WORKER_ADDED_FIELD_NUMBER: _ClassVar[int]
    WORKER_REMOVED_FIELD_NUMBER: _ClassVar[int]
    WORKER_KILLED_FIELD_NUMBER: _ClassVar[int]
    WORKER_PAUSED_FIELD_NUMBER: _ClassVar[int]
    WORKER_RESUMED_FIELD_NUMBER: _ClassVar[int]
    TASK_RETRIED_FIELD_NUMBER: _ClassVar[int]
    GRAPH_SUBMITTED_FIELD_NUMBER: _ClassVar[int]
    WARNING_FIELD_NUMBER: _ClassVar[int]
    DATA_ADDED_FIELD_NUMBER: _ClassVar[int]
    WARNING_WORKER_FIELD_NUMBER: _ClassVar[int]
    WARNING_SOURCE_FIELD_NUMBER: _ClassVar[int]
    time: int
    worker_added: WorkerSpec
    worker_removed: int
    worker_killed: WorkerKilled
    worker_paused: int
    worker_resumed: int
    task_retried: TaskRetried
    graph_submitted: GraphSubmitted
    warning: str
    data_added: DataAdded
    warning_worker: int
    warning_source: str
    def __init__(self, time: _Optional[int] = ..., worker_added: _Optional[_Union[WorkerSpec, _Mapping]] = ..., worker_removed: _Optional[int] = ..., worker_killed: _Optional[_Union[WorkerKilled, _Mapping]] = ..., worker_paused: _Optional[int] = ..., worker_resumed: _Optional[int] = ..., task_retried: _Optional[_Union[TaskRetried, _Mapping]] = ..., graph_submitted: _Optional[_Union[GraphSubmitted, _Mapping]] = ..., warning: _Optional[str] = ..., data_added: _Optional[_Union[DataAdded, _Mapping]] = ..., warning_worker: _Optional[int] = ..., warning_source: _Optional[str] = ...) -> None: ...

class WorkerKilled(_message.Message):
    __slots__ = ("worker", "reason")
    WORKER_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    worker: int
    reason: str
    def __init__(self, worker: _Optional[int] = ..., reason: _Optional[str] = ...) -> None: ...

class DataAdded(_message.Message):
    __slots__ = ("key", "workers", "nbytes")
    KEY_FIELD_NUMBER: _ClassVar[int]
    WORKERS_FIELD_NUMBER: _ClassVar[int]
    NBYTES_FIELD_NUMBER: _ClassVar[int]
    key: Key
    workers: _containers.RepeatedScalarFieldContainer[int]
    nbytes: int
    def __init__(self, key: _Optional[_Union[Key, _Mapping]] = ..., workers: _Optional[_Iterable[int]] = ..., nbytes: _Optional[int] = ...) -> None: ...

class TaskRetried(_message.Message):
    __slots__ = ("key", "attempt")
    KEY_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    key: Key
    attempt: int
    def __init__(self, key: _Optional[_Union[Key, _Mapping]] = ..., attempt: _Optional[int] = ...) -> None: ...

class GraphSubmitted(_message.Message):
    __slots__ = ("tasks", "client")
    TASKS_FIELD_NUMBER: _ClassVar[int]
    CLIENT_FIELD_NUMBER: _ClassVar[int]
    tasks: int
    client: str
    def __init__(self, tasks: _Optional[int] = ..., client: _Optional[str] = ...) -> None: ...

class GroupMetrics(_message.Message):
    __slots__ = ("time", "group", "metrics")
    class MetricsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    TIME_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    time: int
    group: str
    metrics: _containers.ScalarMap[str, float]
    def __init__(self, time: _Optional[int] = ..., group: _Optional[str] = ..., metrics: _Optional[_Mapping[str, float]] = ...) -> None: ...

class Progress(_message.Message):
    __slots__ = ("time", "groups", "groups_omitted", "running", "running_omitted", "paused")
    TIME_FIELD_NUMBER: _ClassVar[int]
    GROUPS_FIELD_NUMBER: _ClassVar[int]
    GROUPS_OMITTED_FIELD_NUMBER: _ClassVar[int]
    RUNNING_FIELD_NUMBER: _ClassVar[int]
    RUNNING_OMITTED_FIELD_NUMBER: _ClassVar[int]
    PAUSED_FIELD_NUMBER: _ClassVar[int]
    time: int
    groups: _containers.RepeatedCompositeFieldContainer[GroupProgress]
    groups_omitted: int
    running: _containers.RepeatedCompositeFieldContainer[RunningTask]
    running_omitted: int
    paused: bool
    def __init__(self, time: _Optional[int] = ..., groups: _Optional[_Iterable[_Union[GroupProgress, _Mapping]]] = ..., groups_omitted: _Optional[int] = ..., running: _Optional[_Iterable[_Union[RunningTask, _Mapping]]] = ..., running_omitted: _Optional[int] = ..., paused: _Optional[bool] = ...) -> None: ...

class GroupProgress(_message.Message):
    __slots__ = ("name", "waiting", "running", "done", "erred", "dependencies")
    NAME_FIELD_NUMBER: _ClassVar[int]
    WAITING_FIELD_NUMBER: _ClassVar[int]
    RUNNING_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    ERRED_FIELD_NUMBER: _ClassVar[int]
    DEPENDENCIES_FIELD_NUMBER: _ClassVar[int]
    name: str
    waiting: int
    running: int
    done: int
    erred: int
    dependencies: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., waiting: _Optional[int] = ..., running: _Optional[int] = ..., done: _Optional[int] = ..., erred: _Optional[int] = ..., dependencies: _Optional[_Iterable[str]] = ...) -> None: ...

class RunningTask(_message.Message):
    __slots__ = ("key", "group", "worker", "thread", "start")
    KEY_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    WORKER_FIELD_NUMBER: _ClassVar[int]
    THREAD_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    key: Key
    group: str
    worker: int
    thread: int
    start: int
    def __init__(self, key: _Optional[_Union[Key, _Mapping]] = ..., group: _Optional[str] = ..., worker: _Optional[int] = ..., thread: _Optional[int] = ..., start: _Optional[int] = ...) -> None: ...
