"""Hermetic test environment: temporary HOME/XDG dirs, a clean PAYMOB_* environment, and helpers."""

from __future__ import annotations

import io
import json
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from paymobctl.cli import main
from paymobctl.store import Store

_SCRUB_PREFIXES = ("PAYMOB_", "PAYMOBCTL_", "NGROK_")
_TESTS = Path(__file__).resolve().parent


@pytest.fixture(autouse=True, scope="session")
def shared_default_tls_context() -> Iterator[None]:
    """One default TLS context for every httpx client the suite creates.

    httpx builds a context loading certifi's CA bundle for each client with ``verify=True``
    (about 45 ms of CPU), even one that only ever talks plain http to 127.0.0.1: that was a
    tenth of the suite's time. Tests never reach a public CA-signed server, so sharing one
    context changes nothing they see; any other ``verify`` (False, a trustme context, a path)
    still gets its own.
    """
    import httpx._config
    import httpx._transports.default

    original = httpx._config.create_ssl_context
    shared: dict[tuple[object, ...], Any] = {}

    def create_ssl_context(*args: Any, **kwargs: Any) -> Any:
        verify = kwargs.get("verify", args[0] if args else True)
        if verify is not True or args[1:] or kwargs.get("cert") is not None:
            return original(*args, **kwargs)
        # What the default context depends on: whether and what the environment names.
        key = (
            kwargs.get("trust_env", True),
            os.environ.get("SSL_CERT_FILE"),
            os.environ.get("SSL_CERT_DIR"),
        )
        if key not in shared:
            shared[key] = original(*args, **kwargs)
        return shared[key]

    modules = (httpx, httpx._config, httpx._transports.default)
    for module in modules:
        module.create_ssl_context = create_ssl_context  # type: ignore[attr-defined]
    yield
    for module in modules:
        module.create_ssl_context = original  # type: ignore[attr-defined]


@pytest.fixture(autouse=True, scope="session")
def reuse_built_commands() -> Iterator[None]:
    """Build each typer app's click command once per session, not on every ``run_cli``.

    ``paymobctl.cli.main`` turns the typer apps into click commands each time it runs: right for
    one process running one command, but the suite runs about 1,500 commands in process and the
    building was a sixth of its CPU. Click commands are made to be invoked again (each run gets
    a fresh context); the command-line start-up itself is timed by scripts/bench_startup.py.
    """
    import typer.main

    original = typer.main.get_command
    built: dict[int, tuple[Any, Any]] = {}  # id(typer app) -> (app, its command): app kept alive

    def get_command(typer_instance: Any) -> Any:
        key = id(typer_instance)
        if key not in built:
            built[key] = (typer_instance, original(typer_instance))
        return built[key][1]

    typer.main.get_command = get_command
    yield
    typer.main.get_command = original


@pytest.fixture(autouse=True)
def hermetic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Every test gets its own HOME, XDG dirs and working directory, and no PAYMOB_* variables."""
    for name in list(os.environ):
        if name.startswith(_SCRUB_PREFIXES) or name in (
            "NO_COLOR",
            "XDG_CONFIG_HOME",
            "XDG_DATA_HOME",
            "XDG_RUNTIME_DIR",
            "XDG_STATE_HOME",
            "PYNGROK_NGROK_PATH",
        ):
            monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / ".local" / "share"))
    monkeypatch.setenv("XDG_STATE_HOME", str(home / ".local" / "state"))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    yield work


@pytest.fixture(autouse=True)
def close_test_stores(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """After each test, close the stores the test code itself opened (``Store(db).events()``).

    Python 3.13 reports an open sqlite3 connection that is garbage-collected as a ResourceWarning
    (an error here). Stores opened by paymobctl's own code are left alone: a leak there still fails.
    """
    opened: list[Store] = []
    init = Store.__init__

    def tracking_init(self: Store, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        if Path(sys._getframe(1).f_code.co_filename).is_relative_to(_TESTS):
            opened.append(self)

    monkeypatch.setattr(Store, "__init__", tracking_init)
    yield
    for store in opened:
        store.close()


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


class _Stream(io.StringIO):
    def isatty(self) -> bool:
        return False


def run_cli(*args: str, stdin: str = "") -> Result:
    """Run paymobctl in-process with captured, non-terminal stdout/stderr and the given stdin."""
    out, err = _Stream(), _Stream()
    old = sys.stdout, sys.stderr, sys.stdin
    sys.stdout, sys.stderr, sys.stdin = out, err, _Stream(stdin)
    try:
        code = main(list(args))
    finally:
        sys.stdout, sys.stderr, sys.stdin = old
    return Result(code, out.getvalue(), err.getvalue())


@pytest.fixture
def cli() -> Any:
    return run_cli


@pytest.fixture
def config_file(hermetic: Path) -> Path:
    return Path(os.environ["XDG_CONFIG_HOME"]) / "paymobctl" / "config.toml"


def write_config(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    path.chmod(0o600)
    return path
