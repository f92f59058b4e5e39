"""Explaining a signature: every signed field, the signed string, and why a mismatch happened
(the common verifier mistakes, a near miss, another secret).
"""

from __future__ import annotations

import hashlib
import hmac as _hmac
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from paymobctl.models import CallbackKind
from paymobctl.signing.compute import _digest, _same, verify
from paymobctl.signing.fields import (
    _NULL_TEXT,
    EXPERIMENTAL_KINDS,
    FieldValue,
    NullConvention,
    collect_fields,
    render_value,
    signing_string,
)
from paymobctl.signing.payloads import detect_kind
from paymobctl.signing.shapes import ShapeProblem, shape_problems


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
