"""The configuration keys: names, kinds, environment variables, parsing, and provenance.

Every value paymobctl reads from a flag, the environment, ``.env`` or a profile is one of
:data:`KEYS`, parsed by :func:`parse_value` into the type of its kind, and carried as a
:class:`Resolved` that knows where it came from (:class:`Source` and the exact origin).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal
from urllib.parse import urlsplit

from paymobctl.errors import ConfigError, UsageError
from paymobctl.models import Mode, Region, Secret, check_currency, lenient_int

PROFILE_ENV = "PAYMOB_PROFILE"


class ValueKind(StrEnum):
    """The type a key's value parses to."""

    SECRET = "secret"
    TEXT = "text"
    INT = "int"
    URL = "url"
    REGION = "region"
    MODE = "mode"
    CURRENCY = "currency"
    BOOL = "bool"


@dataclass(frozen=True)
class KeySpec:
    """One configuration key: its name, kind, environment variables and help."""

    name: str
    kind: ValueKind
    env: tuple[str, ...]
    help: str


KEYS: dict[str, KeySpec] = {
    spec.name: spec
    for spec in (
        KeySpec("api_key", ValueKind.SECRET, ("PAYMOB_API_KEY",), "legacy API key (auth tokens)"),
        KeySpec(
            "secret_key", ValueKind.SECRET, ("PAYMOB_SECRET_KEY",), "secret key (Intention API)"
        ),
        KeySpec(
            "public_key", ValueKind.TEXT, ("PAYMOB_PUBLIC_KEY",), "public key (unified checkout)"
        ),
        KeySpec(
            "hmac_secret", ValueKind.SECRET, ("PAYMOB_HMAC_SECRET",), "HMAC secret (callbacks)"
        ),
        KeySpec("integration_id", ValueKind.INT, ("PAYMOB_INTEGRATION_ID",), "card integration id"),
        KeySpec(
            "moto_integration_id",
            ValueKind.INT,
            ("PAYMOB_MOTO_INTEGRATION_ID",),
            "MOTO integration id (saved-card payments)",
        ),
        KeySpec(
            "wallet_integration_id",
            ValueKind.INT,
            ("PAYMOB_WALLET_INTEGRATION_ID",),
            "mobile wallet integration id",
        ),
        KeySpec(
            "kiosk_integration_id",
            ValueKind.INT,
            ("PAYMOB_KIOSK_INTEGRATION_ID",),
            "kiosk integration id",
        ),
        KeySpec("iframe_id", ValueKind.INT, ("PAYMOB_IFRAME_ID",), "hosted card iframe id"),
        KeySpec("region", ValueKind.REGION, ("PAYMOB_REGION",), "eg, ksa, uae, oman or pakistan"),
        KeySpec("base_url", ValueKind.URL, ("PAYMOB_BASE_URL",), "API host; overrides region"),
        KeySpec("mode", ValueKind.MODE, ("PAYMOB_MODE",), "test or live"),
        KeySpec("currency", ValueKind.CURRENCY, ("PAYMOB_CURRENCY",), "integration currency"),
        KeySpec(
            "processed_callback_url",
            ValueKind.URL,
            ("PAYMOB_PROCESSED_CALLBACK_URL",),
            "transaction processed callback (POST webhook)",
        ),
        KeySpec(
            "response_callback_url",
            ValueKind.URL,
            ("PAYMOB_RESPONSE_CALLBACK_URL",),
            "transaction response callback (GET redirect)",
        ),
        KeySpec(
            "ngrok_authtoken",
            ValueKind.SECRET,
            ("NGROK_AUTHTOKEN", "PAYMOB_NGROK_AUTHTOKEN"),
            "ngrok authtoken for `listen --tunnel ngrok`",
        ),
        KeySpec(
            "ngrok_install",
            ValueKind.BOOL,
            ("PAYMOB_NGROK_INSTALL",),
            "false: never download the ngrok agent (like `listen --no-install`)",
        ),
    )
}


# The keys by the type their values parse to (tests hold these against KEYS' kinds).
SecretKey = Literal["api_key", "secret_key", "hmac_secret", "ngrok_authtoken"]


IntKey = Literal[
    "integration_id",
    "moto_integration_id",
    "wallet_integration_id",
    "kiosk_integration_id",
    "iframe_id",
]


TextKey = Literal[
    "public_key", "base_url", "currency", "processed_callback_url", "response_callback_url"
]


