"""Realistic Paymob callbacks built from the JSON templates in ``paymobctl/templates``.

Pure: no I/O beyond reading the package's own templates. The builders are shared by
``paymobctl simulate``, the sandbox emulator and the go-live checklist, so every callback any of
them sends has the same shape and verifies with :mod:`paymobctl.signing`.
"""

from __future__ import annotations

import operator
import os
import random
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime, timedelta
from functools import cache, lru_cache
from typing import Any

from paymobctl import signing
from paymobctl.errors import UsageError
from paymobctl.models import (
    CardBrand,
    KeyFlow,
    Outcome,
    PaymentSource,
    Region,
)
from paymobctl.payload_parts import (
    OrderSpec,
    acquirer_day,
    amount_major,
    build_order,
    claims_context,
    claims_shape,
    gateway_utc,
    jsonb_order,
    migs_time,
    order_context,
    order_shape,
    parse_paymob_timestamp,
    payment_key_claims,
    paymob_timestamp,
    region_values,
)
from paymobctl.prototypes import Prototype, bake, deep_merge, nest, shared, skeleton, template
from paymobctl.signing import CallbackKind

# Re-exported for the tests and scripts (the sandbox imports them from payload_parts itself).
__all__ = [
    "OrderSpec",
    "build_order",
    "jsonb_order",
    "parse_paymob_timestamp",
    "payment_key_claims",
    "paymob_timestamp",
]

# Issuer decline codes (ISO 8583 response codes Mastercard Gateway passes through).
DECLINE_CODES: dict[str, str] = {
    "05": "Do not honour",
    "14": "Invalid card number",
    "54": "Expired card",
    "57": "Transaction not permitted to cardholder",
    "62": "Restricted card",
}

_HOUR = timedelta(hours=1)

# --- specs ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Customer:
    """The payer a built TRANSACTION names (billing data, shipping data, email)."""

    first_name: str = "Mona"
    last_name: str = "Adel"
    email: str = "customer@example.com"
    phone: str | None = None  # default: a number in the region's format


@dataclass(frozen=True)
class TransactionSpec:
    """What a TRANSACTION callback should say. Unset ids and times are drawn from ``seed``."""

    outcome: Outcome = Outcome.APPROVED
    source: PaymentSource = PaymentSource.CARD
    amount_cents: int = 25000
    currency: str | None = None  # default: the region's
    region: Region = Region.EG
    order_id: int | None = None
    merchant_order_id: str | None = None
    transaction_id: int | None = None
    parent_transaction_id: int | None = None
    integration_id: int = 4822951
    merchant_id: int = 1835600
    profile_id: int = 993047
    brand: CardBrand = CardBrand.MASTERCARD
    pan_last4: str | None = None
    wallet_number: str | None = None  # default: the region's test wallet
    customer: Customer = field(default_factory=Customer)
    is_live: bool = False
    is_auth: bool = False  # an authorisation on an auth/capture integration
    decline_code: str | None = None
    created_at: datetime | None = None  # aware; default drawn from the seed, or before now
    # aware; when it became final (the sandbox: now). Default: a moment after created_at, or now.
    updated_at: datetime | None = None
    seed: int | None = None
    bill_reference: int | None = None
    payer_ip: str = "41.40.0.1"
    flow: KeyFlow = KeyFlow.INTENTION
    next_payment_intention: str | None = None  # intention flow; default drawn from the seed


def check_combination(outcome: Outcome, source: PaymentSource) -> None:
    """Refuse an outcome/source pair Paymob cannot produce, with the reason (exit 2)."""
    reason = _refusal(outcome, source)
    if reason is not None:
        raise UsageError(f"--outcome {outcome.value} with --source {source.value}: {reason}")


@cache
def _refusal(outcome: Outcome, source: PaymentSource) -> str | None:
    overlays = shared("outcomes.json")[outcome.value]
    if source.value in overlays:
        return None
    reason: str = overlays.get("refused", {}).get(source.value, "not a combination Paymob produces")
    return reason


