"""One version number: the package metadata, `--version` and every User-Agent agree."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable
from importlib.metadata import metadata, version
from pathlib import Path

import httpx
import pytest

import paymobctl
from paymobctl import delivery, outbound
from paymobctl.cli.app import app

from .conftest import run_cli

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def test_metadata_version_shown_and_sent_agree() -> None:
    installed = version("paymobctl")
    assert installed == paymobctl.__version__, (
        "the installed metadata is stale: reinstall (pip install -e '.[dev]')"
    )
    result = run_cli("--version")
    assert result.code == 0 and result.stdout == f"paymobctl {installed}\n"
    assert f"paymobctl/{installed}" == delivery.USER_AGENT


def test_version_is_declared_once() -> None:
    """pyproject reads the version from paymobctl.__version__ instead of repeating it."""
    assert "version" not in PYPROJECT["project"]
    assert "version" in PYPROJECT["project"]["dynamic"]
    dynamic = PYPROJECT["tool"]["setuptools"]["dynamic"]["version"]
    assert dynamic == {"attr": "paymobctl.__version__"}
    assert re.fullmatch(r"\d+\.\d+\.\d+", paymobctl.__version__)


@pytest.mark.parametrize(
    "factory",
    [
        outbound.client,
        outbound.async_client,
    ],
    ids=["sync", "async"],
)
def test_every_http_client_sends_the_user_agent(factory: Callable[[], object]) -> None:
    made = factory()
    assert isinstance(made, httpx.Client | httpx.AsyncClient)
    assert made.headers["User-Agent"] == f"paymobctl/{version('paymobctl')}"
    assert made.trust_env is False


def test_sent_requests_carry_the_user_agent() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["User-Agent"])
        return httpx.Response(200)

    with httpx.Client(transport=httpx.MockTransport(handler)) as http:
        for request in (
            delivery.post_json("http://127.0.0.1:9/hook", {}),
            delivery.get("http://127.0.0.1:9/r"),
        ):
            assert delivery.attempt(http, request, timeout=5).ok
    assert seen == [f"paymobctl/{paymobctl.__version__}"] * 2


def test_metadata_claims_what_ci_tests() -> None:
    """The classifiers' Python versions start at requires-python, with no gap."""
    info = metadata("paymobctl")
    claimed = [
        c.rsplit(" :: ", 1)[1]
        for c in info.get_all("Classifier") or []
        if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)
    ]
    minors = [int(v.split(".")[1]) for v in claimed]
    assert claimed and minors == list(range(minors[0], minors[0] + len(minors)))
    assert info["Requires-Python"] == f">={claimed[0]}"
    assert info["License-Expression"] == "MIT"
    assert app.info.name == "paymobctl"
