"""Running ASGI apps (the sandbox, the receiver) with uvicorn: binding, readiness, clean stops."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import signal
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import uvicorn

from paymobctl.errors import UsageError


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


def base_url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else (f"[{host}]" if ":" in host else host)
    return f"http://{shown}:{port}"


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
                signal.signal(sig, handler)


def _config(app: Any, **overrides: Any) -> uvicorn.Config:
    options: dict[str, Any] = {
        "log_level": "warning",
        "access_log": False,
        "lifespan": "on",
        "timeout_graceful_shutdown": 5,
    }
    options.update(overrides)
    return uvicorn.Config(app, **options)


def run(app: Any, sock: socket.socket, *, on_ready: Callable[[str], None], **config: Any) -> None:
    """Serve ``app`` on ``sock`` in this thread until Ctrl-C/SIGTERM; ``on_ready`` once listening."""
    server = Server(_config(app, **config))
    server.config.load()

    async def main() -> None:
        task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:
            if task.done():
                await task
                return
            await asyncio.sleep(0.01)
        on_ready(base_url(sock))
        await task

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
    problem = write_atomically(path, url + "\n")
    return f"could not write --ready-file {path}: {problem}" if problem else None


def write_atomically(path: Path, text: str) -> str | None:
    """Replace ``path`` with ``text`` in one step (mode 0644: only addresses, nothing secret);
    the reason on failure, None on success."""
    tmp: str | None = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        if hasattr(os, "fchmod"):
            os.fchmod(fd, 0o644)  # only a URL: readable like any file a script would write
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        Path(tmp).replace(path)
    except OSError as exc:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        return str(exc.strerror or exc)
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
