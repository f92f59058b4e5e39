"""Profiles and settings: TOML config file, environment, ``.env``, flags, precedence and provenance.

Precedence, highest first: command-line flag > environment > ``.env`` in the working directory >
the selected profile in the config file > built-in values (the ``sandbox`` profile, region
defaults). Settings resolve once into a frozen :class:`Settings` that knows where every value
came from, so ``paymobctl config show`` can tell the user.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal, overload
from urllib.parse import urlsplit

from paymobctl.documents import loads_toml
from paymobctl.errors import ConfigError, UsageError
from paymobctl.models import Mode, Region, Secret, check_currency, lenient_int
from paymobctl.paths import CONFIG_ENV, config_path
from paymobctl.sandbox_profile import (
    DEFAULT_CALLBACK_URL,
    DEFAULT_RESPONSE_URL,
    SANDBOX,
    SANDBOX_PROFILE,
)

PROFILE_ENV = "PAYMOB_PROFILE"
_PROFILE_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class ValueKind(StrEnum):
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
    FLAG = "flag"
    ENV = "env"
    DOTENV = ".env"
    PROFILE = "profile"
    BUILTIN = "built-in"


@dataclass(frozen=True)
class Resolved:
    value: Any  # Secret | str | int | Region | Mode
    source: Source
    origin: str  # exactly where: "--secret-file", "PAYMOB_API_KEY", "./.env:3", "config.toml [profiles.x]"

    def display(self) -> str:
        if isinstance(self.value, Secret):
            return self.value.masked
        return str(self.value)


# --- parsing values ------------------------------------------------------------------------------


def fix_hint(spec: KeySpec) -> str:
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


# --- .env ----------------------------------------------------------------------------------------

_DOTENV_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$")


@dataclass(frozen=True)
class DotenvEntry:
    value: str
    line: int


def parse_dotenv(path: Path, text: str) -> dict[str, DotenvEntry]:
    """Parse the simple ``KEY=VALUE`` dialect Django projects use.

    Lines that are not ours (not ``PAYMOB_*``/``NGROK_AUTHTOKEN``) are skipped even when our
    parser does not understand them; a malformed line of ours is an error naming the line.
    """
    entries: dict[str, DotenvEntry] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        match = _DOTENV_LINE.match(line)
        if not match:
            if re.match(r"^\s*(export\s+)?(PAYMOB_|NGROK_)", line):
                raise ConfigError(
                    f"line {number} is not KEY=VALUE",
                    path=str(path),
                    hint="write it as PAYMOB_NAME=value",
                )
            continue
        key, value = match.group(1), match.group(2)
        if key not in ENV_NAMES:
            continue
        if value[:1] in ("'", '"'):
            quote_char = value[0]
            end = value.find(quote_char, 1)
            if end == -1:
                raise ConfigError(
                    f"line {number}: {key} has an unterminated quote",
                    path=str(path),
                    hint=f"close the {quote_char} quote",
                )
            value = value[1:end]
        else:
            value = re.sub(r"\s+#.*$", "", value)
        entries[key] = DotenvEntry(value, number)
    return entries


def read_dotenv(path: Path) -> dict[str, DotenvEntry]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"cannot read .env ({exc})", path=str(path), hint="fix or remove it"
        ) from None
    return parse_dotenv(path, text)


# --- config file ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConfigFile:
    path: Path
    exists: bool
    default_profile: str | None
    profiles: Mapping[str, Mapping[str, Any]]
    loose_permissions: bool = False


_TOP_LEVEL_KEYS = {"default_profile", "profiles"}


def _suggest(word: str, choices: list[str]) -> str:
    import difflib

    close = difflib.get_close_matches(word, choices, n=1)
    return f"did you mean {close[0]!r}?" if close else "valid keys: " + ", ".join(choices)


def load_config_file(path: Path) -> ConfigFile:
    """Read and validate the TOML config file; a missing file is an empty config."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return ConfigFile(path, False, None, {})
    except IsADirectoryError:
        raise ConfigError("is a directory, not a config file", path=str(path)) from None
    except OSError as exc:
        raise ConfigError(
            f"cannot read the config file ({exc.strerror})",
            path=str(path),
            hint="check its permissions",
        ) from None
    try:
        document = loads_toml(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError("not UTF-8 text", path=str(path), hint="save it as UTF-8") from None
    except ValueError as exc:  # tomllib.TOMLDecodeError, or documents.TooDeep
        raise ConfigError(
            f"invalid TOML ({exc})",
            path=str(path),
            hint='fix the syntax: keys as `name = "value"` under `[profiles.NAME]`',
        ) from None
    for key in document:
        if key not in _TOP_LEVEL_KEYS:
            raise ConfigError(
                "unknown top-level key",
                path=str(path),
                key=key,
                hint=_suggest(key, sorted(_TOP_LEVEL_KEYS))
                + " (profile keys go under [profiles.NAME])",
            )
    default = document.get("default_profile")
    if default is not None and not isinstance(default, str):
        raise ConfigError(
            "must be a string",
            path=str(path),
            key="default_profile",
            hint='e.g. default_profile = "shop-test"',
        )
    profiles_raw = document.get("profiles", {})
    if not isinstance(profiles_raw, dict):
        raise ConfigError(
            "must be a table of profiles",
            path=str(path),
            key="profiles",
            hint="write [profiles.NAME]",
        )
    profiles: dict[str, dict[str, Any]] = {}
    for name, body in profiles_raw.items():
        where = f"profiles.{name}"
        if not isinstance(body, dict):
            raise ConfigError(
                "must be a table", path=str(path), key=where, hint=f"write [profiles.{name}]"
            )
        checked: dict[str, Any] = {}
        for key, raw in body.items():
            spec = KEYS.get(key)
            if spec is None:
                raise ConfigError(
                    "unknown key",
                    path=str(path),
                    key=f"{where}.{key}",
                    hint=_suggest(key, sorted(KEYS)),
                )
            try:
                checked[key] = parse_value(spec, raw, from_text=False)
            except ValueError as exc:
                raise ConfigError(
                    str(exc), path=str(path), key=f"{where}.{key}", hint=fix_hint(spec)
                ) from None
        profiles[name] = checked
    loose = False
    with contextlib.suppress(OSError):
        loose = bool(path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO))
    return ConfigFile(path, True, default, profiles, loose)


