"""The configuration's files: the TOML config file (read, validated, written atomically 0600)
and ``.env`` files (the ``KEY=VALUE`` dialect Django projects use), plus secret files."""

from __future__ import annotations

import contextlib
import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from paymobctl.config_keys import ENV_NAMES, KEYS, Source, fix_hint, from_text, parse_value
from paymobctl.documents import loads_toml
from paymobctl.errors import ConfigError, UsageError
from paymobctl.models import Secret
from paymobctl.sandbox_profile import SANDBOX_PROFILE

_PROFILE_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


_DOTENV_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$")


@dataclass(frozen=True)
class DotenvEntry:
    """A value of a ``.env`` file and the line it is on."""

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
    """The entries of a ``.env`` file that are ours; a missing file has none."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"cannot read .env ({exc})", path=str(path), hint="fix or remove it"
        ) from None
    return parse_dotenv(path, text)


@dataclass(frozen=True)
class ConfigFile:
    """The parsed config file: its default profile and profiles (checked values)."""

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
    """``name`` when it is a valid profile name, else a usage error."""
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
    """Make ``name`` the config file's default profile."""
    current = load_config_file(path)
    if name != SANDBOX_PROFILE and name not in current.profiles:
        raise ConfigError(
            f"unknown profile {name!r}",
            path=str(path),
            hint="create it with `paymobctl config init --profile " + name + "`",
        )
    write_config_file(path, name, current.profiles)


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
                values[key] = from_text(
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