ENV_NAMES: frozenset[str] = frozenset(name for spec in KEYS.values() for name in spec.env) | {
    PROFILE_ENV
}


class Source(StrEnum):
    """Where a value came from, highest precedence first."""

    FLAG = "flag"
    ENV = "env"
    DOTENV = ".env"
    PROFILE = "profile"
    BUILTIN = "built-in"


@dataclass(frozen=True)
class Resolved:
    """A value with its provenance: the source and the exact origin."""

    value: Any  # Secret | str | int | Region | Mode
    source: Source
    origin: str  # exactly where: "--secret-file", "PAYMOB_API_KEY", "./.env:3", "config.toml [profiles.x]"

    def display(self) -> str:
        """The value for display, a secret masked."""
        if isinstance(self.value, Secret):
            return self.value.masked
        return str(self.value)


def fix_hint(spec: KeySpec) -> str:
    """How to write a valid value of ``spec`` in the config file."""
    if spec.kind is ValueKind.INT:
        return f"write it as a whole number without quotes, e.g. {spec.name} = 123456"
    if spec.kind is ValueKind.REGION:
        return "use one of: " + ", ".join(r.value for r in Region) + " (or EG, SA, AE, OM, PK)"
    if spec.kind is ValueKind.MODE:
        return "use test or live"
    if spec.kind is ValueKind.URL:
        return f'write a full http(s) URL, e.g. {spec.name} = "https://shop.example/path/"'
    if spec.kind is ValueKind.CURRENCY:
        return "use a three-letter code such as EGP, SAR, AED, OMR or PKR"
    if spec.kind is ValueKind.BOOL:
        return f"write true or false without quotes, e.g. {spec.name} = false"
    return f'write it as a quoted string, e.g. {spec.name} = "..."'


def parse_value(spec: KeySpec, raw: object, *, from_text: bool) -> Any:
    """Check and convert one value; raises ``ValueError`` with a short reason."""
    if spec.kind is ValueKind.INT:
        if isinstance(raw, bool):
            raise ValueError("expected a whole number, got a boolean")
        text = raw.strip() if from_text and isinstance(raw, str) else None
        value = lenient_int(raw if isinstance(raw, int) else text)
        if value is None:
            raise ValueError(f"expected a whole number, got {raw!r}")
        if value <= 0:
            raise ValueError(f"expected a positive number, got {value}")
        return value
    if spec.kind is ValueKind.BOOL:
        if isinstance(raw, bool):
            return raw
        words = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}
        if from_text and isinstance(raw, str) and raw.strip().lower() in words:
            return words[raw.strip().lower()]
        raise ValueError(f"expected true or false, got {raw!r}")
    if not isinstance(raw, str):
        shown = "" if spec.kind is ValueKind.SECRET else f" {raw!r}"  # never echo a secret
        raise ValueError(f"expected a string, got {type(raw).__name__}{shown}")
    text = raw.strip()
    if not text:
        raise ValueError("the value is empty")
    if spec.kind is ValueKind.SECRET:
        return Secret(text)
    if spec.kind is ValueKind.REGION:
        try:
            return Region.parse(text)
        except ValueError:
            raise ValueError(f"unknown region {text!r}") from None
    if spec.kind is ValueKind.MODE:
        try:
            return Mode(text.lower())
        except ValueError:
            raise ValueError(f"unknown mode {text!r}") from None
    if spec.kind is ValueKind.CURRENCY:
        try:
            return check_currency(text)
        except UsageError:
            raise ValueError(f"invalid currency {text!r}") from None
    if spec.kind is ValueKind.URL:
        check_url(text)
        return text
    return text


def check_url(text: str) -> str:
    """Raise ``ValueError`` unless ``text`` is an absolute http(s) URL with a host."""
    try:
        parts = urlsplit(text)
        port = parts.port  # raises on a bad port
    except ValueError as exc:
        raise ValueError(f"invalid URL {text!r} ({exc})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"invalid URL {text!r}: expected http(s)://host/...")
    del port
    return text


def from_text(spec: KeySpec, text: str, source: Source, origin: str, name: str) -> Resolved:
    """A value read as text (environment, ``.env``) parsed, or a configuration error naming it."""
    try:
        value = parse_value(spec, text, from_text=True)
    except ValueError as exc:
        raise ConfigError(
            f"{name}: {exc}",
            path=origin if source is Source.DOTENV else None,
            hint=fix_hint(spec).replace(f"{spec.name} = ", f"{name}="),
        ) from None
    return Resolved(value, source, origin)