# Unseeded draws share one generator (seeding a new one from the OS costs more than a callback);
# a forked child reseeds it, as the random module does its own, so siblings draw different ids.
_DRAWS = random.Random()
os.register_at_fork(after_in_child=_DRAWS.seed)


def _rng(seed: int | None) -> random.Random:
    return random.Random(seed) if seed is not None else _DRAWS


_SEED_EPOCH = datetime(2025, 3, 17, 10, 0, 0, tzinfo=UTC)


def _base_time(spec: TransactionSpec, rng: random.Random, now: datetime | None) -> datetime:
    if spec.created_at is not None:
        return spec.created_at.astimezone(UTC)
    if spec.seed is not None:
        return _SEED_EPOCH + timedelta(
            seconds=rng.randrange(0, 180 * 86400), microseconds=rng.randrange(10**6)
        )
    return (now or datetime.now(UTC)).astimezone(UTC)


_Timeline = tuple[datetime, datetime, datetime, datetime]


def _no_future(spec: TransactionSpec, times: _Timeline) -> _Timeline:
    """``(created, order_created, gateway_at, updated)`` with no time after the final one.

    A callback is sent when its transaction became final, so nothing in it may be later than
    ``updated_at`` (real samples s01, s06: order <= created <= gateway ``data.created_at`` <=
    updated). Drawn from now, the whole timeline ends now; given ``updated_at`` (the sandbox),
    the gateway time falls between ``created_at`` and it.
    """
    created, order_created, gateway_at, updated = times
    if spec.updated_at is not None:
        final = spec.updated_at.astimezone(UTC)
        gateway_at = max(created, min(gateway_at, final - (updated - gateway_at)))
        return created, order_created, gateway_at, max(final, gateway_at)
    if spec.created_at is None and spec.seed is None:
        back = updated - created
        return created - back, order_created - back, gateway_at - back, updated - back
    return times


def intention_id(rng: random.Random, *, live: bool = False) -> str:
    """A ``pi_test_…`` / ``pi_live_…`` intention id (32 hex digits, as in every sample)."""
    return f"pi_{'live' if live else 'test'}_{rng.getrandbits(128):032x}"


@dataclass(frozen=True)
class Callback:
    """One built callback: the JSON envelope Paymob POSTs and the HMAC it would carry."""

    kind: CallbackKind
    body: dict[str, Any]

    @property
    def obj(self) -> dict[str, Any]:
        obj = self.body["obj"]
        assert isinstance(obj, dict)
        return obj

    def sign(self, secret: str) -> str:
        return signing.compute(self.kind, self.obj, secret)


def build_transaction(spec: TransactionSpec, *, now: datetime | None = None) -> Callback:
    """A TRANSACTION callback with the full documented shape (docs/paymob.md §7.1, §14)."""
    prototype, context = _transaction(spec, now)
    callback = Callback(CallbackKind.TRANSACTION, prototype.build(context))
    check_signed_fields(CallbackKind.TRANSACTION, callback.obj)
    return callback


def build_transaction_with_wire(
    spec: TransactionSpec, *, now: datetime | None = None
) -> tuple[Callback, bytes]:
    """:func:`build_transaction` and its body's bytes on the wire (``delivery.wire_json`` of
    the body as built), rendered by the prototype instead of serialising the dict."""
    prototype, context = _transaction(spec, now)
    callback = Callback(CallbackKind.TRANSACTION, prototype.build(context))
    check_signed_fields(CallbackKind.TRANSACTION, callback.obj)
    return callback, prototype.render(context).encode("utf-8")


_TRANSACTION_PATHS = tuple(
    ("obj", *f.post_path.split(".")) for f in signing.fields_for(CallbackKind.TRANSACTION)
)


