"""The sandbox dashboard at ``/_sandbox/``: orders, transactions and deliveries, live; actions.

Loopback only (:func:`paymobctl.web.is_local`). Lists render on the server and refresh every
second (a poll of ``/_sandbox/live``); actions are same-origin JSON POSTs carrying the page's
per-process token. Refund, void and capture go through the same ``Sandbox`` rules as the API.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from html import escape
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route, request_response

from paymobctl import web
from paymobctl.emulator.validation import SandboxError
from paymobctl.models import format_amount, lenient_int

if TYPE_CHECKING:
    from paymobctl.emulator.notifier import Notifier
    from paymobctl.emulator.records import Transaction
    from paymobctl.emulator.state import Sandbox

BASE = "/_sandbox"
LIMIT = 50
OPERATIONS = ("refund", "void", "capture")


def e(value: object) -> str:
    """``value`` as HTML-escaped text (None as empty)."""
    return escape("" if value is None else str(value))


def _money(cents: object, currency: object) -> str:
    try:
        return format_amount(int(str(cents)), str(currency))
    except (ValueError, ArithmeticError):
        return f"{cents} {currency}"


def _status(txn: Transaction) -> tuple[str, str]:
    obj = txn.obj
    if obj.get("pending"):
        return "pending", "warn"
    if not txn.success:
        return "declined", "bad"
    flags = [name for name in ("refunded", "voided", "captured") if obj.get(f"is_{name}")]
    return (", ".join(flags) or "approved"), "ok"


def _action_form(path: str, fields: str, label: str) -> str:
    return (
        f'<form class=inline data-json="{BASE}/dashboard/{path}" method=post>'
        f"{fields}<button type=submit class=secondary>{e(label)}</button></form>"
    )


def _transaction_row(txn: Transaction) -> str:
    obj = txn.obj
    label, css = _status(txn)
    actions = ""
    if txn.kind == "payment" and txn.success and not obj.get("pending"):
        hidden = f'<input type=hidden name=transaction_id value="{txn.id}">'
        amount_field = (
            f'<input type=number name=amount_cents min=1 value="{e(obj.get("amount_cents"))}" '
            'aria-label="amount in cents" class=cents>'
        )
        if obj.get("is_auth") and not obj.get("is_captured"):
            actions += _action_form("capture", hidden + amount_field, "Capture")
        actions += _action_form("refund", hidden + amount_field, "Refund")
        if txn.source == "card" and not obj.get("is_voided") and not obj.get("is_refunded"):
            actions += _action_form("void", hidden, "Void")
    reason = ""
    data = obj.get("data")
    if not txn.success and isinstance(data, dict) and data.get("message"):
        reason = f' <span class="small muted">{e(data["message"])}</span>'
    return (
        f'<tr id="txn-{txn.id}"><td class=num>{txn.id}</td><td>{e(txn.kind)}</td>'
        f"<td class=num>{txn.order_id}</td>"
        f"<td class=num>{e(_money(obj.get('amount_cents'), obj.get('currency')))}</td>"
        f'<td><span class="badge {css}">{e(label)}</span>{reason}</td>'
        f'<td>{actions}<div class="result"></div></td></tr>'
    )


def live_html(sandbox: Sandbox) -> str:
    """The refreshed part of the page: three tables, newest first."""
    orders = sorted(sandbox.orders.values(), key=lambda o: o.id, reverse=True)[:LIMIT]
    order_rows = (
        "".join(
            f"<tr><td class=num>{o.id}</td><td>{e(o.merchant_order_id)}</td>"
            f"<td class=num>{e(_money(o.amount_cents, o.currency))}</td>"
            f"<td class=num>{e(_money(o.paid_amount_cents, o.currency))}</td></tr>"
            for o in orders
        )
        or "<tr><td colspan=4 class=muted>No orders yet.</td></tr>"
    )
    txns = sorted(sandbox.transactions.values(), key=lambda t: t.id, reverse=True)[:LIMIT]
    txn_rows = "".join(_transaction_row(t) for t in txns) or (
        "<tr><td colspan=6 class=muted>No transactions yet.</td></tr>"
    )
    deliveries = sorted(sandbox.deliveries.values(), key=lambda d: d.id, reverse=True)[:LIMIT]
    delivery_rows = (
        "".join(
            f'<tr id="delivery-{d.id}"><td class=num>{d.id}</td><td>{e(d.kind)}</td>'
            f"<td class=num>{e(d.transaction_id)}</td><td><code>{e(d.url)}</code></td>"
            f'<td><span class="badge {"ok" if d.state == "delivered" else ("bad" if d.state == "failed" else "warn")}">{e(d.state)}</span> '
            + (
                e(f"{d.attempts[-1].status or d.attempts[-1].error} · {len(d.attempts)} attempt(s)")
                if d.attempts
                else ""
            )
            + "</td><td>"
            + _action_form(
                "resend", f'<input type=hidden name=delivery_id value="{d.id}">', "Resend"
            )
            + '<div class="result"></div></td></tr>'
            for d in deliveries
        )
        or "<tr><td colspan=6 class=muted>No callbacks delivered yet.</td></tr>"
    )
    return (
        "<h2>Transactions</h2><div class=scroll><table><thead><tr><th>#</th><th>kind</th>"
        "<th>order</th><th>amount</th><th>status</th><th>actions</th></tr></thead>"
        f"<tbody>{txn_rows}</tbody></table></div>"
        "<h2>Callback deliveries</h2><div class=scroll><table><thead><tr><th>#</th><th>type</th>"
        "<th>transaction</th><th>URL</th><th>state</th><th></th></tr></thead>"
        f"<tbody>{delivery_rows}</tbody></table></div>"
        "<h2>Orders</h2><div class=scroll><table><thead><tr><th>#</th><th>merchant order</th>"
        f"<th>amount</th><th>paid</th></tr></thead><tbody>{order_rows}</tbody></table></div>"
    )


def _page(sandbox: Sandbox, token: web.ActionToken) -> str:
    urls = sandbox.callback_urls()
    settings = (
        '<div class=panel><form class=inline data-json="/_sandbox/callbacks" method=post>'
        "<label>processed callback <input type=url name=callback_url "
        f'value="{e(urls["callback_url"] or "")}" placeholder="http://127.0.0.1:8000/api/payments/webhook/"></label>'
        "<label>response callback <input type=url name=response_url "
        f'value="{e(urls["response_url"] or "")}" placeholder="http://127.0.0.1:8000/api/payments/response/"></label>'
        '<button type=submit>Save callback URLs</button><div class="result"></div></form></div>'
    )
    body = (
        "<h1>Sandbox dashboard</h1>"
        '<p class="small muted">Test mode only: nothing here reaches Paymob. Lists refresh every second.</p>'
        f'{settings}<section id=live data-poll="{BASE}/live">{live_html(sandbox)}</section>'
    )
    return web.layout(
        title="Dashboard",
        product="paymobctl sandbox",
        base=BASE,
        nav=[("Dashboard", f"{BASE}/"), ("Credentials", "/")],
        current=f"{BASE}/",
        body=body,
        token=token,
    )


def _state(request: Request) -> tuple[Sandbox, Notifier]:
    return request.app.state.sandbox, request.app.state.notifier


async def _action_body(request: Request, token: web.ActionToken) -> dict[str, Any]:
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        raise SandboxError(415, {"detail": "send JSON (Content-Type: application/json)"})
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > web.MAX_FORM:
            raise SandboxError(413, {"detail": f"body over {web.MAX_FORM} bytes"})
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise SandboxError(400, {"detail": "malformed JSON body"}) from None
    if not isinstance(body, dict):
        raise SandboxError(400, {"detail": "the JSON body is not an object"})
    supplied = request.headers.get(web.TOKEN_HEADER) or body.get("token")
    if not token.accepts(request, supplied):
        raise SandboxError(403, {"detail": "missing or wrong page token: reload the dashboard"})
    return body


def _id(body: dict[str, Any], name: str) -> int:
    number = lenient_int(str(body.get(name, "")), max_digits=18)
    if number is None:
        raise SandboxError(400, {name: ["A valid integer is required."]})
    return number


def routes(token: web.ActionToken | None = None) -> list[Route]:
    """The dashboard's routes, each behind :class:`paymobctl.web.LocalOnly`."""
    token = token or web.ActionToken()

    async def page(request: Request) -> Response:
        sandbox, _ = _state(request)
        return HTMLResponse(_page(sandbox, token), headers=web.SECURITY_HEADERS)

    async def live(request: Request) -> Response:
        sandbox, _ = _state(request)
        return HTMLResponse(live_html(sandbox), headers=web.SECURITY_HEADERS)

    async def asset(request: Request) -> Response:
        return web.asset(request.path_params["name"])

    def action(
        run: Callable[[Request, dict[str, Any]], Awaitable[str]],
    ) -> Callable[[Request], Awaitable[Response]]:
        async def handler(request: Request) -> Response:
            try:
                body = await _action_body(request, token)
                message = await run(request, body)
            except SandboxError as exc:
                detail = exc.body.get("detail") or exc.body.get("message") or json.dumps(exc.body)
                return JSONResponse({"ok": False, "message": str(detail)}, status_code=exc.status)
            return JSONResponse({"ok": True, "message": message})

        return handler

    async def resend(request: Request, body: dict[str, Any]) -> str:
        sandbox, notifier = _state(request)
        outbound = sandbox.resend(_id(body, "delivery_id"))
        notifier.submit([outbound])
        return f"queued as delivery {outbound.delivery_id} → {outbound.request.url.split('?')[0]}"

    def manage(operation: str) -> Callable[[Request, dict[str, Any]], Awaitable[str]]:
        async def run(request: Request, body: dict[str, Any]) -> str:
            sandbox, notifier = _state(request)
            fields: dict[str, Any] = {"transaction_id": _id(body, "transaction_id")}
            if operation != "void":
                fields["amount_cents"] = _id(body, "amount_cents")
            child = sandbox.manage(operation, fields)
            notifier.submit(sandbox.child_completion(child))
            return f"{operation}: transaction {child.id} created"

        return run

    def guarded(endpoint: Callable[[Request], Awaitable[Response]]) -> web.LocalOnly:
        return web.LocalOnly(request_response(endpoint))

    return [
        Route(f"{BASE}/", guarded(page)),
        Route(f"{BASE}/live", guarded(live)),
        Route(f"{BASE}/static/{{name}}", guarded(asset)),
        Route(f"{BASE}/dashboard/resend", guarded(action(resend)), methods=["POST"]),
        *(
            Route(f"{BASE}/dashboard/{op}", guarded(action(manage(op))), methods=["POST"])
            for op in OPERATIONS
        ),
    ]
