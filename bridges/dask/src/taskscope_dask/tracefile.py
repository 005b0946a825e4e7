"""Writing taskscope's native trace format: NDJSON, the header on line 1, then one record per
line tagged by ``kind`` (``task``, ``memory``, ``event``, and since 1.1 ``group-metrics``), as
``traces/src/native.rs`` reads it.

Lines are encoded as they are recorded and written out in batches (every ``flush_lines`` lines
and whenever :meth:`TraceFile.flush` is called), so the file is always a valid trace up to its
last complete line: a scheduler that dies loses only what was recorded since the last flush.
"""
from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .records import Header, Record

FORMAT_NAME = "taskscope-trace"
FORMAT_VERSION = "1.3"


def _json_default(obj: Any) -> Any:
    # Dask keys may hold bytes; other odd values are written as their text.
    if isinstance(obj, bytes):
        return obj.decode("utf-8", "replace")
    if isinstance(obj, (set, frozenset)):
        return list(obj)
    return str(obj)


#: Compact (`{"kind":"task",…`): the reader's fast path matches that prefix exactly.
encode = json.JSONEncoder(
    separators=(",", ":"), default=_json_default, check_circular=False
).encode


class TraceFile:
    """A native trace being written. ``path`` ending in ``.zst`` is zstd-compressed (needs the
    ``zstandard`` package)."""

    def __init__(self, path: str, header: Header, flush_lines: int = 1000):
        self.path = path
        self.flush_lines = flush_lines
        self._lines: list[str] = []
        # Open for the trace's lifetime; close() closes it.
        raw = open(path, "wb")  # noqa: SIM115
        if path.endswith(".zst"):
            try:
                import zstandard
            except ImportError:
                raw.close()
                os.unlink(path)
                raise ValueError(
                    f"{path}: writing a .zst trace needs the zstandard package "
                    "(pip install 'taskscope-dask[zstd]'), or use a plain .ndjson name"
                ) from None
            writer = zstandard.ZstdCompressor(level=1).stream_writer(raw)
            self._out: IO[bytes] | None = writer
            # Ends a zstd block: a reader of the file sees everything written so far.
            self._flush_out: Callable[[], Any] = lambda: writer.flush(zstandard.FLUSH_BLOCK)
        else:
            self._out = raw
            self._flush_out = raw.flush
        self.write(header)
        self.flush()

    def write(self, record: Header | Record) -> None:
        lines = self._lines
        lines.append(encode(record))
        if len(lines) >= self.flush_lines:
            self.flush()

    def flush(self) -> None:
        if self._out is None or not self._lines:
            return
        data = "\n".join(self._lines) + "\n"
        self._lines.clear()
        self._out.write(data.encode("utf-8"))
        self._flush_out()

    def close(self) -> None:
        if self._out is None:
            return
        self.flush()
        self._out.close()  # for zstd, ends the frame
        self._out = None
