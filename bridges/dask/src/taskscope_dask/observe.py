"""taskscope's Observe gRPC (``proto/proto/observe.proto``), served from a Dask scheduler.

The plugin's hooks run on the scheduler's event loop and only append to a deque; everything
else happens on this module's threads:

* the *pump* thread drains that deque every ``tick`` seconds, packs the records into
  serialized ``Records`` batches (:class:`~taskscope_dask.wire.Batcher`), keeps them for
  snapshots and hands them to every watcher;
* grpcio's thread pool runs the RPCs: a ``Watch`` first sends the snapshot (the header, then
  everything recorded so far in chunks of about 1 MiB), then the live batches and the
  ``Progress`` samples from its own bounded queue.

History is kept compactly: batches are concatenated (protobuf merges concatenated messages of
the same type) into chunks of about 1 MiB, and full chunks are zlib-compressed. A watcher's
queue holds at most :data:`QUEUE_UPDATES` updates or :data:`QUEUE_BYTES` bytes; past that,
updates are dropped and counted, and every update sent carries the stream's running count.
"""
from __future__ import annotations

import collections
import hashlib
import hmac
import ipaddress
import logging
import os
import socket
import threading
import zlib
from concurrent import futures
from typing import Any, Callable

import grpc

from . import wire
from ._proto import observe_pb2 as pb

logger = logging.getLogger("distributed.taskscope")  # shown like Dask's own logs

DEFAULT_PORT = 7878
TOKEN_ENV = "TASKSCOPE_TOKEN"
#: Updates waiting for one slow watcher before further ones are dropped.
QUEUE_UPDATES = 256
QUEUE_BYTES = 16 * 1024 * 1024
#: Compressed history kept for snapshots at most (tens of millions of tasks); past it the oldest
#: chunks go, and a new watcher's ``dropped`` count starts at the batches its snapshot lacks
#: (as the Rust hub does, observe/src/hub.rs).
HISTORY_LIMIT_BYTES = 256 * 1024 * 1024
#: Concurrent Watch streams; more are refused with RESOURCE_EXHAUSTED.
MAX_WATCHERS = 8
#: Progress caps (observe.proto).
MAX_GROUPS = 2000
MAX_RUNNING = 10000
MAX_GROUP_DEPS = 64

_SERVICE = "taskscope.observe.v1.Observe"