def _to_toml_value(value: Any) -> Any:
    if isinstance(value, Secret):
        return value.reveal()
    if isinstance(value, StrEnum):
        return value.value
    return value


def write_config_file(
    path: Path, default_profile: str | None, profiles: Mapping[str, Mapping[str, Any]]
) -> None:
    """Atomically write the config file with mode 0600 (its directory 0700)."""
    import tempfile

    import tomli_w

    document: dict[str, Any] = {}
    if default_profile:
        document["default_profile"] = default_profile
    document["profiles"] = {
        name: {key: _to_toml_value(values[key]) for key in KEYS if key in values}
        for name, values in profiles.items()
    }
    text = "# paymobctl configuration: `paymobctl config show` lists every key and its source.\n"
    text += tomli_w.dumps(document)
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(prefix=".config-", suffix=".toml", dir=path.parent)
    except OSError as exc:
        raise ConfigError(
            f"cannot write the config file ({exc.strerror})",
            path=str(path),
            hint="check the directory's permissions",
        ) from None
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        Path(tmp).replace(path)
        path.chmod(0o600)
    except OSError as exc:
        with contextlib.suppress(OSError):
            Path(tmp).unlink()
        raise ConfigError(
            f"cannot write the config file ({exc.strerror})", path=str(path)
        ) from None


def check_profile_name(name: str) -> str:
    if not _PROFILE_NAME_RE.match(name):
        raise UsageError(
            f"invalid profile name {name!r}",
            hint="use letters, digits, '-', '_' or '.', starting with a letter or digit",
        )
    return name


def save_profile(
    path: Path,
    name: str,
    values: Mapping[str, Any],
    *,
    make_default: bool = False,
    replace: bool = False,
) -> None:
    """Create or update ``[profiles.name]``; other profiles are kept untouched."""
    check_profile_name(name)
    current = load_config_file(path)
    profiles = {k: dict(v) for k, v in current.profiles.items()}
    body = {} if replace else dict(profiles.get(name, {}))
    for key, value in values.items():
        if key not in KEYS:
            raise UsageError(f"unknown key {key!r}", hint=_suggest(key, sorted(KEYS)))
        if value is None:
            body.pop(key, None)
        else:
            body[key] = value
    profiles[name] = body
    default = name if make_default else current.default_profile
    write_config_file(path, default, profiles)


