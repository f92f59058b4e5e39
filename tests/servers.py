"""Real servers on free loopback ports for end-to-end tests (started and stopped by the test)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


def free_socket() -> socket.socket:
    # proto=IPPROTO_TCP matters: asyncio only sets TCP_NODELAY on accepted sockets of that proto,
    # and without it every keep-alive request waits ~40 ms for a delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def free_port() -> int:
    with free_socket() as sock:
        return int(sock.getsockname()[1])


@contextmanager
def serve(app: Any, **config: Any) -> Iterator[str]:
    """Run an ASGI app with uvicorn in a thread on a free port; yield its base URL."""
    sock = free_socket()
    port = sock.getsockname()[1]
    options = {"log_level": "warning", "lifespan": "on", "access_log": False, **config}
    server = uvicorn.Server(uvicorn.Config(app, **options))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("test server did not start")
        time.sleep(0.005)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def start_paymobctl(command: str, tmp_path: Path, *args: str) -> tuple[subprocess.Popen[str], str]:
    """Start `paymobctl <command> --port 0 --ready-file F *args` as a real process on a free
    loopback port; return the process and the URL it wrote to the ready file."""
    ready = tmp_path / f"{command}-ready-{time.monotonic_ns()}"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "paymobctl",
            command,
            "--port",
            "0",
            "--ready-file",
            str(ready),
            *args,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    deadline = time.monotonic() + 20
    while not ready.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"{command} did not start: {process.communicate()}")
        time.sleep(0.02)
    return process, ready.read_text().strip()


def stop_paymobctl(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    """Ctrl-C a process from `start_paymobctl`; return its exit code, stdout and stderr."""
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=20)
    return process.returncode, out, err


@dataclass
class Captured:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Recorder:
    """A tiny merchant app: records every request and answers as told."""

    requests: list[Captured] = field(default_factory=list)
    status: int = 200
    answers: list[int] = field(default_factory=list)  # consumed first, then `status`
    delay: float = 0.0

    def app(self) -> Starlette:
        async def endpoint(request: Request) -> Response:
            body = await request.body()
            self.requests.append(
                Captured(
                    request.method,
                    request.url.path,
                    request.url.query,
                    dict(request.headers),
                    body,
                )
            )
            if self.delay:
                import asyncio

                await asyncio.sleep(self.delay)
            status = self.answers.pop(0) if self.answers else self.status
            return JSONResponse({"detail": "ok" if status < 400 else "nope"}, status_code=status)

        return Starlette(routes=[Route("/{path:path}", endpoint, methods=["GET", "POST", "PUT"])])


class Hostile:
    """A raw-socket HTTP server that misbehaves on purpose, counting the bytes it sent.

    Modes: ``flood`` (an endless chunked body: "10 GB"), ``bomb`` (a small gzip body that
    inflates to 64 MiB of zeros), ``drip`` (headers, then one body byte every ``interval``),
    ``drip-headers`` (the status line and headers one byte every ``interval``).
    """

    def __init__(self, mode: str, *, interval: float = 0.05) -> None:
        self.mode = mode
        self.interval = interval
        self.sent = 0
        self.connections = 0
        self._stop = threading.Event()
        self._sock = free_socket()
        self._sock.listen(16)
        self._sock.settimeout(0.1)
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> Hostile:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self._sock.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                continue
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _send(self, conn: socket.socket, data: bytes) -> None:
        conn.sendall(data)
        self.sent += len(data)

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(5)
        try:
            conn.recv(65536)  # the request (small, in one segment on loopback)
            if self.mode == "flood":
                self._send(conn, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                chunk = b"%x\r\n%s\r\n" % (65536, b"x" * 65536)
                while not self._stop.is_set() and self.sent < 10 * 1024**3:
                    self._send(conn, chunk)
            elif self.mode == "bomb":
                body = gzip_bomb()
                head = (
                    b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\n"
                    b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)
                )
                self._send(conn, head + body)
            elif self.mode == "drip":
                self._send(conn, b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
                while not self._stop.wait(self.interval):
                    self._send(conn, b"x")
            elif self.mode == "drip-headers":
                for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"y" * 100000:
                    if self._stop.wait(self.interval):
                        break
                    self._send(conn, bytes([byte]))
        except OSError:
            pass
        finally:
            conn.close()


_BOMB: list[bytes] = []


def gzip_bomb(size: int = 64 * 1024 * 1024) -> bytes:
    """``size`` zero bytes, gzip-compressed (about 65 KB), built once."""
    if not _BOMB:
        import zlib

        packer = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
        block = bytes(1024 * 1024)
        parts = [packer.compress(block) for _ in range(size // len(block))]
        _BOMB.append(b"".join(parts) + packer.flush())
    return _BOMB[0]
