"""The JSON shapes of the signed fields: a payload is trusted only when every signed field has
the shape Paymob sends (pure and cheap: the receiver checks every callback).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from paymobctl.models import CallbackKind
from paymobctl.signing.fields import _MISSING, TRANSACTION_FIELDS

# The signed string has no separators (§8.1), so an HMAC only proves the concatenation. Rendering
# hides the JSON type: an object sent as an integer renders empty, 900123.0 renders like 900123,
# a missing field renders like "". Whoever holds one genuine signed payload can therefore move
# digits between adjacent fields (``obj.order`` as a bare int, its digits moved into ``owner``)
# and still verify (docs/paymob.md §14). Every signed field must have the shape Paymob sends (checked
# against ../shared/real-samples: integers, JSON booleans, ``order`` and ``source_data`` objects,
# a ``YYYY-MM-DD…`` timestamp, a three-letter currency) before the HMAC means anything.


@dataclass(frozen=True)
class ShapeProblem:
    """One signed field whose JSON shape is not what Paymob sends."""

    field: str
    message: str


_TXN_INTS = ("amount_cents", "id", "integration_id", "owner")


TRANSACTION_BOOLEANS = (  # the signed flags: JSON booleans in a POST, true/false on a GET
    "error_occured",
    "has_parent_transaction",
    "is_3d_secure",
    "is_auth",
    "is_capture",
    "is_refunded",
    "is_standalone_payment",
    "is_voided",
    "pending",
    "success",
)


_TXN_BOOLS = TRANSACTION_BOOLEANS


_SOURCE_TEXTS = ("pan", "sub_type", "type")


_TOKEN_INTS = ("id", "merchant_id")


_TOKEN_TEXTS = ("card_subtype", "masked_pan", "token")


_MAX_INT = 2**63 - 1  # SQLite's INTEGER; far above any Paymob id or amount


_TIMESTAMP = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")  # a prefix: Paymob adds time and offset


_CURRENCY = re.compile(r"[A-Z]{3}")


_GET_INT = re.compile(r"0|[1-9][0-9]{0,18}")


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return f"a decimal number ({value!r})"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__


def _int_problem(name: str, value: object) -> str | None:
    if type(value) is int and 0 <= value <= _MAX_INT:  # type(): a bool is not an int here
        return None
    if value is _MISSING:
        return f"{name} is missing"
    if type(value) is int:
        return f"{name} is out of range ({value})"
    if isinstance(value, float) and value.is_integer():
        return (
            f"{name} is a decimal number ({value!r}), not an integer: it signs like "
            f"{int(value)} but is another value (a different dedupe key)"
        )
    return f"{name} is {_json_type(value)}, not an integer"


def _bool_problem(name: str, value: object) -> str | None:
    if type(value) is bool:
        return None
    if value is _MISSING:
        return f"{name} is missing"
    return f"{name} is {_json_type(value)}, not a JSON boolean"


def _text_problem(name: str, value: object, *, nullable: bool = False) -> str | None:
    if type(value) is str or (nullable and value is None):
        return None
    if value is _MISSING:
        return f"{name} is missing"
    return f"{name} is {_json_type(value)}, not a string"


def _format_problems(created_at: object, currency: object) -> list[tuple[str, str]]:
    """created_at and currency are signed next to digits: a fixed format stops digits moving."""
    out: list[tuple[str, str]] = []
    if type(created_at) is str and not _TIMESTAMP.match(created_at):
        out.append(("created_at", "created_at does not start with a YYYY-MM-DD date"))
    if type(currency) is str and not _CURRENCY.fullmatch(currency):
        out.append(("currency", f"currency {currency[:12]!r} is not a three-letter code"))
    return out


# The JSON types of the 20 TRANSACTION values in signing order (§8.1) when every one has
# Paymob's shape and none is null: one tuple comparison on the receiver's hot path.
_TXN_TYPES = tuple(
    int if f.post_path in (*_TXN_INTS, "order.id") else bool if f.post_path in _TXN_BOOLS else str
    for f in TRANSACTION_FIELDS
)


_TXN_INT_INDEXES = tuple(i for i, t in enumerate(_TXN_TYPES) if t is int)


def _values_ok(values: list[object]) -> bool:
    """Signed values read by :func:`_fast_values` have the shapes :func:`shape_problems`
    accepts (its common case; anything else goes to it, which decides)."""
    if tuple(map(type, values)) != _TXN_TYPES:
        return False
    ints: list[Any] = [values[index] for index in _TXN_INT_INDEXES]
    if min(ints) < 0 or max(ints) > _MAX_INT:
        return False
    created_at: Any = values[1]
    currency: Any = values[2]
    # _TIMESTAMP.match and _CURRENCY.fullmatch without the regex calls (the hot path):
    # "YYYY-MM-DD" ASCII digits, and three ASCII capitals.
    return (
        len(created_at) >= 10
        and created_at[4:5] == "-"
        and created_at[7:8] == "-"
        and (created_at[:4] + created_at[5:7] + created_at[8:10]).isdigit()
        and created_at[:10].isascii()
        and len(currency) == 3
        and currency.isascii()
        and currency.isalpha()
        and currency.isupper()
    )


def shape_problems(kind: CallbackKind, data: Mapping[str, Any]) -> tuple[ShapeProblem, ...]:
    """Every signed field of ``data`` whose shape differs from what Paymob sends (empty: all fine).

    Pure and cheap (the receiver runs it on every callback before computing the HMAC).
    DELIVERY_STATUS is experimental (no real payload known, §7.4): not checked.
    """
    found: list[tuple[str, str | None]] = []
    get = data.get
    if kind is CallbackKind.TRANSACTION:
        for name in _TXN_INTS:
            found.append((name, _int_problem(name, get(name, _MISSING))))
        for name in _TXN_BOOLS:
            found.append((name, _bool_problem(name, get(name, _MISSING))))
        order = get("order", _MISSING)
        if isinstance(order, Mapping):
            found.append(("order.id", _int_problem("order.id", order.get("id", _MISSING))))
        else:
            found.append(
                (
                    "order",
                    "order is missing: the signed order.id renders empty"
                    if order is _MISSING
                    else f"order is {_json_type(order)}, not an object: the signed order.id "
                    "renders empty",
                )
            )
        source = get("source_data", _MISSING)
        if isinstance(source, Mapping):
            for name in _SOURCE_TEXTS:
                value = source.get(name, _MISSING)
                found.append(
                    (
                        f"source_data.{name}",
                        _text_problem(f"source_data.{name}", value, nullable=True),
                    )
                )
        else:
            found.append(
                (
                    "source_data",
                    f"source_data is {'missing' if source is _MISSING else _json_type(source)}, "
                    "not an object: the signed source_data.pan, sub_type and type render empty",
                )
            )
        created_at, currency = get("created_at", _MISSING), get("currency", _MISSING)
        found.append(("created_at", _text_problem("created_at", created_at)))
        found.append(("currency", _text_problem("currency", currency)))
        found.extend(_format_problems(created_at, currency))
    elif kind is CallbackKind.RESPONSE:
        for spec in TRANSACTION_FIELDS:
            value = next((get(k) for k in (spec.get_key, *spec.get_aliases) if k in data), _MISSING)
            name = spec.get_key
            if value is _MISSING:
                if not name.startswith("source_data."):
                    found.append((name, f"{name} is missing from the query"))
            elif not isinstance(value, str):
                found.append((name, f"{name} is {_json_type(value)}, not query text"))
            elif name in _TXN_INTS or name == "order":
                if not _GET_INT.fullmatch(value):
                    found.append((name, f"{name}={value[:24]!r} is not a plain integer"))
            elif name in _TXN_BOOLS and value not in ("true", "false"):
                found.append((name, f"{name}={value[:24]!r} is not literally true or false"))
        found.extend(_format_problems(get("created_at"), get("currency")))
    elif kind is CallbackKind.TOKEN:
        for name in _TOKEN_INTS:
            found.append((name, _int_problem(name, get(name, _MISSING))))
        for name in _TOKEN_TEXTS:
            found.append((name, _text_problem(name, get(name, _MISSING))))
        found.append(("email", _text_problem("email", get("email", _MISSING), nullable=True)))
        created_at = get("created_at", _MISSING)
        found.append(("created_at", _text_problem("created_at", created_at)))
        found.extend(_format_problems(created_at, None))
        order_id = get("order_id", _MISSING)
        # §7.3: a string of digits in every real TOKEN; an integer is accepted as the same id.
        if not (
            (type(order_id) is str and _GET_INT.fullmatch(order_id))
            or (type(order_id) is int and _int_problem("order_id", order_id) is None)
        ):
            found.append(
                (
                    "order_id",
                    "order_id is missing"
                    if order_id is _MISSING
                    else f"order_id is {_json_type(order_id)}, not an order id",
                )
            )
    return tuple(ShapeProblem(name, text) for name, text in found if text is not None)


def describe_shape_problems(problems: Sequence[ShapeProblem]) -> str:
    """One line for a log, a store row or an error: the first problems, then how many more."""
    shown = "; ".join(p.message for p in problems[:3])
    more = len(problems) - 3
    return f"malformed signed fields: {shown}" + (f" (and {more} more)" if more > 0 else "")


assert [f.post_path for f in TRANSACTION_FIELDS[13:]] == [
    "order.id", "owner", "pending", "source_data.pan", "source_data.sub_type", "source_data.type",
    "success",
]  # fmt: skip


assert "." not in "".join(f.post_path for f in TRANSACTION_FIELDS[:13])
