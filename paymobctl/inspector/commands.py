"""What the inspector's actions produce from a stored event: curl, a ``simulate`` command, a replay."""

from __future__ import annotations

import json
import shlex
from typing import TYPE_CHECKING, Any

from paymobctl import delivery, signing
from paymobctl.forwarding import replay_request
from paymobctl.simulation import record_replay

if TYPE_CHECKING:
    import httpx

    from paymobctl.store import Event, Store

REPLAYABLE = ("TRANSACTION", "TOKEN", "DELIVERY_STATUS", "RESPONSE")


def content_type(event: Event) -> str | None:
    """The Content-Type header the event was received with, if any."""
    return next((v for k, v in event.headers if k.lower() == "content-type"), None)


def payload(event: Event) -> signing.Payload | None:
    """The signed payload of a stored callback (None for anything that was not one)."""
    return signing.stored_payload(event.kind, event.body, event.query, event.hmac)


def curl(event: Event, base_url: str) -> str:
    """The stored request as a curl command against this listener (the body as stored: masked)."""
    url = base_url.rstrip("/") + event.path + (f"?{event.query}" if event.query else "")
    parts = ["curl", "-i", "-X", event.method, shlex.quote(url)]
    kind = content_type(event)
    if kind:
        parts += ["-H", shlex.quote(f"Content-Type: {kind}")]
    if event.body and event.method != "GET":
        parts += ["--data-binary", shlex.quote(event.body.decode("utf-8", "replace"))]
    return " ".join(parts)


def _outcome(event: Event, obj: dict[str, Any]) -> str:
    for child in ("refund", "void", "capture"):
        if obj.get(f"is_{child}") is True:
            return child
    if event.success:
        return "approved"
    if event.pending:
        return "pending"
    return "declined"


def simulate_command(event: Event, target: str) -> str | None:
    """A ``paymobctl simulate`` command sending the same kind of callback (new ids and times).

    It carries what decides an application's behaviour (outcome, source, amount, currency,
    order ids); ids, timestamps and the rest of the payload are generated afresh.
    """
    if event.kind not in ("TRANSACTION", "TOKEN", "RESPONSE"):
        return None
    obj: dict[str, Any] = {}
    if event.kind == "TRANSACTION":
        try:
            document = json.loads(event.body)
        except (ValueError, UnicodeDecodeError):
            document = {}
        found = document.get("obj") if isinstance(document, dict) else None
        obj = found if isinstance(found, dict) else {}
    verb = {"TRANSACTION": "transaction", "TOKEN": "token", "RESPONSE": "response"}[event.kind]
    parts = ["paymobctl", "simulate", verb, "--to", shlex.quote(target)]
    if event.kind != "TOKEN":
        parts += ["--outcome", _outcome(event, obj)]
        source = obj.get("source_data")
        source_type = source.get("type") if isinstance(source, dict) else None
        if source_type in ("wallet", "kiosk"):
            parts += ["--source", source_type]
        if event.amount_cents is not None:
            parts += ["--amount-cents", str(event.amount_cents)]
        if event.currency:
            parts += ["--currency", shlex.quote(event.currency)]
        if event.merchant_order_id:
            parts += ["--merchant-order-id", shlex.quote(event.merchant_order_id)]
    if event.order_id is not None:
        parts += ["--order-id", str(event.order_id)]
    return " ".join(parts)


async def replay(
    store: Store, event: Event, target: str, client: httpx.AsyncClient, *, timeout: float
) -> delivery.Result:
    """Re-send the stored request byte for byte to ``target`` and record the delivery."""
    request = replay_request(event, target)
    result = await delivery.attempt_async(client, request, timeout=timeout)
    record_replay(store, event, request, result)
    return result
