"""``taskscope_dask.trace()``: record a block of Dask work, as ``performance_report`` does, then
analyze it with the bundled binary.

::

    with taskscope_dask.trace("run.ndjson") as t:
        result = big_computation.compute()
    t.analyze()          # a Report: findings, summary; a table in Jupyter
    t.simulate(workers=[2, 4, 8])   # would more workers help? a Simulation

The trace is written by the plugin, in the scheduler's process: with a remote scheduler it is
a file on the scheduler's machine, and :meth:`Trace.fetch` copies it here.
"""

from __future__ import annotations

import contextlib
import os
import socket
import tempfile
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from .binary import run_json, run_taskscope
from .plugin import TaskscopePlugin
from .report import Report
from .simulation import Simulation

if TYPE_CHECKING:
    from distributed import Client

#: ``fetch`` reads the trace in pieces of this size, one ``run_on_scheduler`` call each, so no
#: message comes near Dask's limits whatever the trace's size.
FETCH_CHUNK_BYTES = 16 * 2**20


# Functions run on the scheduler take ``dask_scheduler`` last: Dask passes it by keyword.


def _where(path: str) -> tuple[str, str]:
    """Runs on the scheduler: its host name and the absolute path the plugin writes."""
    return socket.gethostname(), os.path.abspath(path)


async def _finish(name: str, dask_scheduler: Any) -> bool:
    """Runs on the scheduler: closes the plugin, so the trace is complete (every line written,
    a ``.zst`` frame ended) before the client's block ends. Dask's unregister alone does not
    close a plugin."""
    plugin = dask_scheduler.plugins.get(name)
    if plugin is None:
        return False
    await plugin.close()
    return True


def _read_chunk(path: str, offset: int, size: int) -> bytes:
    """Runs on the scheduler: ``size`` bytes of the trace from ``offset``."""
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read(size)


def _on_scheduler(client: Client, function: Any, *args: Any) -> Any:
    """``client.run_on_scheduler`` (untyped in distributed)."""
    return client.run_on_scheduler(function, *args)  # type: ignore[no-untyped-call]


