"""Callback templates: the registry of ``paymobctl/templates/*.json``, ``{{hole}}`` filling, and
each template compiled once into a prototype that builds the filled dict, and its wire text.

Filling a template by walking it (parse the JSON, merge the overlays, match every string against
the hole pattern) cost ~1 ms per TRANSACTION; the sandbox, ``simulate``, the testing API and the
load generator build one per callback. A :class:`Prototype` does that walk once: the template,
with a marker in every hole, becomes Python source for one dict display (constants inline, holes
read from the context) and one string join of the compact JSON (constants pre-serialised), so a
callback costs what its new values cost. Tests check both agree with :func:`fill` and
``delivery.wire_json`` (tests/test_callbacks_golden.py pins today's payloads byte for byte).
"""

from __future__ import annotations

import copy
import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

# Every template file shipped in paymobctl/templates, and what it is for. A test checks that
# this registry and the folder agree, and that every template builds and verifies.
TEMPLATES: dict[str, str] = {
    "transaction.json": "TRANSACTION envelope and obj",
    "source.card.json": "card fields (MIGS gateway data)",
    "source.wallet.json": "mobile wallet fields",
    "source.kiosk.json": "kiosk (aggregator) fields",
    "outcomes.json": "outcome overlays per source, and refused combinations",
    "order.json": "the order object (callbacks and the orders API)",
    "payment_key_claims.json": "payment key claims per key flow (legacy, intention)",
    "regions.json": "region-true cities, phones, wallets and acquirers",
    "token.json": "TOKEN envelope",
    "delivery_status.json": "DELIVERY_STATUS envelope (experimental)",
    "redirect.json": "GET response-callback parameters",
    "pay_response.json": "payments/pay flat TOKEN response",
}


@cache
def _template_text(name: str) -> str:
    if name not in TEMPLATES:
        raise KeyError(name)
    return (resources.files("paymobctl") / "templates" / name).read_text(encoding="utf-8")


def template(name: str) -> dict[str, Any]:
    """A fresh copy of a template, without its ``_comment``."""
    data: dict[str, Any] = json.loads(_template_text(name))
    data.pop("_comment", None)
    return data


@cache
def shared(name: str) -> Mapping[str, Any]:
    """One parsed copy of a template for reading (never change it: use :func:`template`)."""
    return template(name)


# --- filling holes -------------------------------------------------------------------------------

_HOLE = re.compile(r"\{\{(\w+)\}\}")


def fill(value: Any, context: Mapping[str, Any]) -> Any:
    """Replace ``{{name}}`` holes. A string that is only a hole takes the value's own type."""
    if isinstance(value, dict):
        return {k: fill(v, context) for k, v in value.items()}
    if isinstance(value, list):
        return [fill(v, context) for v in value]
    if isinstance(value, str):
        whole = _HOLE.fullmatch(value)
        if whole:
            return context[whole.group(1)]
        return _HOLE.sub(lambda m: str(context[m.group(1)]), value)
    return value


