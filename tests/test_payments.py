"""The client, deposits, saved-card payments, status, refunds and the demo, against the sandbox."""

from __future__ import annotations

import json
import os
import re
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
from .inprocess import in_process
from .servers import free_port

BILLING = Billing("Mona", "Adel", "mona@example.com", "+201234567890")


@dataclass
class Stack:
    sandbox: str
    listener: str
    db: Path

    def store(self) -> Store:
        return Store(self.db)


def run_stack(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    wrap: Any = lambda app: app,
    order: CallbackOrder = CallbackOrder.TOKEN_FIRST,
) -> Iterator[Stack]:
    """A sandbox (its ASGI app passed through ``wrap``, its callbacks in ``order``) whose
    callbacks go to a live receiver writing the same store the CLI uses."""
    db = tmp_path / "paymobctl.db"
    receiver_store = Store(db)
    with in_process(create_receiver(store=receiver_store, secret=SANDBOX.hmac_secret)) as listener:
        app = create_sandbox(
            callback_url=f"{listener}{WEBHOOK_PATH}",
            response_url=f"{listener}{RESPONSE_PATH}",
            callback_order=order,
        )
        with in_process(wrap(app)) as sandbox:
            monkeypatch.setenv("PAYMOB_BASE_URL", sandbox)
            monkeypatch.setenv("PAYMOBCTL_DB", str(db))
            yield Stack(sandbox, listener, db)
    receiver_store.close()


