"""What ``listen`` records: received requests, their effects on deposits and cards, forwards."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any

from paymobctl import pans
from paymobctl.models import DepositStatus
from paymobctl.store.connection import StoreBase, _masked, _storable, _storable_text, utc_now
from paymobctl.store.deposits import apply_change
from paymobctl.store.records import (
    Event,
    ForwardAttempt,
    NewEvent,
    StoredEvent,
    _event,
    _row_dict,
    dumps,
)


def _transaction_effect(
    conn: sqlite3.Connection, event: NewEvent, event_id: int, now: str
) -> str | None:
    """A verified TRANSACTION's effect on its deposit, as ``payments.deposit_change`` (the one
    owner of deposit state) decides it, applied under the same transaction as the event.

    Everything used here is signed (docs/paymob.md §8.1): ``success``, ``pending``, the kind of
    child (from ``has_parent_transaction``, ``is_capture``, ``is_voided``: receiver._child),
    ``amount_cents``, ``currency`` and ``order.id``; and only when the signed amount and
    currency fit the deposit. A mismatch leaves the deposit as it was and says so in the
    event's ``problem`` (``events show``) and in the effect (``listen``'s line).
    """
    from paymobctl.payments import DepositFacts, Mismatch, PaymentFacts, deposit_change

    row = conn.execute(
        "SELECT id, amount_cents, currency, refunded_cents FROM deposits"
        " WHERE id = (SELECT max(id) FROM deposits WHERE order_id = ?)",
        (event.order_id,),
    ).fetchone()
    if row is None:
        return None
    deposit = DepositFacts(*row)
    payment = PaymentFacts(
        success=bool(event.success),
        transaction_id=event.transaction_id,
        amount_cents=event.amount_cents,
        currency=event.currency,
        child=event.child,
        reason=event.message,
    )
    change = deposit_change(deposit, payment)
    if change is None:
        return None
    if isinstance(change, Mismatch):
        conn.execute(
            "UPDATE events SET problem = CASE WHEN problem IS NULL THEN ? ELSE problem || '; ' || ? END"
            " WHERE id = ?",
            (change.problem, change.problem, event_id),
        )
        return change.effect
    if change.status == DepositStatus.REFUNDED:
        # Refunds add up over distinct signed child transaction ids (a redelivery with a new
        # signature, or a replay, of the same child is counted once).
        counted = conn.execute(
            "SELECT 1 FROM events WHERE transaction_id = ? AND kind = 'TRANSACTION'"
            " AND verdict = 'valid' AND id != ? LIMIT 1",
            (event.transaction_id, event_id),
        ).fetchone()
        if counted is not None:
            return None
    return change.effect if apply_change(conn, deposit.id, change, now) else None


# Insert a received request; a redelivery (same type, object id, HMAC) only bumps the first row's
# counter. RETURNING tells which happened: duplicates is 0 for a new row.
_UPSERT_EVENT = (
    "INSERT INTO events (received_at, method, path, query, headers, body, remote, kind, status, verdict,"
    " convention, hmac, object_id, transaction_id, order_id, merchant_order_id, success, pending,"
    " amount_cents, currency, problem, pan_masked, dedup_key, truncated)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (dedup_key) WHERE dedup_key IS NOT NULL"
    " DO UPDATE SET duplicates = duplicates + 1, last_seen_at = excluded.received_at"
    " RETURNING id, duplicates, pan_masked"
)


class EventQueries(StoreBase):
    """The ``events`` and ``forward_attempts`` tables, and the effects of verified callbacks."""

    def latest_webhook_transaction(
        self, *, order_id: int | None = None, merchant_order_id: str | None = None
    ) -> dict[str, Any] | None:
        """The ``obj`` of the newest verified TRANSACTION callback ``listen`` stored for an order
        (by id or merchant order id): what `status` shows when the server has no inquiry."""
        if order_id is None and not merchant_order_id:
            return None
        rows = self._query(
            "SELECT body FROM events WHERE kind = 'TRANSACTION' AND verdict = 'valid' AND"
            " (order_id = ? OR (? IS NULL AND merchant_order_id = ?)) ORDER BY id DESC LIMIT 1",
            (order_id, order_id, merchant_order_id),
        )
        if not rows:
            return None
        try:
            body = json.loads(rows[0]["body"])
        except ValueError:
            return None
        obj = body.get("obj") if isinstance(body, dict) else None
        return obj if isinstance(obj, dict) else None

    # -- events (listen) -------------------------------------------------------------------------

    def record_event(self, event: NewEvent) -> StoredEvent:
        """Store one received request (and its effects) before it is answered."""
        return self.record_events([event])[0]

    def record_events(self, events: Sequence[NewEvent]) -> list[StoredEvent]:
        """Store received requests and apply their effects in one transaction (a group commit).

        A redelivery (same type, object id and HMAC) is stored once: the first row counts it.
        Full card numbers are masked before anything is written. One commit for a few
        concurrent callbacks costs less than one each (scripts/bench_listen.py).
        """
        now = utc_now()
        rows = [self._event_params(event, now) for event in events]
        affecting = any(self._may_affect(event) for event in events)
        deposits = self._link_intention_deposits(events) if affecting else set()
        needs_effects = [
            self._may_affect(event) and (event.kind == "TOKEN" or event.order_id in deposits)
            for event in events
        ]
        results: list[StoredEvent] = []
        if len(events) == 1 and not needs_effects[0]:  # one statement is its own transaction
            with self._lock:
                try:
                    row = self._conn.execute(_UPSERT_EVENT, rows[0][0]).fetchone()
                except sqlite3.Error as exc:
                    raise self._fail(exc, "write to") from None
            return [StoredEvent(row[0], row[1] > 0, row[1], bool(row[2]), None)]
        with self._transaction() as conn:
            for event, (params, masked), effects in zip(events, rows, needs_effects, strict=True):
                row = conn.execute(_UPSERT_EVENT, params).fetchone()
                duplicate = row[1] > 0
                effect = (
                    self._apply_effects(conn, event, row[0], now)
                    if effects and not duplicate
                    else None
                )
                results.append(
                    StoredEvent(row[0], duplicate, row[1], bool(row[2]) or masked, effect)
                )
        return results

    @staticmethod
    def _may_affect(event: NewEvent) -> bool:
        if event.verdict != "valid":
            return False
        if event.kind == "TOKEN":
            return event.token is not None
        return event.kind == "TRANSACTION" and event.order_id is not None and not event.pending

    @staticmethod
    def _event_params(event: NewEvent, now: str) -> tuple[tuple[Any, ...], bool]:
        path, merchant_order_id, object_id, problem = (
            event.path,
            event.merchant_order_id,
            event.object_id,
            event.problem,
        )
        transaction_id, order_id = event.transaction_id, event.order_id
        hmac, currency = event.hmac, event.currency
        digest = hmac is None or pans.is_digest(hmac)  # a real HMAC: never masked, skip it
        texts = (
            path,
            merchant_order_id or "",
            object_id or "",
            problem or "",
            "" if digest else hmac or "",
            currency or "",
        )
        if not (
            pans.might_hold_card_data(event.body, event.query, event.headers, texts)
            or pans.is_pan_number(order_id)
            or pans.is_pan_number(transaction_id)
        ):
            # The common case, decided by one scan of the whole request: nothing to mask.
            body, query, headers_list, masked = event.body, event.query, event.headers, False
        else:
            body, body_count = pans.mask_body(event.body)
            query, query_count = pans.mask_query(event.query)
            headers_list, header_count = pans.mask_pairs(event.headers)
            path, hit1 = pans.mask_text(path)
            merchant_order_id, hit2 = _masked(merchant_order_id)
            object_id, hit3 = _masked(object_id)
            problem, hit4 = _masked(problem)
            hmac, hit5 = _masked(hmac)
            currency, hit6 = _masked(currency)
            hit7 = pans.is_pan_number(order_id) or pans.is_pan_number(transaction_id)
            order_id = None if pans.is_pan_number(order_id) else order_id
            transaction_id = None if pans.is_pan_number(transaction_id) else transaction_id
            masked_other = bool(hit1) or hit2 or hit3 or hit4 or hit5 or hit6 or hit7
            masked = body_count + query_count + header_count > 0 or masked_other
        headers = dumps(headers_list)
        dedup = (
            # Only a verified request can be a redelivery; a tampered one is kept on its own.
            # The signature, not the fields' split, identifies a callback: the same signed string
            # with digits moved between adjacent ids (id|integration_id) is still a redelivery.
            f"{event.kind}:{event.hmac[:32]}"
            if event.hmac and object_id and event.verdict == "valid"
            else None
        )
        params = (
            now,
            event.method,
            path,
            query or "",
            headers,
            body or b"",
            event.remote,
            event.kind,
            event.status,
            event.verdict,
            event.convention,
            hmac,
            object_id,
            transaction_id,
            order_id,
            merchant_order_id,
            None if event.success is None else int(event.success),
            None if event.pending is None else int(event.pending),
            event.amount_cents,
            currency,
            problem,
            int(masked),
            dedup,
            int(event.truncated),
        )
        # Text SQLite can store: only forged input holds a lone surrogate (rare: one check
        # over the row's text first).
        if not "".join([v for v in params if type(v) is str]).isascii():
            params = tuple(_storable(value) for value in params)
        return params, masked

    def _deposit_orders(self) -> set[int]:
        """Order ids that have a deposit, from a cache reloaded whenever another connection
        committed (``PRAGMA data_version`` changed): one pragma per batch of callbacks on the
        hot path of ``listen`` instead of a query per callback. Deposits are created before
        their checkout URL exists, so no callback can arrive before its deposit."""
        version = self._query("PRAGMA data_version")[0][0]
        if version != self._deposit_cache_version or self._deposit_cache is None:
            rows = self._query("SELECT order_id, merchant_order_id FROM deposits")
            self._deposit_cache = {row[0] for row in rows if row[0] is not None}
            self._unlinked_cache = {row[1] for row in rows if row[0] is None and row[1]}
            self._deposit_cache_version = version
        return self._deposit_cache

    def _link_intention_deposits(self, events: Sequence[NewEvent]) -> set[int]:
        """Give an intention deposit recorded without its order id (the server's answer lacked
        ``intention_order_id``) the order of the first verified payment callback that carries
        its reference. ``merchant_order_id`` (the intention's ``special_reference``) is not
        signed, so the signed ``amount_cents`` and ``currency`` must match the deposit too.
        Returns the order ids that have a deposit (:meth:`_deposit_orders`), linked ones included."""
        known = self._deposit_orders()
        candidates = [
            event
            for event in events
            if self._may_affect(event)
            and event.kind == "TRANSACTION"
            and not event.child
            and event.order_id not in known
            and event.merchant_order_id in self._unlinked_cache
        ]
        if not candidates:
            return known
        with self._transaction() as conn:
            for event in candidates:
                conn.execute(
                    "UPDATE deposits SET order_id = ?, updated_at = ? WHERE id = (SELECT max(id)"
                    " FROM deposits WHERE order_id IS NULL AND merchant_order_id = ?"
                    " AND amount_cents = ? AND currency = ?)",
                    (event.order_id, utc_now(), event.merchant_order_id, event.amount_cents,
                     event.currency),
                )  # fmt: skip
        self._deposit_cache = None
        return self._deposit_orders()

    @staticmethod
    def _apply_effects(
        conn: sqlite3.Connection, event: NewEvent, event_id: int, now: str
    ) -> str | None:
        """What the guide's backend does with a verified callback, mirrored in the store."""
        if event.kind == "TOKEN" and event.token:
            token = event.token
            if not isinstance(token.get("token"), str) or not token["token"]:
                return "TOKEN callback without a card token: nothing saved"
            masked_pan, _ = pans.mask_text(_storable_text(token.get("masked_pan")) or "")
            inserted = conn.execute(
                "INSERT INTO payment_methods (created_at, token, masked_pan, card_subtype, email, order_id,"
                " paymob_id, event_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (token) DO NOTHING",
                (
                    now,
                    _storable(str(token.get("token"))),
                    masked_pan,
                    _storable_text(token.get("card_subtype")),
                    _storable_text(token.get("email")),
                    event.order_id,
                    token.get("id") if isinstance(token.get("id"), int) else None,
                    event_id,
                ),
            ).rowcount
            return f"card saved ({token.get('card_subtype')} {masked_pan})" if inserted else None
        if event.kind != "TRANSACTION" or event.order_id is None or event.pending:
            return None
        return _transaction_effect(conn, event, event_id, now)

    def events(
        self,
        *,
        kind: str | None = None,
        invalid: bool = False,
        since: str | None = None,
        limit: int | None = 50,
        ascending: bool = False,
        after_id: int | None = None,
    ) -> list[Event]:
        """Received requests, newest first (or ascending), filtered by kind, verdict, time or id."""
        sql = "SELECT * FROM events WHERE 1 = 1"
        params: list[Any] = []
        if after_id is not None:
            sql += " AND id > ?"
            params.append(after_id)
        if kind:
            sql += " AND kind = ?"
            params.append(kind)
        if invalid:
            sql += " AND verdict != 'valid'"
        if since:
            sql += " AND received_at >= ?"
            params.append(since)
        sql += f" ORDER BY id {'ASC' if ascending else 'DESC'}"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        return [_event(row) for row in self._query(sql, params)]

    def event(self, event_id: int) -> Event | None:
        """One received request by id, or None."""
        rows = self._query("SELECT * FROM events WHERE id = ?", (event_id,))
        return _event(rows[0]) if rows else None

    def amount_mismatch(self, order_id: int) -> str | None:
        """The newest "amount mismatch" a verified callback for ``order_id`` was refused with."""
        rows = self._query(
            "SELECT problem FROM events WHERE order_id = ? AND verdict = 'valid'"
            " AND problem LIKE '%amount mismatch%' ORDER BY id DESC LIMIT 1",
            (order_id,),
        )
        if not rows:
            return None
        text = str(rows[0][0])
        return text[text.index("amount mismatch") :]

    def count_events(self) -> int:
        """How many requests ``listen`` stored."""
        return int(self._query("SELECT count(*) FROM events")[0][0])

    def record_forward_attempt(
        self,
        *,
        event_id: int,
        target: str,
        attempt: int,
        status: int | None,
        latency_ms: float | None,
        error: str | None,
        excerpt: str | None,
    ) -> int:
        """Record one attempt at forwarding a received request (masked)."""
        return self._write(
            "INSERT INTO forward_attempts (event_id, target, attempt, at, status, latency_ms, error, excerpt)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                event_id,
                pans.mask_text(target)[0],
                attempt,
                utc_now(),
                status,
                latency_ms,
                _masked(error)[0],
                _masked(excerpt)[0],
            ),
        )

    def forward_attempts(self, event_id: int) -> list[ForwardAttempt]:
        """The forwarding attempts of one received request, oldest first."""
        rows = self._query(
            "SELECT * FROM forward_attempts WHERE event_id = ? ORDER BY id", (event_id,)
        )
        return [ForwardAttempt(**_row_dict(row)) for row in rows]
