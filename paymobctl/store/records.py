"""The store's records: frozen dataclasses named like their columns, and the row converters."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from paymobctl.models import DepositStatus, EventKind, TransactionChild, Verdict


@dataclass(frozen=True)
class HmacCheck:
    """One recorded HMAC verification."""

    id: int
    created_at: str
    kind: str
    valid: bool
    convention: str | None
    profile: str | None
    origin: str | None


@dataclass(frozen=True)
class Delivery:
    """One callback paymobctl sent or printed, with the answer it got."""

    id: int
    created_at: str
    origin: str  # simulate | print | replay
    kind: str
    outcome: str | None
    source: str | None
    method: str
    url: str
    request_headers: list[tuple[str, str]]
    request_body: bytes | None
    signature: str  # signed | unsigned | bad-hmac
    transaction_id: int | None
    order_id: int | None
    merchant_order_id: str | None
    payload: dict[str, Any] | None
    status: int | None
    latency_ms: float | None
    response_headers: list[tuple[str, str]]
    response_excerpt: str | None
    error: str | None
    pan_masked: bool


def _delivery(row: sqlite3.Row) -> Delivery:
    values = _row_dict(row)
    values["request_headers"] = _pairs(values["request_headers"])
    values["payload"] = json.loads(values["payload"]) if values["payload"] else None
    values["response_headers"] = _pairs(values["response_headers"] or "[]")
    values["pan_masked"] = bool(values["pan_masked"])
    return Delivery(**values)


@dataclass(slots=True)  # not frozen: built on the receiver's hot path, frozen init costs ~5 µs
class NewEvent:
    """What the receiver learnt from one request, to be stored before it answers."""

    method: str
    path: str
    query: str
    headers: list[tuple[str, str]]
    body: bytes
    remote: str | None
    kind: EventKind
    status: int
    verdict: Verdict
    convention: str | None = None
    hmac: str | None = None
    object_id: str | None = None
    transaction_id: int | None = None
    order_id: int | None = None
    merchant_order_id: str | None = None
    success: bool | None = None
    pending: bool | None = None
    amount_cents: int | None = None
    currency: str | None = None
    problem: str | None = None
    child: TransactionChild | None = None  # refund | void | capture | reversed
    message: str | None = None  # data.message, for a declined deposit's reason
    token: dict[str, Any] | None = None  # TOKEN: the card to save
    truncated: bool = False  # the body went over --max-body: ``body`` is its first 64 KiB


@dataclass(slots=True)
class StoredEvent:
    """What storing a received request did: its row, whether a redelivery, its effect."""

    id: int
    duplicate: bool
    duplicates: int
    pan_masked: bool
    effect: str | None  # "deposit 3 paid", "card saved", ...


@dataclass(frozen=True)
class Event:
    """One request ``listen`` received, as stored (card numbers masked)."""

    id: int
    received_at: str
    method: str
    path: str
    query: str
    headers: list[tuple[str, str]]
    body: bytes
    remote: str | None
    kind: EventKind
    status: int
    verdict: Verdict
    convention: str | None
    hmac: str | None
    object_id: str | None
    transaction_id: int | None
    order_id: int | None
    merchant_order_id: str | None
    success: bool | None
    pending: bool | None
    amount_cents: int | None
    currency: str | None
    problem: str | None
    pan_masked: bool
    duplicates: int
    last_seen_at: str | None
    truncated: bool = False


def _opt_bool(value: Any) -> bool | None:
    return None if value is None else bool(value)


def _event(row: sqlite3.Row) -> Event:
    values = _row_dict(row)
    del values["dedup_key"]  # the receiver's duplicate index, not part of the record
    values["headers"] = _pairs(values["headers"])
    values["kind"] = EventKind(values["kind"])
    values["verdict"] = Verdict(values["verdict"])
    values["success"] = _opt_bool(values["success"])
    values["pending"] = _opt_bool(values["pending"])
    values["pan_masked"] = bool(values["pan_masked"])
    values["truncated"] = bool(values["truncated"])
    return Event(**values)


@dataclass(frozen=True)
class ForwardAttempt:
    """One attempt at forwarding a received request to the developer's app."""

    id: int
    event_id: int
    target: str
    attempt: int
    at: str
    status: int | None
    latency_ms: float | None
    error: str | None
    excerpt: str | None


@dataclass(frozen=True)
class Deposit:
    """A payment created by ``deposit`` and what is known of its outcome."""

    id: int
    created_at: str
    profile: str
    mode: str
    flow: str
    base_url: str
    order_id: int | None  # None: an intention whose order id is not known yet
    merchant_order_id: str | None
    intention_id: str | None
    amount_cents: int
    currency: str
    checkout_url: str
    expires_at: str | None
    save_card: bool
    status: DepositStatus
    transaction_id: int | None
    paid_at: str | None
    decline_reason: str | None
    refunded_cents: int
    updated_at: str


@dataclass(frozen=True)
class PaymentMethod:
    """A saved card token (from a verified TOKEN callback or a payment)."""

    id: int
    created_at: str
    token: str
    masked_pan: str
    card_subtype: str | None
    email: str | None
    order_id: int | None
    paymob_id: int | None
    event_id: int | None
    removed: bool


def _row_dict(row: sqlite3.Row) -> dict[str, Any]:
    """A row as ``{column: value}``; the record dataclasses name their fields like the columns."""
    return dict(zip(row.keys(), tuple(row), strict=True))


def _pairs(text: str) -> list[tuple[str, str]]:
    """Header lists are stored as JSON arrays of ``[name, value]`` pairs."""
    return [tuple(pair) for pair in json.loads(text)]


def _hmac_check(row: sqlite3.Row) -> HmacCheck:
    values = _row_dict(row)
    values["valid"] = bool(values["valid"])
    return HmacCheck(**values)


def _deposit(row: sqlite3.Row) -> Deposit:
    values = _row_dict(row)
    values["save_card"] = bool(values["save_card"])
    values["status"] = DepositStatus(values["status"])
    return Deposit(**values)


def _payment_method(row: sqlite3.Row) -> PaymentMethod:
    values = _row_dict(row)
    values["removed"] = bool(values["removed"])
    return PaymentMethod(**values)


def dumps(value: Any) -> str:
    """Compact JSON for storage."""
    return _ENCODER.encode(value)


# One encoder for every row: json.dumps with options builds a new one per call (~3 µs a row).
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=str)