def signed_transaction_wire(
    spec: TransactionSpec, secret: str, *, now: datetime | None = None
) -> tuple[bytes, str]:
    """The body's bytes of :func:`build_transaction_with_wire` and its HMAC, without building
    the dict: the signed values are read from what fills the prototype (the testing API's
    ``callback()``, built and signed in one pass)."""
    prototype, context = _transaction(spec, now)
    render = _spec_render(spec)
    read = prototype.reader(_TRANSACTION_PATHS)
    if read is None:  # a signed path runs through a hole: read it from the built dict
        callback = Callback(CallbackKind.TRANSACTION, prototype.build(context))
        check_signed_fields(CallbackKind.TRANSACTION, callback.obj)
        values = signing.signed_values(CallbackKind.TRANSACTION, callback.obj)
    else:
        values = read(context)
        if None in values:
            check_signed_fields(CallbackKind.TRANSACTION, prototype.build(context)["obj"])
    return render(context).encode("utf-8"), signing.compute_values(values, secret)


# What only depends on the spec's shape (the rest is drawn, or varies per call: the amount).
_FIXED_KEYS = (
    "currency", "integration_id", "profile_id", "merchant_id", "company_name", "is_live",
    "pan_last4", "card_subtype", "card_type", "card_bin", "acquirer_id", "acquirer_merchant_id",
    "gateway_merchant", "terminal", "mcc", "wallet_number", "email",
)  # fmt: skip
_PER_CALL_ORDER = (
    "order_id", "order_created_at", "shipping_data", "order_amount_cents", "paid_amount_cents",
    "payment_status", "merchant_order_id",
)  # fmt: skip
_PER_CALL_SHIPPING = ("id", "order_id", "order")
_PER_CALL_CLAIMS = ("exp", "order_id", "redirect_url", "next_payment_intention", "amount_cents")
# The fields a caller naturally gives a new value each call (ids, amounts, times, seed): none of
# them changes the prototype or a value baked into a renderer, so specs that differ only there
# share one renderer and one set of order/claims parts.
_PER_CALL_FIELDS: dict[str, Any] = dict.fromkeys(
    (
        "order_id", "merchant_order_id", "transaction_id", "parent_transaction_id", "created_at",
        "updated_at", "bill_reference", "next_payment_intention",
    )
) | {"amount_cents": 0, "seed": 0}  # fmt: skip
_SHAPE_FIELDS = tuple(f.name for f in fields(TransactionSpec) if f.name not in _PER_CALL_FIELDS)
_shape_key = operator.attrgetter(*_SHAPE_FIELDS)


class _Shape:
    """A spec's shape (see :func:`_shape_of`) and what is computed once for it."""

    __slots__ = ("parts", "render", "spec")

    def __init__(self, spec: TransactionSpec) -> None:
        self.spec = spec
        self.render: Callable[[Mapping[str, Any]], str] | None = None
        self.parts: tuple[str, dict[str, Any], dict[str, Any]] | None = None


@lru_cache(maxsize=64)
def _shape_for(key: tuple[Any, ...]) -> _Shape:
    return _Shape(TransactionSpec(**dict(zip(_SHAPE_FIELDS, key, strict=True)), **_PER_CALL_FIELDS))


_last_shape: tuple[object, _Shape | None] = (None, None)  # rebound whole: safe across threads


def _shape_of(spec: TransactionSpec) -> _Shape:
    """``spec`` without its per-call values (seed 0: building it draws from its own generator):
    the key of everything compiled or computed once per kind of callback (64 kinds kept)."""
    global _last_shape  # noqa: PLW0603
    last, shape = _last_shape
    if last is spec and shape is not None:
        return shape
    shape = _shape_for(_shape_key(spec))
    _last_shape = (spec, shape)
    return shape


def _spec_render(spec: TransactionSpec) -> Callable[[Mapping[str, Any]], str]:
    """``prototype.render`` with the values fixed by ``spec``'s shape written as constants."""
    shape = _shape_of(spec)
    if shape.render is None:
        shape.render = _shape_render(shape.spec)
    return shape.render


