"""The scheduler plugin: what the Dask scheduler sees, as taskscope trace records.

Everything here runs on the scheduler's event loop, in its hooks, and must stay cheap: one dict
and one JSON line per finished task attempt, a few comparisons per other transition. State kept
between hooks is bounded by what is in flight (tasks ready or running, workers), never by the
number of tasks recorded. Worker CPU and Dask's fine performance metrics are read on the
periodic sample, never per transition.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple, TypedDict, cast

import dask
import distributed
from distributed.core import Status
from distributed.diagnostics.plugin import SchedulerPlugin
from tornado.ioloop import PeriodicCallback

from . import __version__, _worker_side
from .records import (
    Action,
    DataAdded,
    GraphSubmitted,
    Header,
    MemoryFractions,
    MemorySample,
    Phase,
    Record,
    TaskRecord,
    TaskRetried,
    TaskStatus,
    WorkerAdded,
    WorkerKilled,
    WorkerPaused,
    WorkerRemoved,
    WorkerResumed,
    WorkerSpec,
)
from .records import Warning as WarningEvent
from .runspec import inline_bytes
from .tracefile import FORMAT_NAME, FORMAT_VERSION, TraceFile

logger = logging.getLogger("distributed.taskscope")  # shown like Dask's own logs

# Dask's startstop actions → the trace's phase actions.
_ACTIONS: dict[str, Action] = {
    "compute": "compute",
    "transfer": "transfer",
    "deserialize": "deserialize",
    "disk-read": "disk-read",
    "disk-write": "disk-write",
}
# Scheduler states in which a task is ready to run: its inputs are all in memory.
_READY = frozenset(("processing", "queued", "no-worker"))
_OUR_STIMULUS = "taskscope-"
# Dask's warnings recorded per trace, at most; identical ones within this many seconds count once.
MAX_WARNINGS = 1000
_WARNING_DEDUPE_S = 1.0
# Longest wait for the workers' last heartbeat at close, and for the worker plugin's
# (un)registration broadcast.
_FINAL_HEARTBEAT_S = 1.0
_BROADCAST_S = 2.0


#: A worker's last memory sample: managed, unmanaged, spilled bytes and CPU cores (or None).
_MemoryValues = tuple[int, int, int, "float | None"]


class _GroupProgress:
    """One task group's counts for a ``Progress`` update, summed over the scheduler's task
    groups of that prefix."""

    __slots__ = ("active", "deps", "done", "erred", "running", "waiting")

    def __init__(self) -> None:
        self.waiting = 0
        self.running = 0
        self.done = 0
        self.erred = 0
        self.deps: set[str] = set()
        #: When the group last had work (now, while it has), for keeping the most recent.
        self.active = 0.0


class GroupCounts(NamedTuple):
    """A group in :class:`Progress` (``ObserveServer.feed_progress`` unpacks it)."""

    name: str
    waiting: int
    running: int
    done: int
    erred: int
    deps: list[str]


class RunningTask(NamedTuple):
    key: Any
    group: str
    worker: int
    thread: int
    #: Nanoseconds since the trace origin.
    start: int


class Progress(TypedDict):
    """What the Observe server turns into a ``Progress`` message."""

    time: int
    groups: list[GroupCounts]
    groups_omitted: int
    running: list[RunningTask]
    running_omitted: int
    paused: bool


class _Worker:
    """What the plugin knows of one worker (one incarnation of an address)."""

    __slots__ = (
        "alive",
        "closing",
        "host_cores",
        "id",
        "last_memory",
        "own_status",
        "threads",
        "ws",
    )

    def __init__(self, wid: int, ws: Any, host_cores: int | None):
        self.id = wid
        self.ws = ws
        self.host_cores = host_cores
        self.threads: dict[int, int] = {}  # OS thread ident → 0-based index
        self.alive = True
        self.closing = False
        self.own_status: str | None = "running"  # as the worker itself last reported it
        self.last_memory: _MemoryValues | None = None

    def spec(self) -> WorkerSpec:
        """The trace's ``WorkerSpec``."""
        ws = self.ws
        spec: WorkerSpec = {"id": self.id, "name": ws.address, "threads": int(ws.nthreads or 0)}
        if ws.memory_limit:
            spec["memory_limit"] = int(ws.memory_limit)
        if ws.resources:
            spec["resources"] = {k: float(v) for k, v in ws.resources.items()}
        host = getattr(ws, "host", None)
        if host:
            spec["host"] = str(host)
        if self.host_cores:
            spec["host_cores"] = self.host_cores
        return spec


