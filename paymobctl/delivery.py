"""Sending callbacks over HTTP exactly as Paymob does, with results and errors people can act on.

Shared by ``simulate`` and ``events replay`` (sync), and by the sandbox's callback delivery and
``listen``'s forwarding (async). Only this module and the client speak httpx for outgoing calls.
"""

from __future__ import annotations

import json
import socket
import ssl
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from paymobctl import outbound
from paymobctl.errors import NetworkError
from paymobctl.models import FailureKind

if TYPE_CHECKING:
    import httpx

    from paymobctl.outbound import Reply

T = TypeVar("T")
USER_AGENT = outbound.USER_AGENT  # every request paymobctl sends names itself
EXCERPT_CHARS = 600


def wire_json(value: Any) -> bytes:
    """The exact bytes of a JSON body on the wire: compact, UTF-8, key order kept."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode(
        "utf-8"
    )


@dataclass(frozen=True)
class HttpRequest:
    """One request to send: method, URL, body bytes and headers, exactly as they go on the wire."""

    method: str
    url: str
    body: bytes | None = None
    headers: tuple[tuple[str, str], ...] = ()

    def printable(self) -> dict[str, Any]:
        """``{"method", "url", "body"}``; ``wire_json(body)`` reproduces the sent bytes exactly."""
        body = json.loads(self.body) if self.body is not None else None
        return {"method": self.method, "url": self.url, "body": body}

    @property
    def content_type(self) -> str | None:
        """The request's Content-Type header, or None."""
        for name, value in self.headers:
            if name.lower() == "content-type":
                return value
        return None


def post_json(
    url: str,
    body: Any,
    *,
    extra_headers: Sequence[tuple[str, str]] = (),
    wire: bytes | None = None,  # wire_json(body), when the caller already has it
) -> HttpRequest:
    """A POST of ``body`` as compact JSON (what Paymob's webhooks send)."""
    headers = (("Content-Type", "application/json"), ("User-Agent", USER_AGENT), *extra_headers)
    return HttpRequest("POST", url, wire_json(body) if wire is None else wire, tuple(headers))


def get(url: str) -> HttpRequest:
    """A GET of ``url`` (a signed redirect)."""
    return HttpRequest("GET", url, None, (("User-Agent", USER_AGENT),))


# No answer, but worth retrying (a name that does not resolve yet included: a container starting).
_TRANSIENT = (FailureKind.REFUSED, FailureKind.DNS, FailureKind.TIMEOUT, FailureKind.OTHER)


@dataclass(frozen=True)
class Result:
    """What happened to one attempt: a response, or an error that says what to do."""

    url: str
    status: int | None = None
    reason: str = ""
    latency_ms: float = 0.0
    headers: tuple[tuple[str, str], ...] = ()
    excerpt: str = ""
    error: FailureKind | None = None
    error_message: str | None = None
    attempt: int = 1
    location: str | None = None
    truncated: bool = False  # the answer's body went over outbound.MAX_RESPONSE and was cut
    body: bytes = field(default=b"", repr=False)  # the first ``keep_body`` bytes, when asked

    @property
    def ok(self) -> bool:
        """The answer was a 2xx."""
        return self.status is not None and 200 <= self.status < 300

    @property
    def failed_transiently(self) -> bool:
        """Worth retrying: no answer (a name that does not resolve yet included: a container
        still starting), or a server error / throttling."""
        return self.error in _TRANSIENT or (
            self.status is not None and (self.status >= 500 or self.status == 429)
        )

    def as_dict(self) -> dict[str, Any]:
        """The result as JSON-ready data (for --json and the store)."""
        return {
            "url": self.url,
            "status": self.status,
            "reason": self.reason,
            "latency_ms": round(self.latency_ms, 2),
            "headers": dict(self.headers),
            "body_excerpt": self.excerpt,
            "error": self.error,
            "error_message": self.error_message,
            "attempt": self.attempt,
            "truncated": self.truncated,
        }