@lru_cache(maxsize=64)
def _shape_render(shape: TransactionSpec) -> Callable[[Mapping[str, Any]], str]:
    """The renderer of callbacks of ``shape`` (see :func:`_shape_of`), compiled once per shape
    (``cache_info().misses`` counts the compilations); its constants are read from a callback
    built for the shape itself, as they are the same for every spec of that shape."""
    prototype, context = _transaction(shape, None)
    order, claims = context["order"], context["payment_key_claims"]
    fixed = {name: context[name] for name in _FIXED_KEYS}
    fixed["order"] = {k: v for k, v in order.items() if k not in _PER_CALL_ORDER}
    fixed["order"]["shipping_data"] = {
        k: v for k, v in order["shipping_data"].items() if k not in _PER_CALL_SHIPPING
    }
    fixed["payment_key_claims"] = {k: v for k, v in claims.items() if k not in _PER_CALL_CLAIMS}
    return Prototype(bake(prototype.shape, fixed), f"{prototype.name} (spec)").render


_LAST4 = re.compile(r"\d{4}")
_DECLINE_CHOICES = sorted(DECLINE_CODES)


def _transaction(spec: TransactionSpec, now: datetime | None) -> tuple[Prototype, dict[str, Any]]:
    """The prototype for ``spec``'s shape and the context that fills it: every id, time and
    amount, drawn in one fixed order so a seed always gives the same callback."""
    check_combination(spec.outcome, spec.source)
    rng = _rng(spec.seed)
    # rng.randrange(a, b) is a + rng._randbelow(b - a), and choice(s) is s[_randbelow(len(s))]:
    # the same draws (seeded callbacks unchanged) without randrange's argument checks.
    below: Callable[[int], int] = rng._randbelow  # type: ignore[attr-defined]
    region = region_values(spec.region)
    acquirer = region["acquirer"]
    currency = (spec.currency or spec.region.info.currency).upper()
    created = _base_time(spec, rng, now)
    transaction_id = spec.transaction_id or (200_000_000 + below(399_999_999 - 200_000_000))
    order_id = spec.order_id or (200_000_000 + below(399_999_999 - 200_000_000))
    parent_id = spec.parent_transaction_id
    if spec.outcome.is_child and parent_id is None:
        parent_id = transaction_id - (1 + below(5000 - 1))
    last4 = spec.pan_last4 or spec.brand.default_last4
    if not _LAST4.fullmatch(last4):
        raise UsageError(f"invalid last four digits {last4!r}", hint="give exactly four digits")
    decline_code = spec.decline_code or _DECLINE_CHOICES[below(len(_DECLINE_CHOICES))]
    order_created = created - timedelta(0, 20 + below(600 - 20), below(10**6))
    gateway_at = created + timedelta(0, 2 + below(30 - 2), below(10**6))
    updated = gateway_at + timedelta(0, 0, 1000 + below(20000 - 1000))
    created, order_created, gateway_at, updated = _no_future(
        spec, (created, order_created, gateway_at, updated)
    )
    authorization = str(10**5 + below(10**6 - 10**5))
    fixed_order, fixed_claims = _spec_parts(spec, currency)
    order_created_at = paymob_timestamp(order_created, spec.region)
    shipping_id = 100_000_000 + below(199_999_999 - 100_000_000)
    amount = spec.amount_cents
    paid = amount if spec.outcome is Outcome.APPROVED else 0
    order = {  # keys already in fixed_order keep their place (the wire order is the template's)
        **fixed_order,
        "order_id": order_id,
        "order_created_at": order_created_at,
        "order_amount_cents": amount,
        "merchant_order_id": spec.merchant_order_id,
        "paid_amount_cents": paid,
        "payment_status": "PAID" if paid >= amount else "UNPAID",
        "company_emails": _copy(fixed_order["company_emails"]),
        "items": [],
        "shipping_data": {
            **fixed_order["shipping_data"],
            "id": shipping_id,
            "order_id": order_id,
            "order": order_id,
        },
    }
    key_created = order_created + timedelta(0, 1 + below(10 - 1))
    pi = spec.next_payment_intention or intention_id(rng, live=spec.is_live)
    claims = {
        **fixed_claims,
        "exp": int((key_created + _HOUR).timestamp()),
        "amount_cents": amount,
        "extra": {},
        "order_id": order_id,
        "billing_data": fixed_claims["billing_data"].copy(),
        "redirect_url": f"{spec.region.base_url}/unifiedcheckout/payment-status?payment_token="
        f"{rng.getrandbits(256):064x}&trx_id={transaction_id}",
        "next_payment_intention": pi,
    }
    batch, acquirer_date, settlement_date, offset = acquirer_day(gateway_at, spec.region)
    context: dict[str, Any] = {
        "transaction_id": transaction_id,
        "transaction_id_text": str(transaction_id),
        "order_id": order_id,
        "order_id_text": str(order_id),
        "order_id_head": str(order_id)[:3],
        "migs_order_id": f"{acquirer['order_prefix']}{order_id}",
        "order": order,
        "payment_key_claims": claims,
        "amount_cents": spec.amount_cents,
        "amount_major": amount_major(spec.amount_cents, currency),
        "currency": currency,
        "integration_id": spec.integration_id,
        "profile_id": spec.profile_id,
        "merchant_id": spec.merchant_id,
        "company_name": order["company_name"],
        "created_at": paymob_timestamp(created, spec.region),
        "updated_at": paymob_timestamp(updated, spec.region),
        "gateway_created_at": gateway_utc(gateway_at),
        "migs_created": migs_time(gateway_at - timedelta(0, 3 + below(15 - 3))),
        "migs_updated": migs_time(gateway_at - timedelta(0, 0, 1000 * (50 + below(300 - 50)))),
        "is_live": spec.is_live,
        "pan_last4": last4,
        "card_subtype": spec.brand.value,
        "card_type": spec.brand.card_type,
        "card_bin": spec.brand.bin,
        "authorization_code": authorization,
        "receipt_no": f"{10**5 + below(10**6 - 10**5)}{authorization}",
        # MPGS test mode answers every test card with transaction 123456789 (all test samples).
        "transaction_no": str(10**8 + below(10**9 - 10**8)) if spec.is_live else "123456789",
        "batch": batch,
        "acquirer_date": acquirer_date,
        "settlement_date": settlement_date,
        "acquirer_time_zone": offset,
        "acquirer_id": acquirer["id"],
        "acquirer_merchant_id": acquirer["merchant_id"],
        "gateway_merchant": ("" if spec.is_live else "TEST") + acquirer["merchant_id"],
        "terminal": acquirer["terminal"],
        "mcc": acquirer["mcc"],
        "decline_code": decline_code,
        "decline_message": DECLINE_CODES.get(decline_code, "Declined"),
        "wallet_number": spec.wallet_number or region["wallet_number"],
        "wallet_reference": str(10**9 + below(10**10 - 10**9)),
        "wallet_txn_ref": f"{rng.getrandbits(128):032x}",
        "email": spec.customer.email,
        "wallet_redirect_url": f"{spec.region.base_url}/api/acceptance/wallet_other_test/wallet_template?token={rng.getrandbits(128):032x}",
        "bill_reference": spec.bill_reference or (10**7 + below(10**8 - 10**7)),
        "parent_transaction_id": parent_id,
    }
    auth = bool(spec.is_auth) or spec.outcome is Outcome.CAPTURE
    numeric = spec.source is PaymentSource.CARD and bool(region["numeric_approval"])
    return _transaction_prototype(spec.outcome, spec.source, spec.flow, auth, numeric), context


