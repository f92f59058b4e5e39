"""What happens to a payment afterwards: refund, void, capture (child transactions), and
looking transactions up (by id, or the inquiry by order; docs/paymob.md §4, §6)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from decimal import Decimal
from typing import Any

from paymobctl.emulator.context import Context
from paymobctl.emulator.payments import Details, Payments
from paymobctl.emulator.records import Order, PaymentKey, Transaction
from paymobctl.emulator.validation import SandboxError, int_field, required_int
from paymobctl.models import CardBrand, Outcome, PaymentSource, currency_exponent


class Ledger:
    """Refunds, voids and captures payments; finds transactions."""

    def __init__(self, ctx: Context, payments: Payments) -> None:
        self.ctx = ctx
        self.payments = payments

    # -- retrieval and inquiry ------------------------------------------------------------------

    def get_transaction(self, txn_id: int) -> Transaction:
        """``GET /api/acceptance/transactions/{id}``'s transaction, else a 404."""
        txn = self.ctx.tables.transactions.get(txn_id)
        if txn is None:
            raise SandboxError(404, {"detail": "Not found."})
        return txn

    def inquiry(self, body: Mapping[str, Any]) -> Transaction:
        """``POST /api/ecommerce/orders/transaction_inquiry``: the order's latest transaction."""
        tables = self.ctx.tables
        order_id = body.get("order_id")
        merchant_order_id = body.get("merchant_order_id")
        if order_id in (None, "") and merchant_order_id in (None, ""):
            raise SandboxError(400, {"detail": "order_id or merchant_order_id is required"})
        order: Order | None = None
        if order_id not in (None, ""):
            order = tables.orders.get(int_field(body, "order_id") or 0)
        else:
            order = next(
                (
                    o
                    for o in tables.orders.values()
                    if o.merchant_order_id == str(merchant_order_id)
                ),
                None,
            )
        if order is None:
            raise SandboxError(404, {"detail": "Not found."})
        mine = [t for t in tables.transactions.values() if t.order_id == order.id]
        if not mine:
            raise SandboxError(404, {"detail": f"Order {order.id} has no transactions yet."})
        return max(mine, key=lambda t: t.id)

    # -- refund, void, capture ------------------------------------------------------------------

    def _parent(self, body: Mapping[str, Any]) -> Transaction:
        parent = self.ctx.tables.transactions.get(int_field(body, "transaction_id") or 0)
        if parent is None:
            raise SandboxError(404, {"detail": "Invalid transaction id"})
        return parent

    def _child(self, parent: Transaction, outcome: Outcome, amount: int) -> Transaction:
        tables = self.ctx.tables
        key = tables.keys.get(parent.key or "")
        assert key is not None
        child_key = PaymentKey(**{**asdict(key), "amount_cents": amount})
        txn_id = tables.next_id("transaction")
        info = parent.card or {}
        details = Details(
            brand=CardBrand(info.get("brand", CardBrand.MASTERCARD.value)),
            last4=str(info.get("last4", "2346")),
            parent_id=parent.id,
        )
        source = PaymentSource(parent.source)
        obj = self.payments.build(child_key, outcome, source, txn_id, self.ctx.now(), details)
        child = Transaction(
            txn_id,
            parent.order_id,
            parent.integration_id,
            parent.key,
            outcome.value,
            parent.source,
            obj,
            parent_id=parent.id,
            card=parent.card,
        )
        self.ctx.on_event(
            outcome.value,
            f"transaction {txn_id}: {outcome.value} of {parent.id} "
            f"{self.ctx.money(amount, str(obj['currency']))}",
        )
        return tables.save_transaction(child)

    @staticmethod
    def _refundable(parent: Transaction) -> int:
        obj = parent.obj
        base = (
            int(obj.get("captured_amount") or 0) if obj.get("is_auth") else int(obj["amount_cents"])
        )
        return base - int(obj.get("refunded_amount_cents") or 0)

    def refund(self, body: Mapping[str, Any]) -> Transaction:
        """``POST /api/acceptance/void_refund/refund``: a refund child of a successful payment."""
        parent = self._parent(body)
        amount = required_int(body, "amount_cents")
        obj = parent.obj
        if parent.kind != "payment" or not obj.get("success") or obj.get("pending"):
            raise SandboxError(
                400,
                {
                    "detail": "Transaction is not refundable: only successful payments can be refunded"
                },
            )
        if obj.get("is_voided"):
            raise SandboxError(400, {"detail": "Transaction is voided and cannot be refunded"})
        if parent.source == "kiosk":
            raise SandboxError(400, {"detail": "Kiosk payments cannot be refunded"})
        refundable = self._refundable(parent)
        if amount > refundable:
            major = Decimal(refundable).scaleb(-currency_exponent(str(obj["currency"])))
            text = f"{major:.1f}" if major == major.to_integral_value() else f"{major.normalize()}"
            raise SandboxError(
                400,
                {
                    "message": "Requested Refund Amount is greater than the maximum refund amount "
                    f"permissible. Maximum Refund Amount is {obj['currency']} {text}"
                },
            )
        child = self._child(parent, Outcome.REFUND, amount)
        obj["refunded_amount_cents"] = int(obj.get("refunded_amount_cents") or 0) + amount
        obj["is_refunded"] = True
        self.ctx.tables.save_transaction(parent)
        return child

    def void(self, body: Mapping[str, Any]) -> Transaction:
        """``POST /api/acceptance/void_refund/void``: a void child of a successful card payment."""
        parent = self._parent(body)
        obj = parent.obj
        if parent.kind != "payment" or parent.source != "card" or not obj.get("success"):
            raise SandboxError(
                400, {"detail": "Transaction can not be voided: only successful card payments can"}
            )
        if obj.get("is_voided"):
            raise SandboxError(400, {"detail": "Transaction is already voided"})
        if obj.get("is_refunded"):
            raise SandboxError(400, {"detail": "Transaction is refunded and can not be voided"})
        child = self._child(parent, Outcome.VOID, int(obj["amount_cents"]))
        obj["is_voided"] = True
        self.ctx.tables.save_transaction(parent)
        return child

    def capture(self, body: Mapping[str, Any]) -> Transaction:
        """``POST /api/acceptance/capture``: a capture child of an authorisation."""
        parent = self._parent(body)
        amount = required_int(body, "amount_cents")
        obj = parent.obj
        if not obj.get("is_auth") or not obj.get("success"):
            raise SandboxError(
                400, {"detail": "Transaction is not an authorization: nothing to capture"}
            )
        if obj.get("is_voided"):
            raise SandboxError(400, {"detail": "Transaction is voided"})
        remaining = int(obj["amount_cents"]) - int(obj.get("captured_amount") or 0)
        if amount > remaining:
            raise SandboxError(400, {"detail": "Capture amount cannot exceed auth amount"})
        child = self._child(parent, Outcome.CAPTURE, amount)
        obj["captured_amount"] = int(obj.get("captured_amount") or 0) + amount
        obj["is_captured"] = True
        order = self.ctx.tables.orders[parent.order_id]
        order.paid_amount_cents += amount
        self.ctx.tables.save_order(order)
        self.ctx.tables.save_transaction(parent)
        return child
