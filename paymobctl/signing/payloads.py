"""Reading callbacks into a :class:`Payload`: a POST body, a GET redirect's query, or a request
a receiver stored.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from paymobctl.documents import loads_json
from paymobctl.errors import PaymobctlError, UsageError
from paymobctl.models import CallbackKind


@dataclass(frozen=True)
class Payload:
    """A callback as received: its kind, the data the HMAC is computed over, and any hmac it carried."""

    kind: CallbackKind
    data: Mapping[str, Any]
    hmac: str | None = None
    raw_query: str | None = None  # undecoded query, for diagnosing encoding mistakes


def detect_kind(obj: Mapping[str, Any]) -> CallbackKind:
    """Guess the kind of an unwrapped ``obj`` by its fields."""
    if "token" in obj and "masked_pan" in obj:
        return CallbackKind.TOKEN
    if "order_delivery_status" in obj:
        return CallbackKind.DELIVERY_STATUS
    if (
        "source_data.pan" in obj
        or "source_data_pan" in obj
        or ("order" in obj and not isinstance(obj.get("order"), Mapping) and "id" in obj)
    ):
        return CallbackKind.RESPONSE
    return CallbackKind.TRANSACTION


def parse_body(text: str | bytes, kind: CallbackKind | None = None) -> Payload:
    """A processed-callback body: ``{"type": ..., "obj": {...}}``, a bare ``obj``, or the flat
    string-typed record ``payments/pay`` returns (which carries its own ``hmac``)."""
    try:
        document = loads_json(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise UsageError(
            f"the callback body is not valid JSON ({exc})",
            hint="pass the exact body Paymob POSTed, or use --url for a GET redirect",
        ) from None
    if not isinstance(document, dict):
        raise UsageError(
            "the callback body is not a JSON object",
            hint='Paymob POSTs {"type": "TRANSACTION", "obj": {...}}',
        )
    if "obj" in document:
        obj = document["obj"]
        if not isinstance(obj, dict):
            raise UsageError("the callback's obj is not a JSON object", hint="check the body")
        declared = document.get("type")
        detected: CallbackKind
        if kind is not None:
            detected = kind
        elif isinstance(declared, str) and declared.upper() in CallbackKind.__members__:
            detected = CallbackKind(declared.upper())
        elif declared is None:
            detected = detect_kind(obj)
        else:
            raise UsageError(
                f"unknown callback type {declared!r}",
                hint="pass --type TRANSACTION, TOKEN or DELIVERY_STATUS",
            )
        return Payload(detected, obj)
    detected = kind or detect_kind(document)
    received = document.get("hmac") if detected is CallbackKind.RESPONSE else None
    if detected is CallbackKind.RESPONSE:
        document = {k: v for k, v in document.items() if k != "hmac"}
    return Payload(detected, document, received if isinstance(received, str) else None)


def parse_query(url_or_query: str) -> Payload:
    """A GET redirect URL (or bare query string) → flat, URL-decoded mapping plus its ``hmac``."""
    text = url_or_query.strip()
    query = urlsplit(text).query if ("?" in text or "://" in text) else text
    if not query:
        raise UsageError(
            "the URL has no query string",
            hint="paste the full redirect URL, including everything after '?'",
        )
    pairs = parse_qsl(query, keep_blank_values=True)
    data: dict[str, str] = {}
    for key, value in pairs:
        data.setdefault(key, value)
    received = data.pop("hmac", None)
    return Payload(CallbackKind.RESPONSE, data, received, raw_query=query)


def stored_payload(kind: str, body: bytes, query: str, hmac: str | None) -> Payload | None:
    """The signed payload of a request a receiver stored (its type as text, raw body, query and
    received hmac), or None when it was not a readable callback (``events show``, the inspector)."""
    try:
        if kind == "RESPONSE":
            return parse_query("?" + query)
        if kind in ("TRANSACTION", "TOKEN", "DELIVERY_STATUS"):
            parsed = parse_body(body, CallbackKind(kind))
            return Payload(parsed.kind, parsed.data, hmac)
    except PaymobctlError:
        return None
    return None


def hmac_from_url(url: str) -> str | None:
    """The ``hmac`` query parameter of a captured processed-callback URL."""
    for key, value in parse_qsl(urlsplit(url.strip()).query, keep_blank_values=True):
        if key == "hmac":
            return value
    return None
