"""Realistic Paymob callbacks built from the JSON templates in ``paymobctl/templates``.

Pure: no I/O beyond reading the package's own templates. The builders are shared by
``paymobctl simulate``, the sandbox emulator and the go-live checklist, so every callback any of
them sends has the same shape and verifies with :mod:`paymobctl.signing`.
"""

from __future__ import annotations

import copy
import json
import math
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import cache
from importlib import resources
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit
from zoneinfo import ZoneInfo

from paymobctl import signing
from paymobctl.documents import loads_json
from paymobctl.errors import UsageError
from paymobctl.models import (
    CardBrand,
    KeyFlow,
    Outcome,
    PaymentSource,
    Region,
    currency_exponent,
)
from paymobctl.signing import CallbackKind

# Issuer decline codes (ISO 8583 response codes Mastercard Gateway passes through).
DECLINE_CODES: dict[str, str] = {
    "05": "Do not honour",
    "14": "Invalid card number",
    "54": "Expired card",
    "57": "Transaction not permitted to cardholder",
    "62": "Restricted card",
}

# Every template file shipped in paymobctl/templates, and what it is for. A test checks that
# this registry and the folder agree, and that every template builds and verifies.
TEMPLATES: dict[str, str] = {
    "transaction.json": "TRANSACTION envelope and obj",
    "source.card.json": "card fields (MIGS gateway data)",
    "source.wallet.json": "mobile wallet fields",
    "source.kiosk.json": "kiosk (aggregator) fields",
    "outcomes.json": "outcome overlays per source, and refused combinations",
    "order.json": "the order object (callbacks and the orders API)",
    "payment_key_claims.json": "payment key claims per key flow (legacy, intention)",
    "regions.json": "region-true cities, phones, wallets and acquirers",
    "token.json": "TOKEN envelope",
    "delivery_status.json": "DELIVERY_STATUS envelope (experimental)",
    "redirect.json": "GET response-callback parameters",
    "pay_response.json": "payments/pay flat TOKEN response",
}


@cache
def _template_text(name: str) -> str:
    if name not in TEMPLATES:
        raise KeyError(name)
    return (resources.files("paymobctl") / "templates" / name).read_text(encoding="utf-8")


def template(name: str) -> dict[str, Any]:
    """A fresh copy of a template, without its ``_comment``."""
    data: dict[str, Any] = json.loads(_template_text(name))
    data.pop("_comment", None)
    return data


# --- filling holes -------------------------------------------------------------------------------

_HOLE = re.compile(r"\{\{(\w+)\}\}")


def fill(value: Any, context: Mapping[str, Any]) -> Any:
    """Replace ``{{name}}`` holes. A string that is only a hole takes the value's own type."""
    if isinstance(value, dict):
        return {k: fill(v, context) for k, v in value.items()}
    if isinstance(value, list):
        return [fill(v, context) for v in value]
    if isinstance(value, str):
        whole = _HOLE.fullmatch(value)
        if whole:
            return context[whole.group(1)]
        return _HOLE.sub(lambda m: str(context[m.group(1)]), value)
    return value


