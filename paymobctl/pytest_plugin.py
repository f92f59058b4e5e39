"""The pytest plugin (entry point ``pytest11``): ``paymob_sandbox``, ``paymob_env``, ``paymob_callback``.

Loaded by pytest in every project where paymobctl is installed, so it imports nothing of
paymobctl (no httpx, starlette, uvicorn) until a test asks for one of its fixtures, and it adds
no autouse fixture and no marker. Each process (each pytest-xdist worker) starts its own sandbox.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from paymobctl.testing import Callbacks, Sandbox


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add the plugin's ``--paymob-*`` command-line options to pytest."""
    group = parser.getgroup("paymob", "paymobctl: Paymob sandbox and signed callbacks")
    group.addoption(
        "--paymob-hmac-secret",
        dest="paymob_hmac_secret",
        default=None,
        metavar="SECRET",
        help="HMAC secret for paymob_callback and paymob_sandbox (default: the sandbox's demo "
        "secret). Use the one your test settings give your app.",
    )


def _secret(config: pytest.Config) -> str | None:
    value = config.getoption("paymob_hmac_secret")
    return value if isinstance(value, str) and value else None


@pytest.fixture(scope="session")
def _paymob_sandbox_session(pytestconfig: pytest.Config) -> Iterator[Sandbox]:
    from paymobctl.testing import Sandbox

    with Sandbox(hmac_secret=_secret(pytestconfig)) as sandbox:
        yield sandbox


@pytest.fixture
def paymob_sandbox(_paymob_sandbox_session: Sandbox) -> Sandbox:
    """The Paymob sandbox on a free loopback port: one server per session (per xdist worker),
    emptied before every test (orders, payments, cards, deliveries, callback URLs)."""
    _paymob_sandbox_session.reset()
    return _paymob_sandbox_session


@pytest.fixture
def paymob_env(paymob_sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """``PAYMOB_*`` environment variables pointing at ``paymob_sandbox`` for this test."""
    env = paymob_sandbox.env()
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@pytest.fixture
def paymob_callback(pytestconfig: pytest.Config) -> Callbacks:
    """Builds signed callbacks: ``paymob_callback(outcome="declined", order_id=...)``,
    ``paymob_callback.token(...)``, ``paymob_callback.response(...)``. Starts no server."""
    from paymobctl.testing import Callbacks

    return Callbacks(secret=_secret(pytestconfig))
