"""Per-invocation state for commands: global options, settings resolved once, the store, output."""

from __future__ import annotations

import contextvars
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from paymobctl.cli.output import Output

if TYPE_CHECKING:
    from paymobctl.config import Resolved, Settings
    from paymobctl.store import Store


class GlobalOptions:
    """The global options of one invocation (given before or after the command name).

    A plain class rather than a dataclass: every command builds it, and creating a dataclass
    at import costs start-up time (scripts/bench_startup.py)."""

    __slots__ = ("config", "db", "json", "no_color", "profile")

    def __init__(
        self,
        *,
        profile: str | None = None,
        config: str | None = None,
        db: str | None = None,
        json: bool = False,
        no_color: bool = False,
    ) -> None:
        self.profile = profile
        self.config = config
        self.db = db
        self.json = json
        self.no_color = no_color

    def _values(self) -> tuple[str | bool | None, ...]:
        return (self.profile, self.config, self.db, self.json, self.no_color)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, GlobalOptions):
            return NotImplemented
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        return (
            f"GlobalOptions(profile={self.profile!r}, config={self.config!r}, db={self.db!r}, "
            f"json={self.json!r}, no_color={self.no_color!r})"
        )

    def merged(self, other: GlobalOptions) -> GlobalOptions:
        """``other`` (given after the command name) wins over self (given before it)."""
        return GlobalOptions(
            profile=other.profile or self.profile,
            config=other.config or self.config,
            db=other.db or self.db,
            json=self.json or other.json,
            no_color=self.no_color or other.no_color,
        )


class Runtime:
    """One invocation's state: its options, output, and the settings and store, made once."""

    def __init__(self, options: GlobalOptions, output: Output | None = None) -> None:
        self.options = options
        self.out = output or Output(json_mode=options.json, no_color=options.no_color)
        self._settings: Settings | None = None
        self._store: Store | None = None

    @property
    def json(self) -> bool:
        return self.options.json

    def settings(self, overrides: Mapping[str, Resolved] | None = None) -> Settings:
        """Resolve the configuration once (again when command-line overrides are given)."""
        from paymobctl.config import resolve

        if overrides:
            return resolve(
                profile_flag=self.options.profile,
                config_flag=self.options.config,
                overrides=overrides,
            )
        if self._settings is None:
            from paymobctl.config import mixed_mode

            self._settings = resolve(
                profile_flag=self.options.profile, config_flag=self.options.config
            )
            for line in mixed_mode(self._settings):
                self.out.warn(line)
        return self._settings

    def refuse_mixed_mode(self, settings: Settings, *, allowed: bool) -> None:
        """Money-moving commands do not run with keys of the other mode, unless allowed."""
        from paymobctl.config import mixed_mode
        from paymobctl.errors import ConfigError

        found = mixed_mode(settings)
        if found and not allowed:
            raise ConfigError(
                f"test and live keys mixed: {found[0]}",
                hint="fix PAYMOB_* in the environment or ./.env, pick the matching --profile, or "
                "pass --allow-mixed-mode if this is really meant",
            )

    def located_settings(self, *, announce: bool = True, url_option: str | None = None) -> Settings:
        """The settings, pointed at the running sandbox (its runtime file) when the sandbox
        profile has no base URL configured and the sandbox runs elsewhere than the default; says
        so (unless ``announce`` is off: the user named the target), naming ``url_option`` only
        for a command that has one."""
        from dataclasses import replace as with_values

        from paymobctl.config import Resolved, Source
        from paymobctl.sandbox_runtime import locate

        settings = self.settings()
        running = locate(settings)
        if running is None:
            return settings
        if announce:
            choose = "PAYMOB_BASE_URL" + (f" or {url_option}" if url_option else "")
            self.out.info(
                f"using the sandbox running at {running.url} (pid {running.pid}, {running.path}); "
                f"set {choose} to choose another"
            )
        where = Resolved(running.url, Source.BUILTIN, f"running sandbox ({running.path})")
        self._settings = with_values(settings, values={**settings.values, "base_url": where})
        return self._settings

    @property
    def db_path(self) -> Path:
        from paymobctl.paths import db_path

        return db_path(self.options.db)

    def store(self) -> Store:
        if self._store is None:
            from paymobctl.store import Store

            self._store = Store(self.db_path)
        return self._store

    def hmac_secret(self, secret_file: str | Path | None, *, purpose: str) -> tuple[str, str]:
        """The HMAC secret and where it came from: ``--secret-file`` (``-`` is stdin), else the
        profile, PAYMOB_HMAC_SECRET or .env. Never from the command line itself."""
        from paymobctl.config import read_secret_file

        if secret_file is not None:
            return read_secret_file(secret_file), f"--secret-file {secret_file}"
        settings = self.settings()
        secret = settings.require_secret("hmac_secret", purpose=purpose)
        return secret.reveal(), f"{settings.origin('hmac_secret')} (profile {settings.profile})"

    def announce_mode(self, settings: Settings) -> None:
        """Say so whenever a command acts with a live profile."""
        if settings.is_live:
            self.out.warn(f"LIVE mode: profile {settings.profile!r} uses real money and real cards")

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None


_current: contextvars.ContextVar[Runtime | None] = contextvars.ContextVar(
    "paymobctl_runtime", default=None
)


def set_runtime(runtime: Runtime) -> contextvars.Token[Runtime | None]:
    """Make ``runtime`` the current invocation's (a token to restore the previous one)."""
    return _current.set(runtime)


def reset_runtime(token: contextvars.Token[Runtime | None]) -> None:
    """Restore the runtime that was current before :func:`set_runtime`."""
    _current.reset(token)


def runtime() -> Runtime:
    """The current invocation's runtime (a default one outside a command)."""
    current = _current.get()
    if current is None:  # called outside a command (tests calling a command function directly)
        current = Runtime(GlobalOptions())
        _current.set(current)
    return current
