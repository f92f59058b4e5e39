"""The Intention API (docs/paymob.md §5): creating and updating payment intentions, the
element view, and what the unified checkout may pay with."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from paymobctl import payload_parts
from paymobctl.emulator.auth import Auth
from paymobctl.emulator.context import Context, hex_id
from paymobctl.emulator.orders import (
    DEFAULT_KEY_EXPIRATION,
    MAX_KEY_EXPIRATION,
    KeyRequest,
    Orders,
)
from paymobctl.emulator.payments import Payments
from paymobctl.emulator.records import Completion, Intention, PaymentKey, Transaction
from paymobctl.emulator.validation import (
    BILLING_PRESENT,
    BILLING_REQUIRED,
    REQUIRED,
    PageError,
    SandboxError,
    as_int,
    billing_error,
    currency_error,
    int_error,
    items,
    list_error,
    url_errors,
)
from paymobctl.models import PaymentSource

URL_FIELDS = ("notification_url", "redirection_url")


def _checked(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The request's items, once every field checks out; else a 400 naming each refused field
    with DRF's messages."""
    errors: dict[str, Any] = {}
    amount = body.get("amount")
    if amount in (None, ""):
        errors["amount"] = REQUIRED
    elif amount_error := int_error(amount):
        errors["amount"] = amount_error
    if problem := currency_error(body.get("currency")):
        errors["currency"] = problem
    methods = body.get("payment_methods")
    if not methods:
        errors["payment_methods"] = REQUIRED
    elif not isinstance(methods, list):
        errors["payment_methods"] = list_error(methods)
    if (problem := billing_error(body.get("billing_data"), strict_presence=False)) is not None:
        errors["billing_data"] = problem
    found, items_error = items(body.get("items", []), "amount")
    if items_error:
        errors["items"] = items_error
    expiration = body.get("expiration")
    if expiration not in (None, "") and (
        expiration_error := int_error(expiration, maximum=MAX_KEY_EXPIRATION)
    ):
        errors["expiration"] = expiration_error
    tokens = body.get("card_tokens") or []
    if not isinstance(tokens, list):
        errors["card_tokens"] = list_error(tokens)
    elif len(tokens) > 3:
        errors["card_tokens"] = ["Ensure this field has no more than 3 elements."]
    errors.update(url_errors(body, URL_FIELDS))
    if errors:
        raise SandboxError(400, errors)
    return found


