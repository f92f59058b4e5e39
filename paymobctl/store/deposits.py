"""Deposits (``deposit``, ``listen``'s effects) and saved cards."""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING

from paymobctl import pans
from paymobctl.models import DepositStatus
from paymobctl.store.connection import StoreBase, utc_now

if TYPE_CHECKING:  # the records load with the first query that returns one
    from paymobctl.payments import DepositChange
    from paymobctl.store.records import Deposit, PaymentMethod


# The only statements that change a deposit's status, one per new status (payments.DepositChange);
# each is guarded by the statuses the change may start from (:first, :second), so a paid deposit is
# never downgraded by a late or concurrent writer. Named parameters: sqlite3 deprecates numbered
# ones bound from a sequence (Python 3.12).
_CHANGES: dict[DepositStatus, str] = {
    DepositStatus.PAID: "UPDATE deposits SET status = 'paid', transaction_id = COALESCE(:transaction_id,"
    " transaction_id), paid_at = COALESCE(paid_at, :now), decline_reason = NULL, updated_at = :now"
    " WHERE id = :deposit AND status IN (:first, :second)",
    DepositStatus.DECLINED: "UPDATE deposits SET status = 'declined', transaction_id ="
    " COALESCE(:transaction_id, transaction_id), decline_reason = :reason, updated_at = :now"
    " WHERE id = :deposit AND status IN (:first, :second)",
    DepositStatus.FAILED: "UPDATE deposits SET status = 'failed', decline_reason = :reason,"
    " updated_at = :now WHERE id = :deposit AND status IN (:first, :second)",
    DepositStatus.VOIDED: "UPDATE deposits SET status = 'voided', updated_at = :now"
    " WHERE id = :deposit AND status IN (:first, :second)",
    DepositStatus.REFUNDED: "UPDATE deposits SET refunded_cents = refunded_cents + :refund, status ="
    " CASE WHEN refunded_cents + :refund >= amount_cents THEN 'refunded' ELSE status END,"
    " updated_at = :now WHERE id = :deposit AND status IN (:first, :second)",
}


def apply_change(
    conn: sqlite3.Connection, deposit_id: int, change: DepositChange, now: str
) -> bool:
    """Run the guarded UPDATE of one deposit (in the caller's transaction); whether it applied."""
    first, *more = change.allowed
    second = more[0] if more else first
    assert len(more) <= 1, "a change starts from at most two statuses"
    reason = pans.mask_text(change.reason)[0] if change.reason is not None else None
    params = {
        "transaction_id": change.transaction_id,
        "reason": reason,
        "refund": change.refund_cents,
        "now": now,
        "deposit": deposit_id,
        "first": first,
        "second": second,
    }
    return conn.execute(_CHANGES[change.status], params).rowcount > 0


