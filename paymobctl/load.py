"""Load: many distinct, validly signed callbacks sent concurrently and measured (``simulate --count``).

Every request is a different callback: one TRANSACTION built by :mod:`paymobctl.callbacks` is the
template, and each copy gets its own transaction id, order id and merchant order id (all in the
probe ranges no real order uses) and its own HMAC. Requests go over a bounded pool of keep-alive
HTTP/1.1 connections (one per concurrent sender) with a small callback-driven asyncio client: a general HTTP client
costs more CPU per request than the receivers being measured (scripts/bench_load.py compares this
engine with ``wrk`` against the same server). Each answer has a deadline and a size cap.
"""

from __future__ import annotations

import asyncio
import math
import secrets
import ssl
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from time import perf_counter
from typing import Any, cast
from urllib.parse import urlsplit

from paymobctl import delivery, redirects, signing
from paymobctl.callbacks import Callback
from paymobctl.errors import UsageError

# An answer larger than this (status line, headers and body) ends its connection ("too-large");
# counted per read, so there is no parser callback per body chunk.
MAX_RESPONSE_BYTES = 1_048_576
LOAD_ORDER_BASE = 999_950_000_000  # above the conformance probes' orders: none is real
LOAD_TRANSACTION_BASE = 999_850_000_000
MAX_COUNT = 10_000_000


@dataclass(frozen=True)
class Plan:
    """What to send: ``count`` callbacks (or as many as fit in ``duration`` seconds) from
    ``concurrency`` senders, at most ``rate`` per second overall when given."""

    url: str
    secret: str
    template: Callback
    count: int | None = None
    concurrency: int = 10
    rate: float | None = None
    duration: float | None = None
    timeout: float = 10.0
    verify: bool | ssl.SSLContext = True

    def check(self) -> None:
        """Reject impossible values (count, rate, duration, URL) before anything is sent."""
        if self.count is None and self.duration is None:
            raise UsageError("give --count N or --duration S", hint="e.g. --count 1000")
        if self.count is not None and not 1 <= self.count <= MAX_COUNT:
            raise UsageError(f"--count {self.count}: give 1 to {MAX_COUNT:,}")
        if not 1 <= self.concurrency <= 1000:
            raise UsageError(f"--concurrency {self.concurrency}: give 1 to 1000")
        if self.rate is not None and not (self.rate > 0 and math.isfinite(self.rate)):
            raise UsageError(f"--rate {self.rate}: give a positive number of callbacks per second")
        if self.duration is not None and not (0 < self.duration <= 86_400):
            raise UsageError(f"--duration {self.duration}: give 0 to 86400 seconds")
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise UsageError(f"invalid URL {self.url!r}", hint="use an http(s):// URL")


# Stand-ins for the per-callback values while the template is rendered; each must occur exactly
# once in the body, and the two ids once in the signed string (checked), so splitting is exact.
_TX_MARK = 987_654_321_987_654_321
_ORDER_MARK = 987_654_321_123_456_789
_MOI_MARK = "paymobctl-load-mark-5f3c9e1a"
# Callback numbers come in blocks of 10**7 sharing every digit but the last seven: both id bases
# are multiples of it, so within a block the transaction id, the order id and the merchant order
# id differ only in one 7-digit field, formatted once per callback.
_BLOCK = 10_000_000
_DIGITS = 7  # b"%07d"


