"""`paymobctl sandbox pay` and paymobctl.checkout, and how commands find the running sandbox."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from paymobctl import checkout, sandbox_runtime
from paymobctl.callbacks import parse_paymob_timestamp
from paymobctl.client import Billing, PaymobClient
from paymobctl.emulator import create_app as create_sandbox
from paymobctl.errors import UsageError
from paymobctl.models import Region, Secret
from paymobctl.paths import runtime_dir
from paymobctl.sandbox_profile import SANDBOX

from .conftest import run_cli
from .inprocess import in_process
from .servers import Recorder, free_port, start_paymobctl, stop_paymobctl

BILLING = Billing("Mona", "Adel", "mona@example.com", "+201234567890")


@dataclass
class Merchant:
    sandbox: str
    app: str
    recorder: Recorder

    def client(self, http: httpx.Client) -> PaymobClient:
        return PaymobClient(
            http,
            base_url=self.sandbox,
            api_key=Secret(SANDBOX.api_key),
            secret_key=Secret(SANDBOX.secret_key),
            public_key=SANDBOX.public_key,
        )

    def iframe_url(self, cents: int = 15000) -> str:
        with httpx.Client() as http:
            return (
                self.client(http)
                .legacy_checkout(
                    amount_cents=cents,
                    currency="EGP",
                    integration_id=SANDBOX.integration_id,
                    iframe_id=SANDBOX.iframe_id,
                    billing=BILLING,
                    merchant_order_id=None,
                    tokenization=True,
                )
                .url
            )


@pytest.fixture
def merchant() -> Iterator[Merchant]:
    recorder = Recorder()
    with in_process(recorder.app()) as app:
        sandbox_app = create_sandbox(
            callback_url=f"{app}/api/payments/webhook/",
            response_url=f"{app}/api/payments/response/",
        )
        with in_process(sandbox_app) as sandbox:
            yield Merchant(sandbox, app, recorder)


def test_sandbox_pay_iframe_with_save_card(merchant: Merchant) -> None:
    url = merchant.iframe_url()
    result = run_cli("sandbox", "pay", url, "--save-card")
    assert result.code == 0, result.output
    out = result.stdout
    assert "APPROVED" in out and "3-D Secure OTP answered" in out and "iframe checkout" in out
    assert f"browser redirected to {merchant.app}/api/payments/response/ (HTTP 200)" in out
    assert "callback TRANSACTION" in out and "callback TOKEN" in out
    assert out.count("delivered, HTTP 200, 1 attempt") == 2
    posts = [r for r in merchant.recorder.requests if r.method == "POST"]
    assert sorted(json.loads(r.body)["type"] for r in posts) == ["TOKEN", "TRANSACTION"]
    assert "123" not in result.stderr  # the CVV is never echoed


def test_pay_reports_a_declined_card_and_exits_1(merchant: Merchant) -> None:
    result = run_cli("sandbox", "pay", merchant.iframe_url(), "--card", "0000000000001111")
    assert result.code == 1 and "DECLINED" in result.stdout
    posts = [r for r in merchant.recorder.requests if r.method == "POST"]
    assert [json.loads(r.body)["obj"]["success"] for r in posts] == [False]


def test_pay_json_and_an_expiry_that_picks_the_result(merchant: Merchant) -> None:
    result = run_cli("--json", "sandbox", "pay", merchant.iframe_url(), "--expiry", "05/39")
    assert result.code == 1
    data = result.json()
    assert data["outcome"] == "declined" and data["three_ds"] is True and data["flow"] == "iframe"
    assert data["transaction_id"] and data["callbacks"][0]["kind"] == "TRANSACTION"


def test_pay_the_unified_checkout(merchant: Merchant) -> None:
    with httpx.Client() as http:
        url = (
            merchant.client(http)
            .intention_checkout(
                amount_cents=5000,
                currency="EGP",
                integration_id=SANDBOX.integration_id,
                billing=BILLING,
                merchant_order_id=None,
            )
            .url
        )
        paid = checkout.pay(http, url, card=checkout.Card(number="0000000000000000"))
    assert paid.flow == "unified" and paid.approved and not paid.three_ds
    assert paid.redirect_url.startswith(f"{merchant.app}/api/payments/response/?")


def test_the_redirect_is_never_updated_after_it_is_sent(merchant: Merchant) -> None:
    with httpx.Client() as http:
        paid = checkout.pay(http, merchant.iframe_url())
    after = datetime.now(UTC)
    params = dict(parse_qsl(urlsplit(paid.redirect_url).query))
    updated = parse_paymob_timestamp(params["updated_at"], Region.EG)
    created = parse_paymob_timestamp(params["created_at"], Region.EG)
    assert updated is not None and created is not None
    assert created <= updated <= after


def test_a_response_page_that_cannot_load_is_reported_not_fatal() -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    app = create_sandbox(response_url=f"{dead}/api/payments/response/")
    with in_process(app) as sandbox, httpx.Client() as http:
        url = Merchant(sandbox, dead, Recorder()).iframe_url()
        paid = checkout.pay(http, url)
    assert paid.approved and paid.landed_status is None and paid.landed_error
    assert paid.callbacks == ()  # no processed callback URL configured


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["http://127.0.0.1:9/checkout"], "neither the card iframe nor the unified checkout"),
        (["not a url"], "is not a checkout URL"),
        (
            ["http://127.0.0.1:9/api/acceptance/iframes/1?payment_token=x", "--expiry", "1939"],
            "expected MM/YY",
        ),
        (
            ["http://127.0.0.1:9/api/acceptance/iframes/1?payment_token=x", "--expiry", "13/39"],
            "expected MM/YY",
        ),
    ],
)
def test_pay_refuses_bad_input_in_one_line(args: list[str], needle: str) -> None:
    result = run_cli("sandbox", "pay", *args)
    assert result.code == 2 and needle in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_pay_a_used_checkout_and_a_gone_sandbox(merchant: Merchant) -> None:
    url = merchant.iframe_url()
    assert run_cli("sandbox", "pay", url).code == 0
    again = run_cli("sandbox", "pay", url)
    assert again.code == 2 and "already used" in again.stderr
    gone = f"http://127.0.0.1:{free_port()}/api/acceptance/iframes/1?payment_token=x"
    result = run_cli("sandbox", "pay", gone)
    assert result.code == 3 and "still running" in result.stderr


def test_checkout_flow_detection() -> None:
    assert checkout.checkout_flow("http://h/unifiedcheckout/?publicKey=a&clientSecret=b") == (
        "unified"
    )
    with pytest.raises(UsageError):
        checkout.checkout_flow("http://h/api/acceptance/iframes/1")  # no payment token


# --- finding the running sandbox -------------------------------------------------------------------


def _note(url: str, pid: int, started_at: str = "2026-01-01T00:00:00+00:00") -> Path:
    folder = runtime_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"sandbox-{pid}.json"
    path.write_text(json.dumps({"url": url, "pid": pid, "started_at": started_at}))
    return path


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_stale_runtime_files_are_removed_and_ignored() -> None:
    dead = _note("http://127.0.0.1:9", _dead_pid())
    silent = _note(f"http://127.0.0.1:{free_port()}", os.getpid(), "2026-01-02T00:00:00+00:00")
    assert sandbox_runtime.find() is None
    assert not dead.exists() and not silent.exists()


def test_the_newest_answering_sandbox_wins() -> None:
    with in_process(create_sandbox()) as first, in_process(create_sandbox()) as second:
        _note(first, os.getpid(), "2026-01-01T00:00:00+00:00")
        newer = _note(second, os.getppid(), "2026-01-02T00:00:00+00:00")
        found = sandbox_runtime.find()
    assert found is not None and found.url == second and found.path == newer


def test_commands_use_the_running_sandbox_and_say_so(monkeypatch: pytest.MonkeyPatch) -> None:
    recorder = Recorder()
    with in_process(recorder.app()) as app, in_process(create_sandbox()) as sandbox:
        _note(sandbox, os.getpid())
        deposit = run_cli("deposit", "150")
        assert deposit.code == 0, deposit.output
        assert f"using the sandbox running at {sandbox}" in deposit.stderr
        assert "set PAYMOB_BASE_URL to choose another" in deposit.stderr  # deposit has no --url
        assert sandbox in deposit.stdout  # the checkout URL is the running sandbox's
        changed = run_cli(
            "sandbox", "callbacks", "--callback-url", f"{app}/hook/", "--response-url", ""
        )
        assert changed.code == 0 and f"{app}/hook/" in changed.stdout
        assert "pass --save" in changed.stderr  # the profile's URL is the listener default
        assert run_cli("sandbox", "deliveries").code == 0
        simulated = run_cli("simulate", "transaction")
        assert simulated.code == 0 and f"{app}/hook/" in simulated.stderr
        assert [r.path for r in recorder.requests] == ["/hook/"]
        # Acceptance review: an explicit --to is the target; no word about the sandbox.
        aimed = run_cli("simulate", "transaction", "--to", f"{app}/other/")
        assert aimed.code == 0 and "using the sandbox running" not in aimed.output
        # A base URL that is configured wins, silently.
        monkeypatch.setenv("PAYMOB_BASE_URL", sandbox)
        assert "using the sandbox" not in run_cli("deposit", "10").stderr


def test_sandbox_callbacks_save_to_the_profile(config_file: Path) -> None:
    with in_process(create_sandbox(callback_url="http://127.0.0.1:8001/w/")) as sandbox:
        result = run_cli("sandbox", "callbacks", "--url", sandbox, "--save")
    assert result.code == 0 and "saved to profile 'sandbox'" in result.stdout
    assert "http://127.0.0.1:8001/w/" in config_file.read_text()
    assert oct(config_file.stat().st_mode & 0o777) == "0o600"
    shown = run_cli("config", "show", "--json").stdout
    assert "http://127.0.0.1:8001/w/" in shown


def test_nothing_answers_asks_about_another_port(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYMOB_BASE_URL", f"http://127.0.0.1:{free_port()}")
    result = run_cli("deposit", "150")
    assert result.code == 3
    assert "is a sandbox running on another port? set PAYMOB_BASE_URL" in result.stderr
    # Acceptance review: only options the command has (deposit has no --url; sandbox … has).
    assert "--url" not in result.stderr
    deliveries = run_cli("sandbox", "deliveries", "--url", f"http://127.0.0.1:{free_port()}")
    assert deliveries.code == 3 and "another port" in deliveries.stderr
    assert "or pass --url" in deliveries.stderr


@pytest.mark.slow
def test_the_sandbox_process_leaves_and_removes_its_runtime_file(tmp_path: Path) -> None:
    process, url = start_paymobctl("sandbox", tmp_path)
    try:
        notes = list(runtime_dir().glob("sandbox-*.json"))
        assert [json.loads(p.read_text())["url"] for p in notes] == [url]
        assert json.loads(notes[0].read_text())["pid"] == process.pid
        found = sandbox_runtime.find()
        assert found is not None and found.url == url
    finally:
        code, out, _ = stop_paymobctl(process)
    assert code == 0 and "runtime file" in out
    assert list(runtime_dir().glob("sandbox-*.json")) == []


def test_an_expiry_in_the_past_is_declined_as_expired(merchant: Merchant) -> None:
    """Acceptance review: a past --expiry was approved; it is declined like the sandbox's
    expired-card rule (exit 1), never approved."""
    result = run_cli("--json", "sandbox", "pay", merchant.iframe_url(), "--expiry", "12/25")
    assert result.code == 1, result.output
    paid = result.json()
    assert paid["outcome"] == "declined" and "xpired" in json.dumps(paid), paid


def test_a_too_large_checkout_page_exits_3_not_declined() -> None:
    """Acceptance review: exit 1 means declined; a server sending a huge page is exit 3."""
    from starlette.applications import Starlette
    from starlette.responses import HTMLResponse
    from starlette.routing import Route

    def huge(request: object) -> HTMLResponse:
        return HTMLResponse("<html>" + "x" * (checkout.MAX_PAGE_BYTES + 1000) + "</html>")

    app = Starlette(routes=[Route("/api/acceptance/iframes/{iframe}", huge)])
    with in_process(app) as base:
        result = run_cli("sandbox", "pay", f"{base}/api/acceptance/iframes/1?payment_token=x")
    assert result.code == 3, result.output
    assert "not a checkout page" in result.stderr and result.stderr.count("\n") <= 2


def test_a_runtime_file_that_is_not_a_record_is_removed() -> None:
    """The sandboxes' files are read like the listener's record (runfile.read_record): bounded,
    and removed when they are not a record this package wrote."""
    from paymobctl.runfile import MAX_RECORD_BYTES

    folder = runtime_dir()
    folder.mkdir(parents=True, exist_ok=True)
    junk = [folder / f"sandbox-{n}.json" for n in (1, 2, 3)]
    junk[0].write_text("{")
    junk[1].write_text(json.dumps({"url": "http://127.0.0.1:9", "pid": "1", "started_at": "x"}))
    junk[2].write_bytes(b" " * (MAX_RECORD_BYTES + 1))
    assert sandbox_runtime.find() is None
    assert not any(path.exists() for path in junk)