def set_default_profile(path: Path, name: str) -> None:
    current = load_config_file(path)
    if name != SANDBOX_PROFILE and name not in current.profiles:
        raise ConfigError(
            f"unknown profile {name!r}",
            path=str(path),
            hint="create it with `paymobctl config init --profile " + name + "`",
        )
    write_config_file(path, name, current.profiles)


# --- resolution ----------------------------------------------------------------------------------


def builtin_values(profile: str) -> dict[str, Any]:
    """Built-in values: the whole sandbox profile, or only safe defaults for other profiles."""
    if profile == SANDBOX_PROFILE:
        return {
            "api_key": Secret(SANDBOX.api_key),
            "secret_key": Secret(SANDBOX.secret_key),
            "public_key": SANDBOX.public_key,
            "hmac_secret": Secret(SANDBOX.hmac_secret),
            "integration_id": SANDBOX.integration_id,
            "moto_integration_id": SANDBOX.moto_integration_id,
            "wallet_integration_id": SANDBOX.wallet_integration_id,
            "kiosk_integration_id": SANDBOX.kiosk_integration_id,
            "iframe_id": SANDBOX.iframe_id,
            "region": Region.EG,
            "base_url": SANDBOX.base_url,
            "mode": Mode.TEST,
            "currency": SANDBOX.currency,
            "processed_callback_url": DEFAULT_CALLBACK_URL,
            "response_callback_url": DEFAULT_RESPONSE_URL,
        }
    return {"region": Region.EG, "mode": Mode.TEST}


@dataclass(frozen=True)
class Settings:
    """The effective configuration of one invocation, with provenance for every value."""

    profile: str
    profile_origin: str
    explicit_profile: bool
    config: ConfigFile
    values: Mapping[str, Resolved] = field(default_factory=dict)

    @overload
    def get(self, key: SecretKey) -> Secret | None: ...
    @overload
    def get(self, key: IntKey) -> int | None: ...
    @overload
    def get(self, key: TextKey) -> str | None: ...
    @overload
    def get(self, key: Literal["region"]) -> Region | None: ...
    @overload
    def get(self, key: Literal["mode"]) -> Mode | None: ...
    @overload
    def get(self, key: Literal["ngrok_install"]) -> bool | None: ...
    @overload
    def get(self, key: str) -> object: ...
    def get(self, key: str) -> object:
        """The value of ``key`` (typed by its :class:`ValueKind`), or None when it is not set."""
        resolved = self.values.get(key)
        return resolved.value if resolved else None

    def secret(self, key: SecretKey) -> Secret | None:
        """The secret ``key``, or None when it is not set."""
        return self.get(key)

    @property
    def mode(self) -> Mode:
        """test or live (test unless set)."""
        value = self.get("mode")
        return value if value is not None else Mode.TEST

    @property
    def is_live(self) -> bool:
        return self.mode is Mode.LIVE

    @property
    def is_sandbox(self) -> bool:
        return self.profile == SANDBOX_PROFILE

    @property
    def region(self) -> Region:
        """The account's region (Egypt unless set)."""
        value = self.get("region")
        return value if value is not None else Region.EG

    @property
    def currency(self) -> str:
        """The currency set explicitly (flag, env, .env, profile), else the region's: a built-in
        EGP does not outlive a region chosen by the user (PAYMOB_REGION=ksa gives SAR)."""
        resolved, region = self.values.get("currency"), self.values.get("region")
        region_chosen = region is not None and region.source is not Source.BUILTIN
        if resolved is None or (resolved.source is Source.BUILTIN and region_chosen):
            return self.region.info.currency
        return str(resolved.value)

    @property
    def base_url(self) -> str:
        """The API host: ``base_url`` when set, else the region's."""
        value = self.get("base_url")
        return (value if value is not None else self.region.base_url).rstrip("/")

    def origin(self, key: str) -> str:
        resolved = self.values.get(key)
        return resolved.origin if resolved else "not set"

    def missing_hint(self, key: str) -> str:
        spec = KEYS[key]
        env = spec.env[0]
        if self.is_sandbox:
            return f"set {env}, or configure a profile with `paymobctl config init`"
        value = "-` (reads it from stdin)" if KEYS[key].kind is ValueKind.SECRET else "VALUE`"
        return f"set it with `paymobctl --profile {self.profile} config set {key} {value} or {env}"

    def require(self, *keys: str, purpose: str) -> None:
        """Raise a configuration error naming the first missing key and how to set it."""
        for key in keys:
            if self.get(key) is None:
                raise ConfigError(
                    f"{key} is not set for profile {self.profile!r}, and {purpose} needs it",
                    path=str(self.config.path),
                    hint=self.missing_hint(key),
                )

    def require_secret(self, key: SecretKey, *, purpose: str) -> Secret:
        """The secret ``key``, or a configuration error saying how to set it."""
        self.require(key, purpose=purpose)
        value = self.get(key)
        assert value is not None  # require() raised otherwise
        return value

    def require_int(self, key: IntKey, *, purpose: str) -> int:
        """The integer ``key``, or a configuration error saying how to set it."""
        self.require(key, purpose=purpose)
        value = self.get(key)
        assert value is not None  # require() raised otherwise
        return value