@pytest.fixture
def stack(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> Iterator[Stack]:
    """Parametrize it indirectly with a CallbackOrder to change the sandbox's --callback-order."""
    order = getattr(request, "param", CallbackOrder.TOKEN_FIRST)
    yield from run_stack(tmp_path, monkeypatch, order=order)


@pytest.fixture(autouse=True)
def quick_store_polling(monkeypatch: pytest.MonkeyPatch) -> None:
    """`deposit --wait` looks at the store every second (Paymob's inquiry every --interval):
    here every 50 ms, so a test waits for the webhook, not for the next second."""
    from paymobctl import payments

    def quick(seconds: float) -> None:
        time.sleep(min(seconds, 0.05))

    original = payments.wait_for_payment
    monkeypatch.setattr(
        payments, "wait_for_payment", lambda *a, **kw: original(*a, **{"sleep": quick, **kw})
    )


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
                "expiry_year": "39",
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
        paymob = client(f"http://127.0.0.1:{port}", http, sleep=lambda s: None)  # no backoff
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
        if pending and pending[0].checkout_url:  # recorded with its order, URL a moment later
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
    """Paymob promises no order between TRANSACTION and TOKEN (docs/paymob.md §14): `deposit --wait`
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
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert "/api/acceptance/iframes/" in lines[0]["deposit"]["checkout_url"]  # first, at once
    assert all("status" in line for line in lines[1:-1]) and len(lines) >= 3
    assert lines[-1]["outcome"] == "declined" and "Do not honour" in lines[-1]["reason"]
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
    partly = run_cli("status", str(transaction)).stdout
    assert "partly refunded" in partly and "15.00 EGP" in partly and "1500" not in partly
    over = run_cli("refund", str(transaction), "--amount", "30")
    assert over.code == 3 and "refund over the refundable amount" in over.stderr
    rest = run_cli("refund", str(transaction), "--json")
    assert rest.code == 0 and rest.json()["amount_cents"] == 2500
    voided_deposit = run_cli("deposit", "10", "--json").json()
    pay_checkout(voided_deposit["checkout_url"], save=False)
    txn = run_cli("status", str(voided_deposit["order_id"]), "--by", "order", "--json").json()["id"]
    assert run_cli("void", str(txn)).code == 0
    voided = run_cli("status", str(txn)).stdout
    assert "voided" in voided and "result: paid" not in voided.replace("  ", " ")
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
        if name != "PAYMOB_API_KEY":  # no order without authentication
            assert "is recorded as failed deposit" in result.stderr
    # Orders the server created before a later step failed are kept, as failed deposits.
    failed = run_cli("deposits", "list", "--status", "failed", "--json").json()
    assert len(failed) == 3  # wrong iframe, integration, currency: each had an order already
    assert all(d["order_id"] and d["checkout_url"] == "" for d in failed)
    assert {d["decline_reason"].split(":")[0] for d in failed} >= {"iframe 999 does not exist"}
    shown = run_cli("deposits", "list")
    assert "failed" in shown.stdout
    monkeypatch.setenv("PAYMOB_BASE_URL", f"http://127.0.0.1:{free_port()}")
    down = run_cli("deposit", "10")
    assert down.code == 3 and "paymobctl sandbox" in down.stderr


def test_amount_and_option_errors(stack: Stack) -> None:
    for args, needle in [
        (("deposit", "abc"), "invalid amount"),
        (("deposit", "1.234"), "or give minor units with --cents"),
        (("deposit", "1,000"), "ambiguous amount '1,000'"),
        (("simulate", "transaction", "--amount", "1.234", "--print"), "with --amount-cents"),
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

    with in_process(Starlette(routes=[Route("/{p:path}", weird, methods=["GET", "POST"])])) as base:
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


# --- issue 12: servers that answer an intention without its order id ------------------------------


def without_intention_order(app: Any) -> Any:
    """Wrap the sandbox like a third-party Paymob emulator: intention answers without
    ``intention_order_id`` nor ``payment_keys[].order_id``."""

    async def wrapped(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] != "/v1/intention/":
            await app(scope, receive, send)
            return
        start: dict[str, Any] = {}

        async def rewrite(message: Any) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
                return
            body = json.loads(message["body"]) if message.get("body") else {}
            if isinstance(body, dict):
                body.pop("intention_order_id", None)
                body.pop("payment_keys", None)
            data = json.dumps(body).encode()
            headers = [(k, v) for k, v in start["headers"] if k.lower() != b"content-length"]
            await send(
                {**start, "headers": [*headers, (b"content-length", str(len(data)).encode())]}
            )
            await send({"type": "http.response.body", "body": data})

        await app(scope, receive, rewrite)

    return wrapped


@pytest.fixture
def orderless(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    yield from run_stack(tmp_path, monkeypatch, without_intention_order)


def test_intention_without_order_id_is_recorded_and_linked_by_the_webhook(
    orderless: Stack,
) -> None:
    result = run_cli("deposit", "75", "--flow", "intention", "--json")
    assert result.code == 0, result.output
    data = result.json()
    assert data["order_id"] is None and data["intention_id"].startswith("pi_test_")
    assert data["merchant_order_id"].startswith("paymobctl-")  # a reference is always sent
    assert "/unifiedcheckout/?publicKey=" in data["checkout_url"]
    shown = run_cli("deposits", "show", str(data["id"]))
    assert "learnt from the webhook" in shown.stdout
    pay_checkout(data["checkout_url"])
    drain(orderless)
    deposit = orderless.store().deposit(data["id"])
    assert deposit is not None and deposit.status == "paid" and deposit.order_id


def test_intention_without_order_id_is_linked_by_the_inquiry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No listener: only `--wait`'s inquiry (by the intention's reference) can learn the order.
    with in_process(without_intention_order(create_sandbox())) as sandbox:
        monkeypatch.setenv("PAYMOB_BASE_URL", sandbox)
        monkeypatch.setenv("PAYMOBCTL_DB", str(tmp_path / "p.db"))
        # Created before the command starts: two first openings of a new database at once race
        # on its schema (the second fails with "table ... already exists").
        store = Store(tmp_path / "p.db")
        thread, box = run_in_thread(
            ["deposit", "80", "--flow", "intention", "--wait", "--interval", "0.5",
             "--timeout", "20"]
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while not store.deposits(status="pending"):
            assert time.monotonic() < deadline, box
            time.sleep(0.02)
        pending = store.deposits(status="pending")[0]
        assert pending.order_id is None
        pay_checkout(pending.checkout_url)
        thread.join(timeout=30)
        assert box["result"].code == 0, box["result"].output
        paid = store.deposit(pending.id)
        assert paid is not None and paid.status == "paid" and paid.order_id is not None
        store.close()


def test_inquiry_links_only_a_matching_transaction(tmp_path: Path) -> None:
    from paymobctl.payments import inquire

    answers = {"amount_cents": 999, "currency": "EGP", "order": {"id": 42}, "id": 7}

    def handler(request: httpx.Request) -> httpx.Response:
        assert json.loads(request.content)["merchant_order_id"] == "REF-1"
        return httpx.Response(200, json=answers)

    paymob, _ = mock_client(handler)
    with Store(tmp_path / "s.db") as store:
        deposit = store.create_deposit(
            profile="p", mode="test", flow="intention", base_url="https://x", order_id=None,
            merchant_order_id="REF-1", intention_id="pi_1", amount_cents=1000, currency="EGP",
            checkout_url="https://x/u", expires_at=None, save_card=False,
        )  # fmt: skip
        assert inquire(paymob, store, deposit) is None  # 9.99 is not this deposit's 10.00
        assert store.deposit(deposit.id).order_id is None  # type: ignore[union-attr]
        answers["amount_cents"] = 1000
        assert inquire(paymob, store, deposit) == answers
        assert store.deposit(deposit.id).order_id == 42  # type: ignore[union-attr]


def test_intention_answer_without_client_secret_is_still_recorded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse as Json
    from starlette.routing import Route

    async def half(request: Any) -> Any:
        return Json({"id": "pi_test_half", "status": "intended"}, status_code=201)

    with in_process(Starlette(routes=[Route("/v1/intention/", half, methods=["POST"])])) as base:
        monkeypatch.setenv("PAYMOB_BASE_URL", base)
        result = run_cli("deposit", "10", "--flow", "intention", "--merchant-order-id", "R-9")
        assert result.code == 3 and "recorded as deposit 1 (reference R-9)" in result.stderr
        listed = run_cli("deposits", "list", "--json").json()
        assert (
            listed[0]["intention_id"] == "pi_test_half" and listed[0]["merchant_order_id"] == "R-9"
        )


def test_refund_void_capture_use_the_secret_key_then_the_auth_token() -> None:
    def accept(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"id": 9, "success": True})

    paymob, seen = mock_client(accept)
    paymob.refund(transaction_id=5, amount_cents=100)
    sent = seen[-1]
    assert sent.headers["authorization"] == f"Token {SANDBOX.secret_key}"
    assert "auth_token" not in json.loads(sent.content)
    assert "/api/auth/tokens" not in [r.url.path for r in seen]  # no auth token needed

    def only_legacy(request: httpx.Request) -> httpx.Response:
        if request.headers.get("authorization", "").startswith("Token "):
            return httpx.Response(401, json={"detail": "Invalid token."})
        assert json.loads(request.content)["auth_token"] == "tok"
        return httpx.Response(200, json={"id": 9, "success": True})

    paymob, seen = mock_client(only_legacy)
    assert paymob.void(transaction_id=5)["id"] == 9
    assert [r.url.path for r in seen][-1] == "/api/acceptance/void_refund/void"

    def refuse_all(request: httpx.Request) -> httpx.Response:
        if request.headers.get("authorization", "").startswith("Token "):
            return httpx.Response(401, json={"detail": "Invalid token."})
        return httpx.Response(401, json={"detail": "incorrect credentials"})

    paymob, _ = mock_client(refuse_all)
    with pytest.raises(ApiError) as info:
        paymob.capture(transaction_id=5, amount_cents=100)
    message, hint = info.value.message, info.value.hint or ""
    assert "with the auth token" in message and "secret key was refused first" in message
    assert "PAYMOB_API_KEY" not in hint and "Failed to initiate deposit" not in hint
    assert "API key itself authenticated" in hint


def test_refund_without_a_secret_key_uses_the_auth_token(stack: Stack) -> None:
    with httpx.Client() as http:
        paymob = PaymobClient(
            http, base_url=stack.sandbox, api_key=Secret(SANDBOX.api_key), sleep=lambda s: None
        )
        with pytest.raises(ApiError) as info:
            paymob.refund(transaction_id=424242, amount_cents=100)
    assert "with the auth token" in info.value.message  # the sandbox accepted the token form


def test_hints_only_point_at_a_message_that_exists() -> None:
    bare = api_error(400, None, action="refunding transaction 5")
    assert "server gave no details" in (bare.hint or "") and "see the message above" not in (
        bare.hint or ""
    )
    detailed = api_error(400, {"detail": "weird"}, action="x")
    assert "no details" not in (detailed.hint or "") and "weird" in detailed.message


def test_status_of_an_unknown_id_shows_the_first_error(stack: Stack) -> None:
    result = run_cli("status", "999999")
    assert result.code == 3
    assert "999999 is neither a transaction nor an order" in result.stderr
    assert "retrieving transaction 999999 failed: HTTP 404" in result.stderr
    assert "deposits list" in result.stderr


def test_status_without_transaction_inquiry_falls_back_to_the_store(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse as Json
    from starlette.routing import Route

    first = run_cli("deposit", "33", "--json").json()
    pay_checkout(first["checkout_url"], save=False)
    drain(stack)

    async def token(request: Any) -> Any:
        return Json({"token": "t"}, status_code=201)

    # A Paymob-compatible server without the inquiry route: starlette's plain-text 404.
    with in_process(Starlette(routes=[Route("/api/auth/tokens", token, methods=["POST"])])) as base:
        monkeypatch.setenv("PAYMOB_BASE_URL", base)
        result = run_cli("status", str(first["order_id"]), "--by", "order")
        assert result.code == 0, result.output
        assert "has no transaction inquiry (HTTP 404)" in result.stderr
        assert "last verified webhook" in result.stderr and "33.00 EGP" in result.stdout
        missing = run_cli("status", "12345", "--by", "order")
        assert missing.code == 3 and "no webhook for order 12345" in missing.stderr


def test_json_errors_are_one_object_on_stdout(stack: Stack) -> None:
    for args in (("deposit", "1,000", "--json"), ("--json", "deposits", "show", "77")):
        result = run_cli(*args)
        assert result.code == 2 and result.stderr.startswith("error: ")
        error = json.loads(result.stdout)["error"]
        assert error["exit_code"] == 2 and error["message"] and error["hint"]
    api = run_cli("status", "999999", "--json")
    assert api.code == 3 and json.loads(api.stdout)["error"]["exit_code"] == 3


def test_open_without_a_browser_prints_the_url(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    import webbrowser

    opened: list[str] = []
    monkeypatch.setattr(webbrowser, "open", lambda url: opened.append(url) or False)
    result = run_cli("deposit", "12", "--open", "--json")
    assert result.code == 0 and opened == [result.json()["checkout_url"]]
    assert f"open this URL by hand: {opened[0]}" in result.stderr
    monkeypatch.setattr(webbrowser, "open", lambda url: True)
    quiet = run_cli("deposit", "12", "--open")
    assert quiet.code == 0 and "by hand" not in quiet.stderr


def test_live_keys_in_a_test_profile(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYMOB_SECRET_KEY", "egy_sk_live_0123456789abcdef")
    shown = run_cli("config", "show")
    assert "warning: secret_key from PAYMOB_SECRET_KEY is a live key" in shown.stderr
    refused = run_cli("deposit", "10")
    assert refused.code == 2 and "test and live keys mixed" in refused.stderr
    assert "--allow-mixed-mode" in refused.stderr
    assert run_cli("refund", "5", "--amount", "1").code == 2
    allowed = run_cli("deposit", "10", "--allow-mixed-mode")
    assert allowed.code == 0 and "is a live key but profile 'sandbox' is test" in allowed.stderr


def test_timeouts_state_the_total_time_spent() -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    paymob, _ = mock_client(slow)
    with pytest.raises(NetworkError) as info:
        paymob.transaction(5)
    assert re.search(r"\(3 attempts, \d+\.\d s in all\)", info.value.message)


def test_simulated_tokens_are_marked_and_refused(stack: Stack) -> None:
    sent = run_cli("simulate", "token", "--to", f"{stack.listener}{WEBHOOK_PATH}")
    assert sent.code == 0, sent.output
    cards = run_cli("cards", "list", "--json").json()
    assert len(cards) == 1 and cards[0]["simulated"] is True
    assert "simulated" in run_cli("cards", "list").stdout
    refused = run_cli("pay", "10", "--card", str(cards[0]["id"]))
    assert refused.code == 2 and "its token is made up" in refused.stderr


@pytest.mark.parametrize(
    ("failure", "status", "said"),
    [("timeout", "pending", "stays pending"), ("refused", "failed", "recorded as failed deposit")],
)
def test_saved_card_orders_are_recorded_even_when_paying_fails(
    tmp_path: Path, failure: str, status: str, said: str
) -> None:
    from paymobctl import config
    from paymobctl.errors import PaymobctlError
    from paymobctl.payments import pay_with_saved_card

    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/api/ecommerce/orders":
            return httpx.Response(201, json={"id": 77})
        if path == "/api/acceptance/payment_keys":
            return httpx.Response(201, json={"token": "key"})
        if failure == "timeout":
            raise httpx.ReadTimeout("slow", request=request)
        return httpx.Response(400, json={"detail": "Card token is not valid"})

    paymob, _ = mock_client(handler)
    with Store(tmp_path / "s.db") as store:
        card = store.save_payment_method(
            token="tok", masked_pan="xxxx-xxxx-xxxx-0000", card_subtype="MasterCard",
            email=None, order_id=None,
        )  # fmt: skip
        with pytest.raises(PaymobctlError) as info:
            pay_with_saved_card(
                paymob, config.resolve(), store, card=card, amount_cents=500, currency="EGP",
                billing=BILLING,
            )  # fmt: skip
        assert said in info.value.message
        kept = store.deposits()
        assert len(kept) == 1 and kept[0].order_id == 77 and kept[0].status == status


def test_a_wait_ends_with_the_error_family() -> None:
    """Paid ends cleanly; declined is a failed check (exit 1); still unpaid is WaitTimedOut
    (exit 4) whose hint says what to do next; the CLI shows them and exits with their code."""
    from paymobctl.errors import VerificationFailed, WaitTimedOut
    from paymobctl.models import PaymentStatus
    from paymobctl.payments import PaymentOutcome, outcome_error

    assert outcome_error(PaymentOutcome(PaymentStatus.PAID, 7, None, "webhook"), 42) is None
    declined = outcome_error(PaymentOutcome(PaymentStatus.DECLINED, 7, "Do not honour"), 42)
    assert isinstance(declined, VerificationFailed) and declined.exit_code == ExitCode.FAILED
    assert declined.message == "Declined: Do not honour"
    waited = outcome_error(PaymentOutcome(PaymentStatus.NONE, None, "no payment after 5 s"), 42)
    assert isinstance(waited, WaitTimedOut) and waited.exit_code == ExitCode.TIMEOUT
    assert waited.message == "Still unpaid: no payment after 5 s"
    assert waited.hint is not None and "paymobctl status 42" in waited.hint


def test_a_deposit_flow_is_checked_by_the_request() -> None:
    from paymobctl.errors import UsageError
    from paymobctl.payments import DepositRequest

    billing = Billing("A", "B", "a@example.com", "+201000000000")
    assert DepositRequest(100, "EGP", billing, flow="intention").flow == "intention"
    with pytest.raises(UsageError, match="unknown --flow 'magic'"):
        DepositRequest(100, "EGP", billing, flow="magic")
