"""The client, deposits, saved-card payments, status, refunds and the demo, against the sandbox."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from paymobctl.checkout import Browser
from paymobctl.client import Billing, PaymobClient, api_error
from paymobctl.demo import run_demo
from paymobctl.emulator import create_app as create_sandbox
from paymobctl.errors import ApiError, ExitCode, NetworkError
from paymobctl.models import CallbackOrder, Secret
from paymobctl.receiver import create_app as create_receiver
from paymobctl.sandbox_profile import RESPONSE_PATH, SANDBOX, WEBHOOK_PATH
from paymobctl.store import Store

from .conftest import run_cli
from .servers import free_port, serve

BILLING = Billing("Mona", "Adel", "mona@example.com", "+201234567890")


@dataclass
class Stack:
    sandbox: str
    listener: str
    db: Path

    def store(self) -> Store:
        return Store(self.db)


@pytest.fixture
def stack(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> Iterator[Stack]:
    """A sandbox whose callbacks go to a live receiver writing the same store the CLI uses.
    Parametrize it indirectly with a CallbackOrder to change the sandbox's --callback-order."""
    db = tmp_path / "paymobctl.db"
    receiver_store = Store(db)
    order = getattr(request, "param", CallbackOrder.TOKEN_FIRST)
    with serve(create_receiver(store=receiver_store, secret=SANDBOX.hmac_secret)) as listener:
        app = create_sandbox(
            callback_url=f"{listener}{WEBHOOK_PATH}",
            response_url=f"{listener}{RESPONSE_PATH}",
            callback_order=order,
        )
        with serve(app) as sandbox:
            monkeypatch.setenv("PAYMOB_BASE_URL", sandbox)
            monkeypatch.setenv("PAYMOBCTL_DB", str(db))
            yield Stack(sandbox, listener, db)
    receiver_store.close()


def client(base: str, http: httpx.Client, **kwargs: Any) -> PaymobClient:
    return PaymobClient(
        http,
        base_url=base,
        api_key=Secret(SANDBOX.api_key),
        secret_key=Secret(SANDBOX.secret_key),
        public_key=SANDBOX.public_key,
        **kwargs,
    )


def pay_checkout(
    url: str, number: str = "0000000000000000", *, save: bool = True, otp: str = "1234"
) -> str:
    with httpx.Client() as http:
        browser = Browser(http)
        page = browser.submit(
            browser.open(url),
            {
                "card_number": number,
                "card_holder": "T A",
                "expiry_month": "12",
                "expiry_year": "25",
                "cvv": "123",
                **({"save_card": "true"} if save else {}),
            },
        )
        if "One-time password" in page.text:
            page = browser.submit(page, {"otp": otp})
        return page.url


def drain(stack: Stack) -> None:
    httpx.post(f"{stack.sandbox}/_sandbox/drain", timeout=40)  # it drains for up to 30 s


# --- the client ----------------------------------------------------------------------------------


def test_client_legacy_and_intention_flows(stack: Stack) -> None:
    with httpx.Client() as http:
        paymob = client(stack.sandbox, http)
        checkout = paymob.legacy_checkout(
            amount_cents=12345,
            currency="EGP",
            integration_id=SANDBOX.integration_id,
            iframe_id=SANDBOX.iframe_id,
            billing=BILLING,
            merchant_order_id="C-1",
            tokenization=True,
        )
        assert checkout.url.startswith(
            f"{stack.sandbox}/api/acceptance/iframes/{SANDBOX.iframe_id}?payment_token="
        )
        assert paymob.inquiry(order_id=checkout.order_id) is None  # nothing paid yet
        pay_checkout(checkout.url)
        found = paymob.inquiry(merchant_order_id="C-1")
        assert found is not None and found["success"] is True and found["amount_cents"] == 12345
        assert paymob.transaction(found["id"])["id"] == found["id"]
        intention = paymob.intention_checkout(
            amount_cents=5000,
            currency="EGP",
            integration_id=SANDBOX.integration_id,
            billing=BILLING,
            merchant_order_id="C-2",
        )
        assert intention.url.startswith(f"{stack.sandbox}/unifiedcheckout/?publicKey=")
        assert intention.intention_id and intention.intention_id.startswith("pi_test_")
        assert paymob.hmac_secret() == SANDBOX.hmac_secret
        assert {i["id"] for i in paymob.integrations()} >= {
            SANDBOX.integration_id,
            SANDBOX.moto_integration_id,
        }