def deep_merge(base: dict[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    """Merge ``overlay`` into ``base`` (objects recursively, anything else replaced by a copy)."""
    for key, value in overlay.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            deep_merge(base[key], value)
        else:
            base[key] = copy.deepcopy(value)
    return base


# --- prototypes ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Hole:
    """A string that is only ``{{name}}``: the context's value, of its own JSON type."""

    name: str


@dataclass(frozen=True)
class Joined:
    """A string with holes inside: literal text and hole names, each value inserted as ``str``."""

    parts: tuple[str | Hole, ...]


@dataclass(frozen=True)
class Nested:
    """A template inside a template: filled from its own context, ``context[name]``."""

    name: str
    skeleton: Any


def skeleton(value: Any) -> Any:
    """``value`` with a :class:`Hole` or :class:`Joined` marker wherever :func:`fill` fills."""
    if isinstance(value, dict):
        return {k: skeleton(v) for k, v in value.items()}
    if isinstance(value, list):
        return [skeleton(v) for v in value]
    if isinstance(value, str):
        whole = _HOLE.fullmatch(value)
        if whole:
            return Hole(whole.group(1))
        pieces = _HOLE.split(value)  # literal, name, literal, name, ..., literal
        if len(pieces) == 1:
            return value
        return Joined(
            tuple(
                Hole(piece) if i % 2 else piece for i, piece in enumerate(pieces) if i % 2 or piece
            )
        )
    return value


def nest(value: Any, templates: Mapping[str, Any]) -> Any:
    """``value`` with each whole hole named in ``templates`` replaced by that :class:`Nested`
    skeleton, so the prototype fills it in the same pass, from ``context[name]``."""
    if isinstance(value, dict):
        return {k: nest(v, templates) for k, v in value.items()}
    if isinstance(value, list):
        return [nest(v, templates) for v in value]
    if isinstance(value, Hole) and value.name in templates:
        return Nested(value.name, templates[value.name])
    return value


# The body's bytes are ``delivery.wire_json``: compact, UTF-8, key order kept, no NaN. One encoder
# with exactly those settings renders constants (once) and values (per callback).
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)
_quote: Callable[[str], str] = json.encoder.encode_basestring
_finite: Callable[[float], bool] = math.isfinite


def json_text(value: object) -> str:
    """``value`` as ``json.dumps(value, separators=(",", ":"), ensure_ascii=False,
    allow_nan=False)`` writes it; the common scalars without the encoder's set-up."""
    kind = type(value)
    if kind is str:
        return _quote(value)  # type: ignore[arg-type]
    if kind is int:
        return int.__repr__(value)
    if kind is bool:
        return "true" if value else "false"
    if value is None:
        return "null"
    if kind is float and _finite(value):  # type: ignore[arg-type]
        return float.__repr__(value)  # what the encoder writes
    if kind is list and all(type(item) is str for item in value):  # type: ignore[attr-defined]
        return "[" + ",".join(map(_quote, value)) + "]"  # type: ignore[call-overload]
    if kind is dict and not value:
        return "{}"
    return _ENCODER.encode(value)


class Prototype:
    """A template compiled into two functions of its context: :attr:`build` returns what
    :func:`fill` returns (fresh containers each call; context values inserted as they are) and
    :attr:`render` its compact JSON text (``delivery.wire_json`` of it, decoded)."""

    def __init__(self, shape: Any, name: str) -> None:
        self.shape = shape
        self.name = name
        # render(): each distinct value rendered once into a local (strings and integers inline,
        # the rest by json_text), then one join of those and the constants' text between them.
        values: dict[str, str] = {}  # expression -> local name
        merged: list[str] = []
        literal = ""
        for is_code, piece in _text(shape, "c"):
            if not is_code:
                literal += piece
                continue
            if literal:
                merged.append(repr(literal))
                literal = ""
            merged.append(values.setdefault(piece, f"v{len(values)}"))
        if literal:
            merged.append(repr(literal))
        lines = [
            f"    {local} = {expression}\n"
            f"    {local} = _quote({local}) if (t := type({local})) is str "
            f"else _int({local}) if t is int else _json({local})\n"
            for expression, local in values.items()
        ]
        source = (
            f"def build(c):\n    return {_python(shape, 'c')}\n\n"
            f"def render(c):\n{''.join(lines)}    return ''.join(({', '.join(merged)},))\n"
        )
        namespace: dict[str, Any] = {"_json": json_text, "_quote": _quote, "_int": int.__repr__}
        # The source holds only repr() of the package's own template constants and context
        # lookups by hole name (\w+): nothing from a user or the network reaches it.
        exec(compile(source, f"<prototype {name}>", "exec"), namespace)  # noqa: S102
        self.build: Callable[[Mapping[str, Any]], Any] = namespace["build"]
        self.render: Callable[[Mapping[str, Any]], str] = namespace["render"]
        self._readers: dict[tuple[tuple[str, ...], ...], Reader | None] = {}

    def reader(self, paths: tuple[tuple[str, ...], ...]) -> Reader | None:
        """A function of the context returning, for each path, the value ``build(c)`` would
        hold there (None where the path is missing), without building the dict; None when a
        path runs through a hole (its value is not known until built). Compiled once per paths."""
        if paths not in self._readers:
            expressions = [_read(self.shape, path, "c") for path in paths]
            if any(e is None for e in expressions):
                self._readers[paths] = None
            else:
                source = f"def read(c):\n    return [{', '.join(map(str, expressions))}]\n"
                namespace: dict[str, Any] = {}
                # As above: only repr() of template constants and lookups by hole name.
                exec(compile(source, "<prototype reader>", "exec"), namespace)  # noqa: S102
                self._readers[paths] = namespace["read"]
        return self._readers[paths]


Reader = Callable[[Mapping[str, Any]], list[Any]]


def bake(value: Any, fixed: Mapping[str, Any]) -> Any:
    """``value`` (a shape) with each hole named in ``fixed`` replaced by that value, and each
    :class:`Nested` by its skeleton baked with ``fixed[name]`` (a mapping, or absent): a shape
    whose render writes those values as constants (never use its ``build``: they are shared)."""
    if isinstance(value, dict):
        return {k: bake(v, fixed) for k, v in value.items()}
    if isinstance(value, list):
        return [bake(v, fixed) for v in value]
    if isinstance(value, Hole):
        return fixed.get(value.name, value)
    if isinstance(value, Joined):
        parts = [str(fixed[p.name]) if isinstance(p, Hole) and p.name in fixed else p
                 for p in value.parts]  # fmt: skip
        merged: list[str | Hole] = []
        for part in parts:
            if isinstance(part, str) and merged and isinstance(merged[-1], str):
                merged[-1] += part
            else:
                merged.append(part)
        if len(merged) == 1 and isinstance(merged[0], str):
            return merged[0]
        return Joined(tuple(merged))
    if isinstance(value, Nested):
        return Nested(value.name, bake(value.skeleton, fixed.get(value.name) or {}))
    return value


def _read(value: Any, path: tuple[str, ...], context: str) -> str | None:
    """The expression :func:`_python` would build at ``path`` inside ``value`` ("None" where the
    path is missing), or None when the path goes through a hole."""
    for part in path:
        while isinstance(value, Nested):
            value, context = value.skeleton, f"{context}[{value.name!r}]"
        if isinstance(value, Hole | Joined):
            return None
        if not isinstance(value, dict) or part not in value:
            return "None"
        value = value[part]
    while isinstance(value, Nested):
        value, context = value.skeleton, f"{context}[{value.name!r}]"
    return _python(value, context)


def _python(value: Any, context: str) -> str:
    """A Python expression building ``value`` with its holes read from ``context``."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k!r}: {_python(v, context)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_python(v, context) for v in value) + "]"
    if isinstance(value, Hole):
        return f"{context}[{value.name!r}]"
    if isinstance(value, Joined):
        return "(" + " + ".join(_joined_part(part, context) for part in value.parts) + ")"
    if isinstance(value, Nested):
        return _python(value.skeleton, f"{context}[{value.name!r}]")
    if value is None or isinstance(value, bool | int | float | str):
        return repr(value)
    raise TypeError(f"cannot compile {type(value).__name__} in a template")


def _joined_part(part: str | Hole, context: str) -> str:
    return repr(part) if isinstance(part, str) else f"str({context}[{part.name!r}])"


def _text(value: Any, context: str) -> list[tuple[bool, str]]:
    """The compact JSON of ``value`` as pieces: (False, literal text) or (True, an expression)."""
    if isinstance(value, dict):
        out: list[tuple[bool, str]] = [(False, "{")]
        for index, (key, item) in enumerate(value.items()):
            out.append((False, ("," if index else "") + _quote(key) + ":"))
            out.extend(_text(item, context))
        return [*out, (False, "}")]
    if isinstance(value, list):
        out = [(False, "[")]
        for index, item in enumerate(value):
            if index:
                out.append((False, ","))
            out.extend(_text(item, context))
        return [*out, (False, "]")]
    if isinstance(value, Hole | Joined):  # Joined: always a str, so rendered by _quote
        return [(True, _python(value, context))]
    if isinstance(value, Nested):
        return _text(value.skeleton, f"{context}[{value.name!r}]")
    return [(False, json_text(value))]
