"""The webhook receiver behind ``paymobctl listen``: verify, store, answer, forward.

Every request is stored before it is answered; answers follow the integration guide's
``{"detail": ...}`` shape: 200 ok, 401 "Invalid HMAC Signature", 400 naming the problem. A
malformed request never produces a 5xx (only an unusable store answers 503, so Paymob retries).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from paymobctl import signing
from paymobctl.errors import StoreError
from paymobctl.forwarding import Forwarder, Incoming
from paymobctl.models import CallbackKind, EventKind, TransactionChild, Verdict, lenient_int
from paymobctl.sandbox_profile import RESPONSE_PATH, WEBHOOK_PATH
from paymobctl.serving import KEPT_BODY, MAX_BODY, READ_TIMEOUT, read_body
from paymobctl.store import NewEvent, Store, StoredEvent

PROCESSED_KINDS = {
    kind.value: kind
    for kind in (CallbackKind.TRANSACTION, CallbackKind.TOKEN, CallbackKind.DELIVERY_STATUS)
}
INVALID_HMAC = "Invalid HMAC Signature"


@dataclass(slots=True)
class Received:
    """One line of the listener's log (and one NDJSON record with --json)."""

    id: int
    time: str
    method: str
    path: str
    kind: EventKind
    status: int
    verdict: Verdict
    convention: str | None
    duplicate: bool
    transaction_id: int | None
    order_id: int | None
    amount_cents: int | None
    currency: str | None
    success: bool | None
    pending: bool | None
    problem: str | None
    pan_masked: bool
    effect: str | None
    forwards: int


Sink = Callable[[Received], None]


@dataclass(frozen=True)
class ReceiverConfig:
    """What a receiver accepts: its webhook and response paths, body size limit and read timeout."""

    webhook_path: str = WEBHOOK_PATH
    response_path: str = RESPONSE_PATH
    max_body: int = MAX_BODY  # bytes; over it: 413, and only the first KEPT_BODY are stored
    read_timeout: float = READ_TIMEOUT  # seconds for the body once the headers arrived: else 408


@dataclass
class _Outcome:
    """The answer to one request and what to store about it (fields of :class:`NewEvent`)."""

    status: int
    detail: str
    fields: dict[str, Any]
    allow: str | None = None


def _problem(status: int, problem: str, kind: str = EventKind.UNKNOWN) -> _Outcome:
    return _Outcome(
        status,
        problem,
        {"kind": kind, "status": status, "verdict": Verdict.NOT_APPLICABLE, "problem": problem},
    )


_MAX_ID = 2**63 - 1  # SQLite's INTEGER


def _int(value: Any) -> int | None:
    """An id or amount as an int, or None: never a value SQLite could refuse."""
    if type(value) is int:  # what Paymob sends: the common case first
        return value if -_MAX_ID <= value <= _MAX_ID else None
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        value = lenient_int(value.strip(), max_digits=18)
    if isinstance(value, int) and -_MAX_ID <= value <= _MAX_ID:
        return value
    return None


def _text(value: Any) -> str | None:
    """A scalar as text (ids may arrive as numbers), anything else (objects, lists) as None."""
    if isinstance(value, bool) or value is None or isinstance(value, dict | list):
        return None
    return str(value)


def _bool(value: Any) -> bool | None:
    if value is True or value is False:
        return value
    if value == "true":
        return True
    if value == "false":
        return False
    return None


def _paths(path: str) -> list[str]:
    """Accept the path with and without its trailing slash (Django's APPEND_SLASH trap)."""
    stripped = path.rstrip("/") or "/"
    return sorted({stripped, stripped + "/" if stripped != "/" else "/"})


