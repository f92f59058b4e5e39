"""Signing dialects: Paymob's HMAC as common receiver implementations get it wrong (pure).

Each dialect computes the signature the way a verifier with one well-known mistake computes it,
so a probe signed under a dialect is accepted only by an endpoint that makes that mistake. The
correct rules are docs/paymob.md §8.1–§8.4 (ARCHITECTURE.md "HMAC
rules"); the mistakes are the ones `hmac verify --explain` diagnoses on a captured callback,
seen from the other side. Used by the receiver diagnosis (``simulate``, ``checklist``) and meant
for a conformance suite (``webhook test``).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import quote

from paymobctl import signing
from paymobctl.models import CallbackKind
from paymobctl.signing import FieldValue, NullConvention, SignedField


class Mistake(StrEnum):
    """The names of common ways receivers get Paymob's HMAC wrong, as shown to users."""

    PYTHON_BOOL = "python-bool"
    PHP_BOOL = "php-bool"
    ORDER_ID = "order_id-for-order"
    URL_ENCODED = "url-encoded"
    NONE_FOR_NULL = "none-for-null"
    PAYLOAD_ORDER = "payload-order"
    EXTRA_FIELD = "extra-field"
    TRANSACTION_LIST_FOR_TOKEN = "transaction-list-for-token"


@dataclass(frozen=True)
class Dialect:
    """One common HMAC mistake: the callbacks it affects, what it looks like, and its fix."""

    mistake: Mistake
    kinds: frozenset[CallbackKind]  # the callbacks where this mistake can show
    finding: str  # what the endpoint does, and what Paymob does
    fix: str


_POST = frozenset({CallbackKind.TRANSACTION})
_ALL = frozenset({CallbackKind.TRANSACTION, CallbackKind.TOKEN, CallbackKind.RESPONSE})
_TXN = frozenset({CallbackKind.TRANSACTION, CallbackKind.RESPONSE})

# The 21st field a verifier adds: the unsigned ``is_void`` sits next to the signed ``is_voided``
# in every callback (docs/paymob.md §7.1), and copying the wrong one is an easy slip.
EXTRA_FIELD = SignedField("is_void", "is_void")

DIALECTS: tuple[Dialect, ...] = (
    Dialect(
        Mistake.PYTHON_BOOL,
        _POST,
        "your endpoint renders booleans as `True`/`False`: Paymob sends `true`/`false`",
        "render booleans with 'true' if value else 'false', not str(value)",
    ),
    Dialect(
        Mistake.PHP_BOOL,
        _POST,
        "your endpoint renders booleans as `1`/empty (PHP's string cast): Paymob sends "
        "`true`/`false`",
        "convert booleans explicitly: $v ? 'true' : 'false'",
    ),
    Dialect(
        Mistake.ORDER_ID,
        _TXN,
        "your endpoint reads the order id from `order_id`: Paymob signs `order.id` in the POST "
        "and the `order` parameter in the redirect",
        "read obj['order']['id'] (POST) and the 'order' query parameter (GET redirect)",
    ),
    Dialect(
        Mistake.URL_ENCODED,
        frozenset({CallbackKind.RESPONSE}),
        "your endpoint signs the redirect's values still URL-encoded (`%3A`): Paymob signs the "
        "decoded text",
        "decode the query (request.GET does) and sign the decoded values",
    ),
    Dialect(
        Mistake.NONE_FOR_NULL,
        _ALL,
        "your endpoint renders a null or missing value as `None`: Paymob's canonical rendering "
        "is the empty string",
        "render None as '' (or reject the callback), never str(None)",
    ),
    Dialect(
        Mistake.PAYLOAD_ORDER,
        _ALL,
        "your endpoint concatenates the signed fields in the order the payload lists them: "
        "Paymob uses a fixed alphabetical list",
        "iterate over the fixed field list (`paymobctl hmac fields`), not over the payload",
    ),
    Dialect(
        Mistake.EXTRA_FIELD,
        _TXN,
        "your endpoint signs a 21st field, `is_void`: Paymob signs exactly 20 (`is_voided`, not "
        "`is_void`)",
        "use exactly the fields `paymobctl hmac fields transaction` prints",
    ),
    Dialect(
        Mistake.TRANSACTION_LIST_FOR_TOKEN,
        frozenset({CallbackKind.TOKEN}),
        "your endpoint verifies TOKEN callbacks with the TRANSACTION field list: TOKEN has its "
        "own 8 fields",
        "pick the field list by the body's 'type' (`paymobctl hmac fields token`)",
    ),
)


@dataclass(frozen=True)
class Signed:
    """A payload as a mistaken verifier would accept it: what to send and its signature."""

    dialect: Dialect
    data: dict[str, Any]  # a POST obj, or the flat parameters of a redirect (text values)
    message: str
    hmac: str


def applicable(kind: CallbackKind) -> tuple[Dialect, ...]:
    """The mistakes worth probing for a callback of this kind."""
    return tuple(d for d in DIALECTS if kind in d.kinds)


def sign(
    dialect: Dialect, kind: CallbackKind, data: Mapping[str, Any], secret: str
) -> Signed | None:
    """``data`` signed the way ``dialect``'s verifier computes it; None when the mistake does
    not apply or would not change the signature (so it cannot be told apart from Paymob's)."""
    if kind not in dialect.kinds:
        return None
    payload = copy.deepcopy(dict(data))
    _PREPARE.get(dialect.mistake, _unchanged)(kind, payload)
    message = _MESSAGES[dialect.mistake](kind, payload)
    if message == signing.signing_string(signing.collect_fields(kind, payload)):
        return None
    return Signed(dialect, payload, message, signing.digest(secret, message))


