"""The scheduler plugin: what the Dask scheduler sees, as taskscope trace records.

Everything here runs on the scheduler's event loop, in its hooks, and must stay cheap: one dict
and one JSON line per finished task attempt, a few comparisons per other transition. State kept
between hooks is bounded by what is in flight (tasks ready or running, workers), never by the
number of tasks recorded.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import time
from typing import Any

import dask
import distributed
from distributed.core import Status
from distributed.diagnostics.plugin import SchedulerPlugin
from tornado.ioloop import PeriodicCallback

from . import __version__
from .runspec import inline_bytes
from .trace import FORMAT_NAME, FORMAT_VERSION, TraceFile

logger = logging.getLogger("distributed.taskscope")  # shown like Dask's own logs

# Dask's startstop actions → the trace's phase actions.
_ACTIONS = {
    "compute": "compute",
    "transfer": "transfer",
    "deserialize": "deserialize",
    "disk-read": "disk-read",
    "disk-write": "disk-write",
}
# Scheduler states in which a task is ready to run: its inputs are all in memory.
_READY = frozenset(("processing", "queued", "no-worker"))
_OUR_STIMULUS = "taskscope-"


class _Worker:
    """What the plugin knows of one worker (one incarnation of an address)."""

    __slots__ = ("id", "ws", "threads", "alive", "closing", "own_status", "last_memory")

    def __init__(self, wid: int, ws: Any):
        self.id = wid
        self.ws = ws
        self.threads: dict[int, int] = {}  # OS thread ident → 0-based index
        self.alive = True
        self.closing = False
        self.own_status = "running"  # as the worker itself last reported it
        self.last_memory: tuple[int, int, int] | None = None

    def spec(self) -> dict:
        """The trace's ``WorkerSpec``."""
        ws = self.ws
        spec = {"id": self.id, "name": ws.address, "threads": int(ws.nthreads or 0)}
        if ws.memory_limit:
            spec["memory_limit"] = int(ws.memory_limit)
        if ws.resources:
            spec["resources"] = {k: float(v) for k, v in ws.resources.items()}
        return spec


