"""Load: many distinct, validly signed callbacks sent concurrently and measured (``simulate --count``).

Every request is a different callback: one TRANSACTION built by :mod:`paymobctl.callbacks` is the
template, and each copy gets its own transaction id, order id and merchant order id (all in the
probe ranges no real order uses) and its own HMAC. Requests go over a bounded pool of keep-alive
HTTP/1.1 connections (one per concurrent sender) with a small asyncio client: a general HTTP client
costs more CPU per request than the receivers being measured (scripts/bench_load.py compares this
engine with ``wrk`` against the same server). Each answer has a deadline and a size cap.
"""

from __future__ import annotations

import asyncio
import math
import secrets
import ssl
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast
from urllib.parse import urlsplit

from paymobctl import callbacks, delivery, signing
from paymobctl.callbacks import Callback
from paymobctl.errors import UsageError

MAX_RESPONSE_BYTES = 1_048_576  # an answer larger than this ends its connection ("too-large")
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


# Stand-ins for the per-callback values while the template is rendered once; each must occur
# exactly once in the signed string and in the body (checked), so substituting them is exact.
_TX_MARK = 987_654_321_987_654_321
_ORDER_MARK = 987_654_321_123_456_789
_MOI_MARK = "paymobctl-load-mark-5f3c9e1a"


class Signer:
    """Distinct signed callbacks from one template: new ids and a new HMAC for each number.

    :meth:`callback` is the plain definition (a copy of the template's obj with new ids, signed by
    :func:`paymobctl.signing.compute`); :meth:`wire` produces the same bytes ~20× faster by
    rendering the body and the signed string once with stand-ins and splicing the numbers in
    (tests check both agree), so the generator is not what a load run measures.
    """

    def __init__(self, template: Callback, secret: str, *, tag: str | None = None) -> None:
        import hashlib
        import hmac

        self.template = template
        self.secret = secret
        self.tag = tag or secrets.token_hex(4)
        self.kind = template.kind
        body, _ = self._with(_TX_MARK, _ORDER_MARK, _MOI_MARK)
        message = signing.signing_string(signing.collect_fields(self.kind, body["obj"]))
        self._message = _split(message.encode("utf-8"), (str(_TX_MARK), str(_ORDER_MARK)))
        self._body = _split(delivery.wire_json(body), (str(_TX_MARK), str(_ORDER_MARK), _MOI_MARK))
        self._mac = hmac.new(secret.encode("utf-8"), digestmod=hashlib.sha512)

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

    def _values(self, number: int) -> tuple[str, str, str]:
        return (
            str(LOAD_TRANSACTION_BASE + number),
            str(LOAD_ORDER_BASE + number),
            f"paymobctl-load-{self.tag}-{number}",
        )

    def callback(self, number: int) -> tuple[dict[str, Any], str]:
        """The body and HMAC of callback ``number`` (0-based), the plain way."""
        tx, order, merchant_order = self._values(number)
        body, obj = self._with(int(tx), int(order), merchant_order)
        return body, signing.compute(self.kind, obj, self.secret)

    def wire(self, number: int) -> tuple[bytes, str]:
        """The exact body bytes (``delivery.wire_json``) and HMAC of callback ``number``."""
        values = self._values(number)
        mac = self._mac.copy()
        mac.update(_join(self._message, values))
        return _join(self._body, values), mac.hexdigest()

    def request(self, url: str, number: int) -> delivery.HttpRequest:
        body, digest = self.callback(number)
        return delivery.post_json(callbacks.with_query(url, f"hmac={digest}"), body)


def _split(data: bytes, marks: tuple[str, ...]) -> tuple[tuple[bytes, ...], tuple[int, ...]]:
    """``data`` cut at each mark (each must occur exactly once): the pieces, and which mark
    follows each piece, in the order they occur."""
    found: list[tuple[int, int]] = []
    for index, mark in enumerate(marks):
        encoded = mark.encode("utf-8")
        if data.count(encoded) != 1:
            raise ValueError(f"template marker {mark} occurs {data.count(encoded)} times")
        found.append((data.index(encoded), index))
    found.sort()
    pieces: list[bytes] = []
    position = 0
    for start, index in found:
        pieces.append(data[position:start])
        position = start + len(marks[index].encode("utf-8"))
    pieces.append(data[position:])
    return tuple(pieces), tuple(index for _, index in found)


def _join(template: tuple[tuple[bytes, ...], tuple[int, ...]], values: tuple[str, ...]) -> bytes:
    pieces, order = template
    out = [pieces[0]]
    for piece, index in zip(pieces[1:], order, strict=True):
        out.append(values[index].encode("ascii"))
        out.append(piece)
    return b"".join(out)


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (0 < fraction ≤ 1) of a non-empty sequence."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


@dataclass
class Progress:
    done: int = 0
    total: int | None = None  # None with --duration
    elapsed: float = 0.0


@dataclass
class Report:
    url: str
    started_at: str
    elapsed_s: float
    sent: int
    answered: int
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    first_error: str | None = None
    latencies_ms: list[float] = field(default_factory=list)
    concurrency: int = 0
    rate: float | None = None

    @property
    def ok(self) -> int:
        return sum(n for status, n in self.statuses.items() if 200 <= status < 300)

    @property
    def throughput(self) -> float:
        return self.answered / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def percentile(self, fraction: float) -> float | None:
        """Nearest-rank percentile of the answered requests' latency, in ms."""
        return percentile(self.latencies_ms, fraction) if self.latencies_ms else None

    def summary(self) -> dict[str, Any]:
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


