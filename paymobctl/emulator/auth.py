"""Who may call the sandbox: legacy auth tokens (``POST /api/auth/tokens``, an hour each) and
the Intention API's secret key (docs/paymob.md §2.1, §3.1)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from typing import Any

from paymobctl.emulator.context import Context
from paymobctl.emulator.validation import REQUIRED, SandboxError

AUTH_TOKEN_LIFETIME = 3600  # seconds (docs/paymob.md §3.1)


def _digest(token: str) -> str:
    """How an auth token is remembered (never the token itself); any text, even forged."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


class Auth:
    """Issues and checks the merchant's credentials."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._prune_at = 1024

    def authenticate(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """``POST /api/auth/tokens``: an auth token for the right API key (else 400/403)."""
        creds = self.ctx.creds
        api_key = body.get("api_key")
        if api_key in (None, ""):
            raise SandboxError(400, {"api_key": REQUIRED})
        if not isinstance(api_key, str) or not hmac.compare_digest(
            api_key.encode(), creds.api_key.encode()
        ):
            raise SandboxError(403, {"detail": "incorrect credentials"})
        expires = self.ctx.now().timestamp() + AUTH_TOKEN_LIFETIME
        token = self.ctx.jwt(
            {
                "class": "Merchant",
                "profile_pk": creds.profile_id,
                "phash": secrets.token_hex(16),
                "exp": int(expires),
            }
        )
        tables = self.ctx.tables
        tables.add_auth(_digest(token), expires)
        if len(tables.auth_tokens) >= self._prune_at:
            self._prune()
        self.ctx.on_event("auth", "auth token issued (valid one hour)")
        return {
            "token": token,
            "profile": {
                "id": creds.profile_id,
                "user": {
                    "id": creds.merchant_id,
                    "username": "paymobctl-sandbox",
                    "email": "sandbox@paymobctl.local",
                },
                "company_name": "paymobctl sandbox",
                "country": "EGY",
                "state": "",
                "sector": "Software",
                "currency": creds.currency,
            },
        }

    def _prune(self) -> None:
        """Forget expired tokens (amortised: runs when the table has doubled)."""
        now = self.ctx.now().timestamp()
        tables = self.ctx.tables
        tables.drop_auth(
            [digest for digest, expires in tables.auth_tokens.items() if expires < now]
        )
        self._prune_at = max(1024, 2 * len(tables.auth_tokens))

    def check_auth_token(self, token: str | None) -> None:
        """A 401 unless ``token`` is a live auth token this sandbox issued."""
        expires = self.ctx.tables.auth_tokens.get(_digest(token)) if token else None
        if expires is None or expires < self.ctx.now().timestamp():
            raise SandboxError(401, {"detail": "incorrect credentials"})

    def check_secret_key(self, header: str | None) -> None:
        """``Authorization: Token <secret key>`` (Bearer and lowercase ``token`` accepted, §2.1)."""
        if not header:
            raise SandboxError(401, {"detail": "Authentication credentials were not provided."})
        scheme, _, value = header.partition(" ")
        if scheme.lower() not in ("token", "bearer") or not hmac.compare_digest(
            value.strip().encode(), self.ctx.creds.secret_key.encode()
        ):
            raise SandboxError(401, {"detail": "Invalid token."})

    def check_token_or_secret_key(self, authorization: str | None, token: str | None) -> None:
        """Refund, void and capture take either credential: ``Authorization: Token <secret
        key>`` (a header carrying a secret key, ``_sk_``), else the legacy auth ``token``."""
        header = authorization or ""
        if header.lower().startswith("token ") and "_sk_" in header:
            self.check_secret_key(header)
            return
        self.check_auth_token(token)

    def check_public_key(self, public_key: str | None) -> bool:
        """Whether ``public_key`` is this sandbox's public key (constant-time)."""
        return bool(public_key) and hmac.compare_digest(
            str(public_key).encode(), self.ctx.creds.public_key.encode()
        )
