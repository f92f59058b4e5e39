"""Paymob's error answers in words: a one-line description of any error body, the integration
guide's troubleshooting hints matched to the call, and fields checked as Paymob's."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from paymobctl.errors import ApiError
from paymobctl.models import lenient_int


def describe(body: Any) -> str:
    """Paymob's error bodies in one line: detail, message, or DRF field-keyed lists."""
    if isinstance(body, Mapping):
        for key in ("detail", "message"):
            if isinstance(body.get(key), str):
                return str(body[key])
        parts = []

        def walk(value: Any, path: str) -> None:
            if isinstance(value, Mapping):
                for key, item in value.items():
                    walk(item, f"{path}.{key}" if path else str(key))
            elif isinstance(value, list) and value and all(isinstance(v, str) for v in value):
                parts.append(f"{path}: {' '.join(value)}")
            elif isinstance(value, str):
                parts.append(f"{path}: {value}" if path else value)

        walk(body, "")
        if parts:
            return "; ".join(parts)
    if isinstance(body, str) and body.strip():
        return body.strip()[:300]
    return "no details"


# The integration guide's troubleshooting table, keyed by what Paymob answers and, where the
# same answer means different things, by the credential the call sent (None: any).
_HINTS: tuple[tuple[str, str | None, str, str], ...] = (
    (
        "incorrect credentials",
        "auth token",
        "the auth token was refused",
        "the API key itself authenticated; the token may have expired or this account may not "
        "be allowed this operation (check the transaction belongs to this profile's account and "
        "mode)",
    ),
    (
        "incorrect credentials",
        None,
        "the API key was rejected",
        "check PAYMOB_API_KEY: test and live keys differ; copy it from Paymob's dashboard (Settings → "
        "Account info). 'Failed to initiate deposit' in the guide is usually this",
    ),
    (
        "integration id/name does not exist",
        None,
        "the integration id does not exist in this mode",
        "use an integration id of this mode (test vs live) from Developers → Payment Integrations; "
        "a test integration does not work with live keys and vice versa",
    ),
    (
        "invalid currency",
        None,
        "the currency does not match the integration's",
        "use the integration's currency (paymobctl config show → currency), or an integration in that currency",
    ),
    (
        "invalid token.",
        None,
        "the secret key was rejected",
        "check PAYMOB_SECRET_KEY (egy_sk_test_… / egy_sk_live_…) for this mode",
    ),
    (
        "authentication credentials were not provided",
        None,
        "no secret key was sent",
        "set PAYMOB_SECRET_KEY for the Intention API",
    ),
    (
        "capture amount cannot exceed",
        None,
        "capture over the authorised amount",
        "capture at most what was authorised; check `paymobctl status`",
    ),
    (
        "requested refund amount is greater",
        None,
        "refund over the refundable amount",
        "refund at most what is left; `paymobctl status` shows the transaction",
    ),
    (
        "invalid transaction id",
        None,
        "no such transaction",
        "check the transaction id (`paymobctl deposits list`)",
    ),
    (
        "duplicate",
        None,
        "merchant_order_id was already used",
        "merchant order ids must be unique: pick a new one",
    ),
)


def api_error(status: int, body: Any, *, action: str, credential: str | None = None) -> ApiError:
    """Paymob's answer as an error whose hint fits the call: ``credential`` is what the call
    authenticated with ("api key", "auth token", "secret key")."""
    text = describe(body)
    lowered = text.lower()
    for needle, sent, what, hint in _HINTS:
        if needle in lowered and sent in (None, credential):
            return ApiError(
                f"{action} failed: {what} (HTTP {status}: {text})",
                hint=hint,
                status=status,
                body=body,
            )
    if status >= 500:
        return ApiError(
            f"{action} failed: Paymob answered HTTP {status} ({text})",
            hint="try again in a moment",
            status=status,
            body=body,
        )
    return ApiError(
        f"{action} failed: HTTP {status}: {text}",
        hint=("the server gave no details; " if text == "no details" else "")
        + "`paymobctl config show` lists the ids and keys in use",
        status=status,
        body=body,
    )


NOT_RUNNING_HINT = (
    "is a sandbox running on another port? set PAYMOB_BASE_URL (or base_url in the profile; "
    "`paymobctl sandbox` runs one; --profile picks a real account)"
)


def field_int(body: Mapping[str, Any], key: str, *, action: str) -> int:
    """An integer field of Paymob's answer, or an API error saying the answer was not Paymob's."""
    value = body.get(key)
    number = lenient_int(value)
    if number is None:
        raise ApiError(
            f"{action}: unexpected answer, {key!r} is {value!r}",
            hint="is base_url/region pointing at Paymob (or `paymobctl sandbox`)?",
            body=body,
        )
    return number