def parse_address(serve: Any) -> tuple[str, int]:
    """``True`` → 127.0.0.1:7878; ``"host:port"``, ``":port"``, ``"host"`` or a port number."""
    if serve is True:
        return "127.0.0.1", DEFAULT_PORT
    if isinstance(serve, int) and not isinstance(serve, bool):
        return "127.0.0.1", serve
    if not isinstance(serve, str) or not serve:
        raise ValueError(f"serve={serve!r}: expected True, a port or 'host:port'")
    text = serve.strip()
    if text.startswith("["):  # [::1]:7878
        host, _, rest = text[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif text.count(":") == 1:
        host, port = text.split(":")
    elif text.isdigit():
        host, port = "", text
    else:
        host, port = text, ""
    try:
        port_number = int(port) if port else DEFAULT_PORT
    except ValueError:
        raise ValueError(f"serve={serve!r}: the port must be a number") from None
    if not 0 <= port_number < 65536:
        raise ValueError(f"serve={serve!r}: port out of range")
    return host or "127.0.0.1", port_number


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def resolve_token(
    host: str, port: int, token: str | None, token_file: str | os.PathLike | None = None
) -> str | None:
    """The token calls must carry: the argument, else the first line of ``token_file``, else
    ``$TASKSCOPE_TOKEN``. Refuses to expose a non-loopback address without one."""
    if token_file is not None and not token:
        token = read_token_file(token_file)
    token = token or os.environ.get(TOKEN_ENV) or None
    if token is None and not is_loopback(host):
        raise ValueError(
            f"taskscope: refusing to serve the Observe gRPC on {host}:{port} without a token: "
            f"anyone who can reach that address could watch and pause the cluster. Pass "
            f"token_file=... (dask scheduler: --taskscope-token-file) or set {TOKEN_ENV}, or "
            f"bind 127.0.0.1"
        )
    return token


#: A token file longer than this is not a token.
MAX_TOKEN_FILE_BYTES = 64 * 1024
#: A PEM file longer than this is not a certificate chain or a key.
MAX_PEM_BYTES = 1024 * 1024


def _read_bounded(path: str | os.PathLike, what: str, limit: int) -> bytes:
    try:
        with open(path, "rb") as f:
            data = f.read(limit + 1)
    except OSError as e:
        raise ValueError(f"taskscope: cannot read {what} {os.fspath(path)}: {e.strerror}") from None
    if len(data) > limit:
        raise ValueError(f"taskscope: {what} {os.fspath(path)} is larger than {limit} bytes")
    return data


def read_token_file(path: str | os.PathLike) -> str:
    """The token on the first line of ``path`` (its line end dropped), as the Rust side reads
    ``--token-file``."""
    name = os.fspath(path)
    data = _read_bounded(path, "token_file", MAX_TOKEN_FILE_BYTES)
    if data.endswith(b"\r\n"):
        data = data[:-2]
    elif data.endswith(b"\n"):
        data = data[:-1]
    if not data:
        raise ValueError(f"taskscope: token_file {name} is empty")
    if b"\n" in data or b"\r" in data:
        raise ValueError(f"taskscope: token_file {name} holds more than one line: a token is one line")
    # Metadata values are printable ASCII.
    if not all(b == 0x20 or 0x21 <= b <= 0x7E for b in data):
        raise ValueError(
            f"taskscope: token_file {name}: the token must be printable ASCII (it is sent in a header)"
        )
    return data.decode("ascii")


def read_pem(path: str | os.PathLike, what: str, label: str) -> bytes:
    """A PEM file with at least one ``-----BEGIN …{label}-----`` block."""
    data = _read_bounded(path, what, MAX_PEM_BYTES)
    marker = f"{label}-----".encode()
    if not any(
        line.startswith(b"-----BEGIN ") and line.rstrip().endswith(marker)
        for line in data.splitlines()
    ):
        raise ValueError(
            f"taskscope: {what} {os.fspath(path)}: no PEM {label} in it "
            f"(expected a -----BEGIN …{label}----- line)"
        )
    return data


def check_cleartext(host: str, port: int, token: str | None, tls: bool, insecure: bool) -> None:
    """Refuses to send a token over plain HTTP/2 beyond loopback, unless ``insecure``."""
    if token is not None and not tls and not insecure and not is_loopback(host):
        raise ValueError(
            f"taskscope: refusing to serve the Observe gRPC on {host}:{port} without TLS: the "
            f"token would travel in clear text, readable by anyone on the network path. Pass "
            f"tls_cert=... and tls_key=... (dask scheduler: --taskscope-tls-cert/-key), bind "
            f"127.0.0.1, or pass insecure=True (--taskscope-insecure) to accept that"
        )


def same_token(given: str, token: str) -> bool:
    """Constant time, lengths included: the digests compared are always 32 bytes."""

    def digest(text: str) -> bytes:
        return hashlib.sha256(text.encode("utf-8", "surrogateescape")).digest()

    return hmac.compare_digest(digest(given), digest(token))


class _Watcher:
    """One Watch stream's bounded queue of ``(kind, payload)`` updates."""

    def __init__(self) -> None:
        self.items: collections.deque[tuple[str, bytes]] = collections.deque()
        self.size = 0
        self.dropped = 0
        self.closed = False
        self.skipping = False  # the rest of a dropped dependency continuation
        self.cond = threading.Condition()

    def offer(self, kind: str, payload: bytes, open_after: bool = False) -> None:
        with self.cond:
            if self.skipping or (
                len(self.items) >= QUEUE_UPDATES or self.size + len(payload) > QUEUE_BYTES
            ):
                # Once part of a continuation is dropped, so is the rest: a client must not get
                # dependencies whose task it never saw.
                self.dropped += 1
                self.skipping = open_after
                return
            self.items.append((kind, payload))
            self.size += len(payload)
            self.cond.notify()

    def close(self) -> None:
        with self.cond:
            self.closed = True
            self.cond.notify()

    def next(self, timeout: float) -> tuple[str, bytes] | None:
        with self.cond:
            if not self.items and not self.closed:
                self.cond.wait(timeout)
            if not self.items:
                return None
            kind, payload = self.items.popleft()
            self.size -= len(payload)
            return kind, payload


class _History:
    """Everything recorded so far (up to a limit), as serialized ``Records`` chunks of about
    1 MiB."""

    def __init__(self, limit: int = HISTORY_LIMIT_BYTES) -> None:
        # (zlib-compressed chunk, batches in it, its continuation goes on in the next chunk)
        self.sealed: collections.deque[tuple[bytes, int, bool]] = collections.deque()
        self.sealed_bytes = 0
        self.limit = limit
        self.evicted = 0  # batches dropped from the front
        self.open: list[bytes] = []  # batches of the chunk being filled
        self.open_size = 0

    def add(self, batch: bytes, continued: bool, open_after: bool = False) -> None:
        if continued:
            # A dependency continuation must stay alone in its message.
            self._seal()
            self.open.append(batch)
            self.open_size = len(batch)
            self._seal(open_after)
            return
        if self.open_size and self.open_size + len(batch) > wire.BATCH_BYTES:
            self._seal()
        self.open.append(batch)
        self.open_size += len(batch)

    def _seal(self, open_after: bool = False) -> None:
        if self.open:
            chunk = zlib.compress(b"".join(self.open), 1)
            self.sealed.append((chunk, len(self.open), open_after))
            self.sealed_bytes += len(chunk)
            self.open = []
            self.open_size = 0
            while self.sealed_bytes > self.limit and len(self.sealed) > 1:
                # A task and its dependency continuation go together: a snapshot must not
                # start in the middle of one.
                going_on = True
                while going_on and self.sealed:
                    old, batches, going_on = self.sealed.popleft()
                    self.sealed_bytes -= len(old)
                    self.evicted += batches

    def chunks(self) -> list[Callable[[], bytes]]:
        """The snapshot's ``Records`` chunks, decompressed when sent."""
        out: list[Callable[[], bytes]] = [
            (lambda c=c: zlib.decompress(c)) for c, _, _ in self.sealed
        ]
        if self.open:
            data = b"".join(self.open)
            out.append(lambda: data)
        return out


class ObserveServer:
    """The Observe service of one recording. ``pause`` / ``resume`` are callables run from
    gRPC threads, returning whether the cluster is paused after the call."""

    def __init__(
        self,
        header: dict,
        host: str,
        port: int,
        token: str | None,
        pause: Callable[[bool], bool],
        tick: float = 0.1,
        history_limit: int = HISTORY_LIMIT_BYTES,
        tls: tuple[bytes, bytes] | None = None,
    ):
        """``tls``: (certificate chain, private key), both PEM, to serve over TLS."""
        self.host = host
        self.token = token
        self._pause = pause
        self._tick = tick
        self._header = wire.header(header).SerializeToString()
        self._incoming: collections.deque[dict] = collections.deque()
        self._progress: collections.deque[Any] = collections.deque()
        self._history = _History(history_limit)
        self._watchers: list[_Watcher] = []
        self._last_progress: bytes | None = None  # sent to a new watcher after its snapshot
        self._lock = threading.Lock()  # history and watchers
        self._drain_lock = threading.Lock()  # the pump and stop() both drain
        self._stop = threading.Event()
        self._pump_thread = threading.Thread(
            target=self._pump, name="taskscope-observe-pump", daemon=True
        )
        self._server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=MAX_WATCHERS + 4, thread_name_prefix="taskscope-grpc"),
            options=[("grpc.so_reuseport", 0)],
        )
        handlers = {
            "Watch": grpc.unary_stream_rpc_method_handler(
                self._watch,
                request_deserializer=pb.WatchRequest.FromString,
                response_serializer=bytes,  # updates are framed by wire.update_*
            ),
            "Pause": grpc.unary_unary_rpc_method_handler(
                self._pause_rpc,
                request_deserializer=pb.PauseRequest.FromString,
                response_serializer=pb.PauseResponse.SerializeToString,
            ),
            "Resume": grpc.unary_unary_rpc_method_handler(
                self._resume_rpc,
                request_deserializer=pb.ResumeRequest.FromString,
                response_serializer=pb.PauseResponse.SerializeToString,
            ),
        }
        self._server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(_SERVICE, handlers),)
        )
        bind_host = f"[{host}]" if ":" in host else host
        self.tls = tls is not None
        try:
            if tls is None:
                self.port = self._server.add_insecure_port(f"{bind_host}:{port}")
            else:
                cert_pem, key_pem = tls
                credentials = grpc.ssl_server_credentials([(key_pem, cert_pem)])
                self.port = self._server.add_secure_port(f"{bind_host}:{port}", credentials)
        except RuntimeError as e:
            raise OSError(f"taskscope: cannot serve the Observe gRPC on {host}:{port}: {e}") from e
        if self.port == 0:
            raise OSError(f"taskscope: cannot serve the Observe gRPC on {host}:{port} (in use?)")

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def start(self) -> None:
        self._server.start()
        self._pump_thread.start()

    def stop(self) -> None:
        """Ends every stream (after what is queued) and stops serving; does not block long."""
        if self._stop.is_set():
            return
        self._drain()
        self._stop.set()
        with self._lock:
            watchers = list(self._watchers)
        for w in watchers:
            w.close()
        self._server.stop(grace=1.0)
        self._pump_thread.join(timeout=2.0)

    # --- fed from the scheduler's event loop (deque appends are thread-safe) -----------------

    def feed(self, record: dict) -> None:
        self._incoming.append(record)

    def feed_progress(self, progress: Any) -> None:
        self._progress.append(progress)

    def watching(self) -> bool:
        return bool(self._watchers)

    # --- pump thread -------------------------------------------------------------------------

    def _pump(self) -> None:
        while not self._stop.wait(self._tick):
            try:
                self._drain()
            except Exception:  # never let a bad record kill live updates
                logger.exception("taskscope: failed to forward records to Observe watchers")

    def _drain(self) -> None:
        with self._drain_lock:
            self._drain_locked()

    def _drain_locked(self) -> None:
        incoming = self._incoming
        batcher = wire.Batcher()
        n = len(incoming)
        for _ in range(n):
            batcher.push(incoming.popleft())
        batches = batcher.take() if n else []
        progress = []
        while self._progress:
            progress.append(_progress_message(self._progress.popleft()).SerializeToString())
        if not batches and not progress:
            return
        with self._lock:
            for data, continued, open_after in batches:
                self._history.add(data, continued, open_after)
            if progress:
                self._last_progress = progress[-1]
            watchers = list(self._watchers)
        for w in watchers:
            for data, _, open_after in batches:
                w.offer("records", data, open_after)
            for data in progress:
                w.offer("progress", data)

    # --- RPCs (gRPC threads) -----------------------------------------------------------------

    def _check_token(self, context: grpc.ServicerContext) -> None:
        if self.token is None:
            return
        expected = f"Bearer {self.token}"
        for key, value in context.invocation_metadata():
            if key == "authorization" and isinstance(value, str) and same_token(value, expected):
                return
        context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong token")

    def _watch(self, request: pb.WatchRequest, context: grpc.ServicerContext):
        self._check_token(context)
        watcher = _Watcher()
        with self._lock:
            if len(self._watchers) >= MAX_WATCHERS:
                context.abort(
                    grpc.StatusCode.RESOURCE_EXHAUSTED,
                    f"at most {MAX_WATCHERS} watchers at once",
                )
            # Batches sealed from now on go to the queue; the ones before are the snapshot.
            chunks = self._history.chunks()
            # A run longer than the history keeps: the snapshot says how much of it is gone.
            watcher.dropped = self._history.evicted
            progress = self._last_progress
            self._watchers.append(watcher)
        try:
            if not chunks:
                yield wire.update_snapshot(watcher.dropped, self._header, b"", last=True)
            for i, chunk in enumerate(chunks):
                header = self._header if i == 0 else None
                last = i + 1 == len(chunks)
                yield wire.update_snapshot(watcher.dropped, header, chunk(), last)
            if progress is not None:
                yield wire.update_progress(watcher.dropped, progress)
            while context.is_active():
                item = watcher.next(timeout=0.5)
                if item is None:
                    if watcher.closed:
                        return
                    continue
                kind, payload = item
                if kind == "records":
                    yield wire.update_records(watcher.dropped, payload)
                else:
                    yield wire.update_progress(watcher.dropped, payload)
        finally:
            with self._lock:
                if watcher in self._watchers:
                    self._watchers.remove(watcher)

    def _pause_rpc(self, request: pb.PauseRequest, context: grpc.ServicerContext):
        self._check_token(context)
        return self._pause_or_resume(True, context)

    def _resume_rpc(self, request: pb.ResumeRequest, context: grpc.ServicerContext):
        self._check_token(context)
        return self._pause_or_resume(False, context)

    def _pause_or_resume(self, pause: bool, context: grpc.ServicerContext) -> pb.PauseResponse:
        try:
            paused = self._pause(pause)
        except Refused as e:
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(e))
        except Exception as e:
            logger.exception("taskscope: %s failed", "Pause" if pause else "Resume")
            context.abort(grpc.StatusCode.INTERNAL, f"{type(e).__name__}: {e}")
        return pb.PauseResponse(paused=paused)


class Refused(Exception):
    """Pause / Resume cannot be done in this state: FAILED_PRECONDITION."""


def _progress_message(p: dict) -> pb.Progress:
    """``Progress`` from what the plugin gathered on the event loop (plain values)."""
    out = pb.Progress(
        time=p["time"],
        groups_omitted=p["groups_omitted"],
        running_omitted=p["running_omitted"],
        paused=p["paused"],
    )
    for name, waiting, running, done, erred, deps in p["groups"]:
        out.groups.add(
            name=name, waiting=waiting, running=running, done=done, erred=erred, dependencies=deps
        )
    for key, group, worker, thread, start in p["running"]:
        r = out.running.add(group=group, worker=worker, thread=thread, start=start)
        wire.set_key(r.key, key)
    return out


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on right now (for tests and examples)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


__all__ = [
    "ObserveServer",
    "Refused",
    "check_cleartext",
    "free_port",
    "parse_address",
    "read_pem",
    "read_token_file",
    "resolve_token",
]
