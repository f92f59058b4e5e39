"""Where paymobctl keeps its files (XDG base directories), importable without the config machinery."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

CONFIG_ENV = "PAYMOBCTL_CONFIG"
DB_ENV = "PAYMOBCTL_DB"


def _xdg(var: str, fallback: str, environ: Mapping[str, str]) -> Path:
    value = environ.get(var, "")
    if value and Path(value).is_absolute():
        return Path(value)
    return Path(environ.get("HOME") or Path.home()) / fallback


def default_config_path(environ: Mapping[str, str] | None = None) -> Path:
    """Where the config file lives unless --config says otherwise (XDG_CONFIG_HOME)."""
    env = os.environ if environ is None else environ
    return _xdg("XDG_CONFIG_HOME", ".config", env) / "paymobctl" / "config.toml"


def default_db_path(environ: Mapping[str, str] | None = None) -> Path:
    """Where the SQLite store lives unless --db says otherwise (XDG_DATA_HOME)."""
    env = os.environ if environ is None else environ
    return _xdg("XDG_DATA_HOME", ".local/share", env) / "paymobctl" / "paymobctl.db"


def runtime_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Where running servers leave a note of their address: ``$XDG_RUNTIME_DIR/paymobctl``, else
    ``$XDG_STATE_HOME/paymobctl`` (default ``~/.local/state/paymobctl``)."""
    env = os.environ if environ is None else environ
    runtime = env.get("XDG_RUNTIME_DIR", "")
    if runtime and Path(runtime).is_absolute():
        return Path(runtime) / "paymobctl"
    return _xdg("XDG_STATE_HOME", ".local/state", env) / "paymobctl"


def config_path(flag: str | None, environ: Mapping[str, str] | None = None) -> Path:
    """``--config`` > ``PAYMOBCTL_CONFIG`` > ``$XDG_CONFIG_HOME/paymobctl/config.toml``."""
    env = os.environ if environ is None else environ
    if flag:
        return Path(flag).expanduser()
    if env.get(CONFIG_ENV):
        return Path(env[CONFIG_ENV]).expanduser()
    return default_config_path(env)


def db_path(flag: str | None, environ: Mapping[str, str] | None = None) -> Path:
    """``--db`` > ``PAYMOBCTL_DB`` > ``$XDG_DATA_HOME/paymobctl/paymobctl.db``."""
    env = os.environ if environ is None else environ
    if flag:
        return Path(flag).expanduser()
    if env.get(DB_ENV):
        return Path(env[DB_ENV]).expanduser()
    return default_db_path(env)


def write_atomically(path: Path, text: str, *, mode: int) -> None:
    """Replace ``path`` with ``text`` so a reader never sees half a file; raises ``OSError``."""
    import tempfile

    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        Path(tmp).replace(path)
    except OSError:
        Path(tmp).unlink(missing_ok=True)
        raise