class DepositQueries(StoreBase):
    """The ``deposits`` and ``payment_methods`` tables."""

    def set_checkout_url(self, deposit_id: int, url: str) -> Deposit:
        """The checkout URL of a deposit recorded as soon as its order existed."""
        self._write(
            "UPDATE deposits SET checkout_url = ?, updated_at = ? WHERE id = ?",
            (url, utc_now(), deposit_id),
        )
        deposit = self.deposit(deposit_id)
        assert deposit is not None
        return deposit

    def link_deposit_order(self, deposit_id: int, order_id: int) -> Deposit:
        """Record the order id learnt for a deposit created without one (inquiry, webhook)."""
        self._deposit_cache = None
        self._write(
            "UPDATE deposits SET order_id = ?, updated_at = ? WHERE id = ? AND order_id IS NULL",
            (order_id, utc_now(), deposit_id),
        )
        deposit = self.deposit(deposit_id)
        assert deposit is not None
        return deposit

    # -- deposits and saved cards -------------------------------------------------------------

    def create_deposit(
        self,
        *,
        profile: str,
        mode: str,
        flow: str,
        base_url: str,
        order_id: int | None,
        merchant_order_id: str | None,
        intention_id: str | None,
        amount_cents: int,
        currency: str,
        checkout_url: str,
        expires_at: str | None,
        save_card: bool,
    ) -> Deposit:
        """Record a deposit as soon as the server created its order or intention."""
        now = utc_now()
        self._deposit_cache = None
        deposit_id = self._write(
            "INSERT INTO deposits (created_at, profile, mode, flow, base_url, order_id, merchant_order_id,"
            " intention_id, amount_cents, currency, checkout_url, expires_at, save_card, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                now,
                profile,
                mode,
                flow,
                base_url,
                order_id,
                merchant_order_id,
                intention_id,
                amount_cents,
                currency,
                checkout_url,
                expires_at,
                int(save_card),
                now,
            ),
        )
        deposit = self.deposit(deposit_id)
        assert deposit is not None
        return deposit

    def deposit(self, deposit_id: int) -> Deposit | None:
        """One deposit by id, or None."""
        from paymobctl.store.records import _deposit

        rows = self._query("SELECT * FROM deposits WHERE id = ?", (deposit_id,))
        return _deposit(rows[0]) if rows else None

    def deposit_by_order(self, order_id: int) -> Deposit | None:
        """The newest deposit for a Paymob order id, or None."""
        from paymobctl.store.records import _deposit

        rows = self._query(
            "SELECT * FROM deposits WHERE order_id = ? ORDER BY id DESC LIMIT 1", (order_id,)
        )
        return _deposit(rows[0]) if rows else None

    def deposits(
        self, *, profile: str | None = None, status: DepositStatus | None = None, limit: int = 50
    ) -> list[Deposit]:
        """The newest deposits, optionally of one profile and status."""
        from paymobctl.store.records import _deposit

        rows = self._newest(
            "SELECT * FROM deposits", {"profile = ?": profile, "status = ?": status}, limit
        )
        return [_deposit(row) for row in rows]

    def apply_deposit_change(self, deposit_id: int, change: DepositChange) -> Deposit:
        """Apply a change ``payments.deposit_change`` decided (guarded by the deposit's status:
        nothing happens when it is no longer one the change may start from)."""
        with self._transaction() as conn:
            apply_change(conn, deposit_id, change, utc_now())
        deposit = self.deposit(deposit_id)
        assert deposit is not None
        return deposit

    def paid_total(self, profile: str, currency: str) -> tuple[int, int]:
        """(count, sum of amount_cents) of the profile's paid deposits in ``currency``."""
        row = self._query(
            "SELECT count(*), coalesce(sum(amount_cents - refunded_cents), 0) FROM deposits"
            " WHERE profile = ? AND currency = ? AND status IN ('paid', 'refunded')",
            (profile, currency),
        )[0]
        return int(row[0]), int(row[1])

    def payment_methods(self, *, include_removed: bool = False) -> list[PaymentMethod]:
        """Saved cards, newest first (removed ones only when asked)."""
        from paymobctl.store.records import _payment_method

        sql = "SELECT * FROM payment_methods"
        if not include_removed:
            sql += " WHERE removed = 0"
        sql += " ORDER BY id DESC"
        return [_payment_method(row) for row in self._query(sql)]

    def payment_method(self, method_id: int) -> PaymentMethod | None:
        """One saved card by id, or None."""
        from paymobctl.store.records import _payment_method

        rows = self._query("SELECT * FROM payment_methods WHERE id = ?", (method_id,))
        return _payment_method(rows[0]) if rows else None

    def save_payment_method(
        self,
        *,
        token: str,
        masked_pan: str,
        card_subtype: str | None,
        email: str | None,
        order_id: int | None,
        paymob_id: int | None = None,
    ) -> PaymentMethod:
        """Save a card token (its masked PAN masked again); a removed one comes back."""
        masked, _ = pans.mask_text(masked_pan)
        self._write(
            "INSERT INTO payment_methods (created_at, token, masked_pan, card_subtype, email, order_id, paymob_id)"
            " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (token) DO UPDATE SET removed = 0",
            (utc_now(), token, masked, card_subtype, email, order_id, paymob_id),
        )
        row = self._query("SELECT * FROM payment_methods WHERE token = ?", (token,))[0]
        from paymobctl.store.records import _payment_method

        return _payment_method(row)

    def remove_payment_method(self, method_id: int) -> bool:
        """Mark a saved card removed; False when there was none to remove."""
        with self._lock:
            try:
                return (
                    self._conn.execute(
                        "UPDATE payment_methods SET removed = 1 WHERE id = ? AND removed = 0",
                        (method_id,),
                    ).rowcount
                    > 0
                )
            except sqlite3.Error as exc:
                raise self._fail(exc, "write to") from None
