"""Computing and verifying the HMAC-SHA512: the key is the secret as UTF-8 text, the digest
lowercase hex, compared in constant time; null conventions tried only after a mismatch.
"""

from __future__ import annotations

import importlib
import operator
from _operator import _compare_digest
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from typing import Any, Protocol, cast

from paymobctl.models import CallbackKind
from paymobctl.signing.fields import (
    TRANSACTION_FIELDS,
    NullConvention,
    _Record,
    fields_for,
    render_value,
)
from paymobctl.signing.shapes import ShapeProblem, _values_ok, shape_problems

# SHA-512 and the constant-time comparison without OpenSSL: the interpreter's own SHA-512
# (``_sha512`` on 3.11, ``_sha2`` from 3.12) loads in a fraction of a millisecond where
# ``hashlib``/``hmac`` load libcrypto (~12 M instructions, a third of `hmac verify`'s start-up),
# and for a callback-sized message HMAC from two copied states is faster than OpenSSL's HMAC
# object (2.3 vs 3.8 µs). ``_operator._compare_digest`` is the constant-time comparison that
# ``hmac.compare_digest`` itself falls back to (C, every build). A Python built without its own
# SHA-512 uses hashlib's; tests check the result against ``hmac.new``.


class _Hash(Protocol):
    def copy(self) -> _Hash: ...
    def update(self, data: bytes, /) -> None: ...
    def digest(self) -> bytes: ...
    def hexdigest(self) -> str: ...


def _sha512_constructor() -> Callable[[bytes], _Hash]:
    for name in ("_sha512", "_sha2"):  # the interpreter's own: 3.11, then 3.12 and later
        try:
            return cast(Callable[[bytes], _Hash], importlib.import_module(name).sha512)
        except (ImportError, AttributeError):
            continue
    import hashlib  # pragma: no cover - a Python built without its own SHA-512

    return hashlib.sha512  # pragma: no cover


_sha512 = _sha512_constructor()
compare_digest: Callable[[bytes, bytes], bool] = _compare_digest

_BLOCK = 128  # SHA-512's block size in bytes (RFC 2104's B)


class KeyedSha512:
    """HMAC-SHA512 (RFC 2104) keyed once: SHA-512 states already fed the padded key XOR ipad
    and XOR opad, copied for each message (what an HMAC object holds, cheaper to copy)."""

    __slots__ = ("inner", "outer")

    def __init__(self, key: bytes) -> None:
        if len(key) > _BLOCK:
            key = _sha512(key).digest()
        key = key.ljust(_BLOCK, b"\0")
        self.inner = _sha512(key.translate(_IPAD))
        self.outer = _sha512(key.translate(_OPAD))

    def _finished(self, message: bytes) -> _Hash:
        inner = self.inner.copy()
        inner.update(message)
        outer = self.outer.copy()
        outer.update(inner.digest())
        return outer

    def digest(self, message: bytes) -> bytes:
        """The HMAC of ``message``, raw."""
        return self._finished(message).digest()

    def hexdigest(self, message: bytes) -> str:
        """The HMAC of ``message``, lowercase hex."""
        return self._finished(message).hexdigest()


_IPAD = bytes(b ^ 0x36 for b in range(256))
_OPAD = bytes(b ^ 0x5C for b in range(256))


@lru_cache(maxsize=8)
def keyed(key: bytes) -> KeyedSha512:
    """The :class:`KeyedSha512` of ``key``, kept for the few secrets a process uses."""
    return KeyedSha512(key)


def _digest(secret: str | bytes, message: str) -> str:
    # surrogatepass: a lone surrogate (never in Paymob's callbacks, possible in a forged one)
    # yields a signature that simply does not match, instead of an exception.
    key = secret.encode("utf-8", "surrogatepass") if isinstance(secret, str) else secret
    return keyed(key).hexdigest(message.encode("utf-8", "surrogatepass"))


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


def _signing_text(values: Sequence[object]) -> str:
    """:func:`render_value` of each value, joined (strings and booleans inline: the hot path)."""
    return "".join([
        cast(str, v) if (t := type(v)) is str else ("true" if v else "false") if t is bool
        else render_value(v)
        for v in values
    ])  # fmt: skip


def _same(a: str, b: str) -> bool:
    return compare_digest(a.encode("ascii", "replace"), b.encode("ascii", "replace"))


class Verification(_Record):
    """What ``verify`` found: valid or not, the computed HMAC, the null convention that matched."""

    _fields = ("valid", "kind", "computed", "received", "convention", "malformed")
    __slots__ = _fields

    valid: bool
    kind: CallbackKind
    computed: str  # canonical ("" when malformed: the HMAC is not computed)
    received: str | None
    convention: NullConvention | None  # which null rendering matched (None when invalid)
    malformed: tuple[ShapeProblem, ...]  # signed fields of the wrong shape: never valid

    def __init__(
        self,
        valid: bool,
        kind: CallbackKind,
        computed: str,
        received: str | None,
        convention: NullConvention | None,
        malformed: tuple[ShapeProblem, ...] = (),
    ) -> None:
        object.__setattr__(self, "valid", valid)
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "computed", computed)
        object.__setattr__(self, "received", received)
        object.__setattr__(self, "convention", convention)
        object.__setattr__(self, "malformed", malformed)


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


def compute_values(values: Sequence[object], secret: str) -> str:
    """:func:`compute` of a payload whose signed values (as :func:`signed_values` reads them)
    are already known: the builders sign what they put in without reading it back."""
    return _digest(secret, _signing_text(values))
