"""ASGI apps served in process at ``http://127.0.0.1:PORT`` addresses, without sockets.

``in_process(app)`` is the twin of ``servers.serve(app)``: it runs the app's lifespan on
one event loop thread shared by every in-process app, reserves a real loopback port (a TCP
connection to it is accepted and closed at once: the address is unique, a reachability probe
passes, and anything that bypasses httpx gets no answer), and yields the base URL. Every httpx client of this process reaches the app at that URL: a test's, the
CLI's run in process (``run_cli``), the sandbox notifier's, forwarding's. The request goes
through ``httpx.ASGITransport`` semantics (the whole body in, the whole response back), so what
the app sees and answers is what uvicorn would give it, minus the socket: connection handling,
header deadlines, streamed responses and the server's own limits stay with the real-socket tests
(``servers.serve``, marked ``slow`` where they only exist for that).

Requests to any other address go out over the network as usual: the patch on httpx's two
transports only routes addresses registered here. Clients that open their own sockets (the load
generator, Locust, a subprocess) need a real server: ``servers.serve``.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from typing import Any

import httpx

from .servers import free_socket

# (host, port) -> the app served there.
_APPS: dict[tuple[str, int], _Served] = {}
_LOOP: list[asyncio.AbstractEventLoop] = []
_LOCK = threading.Lock()
_ORIGINAL_SYNC = httpx.HTTPTransport.handle_request
_ORIGINAL_ASYNC = httpx.AsyncHTTPTransport.handle_async_request
CLIENT = ("127.0.0.1", 50000)  # what the app sees as the peer (uvicorn gives the real one)


def _loop() -> asyncio.AbstractEventLoop:
    """The event loop every in-process app runs on, in a daemon thread started once."""
    with _LOCK:
        if not _LOOP:
            loop = asyncio.new_event_loop()
            started = threading.Event()

            def run() -> None:
                asyncio.set_event_loop(loop)
                loop.call_soon(started.set)
                loop.run_forever()

            threading.Thread(target=run, name="loopback", daemon=True).start()
            started.wait()
            _LOOP.append(loop)
            httpx.HTTPTransport.handle_request = _routed_sync  # type: ignore[method-assign]
            httpx.AsyncHTTPTransport.handle_async_request = _routed_async  # type: ignore[method-assign]
        return _LOOP[0]


class _Served:
    """One app, its lifespan running on the loopback loop."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self._events: asyncio.Queue[dict[str, Any]] | None = None
        self._replies: asyncio.Queue[dict[str, Any]] | None = None
        self._task: asyncio.Task[None] | None = None
        self._state: dict[str, Any] = {}
        self.supports_lifespan = True

    async def start(self) -> None:
        if not self.supports_lifespan:
            return
        self._events, self._replies = asyncio.Queue(), asyncio.Queue()
        scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": self._state}
        self._task = asyncio.create_task(self._lifespan(scope))
        await self._events.put({"type": "lifespan.startup"})
        reply = await self._replies.get()
        if reply["type"] == "lifespan.startup.failed":
            raise RuntimeError(f"app startup failed: {reply.get('message', '')}")

    async def _lifespan(self, scope: dict[str, Any]) -> None:
        assert self._events is not None and self._replies is not None
        try:
            await self.app(scope, self._events.get, self._replies.put)
        except Exception:
            # An app without lifespan support (uvicorn's "auto" tolerates it the same way).
            self.supports_lifespan = False
            await self._replies.put({"type": "lifespan.startup.complete"})

    async def stop(self) -> None:
        if self._events is None or self._replies is None:
            return
        if self.supports_lifespan and self._task is not None and not self._task.done():
            await self._events.put({"type": "lifespan.shutdown"})
            reply = await self._replies.get()
            if reply["type"] == "lifespan.shutdown.failed":
                raise RuntimeError(f"app shutdown failed: {reply.get('message', '')}")
        if self._task is not None:
            await self._task

    async def call(self, request: httpx.Request, body: bytes) -> httpx.Response:
        """One request through the app, as httpx.ASGITransport sends it; the body collected."""
        transport = httpx.ASGITransport(
            self._app_with_state, raise_app_exceptions=False, client=CLIENT
        )
        inner = httpx.Request(
            request.method, request.url, headers=request.headers.raw, content=body
        )
        inner.extensions = dict(request.extensions)
        response = await transport.handle_async_request(inner)
        content = await response.aread()
        return httpx.Response(
            response.status_code,
            headers=response.headers.raw,
            stream=httpx.ByteStream(content),
            extensions={"http_version": b"HTTP/1.1"},
        )

    async def _app_with_state(self, scope: Any, receive: Any, send: Any) -> None:
        # Lifespan state reaches each request's scope (a shallow copy), as uvicorn passes it.
        await self.app({**scope, "state": dict(self._state)}, receive, send)


def _lookup(url: httpx.URL) -> _Served | None:
    if not _APPS or url.scheme != "http" or url.port is None:
        return None
    return _APPS.get((url.host, url.port))


def _read_timeout(request: httpx.Request) -> float | None:
    timeout = request.extensions.get("timeout") or {}
    value = timeout.get("read")
    return None if value is None else float(value)


def _routed_sync(self: httpx.HTTPTransport, request: httpx.Request) -> httpx.Response:
    served = _lookup(request.url)
    if served is None:
        return _ORIGINAL_SYNC(self, request)
    loop = _LOOP[0]
    if threading.current_thread().name == "loopback":
        raise RuntimeError("a blocking httpx call inside an in-process app would deadlock")
    body = request.read()
    future = asyncio.run_coroutine_threadsafe(served.call(request, body), loop)
    timeout = _read_timeout(request)
    try:
        return future.result(timeout)
    except TimeoutError:
        future.cancel()
        raise httpx.ReadTimeout("timed out (in process)", request=request) from None


async def _routed_async(self: httpx.AsyncHTTPTransport, request: httpx.Request) -> httpx.Response:
    served = _lookup(request.url)
    if served is None:
        return await _ORIGINAL_ASYNC(self, request)
    loop = _LOOP[0]
    body = await request.aread()
    timeout = _read_timeout(request)
    try:
        if asyncio.get_running_loop() is loop:
            return await asyncio.wait_for(served.call(request, body), timeout)
        future = asyncio.run_coroutine_threadsafe(served.call(request, body), loop)
        return await asyncio.wait_for(asyncio.wrap_future(future), timeout)
    except TimeoutError:
        raise httpx.ReadTimeout("timed out (in process)", request=request) from None


class _Hangup(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.close()


@contextlib.contextmanager
def in_process(app: Any, *, lifespan: str = "on") -> Iterator[str]:
    """Serve ``app`` in process at a free ``http://127.0.0.1:PORT``; yield that base URL.
    ``lifespan="off"`` as for uvicorn (Django's ASGI handler has none)."""
    loop = _loop()
    sock = free_socket()
    sock.listen(16)
    host, port = sock.getsockname()[:2]
    served = _Served(app)
    served.supports_lifespan = lifespan != "off"
    asyncio.run_coroutine_threadsafe(served.start(), loop).result(10)

    async def listen() -> asyncio.AbstractServer:
        # A TCP connection (the checklist's reachability probe) succeeds and is hung up on.
        return await loop.create_server(_Hangup, sock=sock)

    server = asyncio.run_coroutine_threadsafe(listen(), loop).result(10)
    _APPS[(host, port)] = served
    try:
        yield f"http://{host}:{port}"
    finally:
        del _APPS[(host, port)]
        try:
            server.close()
            asyncio.run_coroutine_threadsafe(served.stop(), loop).result(10)
        finally:
            sock.close()
