"""What Paymob signs: each callback kind's signed fields (docs/paymob.md §8.1), how a value
renders into the signed string, and reading the signed values out of a payload.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from paymobctl.models import CallbackKind


@dataclass(frozen=True)
class SignedField:
    """One signed value: where it lives in a POST ``obj`` and in a GET query."""

    post_path: str  # dotted path inside ``obj``
    get_key: str  # literal query parameter name (dots are part of the name)
    get_aliases: tuple[str, ...] = ()  # other spellings some senders use


# Reference §8.1: the fixed, alphabetical list of 20 transaction fields. The GET redirect carries
# the order id as ``order`` (developers.paymob.com's ``order_id`` is contradicted by every real
# redirect, §8.4) and the source fields with literal dots; PHP rewrites dots to underscores.
TRANSACTION_FIELDS: tuple[SignedField, ...] = (
    SignedField("amount_cents", "amount_cents"),
    SignedField("created_at", "created_at"),
    SignedField("currency", "currency"),
    SignedField("error_occured", "error_occured"),  # sic: Paymob's spelling
    SignedField("has_parent_transaction", "has_parent_transaction"),
    SignedField("id", "id"),
    SignedField("integration_id", "integration_id"),
    SignedField("is_3d_secure", "is_3d_secure"),
    SignedField("is_auth", "is_auth"),
    SignedField("is_capture", "is_capture"),
    SignedField("is_refunded", "is_refunded"),
    SignedField("is_standalone_payment", "is_standalone_payment"),
    SignedField("is_voided", "is_voided"),
    SignedField("order.id", "order", ("order_id",)),
    SignedField("owner", "owner"),
    SignedField("pending", "pending"),
    SignedField("source_data.pan", "source_data.pan", ("source_data_pan",)),
    SignedField("source_data.sub_type", "source_data.sub_type", ("source_data_sub_type",)),
    SignedField("source_data.type", "source_data.type", ("source_data_type",)),
    SignedField("success", "success"),
)


# Reference §8.2: card TOKEN callbacks; ``user_added`` and ``next_payment_intention`` are not signed.
TOKEN_FIELDS: tuple[SignedField, ...] = tuple(
    SignedField(name, name)
    for name in (
        "card_subtype",
        "created_at",
        "email",
        "id",
        "masked_pan",
        "merchant_id",
        "order_id",
        "token",
    )
)


# Reference §7.4: single source, not alphabetical, unverified. Supported, marked experimental.
DELIVERY_STATUS_FIELDS: tuple[SignedField, ...] = tuple(
    SignedField(name, name)
    for name in ("order_id", "order_delivery_status", "merchant_id", "merchant_name", "updated_at")
)


EXPERIMENTAL_KINDS = frozenset({CallbackKind.DELIVERY_STATUS})


# How each value is written into the signing string (docs/paymob.md §8.1–§8.4), for people writing a
# verifier: `paymobctl hmac fields` prints them next to the field lists.
RENDERING_RULES: tuple[str, ...] = (
    "concatenate the values in exactly this order, with no separator",
    "booleans: true / false in lowercase (not Python's True/False, not PHP's 1/empty)",
    "integers: plain decimal digits; strings: exactly as received (no case or timezone change)",
    "null or missing: the empty string (Paymob never defines it; never the text None)",
    "GET redirect: URL-decode the values first; the order id parameter is 'order', "
    "not 'order_id'; source fields keep their dots (PHP shows them as source_data_pan)",
    "key: the HMAC secret as UTF-8 text; HMAC-SHA512; lowercase hex (128 characters)",
    "compare with the 'hmac' query parameter in constant time (it is never a header)",
)


def fields_for(kind: CallbackKind) -> tuple[SignedField, ...]:
    """The signed fields of a callback kind, in the order Paymob concatenates them."""
    if kind is CallbackKind.TOKEN:
        return TOKEN_FIELDS
    if kind is CallbackKind.DELIVERY_STATUS:
        return DELIVERY_STATUS_FIELDS
    return TRANSACTION_FIELDS


class NullConvention(StrEnum):
    """How a null or missing signed value is rendered. Paymob never defines it (§8.1, §8.4).

    ``empty`` is canonical (Paymob-Solutions, the farapi emulator); ``None`` is what Python's
    ``str(None)`` gives (Odoo on a JSON null); ``false`` is Odoo's default for a missing GET key.
    """

    EMPTY = "empty"
    NONE = "None"
    FALSE = "false"


_NULL_TEXT = {NullConvention.EMPTY: "", NullConvention.NONE: "None", NullConvention.FALSE: "false"}


def render_value(value: object, null: NullConvention = NullConvention.EMPTY) -> str:
    """One signed value as Paymob renders it: lowercase booleans, plain integers, strings verbatim."""
    kind = type(value)
    if kind is str:
        return value  # type: ignore[return-value]
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return str(value)
    if value is None:
        return _NULL_TEXT[null]
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        # Paymob's signed numbers are integers; a float only appears when a client re-serialised
        # them. An integral float is rendered as the integer it stands for.
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


_MISSING = object()


def lookup_path(obj: Mapping[str, Any], path: str, missing: object = None) -> Any:
    """The value at a dotted ``path`` (``order.id``) of a nested payload, else ``missing``."""
    current: object = obj
    for part in path.split("."):
        if not isinstance(current, Mapping) or part not in current:
            return missing
        current = current[part]
    return current


@dataclass(frozen=True)
class FieldValue:
    """One signed field as found in a payload, for ``--explain``."""

    name: str  # the canonical name (POST path, or GET key for the redirect)
    used_key: (
        str | None
    )  # the key it was read from (an alias such as ``order_id``), None if missing
    raw: object  # the value found (None when null or missing)
    missing: bool

    @property
    def null(self) -> bool:
        return not self.missing and self.raw is None

    @property
    def label(self) -> str:
        """The name, and the key it was read from when that differs (``--explain``)."""
        if self.used_key in (None, self.name):
            return self.name
        return f"{self.name} (read from {self.used_key})"

    @property
    def shown(self) -> str:
        """The value as signed, or ``<missing>`` / ``<null>`` (``--explain``)."""
        if self.missing:
            return "<missing>"
        return "<null>" if self.raw is None else render_value(self.raw)


def collect_fields(kind: CallbackKind, data: Mapping[str, Any]) -> tuple[FieldValue, ...]:
    """Read the signed fields of ``kind`` from a POST ``obj`` or a flat GET query mapping."""
    out: list[FieldValue] = []
    for spec in fields_for(kind):
        if kind is CallbackKind.RESPONSE:
            used: str | None = None
            raw: object = None
            for key in (spec.get_key, *spec.get_aliases):
                if key in data:
                    used, raw = key, data[key]
                    break
            out.append(FieldValue(spec.get_key, used, raw, used is None))
        else:
            found = lookup_path(data, spec.post_path, _MISSING)
            if found is _MISSING:
                out.append(FieldValue(spec.post_path, None, None, True))
            else:
                out.append(FieldValue(spec.post_path, spec.post_path, found, False))
    return tuple(out)


def signing_string(
    fields: Sequence[FieldValue],
    null: NullConvention = NullConvention.EMPTY,
    render: Callable[[object, NullConvention], str] = render_value,
) -> str:
    """The concatenated signing string of collected fields (no separators, as Paymob does)."""
    return "".join(render(f.raw, null) for f in fields)
