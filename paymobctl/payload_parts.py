"""The pieces every Paymob payload shares: local times and values per region, the card
gateway's (MPGS) renderings of times, days and amounts, JSONB key order, and the objects a
TRANSACTION carries that the sandbox's API serves too (the order, the payment key's claims).
Built from templates/order.json and payment_key_claims.json through :mod:`paymobctl.prototypes`;
:mod:`paymobctl.callbacks` nests both into the TRANSACTION.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import cache, lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from paymobctl.models import KeyFlow, Region, currency_exponent
from paymobctl.prototypes import Hole, Prototype, nest, shared, skeleton, template

# --- time and region ------------------------------------------------------------------------------


def local_time(moment: datetime, region: Region) -> datetime:
    """``moment`` in the account's zone: Cairo observes summer time again since 2023 (§14)."""
    return moment.astimezone(ZoneInfo(region.info.time_zone))


def paymob_timestamp(moment: datetime, region: Region) -> str:
    """Paymob's rendering: naive local time in Egypt, an explicit offset elsewhere (§2, §14)."""
    # Callbacks render several times a second: the text of each whole second is kept (the
    # zone's offsets are whole seconds, so only the microseconds differ within one).
    if moment.tzinfo is None:  # naive: the machine's local time, as astimezone reads it
        text = local_time(moment, region).isoformat(timespec="microseconds")
        return text[:26] if region.info.naive_times else text
    second, micro = divmod(moment - _EPOCH, _SECOND)
    key = (region, second)
    cached = _SECONDS.get(key)
    if cached is None:
        text = local_time(moment, region).isoformat(timespec="microseconds")
        # isoformat always writes 26 characters before the offset (a four-digit year).
        if len(_SECONDS) >= 4096:
            _SECONDS.clear()
        cached = _SECONDS[key] = (text[:19], "" if region.info.naive_times else text[26:])
    return f"{cached[0]}.{micro.microseconds:06d}{cached[1]}"


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SECOND = timedelta(seconds=1)
_SECONDS: dict[tuple[Region, int], tuple[str, str]] = {}


def parse_paymob_timestamp(text: str, region: Region) -> datetime | None:
    """The instant a Paymob timestamp names; naive text is the region's local time."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(region.info.time_zone))
    return moment.astimezone(UTC)


def region_values(region: Region) -> Mapping[str, Any]:
    """City, phones, wallet number and acquirer of ``region`` (templates/regions.json); shared,
    never change it."""
    values: Mapping[str, Any] = shared("regions.json")[region.value]
    return values


def jsonb_order(mapping: Mapping[str, Any]) -> dict[str, Any]:
    """Keys as PostgreSQL's jsonb returns them (shortest first, then bytewise): the order of
    ``payment_key_claims`` and its ``billing_data`` in every real callback."""
    return {key: mapping[key] for key in sorted(mapping, key=lambda k: (len(k), k))}


# --- MPGS (card gateway) renderings ------------------------------------------------------------


def gateway_utc(moment: datetime) -> str:
    """The card gateway's ``data.created_at``: naive UTC (docs sample: 08:34 for 11:34 Cairo)."""
    second, micro = _utc_second(moment)
    if second is not None:
        return f"{second}.{micro:06d}"
    return moment.astimezone(UTC).isoformat(timespec="microseconds")[:26]


def migs_time(moment: datetime) -> str:
    """MPGS times: UTC, milliseconds, ``Z``."""
    second, micro = _utc_second(moment)
    if second is not None:
        return f"{second}.{micro // 1000:03d}Z"
    utc = moment.astimezone(UTC)
    if utc.year >= 1000 and utc.microsecond == moment.microsecond:  # isoformat's text is strftime's
        return utc.isoformat(timespec="milliseconds")[:23] + "Z"
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _utc_second(moment: datetime) -> tuple[str | None, int]:
    """``YYYY-MM-DDTHH:MM:SS`` of ``moment`` in UTC and its microseconds, the text kept per
    whole second (callbacks render several a second); None for what the general path renders:
    naive times, years before 1000, offsets with microseconds."""
    if moment.tzinfo is None:
        return None, 0
    second, rest = divmod(moment - _EPOCH, _SECOND)
    micro = rest.microseconds
    if micro != moment.microsecond:
        return None, 0
    text = _UTC_SECONDS.get(second)
    if text is None:
        utc = moment.astimezone(UTC)
        if utc.year < 1000:
            return None, 0
        if len(_UTC_SECONDS) >= 4096:
            _UTC_SECONDS.clear()
        text = _UTC_SECONDS[second] = utc.isoformat(timespec="seconds")[:19]
    return text, micro


_UTC_SECONDS: dict[int, str] = {}
_ACQUIRER_DAYS: dict[tuple[Region, int], tuple[int, str, str, str]] = {}


