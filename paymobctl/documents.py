"""Parsing untrusted JSON and TOML within a nesting bound: a clean error, never a RecursionError.

Python's ``json`` and ``tomllib`` recurse once per nesting level, so ``[[[[…]]]]`` 100,000 deep
raises ``RecursionError`` (an internal error, exit 70 / HTTP 500), and a document that parses
just under the interpreter's limit can still overflow the stack of whatever walks it next
(masking, re-serialising, rendering). Every document read from a request, a response, a file or
a config goes through here instead: deeper than :data:`MAX_DEPTH` is a :class:`TooDeep`, a
``ValueError`` like every other malformed document, so existing ``except ValueError`` paths turn
it into a 400 or an exit 2. Real Paymob callbacks nest at most 6 levels (the captured samples in
tests/data/real-samples: s01, s06, r05), so 64 leaves ample room.
"""

from __future__ import annotations

import json
from typing import Any

MAX_DEPTH = 64


class TooDeep(ValueError):
    """A document nested deeper than :data:`MAX_DEPTH` levels."""

    def __init__(self, what: str = "JSON", limit: int = MAX_DEPTH) -> None:
        super().__init__(f"{what} nested too deeply (more than {limit} levels)")


def depth(value: Any) -> int:
    """How many containers deep ``value`` nests (a scalar is 0), without recursing."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        level += 1
        deepest = max(deepest, level)
        if deepest > MAX_DEPTH:
            return deepest  # deep enough to refuse: stop walking
        stack.extend((child, level) for child in children)
    return deepest


def _openers(text: str | bytes) -> int:
    if isinstance(text, str):
        return text.count("[") + text.count("{")
    return text.count(b"[") + text.count(b"{")


def loads_json(text: str | bytes, **options: Any) -> Any:
    """``json.loads``, refusing documents nested deeper than :data:`MAX_DEPTH` (:class:`TooDeep`).

    Cheap for ordinary documents: the structure is only walked when the text holds more
    brackets than the limit (a callback has about ten).
    """
    try:
        value = json.loads(text, **options)
    except RecursionError:
        raise TooDeep() from None
    if _openers(text) > MAX_DEPTH and depth(value) > MAX_DEPTH:
        raise TooDeep()
    return value


def loads_toml(text: str) -> dict[str, Any]:
    """``tomllib.loads`` with the same bound (TOML's arrays and inline tables nest too)."""
    import tomllib

    try:
        value = tomllib.loads(text)
    except RecursionError:
        raise TooDeep("TOML") from None
    if _openers(text) > MAX_DEPTH and depth(value) > MAX_DEPTH:
        raise TooDeep("TOML")
    return value
