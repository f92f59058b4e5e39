"""In a real browser (Playwright driving Debian's chromium): checkout, inspector, dashboard.

One browser for the module; the sandbox, a listener with its inspector and a merchant app run
on free loopback ports. Set PAYMOBCTL_SCREENSHOTS=docs/screenshots to refresh the README's
screenshots. Without /usr/bin/chromium (or $PAYMOBCTL_CHROMIUM) the tests are skipped, unless
PAYMOBCTL_REQUIRE_BROWSER=1 (as in .ci/run, which installs chromium) makes that a failure.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from paymobctl.delivery import RetryPolicy
from paymobctl.emulator import create_app as create_sandbox
from paymobctl.inspector import create_inspector
from paymobctl.receiver import create_app as create_listener
from paymobctl.sandbox_profile import SANDBOX
from paymobctl.store import Store

from .servers import Recorder, serve

pytestmark = [pytest.mark.browser, pytest.mark.slow]  # slow: a real chromium, real sockets

CHROMIUM = os.environ.get("PAYMOBCTL_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
WAIT = 10_000  # ms: an upper bound for waiting on the page, never a timing assertion
BILLING = {
    "first_name": "Mona", "last_name": "Adel", "email": "mona@example.com", "phone_number": "+201234567890",
    "apartment": "NA", "floor": "NA", "street": "NA", "building": "NA", "shipping_method": "NA",
    "postal_code": "NA", "city": "NA", "country": "EG", "state": "NA",
}  # fmt: skip
FAST = RetryPolicy(
    attempts=2, first_delay=0.05, factor=2, max_delay=0.1, retry_on=frozenset({"non-2xx"})
)


@dataclass
class World:
    browser: Any
    sandbox: str
    listener: str
    merchant: str
    recorder: Recorder
    store: Store
    shots: Path | None

    def page(self, *, width: int = 1280, dark: bool = False, **context: Any) -> Any:
        ctx = self.browser.new_context(
            viewport={"width": width, "height": 900},
            color_scheme="dark" if dark else "light",
            **context,
        )
        page = ctx.new_page()
        page.set_default_timeout(WAIT)
        return page

    def shot(self, page: Any, name: str) -> None:
        if self.shots is not None:
            page.screenshot(path=str(self.shots / f"{name}.png"), full_page=False)

    def payment_key(self, *, amount: int = 15000, integration: int = SANDBOX.integration_id) -> str:
        with httpx.Client(base_url=self.sandbox) as http:
            token = http.post("/api/auth/tokens", json={"api_key": SANDBOX.api_key}).json()["token"]
            order = http.post(
                "/api/ecommerce/orders",
                json={"auth_token": token, "delivery_needed": False, "amount_cents": amount,
                      "currency": "EGP", "items": []},
            ).json()  # fmt: skip
            key = http.post(
                "/api/acceptance/payment_keys",
                json={"auth_token": token, "amount_cents": amount, "expiration": 3600,
                      "order_id": order["id"], "billing_data": BILLING, "currency": "EGP",
                      "integration_id": integration},
            )  # fmt: skip
            return str(key.json()["token"])

    def checkout(self, page: Any, **key: Any) -> None:
        token = self.payment_key(**key)
        page.goto(
            f"{self.sandbox}/api/acceptance/iframes/{SANDBOX.iframe_id}?payment_token={token}"
        )

    def drain(self) -> None:
        httpx.post(f"{self.sandbox}/_sandbox/drain?timeout=10")


def fill_card(
    page: Any, number: str, *, holder: str = "Mona Adel", month: str = "12", year: str = "30",
    cvv: str = "123", save: bool = False,
) -> None:  # fmt: skip
    page.fill("#card_number", number)
    page.fill("#card_holder", holder)
    page.fill("#expiry_month", month)
    page.fill("#expiry_year", year)
    page.fill("#cvv", cvv)
    if save:
        page.check("input[name=save_card]")
    page.click("button[type=submit]")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    if not Path(CHROMIUM).exists():
        if os.environ.get("PAYMOBCTL_REQUIRE_BROWSER") == "1":
            pytest.fail(f"no chromium at {CHROMIUM}: apt-get install -y chromium")
        pytest.skip(f"no chromium at {CHROMIUM} (apt-get install -y chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    shots_dir = os.environ.get("PAYMOBCTL_SCREENSHOTS")
    # Relative to the repository: the tests run in a temporary working directory.
    shots = Path(__file__).resolve().parents[1] / shots_dir if shots_dir else None
    if shots is not None:
        shots.mkdir(parents=True, exist_ok=True)
    store = Store(tmp_path_factory.mktemp("browser") / "listen.db")
    recorder = Recorder()

    def inspector(fallback: Any) -> Any:
        return create_inspector(store=store, secret=SANDBOX.hmac_secret, fallback=fallback)

    listener_app = create_listener(store=store, secret=SANDBOX.hmac_secret, inspector=inspector)
    with serve(recorder.app()) as merchant, serve(listener_app) as listener:
        sandbox_app = create_sandbox(
            callback_url=f"{listener}/api/payments/webhook/", policy=FAST, timeout=5.0
        )
        with serve(sandbox_app) as sandbox, sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            try:
                yield World(browser, sandbox, listener, merchant, recorder, store, shots)
            finally:
                browser.close()
    store.close()


# --- the sandbox's checkout -------------------------------------------------------------------


def test_checkout_approved_and_card_saved(world: World) -> None:
    page = world.page()
    world.checkout(page, integration=SANDBOX.moto_integration_id)
    world.shot(page, "sandbox-checkout")
    fill_card(page, "0000000000000000", save=True)
    page.wait_for_selector("text=Payment successful")
    world.drain()
    page.goto(f"{world.listener}/_paymobctl/cards")
    assert page.locator("td code", has_text="0000").count() >= 1
    page.context.close()


def test_checkout_declined_shows_the_reason(world: World) -> None:
    page = world.page()
    world.checkout(page, integration=SANDBOX.moto_integration_id)
    fill_card(page, "0000000000001111")
    page.wait_for_selector("text=Payment failed")
    reason = page.inner_text(".error")
    assert re.search(r"Transaction \d+: \S", reason), reason
    page.context.close()


def test_three_d_secure_wrong_otp_declines_right_otp_approves(world: World) -> None:
    page = world.page()
    world.checkout(page)
    fill_card(page, "0000000000002222")
    page.wait_for_selector("text=3-D Secure authentication")
    page.fill("#otp", "0000")
    page.click("#confirm")
    page.wait_for_selector("text=Payment failed")
    world.checkout(page)
    fill_card(page, "0000000000002222")
    page.wait_for_selector("#otp")
    world.shot(page, "sandbox-3ds")
    page.fill("#otp", "1234")
    page.click("#confirm")
    page.wait_for_selector("text=Payment successful")
    page.context.close()


@pytest.mark.parametrize(
    ("card", "message"),
    [
        ({"number": "1234"}, "Enter the card number: 13 to 19 digits."),
        ({"number": "4111111111111112"}, "Invalid card number."),
        ({"number": "0000000000000000", "holder": " "}, "Enter the name on the card."),
        ({"number": "0000000000000000", "month": "13"}, "Enter the expiry date as MM / YY."),
        ({"number": "0000000000000000", "cvv": "12"}, "Enter the 3-digit CVV."),
    ],
)
def test_checkout_validation_errors_are_shown(
    world: World, card: dict[str, str], message: str
) -> None:
    page = world.page(width=375)
    world.checkout(page, integration=SANDBOX.moto_integration_id)
    fill_card(page, **card)
    assert page.inner_text(".error") == message
    assert page.input_value("#card_number") == card["number"]  # the form keeps what was typed
    page.context.close()


# --- the inspector ----------------------------------------------------------------------------


def _simulate(cli: Any, world: World, tmp_path: Path, *extra: str) -> None:
    secret = tmp_path / "secret"
    secret.write_text(SANDBOX.hmac_secret)
    result = cli(
        "simulate", "transaction", "--to", f"{world.listener}/api/payments/webhook/",
        "--secret-file", str(secret), *extra,
    )  # fmt: skip
    assert result.code in (0, 1), result.output


def test_inspector_shows_a_simulated_event_live(world: World, cli: Any, tmp_path: Path) -> None:
    page = world.page()
    page.goto(f"{world.listener}/_paymobctl/")
    page.evaluate("window.notReloaded = true")
    page.wait_for_selector("#rows")
    _simulate(cli, world, tmp_path, "--order-id", "424242", "--merchant-order-id", "live-1")
    row = page.locator("#rows tr", has_text="424242")
    row.wait_for()
    assert page.evaluate("window.notReloaded") is True  # it arrived over server-sent events
    assert "HMAC valid" in row.inner_text()
    world.shot(page, "inspector-events")
    dark = world.page(dark=True)
    dark.goto(f"{world.listener}/_paymobctl/")
    world.shot(dark, "inspector-events-dark")
    narrow = world.page(width=375)
    narrow.goto(f"{world.listener}/_paymobctl/")
    world.shot(narrow, "inspector-events-375")
    for p in (page, dark, narrow):
        p.context.close()


def test_inspector_explains_an_invalid_hmac_and_replays(
    world: World, cli: Any, tmp_path: Path
) -> None:
    _simulate(cli, world, tmp_path, "--order-id", "515151", "--bad-hmac", "--expect-reject")
    page = world.page()
    page.goto(f"{world.listener}/_paymobctl/?q=515151")
    page.click("#rows a")
    page.wait_for_selector("text=INVALID")
    assert page.locator("ul.diagnoses li").count() >= 1
    assert page.locator("pre mark").count() >= 15  # the signed fields, highlighted
    world.shot(page, "inspector-event-invalid")
    before = len(world.recorder.requests)
    page.fill("input[name=to]", f"{world.merchant}/api/payments/webhook/")
    page.click("button:text-is('Replay')")
    page.wait_for_selector("#action-result")
    assert "replayed to" in page.inner_text("#action-result")
    assert len(world.recorder.requests) == before + 1
    assert world.recorder.requests[-1].path == "/api/payments/webhook/"
    page.click("button:text-is('Copy as curl')")
    page.wait_for_selector("pre.copied")
    assert page.inner_text("pre.copied").startswith("curl -i -X POST")
    page.context.close()


def test_inspector_is_invisible_through_the_tunnel(world: World) -> None:
    page = world.page(extra_http_headers={"X-Forwarded-For": "203.0.113.7"})
    response = page.goto(f"{world.listener}/_paymobctl/")
    assert response is not None and response.status == 404
    assert "no callback endpoint" in page.content()
    page.context.close()


# --- the sandbox dashboard --------------------------------------------------------------------


def test_dashboard_refund_and_resend(world: World) -> None:
    page = world.page()
    world.checkout(page, integration=SANDBOX.moto_integration_id)
    fill_card(page, "0000000000000000")
    page.wait_for_selector("text=Payment successful")
    txn = re.search(r"Transaction (\d+)", page.inner_text(".ok"))
    assert txn is not None
    world.drain()
    page.goto(f"{world.sandbox}/_sandbox/")
    row = page.locator(f"#txn-{txn.group(1)}")
    row.locator("input[name=amount_cents]").first.fill("5000")
    row.locator("button", has_text="Refund").click()
    page.wait_for_selector(f"#txn-{txn.group(1)} .result.ok")
    world.drain()
    page.wait_for_selector(f"#txn-{txn.group(1)} .badge:text('refunded')")
    deliveries = page.locator("[id^=delivery-]")
    first = deliveries.last.get_attribute("id")
    count = deliveries.count()
    deliveries.last.locator("button", has_text="Resend").click()
    page.wait_for_selector(f"#{first} .result.ok")
    deliveries.nth(count).wait_for()  # the resent callback's new delivery, live
    page.evaluate("window.scrollTo(0, 0)")
    world.shot(page, "sandbox-dashboard")
    page.context.close()
