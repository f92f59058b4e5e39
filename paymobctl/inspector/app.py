"""The inspector's routes (a starlette app mounted at ``/_paymobctl`` by the receiver)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp

from paymobctl import outbound, signing, web
from paymobctl.config import check_url
from paymobctl.inspector import commands, views
from paymobctl.inspector.views import BASE, EventFilter
from paymobctl.models import lenient_int

if TYPE_CHECKING:
    import httpx

    from paymobctl.store import Event, Store

PATH = BASE + "/"
SCAN_LIMIT = 1000  # the list and the search look at the newest 1000 requests
LIST_LIMIT = 200
# Live rows: one indexed "id > last" query per connected page per tick, at most BURST_ROWS rows
# (the newest) rendered per tick. A burst of thousands per second is not something to read
# row by row: the page is told how many it skipped, and a reload lists them all.
POLL_SECONDS = 0.5
BURST_ROWS = 20
STREAM_SECONDS = 60.0  # a stream ends after this; EventSource reconnects with Last-Event-ID
REPLAY_TIMEOUT = 10.0
NAV = [("Events", PATH), ("Deposits", f"{BASE}/deposits"), ("Saved cards", f"{BASE}/cards")]


class Inspector:
    """The inspector's routes over one store: event list, live stream, event pages and actions."""

    def __init__(
        self,
        store: Store,
        secret: str,
        *,
        token: web.ActionToken,
        replay_targets: Callable[[str], list[str]],
        client_factory: Callable[[], httpx.AsyncClient],
    ) -> None:
        self.store = store
        self.secret = secret
        self.token = token
        self.replay_targets = replay_targets
        self.client_factory = client_factory

    def page(self, request: Request, title: str, body: str, *, live: str | None = None) -> Response:
        """Wrap ``body`` in the inspector's layout as an HTML response with its security headers."""
        html = web.layout(
            title=title,
            product="paymobctl inspector",
            base=BASE,
            nav=NAV,
            current=request.url.path,
            body=body,
            token=self.token,
            live=live,
        )
        return HTMLResponse(html, headers=web.SECURITY_HEADERS)

    def _filter(self, request: Request) -> EventFilter:
        params = request.query_params
        deposit = params.get("deposit", "").strip()
        order_id = None
        number = lenient_int(deposit, max_digits=18)
        if number is not None:
            found = self.store.deposit(number)
            order_id = found.order_id if found else None
        return EventFilter(
            kind=params.get("type", "").strip().upper()[:20],
            verdict=params.get("verdict", "").strip().lower()[:10],
            order_id=order_id,
            deposit=deposit if number is not None else "",
            q=params.get("q", "").strip()[:100],
        )

    async def events(self, request: Request) -> Response:
        """The filtered event list, with a live stream of newer events."""
        chosen = self._filter(request)
        found = [e for e in self.store.events(limit=SCAN_LIMIT) if chosen.matches(e)]
        newest = max((e.id for e in found), default=0)
        latest = self.store.events(limit=1)
        after = latest[0].id if latest else newest
        query = chosen.query()
        live = f"{BASE}/stream?after={after}" + (f"&{query}" if query else "")
        body = views.events_page(found[:LIST_LIMIT], chosen, self.store.deposits(limit=100))
        return self.page(request, "Events", body, live=live)

    async def stream(self, request: Request) -> Response:
        """Server-sent events: a table row for each new event matching the filter."""
        chosen = self._filter(request)
        text = request.headers.get("last-event-id") or request.query_params.get("after", "0")
        after = lenient_int(text, max_digits=18) or 0
        return StreamingResponse(
            self.rows(chosen, after, request.is_disconnected),
            media_type="text/event-stream",
            headers={"cache-control": "no-store", "x-accel-buffering": "no"},
        )

    async def rows(
        self,
        chosen: EventFilter,
        after: int,
        disconnected: Callable[[], object],
        *,
        seconds: float = STREAM_SECONDS,
    ) -> AsyncIterator[str]:
        """Server-sent events: one ``row`` (a rendered ``<tr>``) per new matching request."""
        yield "retry: 500\n\n"
        loop = asyncio.get_running_loop()
        ends = loop.time() + seconds
        while loop.time() < ends:
            check = disconnected()
            if asyncio.iscoroutine(check):
                check = await check
            if check:
                return
            newest = self.store.events(after_id=after, limit=BURST_ROWS)  # newest first
            if newest:
                skipped = newest[-1].id - after - 1
                after = newest[0].id
                if skipped > 0:
                    yield f"event: skipped\ndata: {skipped}\n\n"
                for event in reversed(newest):
                    if chosen.matches(event):
                        yield f"id: {event.id}\nevent: row\ndata: {views.event_row(event)}\n\n"
                yield f"id: {after}\n\n"
            await asyncio.sleep(POLL_SECONDS)

    def _event(self, request: Request) -> Event | None:
        text = request.path_params["event_id"]
        number = lenient_int(text, max_digits=18)
        return None if number is None else self.store.event(number)

    def _effects(self, event: Event) -> list[str]:
        effects = []
        if event.order_id is not None and event.kind in ("TRANSACTION", "RESPONSE"):
            deposit = self.store.deposit_by_order(event.order_id)
            if deposit is not None:
                effects.append(f"deposit {deposit.id} is {deposit.status}")
        effects += [
            f"card {m.masked_pan} saved"
            for m in self.store.payment_methods(include_removed=True)
            if m.event_id == event.id
        ]
        return effects

    def event_response(
        self,
        request: Request,
        event: Event,
        message: str | None = None,
        *,
        ok: bool = True,
        status: int = 200,
    ) -> Response:
        """One event's page, with its HMAC explanation, forwards and an optional action message."""
        found = commands.payload(event)
        explanation = (
            signing.explain(
                found.kind, found.data, self.secret, found.hmac, raw_query=found.raw_query
            )
            if found is not None
            else None
        )
        targets = self.replay_targets(event.kind)
        body = views.event_page(
            event,
            explanation=explanation,
            forwards=self.store.forward_attempts(event.id),
            effects=self._effects(event),
            replay_target=targets[0] if targets else "",
            message=message,
            message_ok=ok,
            token=self.token.value,
        )
        response = self.page(request, f"Event #{event.id}", body)
        response.status_code = status
        return response

    async def event(self, request: Request) -> Response:
        """One event's page by its id; a "not found" page for an unknown id."""
        event = self._event(request)
        if event is None:
            return self.page(request, "Not found", "<h1>No such event</h1>")
        return self.event_response(request, event)

    async def replay(self, request: Request) -> Response:
        """Re-send a received callback to a local URL (POST with the page token)."""
        event = self._event(request)
        form = await web.small_form(request)
        if not self.token.accepts(request, form.get("token")):
            return PlainTextResponse("forbidden: missing or wrong page token", status_code=403)
        if event is None:
            return self.page(request, "Not found", "<h1>No such event</h1>")
        if event.kind not in commands.REPLAYABLE:
            return self.event_response(
                request, event, "not a callback: nothing to replay", ok=False, status=400
            )
        target = str(form.get("to", "")).strip()
        try:
            check_url(target)
        except ValueError as exc:
            return self.event_response(
                request,
                event,
                f"replay target: {exc} (e.g. http://127.0.0.1:8001/api/payments/webhook/)",
                ok=False,
                status=400,
            )
        async with self.client_factory() as client:
            result = await commands.replay(
                self.store, event, target, client, timeout=REPLAY_TIMEOUT
            )
        if result.status is not None:
            text = f"replayed to {target}: {result.status} {result.reason} ({result.latency_ms:.1f} ms)"
            if result.excerpt:
                text += f" — {result.excerpt[:300]}"
        else:
            text = f"replay to {target} failed: {result.error_message or result.error}"
        if event.pan_masked:
            text += " (the body was masked before storage, so its HMAC may no longer match)"
        return self.event_response(request, event, text, ok=result.ok)

    async def copy(self, request: Request) -> Response:
        """A curl or ``paymobctl simulate`` command that reproduces an event (POST, page token)."""
        event = self._event(request)
        form = await web.small_form(request)
        if not self.token.accepts(request, form.get("token")):
            return PlainTextResponse("forbidden: missing or wrong page token", status_code=403)
        if event is None:
            return PlainTextResponse("no such event", status_code=404)
        base = str(request.base_url).removesuffix(BASE + "/").rstrip("/")
        if form.get("what") == "simulate":
            targets = self.replay_targets(event.kind)
            target = targets[0] if targets else base + event.path
            text = commands.simulate_command(event, target)
            if text is None:
                return PlainTextResponse(
                    f"no simulate command for a {event.kind} request", status_code=400
                )
        else:
            text = commands.curl(event, base)
        return PlainTextResponse(text + "\n", headers=web.SECURITY_HEADERS)

    async def deposits(self, request: Request) -> Response:
        """The deposits page: recent deposits and their status."""
        return self.page(request, "Deposits", views.deposits_page(self.store.deposits(limit=200)))

    async def cards(self, request: Request) -> Response:
        """The saved cards page, removed ones included."""
        methods = self.store.payment_methods(include_removed=True)
        return self.page(request, "Saved cards", views.cards_page(methods))

    async def asset(self, request: Request) -> Response:
        """Serve one of the pages' hand-written static files."""
        return web.asset(request.path_params["name"])


def create_inspector(
    *,
    store: Store,
    secret: str,
    fallback: ASGIApp | None = None,
    replay_targets: Callable[[str], list[str]] | None = None,
    client_factory: Callable[[], httpx.AsyncClient] | None = None,
    token: web.ActionToken | None = None,
) -> ASGIApp:
    """The inspector, for mounting at ``/_paymobctl``; non-local requests go to ``fallback``."""
    inspector = Inspector(
        store,
        secret,
        token=token or web.ActionToken(),
        replay_targets=replay_targets or (lambda kind: []),
        client_factory=client_factory or (lambda: outbound.async_client(verify=True)),
    )
    app = Starlette(
        routes=[
            Route("/", inspector.events),
            Route("/stream", inspector.stream),
            Route("/events/{event_id}", inspector.event),
            Route("/events/{event_id}/replay", inspector.replay, methods=["POST"]),
            Route("/events/{event_id}/copy", inspector.copy, methods=["POST"]),
            Route("/deposits", inspector.deposits),
            Route("/cards", inspector.cards),
            Route("/static/{name}", inspector.asset),
        ]
    )
    app.state.inspector = inspector
    return web.LocalOnly(app, fallback)
