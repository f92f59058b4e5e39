"""Running ASGI apps (the sandbox, the receiver) with uvicorn: binding, readiness, clean stops,
and the bounds every request is read within (header and body deadlines, a body size cap)."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import os
import signal
import socket
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import uvicorn
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from paymobctl.errors import UsageError
from paymobctl.paths import write_atomically

MAX_BODY = 1_048_576  # bytes of a request body read before answering 413 (listen --max-body)
KEPT_BODY = 65_536  # bytes of an over-limit body the receiver keeps (flagged truncated)
READ_TIMEOUT = 10.0  # seconds for a request's headers, and again for its body


def bind(host: str, port: int, *, what: str) -> socket.socket:
    """Bind the listening socket ourselves, so a busy port is a clear error before anything starts."""
    if not 0 <= port <= 65535:
        raise UsageError(f"invalid port {port}", hint="use 1-65535, or 0 for any free port")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise UsageError(
            f"cannot listen on {host!r}: {exc.strerror}", hint="use 127.0.0.1 or 0.0.0.0"
        ) from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise UsageError(
                f"port {port} on {host} is already in use, so {what} cannot start",
                hint=f"stop whatever uses it (`lsof -i :{port}`), or pass --port N (0 picks a free port)",
            ) from None
        if exc.errno == errno.EACCES:
            raise UsageError(
                f"not allowed to listen on port {port}", hint="use a port above 1023"
            ) from None
        raise UsageError(f"cannot listen on {host}:{port} ({exc.strerror})") from None
    sock.listen(2048)
    sock.setblocking(False)
    return sock


def is_loopback(sock: socket.socket) -> bool:
    """Whether a bound socket only accepts connections from this machine."""
    import ipaddress

    return ipaddress.ip_address(str(sock.getsockname()[0]).split("%", 1)[0]).is_loopback


def base_url(sock: socket.socket) -> str:
    """The http:// URL a bound socket is reachable at (0.0.0.0 shown as 127.0.0.1)."""
    host, port = sock.getsockname()[:2]
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else (f"[{host}]" if ":" in host else host)
    return f"http://{shown}:{port}"


FORCED_SHUTDOWN = 1.0  # seconds the app's own shutdown may take after a second Ctrl-C


