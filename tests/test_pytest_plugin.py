"""The pytest plugin, run inside throwaway projects with pytester."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import entry_points

import pytest

# Imported before pytester's in-process runs snapshot sys.modules, so the inner runs share these
# modules with this process instead of importing second copies (whose enums would differ).
import paymobctl.testing  # noqa: F401

pytest_plugins = ["pytester"]

# In-process runs share this process's Django, which our own suite configures (django_site):
# pytest-django would then set up a second test environment in the inner run.
INNER = ("-W", "error", "-p", "no:django")

PROJECT_TESTS = """
import os

import httpx

from paymobctl import signing
from paymobctl.models import CallbackKind


def _order(sandbox):
    with httpx.Client() as http:
        auth = http.post(sandbox.base_url + "/api/auth/tokens", json={"api_key": sandbox.api_key})
        return http.post(
            sandbox.base_url + "/api/ecommerce/orders",
            json={"auth_token": auth.json()["token"], "amount_cents": 100, "currency": "EGP",
                  "delivery_needed": False, "items": []},
        ).json()["id"]


def test_first_uses_the_sandbox(paymob_sandbox):
    paymob_sandbox.set_callback_urls("http://127.0.0.1:9/hook/")
    assert _order(paymob_sandbox)
    assert httpx.get(paymob_sandbox.base_url + "/healthz").json() == {"status": "ok"}


def test_second_starts_clean(paymob_sandbox):
    urls = httpx.get(paymob_sandbox.base_url + "/_sandbox/callbacks").json()
    assert urls == {"callback_url": None, "response_url": None}
    assert paymob_sandbox.transactions == [] and paymob_sandbox.deliveries == []


def test_env(paymob_env, paymob_sandbox):
    assert os.environ["PAYMOB_BASE_URL"] == paymob_sandbox.base_url == paymob_env["PAYMOB_BASE_URL"]
    assert os.environ["PAYMOB_HMAC_SECRET"] == paymob_sandbox.hmac_secret


def test_callback(paymob_callback, pytestconfig):
    cb = paymob_callback(outcome="declined", order_id=5)
    secret = pytestconfig.getoption("paymob_hmac_secret") or "5ANDB0X0HMAC0SECRET0000PAYMOBCTL"
    assert signing.verify(CallbackKind.TRANSACTION, cb.obj, secret, cb.hmac).valid
    token = paymob_callback.token(order_id=5)
    assert signing.verify(CallbackKind.TOKEN, token.obj, secret, token.hmac).valid


def test_env_is_gone_afterwards():
    assert "PAYMOB_BASE_URL" not in os.environ
"""


def test_registered_as_a_pytest11_entry_point() -> None:
    found = [e for e in entry_points(group="pytest11") if e.value == "paymobctl.pytest_plugin"]
    assert [e.name for e in found] == ["paymobctl"]


@pytest.mark.slow
def test_fixtures_in_a_project(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_shop=PROJECT_TESTS)
    result = pytester.runpytest(*INNER, "-p", "no:cacheprovider")
    result.assert_outcomes(passed=5)


@pytest.mark.slow
def test_hmac_secret_option(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_secret="""
        def test_both_use_it(paymob_sandbox, paymob_callback):
            assert paymob_sandbox.hmac_secret == "shop-secret" == paymob_callback.secret
            assert paymob_sandbox.env()["PAYMOB_HMAC_SECRET"] == "shop-secret"
        """
    )
    pytester.makepyfile(test_shop=PROJECT_TESTS)
    result = pytester.runpytest(*INNER, "--paymob-hmac-secret", "shop-secret")
    result.assert_outcomes(passed=6)


def test_help_lists_the_option(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(["*paymobctl: Paymob sandbox and signed callbacks*"])
    result.stdout.fnmatch_lines(["*--paymob-hmac-secret=SECRET*"])


@pytest.mark.slow
def test_loading_the_plugin_imports_nothing_heavy() -> None:
    code = (
        "import sys, paymobctl.pytest_plugin\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('httpx', 'starlette', 'uvicorn', 'rich', 'typer') or m in "
        "('paymobctl.testing', 'paymobctl.emulator', 'paymobctl.callbacks'))\n"
        "print(heavy)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


@pytest.mark.slow
def test_each_xdist_worker_has_its_own_sandbox(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_workers="""
        import os

        import pytest


        @pytest.mark.parametrize("n", range(4))
        def test_where(paymob_sandbox, n, tmp_path_factory):
            worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
            out = tmp_path_factory.getbasetemp().parent.parent / f"{worker}-{n}.url"
            out.write_text(paymob_sandbox.base_url)
        """
    )
    result = pytester.runpytest_subprocess("-n", "2", "-p", "xdist", "-W", "error")
    result.assert_outcomes(passed=4)
    urls = {p.name.split("-")[0]: p.read_text() for p in pytester.path.rglob("gw*.url")}
    assert set(urls) == {"gw0", "gw1"}
    assert urls["gw0"] != urls["gw1"]