def test_auth_token_is_cached_for_its_lifetime(stack: Stack) -> None:
    calls: list[str] = []
    now = [1000.0]
    with httpx.Client(event_hooks={"request": [lambda r: calls.append(r.url.path)]}) as http:
        paymob = client(stack.sandbox, http, clock=lambda: now[0])
        paymob.create_order(amount_cents=100, currency="EGP")
        paymob.create_order(amount_cents=100, currency="EGP")
        assert calls.count("/api/auth/tokens") == 1
        now[0] += 56 * 60
        paymob.create_order(amount_cents=100, currency="EGP")
        assert calls.count("/api/auth/tokens") == 2


def mock_client(handler: Any, **kwargs: Any) -> tuple[PaymobClient, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path == "/api/auth/tokens" and not kwargs.get("fail_auth"):
            return httpx.Response(201, json={"token": "tok"})
        result: httpx.Response = handler(request)
        return result

    http = httpx.Client(transport=httpx.MockTransport(record))
    return client("https://accept.paymob.com", http, sleep=lambda s: None), seen


@pytest.mark.parametrize(
    ("status", "body", "message", "hint"),
    [
        (
            404,
            {"detail": "Integration ID/Name does not exist in our system . You can find …"},
            "integration id does not exist in this mode",
            "test vs live",
        ),
        (
            400,
            {"detail": "Invalid currency sent"},
            "currency does not match",
            "integration's currency",
        ),
        (
            400,
            {"billing_data": {"phone_number": ["This field is required."]}},
            "billing_data.phone_number: This field is required.",
            "config show",
        ),
        (
            400,
            {
                "message": "Requested Refund Amount is greater than the maximum refund amount permissible."
            },
            "refund over the refundable amount",
            "refund at most",
        ),
        (422, {"message": "duplicate"}, "merchant_order_id was already used", "unique"),
        (400, "<html>Bad Request</html>", "<html>Bad Request</html>", "config show"),
    ],
)
def test_error_bodies_become_actionable(status: int, body: Any, message: str, hint: str) -> None:
    paymob, _ = mock_client(
        lambda r: (
            httpx.Response(status, json=body)
            if not isinstance(body, str)
            else httpx.Response(status, text=body)
        )
    )
    with pytest.raises(ApiError) as info:
        paymob.create_order(amount_cents=100, currency="EGP")
    assert info.value.exit_code == ExitCode.API
    assert message in info.value.message and hint in (info.value.hint or "")


def test_bad_api_key() -> None:
    paymob, _ = mock_client(
        lambda r: httpx.Response(403, json={"detail": "incorrect credentials"}), fail_auth=True
    )
    with pytest.raises(ApiError, match="API key was rejected") as info:
        paymob.auth_token()
    assert "PAYMOB_API_KEY" in (info.value.hint or "")


def test_only_idempotent_calls_are_retried() -> None:
    paymob, seen = mock_client(lambda r: httpx.Response(502, json={"detail": "bad gateway"}))
    with pytest.raises(ApiError, match="HTTP 502"):
        paymob.create_order(amount_cents=1, currency="EGP")
    assert [r.url.path for r in seen].count("/api/ecommerce/orders") == 1
    with pytest.raises(ApiError):
        paymob.transaction(5)
    assert [r.url.path for r in seen].count("/api/acceptance/transactions/5") == 3
    flaky = iter([httpx.Response(503), httpx.Response(200, json={"id": 5})])
    paymob, _ = mock_client(lambda r: next(flaky))
    assert paymob.transaction(5) == {"id": 5}


def test_network_errors() -> None:
    port = free_port()
    with httpx.Client() as http:
        paymob = client(f"http://127.0.0.1:{port}", http)
        with pytest.raises(NetworkError, match="nothing answers") as info:
            paymob.auth_token()
        assert "paymobctl sandbox" in (info.value.hint or "")

    def timeout(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    paymob, _ = mock_client(timeout)
    with pytest.raises(NetworkError, match="did not answer"):
        paymob.create_order(amount_cents=1, currency="EGP")


def test_api_error_describes_unknown_shapes() -> None:
    assert (
        "nested.deeper: x y"
        in api_error(400, {"nested": {"deeper": ["x", "y"]}}, action="a").message
    )
    assert "HTTP 418: no details" in api_error(418, None, action="a").message


# --- commands ------------------------------------------------------------------------------------


def test_deposit_records_a_pending_deposit(stack: Stack) -> None:
    result = run_cli("deposit", "150.50", "--merchant-order-id", "SHOP-7", "--json")
    assert result.code == 0, result.output
    data = result.json()
    assert (
        data["status"] == "pending" and data["amount_cents"] == 15050 and data["currency"] == "EGP"
    )
    assert data["merchant_order_id"] == "SHOP-7" and data["save_card"] is True
    assert data["checkout_url"].startswith(
        f"{stack.sandbox}/api/acceptance/iframes/810001?payment_token="
    )
    assert data["expires_at"]
    assert stack.store().deposit(data["id"]) is not None
    text = run_cli("deposit", "2500", "--cents", "--no-save-card")
    assert text.code == 0 and "25.00 EGP" in text.stdout and "checkout URL" in text.stdout
    assert run_cli("deposits", "list", "--json").json()[0]["save_card"] is False
    intention = run_cli("deposit", "99", "--flow", "intention", "--json").json()
    assert (
        intention["flow"] == "intention"
        and "/unifiedcheckout/?publicKey=" in intention["checkout_url"]
    )


def run_in_thread(args: list[str]) -> tuple[threading.Thread, dict[str, Any]]:
    box: dict[str, Any] = {}

    def target() -> None:
        box["result"] = run_cli(*args)

    thread = threading.Thread(target=target)
    thread.start()
    return thread, box


def pay_pending_deposit(stack: Stack, number: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    store = stack.store()
    while time.monotonic() < deadline:
        pending = store.deposits(status="pending", limit=1)
        if pending:
            pay_checkout(pending[0].checkout_url, number)
            return
        time.sleep(0.02)
    raise AssertionError("no pending deposit appeared")


def test_deposit_wait_paid(stack: Stack) -> None:
    thread, box = run_in_thread(
        ["deposit", "100", "--wait", "--interval", "0.5", "--timeout", "20"]
    )
    pay_pending_deposit(stack, "0000000000000000")
    thread.join(timeout=30)
    result = box["result"]
    assert result.code == 0, result.output
    assert (
        "✓ Paid: 100.00 EGP" in result.stdout
        and "Total paid with profile sandbox: 1 deposit(s), 100.00 EGP" in result.stdout
    )
    deposit = stack.store().deposits()[0]
    assert deposit.status == "paid" and deposit.transaction_id


@pytest.mark.parametrize(
    "stack", [CallbackOrder.TRANSACTION_FIRST, CallbackOrder.RANDOM], indirect=True
)
def test_deposit_wait_and_listen_in_either_callback_order(stack: Stack) -> None:
    """Paymob promises no order between TRANSACTION and TOKEN (reference §14): `deposit --wait`
    and the receiver work with the TOKEN first (the default, above) or second."""
    thread, box = run_in_thread(
        ["deposit", "100", "--wait", "--interval", "0.5", "--timeout", "20"]
    )
    pay_pending_deposit(stack, "0000000000000000")
    thread.join(timeout=30)
    assert box["result"].code == 0, box["result"].output
    drain(stack)
    store = stack.store()
    assert store.deposits()[0].status == "paid"
    events = store.events(limit=None)
    assert {e.kind for e in events} >= {"TRANSACTION", "TOKEN"}
    assert {e.verdict for e in events} == {"valid"}
    assert len(store.payment_methods()) == 1  # the saved card, whichever came first


def test_demo_with_the_transaction_callback_first(tmp_path: Path) -> None:
    report = run_demo(tmp_path / "d.db", callback_order=CallbackOrder.TRANSACTION_FIRST)
    assert [d.status for d in report.deposits] == ["paid", "paid"]
    assert len(report.cards) == 1


def test_deposit_wait_declined_and_timeout(stack: Stack) -> None:
    thread, box = run_in_thread(
        ["deposit", "100", "--wait", "--interval", "0.5", "--timeout", "20", "--json"]
    )
    pay_pending_deposit(stack, "0000000000001111")
    thread.join(timeout=30)
    result = box["result"]
    assert result.code == int(ExitCode.FAILED), result.output
    assert result.json()["outcome"] == "declined" and "Do not honour" in result.json()["reason"]
    timed = run_cli("deposit", "100", "--wait", "--interval", "0.5", "--timeout", "1")
    assert timed.code == int(ExitCode.TIMEOUT) and "Still unpaid" in timed.stdout


def test_saved_card_payment_status_refund_void(stack: Stack) -> None:
    first = run_cli("deposit", "100", "--json").json()
    pay_checkout(first["checkout_url"], "0000000000000000", save=True)
    drain(stack)
    cards = run_cli("cards", "list", "--json").json()
    assert len(cards) == 1 and cards[0]["masked_pan"] == "xxxx-xxxx-xxxx-0000"
    paid = run_cli("pay", "40", "--card", str(cards[0]["id"]), "--json")
    assert paid.code == 0, paid.output
    data = paid.json()
    assert data["outcome"] == "paid" and data["deposit"]["flow"] == "saved-card"
    transaction = data["transaction_id"]
    status = run_cli("status", str(transaction), "--json")
    assert status.code == 0 and status.json()["id"] == transaction
    by_order = run_cli("status", str(first["order_id"]))
    assert by_order.code == 0 and "paid" in by_order.stdout
    refund = run_cli("refund", str(transaction), "--amount", "15")
    assert refund.code == 0 and "Refunded 15.00 EGP" in refund.stdout
    over = run_cli("refund", str(transaction), "--amount", "30")
    assert over.code == 3 and "refund over the refundable amount" in over.stderr
    rest = run_cli("refund", str(transaction), "--json")
    assert rest.code == 0 and rest.json()["amount_cents"] == 2500
    voided_deposit = run_cli("deposit", "10", "--json").json()
    pay_checkout(voided_deposit["checkout_url"], save=False)
    txn = run_cli("status", str(voided_deposit["order_id"]), "--by", "order", "--json").json()["id"]
    assert run_cli("void", str(txn)).code == 0
    again = run_cli("void", str(txn))
    assert again.code == 3 and "already voided" in again.stderr


def test_capture_on_an_auth_integration(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYMOB_INTEGRATION_ID", str(SANDBOX.auth_integration_id))
    auth = run_cli("deposit", "80", "--json").json()
    pay_checkout(auth["checkout_url"], save=False)
    txn = run_cli("status", str(auth["order_id"]), "--json").json()
    assert txn["is_auth"] is True
    over = run_cli("capture", str(txn["id"]), "--amount", "90")
    assert over.code == 3 and "Capture amount cannot exceed auth amount" in over.stderr
    assert run_cli("capture", str(txn["id"]), "--amount", "30").code == 0
    rest = run_cli("capture", str(txn["id"]), "--json")
    assert rest.code == 0 and rest.json()["amount_cents"] == 5000


def test_saved_card_without_token_is_refused(stack: Stack) -> None:
    card = stack.store().save_payment_method(
        token="", masked_pan="xxxx-xxxx-xxxx-1234", card_subtype="Visa", email=None, order_id=None
    )
    result = run_cli("pay", "10", "--card", str(card.id))
    assert result.code == 2 and "has no token" in result.stderr and "save card" in result.stderr
    assert run_cli("pay", "10", "--card", "999").code == 2
    assert run_cli("cards", "remove", str(card.id)).code == 0
    assert run_cli("cards", "remove", str(card.id)).code == 2


def test_configuration_mistakes_map_to_the_troubleshooting_table(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    cases = [
        ("PAYMOB_API_KEY", "wrong-key-123456", "API key was rejected"),
        ("PAYMOB_IFRAME_ID", "999", "iframe 999 does not exist"),
        ("PAYMOB_INTEGRATION_ID", "999", "does not exist in this mode"),
        ("PAYMOB_CURRENCY", "SAR", "currency does not match"),
    ]
    for name, value, needle in cases:
        monkeypatch.setenv(name, value)
        result = run_cli("deposit", "10")
        monkeypatch.delenv(name)
        assert result.code == 3, (name, result.output)
        assert needle in result.stderr and len(result.stderr.strip().splitlines()) == 1
    monkeypatch.setenv("PAYMOB_BASE_URL", f"http://127.0.0.1:{free_port()}")
    down = run_cli("deposit", "10")
    assert down.code == 3 and "paymobctl sandbox" in down.stderr


def test_amount_and_option_errors(stack: Stack) -> None:
    for args, needle in [
        (("deposit", "abc"), "invalid amount"),
        (("deposit", "1.234"), "more than 2 decimals"),
        (("deposit", "10.5", "--cents"), "whole number"),
        (("deposit", "10", "--flow", "magic"), "unknown --flow"),
        (("deposit", "10", "--currency", "euro"), "invalid currency"),
        (("status", "x", "--by", "what"), "unknown --by"),
        (("deposits", "show", "42"), "no deposit 42"),
    ]:
        result = run_cli(*args)
        assert result.code == 2 and needle in result.stderr, (args, result.output)


def test_live_mode_needs_billing_data(tmp_path: Path, config_file: Path, stack: Stack) -> None:
    config_file.parent.mkdir(parents=True, exist_ok=True)
    config_file.write_text(
        f'[profiles.live]\nmode = "live"\napi_key = "k"\nintegration_id = 1\niframe_id = 2\n'
        f'base_url = "{stack.sandbox}"\n'
    )
    result = run_cli("--profile", "live", "deposit", "10")
    assert result.code == 2 and "--email" in result.stderr and "LIVE mode" in result.stderr


def test_demo_end_to_end(tmp_path: Path) -> None:
    threads_before = threading.active_count()
    db = tmp_path / "demo.db"
    result = run_cli("--db", str(db), "demo")
    assert result.code == 0, result.output
    out = result.stdout
    for needle in (
        "deposit created",
        "card submitted",
        "OTP answered",
        "webhooks verified",
        "paid again with the saved card",
        "demo finished",
    ):
        assert needle in out
    assert "(learnt from the webhook)" in out
    store = Store(db)
    assert [d.status for d in store.deposits()] == ["paid", "paid"]
    events = store.events(limit=None)
    assert {e.kind for e in events} == {"TRANSACTION", "TOKEN", "RESPONSE"} and {
        e.verdict for e in events
    } == {"valid"}
    assert len(store.payment_methods()) == 1
    time.sleep(0.2)
    assert (
        threading.active_count() <= threads_before + 1
    )  # nothing left running (the log thread may linger)
    json_run = run_cli("--db", str(tmp_path / "demo2.db"), "demo", "--json")
    lines = [json.loads(line) for line in json_run.stdout.splitlines()]
    assert lines[-1]["summary"]["events"] and json_run.code == 0


def test_unexpected_answers_are_api_errors_not_crashes(monkeypatch: pytest.MonkeyPatch) -> None:
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse as Json
    from starlette.routing import Route

    async def weird(request: Any) -> Any:
        path = request.url.path
        if path == "/api/auth/tokens":
            return Json({"token": "t"})
        if path == "/api/ecommerce/orders/transaction_inquiry":
            return Json(["not", "an", "object"])
        if path.startswith("/api/acceptance/transactions/"):
            return Json({"id": 5, "amount_cents": "abc", "currency": "EGP"})
        return Json({"unexpected": True}, status_code=201)

    with serve(Starlette(routes=[Route("/{p:path}", weird, methods=["GET", "POST"])])) as base:
        monkeypatch.setenv("PAYMOB_BASE_URL", base)
        for args in (
            ("deposit", "10"),
            ("deposit", "10", "--flow", "intention"),
            ("status", "5", "--by", "order"),
            ("refund", "5"),
            ("capture", "5"),
        ):
            result = run_cli(*args)
            assert result.code == 3, (args, result.output)
            assert "unexpected answer" in result.stderr and "internal error" not in result.stderr


def test_amount_bounds_and_list_filters() -> None:
    for args in (
        ("deposit", "99999999999999999999999"),
        ("deposit", "1e3"),
        ("deposit", "100000000000000", "--cents"),
        ("deposits", "list", "--status", "bogus"),
        ("simulate", "transaction", "--amount-cents", str(10**13), "--print"),
    ):
        result = run_cli(*args)
        assert result.code == 2 and "internal error" not in result.stderr, (args, result.output)


def test_refund_with_nothing_left(stack: Stack) -> None:
    first = run_cli("deposit", "20", "--json").json()
    pay_checkout(first["checkout_url"], save=False)
    txn = run_cli("status", str(first["order_id"]), "--json").json()["id"]
    assert run_cli("refund", str(txn)).code == 0
    again = run_cli("refund", str(txn))
    assert again.code == 2 and "nothing left to refund" in again.stderr


def test_demo_keeps_its_own_store(tmp_path: Path) -> None:
    result = run_cli("demo")
    assert result.code == 0, result.output
    assert "demo.db" in result.stdout
    main = Path(os.environ["XDG_DATA_HOME"]) / "paymobctl" / "paymobctl.db"
    assert not main.exists() or Store(main).deposits() == []
    again = run_cli("demo")
    assert again.code == 0 and again.stdout.count("deposit ") >= 2