class _Failed(Exception):
    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class _Connection(asyncio.Protocol):
    """One keep-alive connection: write a request, wait for the whole answer, return its status."""

    def __init__(self) -> None:
        import httptools

        self._parser = httptools.HttpResponseParser(self)
        self._transport: asyncio.Transport | None = None
        self._waiter: asyncio.Future[int] | None = None
        self._body_bytes = 0
        self.closed = False

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast("asyncio.Transport", transport)  # uvloop's are not subclasses

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except Exception as exc:  # httptools.HttpParserError and friends
            self._fail(_Failed("protocol", f"malformed HTTP answer ({exc})"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(_Failed("closed", f"the server closed the connection ({exc or 'EOF'})"))

    # httptools callbacks
    def on_body(self, body: bytes) -> None:
        self._body_bytes += len(body)
        if self._body_bytes > MAX_RESPONSE_BYTES:
            self._fail(_Failed("too-large", f"answer larger than {MAX_RESPONSE_BYTES} bytes"))

    def on_message_complete(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(self._parser.get_status_code())
        if not self._parser.should_keep_alive():
            self.close()

    def _time_out(self, timeout: float) -> None:
        self._fail(_Failed("timeout", f"no answer within {timeout:g} s"))

    def _fail(self, exc: _Failed) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)
        self.close()

    def close(self) -> None:
        self.closed = True
        if self._transport is not None:
            self._transport.close()

    async def send(self, payload: bytes, timeout: float) -> int:
        assert self._transport is not None
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[int] = loop.create_future()
        self._waiter = waiter
        self._body_bytes = 0
        self._transport.write(payload)
        timer = loop.call_later(timeout, self._time_out, timeout)
        try:
            return await waiter
        finally:
            timer.cancel()
            self._waiter = None


class _Requests:
    """Whole HTTP/1.1 requests, as :func:`paymobctl.delivery.post_json` would send them."""

    def __init__(self, signer: Signer, url: str, host_header: str) -> None:
        self.signer = signer
        parts = urlsplit(url)
        target = parts.path or "/"
        target += f"?{parts.query}&hmac=" if parts.query else "?hmac="
        self._start = f"POST {target}".encode("latin-1")
        sample = delivery.post_json(url, {})
        headers = "".join(f"\r\n{name}: {value}" for name, value in sample.headers)
        self._headers = f" HTTP/1.1\r\nHost: {host_header}{headers}\r\nContent-Length: ".encode(
            "latin-1"
        )

    def payload(self, number: int) -> bytes:
        body, digest = self.signer.wire(number)
        return b"".join(
            (
                self._start,
                digest.encode("ascii"),
                self._headers,
                str(len(body)).encode("ascii"),
                b"\r\n\r\n",
                body,
            )
        )


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

    async def connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            _, protocol = await asyncio.wait_for(
                loop.create_connection(
                    _Connection,
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


async def run_async(plan: Plan, *, on_progress: Callable[[Progress], None] | None = None) -> Report:
    """Send the plan's callbacks and measure every answer."""
    from datetime import UTC, datetime

    plan.check()
    signer = Signer(plan.template, plan.secret)
    pool = _Pool(plan.url, plan.verify, plan.timeout)
    wire = _Requests(signer, plan.url, pool.host_header)
    report = Report(
        plan.url,
        datetime.now(UTC).isoformat(timespec="seconds"),
        0.0,
        0,
        0,
        concurrency=plan.concurrency,
        rate=plan.rate,
    )
    started = time.perf_counter()
    deadline = started + plan.duration if plan.duration is not None else math.inf
    total = plan.count
    next_number = 0
    progress = Progress(total=total)
    stopped = False

    def take() -> int | None:
        nonlocal next_number
        if stopped or (total is not None and next_number >= total):
            return None
        if time.perf_counter() >= deadline:
            return None
        number = next_number
        next_number += 1
        return number

    async def sender() -> None:
        nonlocal stopped
        connection: _Connection | None = None
        while (number := take()) is not None:
            if plan.rate is not None:
                due = started + number / plan.rate
                wait = due - time.perf_counter()
                if wait > 0:
                    await asyncio.sleep(wait)
                    if time.perf_counter() >= deadline:
                        break
            payload = wire.payload(number)
            report.sent += 1
            began = time.perf_counter()
            try:
                if connection is None or connection.closed:
                    connection = await pool.connect()
                status = await connection.send(payload, plan.timeout)
            except _Failed as exc:
                report.errors[exc.kind] += 1
                report.first_error = report.first_error or str(exc)
                if connection is not None:
                    connection.close()
                connection = None
                if exc.kind in ("refused", "connect", "tls"):
                    # Nothing ever answered: stop rather than fail N times. Otherwise the
                    # server is restarting or overloaded: back off a little and go on.
                    stopped = stopped or report.answered == 0
                    await asyncio.sleep(0.05)
                continue
            report.latencies_ms.append((time.perf_counter() - began) * 1000)
            report.statuses[status] += 1
            report.answered += 1
        if connection is not None:
            connection.close()

    async def ticker() -> None:
        while True:
            await asyncio.sleep(0.1)
            progress.done = report.sent
            progress.elapsed = time.perf_counter() - started
            if on_progress is not None:
                on_progress(progress)

    senders = [asyncio.create_task(sender()) for _ in range(plan.concurrency)]
    tick = asyncio.create_task(ticker())
    try:
        await asyncio.gather(*senders)
    finally:
        tick.cancel()
        for task in senders:
            task.cancel()
    report.elapsed_s = time.perf_counter() - started
    if on_progress is not None:
        on_progress(Progress(report.sent, total, report.elapsed_s))
    return report


def run(plan: Plan, *, on_progress: Callable[[Progress], None] | None = None) -> Report:
    """:func:`run_async` on a fresh event loop (uvloop when installed)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on CPython/Linux
        return asyncio.run(run_async(plan, on_progress=on_progress))
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(run_async(plan, on_progress=on_progress))
