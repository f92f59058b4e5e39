"""Paymob's HMAC-SHA512 callback signatures: compute, verify (constant time) and explain.

Everything here follows docs/paymob.md §8 and imports only the standard library
(the error family, and documents for bounded JSON). The key is the HMAC secret as UTF-8 text; the message is the values of
a fixed list of fields concatenated with no separator; the digest is lowercase hex.

The package: fields (what is signed, rendering), shapes (the JSON shapes checked first),
compute (HMAC, verify), payloads (reading callbacks), diagnosis (why a signature mismatches).
The diagnosis module loads on first use (``explain``, or its names through ``__getattr__``):
plain verification never needs it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from paymobctl.errors import UsageError
from paymobctl.models import CallbackKind
from paymobctl.signing.compute import (
    KeyedSha512,
    Verification,
    compare_digest,
    compute,
    compute_values,
    digest,
    signed_values,
    verify,
)
from paymobctl.signing.fields import (
    DELIVERY_STATUS_FIELDS,
    EXPERIMENTAL_KINDS,
    RENDERING_RULES,
    TOKEN_FIELDS,
    TRANSACTION_FIELDS,
    FieldValue,
    NullConvention,
    SignedField,
    collect_fields,
    fields_for,
    lookup_path,
    render_value,
    signing_string,
)
from paymobctl.signing.payloads import (
    Payload,
    detect_kind,
    hmac_from_url,
    parse_body,
    parse_query,
    stored_payload,
)
from paymobctl.signing.shapes import (
    TRANSACTION_BOOLEANS,
    ShapeProblem,
    describe_shape_problems,
    shape_problems,
)

if TYPE_CHECKING:
    from paymobctl.signing.diagnosis import NEAR_MISS_DIGITS, Diagnosis, Explanation

_DIAGNOSIS_NAMES = frozenset({"NEAR_MISS_DIGITS", "Diagnosis", "Explanation"})


def __getattr__(name: str) -> Any:
    """The diagnosis module's names, loaded on first use."""
    if name in _DIAGNOSIS_NAMES:
        from paymobctl.signing import diagnosis

        return getattr(diagnosis, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def explain(
    kind: CallbackKind,
    data: Mapping[str, Any],
    secret: str,
    received: str | None,
    *,
    raw_query: str | None = None,
    verifying: bool = True,
) -> Explanation:
    """Everything a person needs to see why a signature does or does not match
    (``paymobctl.signing.diagnosis.explain``, loaded on first call)."""
    from paymobctl.signing.diagnosis import explain as _explain

    return _explain(kind, data, secret, received, raw_query=raw_query, verifying=verifying)


__all__ = [
    "DELIVERY_STATUS_FIELDS",
    "EXPERIMENTAL_KINDS",
    "NEAR_MISS_DIGITS",
    "RENDERING_RULES",
    "TOKEN_FIELDS",
    "TRANSACTION_BOOLEANS",
    "TRANSACTION_FIELDS",
    "CallbackKind",
    "Diagnosis",
    "Explanation",
    "FieldValue",
    "KeyedSha512",
    "NullConvention",
    "Payload",
    "ShapeProblem",
    "SignedField",
    "UsageError",
    "Verification",
    "collect_fields",
    "compare_digest",
    "compute",
    "compute_values",
    "describe_shape_problems",
    "detect_kind",
    "digest",
    "explain",
    "fields_for",
    "hmac_from_url",
    "lookup_path",
    "parse_body",
    "parse_query",
    "render_value",
    "shape_problems",
    "signed_values",
    "signing_string",
    "stored_payload",
    "verify",
]
