"""Callback samples shipped with paymobctl (real ones from Paymob's docs, and invented ones,
labelled), for trying ``paymobctl hmac`` with no setup."""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from paymobctl.errors import UsageError

# Package data next to this module (installed as regular files, see pyproject's package-data).
_FOLDER = Path(__file__).with_name("samples")


class Origin(StrEnum):
    """Where a sample's values come from: Paymob's own documentation, or written for paymobctl."""

    REAL = "real"  # published by Paymob (its docs): the values are Paymob's own
    INVENTED = "invented"  # written for paymobctl after the reference; HMAC recomputed


@dataclass(frozen=True)
class Sample:
    """A bundled callback with its provenance, to check a receiver or the signer against."""

    name: str
    description: str
    origin: Origin
    source: str  # where the values come from (provenance)
    secret: str | None  # the published secret that signed it; None when it was never published
    url: str  # the URL it was delivered to: carries ?hmac= (POST) or the whole query (GET)
    method: str  # POST or GET
    body: dict[str, Any] | None

    @property
    def body_text(self) -> str:
        """The body as JSON text, as it is sent."""
        return json.dumps(self.body, ensure_ascii=False)

    @property
    def verifiable(self) -> bool:
        """Whether the sample's HMAC can be checked (its secret was published)."""
        return self.secret is not None

    def require_secret(self) -> str:
        """The sample's published secret, or a usage error saying why there is none."""
        if self.secret is None:
            raise UsageError(
                f"sample {self.name!r} has no published secret, so paymobctl cannot verify it",
                hint="give the secret with --secret-file if you have it, or pick a sample "
                "marked verifiable in `paymobctl hmac samples`",
            )
        return self.secret


def _load(name: str) -> Sample:
    path = _FOLDER / f"{name}.json"
    document = json.loads(path.read_text(encoding="utf-8"))
    return Sample(
        name=name,
        description=document["description"],
        origin=Origin(document["origin"]),
        source=document["source"],
        secret=document["secret"],
        url=document["url"],
        method=document["method"],
        body=document.get("body"),
    )


def names() -> list[str]:
    """The bundled samples' names, sorted, to list or to pick one for :func:`load`."""
    return sorted(
        p.name.removesuffix(".json") for p in _FOLDER.iterdir() if p.name.endswith(".json")
    )


def load(name: str) -> Sample:
    """The bundled sample called ``name``; a usage error lists the names when there is none."""
    available = names()
    if name not in available:
        raise UsageError(
            f"unknown sample {name!r}", hint="available samples: " + ", ".join(available)
        )
    return _load(name)