class GroupCommit:
    """Stores events in batches: requests handled in the same event-loop turn share one
    transaction, and each is answered only after that transaction committed. Every request of
    a turn is answered after the whole flush anyway, so one commit serves them all; a batch is
    capped (``MAX_BATCH``) only to bound the work one failed commit has to redo row by row."""

    MAX_BATCH = 64

    def __init__(self, store: Store) -> None:
        self.store = store
        self._pending: list[tuple[NewEvent, asyncio.Future[StoredEvent]]] = []
        self._scheduled = False

    def submit(self, event: NewEvent) -> asyncio.Future[StoredEvent]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[StoredEvent] = loop.create_future()
        self._pending.append((event, future))
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush)
        return future

    def _flush(self) -> None:
        self._scheduled = False
        pending, self._pending = self._pending, []
        for start in range(0, len(pending), self.MAX_BATCH):
            chunk = pending[start : start + self.MAX_BATCH]
            try:
                results = self.store.record_events([event for event, _ in chunk])
            except Exception:
                # One unstorable event must not cost the others their commit: retry one by one.
                for event, future in chunk:
                    self._store_one(event, future)
                continue
            for (_, future), result in zip(chunk, results, strict=True):
                if not future.done():
                    future.set_result(result)

    def _store_one(self, event: NewEvent, future: asyncio.Future[StoredEvent]) -> None:
        try:
            result = self.store.record_events([event])[0]
        except StoreError as exc:
            if not future.done():
                future.set_exception(exc)
            return
        except Exception as exc:  # a value the store refused: keep the request, say why
            event.problem = (
                f"could not store every field ({type(exc).__name__}); stored the raw request"
            )
            event.token = None
            event.verdict = (
                Verdict.NOT_APPLICABLE if event.verdict == Verdict.VALID else event.verdict
            )
            try:
                result = self.store.record_events([event])[0]
            except Exception as again:
                if not future.done():
                    future.set_exception(StoreError(str(again)))
                return
        if not future.done():
            future.set_result(result)


