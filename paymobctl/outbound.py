"""Every outgoing HTTP request, bounded: a cap on the response bytes read and a total deadline.

httpx's timeouts apply to each network operation, so a server that sends one byte a second
never trips a 10 s read timeout, and ``response.content`` reads whatever it is sent (10 GB, or
a 10 KB gzip bomb that inflates to 10 GB). Here:

- the body is read in pieces and decompressed with an output bound: at most ``max_bytes``
  (default :data:`MAX_RESPONSE`, counted *after* decompression) are kept, the rest is never
  read (``Reply.truncated``); only gzip and deflate are asked for, so the bound holds;
- ``timeout`` is a total deadline for connecting, sending, the headers and the body. Async
  requests run under ``asyncio.timeout``; sync clients made by :func:`client` clip every socket
  read and write to the time left (a contextvar carries the deadline to the network backend),
  so a drip ends at the deadline, not one read timeout per byte. Past it: ``httpx.ReadTimeout``,
  which every caller already reports as "did not answer within N s".

The checklist's probes, ``simulate``, ``events replay``, ``listen``'s forwards, the sandbox's
callbacks and the Paymob client all read responses through :func:`request` /
:func:`request_async`.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import ssl
import time
import zlib
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

from paymobctl import __version__
from paymobctl.documents import loads_json

if TYPE_CHECKING:
    import httpcore
    import httpx

MAX_RESPONSE = 1_048_576  # bytes of a response body kept, after decompression
ACCEPT_ENCODING = "gzip, deflate"  # what the bounded decoder below can inflate
USER_AGENT = f"paymobctl/{__version__}"
DEFAULT_TIMEOUT = 5.0  # httpx's own default per network operation
MAX_CONNECTIONS = 100  # an async client's pool (httpx's default too)

_DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "paymobctl_outbound_deadline", default=None
)


@dataclass(frozen=True)
class Reply:
    """A response read within bounds: status, headers, and at most ``max_bytes`` of body."""

    status_code: int
    reason_phrase: str
    headers: httpx.Headers
    content: bytes
    truncated: bool
    elapsed_ms: float

    def json(self) -> Any:
        """The body as JSON (``ValueError`` when it is not, or nests too deeply)."""
        return loads_json(self.content)

    @property
    def text(self) -> str:
        """The body decoded as UTF-8 (undecodable bytes replaced)."""
        return self.content.decode("utf-8", "replace")


class _Inflater:
    """Decodes a Content-Encoding with an output bound (zlib's ``max_length``)."""

    def __init__(self, encoding: str | None) -> None:
        name = (encoding or "").strip().lower()
        self._zlib: Any = None
        if name in ("gzip", "x-gzip"):
            self._zlib = zlib.decompressobj(zlib.MAX_WBITS | 16)
        elif name == "deflate":
            self._zlib = zlib.decompressobj(zlib.MAX_WBITS | 32)  # zlib-wrapped or gzip

    def feed(self, data: bytes, room: int) -> tuple[bytes, bool]:
        """Up to ``room`` decoded bytes of ``data``, and whether more output was left over."""
        if self._zlib is None:
            return data[:room], len(data) > room
        import httpx

        try:
            out = self._zlib.decompress(data, room + 1)
        except zlib.error as exc:
            raise httpx.DecodingError(f"cannot decode the response body ({exc})") from None
        return out[:room], len(out) > room or bool(self._zlib.unconsumed_tail)


class _Collector:
    """Accumulates a body up to ``max_bytes``; ``full`` once a piece did not fit."""

    def __init__(self, encoding: str | None, max_bytes: int, deadline: float) -> None:
        self._inflater = _Inflater(encoding)
        self._parts: list[bytes] = []
        self._size = 0
        self.max_bytes = max_bytes
        self.deadline = deadline
        self.full = False

    def add(self, raw: bytes) -> None:
        piece, more = self._inflater.feed(raw, self.max_bytes - self._size)
        self._parts.append(piece)
        self._size += len(piece)
        self.full = more or self._size > self.max_bytes
        if not self.full and time.monotonic() > self.deadline:
            _expired()

    def content(self) -> bytes:
        return b"".join(self._parts)


def _collector(response: httpx.Response, max_bytes: int, deadline: float) -> _Collector:
    # A response already in memory (httpx.MockTransport's) is decoded: bound it as it is.
    encoding = None if response.is_stream_consumed else response.headers.get("content-encoding")
    return _Collector(encoding, max_bytes, deadline)


def _expired(timeout: float | None = None) -> NoReturn:
    import httpx

    shown = f" within {timeout:g} s" if timeout is not None else " before the deadline"
    raise httpx.ReadTimeout(f"no complete answer{shown}")


def _options(kwargs: dict[str, Any], timeout: float) -> dict[str, Any]:
    given = kwargs.pop("headers", None) or ()
    headers = list(given.items() if isinstance(given, Mapping) else given)
    if not any(name.lower() == "accept-encoding" for name, _ in headers):
        headers.append(("Accept-Encoding", ACCEPT_ENCODING))
    return {**kwargs, "headers": headers, "timeout": timeout}


def _reply(response: httpx.Response, collector: _Collector, started: float) -> Reply:
    return Reply(
        status_code=response.status_code,
        reason_phrase=response.reason_phrase,
        headers=response.headers,
        content=collector.content(),
        truncated=collector.full,
        elapsed_ms=(time.perf_counter() - started) * 1000,
    )


def request(
    http: httpx.Client,
    method: str,
    url: str,
    *,
    timeout: float,
    max_bytes: int = MAX_RESPONSE,
    **kwargs: Any,
) -> Reply:
    """One request through a sync client, ended at ``timeout`` seconds in all (see module doc).

    ``kwargs`` go to ``httpx.Client.stream`` (``content``, ``json``, ``params``, ``headers``,
    ``follow_redirects``...). Network errors raise as httpx's exceptions, as before.
    """
    started = time.perf_counter()
    deadline = time.monotonic() + timeout
    token = _DEADLINE.set(deadline)
    try:
        with http.stream(method, url, **_options(kwargs, timeout)) as response:
            collector = _collector(response, max_bytes, deadline)
            raw: Iterator[bytes] = (
                iter([response.content]) if response.is_stream_consumed else response.iter_raw()
            )
            for chunk in raw:
                collector.add(chunk)
                if collector.full:
                    break
            return _reply(response, collector, started)
    finally:
        _DEADLINE.reset(token)


async def request_async(
    http: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    timeout: float,
    max_bytes: int = MAX_RESPONSE,
    **kwargs: Any,
) -> Reply:
    """:func:`request` for an async client: the whole exchange runs under ``asyncio.timeout``."""
    started = time.perf_counter()
    deadline = time.monotonic() + timeout
    try:
        async with asyncio.timeout(timeout):
            async with http.stream(method, url, **_options(kwargs, timeout)) as response:
                collector = _collector(response, max_bytes, deadline + 1)
                if response.is_stream_consumed:
                    collector.add(response.content)
                else:
                    raw: AsyncIterator[bytes] = response.aiter_raw()
                    async for chunk in raw:
                        collector.add(chunk)
                        if collector.full:
                            break
                return _reply(response, collector, started)
    except TimeoutError:
        _expired(timeout)


# -- sync clients whose socket operations respect the deadline ------------------------------------


def _clip(timeout: float | None) -> float | None:
    deadline = _DEADLINE.get()
    if deadline is None:
        return timeout
    left = deadline - time.monotonic()
    if left <= 0:
        import httpcore

        raise httpcore.ReadTimeout("the request's deadline passed")
    return left if timeout is None else min(timeout, left)


def _deadline_backend() -> httpcore.NetworkBackend:
    import httpcore

    class Stream(httpcore.NetworkStream):
        def __init__(self, inner: httpcore.NetworkStream) -> None:
            self.inner = inner

        def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
            return self.inner.read(max_bytes, _clip(timeout))

        def write(self, buffer: bytes, timeout: float | None = None) -> None:
            self.inner.write(buffer, _clip(timeout))

        def close(self) -> None:
            self.inner.close()

        def start_tls(
            self,
            ssl_context: ssl.SSLContext,
            server_hostname: str | None = None,
            timeout: float | None = None,
        ) -> httpcore.NetworkStream:
            return Stream(self.inner.start_tls(ssl_context, server_hostname, _clip(timeout)))

        def get_extra_info(self, info: str) -> Any:
            return self.inner.get_extra_info(info)

    class Backend(httpcore.SyncBackend):
        def connect_tcp(self, *args: Any, **kwargs: Any) -> httpcore.NetworkStream:
            if "timeout" in kwargs:
                kwargs["timeout"] = _clip(kwargs["timeout"])
            return Stream(super().connect_tcp(*args, **kwargs))

    return Backend()


def tls_context(verify: bool | ssl.SSLContext) -> ssl.SSLContext:
    """The TLS context for ``verify``: a given context as is, else one per process and setting.

    Building a context loads the CA bundle (~45 ms of CPU); every client of a command shares it.
    """
    return verify if isinstance(verify, ssl.SSLContext) else _shared_context(verify)


@functools.cache
def _shared_context(verify: bool) -> ssl.SSLContext:
    import httpx

    return httpx.create_ssl_context(verify=verify, trust_env=False)


def client(
    *,
    verify: bool | ssl.SSLContext = True,
    timeout: float = DEFAULT_TIMEOUT,
    limits: httpx.Limits | None = None,
    transport: httpx.BaseTransport | None = None,
    user_agent: str | None = USER_AGENT,
) -> httpx.Client:
    """The sync client every outgoing request uses (read through :func:`request`).

    No proxies from the environment, paymobctl's User-Agent, and (unless a ``transport`` is
    given, e.g. a test's ``MockTransport``) every socket read/write/connect clipped to the
    current request's total deadline. ``timeout`` is httpx's per-operation default.
    """
    import httpcore
    import httpx

    verify = tls_context(verify)
    if transport is None:
        sizes = limits or httpx.Limits(max_connections=100, max_keepalive_connections=20)
        http_transport = httpx.HTTPTransport(verify=verify, trust_env=False)
        # httpx exposes no network backend option; the pool is rebuilt with ours (same TLS
        # context) and httpx's default limits unless given (httpcore's own allow 10 connections:
        # 50 concurrent deliveries, PMB-WH-072, queued for one and timed the wait as the
        # receiver's latency).
        http_transport._pool = httpcore.ConnectionPool(
            ssl_context=verify,
            network_backend=_deadline_backend(),
            max_connections=sizes.max_connections,
            max_keepalive_connections=sizes.max_keepalive_connections,
            keepalive_expiry=sizes.keepalive_expiry,
        )
        transport = http_transport
    return httpx.Client(
        transport=transport,
        trust_env=False,
        headers=_headers(user_agent),
        verify=verify,
        timeout=timeout,
    )


def async_client(
    *,
    verify: bool | ssl.SSLContext = True,
    timeout: float = DEFAULT_TIMEOUT,
    limits: httpx.Limits | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    user_agent: str | None = USER_AGENT,
) -> httpx.AsyncClient:
    """The async client every outgoing request uses (read through :func:`request_async`,
    whose total deadline is ``asyncio.timeout``): no proxies from the environment, paymobctl's
    User-Agent, at most :data:`MAX_CONNECTIONS` connections unless ``limits`` says otherwise."""
    import httpx

    return httpx.AsyncClient(
        verify=tls_context(verify),
        trust_env=False,
        headers=_headers(user_agent),
        timeout=timeout,
        limits=limits or httpx.Limits(max_connections=MAX_CONNECTIONS),
        transport=transport,
    )


def _headers(user_agent: str | None) -> dict[str, str] | None:
    return {"User-Agent": user_agent} if user_agent else None
