"""Paymob's API and callback signatures (Paymob's docs; paymobctl's docs/paymob.md §8 for the fields)."""

import hashlib
import hmac
import os
from dataclasses import dataclass

import httpx

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


@dataclass(frozen=True)
class PaymobSettings:
    """Read from the environment on every request (12-factor; tests patch the environment)."""

    api_key: str
    hmac_secret: str
    integration_id: int
    moto_integration_id: int
    iframe_id: int
    base_url: str

    @classmethod
    def from_env(cls):
        return cls(
            api_key=os.environ.get("PAYMOB_API_KEY", ""),
            hmac_secret=os.environ.get("PAYMOB_HMAC_SECRET", ""),
            integration_id=int(os.environ.get("PAYMOB_INTEGRATION_ID", "0")),
            moto_integration_id=int(os.environ.get("PAYMOB_MOTO_INTEGRATION_ID", "0")),
            iframe_id=int(os.environ.get("PAYMOB_IFRAME_ID", "0")),
            base_url=os.environ.get("PAYMOB_BASE_URL", "https://accept.paymob.com").rstrip("/"),
        )


class Paymob:
    def __init__(self, settings):
        self.settings = settings

    def _post(self, path, payload):
        try:
            answer = httpx.post(self.settings.base_url + path, json=payload, timeout=15)
        except httpx.HTTPError as exc:
            raise PaymobError(f"Paymob is unreachable: {exc}") from exc
        if answer.status_code >= 400:
            raise PaymobError(f"Paymob answered {answer.status_code} on {path}")
        return answer.json()

    def payment_key(self, amount_cents, email, *, merchant_order_id, moto=False):
        """auth → order → payment key; returns (order id, payment key)."""
        auth = self._post("/api/auth/tokens", {"api_key": self.settings.api_key})["token"]
        order = self._post(
            "/api/ecommerce/orders",
            {"auth_token": auth, "delivery_needed": False, "amount_cents": amount_cents,
             "currency": "EGP", "merchant_order_id": merchant_order_id, "items": []},
        )  # fmt: skip
        billing = dict.fromkeys(
            ("apartment", "floor", "street", "building", "shipping_method", "postal_code",
             "city", "state"),
            "NA",
        )  # fmt: skip
        billing |= {"first_name": "Shop", "last_name": "Client", "email": email,
                    "phone_number": "+201000000000", "country": "EG"}  # fmt: skip
        key = {
            "auth_token": auth, "amount_cents": amount_cents, "expiration": 3600,
            "order_id": order["id"], "billing_data": billing, "currency": "EGP",
            "integration_id": self.settings.moto_integration_id if moto
            else self.settings.integration_id,
        }  # fmt: skip
        if not moto:
            key["tokenization"] = "true"
        return order["id"], self._post("/api/acceptance/payment_keys", key)["token"]

    def iframe_url(self, payment_key):
        return (
            f"{self.settings.base_url}/api/acceptance/iframes/{self.settings.iframe_id}"
            f"?payment_token={payment_key}"
        )

    def pay_with_token(self, payment_key, card_token):
        source = {"identifier": card_token, "subtype": "TOKEN"}
        return self._post(
            "/api/acceptance/payments/pay", {"source": source, "payment_token": payment_key}
        )

    def signature_ok(self, values, received):
        """``values``: the signed fields' values in order, as Paymob renders them."""
        message = "".join(values)
        expected = hmac.new(self.settings.hmac_secret.encode(), message.encode(), hashlib.sha512)
        return hmac.compare_digest(expected.hexdigest(), received or "")

    def callback_ok(self, kind, obj, received):
        fields = TOKEN_FIELDS if kind == "TOKEN" else TRANSACTION_FIELDS
        return self.signature_ok([_text(_lookup(obj, f)) for f in fields], received)

    def redirect_ok(self, params, received):
        names = ["order" if f == "order.id" else f for f in TRANSACTION_FIELDS]
        return self.signature_ok([params.get(n, "") for n in names], received)


def _lookup(data, dotted):
    for part in dotted.split("."):
        data = data.get(part) if isinstance(data, dict) else None
    return data


def _text(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)
