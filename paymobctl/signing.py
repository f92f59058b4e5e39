"""Paymob's HMAC-SHA512 callback signatures: compute, verify (constant time) and explain.

Everything here follows docs/paymob.md §8 and imports only the standard library
(the error family, and documents for bounded JSON). The key is the HMAC secret as UTF-8 text; the message is the values of
a fixed list of fields concatenated with no separator; the digest is lowercase hex.
"""

from __future__ import annotations

import hashlib
import hmac as _hmac
import json
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache
from typing import Any, cast
from urllib.parse import parse_qsl, urlsplit

from paymobctl.documents import loads_json
from paymobctl.errors import PaymobctlError, UsageError
from paymobctl.models import CallbackKind

__all__ = ["CallbackKind", "UsageError"]  # re-exported: callers use signing.CallbackKind


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
    if kind is CallbackKind.TOKEN:
        return TOKEN_FIELDS
    if kind is CallbackKind.DELIVERY_STATUS:
        return DELIVERY_STATUS_FIELDS
    return TRANSACTION_FIELDS


# --- rendering -------------------------------------------------------------------------------


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
    return "".join(render(f.raw, null) for f in fields)


@lru_cache(maxsize=8)
def _keyed(key: bytes) -> _hmac.HMAC:
    """An HMAC-SHA512 already fed ``key`` (its padded key blocks), copied for each message."""
    return _hmac.new(key, digestmod=hashlib.sha512)


def _digest(secret: str | bytes, message: str) -> str:
    # surrogatepass: a lone surrogate (never in Paymob's callbacks, possible in a forged one)
    # yields a signature that simply does not match, instead of an exception.
    key = secret.encode("utf-8", "surrogatepass") if isinstance(secret, str) else secret
    mac = _keyed(key).copy()
    mac.update(message.encode("utf-8", "surrogatepass"))
    return mac.hexdigest()


def digest(secret: str, message: str) -> str:
    """HMAC-SHA512 of an already concatenated signing string, lowercase hex (for dialects)."""
    return _digest(secret, message)


def signed_values(kind: CallbackKind, data: Mapping[str, Any]) -> list[object]:
    """The signed values of ``data`` in signing order, None where null or missing: what
    :func:`compute` signs, read as :func:`collect_fields` reads them."""
    return _fast_values(kind, data)[0]


def compute(kind: CallbackKind, data: Mapping[str, Any], secret: str) -> str:
    """The lowercase hex HMAC Paymob would send for this payload (canonical null rendering)."""
    return _digest(secret, _signing_text(_fast_values(kind, data)[0]))


def compute_values(values: Sequence[object], secret: str) -> str:
    """:func:`compute` of a payload whose signed values (as :func:`signed_values` reads them)
    are already known: the builders sign what they put in without reading it back."""
    return _digest(secret, _signing_text(values))


def _signing_text(values: Sequence[object]) -> str:
    """:func:`render_value` of each value, joined (strings and booleans inline: the hot path)."""
    return "".join([
        cast(str, v) if (t := type(v)) is str else ("true" if v else "false") if t is bool
        else render_value(v)
        for v in values
    ])  # fmt: skip


def _same(a: str, b: str) -> bool:
    return _hmac.compare_digest(a.encode("ascii", "replace"), b.encode("ascii", "replace"))


# --- shapes of the signed fields ------------------------------------------------------------------
#
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


@dataclass(frozen=True)
class Verification:
    """What ``verify`` found: valid or not, the computed HMAC, the null convention that matched."""

    valid: bool
    kind: CallbackKind
    computed: str  # canonical ("" when malformed: the HMAC is not computed)
    received: str | None
    convention: NullConvention | None  # which null rendering matched (None when invalid)
    malformed: tuple[ShapeProblem, ...] = ()  # signed fields of the wrong shape: never valid


def _fast_values(kind: CallbackKind, data: Mapping[str, Any]) -> tuple[list[object], bool]:
    """The signed values in order (None when null or missing), and whether any is None.

    The hot path of the receiver: same result as :func:`collect_fields` without building a
    :class:`FieldValue` per field.
    """
    if kind is CallbackKind.TRANSACTION and type(data) is dict:
        # Paymob's own shape: read each field directly (items of the known list, in order).
        order, source = data.get("order"), data.get("source_data")
        if type(order) is dict and type(source) is dict:
            try:
                found = [*_TXN_HEAD(data), order["id"], *_TXN_TAIL(data), *_TXN_SOURCE(source)]
                found.append(data["success"])
            except KeyError:
                pass  # something is missing: the general walk below says what
            else:
                return found, None in found
    values: list[object] = []
    append = values.append
    if kind is CallbackKind.RESPONSE:
        for keys in _GET_KEYS:
            for key in keys:
                if key in data:
                    append(data[key])
                    break
            else:
                append(None)
    else:
        for parts in _POST_PARTS[kind]:
            current: Any = data
            for part in parts:
                # dict first: isinstance against the Mapping ABC is slow on this hot path.
                if (type(current) is dict or isinstance(current, Mapping)) and part in current:
                    current = current[part]
                else:
                    current = None
                    break
            append(current)
    return values, None in values


