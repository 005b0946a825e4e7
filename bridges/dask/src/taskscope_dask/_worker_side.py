"""What the scheduler plugin runs inside the workers: a logging handler that forwards Dask's own
warnings to the scheduler, and a heartbeat on request.

This module travels to the workers *by value* (cloudpickle), so workers need not have
taskscope-dask installed: keep it self-contained — standard library and ``distributed`` only,
nothing from the rest of ``taskscope_dask``.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
from typing import Any

from distributed.diagnostics.plugin import WorkerPlugin

#: The topic of the worker events that carry forwarded warnings.
TOPIC = "taskscope-warning"
#: Longest message forwarded, in characters (Dask's "Run Failed" quotes whole arguments).
MAX_MESSAGE = 4000


class WarningForwarder(WorkerPlugin):
    """Forwards WARNING-and-above records of the worker's ``distributed.*`` loggers to the
    scheduler, as ``worker.log_event(TOPIC, {...})``.

    At most ``cap`` records per worker, and one per message template (``record.msg``) and
    logger per second: the memory monitor repeats "Unmanaged memory use is high" every 100 ms
    with a new byte count each time. Not installed in the scheduler's own process (a
    ``processes=False`` cluster), where the scheduler's handler sees the same records.
    """

    name = "taskscope-warnings"

    def __init__(self, scheduler_pid: int, cap: int = 1000):
        self.scheduler_pid = scheduler_pid
        self.cap = cap

    def setup(self, worker: Any) -> None:
        self._handler = None
        if os.getpid() == self.scheduler_pid:
            return
        self._handler = _Handler(worker, self.cap)
        logging.getLogger("distributed").addHandler(self._handler)

    async def teardown(self, worker: Any) -> None:
        handler = getattr(self, "_handler", None)
        if handler is not None:
            logging.getLogger("distributed").removeHandler(handler)
            self._handler = None
        if getattr(worker.status, "name", "") == "closing" and os.getpid() != self.scheduler_pid:
            # The worker is closing (a cluster shutting down closes its workers before its
            # scheduler): one last heartbeat carries the fine performance metrics gathered
            # since the previous one, so the scheduler's totals are complete. Only when there
            # are some (tuple keys: the plain ones are latency and the like).
            comm = getattr(worker.batched_stream, "comm", None)
            pending = getattr(worker, "digests_total_since_heartbeat", None) or {}
            if (
                comm is not None
                and not comm.closed()
                and any(type(k) is tuple for k in list(pending))
            ):
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(worker.heartbeat(), 1.0)


class _Handler(logging.Handler):
    def __init__(self, worker: Any, cap: int):
        super().__init__(logging.WARNING)
        self.worker = worker
        self.cap = cap
        self.sent = 0
        self.last: dict[tuple[str, str], float] = {}
        self.busy = threading.local()

    def emit(self, record: logging.LogRecord) -> None:
        name = record.name
        if not name.startswith("distributed") or name.startswith("distributed.taskscope"):
            return
        if getattr(self.busy, "on", False):
            return  # a warning logged while forwarding one
        self.busy.on = True
        try:
            if self.sent >= self.cap:
                return
            now = time.monotonic()
            template = (name, str(record.msg)[:200])
            last = self.last.get(template)
            if last is not None and now - last < 1.0:
                return
            if len(self.last) > 1000:
                self.last.clear()
            self.last[template] = now
            self.sent += 1
            try:
                message = record.getMessage()
            except Exception:
                message = str(record.msg)
            if len(message) > MAX_MESSAGE:
                message = message[:MAX_MESSAGE] + "…"
            worker = self.worker
            delay = getattr(worker, "scheduler_delay", 0) or 0
            worker.log_event(
                TOPIC,
                {
                    "source": name,
                    "level": record.levelname,
                    "message": message,
                    # The scheduler's clock, as Dask corrects the worker's task timings.
                    "time": record.created + delay,
                },
            )
        except Exception:
            pass
        finally:
            self.busy.on = False


async def heartbeat(dask_worker: Any) -> bool:
    """Run on each worker by the scheduler plugin at close (Dask's ``run`` handler): sends a
    heartbeat now, so the scheduler has the metrics gathered since the previous one."""
    try:
        await asyncio.wait_for(dask_worker.heartbeat(), 1.0)
        return True
    except Exception:
        return False
