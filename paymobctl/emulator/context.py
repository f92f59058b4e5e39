"""What every part of the sandbox shares: its credentials and integrations, the clock, the
event sink, the tables of objects, the callback URLs, and how it makes tokens and ids."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from paymobctl import payload_parts
from paymobctl.emulator.persistence import Tables
from paymobctl.emulator.records import Integration
from paymobctl.emulator.validation import SandboxError, find_integration, url_errors
from paymobctl.models import Region, format_amount, mask_pans
from paymobctl.sandbox_profile import SandboxCredentials

Event = Callable[[str, str], None]  # (category, message)


def hex_id(nbytes: int) -> str:
    """A random hex identifier with no run of digits that reads as a card number: card-number
    masking (stores, logs) must never alter a token or client secret (~0.3% of raw ones)."""
    while True:
        value = secrets.token_hex(nbytes)
        if not mask_pans(value)[1]:
            return value


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _integrations(c: SandboxCredentials) -> dict[int, Integration]:
    return {
        i.id: i
        for i in (
            Integration(c.integration_id, "card", "card", c.currency, three_ds=True),
            Integration(c.moto_integration_id, "moto", "moto", c.currency, three_ds=False),
            Integration(
                c.auth_integration_id, "card-auth", "auth", c.currency, three_ds=True, is_auth=True
            ),
            Integration(c.wallet_integration_id, "wallet", "wallet", c.currency, three_ds=False),
            Integration(c.kiosk_integration_id, "kiosk", "kiosk", c.currency, three_ds=False),
        )
    }


class Context:
    """The state and services the sandbox's parts share (one per sandbox)."""

    def __init__(
        self,
        *,
        credentials: SandboxCredentials,
        tables: Tables,
        clock: Callable[[], datetime] | None,
        on_event: Event | None,
        callback_url: str | None,
        response_url: str | None,
    ) -> None:
        self.creds = credentials
        self.base_url = credentials.base_url  # the real one once a request arrived (app.py)
        self.region = Region.EG
        self.clock = clock or (lambda: datetime.now(UTC))
        self.on_event = on_event or (lambda category, message: None)
        self.tables = tables
        self.integrations = _integrations(credentials)
        self.iframes = {credentials.iframe_id}
        self._jwt_key = secrets.token_bytes(32)
        self._initial_urls = (callback_url, response_url)
        self.set_callback_urls(callback_url, response_url)

    # -- time and money -----------------------------------------------------------------------

    def now(self) -> datetime:
        """The sandbox clock's time, in UTC."""
        return self.clock().astimezone(UTC)

    def stamp(self) -> str:
        """Now as Paymob writes its timestamps (local time of the region)."""
        return payload_parts.paymob_timestamp(self.now(), self.region)

    def money(self, cents: int, currency: str) -> str:
        """An amount for the event log (``150.00 EGP``)."""
        return format_amount(cents, currency)

    # -- tokens ---------------------------------------------------------------------------------

    def jwt(self, claims: Mapping[str, Any]) -> str:
        """Paymob tokens are base64 of an HS512 JWT (docs/paymob.md §1.2); so are these."""
        header = _b64url(b'{"alg":"HS512","typ":"JWT"}')
        payload = _b64url(json.dumps(claims, separators=(",", ":")).encode())
        signature = _b64url(
            hmac.new(self._jwt_key, f"{header}.{payload}".encode(), hashlib.sha512).digest()
        )
        return base64.b64encode(f"{header}.{payload}.{signature}".encode()).decode()

    # -- integrations and their callback URLs ---------------------------------------------------

    def integration(self, value: object) -> Integration:
        """The integration an id or name refers to, else Paymob's 404."""
        return find_integration(self.integrations, value)

    def set_callback_urls(self, callback_url: str | None, response_url: str | None) -> None:
        """Per-integration callback URLs (all sandbox integrations share them); ``""`` turns
        one off. Each is validated (:func:`callback_url_error`): a 400 names what is wrong."""
        given = {"callback_url": callback_url, "response_url": response_url}
        errors = url_errors(given, ("callback_url", "response_url"))
        if errors:
            raise SandboxError(400, errors)
        for integration in self.integrations.values():
            if callback_url is not None:
                integration.callback_url = callback_url or None
            if response_url is not None:
                integration.response_url = response_url or None

    def callback_urls(self) -> dict[str, str | None]:
        """The callback URLs now in force (the card integration's)."""
        card = self.integrations[self.creds.integration_id]
        return {"callback_url": card.callback_url, "response_url": card.response_url}

    def restore_callback_urls(self) -> None:
        """The callback URLs the sandbox started with."""
        for integration in self.integrations.values():
            integration.callback_url = integration.response_url = None
        self.set_callback_urls(*self._initial_urls)

    def callback_urls_as_started(self) -> bool:
        """Whether every integration has the callback URLs the sandbox started with."""
        started = {
            name: url or None
            for name, url in zip(("callback_url", "response_url"), self._initial_urls, strict=True)
        }
        return all(
            {"callback_url": i.callback_url, "response_url": i.response_url} == started
            for i in self.integrations.values()
        )