def _excerpt(content: bytes) -> str:
    text = content[: EXCERPT_CHARS * 4].decode("utf-8", "replace")
    return text if len(text) <= EXCERPT_CHARS else text[:EXCERPT_CHARS] + "…"


def _classify(exc: Exception) -> tuple[FailureKind, str]:
    import httpx

    text = str(exc) or type(exc).__name__
    if isinstance(exc, httpx.TimeoutException):
        return FailureKind.TIMEOUT, text
    cause: BaseException | None = exc
    while cause is not None:
        if (
            isinstance(cause, ssl.SSLError)
            or "CERTIFICATE_VERIFY_FAILED" in str(cause)
            or "SSL" in type(cause).__name__
        ):
            return FailureKind.TLS, str(cause)
        cause = cause.__cause__ or cause.__context__
    cause = exc
    while cause is not None:
        if isinstance(cause, socket.gaierror):
            return FailureKind.DNS, str(cause)
        cause = cause.__cause__ or cause.__context__
    if isinstance(exc, httpx.ConnectError):
        if (
            "Name or service not known" in text
            or "nodename nor servname" in text
            or "getaddrinfo" in text
        ):
            return FailureKind.DNS, text
        return FailureKind.REFUSED, text
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        return FailureKind.INVALID_URL, text
    return FailureKind.OTHER, text


def _result(response: Reply, url: str, started: float, attempt: int, keep_body: int) -> Result:
    return Result(
        url=url,
        status=response.status_code,
        reason=response.reason_phrase,
        latency_ms=(time.perf_counter() - started) * 1000,
        headers=tuple((k, v) for k, v in response.headers.items()),
        excerpt=_excerpt(response.content),
        attempt=attempt,
        location=response.headers.get("location"),
        truncated=response.truncated,
        body=response.content[:keep_body],
    )


def _send_options(request: HttpRequest, timeout: float) -> dict[str, Any]:
    """Keywords shared by the sync and async attempts: bytes as given, no redirects, the
    answer read within outbound's bounds (``timeout`` is the attempt's total deadline)."""
    return {
        "content": request.body,
        "headers": list(request.headers),
        "timeout": timeout,
        "follow_redirects": False,
    }


def _failure(exc: Exception, request: HttpRequest, started: float, attempt_no: int) -> Result:
    kind, message = _classify(exc)
    return Result(
        request.url,
        latency_ms=(time.perf_counter() - started) * 1000,
        error=kind,
        error_message=message,
        attempt=attempt_no,
    )


def attempt(
    client: httpx.Client,
    request: HttpRequest,
    *,
    timeout: float,
    attempt_no: int = 1,
    keep_body: int = 0,
) -> Result:
    """One synchronous attempt; never raises for network problems (see :func:`raise_for`).

    ``keep_body``: how many bytes of the answer's body to keep in ``Result.body`` (the
    checklist reads pages: CSRF and debug pages are recognised by their text)."""
    import httpx

    started = time.perf_counter()
    try:
        response = outbound.request(
            client, request.method, request.url, **_send_options(request, timeout)
        )
    except (httpx.HTTPError, ValueError, ssl.SSLError, OSError) as exc:
        return _failure(exc, request, started, attempt_no)
    return _result(response, request.url, started, attempt_no, keep_body)


async def attempt_async(
    client: httpx.AsyncClient, request: HttpRequest, *, timeout: float, attempt_no: int = 1
) -> Result:
    """One asynchronous attempt; never raises for network problems."""
    import httpx

    started = time.perf_counter()
    try:
        response = await outbound.request_async(
            client, request.method, request.url, **_send_options(request, timeout)
        )
    except (httpx.HTTPError, ValueError, ssl.SSLError, OSError) as exc:
        return _failure(exc, request, started, attempt_no)
    return _result(response, request.url, started, attempt_no, 0)