def deep_merge(base: dict[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    for key, value in overlay.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            deep_merge(base[key], value)
        else:
            base[key] = copy.deepcopy(value)
    return base


# --- time and region ------------------------------------------------------------------------------


def local_time(moment: datetime, region: Region) -> datetime:
    """``moment`` in the account's zone: Cairo observes summer time again since 2023 (§14)."""
    return moment.astimezone(ZoneInfo(region.info.time_zone))


def paymob_timestamp(moment: datetime, region: Region) -> str:
    """Paymob's rendering: naive local time in Egypt, an explicit offset elsewhere (§2, §14)."""
    local = local_time(moment, region)
    if region.info.naive_times:
        return local.replace(tzinfo=None).isoformat(timespec="microseconds")
    return local.isoformat(timespec="microseconds")


def parse_paymob_timestamp(text: str, region: Region) -> datetime | None:
    """The instant a Paymob timestamp names; naive text is the region's local time."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(region.info.time_zone))
    return moment.astimezone(UTC)


def _gateway_utc(moment: datetime) -> str:
    """The card gateway's ``data.created_at``: naive UTC (docs sample: 08:34 for 11:34 Cairo)."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds")


def _migs_time(moment: datetime) -> str:
    """MPGS times: UTC, milliseconds, ``Z``."""
    return (
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    )


def region_values(region: Region) -> dict[str, Any]:
    """City, phones, wallet number and acquirer of ``region`` (templates/regions.json)."""
    values: dict[str, Any] = template("regions.json")[region.value]
    return values


def amount_major(cents: int, currency: str) -> int | float:
    """Major units as MIGS reports them: 250 for 25000 piasters, 250.5 for 25050."""
    value = Decimal(cents).scaleb(-currency_exponent(currency))
    return int(value) if value == value.to_integral_value() else float(value)


def jsonb_order(mapping: Mapping[str, Any]) -> dict[str, Any]:
    """Keys as PostgreSQL's jsonb returns them (shortest first, then bytewise): the order of
    ``payment_key_claims`` and its ``billing_data`` in every real callback."""
    return {key: mapping[key] for key in sorted(mapping, key=lambda k: (len(k), k))}


# --- specs ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Customer:
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
    overlays = template("outcomes.json")[outcome.value]
    if source.value in overlays:
        return
    reason = overlays.get("refused", {}).get(source.value, "not a combination Paymob produces")
    raise UsageError(f"--outcome {outcome.value} with --source {source.value}: {reason}")


def _rng(seed: int | None) -> random.Random:
    return random.Random(seed) if seed is not None else random.Random()


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


# --- shared pieces: the order and the payment key's claims ---------------------------------------


@dataclass(frozen=True)
class OrderSpec:
    """The order object as Paymob renders it in callbacks and in the orders API."""

    id: int
    created_at: str  # already in Paymob's rendering
    amount_cents: int
    currency: str
    region: Region = Region.EG
    profile_id: int = 993047
    merchant_order_id: str | None = None
    paid_amount_cents: int = 0
    is_payment_locked: bool = False
    delivery_needed: bool = False
    shipping_data: Mapping[str, Any] | None = None
    items: Sequence[Mapping[str, Any]] = ()
    order_url: str = "NA"
    company_name: str = "Example Store"
    company_emails: Sequence[str] | None = ("ops@example.com",)


def shipping_data(
    order_id: int, shipping_id: int, region: Region, given: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """``order.shipping_data``: "NA" wherever the merchant gave nothing (every sample)."""
    base: dict[str, Any] = {
        "id": shipping_id,
        "first_name": "NA",
        "last_name": "NA",
        "street": "NA",
        "building": "NA",
        "floor": "NA",
        "apartment": "NA",
        "city": "NA",
        "state": "NA",
        "country": region_values(region)["shipping_country"],
        "email": "NA",
        "phone_number": "NA",
        "postal_code": "NA",
        "extra_description": "",
        "shipping_method": "UNK",
    }
    base.update({k: v for k, v in (given or {}).items() if k in base and k != "id"})
    base.update(order_id=order_id, order=order_id)
    return base


def build_order(spec: OrderSpec, *, shipping_id: int) -> dict[str, Any]:
    """The order object (templates/order.json), shared by callbacks and the sandbox's API."""
    region = region_values(spec.region)
    context = {
        "order_id": spec.id,
        "order_created_at": spec.created_at,
        "delivery_needed": spec.delivery_needed,
        "profile_id": spec.profile_id,
        "merchant_created_at": paymob_timestamp(
            datetime(2024, 1, 8, 8, 0, tzinfo=UTC), spec.region
        ),
        "merchant_phone": region["merchant_phone"],
        "company_emails": None if spec.company_emails is None else list(spec.company_emails),
        "company_name": spec.company_name,
        "merchant_country": spec.region.info.country,
        "city": region["city"],
        "order_amount_cents": spec.amount_cents,
        "shipping_data": shipping_data(spec.id, shipping_id, spec.region, spec.shipping_data),
        "order_currency": spec.currency,
        "is_payment_locked": spec.is_payment_locked,
        "merchant_order_id": spec.merchant_order_id,
        "paid_amount_cents": spec.paid_amount_cents,
        "items": [dict(item) for item in spec.items],
        "order_url": spec.order_url,
        "payment_status": "PAID" if spec.paid_amount_cents >= spec.amount_cents else "UNPAID",
    }
    order: dict[str, Any] = fill(template("order.json"), context)
    return order


def billing_data(values: Mapping[str, Any]) -> dict[str, Any]:
    """``payment_key_claims.billing_data``: the 13 billing fields, "NA" when not given."""
    names = (
        "first_name", "last_name", "email", "phone_number", "street", "building", "floor",
        "apartment", "city", "state", "country", "postal_code", "extra_description",
    )  # fmt: skip
    return jsonb_order({name: values.get(name, "NA") for name in names})


def payment_key_claims(
    *,
    flow: KeyFlow,
    user_id: int,
    amount_cents: int,
    currency: str,
    integration_id: int,
    order_id: int,
    billing: Mapping[str, Any],
    exp: int,
    lock_order_when_paid: bool = False,
    extra: Mapping[str, Any] | None = None,
    pmk_ip: str = "127.0.0.1",
    redirect_url: str = "",
    next_payment_intention: str = "",
    optional: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The claims of a payment key (templates/payment_key_claims.json): one builder for
    ``simulate``, the sandbox and the checklist. ``optional`` adds what only some keys carry
    (``notification_url``, ``redirection_url`` of an intention that set them)."""
    context = {
        "exp": exp,
        "extra": dict(extra or {}),
        "pmk_ip": pmk_ip,
        "user_id": user_id,
        "currency": currency,
        "order_id": order_id,
        "amount_cents": amount_cents,
        "billing_data": billing_data(billing),
        "integration_id": integration_id,
        "lock_order_when_paid": lock_order_when_paid,
        "redirect_url": redirect_url,
        "next_payment_intention": next_payment_intention,
    }
    claims: dict[str, Any] = fill(template("payment_key_claims.json")[flow.value], context)
    claims.update(optional or {})
    return jsonb_order(claims)


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
    check_combination(spec.outcome, spec.source)
    rng = _rng(spec.seed)
    region = region_values(spec.region)
    acquirer = region["acquirer"]
    currency = (spec.currency or spec.region.info.currency).upper()
    created = _base_time(spec, rng, now)
    transaction_id = spec.transaction_id or rng.randrange(200_000_000, 399_999_999)
    order_id = spec.order_id or rng.randrange(200_000_000, 399_999_999)
    parent_id = spec.parent_transaction_id
    if spec.outcome.is_child and parent_id is None:
        parent_id = transaction_id - rng.randrange(1, 5000)
    last4 = spec.pan_last4 or spec.brand.default_last4
    if not re.fullmatch(r"\d{4}", last4):
        raise UsageError(f"invalid last four digits {last4!r}", hint="give exactly four digits")
    decline_code = spec.decline_code or rng.choice(sorted(DECLINE_CODES))
    order_created = created - timedelta(
        seconds=rng.randrange(20, 600), microseconds=rng.randrange(10**6)
    )
    gateway_at = created + timedelta(
        seconds=rng.randrange(2, 30), microseconds=rng.randrange(10**6)
    )
    updated = gateway_at + timedelta(microseconds=rng.randrange(1000, 20000))
    created, order_created, gateway_at, updated = _no_future(
        spec, (created, order_created, gateway_at, updated)
    )
    authorization = f"{rng.randrange(10**5, 10**6)}"
    paid = spec.amount_cents if spec.outcome is Outcome.APPROVED else 0
    phone = spec.customer.phone or region["customer_phone"]
    customer = {
        "first_name": spec.customer.first_name,
        "last_name": spec.customer.last_name,
        "email": spec.customer.email,
        "phone_number": phone,
        "country": region["shipping_country"],
    }
    order = build_order(
        OrderSpec(
            id=order_id,
            created_at=paymob_timestamp(order_created, spec.region),
            amount_cents=spec.amount_cents,
            currency=currency,
            region=spec.region,
            profile_id=spec.profile_id,
            merchant_order_id=spec.merchant_order_id,
            paid_amount_cents=paid,
            shipping_data={**customer, "street": "NA"},
        ),
        shipping_id=rng.randrange(100_000_000, 199_999_999),
    )
    key_created = order_created + timedelta(seconds=rng.randrange(1, 10))
    pi = spec.next_payment_intention or intention_id(rng, live=spec.is_live)
    claims = payment_key_claims(
        flow=spec.flow,
        user_id=spec.merchant_id,
        amount_cents=spec.amount_cents,
        currency=currency,
        integration_id=spec.integration_id,
        order_id=order_id,
        billing=customer,
        exp=int((key_created + timedelta(hours=1)).timestamp()),
        pmk_ip=spec.payer_ip,
        redirect_url=f"{spec.region.base_url}/unifiedcheckout/payment-status?payment_token="
        f"{rng.getrandbits(256):064x}&trx_id={transaction_id}",
        next_payment_intention=pi,
    )
    local_gateway = local_time(gateway_at, spec.region)
    offset = local_gateway.strftime("%z")
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
        "company_name": order["merchant"]["company_name"],
        "created_at": paymob_timestamp(created, spec.region),
        "updated_at": paymob_timestamp(updated, spec.region),
        "gateway_created_at": _gateway_utc(gateway_at),
        "migs_created": _migs_time(gateway_at - timedelta(seconds=rng.randrange(3, 15))),
        "migs_updated": _migs_time(gateway_at - timedelta(milliseconds=rng.randrange(50, 300))),
        "is_live": spec.is_live,
        "pan_last4": last4,
        "card_subtype": spec.brand.value,
        "card_type": spec.brand.card_type,
        "card_bin": spec.brand.bin,
        "authorization_code": authorization,
        "receipt_no": f"{rng.randrange(10**5, 10**6)}{authorization}",
        # MPGS test mode answers every test card with transaction 123456789 (all test samples).
        "transaction_no": f"{rng.randrange(10**8, 10**9)}" if spec.is_live else "123456789",
        "batch": int(local_gateway.strftime("%Y%m%d")),
        "acquirer_date": local_gateway.strftime("%m%d"),
        "settlement_date": local_gateway.strftime("%Y-%m-%d"),
        "acquirer_time_zone": offset,
        "acquirer_id": acquirer["id"],
        "acquirer_merchant_id": acquirer["merchant_id"],
        "gateway_merchant": ("" if spec.is_live else "TEST") + acquirer["merchant_id"],
        "terminal": acquirer["terminal"],
        "mcc": acquirer["mcc"],
        "decline_code": decline_code,
        "decline_message": DECLINE_CODES.get(decline_code, "Declined"),
        "wallet_number": spec.wallet_number or region["wallet_number"],
        "wallet_reference": f"{rng.randrange(10**9, 10**10)}",
        "wallet_txn_ref": f"{rng.getrandbits(128):032x}",
        "email": spec.customer.email,
        "wallet_redirect_url": f"{spec.region.base_url}/api/acceptance/wallet_other_test/wallet_template?token={rng.getrandbits(128):032x}",
        "bill_reference": spec.bill_reference or rng.randrange(10**7, 10**8),
        "parent_transaction_id": parent_id,
    }
    body = template("transaction.json")
    deep_merge(body, template(f"source.{spec.source.value}.json"))
    deep_merge(body, template("outcomes.json")[spec.outcome.value][spec.source.value])
    filled: dict[str, Any] = fill(body, context)
    obj = filled["obj"]
    if spec.is_auth or spec.outcome is Outcome.CAPTURE:
        # An authorisation is "is_auth"; its capture is a child with is_capture and is_auth false.
        obj["is_auth"] = spec.outcome is not Outcome.CAPTURE
        if spec.source is PaymentSource.CARD and spec.outcome is not Outcome.CAPTURE:
            obj["data"]["migs_order"]["status"] = "AUTHORIZED"
            obj["data"]["migs_transaction"]["type"] = "AUTHORIZATION"
            obj["data"]["migs_order"]["totalCapturedAmount"] = 0
    if spec.source is PaymentSource.CARD and region["numeric_approval"]:
        # KSA (2025 sample): the numeric code in txn_response_code, the word beside it.
        data = obj["data"]
        data["txn_response_code_new"] = data["txn_response_code"]
        if data["txn_response_code"] == "APPROVED":
            data["txn_response_code"] = "0"
    check_signed_fields(CallbackKind.TRANSACTION, obj)
    return Callback(CallbackKind.TRANSACTION, filled)


def transaction_body(obj: dict[str, Any]) -> dict[str, Any]:
    """The POSTed envelope around a TRANSACTION ``obj`` (templates/transaction.json)."""
    body = template("transaction.json")
    body["obj"] = obj
    return body


def check_signed_fields(kind: CallbackKind, obj: Mapping[str, Any]) -> None:
    """Built callbacks never carry a null or missing signed field (Paymob never defines them)."""
    bad = [f.name for f in signing.collect_fields(kind, obj) if f.missing or f.raw is None]
    if bad:
        raise UsageError(
            f"signed field(s) would be null or missing: {', '.join(bad)}",
            hint="give them a value with --set",
        )


@dataclass(frozen=True)
class TokenSpec:
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
    if not re.fullmatch(r"\d{4}", spec.pan_last4):
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
    body: dict[str, Any] = fill(template("token.json"), context)
    check_signed_fields(CallbackKind.TOKEN, body["obj"])
    return Callback(CallbackKind.TOKEN, body)


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
    body: dict[str, Any] = fill(template("delivery_status.json"), context)
    return Callback(CallbackKind.DELIVERY_STATUS, body)


# --- flattening (GET redirect, payments/pay) -----------------------------------------------------


def redirect_params(obj: Mapping[str, Any], hmac: str | None) -> list[tuple[str, str]]:
    """The GET response-callback parameters, as text, in Paymob's order (docs/paymob.md §7.2)."""
    params: list[tuple[str, str]] = []
    for name, path in template("redirect.json")["params"]:
        value = signing.lookup_path(obj, path)
        if value is None:
            continue  # merchant_order_id unless sent; acq_response_code of wallets, BLOCKED (§14)
        params.append((name, signing.render_value(value)))
    if hmac is not None:
        params.append(("hmac", hmac))
    return params


def encode_params(params: Sequence[tuple[str, str]]) -> str:
    return "&".join(f"{quote(k, safe='._')}={quote(v, safe='')}" for k, v in params)


def with_query(url: str, query: str) -> str:
    """Append ``query`` to ``url``, keeping any query it already has."""
    parts = urlsplit(url)
    joined = f"{parts.query}&{query}" if parts.query else query
    return urlunsplit((parts.scheme, parts.netloc, parts.path, joined, parts.fragment))


def without_param(url: str, name: str) -> str:
    """``url`` minus every ``name=`` query parameter (the rest kept byte for byte)."""
    parts = urlsplit(url)
    if not parts.query:
        return url
    kept = [p for p in parts.query.split("&") if p.split("=", 1)[0] != name]
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "&".join(kept), parts.fragment))


def pay_response(obj: Mapping[str, Any], hmac: str) -> dict[str, Any]:
    """The flattened string-typed record ``payments/pay`` returns for a TOKEN payment."""
    record: dict[str, Any] = {}
    for name, path in template("pay_response.json")["params"]:
        value = signing.lookup_path(obj, path)
        record[name] = None if value is None else signing.render_value(value)
    record["hmac"] = hmac
    record["use_redirection"] = False
    record["redirection_url"] = ""
    record["merchant_response"] = None
    record["bypass_step_six"] = False
    return record


# --- --set overrides -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Override:
    path: tuple[str, ...]
    value: Any
    text: str


def parse_override(text: str) -> Override:
    """``obj.source_data.pan=1234``: the value is JSON when it parses, otherwise a string."""
    if "=" not in text:
        raise UsageError(
            f"--set {text!r}: expected PATH=VALUE", hint="e.g. --set obj.success=false"
        )
    path_text, raw = text.split("=", 1)
    parts = tuple(path_text.strip().split("."))
    if not path_text.strip() or any(not p for p in parts):
        raise UsageError(
            f"--set {text!r}: empty path segment",
            hint="write dotted paths like obj.source_data.pan",
        )
    try:
        value = loads_json(raw, parse_constant=_no_constant)
    except ValueError:
        value = raw
    if isinstance(value, float) and not math.isfinite(value):  # 1e400: not JSON Paymob could send
        value = raw
    return Override(parts, value, text)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def apply_overrides(body: dict[str, Any], overrides: Sequence[Override]) -> dict[str, Any]:
    """Apply ``--set`` paths to a copy of ``body``; a missing or non-object parent is an error."""
    result = copy.deepcopy(body)
    for override in overrides:
        target: Any = result
        walked: list[str] = []
        for part in override.path[:-1]:
            walked.append(part)
            if not isinstance(target, dict) or part not in target:
                raise UsageError(
                    f"--set {override.text!r}: {'.'.join(walked)!r} does not exist in the payload",
                    hint="paths start at the body's top level, e.g. obj.source_data.pan",
                )
            target = target[part]
        if not isinstance(target, dict):
            raise UsageError(
                f"--set {override.text!r}: {'.'.join(override.path[:-1])!r} is not an object",
                hint="only fields of JSON objects can be set",
            )
        target[override.path[-1]] = override.value
    return result


def with_body(callback: Callback, body: dict[str, Any]) -> Callback:
    return replace(callback, body=body)
