"""Captured callback samples shipped with paymobctl, for trying ``paymobctl hmac`` with no setup."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from paymobctl.errors import UsageError

# Package data next to this module (installed as regular files, see pyproject's package-data).
_FOLDER = Path(__file__).with_name("samples")


@dataclass(frozen=True)
class Sample:
    name: str
    description: str
    source: str  # where the values come from
    secret: str  # the (public) secret that signed it
    url: str  # the URL it was delivered to: carries ?hmac= (POST) or the whole query (GET)
    method: str  # POST or GET
    body: dict[str, Any] | None

    @property
    def body_text(self) -> str:
        return json.dumps(self.body, ensure_ascii=False)


def _load(name: str) -> Sample:
    path = _FOLDER / f"{name}.json"
    document = json.loads(path.read_text(encoding="utf-8"))
    return Sample(
        name=name,
        description=document["description"],
        source=document["source"],
        secret=document["secret"],
        url=document["url"],
        method=document["method"],
        body=document.get("body"),
    )


def names() -> list[str]:
    return sorted(
        p.name.removesuffix(".json") for p in _FOLDER.iterdir() if p.name.endswith(".json")
    )


def load(name: str) -> Sample:
    available = names()
    if name not in available:
        raise UsageError(
            f"unknown sample {name!r}", hint="available samples: " + ", ".join(available)
        )
    return _load(name)
