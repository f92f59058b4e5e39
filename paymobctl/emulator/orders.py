"""Orders and payment keys (docs/paymob.md §3.2, §3.3), and which key may still pay."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from paymobctl import payload_parts
from paymobctl.emulator.context import Context
from paymobctl.emulator.records import Integration, Order, PaymentKey
from paymobctl.emulator.validation import (
    REQUIRED,
    PageError,
    SandboxError,
    billing_error,
    bool_field,
    currency_field,
    int_field,
    items,
    required_int,
)
from paymobctl.models import KeyFlow, PaymentSource

DEFAULT_KEY_EXPIRATION = 3600
# Paymob publishes no upper bound (docs/paymob.md §13.7); a year keeps every expiry a valid timestamp.
MAX_KEY_EXPIRATION = 365 * 24 * 3600
SHIPPING_ID = 108_000_001  # the shipping_data id of every sandbox order


@dataclass(frozen=True)
class KeyRequest:
    """A validated payment key request (from the API, or made by an intention)."""

    order: Order
    integration: Integration
    amount_cents: int
    currency: str
    billing: dict[str, Any]
    expiration: int
    lock_order_when_paid: bool = False
    extra: Mapping[str, Any] | None = None
    tokenization: Any = None
    card_token: str | None = None
    intention_id: str | None = None
    tokenization_given: bool = False


class Orders:
    """Creates and finds orders and payment keys."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    # -- orders ---------------------------------------------------------------------------------

    def create_order(self, body: Mapping[str, Any]) -> Order:
        """``POST /api/ecommerce/orders`` (docs/paymob.md §3.2)."""
        tables = self.ctx.tables
        amount = required_int(body, "amount_cents")
        currency = currency_field(body)
        delivery_needed = bool_field(body, "delivery_needed")
        merchant_order_id = body.get("merchant_order_id")
        if merchant_order_id is not None:
            merchant_order_id = str(merchant_order_id)
            if any(o.merchant_order_id == merchant_order_id for o in tables.orders.values()):
                # Community reports: 422 {"message": "duplicate"} (no official body found, §3.2).
                raise SandboxError(422, {"message": "duplicate"})
        order_items, items_error = items(body.get("items", []), "amount_cents")
        if items_error:
            raise SandboxError(400, {"items": items_error})
        shipping = body.get("shipping_data") or {}
        if delivery_needed and not shipping:
            raise SandboxError(
                400, {"shipping_data": ["This field is required when delivery_needed is true."]}
            )
        order = Order(
            id=tables.next_id("order"),
            created_at=self.ctx.stamp(),
            amount_cents=amount,
            currency=currency,
            merchant_order_id=merchant_order_id,
            delivery_needed=delivery_needed,
            items=order_items,
            shipping_data=dict(shipping) if isinstance(shipping, dict) else {},
        )
        tables.orders[order.id] = order
        tables.save_order(order)
        self.ctx.on_event(
            "order",
            f"order {order.id} created: {self.ctx.money(amount, currency)}"
            + (f" (merchant_order_id {merchant_order_id})" if merchant_order_id else ""),
        )
        return order

    def order_object(self, order: Order, *, api: bool = True) -> dict[str, Any]:
        """The order as the orders API (``api``) or a callback renders it: one builder."""
        url = f"{self.ctx.base_url}/standalone/?ref=i_{order.id}"
        obj = payload_parts.build_order(
            payload_parts.OrderSpec(
                id=order.id,
                created_at=order.created_at,
                amount_cents=order.amount_cents,
                currency=order.currency,
                region=self.ctx.region,
                profile_id=self.ctx.creds.profile_id,
                merchant_order_id=order.merchant_order_id,
                paid_amount_cents=order.paid_amount_cents,
                is_payment_locked=order.is_payment_locked,
                delivery_needed=order.delivery_needed,
                shipping_data=order.shipping_data,
                items=order.items,
                order_url=url,
                company_name="paymobctl sandbox",
                company_emails=("sandbox@paymobctl.local",),
            ),
            shipping_id=SHIPPING_ID,
        )
        if api:
            obj.update(token=f"i_{order.id}", url=url)
        return obj

    def get_order(self, order_id: int) -> Order:
        """``GET /api/ecommerce/orders/{id}``'s order, else a 404."""
        order = self.ctx.tables.orders.get(order_id)
        if order is None:
            raise SandboxError(404, {"detail": "Not found."})
        return order

    # -- payment keys ---------------------------------------------------------------------------

    def create_payment_key(self, body: Mapping[str, Any]) -> PaymentKey:
        """``POST /api/acceptance/payment_keys`` (docs/paymob.md §3.3)."""
        amount = required_int(body, "amount_cents")
        expiration = (
            int_field(body, "expiration", required=False, maximum=MAX_KEY_EXPIRATION)
            or DEFAULT_KEY_EXPIRATION
        )
        order_id = required_int(body, "order_id")
        billing = body.get("billing_data")
        if (problem := billing_error(billing, strict_presence=True)) is not None:
            raise SandboxError(400, {"billing_data": problem})
        assert isinstance(billing, dict)
        currency = currency_field(body)
        if body.get("integration_id") in (None, ""):
            raise SandboxError(400, {"integration_id": REQUIRED})
        integration = self.ctx.integration(body.get("integration_id"))
        order = self.ctx.tables.orders.get(order_id)
        if order is None:
            raise SandboxError(
                400, {"order_id": [f'Invalid pk "{order_id}" - object does not exist.']}
            )
        if currency != integration.currency:
            raise SandboxError(400, {"detail": "Invalid currency sent"})
        if amount != order.amount_cents:
            # Paymob's docs say the key's amount "should equal the order amount" (§3.3); a
            # mismatch is always a bug in the caller, so the sandbox refuses it outright.
            raise SandboxError(
                400,
                {
                    "amount_cents": [
                        f"amount_cents {amount} does not equal order {order.id}'s "
                        f"amount_cents {order.amount_cents}."
                    ]
                },
            )
        lock = bool_field(body, "lock_order_when_paid", default=False)
        card_token = body.get("token")
        if card_token not in (None, ""):
            if not isinstance(card_token, str) or card_token not in self.ctx.tables.tokens:
                raise SandboxError(400, {"token": ["Invalid card token."]})
        else:
            card_token = None
        return self.issue_key(
            KeyRequest(
                order=order,
                integration=integration,
                amount_cents=amount,
                currency=currency,
                billing=dict(billing),
                expiration=expiration,
                lock_order_when_paid=lock,
                extra=body.get("extra"),
                tokenization=body.get("tokenization"),
                card_token=card_token,
                tokenization_given="tokenization" in body,
            )
        )

    def issue_key(self, request: KeyRequest) -> PaymentKey:
        """A payment key for a request already validated."""
        now = self.ctx.now().timestamp()
        claims = payload_parts.payment_key_claims(
            flow=KeyFlow.INTENTION if request.intention_id else KeyFlow.LEGACY,
            user_id=self.ctx.creds.merchant_id,
            amount_cents=request.amount_cents,
            currency=request.currency,
            integration_id=request.integration.id,
            order_id=request.order.id,
            billing=request.billing,
            exp=int(now + request.expiration),
            lock_order_when_paid=request.lock_order_when_paid,
            extra=request.extra or {},
        )
        key = PaymentKey(
            key=self.ctx.jwt(claims),
            order_id=request.order.id,
            integration_id=request.integration.id,
            amount_cents=request.amount_cents,
            currency=request.currency,
            billing_data=request.billing,
            lock_order_when_paid=request.lock_order_when_paid,
            expires_at=now + request.expiration,
            claims=claims,
            tokenization=request.tokenization,
            card_token=request.card_token,
            intention_id=request.intention_id,
        )
        self.ctx.tables.keys[key.key] = key
        self.ctx.tables.save_key(key)
        note = ""
        if request.tokenization_given:
            note = (
                " — 'tokenization' recorded; card saving depends on the payer ticking 'save card'"
            )
        self.ctx.on_event(
            "key",
            f"payment key for order {request.order.id} on integration {request.integration.id} "
            f"({request.integration.kind}), expires in {request.expiration} s{note}",
        )
        return key

    def usable_key(self, token: str | None) -> PaymentKey:
        """A payment key that can still pay, or the checkout error page explaining why not."""
        if not token:
            raise PageError(
                400,
                "Missing payment token",
                "This page needs ?payment_token=... from the payment key call.",
            )
        key = self.ctx.tables.keys.get(token)
        if key is None:
            raise PageError(
                401, "Invalid payment token", "This payment token was not issued by this sandbox."
            )
        if key.expires_at < self.ctx.now().timestamp():
            raise PageError(
                410, "Payment key expired", "This payment key has expired: create a new one."
            )
        if key.used:
            raise PageError(
                410,
                "Payment key already used",
                "This payment key was already used: create a new one.",
            )
        order = self.ctx.tables.orders[key.order_id]
        if order.is_payment_locked:
            raise PageError(409, "Order already paid", f"Order {order.id} is already paid.")
        return key

    def api_key_for_pay(self, token: object) -> PaymentKey:
        """``payments/pay``'s ``payment_token`` as a usable key, else the API's error."""
        try:
            return self.usable_key(token if isinstance(token, str) else None)
        except PageError as exc:
            raise SandboxError(400 if exc.status != 401 else 401, {"detail": exc.message}) from None

    def checkout(self, iframe_id: int, token: str | None) -> tuple[PaymentKey, Order]:
        """The card iframe's key and order, or the page explaining why it cannot pay."""
        if iframe_id not in self.ctx.iframes:
            raise PageError(
                404,
                "Iframe not found",
                f"There is no iframe {iframe_id}. Check PAYMOB_IFRAME_ID: "
                f"the sandbox's iframe id is {self.ctx.creds.iframe_id}.",
            )
        key = self.usable_key(token)
        integration = self.ctx.integrations[key.integration_id]
        if integration.source is not PaymentSource.CARD:
            raise PageError(
                400,
                "Not a card integration",
                f"Integration {integration.id} is a {integration.kind} "
                "integration: the card iframe needs a card integration's payment key.",
            )
        return key, self.ctx.tables.orders[key.order_id]