_TXN_HEAD = operator.itemgetter(*(f.post_path for f in TRANSACTION_FIELDS[:13]))
_TXN_TAIL = operator.itemgetter("owner", "pending")
_TXN_SOURCE = operator.itemgetter("pan", "sub_type", "type")
assert [f.post_path for f in TRANSACTION_FIELDS[13:]] == [
    "order.id", "owner", "pending", "source_data.pan", "source_data.sub_type", "source_data.type",
    "success",
]  # fmt: skip
assert "." not in "".join(f.post_path for f in TRANSACTION_FIELDS[:13])

_GET_KEYS: tuple[tuple[str, ...], ...] = tuple(
    (f.get_key, *f.get_aliases) for f in TRANSACTION_FIELDS
)
_POST_PARTS: dict[CallbackKind, tuple[tuple[str, ...], ...]] = {
    kind: tuple(tuple(f.post_path.split(".")) for f in fields_for(kind))
    for kind in (CallbackKind.TRANSACTION, CallbackKind.TOKEN, CallbackKind.DELIVERY_STATUS)
}


def verify(
    kind: CallbackKind,
    data: Mapping[str, Any],
    secret: str,
    received: str | None,
    *,
    check_shapes: bool = True,
) -> Verification:
    """Constant-time check of ``received`` against the payload.

    Signed fields of the wrong shape (:func:`shape_problems`) make the payload invalid before
    any HMAC is computed; ``check_shapes=False`` is only for the arithmetic itself (tests,
    ``--explain`` showing what the bare HMAC says). The canonical rendering (null → empty
    string) is tried first; only when it fails and a signed field is null or missing are the
    ``None`` and ``false`` renderings tried, and the one that matched is reported.
    """
    values, has_null = _fast_values(kind, data)
    if check_shapes and not (kind is CallbackKind.TRANSACTION and _values_ok(values)):
        problems = shape_problems(kind, data)
        if problems:
            return Verification(False, kind, "", received, None, problems)
    canonical = _digest(secret, _signing_text(values))
    if received is None:
        return Verification(False, kind, canonical, None, None)
    if _same(canonical, received):
        return Verification(True, kind, canonical, received, NullConvention.EMPTY)
    if has_null:
        for convention in (NullConvention.NONE, NullConvention.FALSE):
            message = "".join([render_value(v, convention) for v in values])
            if _same(_digest(secret, message), received):
                return Verification(True, kind, canonical, received, convention)
    return Verification(False, kind, canonical, received, None)


# --- reading payloads --------------------------------------------------------------------------


@dataclass(frozen=True)
class Payload:
    """A callback as received: its kind, the data the HMAC is computed over, and any hmac it carried."""

    kind: CallbackKind
    data: Mapping[str, Any]
    hmac: str | None = None
    raw_query: str | None = None  # undecoded query, for diagnosing encoding mistakes


def detect_kind(obj: Mapping[str, Any]) -> CallbackKind:
    """Guess the kind of an unwrapped ``obj`` by its fields."""
    if "token" in obj and "masked_pan" in obj:
        return CallbackKind.TOKEN
    if "order_delivery_status" in obj:
        return CallbackKind.DELIVERY_STATUS
    if (
        "source_data.pan" in obj
        or "source_data_pan" in obj
        or ("order" in obj and not isinstance(obj.get("order"), Mapping) and "id" in obj)
    ):
        return CallbackKind.RESPONSE
    return CallbackKind.TRANSACTION