def _copy(emails: list[str] | None) -> list[str] | None:
    return None if emails is None else emails.copy()


def _spec_parts(spec: TransactionSpec, currency: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The order and claims contexts of ``spec``'s shape (see :func:`_shape_of`), with
    placeholders where each callback differs (ids, times, amounts, the claims' expiry and URLs):
    shared, never change them."""
    shape = _shape_of(spec)
    if shape.parts is not None and shape.parts[0] == currency:
        return shape.parts[1], shape.parts[2]
    spec = shape.spec
    region = region_values(spec.region)
    customer = {
        "first_name": spec.customer.first_name,
        "last_name": spec.customer.last_name,
        "email": spec.customer.email,
        "phone_number": spec.customer.phone or region["customer_phone"],
        "country": region["shipping_country"],
    }
    order = order_context(
        OrderSpec(
            id=0,
            created_at="",
            amount_cents=spec.amount_cents,
            currency=currency,
            region=spec.region,
            profile_id=spec.profile_id,
            merchant_order_id=spec.merchant_order_id,
            paid_amount_cents=spec.amount_cents if spec.outcome is Outcome.APPROVED else 0,
            shipping_data={**customer, "street": "NA"},
        ),
        0,
    )
    claims = claims_context(
        user_id=spec.merchant_id,
        amount_cents=spec.amount_cents,
        currency=currency,
        integration_id=spec.integration_id,
        order_id=0,
        billing=customer,
        exp=0,
        pmk_ip=spec.payer_ip,
    )
    shape.parts = (currency, order, claims)
    return order, claims


@cache
def _transaction_prototype(
    outcome: Outcome, source: PaymentSource, flow: KeyFlow, auth: bool, numeric: bool
) -> Prototype:
    """transaction.json + source.<source>.json + the outcome's overlay, adjusted for an
    authorisation and for numeric approval codes, with the order and claims templates inside."""
    body = template("transaction.json")
    deep_merge(body, template(f"source.{source.value}.json"))
    deep_merge(body, template("outcomes.json")[outcome.value][source.value])
    shape = skeleton(body)
    obj = shape["obj"]
    if auth:
        # An authorisation is "is_auth"; its capture is a child with is_capture and is_auth false.
        obj["is_auth"] = outcome is not Outcome.CAPTURE
        if source is PaymentSource.CARD and outcome is not Outcome.CAPTURE:
            obj["data"]["migs_order"]["status"] = "AUTHORIZED"
            obj["data"]["migs_transaction"]["type"] = "AUTHORIZATION"
            obj["data"]["migs_order"]["totalCapturedAmount"] = 0
    if numeric:
        # KSA (2025 sample): the numeric code in txn_response_code, the word beside it.
        data = obj["data"]
        if not isinstance(data["txn_response_code"], str):
            raise TypeError("txn_response_code must be literal text in the templates")
        data["txn_response_code_new"] = data["txn_response_code"]
        if data["txn_response_code"] == "APPROVED":
            data["txn_response_code"] = "0"
    nested = {"order": order_shape(), "payment_key_claims": claims_shape(flow)}
    return Prototype(nest(shape, nested), f"transaction {outcome.value}/{source.value}")


def transaction_body(obj: dict[str, Any]) -> dict[str, Any]:
    """The POSTed envelope around a TRANSACTION ``obj`` (templates/transaction.json)."""
    body = template("transaction.json")
    body["obj"] = obj
    return body


def check_signed_fields(kind: CallbackKind, obj: Mapping[str, Any]) -> None:
    """Built callbacks never carry a null or missing signed field (Paymob never defines them)."""
    if None not in signing.signed_values(kind, obj):
        return
    bad = [f.name for f in signing.collect_fields(kind, obj) if f.missing or f.raw is None]
    if bad:
        raise UsageError(
            f"signed field(s) would be null or missing: {', '.join(bad)}",
            hint="give them a value with --set",
        )


@dataclass(frozen=True)
class TokenSpec:
    """What a TOKEN (saved card) callback should say; unset ids are drawn from ``seed``."""

    order_id: int
    email: str = "customer@example.com"
    card_subtype: str = "MasterCard"
    pan_last4: str = "2346"
    merchant_id: int = 1835600
    token: str | None = None
    token_id: int | None = None
    created_at: datetime | None = None
    region: Region = Region.EG
    seed: int | None = None
    next_payment_intention: str | None = None


def _token_time(created: datetime, updated: datetime | None) -> datetime:
    """The saved card's time: just after its transaction began, never after it became final."""
    moment = created + timedelta(seconds=3, microseconds=123457)
    return moment if updated is None else min(moment, updated)


def token_spec_for(
    transaction: Mapping[str, Any], *, seed: int | None = None, region: Region = Region.EG
) -> TokenSpec:
    """A TOKEN consistent with the TRANSACTION obj it follows: same order, email, card, owner."""
    source = transaction.get("source_data") or {}
    claims = transaction.get("payment_key_claims") or {}
    billing = claims.get("billing_data") or {}
    order = transaction.get("order") or {}
    shipping = order.get("shipping_data") or {}
    pan = str(source.get("pan") or "")
    created = parse_paymob_timestamp(str(transaction.get("created_at") or ""), region)
    updated = parse_paymob_timestamp(str(transaction.get("updated_at") or ""), region)
    return TokenSpec(
        order_id=int(order.get("id") or 0),
        email=str(billing.get("email") or shipping.get("email") or "customer@example.com"),
        card_subtype=str(source.get("sub_type") or "MasterCard"),
        pan_last4=pan[-4:] if len(pan) >= 4 else "2346",
        merchant_id=int(transaction.get("owner") or 1835600),
        created_at=_token_time(created, updated) if created else None,
        region=region,
        seed=seed,
        next_payment_intention=claims.get("next_payment_intention"),
    )


def build_token(spec: TokenSpec, *, now: datetime | None = None) -> Callback:
    """A TOKEN (saved card) callback (docs/paymob.md §7.3, §14), for simulate and the sandbox."""
    rng = _rng(spec.seed if spec.seed is None else spec.seed + 7919)
    created = spec.created_at or (now or datetime.now(UTC))
    if not _LAST4.fullmatch(spec.pan_last4):
        raise UsageError(f"invalid last four digits {spec.pan_last4!r}")
    context = {
        "token_id": spec.token_id or rng.randrange(9_000_000, 9_999_999),
        "token": spec.token or f"{rng.getrandbits(224):056x}",
        "pan_last4": spec.pan_last4,
        "merchant_id": spec.merchant_id,
        "card_subtype": spec.card_subtype,
        "created_at": paymob_timestamp(created, spec.region),
        "email": spec.email,
        "order_id_text": str(spec.order_id),
        "next_payment_intention": spec.next_payment_intention or intention_id(rng),
    }
    body: dict[str, Any] = _prototype("token.json").build(context)
    check_signed_fields(CallbackKind.TOKEN, body["obj"])
    return Callback(CallbackKind.TOKEN, body)


@cache
def _prototype(name: str) -> Prototype:
    return Prototype(skeleton(template(name)), name)


def build_delivery_status(
    order_id: int,
    status: str = "Delivered",
    *,
    merchant_id: int = 1835600,
    region: Region = Region.EG,
    now: datetime | None = None,
) -> Callback:
    """A DELIVERY_STATUS callback (experimental, docs/paymob.md §7.4)."""
    context = {
        "order_id": order_id,
        "delivery_status": status,
        "merchant_id": merchant_id,
        "updated_at": paymob_timestamp(now or datetime.now(UTC), region),
    }
    body: dict[str, Any] = _prototype("delivery_status.json").build(context)
    return Callback(CallbackKind.DELIVERY_STATUS, body)


def with_body(callback: Callback, body: dict[str, Any]) -> Callback:
    """``callback`` with another body (same kind)."""
    return replace(callback, body=body)
