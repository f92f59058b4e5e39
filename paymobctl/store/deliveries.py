"""What the sending side records: HMAC checks and delivered callbacks (simulate, replay)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from paymobctl import pans
from paymobctl.models import mask_url_credentials
from paymobctl.store.connection import StoreBase, _masked, utc_now
from paymobctl.store.records import Delivery, HmacCheck, _delivery, _hmac_check, dumps


class DeliveryQueries(StoreBase):
    """HMAC checks and deliveries."""

    # -- hmac checks --------------------------------------------------------------------------

    def record_hmac_check(
        self,
        *,
        kind: str,
        valid: bool,
        convention: str | None,
        profile: str | None,
        origin: str | None,
    ) -> int:
        """Record one HMAC verification (never the secret or the payload)."""
        return self._write(
            "INSERT INTO hmac_checks (created_at, kind, valid, convention, profile, origin)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (utc_now(), kind, int(valid), convention, profile, _masked(origin)[0]),
        )

    # -- deliveries (simulate, replay) ----------------------------------------------------------

    def record_delivery(
        self,
        *,
        origin: str,
        kind: str,
        method: str,
        url: str,
        request_headers: Sequence[tuple[str, str]],
        request_body: bytes | None,
        signature: str,
        outcome: str | None = None,
        source: str | None = None,
        transaction_id: int | None = None,
        order_id: int | None = None,
        merchant_order_id: str | None = None,
        payload: Any = None,
        status: int | None = None,
        latency_ms: float | None = None,
        response_headers: Sequence[tuple[str, str]] = (),
        response_excerpt: str | None = None,
        error: str | None = None,
    ) -> int:
        """Store one delivery. Full card numbers in the body or payload are masked first."""
        body, body_count = pans.mask_body(request_body) if request_body is not None else (None, 0)
        masked_value, payload_count = pans.mask_value(payload)
        payload_text = dumps(masked_value) if payload is not None else None
        url_text, url_count = pans.mask_text(mask_url_credentials(url))  # user:****@
        headers, header_count = pans.mask_pairs(list(request_headers))
        answer_headers, answer_count = pans.mask_pairs(list(response_headers))
        response_excerpt, excerpt_hit = _masked(response_excerpt)
        error, error_hit = _masked(error)
        merchant_order_id, merchant_hit = _masked(merchant_order_id)
        masked = (
            body_count + payload_count + url_count + header_count + answer_count > 0
            or excerpt_hit
            or error_hit
            or merchant_hit
        )
        return self._write(
            "INSERT INTO deliveries (created_at, origin, kind, outcome, source, method, url,"
            " request_headers, request_body, signature, transaction_id, order_id, merchant_order_id,"
            " payload, status, latency_ms, response_headers, response_excerpt, error, pan_masked)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                utc_now(),
                origin,
                kind,
                outcome,
                source,
                method,
                url_text,
                dumps(headers),
                body,
                signature,
                None if pans.is_pan_number(transaction_id) else transaction_id,
                None if pans.is_pan_number(order_id) else order_id,
                merchant_order_id,
                payload_text,
                status,
                latency_ms,
                dumps(answer_headers),
                response_excerpt,
                error,
                int(masked),
            ),
        )

    def deliveries(self, *, limit: int = 50, kind: str | None = None) -> list[Delivery]:
        """The newest deliveries, optionally of one kind."""
        rows = self._newest("SELECT * FROM deliveries", {"kind = ?": kind}, limit)
        return [_delivery(row) for row in rows]

    def delivery(self, delivery_id: int) -> Delivery | None:
        """One delivery by id, or None."""
        rows = self._query("SELECT * FROM deliveries WHERE id = ?", (delivery_id,))
        return _delivery(rows[0]) if rows else None

    def latest_transaction_payload(self, order_id: int) -> dict[str, Any] | None:
        """The obj of the last TRANSACTION simulated for ``order_id`` (to match a TOKEN to it)."""
        rows = self._query(
            "SELECT payload FROM deliveries WHERE order_id = ? AND kind IN ('TRANSACTION', 'RESPONSE')"
            " AND payload IS NOT NULL ORDER BY id DESC LIMIT 1",
            (order_id,),
        )
        if not rows:
            return None
        value = json.loads(rows[0]["payload"])
        return value if isinstance(value, dict) else None

    def is_simulated_token(self, token: str) -> bool:
        """Whether ``simulate token`` made this card token up. Deliveries are stored with card
        numbers masked, so a token is compared in that same masked form."""
        masked, _ = pans.mask_text(token)
        return masked in self.simulated_tokens()

    def simulated_tokens(self) -> set[str]:
        """Card tokens ``simulate token`` made up (sent or printed; as stored, card numbers
        masked): no server can charge them."""
        rows = self._query(
            "SELECT payload FROM deliveries WHERE kind = 'TOKEN' AND origin IN ('simulate', 'print')"
            " AND payload IS NOT NULL"
        )
        found = set()
        for row in rows:
            try:
                payload = json.loads(row["payload"])
            except ValueError:
                continue
            if isinstance(payload, dict) and isinstance(payload.get("token"), str):
                found.add(payload["token"])
        return found

    def hmac_checks(self, limit: int = 50) -> list[HmacCheck]:
        """The newest recorded HMAC verifications."""
        rows = self._query("SELECT * FROM hmac_checks ORDER BY id DESC LIMIT ?", (limit,))
        return [_hmac_check(row) for row in rows]