def parse_body(text: str | bytes, kind: CallbackKind | None = None) -> Payload:
    """A processed-callback body: ``{"type": ..., "obj": {...}}``, a bare ``obj``, or the flat
    string-typed record ``payments/pay`` returns (which carries its own ``hmac``)."""
    try:
        document = loads_json(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise UsageError(
            f"the callback body is not valid JSON ({exc})",
            hint="pass the exact body Paymob POSTed, or use --url for a GET redirect",
        ) from None
    if not isinstance(document, dict):
        raise UsageError(
            "the callback body is not a JSON object",
            hint='Paymob POSTs {"type": "TRANSACTION", "obj": {...}}',
        )
    if "obj" in document:
        obj = document["obj"]
        if not isinstance(obj, dict):
            raise UsageError("the callback's obj is not a JSON object", hint="check the body")
        declared = document.get("type")
        detected: CallbackKind
        if kind is not None:
            detected = kind
        elif isinstance(declared, str) and declared.upper() in CallbackKind.__members__:
            detected = CallbackKind(declared.upper())
        elif declared is None:
            detected = detect_kind(obj)
        else:
            raise UsageError(
                f"unknown callback type {declared!r}",
                hint="pass --type TRANSACTION, TOKEN or DELIVERY_STATUS",
            )
        return Payload(detected, obj)
    detected = kind or detect_kind(document)
    received = document.get("hmac") if detected is CallbackKind.RESPONSE else None
    if detected is CallbackKind.RESPONSE:
        document = {k: v for k, v in document.items() if k != "hmac"}
    return Payload(detected, document, received if isinstance(received, str) else None)


def parse_query(url_or_query: str) -> Payload:
    """A GET redirect URL (or bare query string) → flat, URL-decoded mapping plus its ``hmac``."""
    text = url_or_query.strip()
    query = urlsplit(text).query if ("?" in text or "://" in text) else text
    if not query:
        raise UsageError(
            "the URL has no query string",
            hint="paste the full redirect URL, including everything after '?'",
        )
    pairs = parse_qsl(query, keep_blank_values=True)
    data: dict[str, str] = {}
    for key, value in pairs:
        data.setdefault(key, value)
    received = data.pop("hmac", None)
    return Payload(CallbackKind.RESPONSE, data, received, raw_query=query)


def stored_payload(kind: str, body: bytes, query: str, hmac: str | None) -> Payload | None:
    """The signed payload of a request a receiver stored (its type as text, raw body, query and
    received hmac), or None when it was not a readable callback (``events show``, the inspector)."""
    try:
        if kind == "RESPONSE":
            return parse_query("?" + query)
        if kind in ("TRANSACTION", "TOKEN", "DELIVERY_STATUS"):
            parsed = parse_body(body, CallbackKind(kind))
            return Payload(parsed.kind, parsed.data, hmac)
    except PaymobctlError:
        return None
    return None


def hmac_from_url(url: str) -> str | None:
    """The ``hmac`` query parameter of a captured processed-callback URL."""
    for key, value in parse_qsl(urlsplit(url.strip()).query, keep_blank_values=True):
        if key == "hmac":
            return value
    return None


# --- explaining --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Diagnosis:
    """One likely mistake behind a wrong HMAC: a stable code and what to check."""

    code: str
    message: str


@dataclass(frozen=True)
class Explanation:
    """What ``hmac --explain`` shows: signed fields, the string, computed vs received, diagnoses."""

    kind: CallbackKind
    fields: tuple[FieldValue, ...]
    message: str
    computed: str
    received: str | None
    valid: bool
    convention: NullConvention | None
    diagnoses: tuple[Diagnosis, ...] = field(default_factory=tuple)
    malformed: tuple[ShapeProblem, ...] = field(default_factory=tuple)

    @property
    def experimental(self) -> bool:
        return self.kind in EXPERIMENTAL_KINDS


def _python_render(value: object, null: NullConvention) -> str:
    if value is None:
        return "None"
    if isinstance(value, bool):
        return str(value)
    return render_value(value, null)


def _php_render(value: object, null: NullConvention) -> str:
    if isinstance(value, bool):
        return "1" if value else ""
    return render_value(value, null)


_HEX128 = re.compile(r"^[0-9a-f]{128}$")


def explain(
    kind: CallbackKind,
    data: Mapping[str, Any],
    secret: str,
    received: str | None,
    *,
    raw_query: str | None = None,
    verifying: bool = True,
) -> Explanation:
    """Everything a person needs to see why a signature does or does not match.

    ``verifying=False`` explains a signature being computed (``hmac sign --explain``): there is
    no received HMAC to miss.
    """
    fields = collect_fields(kind, data)
    message = signing_string(fields)
    result = verify(kind, data, secret, received, check_shapes=False)
    problems = shape_problems(kind, data)
    diagnoses: list[Diagnosis] = []

    def add(code: str, text: str) -> None:
        diagnoses.append(Diagnosis(code, text))

    if problems and result.valid:
        add(
            "shape-trick",
            "the HMAC matches, but only because of the fields' JSON shapes: "
            + "; ".join(p.message for p in problems)
            + " — the signed string has no separators, so digits moved between fields keep "
            "the same signature; paymobctl rejects this (a receiver must check every signed "
            "field's type before trusting it)",
        )
    elif problems:
        add(
            "malformed-signed-fields",
            "signed field(s) have the wrong shape, so the payload is rejected whatever the "
            "HMAC: " + "; ".join(p.message for p in problems),
        )

    if kind in EXPERIMENTAL_KINDS:
        add(
            "experimental",
            f"{kind.value} signing is experimental: its field list comes from a single SDK and "
            "no real payload was ever published (docs/paymob.md §7.4)",
        )
    for f in fields:
        if f.used_key is not None and f.used_key != f.name:
            add(
                "alias",
                f"{f.name!r} was read from {f.used_key!r}: Paymob's redirect sends "
                f"{f.name!r}; some senders and frameworks rename it",
            )
    missing = [f.name for f in fields if f.missing]
    nulls = [f.name for f in fields if f.null]
    looks_like = detect_kind(data)
    if kind is not CallbackKind.RESPONSE and looks_like not in (kind, CallbackKind.RESPONSE):
        add(
            "wrong-type",
            f"the payload looks like a {looks_like.value} callback but is signed as {kind.value}: "
            f"pass --type {looks_like.value} (or fix the body's 'type')",
        )
    elif missing and len(missing) == len(fields):
        add(
            "wrong-type",
            f"none of the {kind.value} signed fields are in the payload: is this another callback "
            "type (pass --type), or only part of the body?",
        )
    if missing and len(missing) < len(fields):
        add(
            "missing-field",
            "signed field(s) missing from the payload: "
            + ", ".join(missing)
            + " — Paymob always sends them; was the body edited, or is this the wrong callback "
            "type (--type)?",
        )
    if nulls:
        add(
            "null-field",
            "signed field(s) are null: "
            + ", ".join(nulls)
            + " — Paymob never defines how null is signed; paymobctl renders it as the empty "
            "string and also tries 'None' and 'false'",
        )
    if result.valid and result.convention not in (None, NullConvention.EMPTY):
        add(
            "null-convention",
            f"matched only when null is rendered as {_NULL_TEXT[result.convention]!r}: the sender "
            "uses a non-canonical null rendering",
        )
    if kind is CallbackKind.RESPONSE:
        pythonish = [
            f.name for f in fields if isinstance(f.raw, str) and f.raw in ("True", "False", "None")
        ]
        if pythonish:
            add(
                "python-bool-in-payload",
                "Python-style value(s) in the query: "
                + ", ".join(pythonish)
                + " — Paymob sends lowercase true/false; whatever built this query used str(True)",
            )

    if received is None:
        if verifying:
            add(
                "no-hmac",
                "no HMAC to compare with: Paymob sends it as the 'hmac' query parameter "
                "(?hmac=... on the POST URL, among the parameters on the GET redirect), never a "
                "header",
            )
    elif not result.valid:
        _diagnose_mismatch(kind, data, fields, secret, received, raw_query, add)

    return Explanation(
        kind=kind,
        fields=fields,
        message=message,
        computed=result.computed,
        received=received,
        valid=result.valid and not problems,
        convention=result.convention if not problems else None,
        diagnoses=tuple(diagnoses),
        malformed=problems,
    )


NEAR_MISS_DIGITS = 8  # hex digits an altered signature may differ by (another key: ~120 of 128)


def _diagnose_mismatch(
    kind: CallbackKind,
    data: Mapping[str, Any],
    fields: tuple[FieldValue, ...],
    secret: str,
    received: str,
    raw_query: str | None,
    add: Callable[[str, str], None],
) -> None:
    stripped = received.strip().lower()
    if stripped != received and _same(stripped, _digest(secret, signing_string(fields))):
        what = []
        if received.strip() != received:
            what.append("padded with whitespace")
        if received.strip() != received.strip().lower():
            what.append("uppercase")
        add(
            "hex-format",
            "the signature is right but the received value is "
            + " and ".join(what)
            + ": Paymob sends 128 lowercase hex characters; compare the exact value",
        )
        return
    if not _HEX128.match(stripped):
        if re.fullmatch(r"[0-9a-f]{64}", stripped):
            add(
                "wrong-algorithm",
                "the received value is 64 hex characters (SHA-256); Paymob signs with HMAC-SHA512",
            )
        else:
            add(
                "not-hex",
                f"the received value is not a 128-character hex string (got {len(received)} "
                "characters): was it truncated or URL-encoded?",
            )

    candidates: list[tuple[str, str, str]] = []  # (code, message, digest)
    message_py = signing_string(fields, render=_python_render)
    candidates.append(
        (
            "python-bool",
            "matches when booleans are rendered Python-style (True/False): Paymob signs "
            "lowercase true/false; render booleans with 'true' if v else 'false', not str(v)",
            _digest(secret, message_py),
        )
    )
    candidates.append(
        (
            "php-bool",
            "matches when booleans are rendered PHP-style (1/empty): Paymob signs lowercase "
            "true/false; convert booleans explicitly",
            _digest(secret, signing_string(fields, render=_php_render)),
        )
    )
    candidates.append(
        (
            "sha256",
            "matches HMAC-SHA256: Paymob uses HMAC-SHA512",
            _hmac.new(secret.encode(), signing_string(fields).encode(), hashlib.sha256).hexdigest(),
        )
    )
    if kind is CallbackKind.RESPONSE and "order" in data and "order_id" in data:
        alt = [
            FieldValue(f.name, "order_id", data["order_id"], False) if f.name == "order" else f
            for f in fields
        ]
        candidates.append(
            (
                "order-vs-order_id",
                "matches when 'order_id' is signed instead of 'order': the redirect's order id "
                "parameter is 'order' (docs/paymob.md §8.4)",
                _digest(secret, signing_string(alt)),
            )
        )
    if kind is CallbackKind.RESPONSE and raw_query:
        raw = dict(parse_qsl(raw_query.replace("%", "%25"), keep_blank_values=True))
        raw.pop("hmac", None)
        undecoded = collect_fields(kind, raw)
        candidates.append(
            (
                "url-encoded",
                "matches when the values are signed still URL-encoded (e.g. %3A): decode the "
                "query values first, then sign the decoded text",
                _digest(secret, signing_string(undecoded)),
            )
        )
    if kind is not CallbackKind.RESPONSE:
        everything = "".join(
            render_value(v) for _, v in sorted(data.items()) if not isinstance(v, Mapping | list)
        )
        candidates.append(
            (
                "sorted-all-keys",
                "matches when every top-level key is sorted and signed: sign only the fixed list "
                "of fields (docs/paymob.md §8.1), not all keys",
                _digest(secret, everything),
            )
        )
    trimmed = secret.strip().strip("\"'").strip()
    if trimmed != secret and trimmed:
        candidates.append(
            (
                "secret-whitespace",
                "matches when the secret's surrounding whitespace or quotes are removed: your "
                "configured HMAC secret carries them (check the .env line)",
                _digest(trimmed, signing_string(fields)),
            )
        )
    if re.fullmatch(r"(?:[0-9a-fA-F]{2})+", secret):
        candidates.append(
            (
                "secret-hex-decoded",
                "matches when the secret is hex-decoded into bytes: Paymob uses the secret as "
                "plain UTF-8 text; use secret.encode(), not bytes.fromhex(secret)",
                _digest(bytes.fromhex(secret), signing_string(fields)),
            )
        )
    for code, text, digest in candidates:
        if _same(digest, stripped):
            add(code, text)
            return
    expected = _digest(secret, signing_string(fields))
    # Only a 128-digit value can be a near miss (a short or non-hex one was reported above).
    differing = (
        sum(a != b for a, b in zip(expected, stripped, strict=True))
        if len(stripped) == len(expected)
        else len(expected)
    )
    if differing <= NEAR_MISS_DIGITS:
        # Another secret or another message changes ~120 of the 128 digits; a handful means
        # the signature itself was altered (a typo, a copy-paste slip, a test tampering it).
        add(
            "altered-signature",
            f"the received hmac differs from the right one in only {differing} of 128 hex "
            "digits: the payload and secret are right, the signature text itself was altered "
            "(typo, copy-paste, a tampering test); not another secret",
        )
        return
    add(
        "wrong-secret",
        "no known mistake explains the difference: the payload was most likely signed with "
        "another HMAC secret (test and live have different ones: copy the secret of this mode "
        "from Paymob's dashboard, Settings → Account info), or a signed value was changed after "
        "signing (re-serialised timestamps, amounts, booleans)",
    )
