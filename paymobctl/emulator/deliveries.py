"""The callbacks a final transaction sends and the browser's signed redirect; the record of
every delivery (queued, each attempt, resent).

Bodies come from :mod:`paymobctl.callbacks` (the TRANSACTION envelope of
``templates/transaction.json``, the TOKEN builder ``simulate`` uses) and are signed with the
sandbox's HMAC secret, so they verify exactly like ``paymobctl simulate``'s.
"""

from __future__ import annotations

import json
import random

from paymobctl import callbacks, delivery, payload_parts, redirects, signing
from paymobctl.emulator.context import Context
from paymobctl.emulator.records import (
    Attempt,
    CardToken,
    Completion,
    Delivery,
    Intention,
    Outbound,
    Transaction,
)
from paymobctl.emulator.validation import SandboxError
from paymobctl.models import CallbackKind, CallbackOrder, DeliveryState, mask_url_credentials


class Deliveries:
    """Queues signed callbacks and records what became of them."""

    def __init__(
        self, ctx: Context, *, callback_order: CallbackOrder, order_seed: int | None
    ) -> None:
        self.ctx = ctx
        self.callback_order = callback_order
        self._order_rng = random.Random(order_seed)

    def token_callback(self, token: CardToken, intention: Intention | None) -> callbacks.Callback:
        """The TOKEN callback of a saved card, from the builder ``simulate`` uses."""
        spec = callbacks.TokenSpec(
            order_id=token.order_id,
            email=token.email,
            card_subtype=token.card_subtype,
            pan_last4=token.last4,
            merchant_id=self.ctx.creds.merchant_id,
            token=token.token,
            token_id=token.id,
            created_at=payload_parts.parse_paymob_timestamp(token.created_at, self.ctx.region),
            region=self.ctx.region,
            next_payment_intention=intention.id if intention is not None else None,
            seed=token.id,  # the same TOKEN body on every retry and replay
        )
        return callbacks.build_token(spec)

    def _intention_of(self, txn: Transaction) -> Intention | None:
        key = self.ctx.tables.keys.get(txn.key or "")
        if key is None or not key.intention_id:
            return None
        return self.ctx.tables.intentions.get(key.intention_id)

    def _urls_for(self, txn: Transaction) -> tuple[str | None, str | None]:
        integration = self.ctx.integrations[txn.integration_id]
        callback_url, response_url = integration.callback_url, integration.response_url
        intention = self._intention_of(txn)
        if intention is not None:
            callback_url = intention.notification_url or callback_url
            response_url = intention.redirection_url or response_url
        return callback_url, response_url

    def _queue(
        self, kind: CallbackKind, url: str, request: delivery.HttpRequest, txn_id: int | None
    ) -> Outbound:
        tables = self.ctx.tables
        item = Delivery(
            id=tables.next_id("delivery"),
            kind=kind.value,
            url=mask_url_credentials(url),  # the request keeps them; the record never does
            transaction_id=txn_id,
            method=request.method,
            body=request.body.decode() if request.body else None,
            created_at=self.ctx.stamp(),
        )
        tables.deliveries[item.id] = item
        tables.save_delivery(item)
        return Outbound(item.id, request, kind, txn_id)

    def completion(self, txn: Transaction) -> Completion:
        """The signed callbacks of a final transaction and the signed redirect for the browser."""
        secret = self.ctx.creds.hmac_secret
        callback_url, response_url = self._urls_for(txn)
        digest = signing.compute(CallbackKind.TRANSACTION, txn.obj, secret)
        outbound: list[Outbound] = []
        if callback_url:
            body = callbacks.transaction_body(txn.obj)
            request = delivery.post_json(redirects.with_query(callback_url, f"hmac={digest}"), body)
            outbound.append(self._queue(CallbackKind.TRANSACTION, callback_url, request, txn.id))
            if txn.token_created:
                intention = self._intention_of(txn)
                token = self.token_callback(self.ctx.tables.tokens[txn.token_created], intention)
                token_url = (
                    callback_url
                    if intention is None
                    else (self.ctx.integrations[txn.integration_id].callback_url or callback_url)
                )
                token_request = delivery.post_json(
                    redirects.with_query(token_url, f"hmac={token.sign(secret)}"), token.body
                )
                outbound.append(self._queue(CallbackKind.TOKEN, token_url, token_request, txn.id))
                outbound = self._in_callback_order(outbound)
        redirect = None
        if response_url:
            query = redirects.encode_params(redirects.redirect_params(txn.obj, digest))
            redirect = redirects.with_query(response_url, query)
        return Completion(txn, redirect, tuple(outbound))

    def _in_callback_order(self, pair: list[Outbound]) -> list[Outbound]:
        """TRANSACTION and TOKEN in ``--callback-order``: Paymob promises no order (§14)."""
        order = self.callback_order
        if order is CallbackOrder.RANDOM:
            order = self._order_rng.choice(
                [CallbackOrder.TOKEN_FIRST, CallbackOrder.TRANSACTION_FIRST]
            )
        token_first = order is CallbackOrder.TOKEN_FIRST
        return sorted(pair, key=lambda item: (item.kind is CallbackKind.TOKEN) != token_first)

    def resend(self, delivery_id: int) -> Outbound:
        """A delivered (or failed) callback again, like ``stripe events resend``: the same body,
        signed again (the same HMAC), to the same URL, recorded as a new delivery."""
        item = self.ctx.tables.deliveries.get(delivery_id)
        if item is None:
            raise SandboxError(404, {"detail": f"No delivery {delivery_id}."})
        if item.body is None:
            raise SandboxError(400, {"detail": f"Delivery {delivery_id} has no body to resend."})
        kind = CallbackKind(item.kind)
        body = json.loads(item.body)
        digest = signing.compute(kind, body.get("obj") or {}, self.ctx.creds.hmac_secret)
        request = delivery.post_json(redirects.with_query(item.url, f"hmac={digest}"), body)
        self.ctx.on_event(
            "callback", f"resending delivery {delivery_id} ({item.kind} → {item.url})"
        )
        return self._queue(kind, item.url, request, item.transaction_id)

    def record_attempt(
        self, delivery_id: int, attempt: Attempt, *, final: bool, ok: bool
    ) -> Delivery:
        """Add an attempt to a delivery: delivered when ``ok``, failed when ``final``."""
        item = self.ctx.tables.deliveries[delivery_id]
        item.attempts.append(attempt)
        if ok:
            item.state = DeliveryState.DELIVERED
        elif final:
            item.state = DeliveryState.FAILED
        self.ctx.tables.save_delivery(item)
        return item