class TaskscopePlugin(SchedulerPlugin):
    """Records a Dask scheduler's run in taskscope's native trace format and/or serves it live
    over taskscope's Observe gRPC.

    ``path``: the trace to write (``.ndjson``; ``.ndjson.zst`` needs ``zstandard``), relative to
    the scheduler's working directory. ``serve``: ``True`` (127.0.0.1:7878), a port, or
    ``"host:port"``; a non-loopback host needs a token, which every call must then carry as
    ``authorization: Bearer <token>`` metadata: ``token``, else the first line of ``token_file``,
    else ``$TASKSCOPE_TOKEN`` (``token`` travels pickled to the scheduler; a file or the variable
    keeps it out of the client). ``tls_cert`` and ``tls_key`` (PEM files, read on the scheduler)
    serve over TLS (``taskscope top https://HOST:PORT --tls-ca CERT``); a token beyond loopback
    is refused without them unless ``insecure=True``. ``interval``: seconds between worker
    memory/CPU samples, group-metrics samples and trace flushes. ``progress_interval``: seconds
    between ``Progress`` updates to watchers.

    >>> client.register_plugin(TaskscopePlugin(path="run.ndjson"))  # doctest: +SKIP
    """

    name = "taskscope"

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        serve: bool | int | str | None = None,
        token: str | None = None,
        interval: float = 0.5,
        progress_interval: float = 0.25,
        flush_lines: int = 1000,
        token_file: str | os.PathLike[str] | None = None,
        tls_cert: str | os.PathLike[str] | None = None,
        tls_key: str | os.PathLike[str] | None = None,
        insecure: bool = False,
    ):
        if path is None and not serve:
            raise ValueError("TaskscopePlugin: give a trace path, serve=..., or both")
        if interval <= 0 or progress_interval <= 0:
            raise ValueError("TaskscopePlugin: intervals must be positive")
        self.path = os.fspath(path) if path is not None else None
        self.serve = serve or None
        if self.serve is not None:
            from .observe import parse_address

            parse_address(self.serve)  # a malformed address fails here, on the client
        if (tls_cert is None) != (tls_key is None):
            raise ValueError("TaskscopePlugin: tls_cert and tls_key go together")
        if (tls_cert is not None or insecure or token_file is not None) and not serve:
            raise ValueError(
                "TaskscopePlugin: token_file, tls_cert, tls_key and insecure need serve=..."
            )
        self.token = token
        self.token_file = os.fspath(token_file) if token_file is not None else None
        self.tls_cert = os.fspath(tls_cert) if tls_cert is not None else None
        self.tls_key = os.fspath(tls_key) if tls_key is not None else None
        self.insecure = bool(insecure)
        self.interval = float(interval)
        self.progress_interval = float(progress_interval)
        self.flush_lines = int(flush_lines)
        self.serve_address: str | None = None
        self._started = False
        self._closing = False

    def __getstate__(self) -> dict[str, Any]:
        # Only the configuration travels to the scheduler.
        keys = (
            "path",
            "serve",
            "token",
            "token_file",
            "tls_cert",
            "tls_key",
            "insecure",
            "interval",
            "progress_interval",
            "flush_lines",
        )
        return {k: self.__dict__[k] for k in keys}

    def __setstate__(self, state: dict[str, Any]) -> None:
        # A plugin pickled by an older version has none of the security options.
        defaults = {"token_file": None, "tls_cert": None, "tls_key": None, "insecure": False}
        self.__dict__.update({**defaults, **state})
        self.serve_address = None
        self._started = False
        self._closing = False

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self, scheduler: Any) -> None:
        if self._started:
            return
        previous = scheduler.plugins.get(self.name)
        if isinstance(previous, TaskscopePlugin) and previous is not self:
            # Registered again (a notebook cell run twice): the new one replaces the old one,
            # which must first let go of its file and its port.
            await previous.close()
        self._scheduler = scheduler
        self._tasks = scheduler.tasks
        self._loop = asyncio.get_running_loop()
        self._origin_ns = time.time_ns()
        self._origin = self._origin_ns / 1e9
        self._workers: dict[str, _Worker] = {}
        self._next_worker = 0
        # key → (time it became ready, address of the worker it was last sent to)
        self._ready: dict[Any, tuple[float, str | None]] = {}
        # key → attempt number, only for keys past their first attempt (retries, lost results)
        self._attempts: dict[Any, int] = {}
        # Scattered keys already announced (`data-added`).
        self._held: set[Any] = set()
        self._paused = False
        self._writer: TraceFile | None = None
        self._server = None
        self._callbacks: list[PeriodicCallback] = []
        # Fine performance metrics: the scheduler's totals when we started (not ours to count),
        # and the last values written per group.
        self._metrics_base = dict(getattr(scheduler, "cumulative_worker_metrics", {}))
        self._metrics_last: dict[str, dict[str, float]] = {}
        # Warnings: how many recorded, and when each (source, worker, message) was last.
        self._warnings = 0
        self._warning_seen: dict[tuple[str, int | None, str], float] = {}
        self._nanny_warned: dict[int, float] = {}  # worker id → time of its nanny's kill warning
        self._log_handler: _SchedulerLogHandler | None = None
        self._loop_thread = threading.get_ident()
        # (key, message) of the task-erred message being handled, while it is.
        self._erring: tuple[Any, dict[str, Any]] | None = None
        self._erred_handler: Callable[..., Any] | None = None
        self._closer: asyncio.Future[None] | None = None
        self._worker_plugin = False

        workers = [self._register(ws).spec() for ws in list(scheduler.workers.values())]
        self.header: Header = {
            "kind": "header",
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "producer": f"dask {_dask_version()} (taskscope-dask {__version__})",
            "origin_unix_ns": self._origin_ns,
            "cluster": {"workers": workers, "memory": _memory_fractions()},
        }
        if self.serve is not None:
            from .observe import (
                ObserveServer,
                check_cleartext,
                parse_address,
                read_pem,
                resolve_token,
            )

            host, port = parse_address(self.serve)
            token = resolve_token(host, port, self.token, self.token_file)
            tls = None
            if self.tls_cert is not None and self.tls_key is not None:
                tls = (
                    read_pem(self.tls_cert, "tls_cert", "CERTIFICATE"),
                    read_pem(self.tls_key, "tls_key", "PRIVATE KEY"),
                )
            check_cleartext(host, port, token, tls is not None, self.insecure)
            self._server = ObserveServer(
                cast(dict[str, Any], self.header),
                host,
                port,
                token,
                self._pause_from_rpc,
                tls=tls,
            )
        if self.path is not None:
            try:
                self._writer = TraceFile(self.path, self.header, self.flush_lines)
            except BaseException:
                if self._server is not None:
                    self._server.stop()
                raise
        if self._server is not None:
            self._server.start()
            self.serve_address = self._server.address
            logger.info("taskscope: serving the Observe gRPC on %s", self.serve_address)
        if self._writer is not None:
            logger.info("taskscope: recording to %s", os.path.abspath(self._writer.path))
        self._callbacks.append(PeriodicCallback(self._sample, self.interval * 1000))
        if self._server is not None:
            self._callbacks.append(PeriodicCallback(self._progress, self.progress_interval * 1000))
        for pc in self._callbacks:
            pc.start()
        self._started = True
        self._closing = False
        self._wrap_task_erred()
        self._log_handler = _SchedulerLogHandler(self)
        logging.getLogger("distributed").addHandler(self._log_handler)
        await self._add_worker_plugin()

    async def before_close(self) -> None:
        if self._started and self._writer is not None:
            self._writer.flush()

    async def close(self) -> None:
        if not self._started or self._closing:
            return
        self._closing = True
        for pc in self._callbacks:
            pc.stop()
        if self._log_handler is not None:
            logging.getLogger("distributed").removeHandler(self._log_handler)
            self._log_handler = None
        self._unwrap_task_erred()
        try:
            await self._final_heartbeat()
            # A run shorter than the sampling interval still ends with its memory.
            now = time.time()
            self._sample_memory(now)
            self._sample_metrics(now)
        except Exception:
            logger.exception("taskscope: final metrics failed")
        self._started = False
        await self._remove_worker_plugin()
        if self._writer is not None:
            self._writer.close()
        if self._server is not None:
            # Joins the server's threads for a moment: off the event loop.
            await asyncio.get_running_loop().run_in_executor(None, self._server.stop)

    def flush(self) -> None:
        """Writes out everything recorded so far (the periodic sample does it too)."""
        if self._writer is not None:
            self._writer.flush()

    # --- recording ---------------------------------------------------------------------------

    def _emit(self, record: Record) -> None:
        if not self._started:
            return  # closed: the scheduler is shutting down, or we were unregistered
        if self._writer is not None:
            self._writer.write(record)
        if self._server is not None:
            self._server.feed(cast(dict[str, Any], record))

    def _ns(self, t: float) -> int:
        ns = int((t - self._origin) * 1e9)
        return ns if ns > 0 else 0

    def _register(self, ws: Any) -> _Worker:
        info = _Worker(self._next_worker, ws, _host_cores(self._scheduler, ws))
        self._next_worker += 1
        self._workers[ws.address] = info
        return info

    def _worker(self, address: str) -> _Worker:
        info = self._workers.get(address)
        if info is None:
            ws = self._scheduler.workers.get(address)
            if ws is None:
                ws = _UnknownWorker(address)
            info = self._register(ws)
            self._emit(self._worker_added(info))
        return info

    def _held_data(self, ts: Any) -> None:
        """Announces each input of ``ts`` that no task made (scattered data: no ``run_spec``),
        once, with where it is held and its size, so a replay has it where Dask had it."""
        for dep in ts.dependencies:
            if dep.run_spec is not None or dep.key in self._held:
                continue
            self._held.add(dep.key)
            holders = [self._workers.get(ws.address) for ws in dep.who_has or ()]
            added: DataAdded = {
                "kind": "event",
                "time": self._time(),
                "type": "data-added",
                "key": dep.key,
                "workers": sorted(w.id for w in holders if w is not None),
                "nbytes": max(0, dep.nbytes),
            }
            self._emit(added)

    def _time(self, t: float | None = None) -> int:
        """An event's time: ``t`` (default: now) in the trace's nanoseconds."""
        return self._ns(time.time() if t is None else t)

    def _worker_added(self, info: _Worker) -> WorkerAdded:
        spec = info.spec()
        return {"kind": "event", "time": self._time(), "type": "worker-added", "worker": spec}

    def transition(
        self,
        key: Any,
        start: str,
        finish: str,
        *args: Any,
        stimulus_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        if start == "processing":
            self._left_processing(key, finish, stimulus_id or "", kwargs)
        elif finish in _READY:
            if finish == "processing":
                ts = self._tasks.get(key)
                ws = ts.processing_on if ts is not None else None
                ready = self._ready.get(key)
                self._ready[key] = (
                    time.time() if ready is None else ready[0],
                    ws.address if ws is not None else None,
                )
            elif key not in self._ready:
                self._ready[key] = (time.time(), None)
        elif finish == "forgotten":
            self._ready.pop(key, None)
            if self._attempts:
                self._attempts.pop(key, None)
        elif start == "queued" or start == "no-worker":
            self._ready.pop(key, None)

    def _left_processing(
        self, key: Any, finish: str, stimulus_id: str, kw: dict[str, Any]
    ) -> None:
        ready = self._ready.pop(key, None)
        if finish == "memory":
            self._attempt(key, "ok", ready, kw)
        elif finish == "erred":
            self._attempt(key, "error", ready, kw)
        elif finish == "released":
            if ready is None:
                return  # recorded already (lost with its worker), or from before we started
            if stimulus_id.startswith("task-erred"):
                # Failed with retries left: Dask passes the plugin no details of this attempt;
                # the worker's task-erred message, seen on its way in, has them.
                attempt = self._attempts.get(key, 1)
                erring = self._erring
                error = None
                if erring is not None and erring[0] == key:
                    msg = erring[1]
                    kw = {
                        "worker": msg.get("worker"),
                        "startstops": msg.get("startstops"),
                        "thread": msg.get("thread"),
                    }
                    error = msg.get("exception_text") or None
                if error is None:
                    error = ("failed; retried (the worker's report of this attempt was not "
                             "seen)")
                self._attempt(key, "error", ready, kw, error=error)
                self._attempts[key] = attempt + 1
                retried: TaskRetried = {
                    "kind": "event",
                    "time": self._time(),
                    "type": "task-retried",
                    "key": key,
                    "attempt": attempt + 1,
                }
                self._emit(retried)
            elif stimulus_id.startswith(("client-releases-keys", "cancel", "remove-client")):
                self._attempt(key, "cancelled", ready, kw)
            else:
                # Rescheduled (a stale run, a steal gone wrong): the same attempt goes on.
                self._ready[key] = ready

    def _attempt(
        self,
        key: Any,
        status: TaskStatus,
        ready: tuple[float, str | None] | None,
        kw: dict[str, Any],
        error: str | None = None,
        worker: _Worker | None = None,
    ) -> None:
        now = time.time()
        ns = self._ns
        ts = self._tasks.get(key)
        address = kw.get("worker") or (ready[1] if ready is not None else None)
        if worker is None:
            worker = self._worker(address) if address else None
        if worker is None:
            return  # never sent to a worker (erred before running): not an attempt
        phases: list[Phase] = []
        startstops = kw.get("startstops")
        if startstops:
            for ss in startstops:
                action = _ACTIONS.get(ss["action"])
                if action is None:
                    continue
                # A worker's clock stepped back mid-phase: a phase of no length, never one that
                # ends before it starts (readers refuse those; traces/src/model.rs Phase::order).
                start = ns(ss["start"])
                stop = max(start, ns(ss["stop"]))
                phase: Phase = {"action": action, "start": start, "stop": stop}
                if action == "transfer":
                    source = ss.get("source")
                    if source:
                        phase["peer"] = self._worker(source).id
                        moved = _bytes_from(ts, self._scheduler.workers.get(source))
                        if moved:
                            phase["bytes"] = moved
                phases.append(phase)
        elif status != "ok" and ts is not None:
            # Killed or lost mid-run: the worker's last heartbeat said how long it had been
            # computing.
            running = getattr(worker.ws, "executing", {}).get(ts)
            if running is not None:
                begin = min(getattr(worker.ws, "last_seen", now) - running, now)
                phases.append({"action": "compute", "start": ns(begin), "stop": ns(now)})
        if ready is not None:
            first = min((p["start"] for p in phases), default=ns(now))
            queued = ns(ready[0])
            if queued < first:
                phases.insert(0, {"action": "queued", "start": queued, "stop": first})
        if not phases:
            t = ns(now)
            phases.append({"action": "queued", "start": t, "stop": t})

        thread = kw.get("thread")
        index = 0
        if thread is not None:
            known = worker.threads.get(thread)
            if known is None:
                known = worker.threads[thread] = len(worker.threads)
            index = known
        record: TaskRecord = {
            "kind": "task",
            "key": key,
            "group": ts.prefix.name if ts is not None else _key_split(key),
            "worker": worker.id,
            "thread": index,
            "status": status,
            "nbytes": kw.get("nbytes", 0) if status == "ok" else 0,
            "phases": phases,
        }
        if ts is not None:
            inline = inline_bytes(ts.run_spec)
            if inline:
                record["inline_bytes"] = inline
            if ts.dependencies:
                record["deps"] = [d.key for d in ts.dependencies]
                self._held_data(ts)
            if ts.resource_restrictions:
                record["resources"] = {
                    str(k): float(v) for k, v in ts.resource_restrictions.items()
                }
            if ts.worker_restrictions and not ts.loose_restrictions:
                # Addresses of workers the plugin has seen (a hostname restriction names none).
                allowed = [self._workers.get(a) for a in ts.worker_restrictions]
                ids = sorted(w.id for w in allowed if w is not None)
                if ids:
                    record["restricted_to"] = ids
        if self._attempts:
            attempt = self._attempts.get(key)
            if attempt is not None:
                record["attempt"] = attempt
        if status == "error":
            if error is None:
                error = kw.get("exception_text") or _killed_text(ts, address)
            record["error"] = error
        self._emit(record)

    # --- graph, workers, events --------------------------------------------------------------

    def update_graph(
        self, scheduler: Any, *, client: Any = None, tasks: Any = (), **kwargs: Any
    ) -> None:
        record: GraphSubmitted = {
            "kind": "event",
            "time": self._time(),
            "type": "graph-submitted",
            "tasks": len(tasks),
        }
        if client is not None:
            record["client"] = str(client)
        self._emit(record)

    def add_worker(self, scheduler: Any, worker: str) -> None:
        ws = scheduler.workers.get(worker)
        if ws is None:
            return
        info = self._workers.get(worker)
        if info is not None and info.alive and info.ws is ws:
            return
        info = self._register(ws)
        self._emit(self._worker_added(info))
        if self._paused:
            self._pause_worker(ws)

    def remove_worker(self, scheduler: Any, worker: str, **kwargs: Any) -> None:
        # Normally handled by the "remove-worker" event, which comes first and says more.
        info = self._workers.get(worker)
        if info is not None and info.alive:
            self._sample_leaving(info)
            info.alive = False
            removed: WorkerRemoved = {
                "kind": "event", "time": self._time(), "type": "worker-removed", "worker": info.id
            }
            self._emit(removed)

    def log_event(self, topic: str, msg: Any) -> None:
        if type(msg) is not dict:
            return
        if topic == _worker_side.TOPIC:
            self._worker_warning(msg)
            return
        if topic == "worker-restart-memory":
            self._nanny_restart(msg)
            return
        action = msg.get("action")
        if action == "worker-status-change":
            self._status_change(topic, msg)
        elif action == "remove-worker" and topic == "all":
            self._worker_gone(msg)
        elif action == "closing-worker":
            info = self._workers.get(topic)
            if info is not None:
                info.closing = True

    def _status_change(self, address: str, msg: dict[str, Any]) -> None:
        info = self._workers.get(address)
        if info is None:
            return
        status = msg.get("status")
        if str(msg.get("stimulus_id", "")).startswith(_OUR_STIMULUS):
            return  # our own Pause / Resume: not the worker's doing
        previous, info.own_status = info.own_status, status
        if status == "paused" and previous != "paused":
            paused: WorkerPaused = {
                "kind": "event", "time": self._time(), "type": "worker-paused", "worker": info.id
            }
            self._emit(paused)
        elif previous == "paused" and status == "running":
            resumed: WorkerResumed = {
                "kind": "event", "time": self._time(), "type": "worker-resumed", "worker": info.id
            }
            self._emit(resumed)
        if status in ("closing", "closing_gracefully", "closed"):
            info.closing = True
        elif status == "running" and self._paused:
            # The worker told the scheduler it runs again: hold it, after this handler.
            self._loop.call_soon(self._pause_worker, info.ws)

    def _worker_gone(self, msg: dict[str, Any]) -> None:
        address = msg.get("worker")
        info = self._workers.get(address) if isinstance(address, str) else None
        if info is None or not info.alive:
            return
        now = time.time()
        self._sample_leaving(info)
        info.alive = False
        for key in msg.get("processing-tasks", ()):
            ready = self._ready.pop(key, None)
            ts = self._tasks.get(key)
            if ts is None or ts.state == "erred":
                continue  # KilledWorker: recorded as an error by its transition
            if ready is None:
                ready = (now, address)
            self._attempt(key, "lost", ready, {}, worker=info)
            self._attempts[key] = self._attempts.get(key, 1) + 1
        for key in msg.get("lost-computed-tasks", ()):
            self._attempts[key] = self._attempts.get(key, 1) + 1
        if msg.get("expected") or info.closing:
            removed: WorkerRemoved = {
                "kind": "event",
                "time": self._time(now),
                "type": "worker-removed",
                "worker": info.id,
            }
            self._emit(removed)
        else:
            reason = msg.get("stimulus_id") or "unknown"
            killed: WorkerKilled = {
                "kind": "event",
                "time": self._time(now),
                "type": "worker-killed",
                "worker": info.id,
                "reason": f"worker lost ({reason})",
            }
            self._emit(killed)

    # --- Dask's own warnings -----------------------------------------------------------------

    def _worker_warning(self, msg: dict[str, Any]) -> None:
        """A warning a worker's logging handler forwarded (``_worker_side.WarningForwarder``)."""
        address = msg.get("worker")
        info = self._workers.get(address) if address else None
        t = msg.get("time")
        self._warning(
            str(msg.get("message", "")),
            str(msg.get("source", "")),
            info.id if info is not None else None,
            float(t) if isinstance(t, (int, float)) else None,
        )

    def _nanny_restart(self, msg: dict[str, Any]) -> None:
        """A nanny terminating its worker past the memory terminate fraction: it logs a warning
        (captured by our handler when the nanny shares the scheduler's process, as in a
        LocalCluster) and tells the scheduler with this event, which is how a nanny in another
        process (``dask worker``) gets its warning into the trace."""
        address = msg.get("worker")
        info = self._workers.get(address) if address else None
        if info is None:
            return
        last = self._nanny_warned.get(info.id)
        if last is not None and time.time() - last < 10:
            return  # the same kill, seen through our log handler already
        rss = msg.get("rss")
        fraction = _memory_fractions()["terminate"]
        self._warning(
            f"Worker {address} (pid={msg.get('pid')}) exceeded {fraction * 100:.0f}% memory "
            f"budget. Restarting... (process memory: {rss} bytes; from the nanny's "
            f"worker-restart-memory event)",
            "distributed.nanny.memory",
            info.id,
            None,
        )

    def _warning(self, message: str, source: str, worker: int | None, t: float | None) -> None:
        """Records one of Dask's warnings, at most ``MAX_WARNINGS`` per trace, identical ones
        (same source, worker and text) once per second. Event loop only."""
        if not self._started or self._warnings > MAX_WARNINGS:
            return
        now = time.time()
        seen = self._warning_seen
        who = (source, worker, message)
        last = seen.get(who)
        if last is not None and now - last < _WARNING_DEDUPE_S:
            return
        if len(seen) > 4 * MAX_WARNINGS:
            seen.clear()
        seen[who] = now
        self._warnings += 1
        if self._warnings > MAX_WARNINGS:
            self._emit({
                "kind": "event",
                "time": self._time(now),
                "type": "warning",
                "message": f"taskscope: {MAX_WARNINGS} of Dask's warnings recorded; "
                "later ones are left out of this trace",
                "source": "taskscope",
            })
            return
        record: WarningEvent = {
            "kind": "event",
            "time": self._time(now if t is None else min(t, now)),
            "type": "warning",
            "message": message,
        }
        if worker is not None:
            record["worker"] = worker
            if source == "distributed.nanny.memory":
                self._nanny_warned[worker] = now
        if source:
            record["source"] = source
        self._emit(record)

    def _log_record(self, record: logging.LogRecord) -> None:
        """A WARNING-or-above record of a ``distributed.*`` logger in the scheduler's process
        (``_SchedulerLogHandler``), on the event loop."""
        try:
            message = record.getMessage()
        except Exception:
            message = str(record.msg)
        if len(message) > _worker_side.MAX_MESSAGE:
            message = message[: _worker_side.MAX_MESSAGE] + "…"
        worker = None
        if record.name.startswith("distributed.nanny"):
            # A nanny in this process (a LocalCluster): its messages name its worker (the
            # longest address found: tcp://h:4000 is in tcp://h:40001 too).
            found = ""
            for address, info in list(self._workers.items()):
                if len(address) > len(found) and address in message:
                    found, worker = address, info.id
        self._warning(message, record.name, worker, record.created)

    # --- retried attempts: the worker's task-erred message ------------------------------------

    def _wrap_task_erred(self) -> None:
        """Puts a wrapper around the scheduler's ``task-erred`` stream handler that keeps the
        message (exception text, startstops, thread) at hand while Dask handles it, so that
        an attempt Dask retries — which reaches :meth:`transition` without any of it — is
        recorded with its real exception."""
        handlers: dict[str, Any] | None = getattr(self._scheduler, "stream_handlers", None)
        original = handlers.get("task-erred") if handlers is not None else None
        if handlers is None or original is None:
            return

        def task_erred(key: Any = None, **msg: Any) -> Any:
            self._erring = (key, msg)
            try:
                return original(key=key, **msg)
            finally:
                self._erring = None

        task_erred.taskscope_wrapped = original  # type: ignore[attr-defined]
        handlers["task-erred"] = task_erred
        self._erred_handler = task_erred

    def _unwrap_task_erred(self) -> None:
        wrapper, self._erred_handler = self._erred_handler, None
        if wrapper is None:
            return
        handlers = self._scheduler.stream_handlers
        if handlers.get("task-erred") is wrapper:
            handlers["task-erred"] = wrapper.taskscope_wrapped
        else:
            # Someone wrapped it after us: leave their wrapper in place, ours passes through.
            self._erring = None

    # --- the worker plugin: warnings from the workers, a last heartbeat ------------------------

    async def _add_worker_plugin(self) -> None:
        """Registers ``_worker_side.WarningForwarder`` on every worker, present and future,
        through the scheduler's own ``register_worker_plugin`` (no client needed). The module
        is pickled by value, so workers need not have taskscope-dask installed."""
        scheduler = self._scheduler
        if not hasattr(scheduler, "register_worker_plugin"):
            return
        try:
            import cloudpickle

            cloudpickle.register_pickle_by_value(_worker_side)
            payload = cloudpickle.dumps(_worker_side.WarningForwarder(os.getpid(), MAX_WARNINGS))
        except Exception:
            logger.exception("taskscope: cannot ship the warning forwarder to workers")
            return
        self._worker_plugin = True
        register = asyncio.ensure_future(scheduler.register_worker_plugin(
            None, payload, _worker_side.WarningForwarder.name, idempotent=False
        ))
        try:
            # Registered for future workers at once; existing ones get it by a broadcast,
            # waited for a moment (a worker that does not answer must not hold start up).
            await asyncio.wait_for(asyncio.shield(register), _BROADCAST_S)
        except asyncio.TimeoutError:
            pass
        except Exception:
            logger.exception("taskscope: registering the warning forwarder on workers failed")

    async def _remove_worker_plugin(self) -> None:
        if not self._worker_plugin:
            return
        self._worker_plugin = False
        scheduler = self._scheduler
        name = _worker_side.WarningForwarder.name
        if scheduler.worker_plugins.pop(name, None) is None:
            return
        if scheduler.status in (Status.closing, Status.closed) or not scheduler.workers:
            return  # the workers go too
        with contextlib.suppress(Exception):
            await asyncio.wait_for(
                scheduler.broadcast(msg={"op": "plugin-remove", "name": name}, on_error="ignore"),
                _BROADCAST_S,
            )

    async def _final_heartbeat(self) -> None:
        """Asks every worker still connected for a heartbeat, and waits for them (1 s at most),
        so the last group metrics include the work done since the previous heartbeats."""
        scheduler = self._scheduler
        workers = [a for a, ws in list(scheduler.workers.items())
                   if ws.status in (Status.running, Status.paused)]
        if not workers:
            return
        try:
            import cloudpickle

            function = cloudpickle.dumps(_worker_side.heartbeat)
            await asyncio.wait_for(
                scheduler.broadcast(
                    msg={"op": "run", "function": function, "wait": True},
                    workers=workers,
                    on_error="ignore",
                ),
                _FINAL_HEARTBEAT_S,
            )
        except Exception:
            pass

    def restart(self, scheduler: Any) -> None:
        self._ready.clear()
        self._attempts.clear()
        self._emit({
            "kind": "event",
            "time": self._time(),
            "type": "warning",
            "message": "the client restarted the cluster",
        })

    # --- periodic: memory samples and flushes, progress -------------------------------------

    def _sample(self) -> None:
        if not any(p is self for p in self._scheduler.plugins.values()):
            # Unregistered (Dask's unregister_scheduler_plugin does not call close): finish the
            # trace and stop serving.
            if self._started:
                self._closer = asyncio.ensure_future(self.close())
            return
        now = time.time()
        try:
            self._sample_memory(now)
        except Exception:
            logger.exception("taskscope: memory sampling failed")
        try:
            self._sample_metrics(now)
        except Exception:
            logger.exception("taskscope: group metrics sampling failed")
        if self._writer is not None:
            self._writer.flush()

    def _sample_leaving(self, info: _Worker) -> None:
        """A leaving worker's memory as it left: a run shorter than the sampling interval has
        no other sample."""
        try:
            self._sample_memory(time.time(), [info])
        except Exception:
            logger.exception("taskscope: memory sampling failed")

    def _sample_memory(self, now: float, workers: Iterable[_Worker] | None = None) -> None:
        """One memory sample per live worker (of ``workers``, default all) whose memory changed
        since its last one."""
        t = self._ns(now)
        for info in list(self._workers.values() if workers is None else workers):
            if not info.alive:
                continue
            try:
                ws = info.ws
                m = ws.memory
                cpu = ws.metrics.get("cpu")
                values = (
                    int(m.managed),
                    int(m.unmanaged),
                    int(m.spilled),
                    round(cpu / 100, 3) if isinstance(cpu, (int, float)) else None,
                )
            except Exception:
                continue  # no heartbeat yet
            if values == info.last_memory:
                continue
            info.last_memory = values
            record: MemorySample = {
                "kind": "memory",
                "time": t,
                "worker": info.id,
                "managed": values[0],
                "unmanaged": values[1],
                "spilled": values[2],
            }
            if values[3] is not None:
                record["cpu"] = values[3]
            self._emit(record)

    def _sample_metrics(self, now: float) -> None:
        """One ``group-metrics`` record per group whose metrics changed since the last one:
        ``Scheduler.cumulative_worker_metrics`` less what it held when we started.

        Keys ``("execute", prefix, activity, unit)`` go to group ``prefix`` as
        ``execute/activity/unit``; every other tuple key (``("gather-dep", activity, unit)``,
        ``("get-data", …)``, ``("memory-monitor", …)``, ``("p2p", …)``) goes to group ``""``,
        its parts joined by ``/``. Plain-name keys (``"latency"``, ``"tick-duration"``,
        ``"transfer-bandwidth"``…) are sums of samples that change with every heartbeat,
        busy or not, and say nothing per group: left out."""
        metrics = getattr(self._scheduler, "cumulative_worker_metrics", None)
        if not metrics:
            return
        base = self._metrics_base
        groups: dict[str, dict[str, float]] = {}
        for k, v in list(metrics.items()):
            if base:
                v -= base.get(k, 0)
                if not v:
                    continue
            if type(k) is not tuple or not k:
                continue
            if k[0] == "execute" and len(k) >= 3:
                group = str(k[1])
                name = "/".join(["execute", *map(str, k[2:])])
            else:
                group, name = "", "/".join(map(str, k))
            g = groups.get(group)
            if g is None:
                g = groups[group] = {}
            g[name] = g.get(name, 0) + v
        last = self._metrics_last
        t = None
        for group, values in groups.items():
            if last.get(group) == values:
                continue
            last[group] = values
            if t is None:
                t = self._ns(now)
            self._emit({"kind": "group-metrics", "time": t, "group": group, "metrics": values})

    def _progress(self) -> None:
        server = self._server
        if server is None or not server.watching():
            return
        try:
            server.feed_progress(self._gather_progress())
        except Exception:
            logger.exception("taskscope: progress sampling failed")

    def _gather_progress(self) -> Progress:
        from .observe import MAX_GROUP_DEPS, MAX_GROUPS, MAX_RUNNING

        now = time.time()
        groups: dict[str, _GroupProgress] = {}
        for tg in list(self._scheduler.task_groups.values()):
            name = tg.prefix.name
            s = tg.states
            g = groups.get(name)
            if g is None:
                g = groups[name] = _GroupProgress()
            g.waiting += s.get("waiting", 0) + s.get("no-worker", 0) + s.get("queued", 0)
            g.running += s.get("processing", 0)
            g.done += s.get("memory", 0) + s.get("released", 0) + s.get("forgotten", 0)
            g.erred += s.get("erred", 0)
            for dep in tg.dependencies:
                if len(g.deps) < MAX_GROUP_DEPS:
                    g.deps.add(dep.prefix.name)
            active = now if (g.waiting or g.running) else tg.stop
            g.active = max(g.active, active)
        ordered = sorted(groups.items(), key=lambda item: item[1].active, reverse=True)
        kept = ordered[:MAX_GROUPS]
        running: list[RunningTask] = []
        total_running = 0
        for info in list(self._workers.values()):
            if not info.alive:
                continue
            ws = info.ws
            executing = ws.executing
            threads = max(ws.nthreads, 1)
            for i, ts in enumerate(ws.processing):
                total_running += 1
                if len(running) >= MAX_RUNNING:
                    continue
                if ts in executing:
                    begin = ws.last_seen - executing[ts]
                else:
                    ready = self._ready.get(ts.key)
                    begin = ready[0] if ready is not None else now
                running.append(
                    RunningTask(ts.key, ts.prefix.name, info.id, i % threads, self._ns(begin))
                )
        return {
            "time": self._ns(now),
            "groups": [
                GroupCounts(name, g.waiting, g.running, g.done, g.erred, sorted(g.deps))
                for name, g in kept
            ],
            "groups_omitted": len(ordered) - len(kept),
            "running": running,
            "running_omitted": total_running - len(running),
            "paused": self._paused,
        }

    # --- Pause / Resume ----------------------------------------------------------------------

    def _pause_from_rpc(self, pause: bool) -> bool:
        """Called from a gRPC thread: runs on the event loop and waits for it."""
        done: concurrent.futures.Future[bool] = concurrent.futures.Future()

        def run() -> None:
            try:
                done.set_result(self.pause() if pause else self.resume())
            except BaseException as e:
                done.set_exception(e)

        self._loop.call_soon_threadsafe(run)
        return done.result(timeout=10)

    def pause(self) -> bool:
        """Stops the scheduler from giving workers new tasks: every worker is marked paused in
        the scheduler (as a worker past its memory pause threshold is). Tasks already sent to
        a worker still run. Event-loop only."""
        self._paused = True
        for ws in list(self._scheduler.workers.values()):
            self._pause_worker(ws)
        return True

    def resume(self) -> bool:
        """Undoes :meth:`pause`: each worker gets back the status it reported itself."""
        self._paused = False
        stimulus = f"{_OUR_STIMULUS}resume-{time.time()}"
        for ws in list(self._scheduler.workers.values()):
            info = self._workers.get(ws.address)
            own = info.own_status if info is not None else "running"
            if ws.status == Status.paused and own == "running":
                self._scheduler.handle_worker_status_change(Status.running, ws, stimulus)
        return False

    def _pause_worker(self, ws: Any) -> None:
        if self._paused and ws.status == Status.running and ws.address in self._scheduler.workers:
            stimulus = f"{_OUR_STIMULUS}pause-{time.time()}"
            self._scheduler.handle_worker_status_change(Status.paused, ws, stimulus)


class _SchedulerLogHandler(logging.Handler):
    """WARNING-and-above records of ``distributed.*`` loggers in the scheduler's process (the
    scheduler, and in a LocalCluster the client and the nannies), handed to the plugin on the
    event loop. Not our own logger's (``distributed.taskscope``), nor one logged while handing
    one over."""

    def __init__(self, plugin: TaskscopePlugin):
        super().__init__(logging.WARNING)
        self.plugin = plugin
        self.busy = threading.local()

    def emit(self, record: logging.LogRecord) -> None:
        name = record.name
        if not name.startswith("distributed") or name.startswith(logger.name):
            return
        if getattr(self.busy, "on", False):
            return
        self.busy.on = True
        try:
            plugin = self.plugin
            if threading.get_ident() == plugin._loop_thread:
                plugin._log_record(record)
            else:
                plugin._loop.call_soon_threadsafe(plugin._log_record, record)
        except Exception:
            pass  # never break Dask's logging (a closed loop, …)
        finally:
            self.busy.on = False


class _UnknownWorker:
    """A worker address the scheduler no longer knows (a result arriving after removal)."""

    def __init__(self, address: str):
        self.address = address
        self.host = _address_host(address)
        self.nthreads = 0
        self.memory_limit: int | None = None
        self.resources: dict[str, float] = {}


_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


def _address_host(address: str) -> str | None:
    """The host part of a Dask address (``tcp://10.0.0.4:8786`` → ``10.0.0.4``), if it has one."""
    from distributed.comm.addressing import get_address_host

    try:
        return str(get_address_host(address)) or None
    except (TypeError, ValueError):
        return None


def _host_cores(scheduler: Any, ws: Any) -> int | None:
    """The cores of the worker's host when it is the scheduler's own (a ``LocalCluster``, the
    usual case): ``dask.system.CPU_COUNT``, which honours CPU affinity and cgroup quotas
    (``LocalCluster`` sizes itself by it). A remote host's cores are not known here: ``None``."""
    own = _address_host(str(getattr(scheduler, "address", "") or ""))
    host = getattr(ws, "host", None)
    if own is None or not host:
        return None
    if host != own and not (host in _LOOPBACK and own in _LOOPBACK):
        return None
    from dask.system import CPU_COUNT

    return int(CPU_COUNT) or None


def _memory_fractions() -> MemoryFractions:
    """``distributed.worker.memory.*`` as the scheduler's config has them; a disabled threshold
    (``False``) is written as 1.0, the limit itself."""

    def fraction(name: str, default: float) -> float:
        value = dask.config.get(f"distributed.worker.memory.{name}", default)
        return float(value) if value not in (False, None) else 1.0

    return {
        "target": fraction("target", 0.6),
        "spill": fraction("spill", 0.7),
        "pause": fraction("pause", 0.8),
        "terminate": fraction("terminate", 0.95),
    }


def _dask_version() -> str:
    version: str = getattr(distributed, "__version__", "unknown")
    return version


def _bytes_from(ts: Any, source: Any) -> int:
    """Bytes of ``ts``'s inputs held by ``source``: what a transfer from it fetched, at most."""
    if ts is None or source is None:
        return 0
    total = 0
    for dts in ts.dependencies:
        who_has = dts.who_has
        if who_has and source in who_has:
            total += max(dts.nbytes, 0)
    return total


def _killed_text(ts: Any, address: str | None) -> str:
    deaths = getattr(ts, "suspicious", 0) if ts is not None else 0
    return (
        f"KilledWorker: the worker running this task ({address}) died, {deaths} times in all "
        f"(distributed.scheduler.allowed-failures = "
        f"{dask.config.get('distributed.scheduler.allowed-failures')})"
    )


def _key_split(key: Any) -> str:
    from dask.utils import key_split

    group: str = key_split(key)
    return group