def sandbox_settings(base_url: str, *, config_file: ConfigFile | None = None) -> Settings:
    """The built-in sandbox profile alone (no environment, no .env), at ``base_url``: what the
    offline demo runs with, whatever else the user configured."""
    values = {
        key: Resolved(value, Source.BUILTIN, "built-in sandbox profile")
        for key, value in builtin_values(SANDBOX_PROFILE).items()
    }
    values["base_url"] = Resolved(base_url, Source.FLAG, "paymobctl demo")
    config = config_file or ConfigFile(Path("/dev/null"), False, None, {})
    return Settings(SANDBOX_PROFILE, "paymobctl demo", True, config, values)


Loader = Callable[[Path], dict[str, DotenvEntry]]


def resolve(
    *,
    profile_flag: str | None = None,
    config_flag: str | None = None,
    overrides: Mapping[str, Resolved] | None = None,
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    read_env_file: Loader = read_dotenv,
) -> Settings:
    """Resolve the effective settings once, following the documented precedence."""
    env = dict(os.environ if environ is None else environ)
    path = config_path(config_flag, env)
    config = load_config_file(path)
    named_by = "--config" if config_flag else (CONFIG_ENV if env.get(CONFIG_ENV) else None)
    if named_by and not config.exists:
        # A file named explicitly is never silently replaced by built-in defaults.
        raise ConfigError(
            f"no such config file (given with {named_by})",
            path=str(path),
            hint=f"check the path, or create it with `paymobctl config init --config {path}`",
        )
    dotenv_path = (cwd or Path.cwd()) / ".env"
    dotenv = read_env_file(dotenv_path)

    # Which profile: --profile > PAYMOB_PROFILE (env) > PAYMOB_PROFILE (.env) > default_profile > sandbox.
    if profile_flag:
        profile, origin, explicit = profile_flag, "--profile", True
    elif env.get(PROFILE_ENV):
        profile, origin, explicit = env[PROFILE_ENV], PROFILE_ENV, True
    elif PROFILE_ENV in dotenv:
        entry = dotenv[PROFILE_ENV]
        profile, origin, explicit = entry.value, f"{dotenv_path}:{entry.line}", True
    elif config.default_profile:
        profile, origin, explicit = config.default_profile, f"{path} default_profile", False
    else:
        profile, origin, explicit = SANDBOX_PROFILE, "built-in default", False

    if profile != SANDBOX_PROFILE and profile not in config.profiles:
        known = sorted({SANDBOX_PROFILE, *config.profiles})
        raise ConfigError(
            f"unknown profile {profile!r} (selected by {origin})",
            path=str(path),
            hint=f"known profiles: {', '.join(known)}; create it with "
            f"`paymobctl config init --profile {profile}`",
        )

    values: dict[str, Resolved] = {}
    for key, value in builtin_values(profile).items():
        label = "built-in sandbox profile" if profile == SANDBOX_PROFILE else "built-in default"
        values[key] = Resolved(value, Source.BUILTIN, label)
    for key, value in config.profiles.get(profile, {}).items():
        values[key] = Resolved(value, Source.PROFILE, f"{path} [profiles.{profile}]")
    for key, spec in KEYS.items():
        for name in spec.env:
            if name in dotenv:
                entry = dotenv[name]
                values[key] = _from_text(
                    spec, entry.value, Source.DOTENV, f"{dotenv_path}:{entry.line}", name
                )
                break
    for key, spec in KEYS.items():
        for name in spec.env:
            if env.get(name):
                values[key] = _from_text(spec, env[name], Source.ENV, name, name)
                break
    for key, resolved in (overrides or {}).items():
        if resolved.value is not None:
            values[key] = resolved

    settings = Settings(profile, origin, explicit, config, values)
    if settings.is_live and not explicit:
        raise ConfigError(
            f"profile {profile!r} is a live profile and is only used when selected explicitly",
            path=str(path),
            hint=f"pass --profile {profile} (or PAYMOB_PROFILE={profile}) to act in live mode",
        )
    return settings


