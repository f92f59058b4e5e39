"""What ``status`` learns about a transaction: looking it up (by transaction, order or merchant
order id, with the store as fallback), recording it on its deposit, the facts it shows, and what
is left of it to refund or capture."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from paymobctl.errors import ApiError, UsageError
from paymobctl.models import lenient_int
from paymobctl.payments import order_of, record_inquiry, transaction_result

if TYPE_CHECKING:
    from paymobctl.client import PaymobClient
    from paymobctl.store import Store


@dataclass(frozen=True)
class StatusLookup:
    """What ``status`` found: the transaction (None: the order has none yet), where it came from
    (``transaction``, ``inquiry`` or ``store``) and a note to show when it is not first-hand."""

    transaction: dict[str, Any] | None
    learnt_from: str
    note: str | None = None


def _no_endpoint(exc: ApiError) -> bool:
    """The server has no such route (a framework's plain 404/405 page), as opposed to Paymob's
    JSON answer about an unknown order."""
    return exc.status in (404, 405) and not isinstance(exc.body, dict)


def lookup_status(client: PaymobClient, store: Store, reference: str, by: str) -> StatusLookup:
    """A transaction by transaction id, order id or merchant order id (``by``: auto, order,
    merchant-order, transaction). Orders use ``transaction_inquiry``; a server without it falls
    back to the last verified webhook ``listen`` stored, and says so."""
    text = reference.strip()
    if by == "merchant-order" or (by == "auto" and not text.isdigit()):
        return _inquire_or_store(client, store, merchant_order_id=text)
    number = lenient_int(text)
    if number is None:
        raise UsageError(
            f"{reference!r} is not a number", hint="order and transaction ids are numbers"
        )
    if by == "order" or (by == "auto" and store.deposit_by_order(number) is not None):
        return _inquire_or_store(client, store, order_id=number)
    if by == "transaction":
        return StatusLookup(client.transaction(number), "transaction")
    try:
        return StatusLookup(client.transaction(number), "transaction")
    except ApiError as first:
        if first.status != 404:
            raise
        try:
            return _inquire_or_store(client, store, order_id=number)
        except ApiError as second:
            if second.status not in (404, None):
                raise
            raise ApiError(
                f"{number} is neither a transaction nor an order on {client.base_url} "
                f"({first.message}; as an order: {second.message})",
                hint="check the id: `paymobctl deposits list` shows your orders and transactions",
                status=first.status,
                body=first.body,
            ) from None


def record_status(store: Store, found: dict[str, Any]) -> str | None:
    """What ``status`` learnt, recorded on the deposit of the transaction's order (if one is
    stored); returns a warning when the amount does not fit the deposit (left unchanged)."""
    order_id = lenient_int(order_of(found), max_digits=18, minimum=0)
    if order_id is None:
        return None
    deposit = store.deposit_by_order(order_id)
    if deposit is None:
        return None
    _, mismatch = record_inquiry(store, deposit, found)
    if mismatch is None:
        return None
    return f"amount mismatch: {mismatch}; deposit {deposit.id} left unchanged"


_FLAGS = ("is_auth", "is_capture", "is_refund", "is_void", "is_refunded", "is_voided")


def _minor(obj: dict[str, Any], key: str) -> str | None:
    """A minor-units field of a transaction in major units with its currency (``250.00 EGP``)."""
    from paymobctl.models import format_amount

    value = obj.get(key)
    currency = obj.get("currency")
    number = lenient_int(value, minimum=0)
    if number is None or not isinstance(currency, str):
        return None if value in (None, "", 0) else str(value)
    return format_amount(number, currency) if number and currency else None


def transaction_facts(obj: dict[str, Any]) -> list[tuple[str, Any]]:
    """A transaction (JSON or the flat shape) as labelled facts, in the order ``status`` shows them."""
    source = obj.get("source_data") if isinstance(obj.get("source_data"), dict) else {}
    money = [
        (label, _minor(obj, key))
        for label, key in (("refunded", "refunded_amount_cents"), ("captured", "captured_amount"))
    ]
    return [
        ("transaction", obj.get("id")),
        ("order", order_of(obj)),
        ("amount", _minor(obj, "amount_cents") or "—"),
        ("result", transaction_result(obj)),
        (
            "source",
            " ".join(
                str(v) for v in (source.get("type"), source.get("sub_type"), source.get("pan")) if v
            )
            if source
            else obj.get("source_data.type"),
        ),
        ("created", obj.get("created_at")),
        *[(label, text) for label, text in money if text],
        (
            "flags",
            ", ".join(k for k in _FLAGS if obj.get(k) is True or obj.get(k) == "true") or "—",
        ),
    ]


def amount_left(
    client: PaymobClient, transaction: int, amount: str | None, done_key: str, verb: str
) -> int:
    """The amount to refund or capture: ``amount`` (major units), else what is left of the
    transaction (``done_key``: ``refunded_amount_cents`` or ``captured_amount``)."""
    from paymobctl.client import field_int
    from paymobctl.models import format_amount, parse_amount

    parent = client.transaction(transaction)
    currency = str(parent.get("currency") or "EGP")
    if amount:
        return parse_amount(amount, currency)
    action = f"reading transaction {transaction}"
    total = field_int(parent, "amount_cents", action=action)
    done = (
        field_int(parent, done_key, action=action) if parent.get(done_key) not in (None, "") else 0
    )
    if total - done <= 0:
        raise UsageError(
            f"nothing left to {verb} on transaction {transaction} "
            f"({format_amount(done, currency)} of {format_amount(total, currency)} already)",
            hint="see `paymobctl status`",
        )
    return total - done


def _inquire_or_store(
    client: PaymobClient,
    store: Store,
    *,
    order_id: int | None = None,
    merchant_order_id: str | None = None,
) -> StatusLookup:
    try:
        found = client.inquiry(order_id=order_id, merchant_order_id=merchant_order_id)
    except ApiError as exc:
        if not _no_endpoint(exc):
            raise
        stored = store.latest_webhook_transaction(
            order_id=order_id, merchant_order_id=merchant_order_id
        )
        what = f"order {order_id}" if order_id is not None else repr(merchant_order_id)
        if stored is None:
            raise ApiError(
                f"{client.base_url} has no transaction inquiry (HTTP {exc.status}) and no "
                f"webhook for {what} is in the store",
                hint="run `paymobctl listen` so webhooks are stored, or look the transaction up "
                "by its id: `paymobctl status TRANSACTION_ID --by transaction`",
                status=exc.status,
                body=exc.body,
            ) from None
        return StatusLookup(
            stored,
            "store",
            f"{client.base_url} has no transaction inquiry (HTTP {exc.status}): showing the last "
            f"verified webhook `listen` stored for {what}",
        )
    return StatusLookup(found, "inquiry")