def acquirer_day(moment: datetime, region: Region) -> tuple[int, str, str, str]:
    """MPGS acquirer fields of ``moment``'s local day: batch (YYYYMMDD), date (MMDD),
    settlement date (YYYY-MM-DD) and the zone's offset (+HHMM); kept per whole second."""
    if moment.tzinfo is None:
        return _local_day(moment, region)
    key = (region, (moment - _EPOCH) // _SECOND)
    day = _ACQUIRER_DAYS.get(key)
    if day is None:
        if len(_ACQUIRER_DAYS) >= 4096:
            _ACQUIRER_DAYS.clear()
        day = _ACQUIRER_DAYS[key] = _local_day(moment, region)
    return day


def _local_day(moment: datetime, region: Region) -> tuple[int, str, str, str]:
    local = local_time(moment, region)
    text = local.isoformat(timespec="microseconds")
    if local.year >= 1000 and len(text) == 32:  # a four-digit year, an offset in whole minutes
        day = text[:10]
        return int(day[:4] + day[5:7] + day[8:]), day[5:7] + day[8:], day, text[26:29] + text[30:]
    return (
        int(local.strftime("%Y%m%d")),
        local.strftime("%m%d"),
        local.strftime("%Y-%m-%d"),
        local.strftime("%z"),
    )


def _exact_major(cents: int, currency: str) -> int | float:
    """Major units by Decimal: 250 for 25000 piasters, 250.5 for 25050."""
    value = Decimal(cents).scaleb(-currency_exponent(currency))
    return int(value) if value == value.to_integral_value() else float(value)


_exact_major_cached = lru_cache(maxsize=256, typed=True)(_exact_major)


def amount_major(cents: int, currency: str) -> int | float:
    """Major units as MIGS reports them: 250 for 25000 piasters, 250.5 for 25050; by integer
    division for an int below 10**15 (a new amount per callback costs no Decimal), otherwise
    by Decimal (both are the correctly rounded value of the same quotient)."""
    if type(cents) is int and -(10**15) < cents < 10**15:
        unit: int = 10 ** currency_exponent(currency)
        whole, rest = divmod(cents, unit)
        return cents / unit if rest else whole
    return _exact_major_cached(cents, currency)


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
    order: dict[str, Any] = _order_prototype().build(order_context(spec, shipping_id))
    return order


@cache
def order_shape() -> Any:
    """templates/order.json as a prototype shape, shipping_data filled in the same pass."""
    # shipping_data has fixed keys: filled in the same pass, not serialised as a value.
    keys = shipping_data(0, 0, Region.EG)
    return nest(skeleton(template("order.json")), {"shipping_data": _fields(keys)})


def _fields(names: Mapping[str, Any]) -> dict[str, Hole]:
    """A shape copying a mapping with exactly these keys, in this order."""
    return {name: Hole(name) for name in names}


@cache
def _order_prototype() -> Prototype:
    return Prototype(order_shape(), "order")


@cache
def _merchant_created_at(region: Region) -> str:
    return paymob_timestamp(datetime(2024, 1, 8, 8, 0, tzinfo=UTC), region)


def order_context(spec: OrderSpec, shipping_id: int) -> dict[str, Any]:
    """The values that fill :func:`order_shape` for ``spec``."""
    region = region_values(spec.region)
    return {
        "order_id": spec.id,
        "order_created_at": spec.created_at,
        "delivery_needed": spec.delivery_needed,
        "profile_id": spec.profile_id,
        "merchant_created_at": _merchant_created_at(spec.region),
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


_BILLING_NAMES = tuple(
    jsonb_order(
        dict.fromkeys((
            "first_name", "last_name", "email", "phone_number", "street", "building", "floor",
            "apartment", "city", "state", "country", "postal_code", "extra_description",
        ))
    )
)  # fmt: skip


def billing_data(values: Mapping[str, Any]) -> dict[str, Any]:
    """``payment_key_claims.billing_data``: the 13 billing fields, "NA" when not given."""
    return {name: values.get(name, "NA") for name in _BILLING_NAMES}


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
    context = claims_context(
        user_id=user_id,
        amount_cents=amount_cents,
        currency=currency,
        integration_id=integration_id,
        order_id=order_id,
        billing=billing,
        exp=exp,
        lock_order_when_paid=lock_order_when_paid,
        extra=extra,
        pmk_ip=pmk_ip,
        redirect_url=redirect_url,
        next_payment_intention=next_payment_intention,
    )
    claims: dict[str, Any] = _claims_prototype(flow).build(context)
    if not optional:
        return claims  # the prototype's keys are already in jsonb order
    claims.update(optional)
    return jsonb_order(claims)


@cache
def claims_shape(flow: KeyFlow) -> dict[str, Any]:
    """The claims of ``flow``'s payment key as a prototype shape, keys in JSONB order."""
    shape = jsonb_order(skeleton(template("payment_key_claims.json")[flow.value]))
    nested: dict[str, Any] = nest(shape, {"billing_data": _fields(billing_data({}))})
    return nested


@cache
def _claims_prototype(flow: KeyFlow) -> Prototype:
    return Prototype(claims_shape(flow), f"payment_key_claims {flow.value}")


def claims_context(
    *,
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
) -> dict[str, Any]:
    """The values that fill :func:`claims_shape` (payment_key_claims without ``optional``)."""
    return {
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