class Trace:
    """A run recorded by :func:`trace`. ``path`` is the trace on the scheduler's machine;
    ``local_path`` the file this process reads (the same file when the scheduler runs here,
    the copy :meth:`fetch` made otherwise)."""

    def __init__(self, client: Client, path: str, scheduler_host: str, scheduler_path: str):
        self.client = client
        #: The trace as the scheduler writes it (absolute, on the scheduler's machine).
        self.path = scheduler_path
        self.requested_path = path
        self.scheduler_host = scheduler_host
        self.local_path: str | None = scheduler_path if self.is_local else None
        #: Where the Observe gRPC was served (``serve=...``), e.g. ``127.0.0.1:7878``.
        self.serve_address: str | None = None
        self.closed = False

    @property
    def is_local(self) -> bool:
        """Whether the scheduler runs on this machine, so its trace file can be read here."""
        return self.scheduler_host == socket.gethostname() and os.path.exists(self.path)

    def fetch(self, dest: str | os.PathLike[str] | None = None) -> str:
        """Copies the trace from the scheduler's machine (through ``client.run_on_scheduler``,
        16 MiB a call) to ``dest`` (default: a file of the same name in a new temporary
        directory) and returns the local path, which :meth:`analyze` and the others use from
        then on."""
        self._require_closed("fetch")
        if dest is None:
            dest = os.path.join(tempfile.mkdtemp(prefix="taskscope-"), os.path.basename(self.path))
        dest = os.fspath(dest)
        offset = 0
        with open(dest, "wb") as out:
            while True:
                chunk: bytes = _on_scheduler(
                    self.client, _read_chunk, self.path, offset, FETCH_CHUNK_BYTES
                )
                out.write(chunk)
                offset += len(chunk)
                if len(chunk) < FETCH_CHUNK_BYTES:
                    break
        self.local_path = dest
        return dest

    def _local(self, what: str) -> str:
        self._require_closed(what)
        if self.local_path is None or not os.path.exists(self.local_path):
            raise FileNotFoundError(
                f"the trace was written on the scheduler's machine ({self.scheduler_host}: "
                f"{self.path}), which this process cannot read: call t.fetch() to copy it here "
                "first"
            )
        return self.local_path

    def _require_closed(self, what: str) -> None:
        if not self.closed:
            raise RuntimeError(
                f"t.{what}() reads the finished trace: call it after the `with trace(...)` block"
            )

    def analyze(self) -> Report:
        """``taskscope analyze --format json`` on the trace, as a :class:`Report`."""
        return Report.from_trace(self._local("analyze"))

    def simulate(
        self,
        workers: Iterable[int] | None = None,
        threads: Iterable[int] | None = None,
        fix: str | None = None,
        memory_limit: str | int | None = None,
        bandwidth: str | None = None,
        latency: str | None = None,
        cores: int | None = None,
    ) -> Simulation:
        """``taskscope simulate --format json``: the run predicted on other cluster shapes
        (``workers=[2, 4, 8]``, ``threads=[1, 2]``), optionally with a finding's ``fix``
        applied, as a :class:`Simulation` (a table in Jupyter)."""
        return Simulation.from_trace(
            self._local("simulate"),
            workers=workers,
            threads=threads,
            fix=fix,
            memory_limit=memory_limit,
            bandwidth=bandwidth,
            latency=latency,
            cores=cores,
        )

    def info(self) -> dict[str, Any]:
        """``taskscope info --format json``: tasks, groups, workers, bytes moved."""
        info: dict[str, Any] = run_json("info", self._local("info"))
        return info

    def flamegraph(
        self, out: str | os.PathLike[str] = "taskscope-flamegraph.svg", by: str = "group"
    ) -> str:
        """``taskscope flamegraph -o OUT --by group|worker``: where the time went, as an SVG;
        returns its path."""
        run_taskscope("flamegraph", self._local("flamegraph"), "-o", out, "--by", by)
        return os.fspath(out)

    def report(self, out: str | os.PathLike[str] = "taskscope-report.html") -> str:
        """``taskscope report -o OUT``: one self-contained HTML page for the run (findings,
        task stream, memory, groups, flamegraph, critical path); returns its path."""
        run_taskscope("report", self._local("report"), "-o", out)
        return os.fspath(out)

    def export_chrome(self, out: str | os.PathLike[str]) -> str:
        """``taskscope export chrome``: a trace for Perfetto or ``chrome://tracing``."""
        run_taskscope("export", "chrome", self._local("export_chrome"), "-o", out)
        return os.fspath(out)

    def __repr__(self) -> str:
        state = "finished" if self.closed else "recording"
        return f"<taskscope_dask.Trace {state} {self.path!r} on {self.scheduler_host}>"


@contextlib.contextmanager
def trace(
    path: str | os.PathLike[str] = "taskscope-trace.ndjson",
    client: Client | None = None,
    serve: bool | int | str = False,
    token: str | None = None,
    interval: float = 0.5,
) -> Iterator[Trace]:
    """Records the Dask work done inside the block to ``path`` (``.zst``: compressed, needs
    ``zstandard``), in the image of ``distributed.performance_report``.

    Registers :class:`TaskscopePlugin` on ``client`` (default: ``distributed.get_client()``)
    and, when the block ends — also when it raises — closes it and unregisters it, so the trace
    is complete. The file is written by the scheduler, relative to the scheduler's working
    directory: with a remote scheduler, :meth:`Trace.fetch` copies it to this machine.
    ``serve`` and ``token`` serve the Observe gRPC meanwhile (``taskscope top``), as the
    plugin's own arguments do.
    """
    if client is None:
        from distributed import get_client

        client = get_client()
    path = os.fspath(path)
    plugin = TaskscopePlugin(path=path, serve=serve, token=token, interval=interval)
    host, scheduler_path = _on_scheduler(client, _where, path)
    t = Trace(client, path, host, scheduler_path)
    client.register_plugin(plugin)
    if serve:
        t.serve_address = _on_scheduler(client, _serve_address, plugin.name)
    try:
        yield t
    finally:
        try:
            _on_scheduler(client, _finish, plugin.name)
        finally:
            client.unregister_scheduler_plugin(plugin.name)
            t.closed = True
            if t.is_local:
                t.local_path = t.path


def _serve_address(name: str, dask_scheduler: Any) -> str | None:
    plugin = dask_scheduler.plugins.get(name)
    address: str | None = getattr(plugin, "serve_address", None)
    return address