class Signer:
    """Distinct signed callbacks from one template: new ids and a new HMAC for each number.

    :meth:`callback` is the plain definition (a copy of the template's obj with new ids, signed by
    :func:`paymobctl.signing.compute`). :meth:`wire` produces the same bytes far faster, so the
    generator is not what a load run measures: the body and the signed string are rendered once
    per block of numbers and split around the 7 varying digits (a callback is a ``bytes.join``
    of constant segments and one formatted number), and the HMAC starts from the SHA-512 states
    of :class:`paymobctl.signing.KeyedSha512`, already fed the padded key (RFC 2104). Tests
    check both ways agree byte for byte, for long and non-ASCII secrets and across blocks too.
    """

    def __init__(self, template: Callback, secret: str, *, tag: str | None = None) -> None:
        self.template = template
        self.secret = secret
        self.tag = tag or secrets.token_hex(4)
        self.kind = template.kind
        keyed = signing.KeyedSha512(secret.encode("utf-8"))
        self.inner = keyed.inner
        self.outer = keyed.outer
        self._segments: dict[int, tuple[tuple[bytes, ...], tuple[bytes, ...]]] = {}

    def _with(
        self, transaction_id: int, order_id: int, merchant_order_id: str
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        obj = dict(self.template.obj)
        obj["id"] = transaction_id
        order = obj.get("order")
        if isinstance(order, dict):
            order = dict(order)
            order["id"] = order_id
            order["merchant_order_id"] = merchant_order_id
            obj["order"] = order
        return {**self.template.body, "obj": obj}, obj

    def callback(self, number: int) -> tuple[dict[str, Any], str]:
        """The body and HMAC of callback ``number`` (0-based), the plain way."""
        body, obj = self._with(
            LOAD_TRANSACTION_BASE + number,
            LOAD_ORDER_BASE + number,
            f"paymobctl-load-{self.tag}-{number:07d}",
        )
        return body, signing.compute(self.kind, obj, self.secret)

    def segments(self, block: int) -> tuple[tuple[bytes, ...], tuple[bytes, ...]]:
        """The signed string and the body of block ``block``'s callbacks, split where the low 7
        digits of the callback number go: the signed string has them twice (``s0 D s1 D s2``),
        the body three times (``b0 D b1 D b2 D b3``)."""
        found = self._segments.get(block)
        if found is None:
            body, _ = self._with(_TX_MARK, _ORDER_MARK, _MOI_MARK)
            message = signing.signing_string(signing.collect_fields(self.kind, body["obj"]))
            prefixes = {
                str(_TX_MARK): f"{LOAD_TRANSACTION_BASE // _BLOCK + block}",
                str(_ORDER_MARK): f"{LOAD_ORDER_BASE // _BLOCK + block}",
                _MOI_MARK: f"paymobctl-load-{self.tag}-{block or ''}",
            }
            marks = list(prefixes.items())
            found = (
                _split(message.encode("utf-8"), marks[:2]),
                _split(delivery.wire_json(body), marks),
            )
            self._segments = {block: found}  # one block at a time
        return found

    def wire(self, number: int) -> tuple[bytes, str]:
        """The exact body bytes (``delivery.wire_json``) and HMAC of callback ``number``."""
        block, low = divmod(number, _BLOCK)
        message, body = self.segments(block)
        digits = b"%07d" % low
        inner = self.inner.copy()
        inner.update(digits.join(message))
        outer = self.outer.copy()
        outer.update(inner.digest())
        return digits.join(body), outer.hexdigest()

    def request(self, url: str, number: int) -> delivery.HttpRequest:
        """The signed POST of callback ``number``, its HMAC in the query as Paymob sends it."""
        body, digest = self.callback(number)
        return delivery.post_json(redirects.with_query(url, f"hmac={digest}"), body)


def _split(data: bytes, marks: Sequence[tuple[str, str]]) -> tuple[bytes, ...]:
    """``data`` cut where each mark was (each must occur exactly once), the mark's prefix kept at
    the end of the segment before the cut: ``data`` is then ``digits.join(segments)``."""
    found: list[tuple[int, bytes, bytes]] = []
    for mark, prefix in marks:
        encoded = mark.encode("utf-8")
        if data.count(encoded) != 1:
            raise ValueError(f"template marker {mark} occurs {data.count(encoded)} times")
        found.append((data.index(encoded), encoded, prefix.encode("utf-8")))
    found.sort()
    segments: list[bytes] = []
    position = 0
    for start, cut, kept in found:
        segments.append(data[position:start] + kept)
        position = start + len(cut)
    segments.append(data[position:])
    return tuple(segments)


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (0 < fraction ≤ 1) of a non-empty sequence."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


@dataclass
class Progress:
    """How far a run has got, for a progress bar."""

    done: int = 0
    total: int | None = None  # None with --duration
    elapsed: float = 0.0


@dataclass
class Report:
    """What a load run measured: answers by status, errors, throughput and latency percentiles."""

    url: str
    started_at: str
    elapsed_s: float
    sent: int
    answered: int
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    first_error: str | None = None
    # Not in the repr: Python 3.11's asyncio.Runner formats the main task's result while it
    # restores the SIGINT handler, and a repr of every latency cost ~1.4 µs per delivery.
    latencies_ms: list[float] = field(default_factory=list, repr=False)
    concurrency: int = 0
    rate: float | None = None

    @property
    def ok(self) -> int:
        """How many requests got a 2xx answer."""
        return sum(n for status, n in self.statuses.items() if 200 <= status < 300)

    @property
    def throughput(self) -> float:
        """Answers per second over the whole run."""
        return self.answered / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def percentile(self, fraction: float) -> float | None:
        """Nearest-rank percentile of the answered requests' latency, in ms."""
        return percentile(self.latencies_ms, fraction) if self.latencies_ms else None

    def summary(self) -> dict[str, Any]:
        """The report as plain JSON-ready data for ``--json`` output."""

        def ms(value: float | None) -> float | None:
            return None if value is None else round(value, 2)

        return {
            "url": self.url,
            "started_at": self.started_at,
            "sent": self.sent,
            "answered": self.answered,
            "ok": self.ok,
            "elapsed_s": round(self.elapsed_s, 3),
            "throughput_per_s": round(self.throughput, 1),
            "concurrency": self.concurrency,
            "rate": self.rate,
            "latency_ms": {
                "p50": ms(self.percentile(0.50)),
                "p95": ms(self.percentile(0.95)),
                "p99": ms(self.percentile(0.99)),
                "max": ms(max(self.latencies_ms) if self.latencies_ms else None),
            },
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "errors": dict(sorted(self.errors.items())),
            "first_error": self.first_error,
        }


# --- the HTTP/1.1 client -------------------------------------------------------------------------

_NEVER = sys.maxsize  # a count limit no run reaches


class _Failed(Exception):
    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class _Requests:
    """Whole HTTP/1.1 requests, as :func:`paymobctl.delivery.post_json` would send them.

    The request line up to ``hmac=`` comes first, then the digest, then the rest of the head and
    the body: the signer's body segments with the head's tail in front of the first one (the
    Content-Length is the same for every callback of a block), joined on the callback's digits.
    """

    def __init__(self, signer: Signer, url: str, host_header: str) -> None:
        self.signer = signer
        parts = urlsplit(url)
        target = parts.path or "/"
        target += f"?{parts.query}&hmac=" if parts.query else "?hmac="
        sample = delivery.post_json(url, {})
        headers = "".join(f"\r\n{name}: {value}" for name, value in sample.headers)
        self._line = f"POST {target}".encode("latin-1")
        self._head = f" HTTP/1.1\r\nHost: {host_header}{headers}\r\nContent-Length: "
        self._inner = signer.inner
        self._outer = signer.outer
        self._first = 0  # the first callback number of the current block
        self._message: tuple[bytes, ...] = ()
        self._parts: list[bytes] = []
        self._enter(0)

    def _enter(self, block: int) -> None:
        message, body = self.signer.segments(block)
        length = sum(map(len, body)) + _DIGITS * (len(body) - 1)
        head = f"{self._head}{length}\r\n\r\n".encode("latin-1")
        self._first = block * _BLOCK
        self._message = message
        b0, b1, b2, b3 = body  # the digits go in three places (Signer.segments)
        # The whole request is one join: the digest goes at 1, the digits at 3, 5 and 7.
        self._parts = [self._line, b"", head + b0, b"", b1, b"", b2, b"", b3]

    def payload(self, number: int) -> bytes:
        low = number - self._first
        if not 0 <= low < _BLOCK:
            self._enter(number // _BLOCK)
            low = number - self._first
        digits = b"%07d" % low
        inner = self._inner.copy()
        inner.update(digits.join(self._message))
        outer = self._outer.copy()
        outer.update(inner.digest())
        parts = self._parts
        parts[1] = outer.hexdigest().encode()
        parts[3] = parts[5] = parts[7] = digits
        return b"".join(parts)


class _Connection(asyncio.Protocol):
    """One keep-alive connection of a sender. A complete answer is recorded, and the sender's next
    request written, from the parser's callback: no task, future or timer per request."""

    _transport: asyncio.Transport

    def __init__(self, sender: _Sender) -> None:
        import httptools

        self._parser = httptools.HttpResponseParser(self)
        self._sender = sender
        self._run = sender.run
        self._statuses = sender.run.statuses
        self.received = 0  # bytes of the answer to the request in flight
        self.closed = False
        self.answers = 0  # complete answers on this connection

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast("asyncio.Transport", transport)  # uvloop's are not subclasses

    def data_received(self, data: bytes) -> None:
        self.received += len(data)
        if self.received > MAX_RESPONSE_BYTES:
            self._sender.failed(self, "too-large", f"answer larger than {MAX_RESPONSE_BYTES} bytes")
            return
        try:
            self._parser.feed_data(data)
        except Exception as exc:  # httptools.HttpParserError and friends
            self._sender.failed(self, "protocol", f"malformed HTTP answer ({exc})")

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._sender.failed(self, "closed", f"the server closed the connection ({exc or 'EOF'})")

    # httptools callback: the hot path of a run, so the common case is inline here
    def on_message_complete(self) -> None:
        now = perf_counter()
        sender = self._sender
        began = sender.began
        if sender.connection is not self or not began:
            return
        run = self._run
        report = run.report
        report.latencies_ms.append((now - began) * 1000)
        self._statuses[self._parser.get_status_code()] += 1
        report.answered += 1
        self.answers += 1
        sender.began = 0.0
        number = run.next_number
        if self._parser.should_keep_alive():
            if number < run.fast_limit and now < run.deadline:
                # Sender.next and Sender.send for an unpaced run on a connection kept alive.
                run.next_number = number + 1
                payload = run.requests.payload(number)
                report.sent += 1
                sender.number = number
                self.received = 0
                sender.began = perf_counter()
                self._transport.write(payload)
                return
        else:
            self.close()
        sender.next()

    def write(self, payload: bytes) -> None:
        self.received = 0
        self._transport.write(payload)

    def close(self) -> None:
        self.closed = True
        if hasattr(self, "_transport"):
            self._transport.close()


class _Pool:
    """At most one connection per sender, reopened after any failure."""

    def __init__(self, url: str, verify: bool | ssl.SSLContext, timeout: float) -> None:
        parts = urlsplit(url)
        self.host = parts.hostname or ""
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        default = (parts.scheme == "https" and self.port == 443) or (
            parts.scheme == "http" and self.port == 80
        )
        self.host_header = parts.netloc.rsplit("@", 1)[-1] if not default else self.host
        self.ssl: ssl.SSLContext | None = None
        if parts.scheme == "https":
            if isinstance(verify, ssl.SSLContext):
                self.ssl = verify
            else:
                self.ssl = ssl.create_default_context()
                if not verify:
                    self.ssl.check_hostname = False
                    self.ssl.verify_mode = ssl.CERT_NONE
        self.timeout = timeout

    async def connect(self, sender: _Sender) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            _, protocol = await asyncio.wait_for(
                loop.create_connection(
                    lambda: _Connection(sender),
                    self.host,
                    self.port,
                    ssl=self.ssl,
                    server_hostname=self.host if self.ssl else None,
                ),
                self.timeout,
            )
        except TimeoutError:
            raise _Failed("timeout", f"no connection within {self.timeout:g} s") from None
        except ssl.SSLError as exc:
            raise _Failed("tls", f"TLS handshake failed ({exc})") from None
        except OSError as exc:
            kind = "refused" if isinstance(exc, ConnectionRefusedError) else "connect"
            raise _Failed(kind, f"cannot connect to {self.host}:{self.port} ({exc})") from None
        return protocol


# --- the run -------------------------------------------------------------------------------------


class _Run:
    """A run's shared state: numbering and pacing, the report, and when every sender is done."""

    def __init__(self, plan: Plan, report: Report, loop: asyncio.AbstractEventLoop) -> None:
        self.plan = plan
        self.report = report
        self.loop = loop
        self.pool = _Pool(plan.url, plan.verify, plan.timeout)
        self.requests = _Requests(
            Signer(plan.template, plan.secret), plan.url, self.pool.host_header
        )
        self.started = perf_counter()
        self.deadline = self.started + plan.duration if plan.duration is not None else math.inf
        # Answers per status code (httptools allows 3 digits); the report's Counter at the end.
        self.statuses = [0] * 1000
        self.next_number = 0
        self.limit = plan.count if plan.count is not None else _NEVER
        # Below this number a connection's answer sends the next callback inline (see
        # _Connection.on_message_complete); paced and stopped runs go through Sender.next.
        self.fast_limit = self.limit if plan.rate is None else 0
        self.stopped = False
        self.senders = [_Sender(self) for _ in range(plan.concurrency)]
        self.running = len(self.senders)
        self.done: asyncio.Future[None] = loop.create_future()
        self.tasks: set[asyncio.Task[None]] = set()

    def take(self) -> int | None:
        """The next callback number, or None when the run is over."""
        if self.stopped or self.next_number >= self.limit or perf_counter() >= self.deadline:
            return None
        number = self.next_number
        self.next_number += 1
        return number

    def stop(self) -> None:
        self.stopped = True
        self.fast_limit = 0

    def error(self, kind: str, message: str) -> None:
        self.report.errors[kind] += 1
        self.report.first_error = self.report.first_error or message

    def sender_done(self) -> None:
        self.running -= 1
        if self.running == 0 and not self.done.done():
            self.done.set_result(None)

    def spawn(self, coroutine: Any) -> None:
        task = self.loop.create_task(coroutine)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def watchdog(self) -> None:
        """Fail every request that has waited longer than the timeout (one timer for all)."""
        timeout = self.plan.timeout
        while True:
            await asyncio.sleep(min(0.05, timeout / 4))
            now = perf_counter()
            for sender in self.senders:
                if sender.connection is not None and sender.began and now - sender.began > timeout:
                    sender.failed(sender.connection, "timeout", f"no answer within {timeout:g} s")


class _Sender:
    """One of the concurrent senders: the next callback goes out as soon as the last is answered,
    on its own keep-alive connection (reopened after a failure). Driven by the connection's
    callbacks: no task, future or timer per request."""

    def __init__(self, run: _Run) -> None:
        self.run = run
        self.connection: _Connection | None = None
        self.began = 0.0  # when the request in flight was written; 0: none in flight
        self.number = -1  # the callback in flight
        self.resent = -1  # the callback last resent on a new connection (once each)
        self.finished = False

    def next(self) -> None:
        number = self.run.take()
        if number is None:
            self.finish()
            return
        rate = self.run.plan.rate
        if rate is not None:
            wait = self.run.started + number / rate - perf_counter()
            if wait > 0:
                self.run.loop.call_later(wait, self.send, number)
                return
        self.send(number)

    def send(self, number: int, *, resend: bool = False) -> None:
        if perf_counter() >= self.run.deadline and not resend:
            self.finish()
            return
        connection = self.connection
        if connection is None or connection.closed:
            self.run.spawn(self.connect_and_send(number, resend=resend))
            return
        payload = self.run.requests.payload(number)
        if not resend:
            self.run.report.sent += 1
        self.number = number
        self.began = perf_counter()
        connection.write(payload)

    async def connect_and_send(self, number: int, *, resend: bool = False) -> None:
        try:
            self.connection = await self.run.pool.connect(self)
        except _Failed as exc:
            if not resend:
                self.run.report.sent += 1
            self.run.error(exc.kind, str(exc))
            if exc.kind == "refused" and self.run.report.answered == 0:
                self.run.stop()  # nothing ever answered: stop rather than fail N times
            await asyncio.sleep(0.05)  # a server that is restarting: back off a little
            self.next()
            return
        self.send(number, resend=resend)

    def failed(self, connection: _Connection, kind: str, message: str) -> None:
        if connection is not self.connection:
            return  # an old connection closing after it was replaced
        self.connection = None
        connection.close()
        if not self.began:
            return
        self.began = 0.0
        if (
            kind == "closed"
            and connection.answers > 0
            and not connection.received
            and self.resent != self.number
        ):
            # A keep-alive connection the server closed after its last answer, before reading
            # this request (HTTP/1.1 allows it without `Connection: close`): nothing was
            # received for it, so it goes again, once, on a new connection; not an error.
            self.resent = self.number
            self.send(self.number, resend=True)
            return
        self.run.error(kind, message)
        self.next()

    def finish(self) -> None:
        if self.finished:
            return
        self.finished = True
        if self.connection is not None:
            connection, self.connection = self.connection, None
            connection.close()
        self.run.sender_done()


async def run_async(plan: Plan, *, on_progress: Callable[[Progress], None] | None = None) -> Report:
    """Send the plan's callbacks and measure every answer."""
    from datetime import UTC, datetime

    plan.check()
    report = Report(
        plan.url,
        datetime.now(UTC).isoformat(timespec="seconds"),
        0.0,
        0,
        0,
        concurrency=plan.concurrency,
        rate=plan.rate,
    )
    run = _Run(plan, report, asyncio.get_running_loop())

    async def ticker() -> None:
        while True:
            await asyncio.sleep(0.1)
            if on_progress is not None:
                on_progress(Progress(report.sent, plan.count, perf_counter() - run.started))

    helpers = [asyncio.create_task(ticker()), asyncio.create_task(run.watchdog())]
    try:
        for sender in run.senders:
            sender.next()
        await run.done
    finally:
        for task in [*helpers, *run.tasks]:
            task.cancel()
        for sender in run.senders:
            sender.finish()
    report.elapsed_s = perf_counter() - run.started
    report.statuses.update({code: n for code, n in enumerate(run.statuses) if n})
    if on_progress is not None:
        on_progress(Progress(report.sent, plan.count, report.elapsed_s))
    return report


def run(plan: Plan, *, on_progress: Callable[[Progress], None] | None = None) -> Report:
    """:func:`run_async` on a fresh event loop (uvloop when installed)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on CPython/Linux
        return asyncio.run(run_async(plan, on_progress=on_progress))
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(run_async(plan, on_progress=on_progress))
