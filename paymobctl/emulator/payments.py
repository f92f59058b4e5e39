"""Payments: a card typed into the checkout or saved, a mobile wallet, a kiosk reference
(docs/paymob.md §4); held for the payer's step (3-D Secure, MPIN/OTP, cash) or final at once.

Every transaction object comes from :func:`paymobctl.callbacks.build_transaction` (the
templates), with the sandbox's own order, key claims and outcome details laid over it.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from paymobctl import callbacks, payload_parts, redirects, signing
from paymobctl.callbacks import Customer, TransactionSpec
from paymobctl.emulator import cards
from paymobctl.emulator.cards import Behaviour
from paymobctl.emulator.context import Context, hex_id
from paymobctl.emulator.deliveries import Deliveries
from paymobctl.emulator.orders import Orders
from paymobctl.emulator.records import (
    CardToken,
    Completion,
    Integration,
    PaymentKey,
    Transaction,
)
from paymobctl.emulator.validation import REQUIRED, PageError, SandboxError
from paymobctl.models import CallbackKind, CardBrand, Outcome, PaymentSource

# The hosted page's 404 when no payment waits in a state: (title, message).
NOT_WAITING = {
    "pending_3ds": (
        "Unknown authentication",
        "There is no 3-D Secure step waiting for this transaction.",
    ),
    "pending_wallet": (
        "Unknown wallet payment",
        "There is no wallet payment waiting for this transaction.",
    ),
}

PayAnswer = tuple[int, dict[str, Any], Completion | None]


@dataclass(frozen=True)
class Details:
    """What a transaction object says beyond the key, outcome and source."""

    brand: CardBrand = CardBrand.MASTERCARD
    last4: str = "2346"
    three_ds: bool = False
    rule: cards.ExpiryRule | None = None
    wallet_number: str = cards.WALLET_NUMBER
    decline_code: str | None = None
    message: str | None = None
    api_source: str | None = None
    bill_reference: int | None = None
    parent_id: int | None = None


class Payments:
    """Takes payments and settles them (order paid, key used, card saved)."""

    def __init__(self, ctx: Context, orders: Orders, deliveries: Deliveries) -> None:
        self.ctx = ctx
        self.orders = orders
        self.deliveries = deliveries

    # -- the transaction object -----------------------------------------------------------------

    def build(
        self,
        key: PaymentKey,
        outcome: Outcome,
        source: PaymentSource,
        transaction_id: int,
        created: datetime,
        details: Details | None = None,
    ) -> dict[str, Any]:
        """Paymob's transaction object for a payment (or child) on ``key``."""
        details = Details() if details is None else details
        tables = self.ctx.tables
        order = tables.orders[key.order_id]
        integration = self.ctx.integrations[key.integration_id]
        billing = key.billing_data
        spec = TransactionSpec(
            outcome=outcome,
            source=source,
            amount_cents=key.amount_cents,
            currency=key.currency,
            region=self.ctx.region,
            order_id=order.id,
            merchant_order_id=order.merchant_order_id,
            transaction_id=transaction_id,
            parent_transaction_id=details.parent_id,
            integration_id=integration.id,
            merchant_id=self.ctx.creds.merchant_id,
            profile_id=self.ctx.creds.profile_id,
            brand=details.brand,
            pan_last4=details.last4,
            wallet_number=details.wallet_number,
            customer=Customer(
                first_name=str(billing.get("first_name", "NA")),
                last_name=str(billing.get("last_name", "NA")),
                email=str(billing.get("email", "NA")),
                phone=str(billing.get("phone_number", "NA")),
            ),
            is_auth=integration.is_auth and outcome is Outcome.APPROVED,
            decline_code=details.decline_code,
            created_at=created,
            # Last updated now, as it becomes final: no time in it is later (the browser's
            # redirect, sent right away, would contradict a later one).
            updated_at=self.ctx.now(),
            bill_reference=details.bill_reference,
        )
        obj = callbacks.build_transaction(spec).obj
        # The sandbox's own facts: its order and key, how the payer paid.
        obj["order"] = self.orders.order_object(order, api=False)
        obj["payment_key_claims"] = dict(key.claims)
        obj["is_3d_secure"] = details.three_ds
        obj["api_source"] = details.api_source or (
            "IFRAME" if source is PaymentSource.CARD else "OTHER"
        )
        if source is PaymentSource.CARD and not details.three_ds:
            obj["data"]["acs_eci"] = ""
        rule = details.rule
        if rule is not None:
            obj["success"] = False
            obj["error_occured"] = rule.error_occured
            obj["data"].update(
                txn_response_code=rule.txn_response_code,
                acq_response_code=rule.acq_response_code,
                message=rule.message,
                migs_result="FAILURE",
            )
        if details.message is not None:
            obj["data"]["message"] = details.message
        return obj

    # -- the life of a payment ------------------------------------------------------------------

    def _new(
        self,
        key: PaymentKey,
        source: PaymentSource,
        *,
        save_card: bool = False,
        card: dict[str, Any] | None = None,
    ) -> Transaction:
        """A payment on ``key`` with the next transaction id; its Paymob object comes later."""
        return Transaction(
            self.ctx.tables.next_id("transaction"),
            key.order_id,
            key.integration_id,
            key.key,
            "payment",
            source.value,
            {},
            save_card=save_card,
            card=card,
        )

    def _hold(self, txn: Transaction, obj: dict[str, Any], state: str) -> Transaction:
        """Store a payment that waits for the payer (``pending_3ds``, ``pending_wallet``…)."""
        txn.obj = obj
        txn.state = state
        return self.ctx.tables.save_transaction(txn)

    def _finish(self, txn: Transaction, obj: dict[str, Any]) -> Transaction:
        """A payment's final Paymob object: settle it."""
        txn.obj = obj
        txn.state = "final"
        return self._settle(txn)

    def _created(self, txn: Transaction) -> datetime:
        """When a held payment began: its final object keeps that time (else now)."""
        return (
            payload_parts.parse_paymob_timestamp(
                str(txn.obj.get("created_at", "")), self.ctx.region
            )
            or self.ctx.now()
        )

    def _key(self, txn: Transaction) -> PaymentKey:
        return self.ctx.tables.keys[txn.key or ""]

    def waiting(self, txn_id: int, state: str) -> Transaction:
        """The transaction held in ``state`` for a hosted page, or that page's 404."""
        txn = self.ctx.tables.transactions.get(txn_id)
        if txn is None or txn.state != state:
            raise PageError(404, *NOT_WAITING[state])
        return txn

    def _settle(self, txn: Transaction) -> Transaction:
        """A transaction became final: update the order, the key, card tokens."""
        tables = self.ctx.tables
        key = tables.keys.get(txn.key or "")
        order = tables.orders[txn.order_id]
        obj = txn.obj
        if obj.get("success") and txn.kind == "payment":
            order.paid_amount_cents += int(obj["amount_cents"])
            if key is not None:
                key.used = True
                if key.lock_order_when_paid:
                    order.is_payment_locked = True
                tables.save_key(key)
            obj["order"] = self.orders.order_object(order, api=False)
            if key is not None and key.intention_id:
                intention = tables.intentions.get(key.intention_id)
                if intention is not None:
                    intention.status = "paid"
                    tables.save_intention(intention)
            tables.save_order(order)
            if txn.save_card and txn.source == "card" and txn.token_created is None:
                txn.token_created = self._save_card(txn).token
        status = (
            "APPROVED" if obj.get("success") else ("PENDING" if obj.get("pending") else "DECLINED")
        )
        detail = obj.get("data", {}).get("message", "")
        self.ctx.on_event(
            "transaction",
            f"transaction {txn.id} {status} {txn.source} "
            f"{self.ctx.money(int(obj['amount_cents']), str(obj['currency']))} order {txn.order_id}"
            + (f" — {detail}" if detail and status != "APPROVED" else ""),
        )
        return tables.save_transaction(txn)

    def _save_card(self, txn: Transaction) -> CardToken:
        info = txn.card or {}
        last4 = str(info.get("last4", "0000"))
        tables = self.ctx.tables
        token = CardToken(
            token=hex_id(28),
            id=tables.next_id("token"),
            masked_pan=f"xxxx-xxxx-xxxx-{last4}",
            last4=last4,
            card_subtype=str(info.get("brand", "MasterCard")),
            email=str(txn.obj["payment_key_claims"]["billing_data"].get("email", "")),
            order_id=txn.order_id,
            created_at=self.ctx.stamp(),
            behaviour=str(info.get("behaviour", Behaviour.APPROVE.value)),
            expiry=str(info.get("expiry", "")),
        )
        tables.tokens[token.token] = token
        tables.save("token", token.id, token)
        self.ctx.on_event(
            "token", f"card saved: token {token.token[:8]}… {token.card_subtype} {token.masked_pan}"
        )
        return token

    # -- cards ----------------------------------------------------------------------------------

    def _pay_card(
        self,
        key: PaymentKey,
        info: dict[str, Any],
        *,
        save_card: bool = False,
        api_source: str = "IFRAME",
    ) -> Transaction:
        """A typed or saved card: held for 3-D Secure when the card and integration want it,
        else final."""
        txn = self._new(key, PaymentSource.CARD, save_card=save_card, card=info)
        created = self.ctx.now()
        integration = self.ctx.integrations[key.integration_id]
        if info["behaviour"] == Behaviour.THREE_DS.value and integration.three_ds:
            details = Details(
                brand=CardBrand(info["brand"]),
                last4=str(info["last4"]),
                three_ds=True,
                api_source=api_source,
            )
            obj = self.build(key, Outcome.PENDING, PaymentSource.CARD, txn.id, created, details)
            return self._hold(txn, obj, "pending_3ds")
        return self._finish_card(txn, created=created, three_ds=False, api_source=api_source)

    def pay_with_card(
        self, key: PaymentKey, entry: cards.CardEntry, *, save_card: bool
    ) -> Transaction:
        """A card typed into the hosted checkout. Returns a pending_3ds or final transaction."""
        card = cards.lookup(entry.number)
        behaviour = card.behaviour if card else Behaviour.DECLINE
        info = {
            "brand": cards.brand_of(entry.number).value,
            "last4": entry.last4,
            "expiry": entry.expiry,
            "behaviour": behaviour.value,
            "known": card is not None,
        }
        txn = self._pay_card(key, info, save_card=save_card)
        if txn.state == "pending_3ds":
            self.ctx.on_event(
                "3ds", f"transaction {txn.id}: 3-D Secure OTP requested (test OTP {cards.OTP})"
            )
        return txn

    def _finish_card(
        self,
        txn: Transaction,
        *,
        created: datetime,
        three_ds: bool,
        otp_ok: bool = True,
        api_source: str = "IFRAME",
    ) -> Transaction:
        info = txn.card or {}
        expiry = str(info.get("expiry", ""))
        rule = cards.EXPIRY_RULES.get(expiry)
        code: str | None
        message: str | None
        if not otp_ok:
            outcome, rule, code, message = Outcome.AUTH_FAILED, None, None, None
        elif cards.is_expired(expiry, self.ctx.now().date()):
            outcome, rule, code, message = Outcome.DECLINED, cards.EXPIRED, None, None
        elif info.get("behaviour") == Behaviour.BLOCK.value:
            outcome, rule, code, message = Outcome.BLOCKED, None, None, None
        elif info.get("behaviour") == Behaviour.DECLINE.value:
            known = info.get("known", True)
            outcome, rule = Outcome.DECLINED, None
            code = "05" if known else "14"
            message = (
                "Do not honour"
                if known
                else "Invalid card number (test mode accepts test cards only)"
            )
        else:
            # The MPGS expiry convention turns an approval into the failure it names.
            outcome, code, message = (Outcome.DECLINED if rule else Outcome.APPROVED), None, None
        details = Details(
            brand=CardBrand(info.get("brand", CardBrand.MASTERCARD.value)),
            last4=str(info.get("last4", "0000")),
            three_ds=three_ds,
            rule=rule,
            decline_code=code,
            message=message,
            api_source=api_source,
        )
        obj = self.build(self._key(txn), outcome, PaymentSource.CARD, txn.id, created, details)
        return self._finish(txn, obj)

    def complete_3ds(self, txn_id: int, otp: str) -> Transaction:
        """The 3-D Secure page's OTP: the held card payment becomes final."""
        txn = self.waiting(txn_id, "pending_3ds")
        ok = hmac.compare_digest(otp.strip().encode(), cards.OTP.encode())
        return self._finish_card(
            txn,
            created=self._created(txn),
            three_ds=True,
            otp_ok=ok,
            api_source=str(txn.obj.get("api_source") or "IFRAME"),
        )

    # -- payments/pay: saved cards, wallets, kiosks ---------------------------------------------

    def pay_api(self, body: Mapping[str, Any], base: str) -> PayAnswer:
        """``POST /api/acceptance/payments/pay`` (docs/paymob.md §4)."""
        source = body.get("source")
        if not isinstance(source, dict):
            raise SandboxError(400, {"source": REQUIRED})
        subtype = str(source.get("subtype") or "").upper()
        identifier = source.get("identifier")
        if not subtype:
            raise SandboxError(400, {"source": {"subtype": REQUIRED}})
        if identifier in (None, ""):
            raise SandboxError(400, {"source": {"identifier": REQUIRED}})
        key = self.orders.api_key_for_pay(body.get("payment_token"))
        integration = self.ctx.integrations[key.integration_id]
        if subtype == "TOKEN":
            return self.pay_token(key, integration, str(identifier), base)
        if subtype == "WALLET":
            return self._pay_wallet(key, integration, str(identifier), base)
        if subtype == "AGGREGATOR":
            return self._pay_kiosk(key, integration)
        raise SandboxError(
            400,
            {
                "detail": f"subtype {subtype} is not supported by the paymobctl sandbox "
                "(TOKEN, WALLET and AGGREGATOR are)"
            },
        )

    def pay_token(
        self, key: PaymentKey, integration: Integration, identifier: str, base: str
    ) -> PayAnswer:
        """A saved card: the API's answer, and the completion unless 3-D Secure waits."""
        if integration.source is not PaymentSource.CARD:
            raise SandboxError(
                400,
                {
                    "detail": f"integration {integration.id} is a {integration.kind} integration: "
                    "saved-card payments need a MOTO (or card) integration"
                },
            )
        token = self.ctx.tables.tokens.get(identifier)
        if token is None:
            raise SandboxError(400, {"detail": "Invalid card token."})
        info = {
            "brand": token.card_subtype,
            "last4": token.last4,
            "expiry": token.expiry,
            "behaviour": token.behaviour,
            "known": True,
        }
        txn = self._pay_card(key, info, api_source="OTHER")
        digest = signing.compute(CallbackKind.TRANSACTION, txn.obj, self.ctx.creds.hmac_secret)
        record = redirects.pay_response(txn.obj, digest)
        if txn.state != "pending_3ds":
            return 200, record, self.deliveries.completion(txn)
        record.update(use_redirection=True, redirection_url=f"{base}/api/acceptance/acs/{txn.id}")
        self.ctx.on_event(
            "3ds",
            f"transaction {txn.id}: saved card needs 3-D Secure → {record['redirection_url']}",
        )
        return 200, record, None

    def _pay_wallet(
        self, key: PaymentKey, integration: Integration, number: str, base: str
    ) -> PayAnswer:
        if integration.source is not PaymentSource.WALLET:
            raise SandboxError(
                400, {"detail": f"integration {integration.id} is not a mobile wallet integration"}
            )
        txn = self._new(key, PaymentSource.WALLET)
        test_number = number == cards.WALLET_NUMBER
        details = Details(
            wallet_number=number,
            message=None
            if test_number
            else f"Test mode: use the test wallet number {cards.WALLET_NUMBER}",
        )
        outcome = Outcome.PENDING if test_number else Outcome.DECLINED
        obj = self.build(key, outcome, PaymentSource.WALLET, txn.id, self.ctx.now(), details)
        if not test_number:
            txn = self._finish(txn, obj)
            return 200, dict(obj), self.deliveries.completion(txn)
        page = f"{base}/api/acceptance/wallet/{txn.id}?payment_token={key.key}"
        obj["data"]["redirect_url"] = page
        self._hold(txn, obj, "pending_wallet")
        self.ctx.on_event(
            "wallet", f"transaction {txn.id}: wallet payment awaiting MPIN/OTP → {page}"
        )
        return 200, {**obj, "redirect_url": page, "iframe_redirection_url": page}, None

    def complete_wallet(self, txn_id: int, mpin: str, otp: str) -> Transaction:
        """The wallet page's MPIN and OTP: the held wallet payment becomes final."""
        txn = self.waiting(txn_id, "pending_wallet")
        ok = mpin.strip() == cards.WALLET_MPIN and otp.strip() == cards.WALLET_OTP
        obj = self.build(
            self._key(txn),
            Outcome.APPROVED if ok else Outcome.DECLINED,
            PaymentSource.WALLET,
            txn.id,
            self._created(txn),
            Details(message=None if ok else "Wrong MPIN or OTP"),
        )
        return self._finish(txn, obj)

    def _pay_kiosk(self, key: PaymentKey, integration: Integration) -> PayAnswer:
        if integration.source is not PaymentSource.KIOSK:
            raise SandboxError(
                400, {"detail": f"integration {integration.id} is not a kiosk integration"}
            )
        txn = self._new(key, PaymentSource.KIOSK)
        obj = self.build(key, Outcome.PENDING, PaymentSource.KIOSK, txn.id, self.ctx.now())
        self._hold(txn, obj, "pending_kiosk")
        reference = obj["data"]["bill_reference"]
        self.ctx.on_event(
            "kiosk",
            f"transaction {txn.id}: kiosk reference {reference} (pay it with "
            f"POST /_sandbox/kiosk/{reference}/pay)",
        )
        flat = {
            k: ("true" if v is True else "false" if v is False else v)
            for k, v in obj.items()
            if k in ("id", "pending", "success", "amount_cents", "currency")
        }
        return 200, {**obj, **flat}, None

    def pay_kiosk_reference(self, reference: int) -> Transaction:
        """The payer paid cash against ``reference``: its kiosk payment becomes final."""
        txn = next(
            (
                t
                for t in self.ctx.tables.transactions.values()
                if t.state == "pending_kiosk"
                and t.obj.get("data", {}).get("bill_reference") == reference
            ),
            None,
        )
        if txn is None:
            raise SandboxError(
                404, {"detail": f"no pending kiosk payment with reference {reference}"}
            )
        obj = self.build(
            self._key(txn),
            Outcome.APPROVED,
            PaymentSource.KIOSK,
            txn.id,
            self._created(txn),
            Details(bill_reference=reference),
        )
        return self._finish(txn, obj)