class Intentions:
    """Payment intentions: each an order with one payment key per payment method."""

    def __init__(self, ctx: Context, auth: Auth, orders: Orders, payments: Payments) -> None:
        self.ctx = ctx
        self.auth = auth
        self.orders = orders
        self.payments = payments

    def create_intention(self, body: Mapping[str, Any]) -> Intention:
        """``POST /v1/intention/`` (docs/paymob.md §5.1), validating like Paymob."""
        intention_items = _checked(body)
        methods, billing = body["payment_methods"], body["billing_data"]
        assert isinstance(methods, list) and isinstance(billing, dict)
        total = as_int(body.get("amount"))
        assert total is not None
        currency = str(body["currency"]).strip().upper()
        integrations = [self.ctx.integration(m) for m in methods]
        for integration in integrations:
            if integration.currency != currency:
                raise SandboxError(400, {"detail": "Invalid currency sent"})
        if intention_items and sum(i["amount"] * i["quantity"] for i in intention_items) != total:
            raise SandboxError(
                400, {"detail": "Sum of items amounts doesn't equal the intention amount"}
            )
        special = body.get("special_reference")
        order = self.orders.create_order(
            {
                "amount_cents": total,
                "currency": currency,
                "delivery_needed": False,
                "merchant_order_id": special,
                "items": [
                    {
                        "name": i.get("name"),
                        "amount_cents": i.get("amount"),
                        "description": i.get("description", ""),
                        "quantity": i["quantity"],
                    }
                    for i in intention_items
                ],
            }
        )
        intention_id = f"pi_test_{hex_id(16)}"
        client_secret = f"{self.ctx.creds.secret_key[:3]}_csk_test_{hex_id(16)}"
        billing_full = {
            name: billing.get(name, "") for name in (*BILLING_REQUIRED, *BILLING_PRESENT)
        }
        expiration = as_int(body.get("expiration")) or DEFAULT_KEY_EXPIRATION
        keys = []
        for integration in integrations:
            key = self.orders.issue_key(
                KeyRequest(
                    order=order,
                    integration=integration,
                    amount_cents=total,
                    currency=currency,
                    billing=dict(billing_full),
                    expiration=expiration,
                    extra=body.get("extras") or {},
                    intention_id=client_secret,
                )
            )
            key.claims.update(
                next_payment_intention=intention_id,
                redirect_url=f"{self.ctx.base_url}/unifiedcheckout/payment-status?payment_token={key.key[:16]}",
            )
            # An intention's own URLs are in its keys' claims too (2025 KSA, 2026 EG samples).
            for url_field in URL_FIELDS:
                if body.get(url_field):
                    key.claims[url_field] = body[url_field]
            key.claims = payload_parts.jsonb_order(key.claims)
            keys.append(
                {
                    "integration": integration.id,
                    "key": key.key,
                    "gateway_type": integration.gateway_type,
                    "iframe_id": None,
                    "order_id": order.id,
                }
            )
        intention = Intention(
            id=intention_id,
            client_secret=client_secret,
            amount=total,
            currency=currency,
            payment_methods=[i.id for i in integrations],
            items=intention_items,
            billing_data=billing_full,
            special_reference=str(special) if special is not None else None,
            notification_url=body.get("notification_url") or None,
            redirection_url=body.get("redirection_url") or None,
            card_tokens=[str(t) for t in body.get("card_tokens") or []],
            extras=dict(body.get("extras") or {}),
            order_id=order.id,
            keys=keys,
            created=self.ctx.stamp(),
        )
        order.intention_id = client_secret
        tables = self.ctx.tables
        tables.intentions[client_secret] = intention
        tables.save_intention(intention)
        tables.save_order(order)
        self.ctx.on_event(
            "intention",
            f"intention {intention_id} for {self.ctx.money(total, currency)} (order {order.id})",
        )
        return intention

    def intention_response(self, intention: Intention) -> dict[str, Any]:
        """The intention as the Intention API answers it."""
        integrations = self.ctx.integrations
        tokens = self.ctx.tables.tokens
        return {
            "payment_keys": intention.keys,
            "intention_order_id": intention.order_id,
            "id": intention.id,
            "intention_detail": {
                "amount": intention.amount,
                "items": [{**i, "image": None} for i in intention.items],
                "currency": intention.currency,
                "billing_data": intention.billing_data,
            },
            "client_secret": intention.client_secret,
            "payment_methods": [
                {
                    "integration_id": i,
                    "alias": None,
                    "name": integrations[i].name,
                    "method_type": integrations[i].integration_type,
                    "currency": intention.currency,
                    "live": False,
                    "use_cvc_with_moto": False,
                }
                for i in intention.payment_methods
            ],
            "special_reference": intention.special_reference,
            "extras": {"creation_extras": intention.extras or None, "confirmation_extras": None},
            "confirmed": intention.status == "paid",
            "status": intention.status,
            "created": intention.created,
            "card_detail": None,
            "card_tokens": [
                {
                    "token": tokens[t].token,
                    "masked_pan": tokens[t].masked_pan,
                    "card_subtype": tokens[t].card_subtype,
                }
                for t in intention.card_tokens
                if t in tokens
            ],
            "object": "paymentintention",
        }

    def update_intention(self, client_secret: str, body: Mapping[str, Any]) -> Intention:
        """``PUT /v1/intention/{client_secret}``: new URLs or reference for the order."""
        intention = self.ctx.tables.intentions.get(client_secret)
        if intention is None:
            raise SandboxError(404, {"detail": "Not found."})
        errors: dict[str, Any] = url_errors(body, URL_FIELDS)
        order = body.get("accept_order_id")
        if order in (None, ""):
            errors["accept_order_id"] = REQUIRED
        elif problem := int_error(order):
            errors["accept_order_id"] = problem
        reference = body.get("special_reference")
        if reference not in (None, "") and not isinstance(reference, str | int):
            errors["special_reference"] = ["Not a valid string."]
        if errors:
            raise SandboxError(400, errors)
        for name in (*URL_FIELDS, "special_reference"):
            if name in body:
                value = body[name]
                setattr(intention, name, str(value) if value not in (None, "") else None)
        self.ctx.tables.save_intention(intention)
        return intention

    def intention_for_checkout(
        self, public_key: str | None, client_secret: str | None
    ) -> Intention:
        """The intention the unified checkout shows, or the page explaining why not."""
        if not self.auth.check_public_key(public_key):
            raise PageError(
                401, "Invalid public key", "publicKey does not match this sandbox's public key."
            )
        intention = self.ctx.tables.intentions.get(client_secret or "")
        if intention is None:
            raise PageError(404, "Unknown payment", "clientSecret does not match any intention.")
        if intention.status == "paid":
            raise PageError(409, "Already paid", "This payment intention is already paid.")
        return intention

    def element(self, public_key: str, client_secret: str) -> dict[str, Any]:
        """``GET /v1/intention/element/{public_key}/{client_secret}/``: the public view."""
        if not self.auth.check_public_key(public_key):
            raise SandboxError(401, {"detail": "Invalid public key."})
        intention = self.ctx.tables.intentions.get(client_secret)
        if intention is None:
            raise SandboxError(404, {"detail": "Not found."})
        view = self.intention_response(intention)
        view.pop("payment_keys")
        view["paid"] = intention.status == "paid"
        return view

    def intention_key(self, intention: Intention, kind: str = "card") -> PaymentKey:
        """The usable payment key of the intention's ``kind`` of method, else a page error."""
        for entry in intention.keys:
            integration = self.ctx.integrations[int(entry["integration"])]
            if integration.source.value == kind or (
                kind == "card" and integration.source is PaymentSource.CARD
            ):
                return self.orders.usable_key(str(entry["key"]))
        raise PageError(
            400, "Method not offered", f"This intention offers no {kind} payment method."
        )

    def pay_intention_token(
        self, intention: Intention, token: str, base: str
    ) -> tuple[Transaction, Completion | None]:
        """Saved card from the unified checkout: the transaction, and its completion unless it
        still needs 3-D Secure."""
        if token not in intention.card_tokens or token not in self.ctx.tables.tokens:
            raise PageError(
                400, "Unknown saved card", "That saved card is not offered by this payment."
            )
        key = self.intention_key(intention)
        integration = self.ctx.integrations[key.integration_id]
        _, record, done = self.payments.pay_token(key, integration, token, base)
        return self.ctx.tables.transactions[int(record["id"])], done
