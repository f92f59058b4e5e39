"""Captured callback samples shipped with paymobctl, for trying ``paymobctl hmac`` with no setup."""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from typing import Any

from paymobctl.errors import UsageError


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
    path = resources.files("paymobctl") / "samples" / f"{name}.json"
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
    folder = resources.files("paymobctl") / "samples"
    return sorted(
        entry.name.removesuffix(".json")
        for entry in folder.iterdir()
        if entry.name.endswith(".json")
    )


def load(name: str) -> Sample:
    available = names()
    if name not in available:
        raise UsageError(
            f"unknown sample {name!r}", hint="available samples: " + ", ".join(available)
        )
    return _load(name)
