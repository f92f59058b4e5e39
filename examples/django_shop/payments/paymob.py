"""Paymob's API and callback signatures, as the integration guide's ``paymob_utils`` does them.

Written against Paymob's documentation, not against paymobctl: the tests check it from outside.
"""

import hashlib
import hmac
from decimal import Decimal, InvalidOperation

import httpx
from django.conf import settings

# The signed fields, in Paymob's order (Paymob docs "HMAC Calculation"; paymobctl's docs/paymob.md §8).
TRANSACTION_FIELDS = (
    "amount_cents", "created_at", "currency", "error_occured", "has_parent_transaction", "id",
    "integration_id", "is_3d_secure", "is_auth", "is_capture", "is_refunded",
    "is_standalone_payment", "is_voided", "order.id", "owner", "pending", "source_data.pan",
    "source_data.sub_type", "source_data.type", "success",
)  # fmt: skip
TOKEN_FIELDS = (
    "card_subtype", "created_at", "email", "id", "masked_pan", "merchant_id", "order_id", "token",
)  # fmt: skip


class PaymobError(Exception):
    pass


def _post(path, payload):
    try:
        response = httpx.post(settings.PAYMOB_BASE_URL.rstrip("/") + path, json=payload, timeout=15)
    except httpx.HTTPError as exc:
        raise PaymobError(f"Paymob is unreachable: {exc}") from exc
    if response.status_code >= 400:
        raise PaymobError(f"Paymob answered {response.status_code} on {path}")
    return response.json()


def to_cents(amount):
    """'150.00' → 15000; None for anything that is not a positive amount."""
    try:
        value = Decimal(str(amount))
    except InvalidOperation:
        return None
    if not value.is_finite() or value <= 0 or value != value.quantize(Decimal("0.01")):
        return None
    return int(value * 100)


def get_auth_token():
    return _post("/api/auth/tokens", {"api_key": settings.PAYMOB_API_KEY})["token"]


def create_order(auth_token, amount_cents, merchant_order_id):
    order = {
        "auth_token": auth_token,
        "delivery_needed": False,
        "amount_cents": amount_cents,
        "currency": "EGP",
        "merchant_order_id": merchant_order_id,
        "items": [],
    }
    return _post("/api/ecommerce/orders", order)["id"]


def get_payment_key(auth_token, order_id, amount_cents, email, integration_id, tokenization):
    billing = dict.fromkeys(
        ("apartment", "floor", "street", "building", "shipping_method", "postal_code", "city",
         "state"),
        "NA",
    )  # fmt: skip
    billing.update(
        first_name="Srvana", last_name="Client", email=email, phone_number="+201000000000",
        country="EG",
    )  # fmt: skip
    key = {
        "auth_token": auth_token,
        "amount_cents": amount_cents,
        "expiration": 3600,
        "order_id": order_id,
        "billing_data": billing,
        "currency": "EGP",
        "integration_id": integration_id,
        "lock_order_when_paid": "false",
    }
    if tokenization:
        key["tokenization"] = "true"  # the guide: Paymob then sends a TOKEN callback
    return _post("/api/acceptance/payment_keys", key)["token"]


def iframe_url(payment_key):
    base = settings.PAYMOB_BASE_URL.rstrip("/")
    return f"{base}/api/acceptance/iframes/{settings.PAYMOB_IFRAME_ID}?payment_token={payment_key}"


def pay_with_token(payment_key, card_token):
    source = {"identifier": card_token, "subtype": "TOKEN"}
    return _post("/api/acceptance/payments/pay", {"source": source, "payment_token": payment_key})


def _value(data, dotted):
    for part in dotted.split("."):
        data = data.get(part) if isinstance(data, dict) else None
    return data


def _text(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def calculate_hmac(data, fields):
    message = "".join(_text(_value(data, field)) for field in fields)
    secret = settings.PAYMOB_HMAC_SECRET.encode()
    return hmac.new(secret, message.encode(), hashlib.sha512).hexdigest()


def is_valid_callback(kind, obj, received):
    fields = TOKEN_FIELDS if kind == "TOKEN" else TRANSACTION_FIELDS
    return hmac.compare_digest(calculate_hmac(obj, fields), received or "")


def is_valid_redirect(params, received):
    """The GET redirect: flat string values, ``order`` instead of ``order.id``."""
    flat = {
        field: params.get("order" if field == "order.id" else field) for field in TRANSACTION_FIELDS
    }
    message = "".join(flat[field] or "" for field in TRANSACTION_FIELDS)
    expected = hmac.new(settings.PAYMOB_HMAC_SECRET.encode(), message.encode(), hashlib.sha512)
    return hmac.compare_digest(expected.hexdigest(), received or "")