class TaskscopePlugin(SchedulerPlugin):
    """Records a Dask scheduler's run in taskscope's native trace format and/or serves it live
    over taskscope's Observe gRPC.

    ``path``: the trace to write (``.ndjson``; ``.ndjson.zst`` needs ``zstandard``), relative to
    the scheduler's working directory. ``serve``: ``True`` (127.0.0.1:7878), a port, or
    ``"host:port"``; a non-loopback host needs ``token`` (or ``$TASKSCOPE_TOKEN``), which every
    call must then carry as ``authorization: Bearer <token>`` metadata. ``interval``: seconds
    between worker memory samples and trace flushes. ``progress_interval``: seconds between
    ``Progress`` updates to watchers.

    >>> client.register_plugin(TaskscopePlugin(path="run.ndjson"))  # doctest: +SKIP
    """

    name = "taskscope"

    def __init__(
        self,
        path: str | os.PathLike | None = None,
        serve: bool | int | str | None = None,
        token: str | None = None,
        interval: float = 0.5,
        progress_interval: float = 0.25,
        flush_lines: int = 1000,
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
        self.token = token
        self.interval = float(interval)
        self.progress_interval = float(progress_interval)
        self.flush_lines = int(flush_lines)
        self.serve_address: str | None = None
        self._started = False

    def __getstate__(self) -> dict:
        # Only the configuration travels to the scheduler.
        keys = ("path", "serve", "token", "interval", "progress_interval", "flush_lines")
        return {k: self.__dict__[k] for k in keys}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.serve_address = None
        self._started = False

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
        self._paused = False
        self._writer: TraceFile | None = None
        self._server = None
        self._callbacks: list[PeriodicCallback] = []

        workers = [self._register(ws).spec() for ws in list(scheduler.workers.values())]
        self.header = {
            "kind": "header",
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "producer": f"dask {distributed.__version__} (taskscope-dask {__version__})",
            "origin_unix_ns": self._origin_ns,
            "cluster": {"workers": workers, "memory": _memory_fractions()},
        }
        if self.serve is not None:
            from .observe import ObserveServer, parse_address, resolve_token

            host, port = parse_address(self.serve)
            token = resolve_token(host, port, self.token)
            self._server = ObserveServer(self.header, host, port, token, self._pause_from_rpc)
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
            logger.info("taskscope: recording to %s", os.path.abspath(self.path))
        self._callbacks.append(PeriodicCallback(self._sample, self.interval * 1000))
        if self._server is not None:
            self._callbacks.append(PeriodicCallback(self._progress, self.progress_interval * 1000))
        for pc in self._callbacks:
            pc.start()
        self._started = True

    async def before_close(self) -> None:
        if self._started and self._writer is not None:
            self._writer.flush()

    async def close(self) -> None:
        if not self._started:
            return
        self._started = False
        for pc in self._callbacks:
            pc.stop()
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

    def _emit(self, record: dict) -> None:
        if not self._started:
            return  # closed: the scheduler is shutting down, or we were unregistered
        if self._writer is not None:
            self._writer.write(record)
        if self._server is not None:
            self._server.feed(record)

    def _ns(self, t: float) -> int:
        ns = int((t - self._origin) * 1e9)
        return ns if ns > 0 else 0

    def _register(self, ws: Any) -> _Worker:
        info = _Worker(self._next_worker, ws)
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
            self._emit(self._event("worker-added", worker=info.spec()))
        return info

    def _event(self, kind: str, t: float | None = None, **fields: Any) -> dict:
        record = {"kind": "event", "time": self._ns(time.time() if t is None else t), "type": kind}
        record.update(fields)
        return record

    def transition(self, key, start, finish, *args, stimulus_id=None, **kwargs) -> None:
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

    def _left_processing(self, key: Any, finish: str, stimulus_id: str, kw: dict) -> None:
        ready = self._ready.pop(key, None)
        if finish == "memory":
            self._attempt(key, "ok", ready, kw)
        elif finish == "erred":
            self._attempt(key, "error", ready, kw)
        elif finish == "released":
            if ready is None:
                return  # recorded already (lost with its worker), or from before we started
            if stimulus_id.startswith("task-erred"):
                # Failed with retries left: Dask passes no details of this attempt along.
                attempt = self._attempts.get(key, 1)
                self._attempt(key, "error", ready, kw, error="failed; retried (Dask does not "
                              "report the exception of an attempt it retries)")
                self._attempts[key] = attempt + 1
                self._emit(self._event("task-retried", key=key, attempt=attempt + 1))
            elif stimulus_id.startswith(("client-releases-keys", "cancel", "remove-client")):
                self._attempt(key, "cancelled", ready, kw)
            else:
                # Rescheduled (a stale run, a steal gone wrong): the same attempt goes on.
                self._ready[key] = ready

    def _attempt(
        self,
        key: Any,
        status: str,
        ready: tuple[float, str | None] | None,
        kw: dict,
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
        phases = []
        startstops = kw.get("startstops")
        if startstops:
            for ss in startstops:
                action = _ACTIONS.get(ss["action"])
                if action is None:
                    continue
                phase = {"action": action, "start": ns(ss["start"]), "stop": ns(ss["stop"])}
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
        if thread is None:
            index = 0
        else:
            index = worker.threads.get(thread)
            if index is None:
                index = worker.threads[thread] = len(worker.threads)
        record = {
            "kind": "task",
            "key": key,
            "group": ts.prefix.name if ts is not None else _key_split(key),
            "worker": worker.id,
            "thread": index,
            "status": status,
            "nbytes": kw.get("nbytes", 0) if status == "ok" else 0,
        }
        if ts is not None:
            inline = inline_bytes(ts.run_spec)
            if inline:
                record["inline_bytes"] = inline
            if ts.dependencies:
                record["deps"] = [d.key for d in ts.dependencies]
        if self._attempts:
            attempt = self._attempts.get(key)
            if attempt is not None:
                record["attempt"] = attempt
        if status == "error":
            if error is None:
                error = kw.get("exception_text") or _killed_text(ts, address)
            record["error"] = error
        record["phases"] = phases
        self._emit(record)

    # --- graph, workers, events --------------------------------------------------------------

    def update_graph(self, scheduler, *, client=None, tasks=(), **kwargs) -> None:
        record = self._event("graph-submitted", tasks=len(tasks))
        if client is not None:
            record["client"] = str(client)
        self._emit(record)

    def add_worker(self, scheduler, worker: str) -> None:
        ws = scheduler.workers.get(worker)
        if ws is None:
            return
        info = self._workers.get(worker)
        if info is not None and info.alive and info.ws is ws:
            return
        info = self._register(ws)
        self._emit(self._event("worker-added", worker=info.spec()))
        if self._paused:
            self._pause_worker(ws)

    def remove_worker(self, scheduler, worker: str, **kwargs) -> None:
        # Normally handled by the "remove-worker" event, which comes first and says more.
        info = self._workers.get(worker)
        if info is not None and info.alive:
            info.alive = False
            self._emit(self._event("worker-removed", worker=info.id))

    def log_event(self, topic, msg) -> None:
        if type(msg) is not dict:
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

    def _status_change(self, address: str, msg: dict) -> None:
        info = self._workers.get(address)
        if info is None:
            return
        status = msg.get("status")
        if str(msg.get("stimulus_id", "")).startswith(_OUR_STIMULUS):
            return  # our own Pause / Resume: not the worker's doing
        previous, info.own_status = info.own_status, status
        if status == "paused" and previous != "paused":
            self._emit(self._event("worker-paused", worker=info.id))
        elif previous == "paused" and status == "running":
            self._emit(self._event("worker-resumed", worker=info.id))
        if status in ("closing", "closing_gracefully", "closed"):
            info.closing = True
        elif status == "running" and self._paused:
            # The worker told the scheduler it runs again: hold it, after this handler.
            self._loop.call_soon(self._pause_worker, info.ws)

    def _worker_gone(self, msg: dict) -> None:
        address = msg.get("worker")
        info = self._workers.get(address)
        if info is None or not info.alive:
            return
        info.alive = False
        now = time.time()
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
            self._emit(self._event("worker-removed", now, worker=info.id))
        else:
            reason = msg.get("stimulus_id") or "unknown"
            self._emit(
                self._event("worker-killed", now, worker=info.id, reason=f"worker lost ({reason})")
            )

    def restart(self, scheduler) -> None:
        self._ready.clear()
        self._attempts.clear()
        self._emit(self._event("warning", message="the client restarted the cluster"))

    # --- periodic: memory samples and flushes, progress -------------------------------------

    def _sample(self) -> None:
        if not any(p is self for p in self._scheduler.plugins.values()):
            # Unregistered (Dask's unregister_scheduler_plugin does not call close): finish the
            # trace and stop serving.
            if self._started:
                asyncio.ensure_future(self.close())
            return
        try:
            t = self._ns(time.time())
            for info in list(self._workers.values()):
                if not info.alive:
                    continue
                try:
                    m = info.ws.memory
                    values = (int(m.managed), int(m.unmanaged), int(m.spilled))
                except Exception:
                    continue  # no heartbeat yet
                if values == info.last_memory:
                    continue
                info.last_memory = values
                self._emit({
                    "kind": "memory",
                    "time": t,
                    "worker": info.id,
                    "managed": values[0],
                    "unmanaged": values[1],
                    "spilled": values[2],
                })
            if self._writer is not None:
                self._writer.flush()
        except Exception:
            logger.exception("taskscope: memory sampling failed")

    def _progress(self) -> None:
        server = self._server
        if server is None or not server.watching():
            return
        try:
            server.feed_progress(self._gather_progress())
        except Exception:
            logger.exception("taskscope: progress sampling failed")

    def _gather_progress(self) -> dict:
        from .observe import MAX_GROUP_DEPS, MAX_GROUPS, MAX_RUNNING

        now = time.time()
        groups: dict[str, list] = {}
        for tg in list(self._scheduler.task_groups.values()):
            name = tg.prefix.name
            s = tg.states
            g = groups.get(name)
            if g is None:
                g = groups[name] = [0, 0, 0, 0, set(), 0.0]
            g[0] += s.get("waiting", 0) + s.get("no-worker", 0) + s.get("queued", 0)
            g[1] += s.get("processing", 0)
            g[2] += s.get("memory", 0) + s.get("released", 0) + s.get("forgotten", 0)
            g[3] += s.get("erred", 0)
            for dep in tg.dependencies:
                if len(g[4]) < MAX_GROUP_DEPS:
                    g[4].add(dep.prefix.name)
            active = now if (g[0] or g[1]) else tg.stop
            g[5] = max(g[5], active)
        ordered = sorted(groups.items(), key=lambda item: item[1][5], reverse=True)
        kept = ordered[:MAX_GROUPS]
        running = []
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
                running.append((ts.key, ts.prefix.name, info.id, i % threads, self._ns(begin)))
        return {
            "time": self._ns(now),
            "groups": [
                (name, g[0], g[1], g[2], g[3], sorted(g[4])) for name, g in kept
            ],
            "groups_omitted": len(ordered) - len(kept),
            "running": running,
            "running_omitted": total_running - len(running),
            "paused": self._paused,
        }

    # --- Pause / Resume ----------------------------------------------------------------------

    def _pause_from_rpc(self, pause: bool) -> bool:
        """Called from a gRPC thread: runs on the event loop and waits for it."""
        done: concurrent.futures.Future = concurrent.futures.Future()

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


class _UnknownWorker:
    """A worker address the scheduler no longer knows (a result arriving after removal)."""

    def __init__(self, address: str):
        self.address = address
        self.nthreads = 0
        self.memory_limit = None
        self.resources = {}


def _memory_fractions() -> dict:
    """``distributed.worker.memory.*`` as the scheduler's config has them; a disabled threshold
    (``False``) is written as 1.0, the limit itself."""
    out = {}
    for name, default in (("target", 0.6), ("spill", 0.7), ("pause", 0.8), ("terminate", 0.95)):
        value = dask.config.get(f"distributed.worker.memory.{name}", default)
        out[name] = float(value) if value not in (False, None) else 1.0
    return out


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

    return key_split(key)
