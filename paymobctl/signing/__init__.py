"""Paymob's HMAC-SHA512 callback signatures: compute, verify (constant time) and explain.

Everything here follows docs/paymob.md §8 and imports only the standard library
(the error family, and documents for bounded JSON). The key is the HMAC secret as UTF-8 text; the message is the values of
a fixed list of fields concatenated with no separator; the digest is lowercase hex.

The package: fields (what is signed, rendering), shapes (the JSON shapes checked first),
compute (HMAC, verify), payloads (reading callbacks), explain (why a signature mismatches).
"""

from __future__ import annotations

from paymobctl.errors import UsageError
from paymobctl.models import CallbackKind
from paymobctl.signing.compute import (
    Verification,
    compute,
    compute_values,
    digest,
    signed_values,
    verify,
)
from paymobctl.signing.explain import (
    NEAR_MISS_DIGITS,
    Diagnosis,
    Explanation,
    explain,
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
    "NullConvention",
    "Payload",
    "ShapeProblem",
    "SignedField",
    "UsageError",
    "Verification",
    "collect_fields",
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
