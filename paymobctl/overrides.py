"""``--set PATH=VALUE`` overrides of a callback body: parsing the text a user typed (the value
is JSON when it parses, otherwise a string) and applying dotted paths to a body. Pure.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from paymobctl.documents import loads_json
from paymobctl.errors import UsageError


@dataclass(frozen=True)
class Override:
    """One ``--set PATH=VALUE``: the dotted path, the JSON value, and the text as typed."""

    path: tuple[str, ...]
    value: Any
    text: str


def parse_override(text: str) -> Override:
    """``obj.source_data.pan=1234``: the value is JSON when it parses, otherwise a string."""
    if "=" not in text:
        raise UsageError(
            f"--set {text!r}: expected PATH=VALUE", hint="e.g. --set obj.success=false"
        )
    path_text, raw = text.split("=", 1)
    parts = tuple(path_text.strip().split("."))
    if not path_text.strip() or any(not p for p in parts):
        raise UsageError(
            f"--set {text!r}: empty path segment",
            hint="write dotted paths like obj.source_data.pan",
        )
    try:
        value = loads_json(raw, parse_constant=_no_constant)
    except ValueError:
        value = raw
    if isinstance(value, float) and not math.isfinite(value):  # 1e400: not JSON Paymob could send
        value = raw
    return Override(parts, value, text)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def apply_overrides(
    body: dict[str, Any], overrides: Sequence[Override], *, in_place: bool = False
) -> dict[str, Any]:
    """Apply ``--set`` paths to a copy of ``body`` (``in_place``: to ``body`` itself, a fresh
    one nobody else holds); a missing or non-object parent is an error."""
    result = body if in_place else copy.deepcopy(body)
    for override in overrides:
        target: Any = result
        walked: list[str] = []
        for part in override.path[:-1]:
            walked.append(part)
            if not isinstance(target, dict) or part not in target:
                raise UsageError(
                    f"--set {override.text!r}: {'.'.join(walked)!r} does not exist in the payload",
                    hint="paths start at the body's top level, e.g. obj.source_data.pan",
                )
            target = target[part]
        if not isinstance(target, dict):
            raise UsageError(
                f"--set {override.text!r}: {'.'.join(override.path[:-1])!r} is not an object",
                hint="only fields of JSON objects can be set",
            )
        target[override.path[-1]] = override.value
    return result