def _from_text(spec: KeySpec, text: str, source: Source, origin: str, name: str) -> Resolved:
    try:
        value = parse_value(spec, text, from_text=True)
    except ValueError as exc:
        raise ConfigError(
            f"{name}: {exc}",
            path=origin if source is Source.DOTENV else None,
            hint=fix_hint(spec).replace(f"{spec.name} = ", f"{name}="),
        ) from None
    return Resolved(value, source, origin)


def flag(value: Any, option: str) -> Resolved:
    """A value given on the command line (pass None when the flag was not used)."""
    return Resolved(value, Source.FLAG, option)


def read_secret_file(path: Path | str) -> str:
    """A secret kept in a file (``-``: standard input), without its trailing newline."""
    import sys

    name = str(path)
    try:
        text = sys.stdin.read() if name == "-" else Path(name).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UsageError(
            f"{name}: the secret file is not UTF-8 text", hint="write the secret as plain text"
        ) from None
    except OSError as exc:
        raise UsageError(f"{name}: cannot read the secret file ({exc.strerror or exc})") from None
    secret = text.rstrip("\r\n")
    if not secret:
        raise UsageError(f"{name}: the secret file is empty", hint="write the HMAC secret into it")
    return secret


def import_env_values(path: Path) -> dict[str, Any]:
    """The profile values a Django ``.env`` file holds, checked and typed."""
    if not path.exists():
        raise ConfigError(
            "no such file", path=str(path), hint="pass the path of your Django project's .env"
        )
    entries = read_dotenv(path)
    values: dict[str, Any] = {}
    for key, spec in KEYS.items():
        for name in spec.env:
            if name in entries:
                values[key] = _from_text(
                    spec, entries[name].value, Source.DOTENV, f"{path}:{entries[name].line}", name
                ).value
                break
    if not values:
        raise ConfigError(
            "holds no PAYMOB_* settings",
            path=str(path),
            hint="expected lines such as PAYMOB_API_KEY=... and PAYMOB_HMAC_SECRET=...",
        )
    return values


# What a new profile needs to be usable for the main job (a deposit needs the API key and the
# integration; listen needs the HMAC secret): `config init` refuses to write one without them.
REQUIRED_KEYS = ("api_key", "integration_id", "hmac_secret")


def missing_required(values: Mapping[str, Any]) -> list[str]:
    """The required keys ``values`` lacks, as the environment variable that sets each."""
    return [KEYS[key].env[0] for key in REQUIRED_KEYS if values.get(key) in (None, "")]


def unusable_reason(config: ConfigFile, name: str) -> str | None:
    """Why profile ``name`` cannot be the default profile, or None when it can."""
    if name == SANDBOX_PROFILE:
        return None
    values = config.profiles.get(name)
    if values is None:
        return "there is no such profile"
    if values.get("mode") in (Mode.LIVE, "live"):
        return "it is a live profile, and live profiles are only used when selected explicitly"
    missing = [key for key in ("api_key", "integration_id") if values.get(key) in (None, "")]
    if missing:
        return f"it has no {' and no '.join(missing)}"
    return None


def mixed_mode(settings: Settings) -> list[str]:
    """Keys taken from the environment or ./.env whose prefix says the other mode than the
    profile's (``egy_sk_live_…`` in a test profile, or the reverse): one line each."""
    found = []
    for key in ("secret_key", "public_key"):
        resolved = settings.values.get(key)
        if resolved is None or resolved.source not in (Source.ENV, Source.DOTENV):
            continue
        mode = infer_mode({key: resolved.value})
        if mode is not None and mode is not settings.mode:
            found.append(
                f"{key} from {resolved.origin} is a {mode.value} key but profile "
                f"{settings.profile!r} is {settings.mode.value}"
            )
    return found


def infer_mode(values: Mapping[str, Any]) -> Mode | None:
    """Test or live, from the secret/public key prefix (``egy_sk_live_...``), docs/paymob.md §1.2."""
    for key in ("secret_key", "public_key"):
        value = values.get(key)
        text = value.reveal() if isinstance(value, Secret) else value
        if isinstance(text, str):
            if "_live_" in text[:12]:
                return Mode.LIVE
            if "_test_" in text[:12]:
                return Mode.TEST
    return None