class Server(uvicorn.Server):
    """uvicorn's server, but Ctrl-C and SIGTERM just stop it (no re-raised signal afterwards)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def stop(sig: int, frame: FrameType | None) -> None:
            del frame
            if self.should_exit and sig == signal.SIGINT:
                self.force_exit = True
            self.should_exit = True

        originals = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in originals.items():
                # Stopped by Ctrl-C: a second one, pressed while the process finishes, is
                # ignored rather than turned into a KeyboardInterrupt (exits quietly).
                stopping = sig == signal.SIGINT and self.should_exit
                signal.signal(sig, signal.SIG_IGN if stopping else handler)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        await super().shutdown(sockets)
        if self.force_exit and self.config.lifespan != "off":
            # A second Ctrl-C makes uvicorn skip the app's shutdown; its lifespan task would then
            # be cancelled when the loop closes and logged as a traceback. Run it, briefly.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.lifespan.shutdown(), FORCED_SHUTDOWN)


# -- bounded reading ----------------------------------------------------------------------------


def header_deadline_protocol(timeout: float = READ_TIMEOUT) -> type[asyncio.Protocol]:
    """uvicorn's HTTP protocol, closing a connection whose request headers are not complete
    ``timeout`` seconds after it opened (or after its previous response).

    uvicorn has no header timeout: ``timeout_keep_alive`` only starts once a request was
    parsed, ``limit_concurrency`` answers 503 to everyone once slow clients fill it, and
    ``h11_max_incomplete_event_size`` bounds header bytes, not time. Without this, slow-loris
    connections that never finish their headers stay open forever and use up file descriptors
    until ``/healthz`` can no longer connect (tests/test_limits.py).
    """
    from uvicorn.protocols.http.auto import AutoHTTPProtocol

    base: Any = AutoHTTPProtocol

    class HeaderDeadline(base):  # type: ignore[misc]
        # One timer per connection, re-armed lazily: a response only notes when the wait for
        # the next headers began, and the timer, when it fires, closes the connection or
        # sleeps again for what is left. A cancel and a new call_later per request (~7 µs of
        # CPU) would cost listen 3% of its throughput (scripts/bench_listen.py).
        _header_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(transport)
            self._await_headers()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._await_headers()

        def connection_lost(self, exc: Exception | None) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None
            super().connection_lost(exc)

        def _await_headers(self) -> None:
            self._armed_cycle = self.cycle  # a new cycle appears once the next headers parsed
            self._waiting_since = self.loop.time()
            if self._header_timer is None:
                self._header_timer = self.loop.call_later(timeout, self._header_deadline)

        def _header_deadline(self) -> None:
            self._header_timer = None
            if self.transport.is_closing() or self.cycle is not self._armed_cycle:
                return  # closed, or a request is in progress: its response waits again
            left = self._waiting_since + timeout - self.loop.time()
            if left > 0:
                self._header_timer = self.loop.call_later(left, self._header_deadline)
            else:
                self.transport.close()

    HeaderDeadline.__name__ = HeaderDeadline.__qualname__ = f"HeaderDeadline{base.__name__}"
    return HeaderDeadline


@dataclass(slots=True)
class Body:
    """A request body read within bounds. ``data`` is all of it, or (``too_large``) its first
    :data:`KEPT_BODY` bytes, or (``timed_out``) what arrived before the deadline."""

    data: bytes
    too_large: bool = False
    timed_out: bool = False

    @property
    def truncated(self) -> bool:
        return self.too_large or self.timed_out


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            text = value.strip()
            return int(text) if text.isdigit() and len(text) < 19 else None
    return None


class _BodyDeadlines:
    """The body deadlines of every request being read on one event loop, enforced by one
    timer every :attr:`TICK` seconds that cancels the late readers.

    Measured (uvloop): a per-request ``asyncio.timeout`` costs 16-27 µs and a bare
    ``call_later`` ~8 µs (each arms a libuv timer), more than reading a callback's body;
    a dict entry costs well under 1 µs. Deadlines hold to within ``TICK``.
    """

    TICK = 0.1

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.reading: dict[asyncio.Task[Any], float] = {}
        self.expired: set[asyncio.Task[Any]] = set()
        self._ticking = False

    def watch(self, task: asyncio.Task[Any], timeout: float) -> None:
        self.reading[task] = self.loop.time() + timeout
        if not self._ticking:
            self._ticking = True
            self.loop.call_later(self.TICK, self._tick)

    def _tick(self) -> None:
        now = self.loop.time()
        for task, deadline in list(self.reading.items()):
            if deadline <= now:
                del self.reading[task]
                self.expired.add(task)
                task.cancel()
        self._ticking = bool(self.reading)
        if self._ticking:
            self.loop.call_later(self.TICK, self._tick)


_DEADLINES: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _BodyDeadlines] = (
    weakref.WeakKeyDictionary()
)
_LAST: list[_BodyDeadlines] = []  # the latest loop's (a server runs one loop: no lookup)


def _body_deadlines() -> _BodyDeadlines:
    loop = asyncio.get_running_loop()
    if _LAST and _LAST[0].loop is loop:
        return _LAST[0]
    found = _DEADLINES.get(loop)
    if found is None:
        found = _DEADLINES[loop] = _BodyDeadlines(loop)
    _LAST[:] = [found]
    return found


async def read_body(
    scope: Scope, receive: Receive, *, limit: int = MAX_BODY, timeout: float = READ_TIMEOUT
) -> Body:
    """Read a request body, stopping at ``limit`` bytes and at ``timeout`` seconds.

    Past the limit nothing more is read (the caller answers 413 with ``connection: close``,
    so a 500 MB upload costs at most ``limit`` bytes of memory); a declared Content-Length
    over the limit stops after the first :data:`KEPT_BODY` bytes. A client that disconnects
    leaves what it sent.
    """
    stop_at = limit
    announced_too_large = False
    chunks: list[bytes] = []
    size = 0
    deadlines = _body_deadlines()
    task = asyncio.current_task()
    assert task is not None
    deadlines.watch(task, timeout)
    try:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            if chunk:
                chunks.append(chunk)
                size += len(chunk)
            if size > stop_at:
                return Body(b"".join(chunks)[:KEPT_BODY], too_large=True)
            if not message.get("more_body"):
                break
            if len(chunks) == 1:  # a body in pieces: is it declared too large already?
                declared = _declared_length(scope)
                if declared is not None and declared > limit:
                    stop_at = min(KEPT_BODY, limit)
                    announced_too_large = True
    except asyncio.CancelledError:
        if task not in deadlines.expired:
            raise
        deadlines.expired.discard(task)
        task.uncancel()
        return Body(b"".join(chunks)[:KEPT_BODY], timed_out=True)
    finally:
        deadlines.reading.pop(task, None)
    if announced_too_large:  # declared over the limit, then the client stopped early
        return Body(b"".join(chunks)[:KEPT_BODY], too_large=True)
    return Body(b"".join(chunks) if len(chunks) != 1 else chunks[0])


class BoundedBodies:
    """ASGI middleware: every request body is read within :func:`read_body`'s bounds before the
    app sees it; over the limit is a 413, too slow a 408 (DRF-style ``{"detail": ...}``)."""

    def __init__(
        self, app: ASGIApp, *, limit: int = MAX_BODY, timeout: float = READ_TIMEOUT
    ) -> None:
        self.app = app
        self.limit = limit
        self.timeout = timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body = await read_body(scope, receive, limit=self.limit, timeout=self.timeout)
        if body.truncated:
            detail = (
                f"request body too large (limit {self.limit} bytes)"
                if body.too_large
                else f"request body not received within {self.timeout:g} s"
            )
            await refuse(send, 413 if body.too_large else 408, detail)
            return
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if sent:
                return await receive()  # the disconnect, when it comes
            sent = True
            return {"type": "http.request", "body": body.data, "more_body": False}

        await self.app(scope, replay, send)


async def refuse(send: Send, status: int, detail: str) -> None:
    """Answer ``{"detail": ...}`` and close the connection (the rest of the body is not read)."""
    data = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(data)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": data})


# -- running --------------------------------------------------------------------------------------


def _config(app: Any, **overrides: Any) -> uvicorn.Config:
    options: dict[str, Any] = {
        "log_level": "warning",
        "access_log": False,
        "lifespan": "on",
        "timeout_graceful_shutdown": 5,
        "http": header_deadline_protocol(overrides.pop("header_timeout", READ_TIMEOUT)),
    }
    options.update(overrides)
    return uvicorn.Config(app, **options)


def run(
    app: Any,
    sock: socket.socket,
    *,
    on_ready: Callable[[str], None],
    stop: threading.Event | None = None,
    **config: Any,
) -> None:
    """Serve ``app`` on ``sock`` in this thread until Ctrl-C/SIGTERM (or ``stop`` is set by
    another thread); ``on_ready`` once listening."""
    server = Server(_config(app, **config))
    server.config.load()

    async def watch(event: threading.Event) -> None:
        while not event.is_set() and not server.should_exit:
            await asyncio.sleep(0.2)
        server.should_exit = True

    async def main() -> None:
        task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:
            if task.done():
                await task
                return
            await asyncio.sleep(0.01)
        on_ready(base_url(sock))
        watcher = asyncio.create_task(watch(stop)) if stop is not None else None
        try:
            await task
        finally:
            if watcher is not None:
                watcher.cancel()

    # uvloop when installed (as uvicorn would pick it), else the standard loop.
    with asyncio.Runner(loop_factory=server.config.get_loop_factory()) as runner:
        runner.run(main())


def check_ready_file(path: Path) -> None:
    """Refuse a --ready-file that could not be written, before anything starts."""
    if path.is_dir():
        raise UsageError(f"--ready-file {path}: is a directory", hint="give a file path")
    parent = path.parent if str(path.parent) else Path()
    if not parent.is_dir():
        raise UsageError(f"--ready-file {path}: the directory {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise UsageError(f"--ready-file {path}: cannot write in {parent}")


def write_ready_file(path: Path, url: str) -> str | None:
    """Written only once the port is bound and serving, atomically (a reader never sees half).
    Returns an error message instead of raising: the server keeps serving either way."""
    try:
        # Only a URL: readable like any file a script would write.
        write_atomically(path, url + "\n", mode=0o644)
    except OSError as exc:
        return f"could not write --ready-file {path}: {exc.strerror or exc}"
    return None


class Background:
    """An app served from a thread (the demo, benchmarks): started and stopped by the caller."""

    def __init__(
        self,
        app: Any,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        what: str = "the server",
        **config: Any,
    ) -> None:
        self.sock = bind(host, port, what=what)
        self.url = base_url(self.sock)
        self.server = Server(_config(app, **config))
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    def __enter__(self) -> Background:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("server did not start")
            time.sleep(0.005)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()
