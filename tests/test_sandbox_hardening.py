"""Issue 10 part 4: the sandbox never answers 500, validates every callback and redirect URL,
keeps its control routes away from web pages, and never calls link-local addresses."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from paymobctl.emulator import create_app
from paymobctl.emulator.notifier import _resolves_link_local
from paymobctl.emulator.state import LINK_LOCAL_REFUSED, callback_url_error, link_local
from paymobctl.sandbox_profile import SANDBOX

from .inprocess import in_process
from .servers import Recorder
from .test_sandbox import FAST, Clock, Sandbox, intention

SECRET_HEADER = {"Authorization": f"Token {SANDBOX.secret_key}"}


@pytest.fixture
def exposed() -> Iterator[tuple[Sandbox, Starlette]]:
    """The sandbox fixture, with its app at hand (to change state behind the validators)."""
    merchant = Recorder()
    with in_process(merchant.app()) as merchant_url:
        app = create_app(callback_url=f"{merchant_url}/hook", policy=FAST, timeout=2)
        with in_process(app) as base, httpx.Client(base_url=base, timeout=10) as http:
            yield Sandbox(http, merchant, merchant_url, Clock(), []), app


@pytest.fixture
def sandbox(exposed: tuple[Sandbox, Starlette]) -> Sandbox:
    return exposed[0]


BAD_URLS = [
    "javascript:alert(1)",
    "file:///etc/passwd",
    "http://",
    "/relative/path",
    "data:text/html,<script>",
    "http://169.254.169.254/latest/meta-data/",
    "http://[fe80::1]/hook",
    "http://[::ffff:169.254.169.254]/hook",
    "http://2852039166/hook",  # 169.254.169.254 as one number
    "http://0xa9fea9fe/hook",
]


@pytest.mark.parametrize("url", BAD_URLS)
def test_callback_url_rules(url: str) -> None:
    assert callback_url_error(url) is not None
    assert callback_url_error(123) == ["Not a valid string."]
    assert callback_url_error("https://shop.example/api/payments/webhook/") is None
    assert callback_url_error("http://127.0.0.1:8000/hook") is None


def test_link_local_spellings() -> None:
    for host in ("169.254.169.254", "169.254.0.1", "fe80::1", "fe80::1%eth0", "2852039166"):
        assert link_local(host), host
    for host in ("127.0.0.1", "10.0.0.1", "::1", "shop.example", "fec0::1"):
        assert not link_local(host), host


def test_notifier_resolves_names_before_each_attempt() -> None:
    assert asyncio.run(_resolves_link_local("http://169.254.169.254/x")) == LINK_LOCAL_REFUSED
    assert asyncio.run(_resolves_link_local("http://127.0.0.1:9/x")) is None
    assert asyncio.run(_resolves_link_local("http://localhost:9/x")) is None


# --- never a 500 -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("amount_cents=abc&id=1", "amount_cents"),
        ("amount_cents=1.5&id=1", "amount_cents"),
        ("amount_cents=100&id=-3", "id"),
        ("amount_cents=100&id=99999999999999999999999", "id"),
        ("amount_cents=%EF%BC%91&id=1", "amount_cents"),  # a full-width digit
    ],
)
def test_post_pay_with_malformed_numbers_is_a_drf_400(
    sandbox: Sandbox, query: str, field: str
) -> None:
    response = sandbox.http.get(f"/api/acceptance/post_pay?{query}")
    assert response.status_code == 400
    assert response.json() == {field: ["A valid integer is required."]}


def test_post_pay_with_good_numbers_shows_the_page(sandbox: Sandbox) -> None:
    good = sandbox.http.get("/api/acceptance/post_pay?amount_cents=100&id=7&success=true")
    assert good.status_code == 200 and "1.00" in good.text


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"notification_url": 123}, "notification_url"),
        ({"notification_url": {"a": 1}}, "notification_url"),
        ({"redirection_url": "javascript:alert(1)"}, "redirection_url"),
        ({"redirection_url": ["http://x.example/"]}, "redirection_url"),
        ({"notification_url": "http://169.254.169.254/"}, "notification_url"),
        ({"accept_order_id": {"id": 1}}, "accept_order_id"),
        ({"accept_order_id": "12abc"}, "accept_order_id"),
        ({"special_reference": [1, 2]}, "special_reference"),
    ],
)
def test_intention_update_bad_types_are_drf_400s(
    sandbox: Sandbox, changes: dict[str, Any], field: str
) -> None:
    secret = intention(sandbox).json()["client_secret"]
    body = {"accept_order_id": 1, **changes}
    response = sandbox.http.put(f"/v1/intention/{secret}", json=body, headers=SECRET_HEADER)
    assert response.status_code == 400, response.text
    assert field in response.json()
    fine = sandbox.http.put(
        f"/v1/intention/{secret}",
        json={"accept_order_id": 1, "notification_url": "https://shop.example/hook"},
        headers=SECRET_HEADER,
    )
    assert fine.status_code == 200


# --- URLs validated wherever they are set ----------------------------------------------------------


@pytest.mark.parametrize("url", BAD_URLS)
def test_bad_urls_are_refused_everywhere(sandbox: Sandbox, url: str) -> None:
    for name in ("callback_url", "response_url"):
        response = sandbox.http.post("/_sandbox/callbacks", json={name: url})
        assert response.status_code == 400 and name in response.json(), response.text
    for name in ("notification_url", "redirection_url"):
        response = intention(sandbox, **{name: url})
        assert response.status_code == 400 and name in response.json(), response.text
    urls = sandbox.http.get("/_sandbox/callbacks").json()
    assert url not in urls.values()


def test_sandbox_command_refuses_a_metadata_callback_url(cli: Any) -> None:
    result = cli("sandbox", "--port", "0", "--callback-url", "http://169.254.169.254/hook")
    assert result.code == 2
    assert "link-local" in result.output


def test_link_local_callback_set_behind_the_validators_back_is_not_sent(
    exposed: tuple[Sandbox, Starlette],
) -> None:
    # A name checked when set could resolve anywhere later: the notifier checks again.
    sandbox, app = exposed
    for integration in app.state.sandbox.integrations.values():
        integration.callback_url = "http://169.254.169.254/latest/meta-data/"
    sandbox.pay_card("0000000000000000")
    sandbox.drain()
    failed = sandbox.http.get("/_sandbox/deliveries").json()[0]
    assert failed["state"] == "failed" and len(failed["attempts"]) == 1
    assert failed["attempts"][0]["error"] == LINK_LOCAL_REFUSED
    assert sandbox.merchant.requests == []


# --- control routes ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://evil.example"},
        {"Origin": "null"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
    ],
)
def test_control_routes_refuse_cross_origin_requests(
    sandbox: Sandbox, headers: dict[str, str]
) -> None:
    before = sandbox.http.get("/_sandbox/callbacks").json()
    for method, path, body in (
        ("POST", "/_sandbox/callbacks", {"callback_url": "http://attacker.example/hook"}),
        ("GET", "/_sandbox/callbacks", None),
        ("GET", "/_sandbox/deliveries", None),
        ("POST", "/_sandbox/drain", None),
        ("POST", "/_sandbox/kiosk/123/pay", None),
    ):
        response = sandbox.http.request(method, path, json=body, headers=headers)
        assert response.status_code == 403, (method, path, response.text)
        assert "Cross-origin" in response.json()["detail"]
    assert sandbox.http.get("/_sandbox/callbacks").json() == before


@pytest.mark.parametrize(
    "content_type",
    ["application/x-www-form-urlencoded", "text/plain", "multipart/form-data; boundary=x"],
)
def test_control_routes_accept_json_only(sandbox: Sandbox, content_type: str) -> None:
    response = sandbox.http.post(
        "/_sandbox/callbacks",
        content=b"callback_url=http://attacker.example/hook",
        headers={"Content-Type": content_type},
    )
    assert response.status_code == 415
    assert response.json() == {
        "detail": f'Unsupported media type "{content_type.split(";", maxsplit=1)[0]}" in request.'
    }


def test_control_routes_still_serve_same_origin_and_scripts(sandbox: Sandbox) -> None:
    base = str(sandbox.http.base_url).rstrip("/")
    new = f"{sandbox.merchant_url}/hook"
    same = sandbox.http.post(
        "/_sandbox/callbacks",
        json={"callback_url": new},
        headers={"Origin": base, "Sec-Fetch-Site": "same-origin"},
    )
    assert same.status_code == 200 and same.json()["callback_url"] == new
    assert sandbox.http.post("/_sandbox/drain", params={"timeout": "1"}).status_code == 200
    bad = sandbox.http.post("/_sandbox/drain", params={"timeout": "nan"})
    assert bad.status_code == 400