# --- preparing the payload: make the mistake visible ----------------------------------------------

# A null signed value only differs from its canonical rendering when there is one, and a real
# callback has none; the probe carries one in the field least likely to be shape-checked.
NULL_FIELD = {
    CallbackKind.TRANSACTION: "source_data.pan",
    CallbackKind.TOKEN: "email",
    CallbackKind.RESPONSE: "source_data.pan",
}


def _unchanged(kind: CallbackKind, data: dict[str, Any]) -> None:
    del kind, data


def _null_one(kind: CallbackKind, data: dict[str, Any]) -> None:
    path = NULL_FIELD[kind]
    if kind is CallbackKind.RESPONSE:
        data.pop(path, None)  # a redirect has no null: the parameter is simply missing
        return
    *parents, last = path.split(".")
    target: Any = data
    for part in parents:
        target = target.get(part) if isinstance(target, dict) else None
    if isinstance(target, dict):
        target[last] = None


def _drop_order_id(kind: CallbackKind, data: dict[str, Any]) -> None:
    del kind
    data.pop("order_id", None)  # the mistaken verifier then finds nothing under that name


_PREPARE: dict[Mistake, Callable[[CallbackKind, dict[str, Any]], None]] = {
    Mistake.NONE_FOR_NULL: _null_one,
    Mistake.ORDER_ID: _drop_order_id,
}


# --- the mistaken signing strings ----------------------------------------------------------------


def _fields(kind: CallbackKind, data: Mapping[str, Any]) -> tuple[FieldValue, ...]:
    return signing.collect_fields(kind, data)


def _rendered(
    fields: tuple[FieldValue, ...], render: Callable[[object], str] = signing.render_value
) -> str:
    return "".join(render(f.raw) for f in fields)


def _python(value: object) -> str:
    return "None" if value is None else str(value) if isinstance(value, bool) else _canon(value)


def _php(value: object) -> str:
    return ("1" if value else "") if isinstance(value, bool) else _canon(value)


def _canon(value: object) -> str:
    return signing.render_value(value)


def _python_bool(kind: CallbackKind, data: Mapping[str, Any]) -> str:
    return _rendered(_fields(kind, data), _python)


def _php_bool(kind: CallbackKind, data: Mapping[str, Any]) -> str:
    return _rendered(_fields(kind, data), _php)


def _order_id(kind: CallbackKind, data: Mapping[str, Any]) -> str:
    order_name = "order" if kind is CallbackKind.RESPONSE else "order.id"
    return "".join(
        _canon(data.get("order_id")) if f.name == order_name else _canon(f.raw)
        for f in _fields(kind, data)
    )


def _url_encoded(kind: CallbackKind, data: Mapping[str, Any]) -> str:
    # The same quoting as the redirect on the wire (redirects.encode_params).
    return "".join(quote(_canon(f.raw), safe="") for f in _fields(kind, data))


def _none_for_null(kind: CallbackKind, data: Mapping[str, Any]) -> str:
    return signing.signing_string(_fields(kind, data), NullConvention.NONE)


def _payload_order(kind: CallbackKind, data: Mapping[str, Any]) -> str:
    fields = _fields(kind, data)
    specs = signing.fields_for(kind)

    def position(index: int) -> tuple[int, ...]:
        spec = specs[index]
        if kind is CallbackKind.RESPONSE:
            key = fields[index].used_key or spec.get_key
            return (_index(data, key),)
        places: list[int] = []
        current: Any = data
        for part in spec.post_path.split("."):
            places.append(_index(current, part))
            current = current.get(part) if isinstance(current, Mapping) else None
        return tuple(places)

    ordered = sorted(range(len(fields)), key=position)
    return "".join(_canon(fields[i].raw) for i in ordered)


def _index(mapping: object, key: str) -> int:
    if isinstance(mapping, Mapping):
        for number, name in enumerate(mapping):
            if name == key:
                return number
    return 1_000_000  # missing: after everything present


def _extra_field(kind: CallbackKind, data: Mapping[str, Any]) -> str:
    extra = signing.lookup_path(data, EXTRA_FIELD.post_path)
    parts = []
    for f in _fields(kind, data):
        if f.name == "is_voided":
            parts.append(_canon(extra))  # alphabetically, is_void comes just before is_voided
        parts.append(_canon(f.raw))
    return "".join(parts)


def _transaction_list(kind: CallbackKind, data: Mapping[str, Any]) -> str:
    del kind
    return _rendered(_fields(CallbackKind.TRANSACTION, data))


_MESSAGES: dict[Mistake, Callable[[CallbackKind, Mapping[str, Any]], str]] = {
    Mistake.PYTHON_BOOL: _python_bool,
    Mistake.PHP_BOOL: _php_bool,
    Mistake.ORDER_ID: _order_id,
    Mistake.URL_ENCODED: _url_encoded,
    Mistake.NONE_FOR_NULL: _none_for_null,
    Mistake.PAYLOAD_ORDER: _payload_order,
    Mistake.EXTRA_FIELD: _extra_field,
    Mistake.TRANSACTION_LIST_FOR_TOKEN: _transaction_list,
}