class Receiver:
    """The webhook receiver behind `listen`: stores every request, verifies, answers."""

    def __init__(
        self,
        store: Store,
        secret: str,
        *,
        config: ReceiverConfig | None = None,
        forwarder: Forwarder | None = None,
        sink: Sink | None = None,
    ) -> None:
        self.store = store
        self.secret = secret
        self.config = config or ReceiverConfig()
        self.forwarder = forwarder
        self.sink = sink
        self._webhook = _paths(self.config.webhook_path)
        self._response = _paths(self.config.response_path)
        self._commits = GroupCommit(store)

    # -- classification (pure) ------------------------------------------------------------------

    def classify_post(self, body: bytes, query: str, content_type: str) -> _Outcome:
        if len(body) > self.config.max_body:
            return _problem(
                400, f"body too large ({len(body)} bytes, limit {self.config.max_body})"
            )
        if not body or body.isspace():
            return _problem(400, "empty body: Paymob POSTs a JSON callback")
        media = content_type.split(";", 1)[0].strip().lower()
        if media and media != "application/json" and not media.endswith("+json"):
            return _problem(400, f"wrong content type {media!r}: Paymob POSTs application/json")
        try:
            document = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return _problem(400, "malformed JSON body")
        except RecursionError:
            return _problem(400, "malformed JSON body (nested too deeply)")
        if not isinstance(document, dict):
            return _problem(400, "the JSON body is not an object")
        kind_text = document.get("type")
        if not isinstance(kind_text, str) or kind_text.upper() not in PROCESSED_KINDS:
            shown = kind_text if isinstance(kind_text, str) else json.dumps(kind_text)
            return _problem(
                400,
                f"unknown callback type {shown!r}: expected TRANSACTION, TOKEN or DELIVERY_STATUS",
            )
        kind = PROCESSED_KINDS[kind_text.upper()]
        obj = document.get("obj")
        if not isinstance(obj, dict):
            return _problem(400, "the callback has no 'obj' object", kind.value)
        received = _hmac_param(query)
        fields = _facts(kind, obj)
        fields.update(kind=kind.value, hmac=received)
        if kind is CallbackKind.TOKEN:
            fields["token"] = obj
        return self._verdict(kind, obj, received, fields)

    def classify_get(self, query: str) -> _Outcome:
        params: dict[str, str] = {}
        for key, value in parse_qsl(query, keep_blank_values=True):
            params.setdefault(key, value)
        received = params.pop("hmac", None)
        if "id" not in params and "order" not in params and "order_id" not in params:
            return _problem(
                400,
                "not a transaction response redirect: no id or order in the query",
                EventKind.RESPONSE,
            )
        fields: dict[str, Any] = {
            "kind": EventKind.RESPONSE,
            "hmac": received,
            "object_id": params.get("id"),
            "transaction_id": _int(params.get("id")),
            "order_id": _int(params.get("order", params.get("order_id"))),
            "merchant_order_id": params.get("merchant_order_id"),
            "success": _bool(params.get("success")),
            "pending": _bool(params.get("pending")),
            "amount_cents": _int(params.get("amount_cents")),
            "currency": params.get("currency"),
            "message": params.get("data.message"),
        }
        return self._verdict(CallbackKind.RESPONSE, params, received, fields)

    def _verdict(
        self,
        kind: CallbackKind,
        data: Mapping[str, Any],
        received: str | None,
        fields: dict[str, Any],
    ) -> _Outcome:
        result = signing.verify(kind, data, self.secret, received)
        if result.malformed:
            # Shapes first: an HMAC over a concatenation proves nothing about which field a
            # digit belongs to (docs/paymob.md §14). Stored, answered 400, never "valid".
            problem = signing.describe_shape_problems(result.malformed)
            fields.update(
                status=400, verdict=Verdict.MALFORMED, token=None, child=None, problem=problem
            )
            return _Outcome(400, problem, fields)
        if not received:
            fields.update(status=401, verdict=Verdict.MISSING, token=None)
            return _Outcome(401, INVALID_HMAC, fields)
        if not result.valid:
            fields.update(status=401, verdict=Verdict.INVALID, token=None)
            return _Outcome(401, INVALID_HMAC, fields)
        fields.update(
            status=200,
            verdict=Verdict.VALID,
            convention=result.convention.value if result.convention else None,
        )
        return _Outcome(200, "ok", fields)

    # -- HTTP ---------------------------------------------------------------------------------

    def _classify(
        self, method: str, path: str, query: str, body: bytes, content_type: str
    ) -> _Outcome:
        if path in self._webhook and method == "POST":
            return self.classify_post(body, query, content_type)
        if path in self._response and method in ("GET", "HEAD"):
            return self.classify_get(query)
        if path in self._webhook or path in self._response:
            allowed = "POST" if path in self._webhook else "GET"
            outcome = _problem(405, f"method {method} not allowed here: Paymob uses {allowed}")
            outcome.allow = allowed
            return outcome
        return _problem(
            404,
            f"no callback endpoint at {path}: the webhook is {self.config.webhook_path} "
            f"and the response redirect {self.config.response_path}",
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Raw ASGI: the hot path skips Request/Response objects (see scripts/bench_listen.py)."""
        if scope["type"] != "http":
            return
        read = await read_body(
            scope, receive, limit=self.config.max_body, timeout=self.config.read_timeout
        )
        body = read.data
        query = scope["query_string"].decode("latin-1")
        path = scope["path"]
        method = scope["method"]
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
        content_type = accept = ""
        for name, value in headers:
            if name == "content-type":
                content_type = content_type or value
            elif name == "accept":
                accept = accept or value
        if read.too_large:
            outcome = _problem(
                413,
                f"body too large (limit {self.config.max_body} bytes): stored its first "
                f"{KEPT_BODY} bytes",
            )
        elif read.timed_out:
            outcome = _problem(
                408, f"body not received within {self.config.read_timeout:g} s: stored what came"
            )
        else:
            outcome = self._classify(method, path, query, body, content_type)
        client = scope.get("client")
        event = NewEvent(
            method=method,
            path=path,
            query=query,
            headers=headers,
            body=body,
            remote=f"{client[0]}:{client[1]}" if client else None,
            truncated=read.truncated,
            **outcome.fields,
        )
        try:
            stored = await self._commits.submit(event)
        except StoreError as exc:
            if self.sink is not None:  # every 503 is logged with its reason (disk full, locked)
                self.sink(_unstored(event, exc.message))
            await _send(
                send, 503, {"detail": f"the listener cannot store this request: {exc.message}"}, {}
            )
            return
        forwards = 0
        if self.forwarder is not None and event.kind != EventKind.UNKNOWN and outcome.status < 404:
            forwards = self.forwarder.submit(
                Incoming(
                    stored.id,
                    event.kind,
                    method,
                    query,
                    body,
                    content_type or None,
                    stored.duplicate,
                )
            )
        if self.sink is not None:
            self.sink(_received(stored, event, forwards))
        extra = {"x-paymobctl-event": str(stored.id)}
        if stored.duplicate:
            extra["x-paymobctl-duplicate"] = str(stored.duplicates)
        if outcome.allow:
            extra["allow"] = outcome.allow
        if read.truncated:
            extra["connection"] = "close"  # the rest of the body is never read
        if method == "GET" and "text/html" in accept:
            await _send_html(send, outcome.status, _page(outcome), extra)
        else:
            await _send(send, outcome.status, {"detail": outcome.detail}, extra)


_OK_BODY = b'{"detail":"ok"}'


async def _send(send: Send, status: int, payload: dict[str, str], extra: Mapping[str, str]) -> None:
    data = (
        _OK_BODY
        if payload.get("detail") == "ok" and len(payload) == 1
        else json.dumps(payload, ensure_ascii=False).encode()
    )
    await _send_bytes(send, status, data, b"application/json", extra)


async def _send_html(send: Send, status: int, page: str, extra: Mapping[str, str]) -> None:
    await _send_bytes(send, status, page.encode(), b"text/html; charset=utf-8", extra)


async def _send_bytes(
    send: Send, status: int, data: bytes, content_type: bytes, extra: Mapping[str, str]
) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(data)).encode())]
    headers += [(k.encode(), v.encode("latin-1", "replace")) for k, v in extra.items()]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})


def _hmac_param(query: str) -> str | None:
    if "hmac=" not in query:
        return None
    if query.startswith("hmac=") and "&" not in query and "%" not in query and "+" not in query:
        return query[5:]  # how Paymob sends it: the only parameter
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key == "hmac":
            return value
    return None


def _child(get: Callable[[str], Any]) -> TransactionChild | None:
    """What a transaction is, from its signed flags only (docs/paymob.md §8.1).

    A child transaction (``has_parent_transaction``) is a capture (``is_capture``), a void
    (``is_voided``) or else a refund: money going back, of its signed ``amount_cents``. A
    payment already marked voided or refunded is ``reversed``: nothing to mark paid. The
    unsigned ``is_refund`` / ``is_void`` are never used (anyone can add them to a replayed
    genuine callback); :func:`_unsigned_warning` shows when they disagree.
    """
    if get("has_parent_transaction") is True:
        if get("is_capture") is True:
            return TransactionChild.CAPTURE
        return TransactionChild.VOID if get("is_voided") is True else TransactionChild.REFUND
    if get("is_voided") is True or get("is_refunded") is True:
        return TransactionChild.REVERSED
    return None


def _unsigned_warning(get: Callable[[str], Any], child: TransactionChild | None) -> str | None:
    if get("is_refund") is not True and get("is_void") is not True:
        return None  # nothing unsigned claims anything (the common case)
    claims = [
        name
        for name, meaning in (
            ("is_refund", TransactionChild.REFUND),
            ("is_void", TransactionChild.VOID),
        )
        if get(name) is True and child != meaning
    ]
    if not claims:
        return None
    signed = child or "payment"
    names = ", ".join(f"{name}=true" for name in claims)
    return f"warning: unsigned {names} ignored: the signed fields say {signed}"


def _facts(kind: CallbackKind, obj: dict[str, Any]) -> dict[str, Any]:
    """Ids and amounts the log and the store index by (``obj`` comes from json: plain dicts).

    Effects on deposits use only these facts, and only once the signed fields' shapes were
    checked and the HMAC verified; for other requests they are shown, never acted on.
    """
    get = obj.get
    if kind is CallbackKind.TRANSACTION:
        order = get("order")
        order_map: dict[str, Any] | None = order if isinstance(order, dict) else None
        child = _child(get)
        data = get("data")
        message = data.get("message") if isinstance(data, dict) else None
        currency = get("currency")
        identifier = get("id")
        return {
            "object_id": _text(identifier),
            "transaction_id": _int(identifier),
            "order_id": _int(order_map.get("id")) if order_map is not None else None,
            "merchant_order_id": _text(order_map.get("merchant_order_id"))
            if order_map is not None
            else None,
            "success": _bool(get("success")),
            "pending": _bool(get("pending")),
            "amount_cents": _int(get("amount_cents")),
            "currency": currency if isinstance(currency, str) else None,
            "child": child,
            "message": message if isinstance(message, str) else None,
            "problem": _unsigned_warning(get, child),
        }
    if kind is CallbackKind.TOKEN:
        identifier = get("id")
        return {"object_id": _text(identifier), "order_id": _int(get("order_id"))}
    return {
        "object_id": f"{get('order_id')}:{get('order_delivery_status')}:{get('updated_at')}",
        "order_id": _int(get("order_id")),
    }


def _now_millis() -> str:
    """Now in UTC as ISO-8601 with milliseconds (``datetime.isoformat``'s text), the date and
    clock of the whole second kept: a burst of callbacks logs many a second."""
    now = time.time()
    second = int(now)
    head = _SECOND_TEXT.get(second)
    if head is None:
        head = datetime.fromtimestamp(second, UTC).isoformat(timespec="seconds")[:19]
        _SECOND_TEXT.clear()
        _SECOND_TEXT[second] = head
    return f"{head}.{int((now - second) * 1000):03d}+00:00"


_SECOND_TEXT: dict[int, str] = {}


def _received(stored: StoredEvent, event: NewEvent, forwards: int) -> Received:
    return Received(
        id=stored.id,
        time=_now_millis(),
        method=event.method,
        path=event.path,
        kind=event.kind,
        status=event.status,
        verdict=event.verdict,
        convention=event.convention,
        duplicate=stored.duplicate,
        transaction_id=event.transaction_id,
        order_id=event.order_id,
        amount_cents=event.amount_cents,
        currency=event.currency,
        success=event.success,
        pending=event.pending,
        problem=event.problem,
        pan_masked=stored.pan_masked,
        effect=stored.effect,
        forwards=forwards,
    )


def _unstored(event: NewEvent, reason: str) -> Received:
    """The log line of a request answered 503 because the store refused it (id 0: no row)."""
    event.status = 503
    event.problem = f"NOT STORED, answered 503 so Paymob retries: {reason}"
    return _received(StoredEvent(0, False, 0, False, None), event, 0)


def _page(outcome: _Outcome) -> str:
    fields = outcome.fields
    if outcome.status == 200:
        state = (
            "successful"
            if fields.get("success")
            else ("pending" if fields.get("pending") else "failed")
        )
        reason = fields.get("message")  # data.message: the issuer's reason, for the payer too
        because = f" Reason: {reason}." if state == "failed" and reason else ""
        text = (
            f"Payment {state}: transaction {fields.get('transaction_id')}, order {fields.get('order_id')}."
            f"{because} HMAC valid."
        )
    else:
        text = outcome.detail
    return (
        "<!doctype html><meta charset=utf-8><title>paymobctl listen</title>"
        "<body style='font-family:system-ui;max-width:560px;margin:40px auto'>"
        f"<h1>paymobctl listen</h1><p>{escape(text)}</p>"
        "<p style='color:#666'>This is the transaction response redirect, received and stored by "
        "paymobctl listen.</p></body>"
    )


async def healthz(request: Request) -> Response:
    """`GET /healthz`: a liveness answer for scripts and tunnels."""
    del request
    return JSONResponse({"status": "ok"})


# What a browser asks for on its own when someone opens listen's URL: answered 404 and not
# stored, so `events list` holds what Paymob (or a person) sent on purpose.
BROWSER_NOISE = (
    "/favicon.ico",
    "/robots.txt",
    "/apple-touch-icon.png",
    "/apple-touch-icon-precomposed.png",
)


async def browser_noise(request: Request) -> Response:
    """A 404 for what browsers ask on their own (favicon and the like), not stored as events."""
    del request
    return Response("not found", status_code=404, media_type="text/plain")


def create_app(
    *,
    store: Store,
    secret: str,
    config: ReceiverConfig | None = None,
    forwarder: Forwarder | None = None,
    sink: Sink | None = None,
    health: Callable[[], Mapping[str, Any]] | None = None,
    inspector: Callable[[ASGIApp], ASGIApp] | None = None,
) -> ReceiverApp:
    """The receiver app. Store, secret, forwarder and sink are injected; nothing global.

    ``inspector`` builds the web inspector mounted at ``/_paymobctl`` from a fallback app (the
    receiver: what the inspector refuses to serve is stored and answered like any unknown path).

    A starlette app serves everything (health, lifespan, unknown paths); requests to the two
    callback paths go straight to the raw-ASGI :class:`Receiver`, skipping the router: that
    is the hot path ``scripts/bench_listen.py`` measures.
    """
    receiver = Receiver(store, secret, config=config, forwarder=forwarder, sink=sink)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        del app
        try:
            yield
        finally:
            if forwarder is not None:
                await forwarder.close()

    async def healthz_with_state(request: Request) -> Response:
        del request
        assert health is not None
        return JSONResponse({"status": "ok", **health()})

    routes: list[Route | Mount] = [
        Route("/healthz", healthz if health is None else healthz_with_state),
        *(Route(path, browser_noise, methods=["GET", "HEAD"]) for path in BROWSER_NOISE),
    ]
    if inspector is not None:
        routes.append(Mount("/_paymobctl", app=inspector(receiver)))
    routes.append(Mount("/", app=receiver))
    starlette = Starlette(routes=routes, lifespan=lifespan)
    return ReceiverApp(starlette, receiver)


class ReceiverApp:
    """ASGI entry point: callback paths to the receiver directly, the rest through starlette."""

    def __init__(self, starlette: Starlette, receiver: Receiver) -> None:
        self.starlette = starlette
        self.receiver = receiver
        self._fast = frozenset(receiver._webhook + receiver._response)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] in self._fast:
            await self.receiver(scope, receive, send)
        else:
            await self.starlette(scope, receive, send)