def raise_for(result: Result, *, timeout: float) -> None:
    """Turn a failed attempt (no answer at all) into an actionable error (exit 3)."""
    if result.error is None:
        return
    url = result.url.split("?", 1)[0]
    if result.error == FailureKind.REFUSED:
        raise NetworkError(
            f"nothing is listening at {url}",
            hint="start your app, or run `paymobctl listen` to receive callbacks locally",
        )
    if result.error == FailureKind.DNS:
        host = urlsplit(result.url).hostname or url
        raise NetworkError(
            f"cannot resolve {host}", hint="check the hostname in the URL (and your DNS)"
        )
    if result.error == FailureKind.TIMEOUT:
        raise NetworkError(
            f"{url} did not answer within {timeout:g} s",
            hint="check the app is not blocked, or raise --timeout",
        )
    if result.error == FailureKind.TLS:
        raise NetworkError(
            f"TLS handshake with {url} failed ({result.error_message})",
            hint="for a local server with a self-signed certificate, pass --insecure",
        )
    if result.error == FailureKind.INVALID_URL:
        raise NetworkError(
            f"cannot send to {url}: {result.error_message}", hint="use an http(s):// URL"
        )
    raise NetworkError(f"sending to {url} failed: {result.error_message}")


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded exponential backoff. Paymob publishes no retry policy (docs/paymob.md §11): this is ours."""

    attempts: int = 5
    first_delay: float = 0.5
    factor: float = 2.0
    max_delay: float = 30.0
    retry_on: frozenset[str] = field(default_factory=lambda: frozenset({"transient"}))

    def delay(self, attempt_no: int) -> float:
        """Seconds to wait after attempt ``attempt_no`` (1-based) failed."""
        return float(min(self.max_delay, self.first_delay * self.factor ** (attempt_no - 1)))

    def should_retry(self, result: Result) -> bool:
        """Whether a failed ``result`` is worth another attempt under this policy."""
        if result.ok:
            return False
        if "non-2xx" in self.retry_on:
            return True
        return result.failed_transiently

    def is_final(self, result: Result, attempt_no: int) -> bool:
        """Attempt ``attempt_no`` ends the delivery: it succeeded, was the last, or is not retried."""
        return result.ok or attempt_no == self.attempts or not self.should_retry(result)


# -- the one retry loop (results are recorded per attempt, so it is ours, not a library's) -------

OnAttempt = Callable[[T, int, bool], None]  # (what attempt n gave, n, whether it is the last)


def retry(
    attempt_fn: Callable[[int], T],
    policy: RetryPolicy,
    on_attempt: OnAttempt[T] | None = None,
    *,
    final: Callable[[T, int], bool],
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Call ``attempt_fn(1)``, ``attempt_fn(2)``… until ``final(result, n)`` or the policy's last
    attempt, sleeping ``policy.delay(n)`` between; ``on_attempt`` sees each result first."""
    number = 1
    while True:
        result = attempt_fn(number)
        last = number >= policy.attempts or final(result, number)
        if on_attempt is not None:
            on_attempt(result, number, last)
        if last:
            return result
        sleep(policy.delay(number))
        number += 1


async def retry_async(
    attempt_fn: Callable[[int], Awaitable[T]],
    policy: RetryPolicy,
    on_attempt: OnAttempt[T] | None = None,
    *,
    final: Callable[[T, int], bool],
    sleep: Callable[[float], Awaitable[None]] | None = None,
) -> T:
    """:func:`retry` for an awaitable attempt (the sleep, ``asyncio.sleep`` by default, is
    awaited: other work goes on)."""
    import asyncio

    pause = sleep or asyncio.sleep
    number = 1
    while True:
        result = await attempt_fn(number)
        last = number >= policy.attempts or final(result, number)
        if on_attempt is not None:
            on_attempt(result, number, last)
        if last:
            return result
        await pause(policy.delay(number))
        number += 1
