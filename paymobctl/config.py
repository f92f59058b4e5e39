"""Profiles and settings: precedence, resolution into one frozen Settings, profile checks.

Precedence, highest first: command-line flag > environment > ``.env`` in the working directory >
the selected profile in the config file > built-in values (the ``sandbox`` profile, region
defaults). Settings resolve once into a frozen :class:`Settings` that knows where every value
came from, so ``paymobctl config show`` can tell the user.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, overload

from paymobctl.config_files import (
    ConfigFile,
    DotenvEntry,
    check_profile_name,
    import_env_values,
    load_config_file,
    read_dotenv,
    read_secret_file,
    save_profile,
    set_default_profile,
)
from paymobctl.config_keys import (
    KEYS,
    PROFILE_ENV,
    IntKey,
    Resolved,
    SecretKey,
    Source,
    TextKey,
    ValueKind,
    check_url,
    fix_hint,
    from_text,
    parse_value,
)
from paymobctl.errors import ConfigError
from paymobctl.models import Mode, Region, Secret
from paymobctl.paths import CONFIG_ENV, config_path
from paymobctl.sandbox_profile import (
    DEFAULT_CALLBACK_URL,
    DEFAULT_RESPONSE_URL,
    SANDBOX,
    SANDBOX_PROFILE,
)

# The keys (config_keys) and the files (config_files) have their own modules; the names other
# code imports from here stay importable from here.
__all__ = [
    "KEYS",
    "PROFILE_ENV",
    "REQUIRED_KEYS",
    "ConfigFile",
    "DotenvEntry",
    "IntKey",
    "Resolved",
    "SecretKey",
    "Settings",
    "Source",
    "TextKey",
    "ValueKind",
    "builtin_values",
    "check_profile_name",
    "check_url",
    "fix_hint",
    "flag",
    "import_env_values",
    "infer_mode",
    "load_config_file",
    "missing_required",
    "mixed_mode",
    "parse_value",
    "read_dotenv",
    "read_secret_file",
    "resolve",
    "sandbox_settings",
    "save_profile",
    "set_default_profile",
    "unusable_reason",
]


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
        """True when the profile is in live mode."""
        return self.mode is Mode.LIVE

    @property
    def is_sandbox(self) -> bool:
        """True for the built-in sandbox profile."""
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
        """Where ``key``'s value came from (``PAYMOB_API_KEY``, ``./.env:3``…), or "not set"."""
        resolved = self.values.get(key)
        return resolved.origin if resolved else "not set"

    def missing_hint(self, key: str) -> str:
        """How to set ``key`` for this profile (the hint of a missing-key error)."""
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
                values[key] = from_text(
                    spec, entry.value, Source.DOTENV, f"{dotenv_path}:{entry.line}", name
                )
                break
    for key, spec in KEYS.items():
        for name in spec.env:
            if env.get(name):
                values[key] = from_text(spec, env[name], Source.ENV, name, name)
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


def flag(value: Any, option: str) -> Resolved:
    """A value given on the command line (pass None when the flag was not used)."""
    return Resolved(value, Source.FLAG, option)


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
