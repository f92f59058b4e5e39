"""paymobctl.testing: signed callbacks (in process) and the Sandbox (a real server, marked slow)."""

from __future__ import annotations

import io
import itertools
import json
import re
import unittest
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from paymobctl import signing
from paymobctl.errors import NetworkError, UsageError, WaitTimedOut
from paymobctl.models import CallbackKind
from paymobctl.sandbox_profile import SANDBOX
from paymobctl.serving import Background
from paymobctl.testing import Callbacks, Card, Sandbox, callback, response, token

from . import django_site

BILLING = {
    "first_name": "Mona",
    "last_name": "Adel",
    "email": "mona@example.com",
    "phone_number": "+201234567890",
    **dict.fromkeys(
        (
            "apartment",
            "floor",
            "street",
            "building",
            "shipping_method",
            "city",
            "state",
            "postal_code",
        ),
        "NA",
    ),
    "country": "EG",
}


def _verifies(cb: object, secret: str = SANDBOX.hmac_secret) -> bool:
    assert hasattr(cb, "obj") and hasattr(cb, "hmac")
    kind = CallbackKind.TOKEN if cb.json["type"] == "TOKEN" else CallbackKind.TRANSACTION  # type: ignore[attr-defined]
    return signing.verify(kind, cb.obj, secret, cb.hmac).valid


# --- callbacks -----------------------------------------------------------------------------------


def test_callback_is_simulates_signed_transaction() -> None:
    cb = callback(outcome="declined", order_id=42, amount_cents=5000)
    assert cb.json["type"] == "TRANSACTION"
    assert cb.obj["order"]["id"] == 42 and cb.obj["amount_cents"] == 5000
    assert cb.obj["success"] is False
    assert _verifies(cb)
    assert cb.query == f"hmac={cb.hmac}"
    assert cb.url("http://shop.test/hook/?hmac=stale") == f"http://shop.test/hook/?hmac={cb.hmac}"
    assert cb.content is not None and b'"order"' in cb.content


def test_set_overrides_are_signed_and_tampering_after_is_not() -> None:
    cb = callback(order_id=7, set={"obj.source_data.pan": "0008"})
    assert cb.obj["source_data"]["pan"] == "0008"
    assert _verifies(cb)
    cb.json["obj"]["amount_cents"] = 1  # a tampered callback: the old signature no longer fits
    assert not _verifies(cb)
    assert b'"amount_cents":1,' in (cb.content or b"")


def test_token_and_response_callbacks() -> None:
    saved = token(order_id=9)
    assert saved.json["type"] == "TOKEN" and saved.obj["order_id"] == "9"
    assert _verifies(saved)
    redirect = response(order_id=9, outcome="declined")
    assert redirect.method == "GET" and redirect.content is None
    parsed = signing.parse_query(redirect.url("http://shop.test/api/payments/response/"))
    assert parsed.data["order"] == "9" and parsed.data["success"] == "false"
    assert signing.verify(
        CallbackKind.RESPONSE, parsed.data, SANDBOX.hmac_secret, parsed.hmac
    ).valid


def test_secrets_and_unsigned() -> None:
    assert _verifies(callback(secret="shop-secret"), "shop-secret")
    assert _verifies(Callbacks("shop-secret").token(order_id=3), "shop-secret")
    unsigned = callback(signed=False)
    assert unsigned.hmac is None and unsigned.query == ""


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"outcome": "paid"}, "outcome='paid' is not one of: approved, declined"),
        ({"source": "cash"}, "source='cash' is not one of: card, wallet, kiosk"),
        ({"set": {"obj.nowhere.x": 1}}, "'obj.nowhere' does not exist in the payload"),
    ],
)
def test_bad_options_are_usage_errors(options: dict[str, object], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        callback(**options)  # type: ignore[arg-type]


def _echo_app() -> Starlette:
    async def hook(request: Request) -> JSONResponse:
        return JSONResponse(
            {
                "method": request.method,
                "hmac": request.query_params.get("hmac"),
                "type": request.headers.get("content-type"),
                "body": (await request.body()).decode(),
            }
        )

    return Starlette(routes=[Route("/{path:path}", hook, methods=["GET", "POST"])])


def test_send_to_a_starlette_test_client() -> None:
    cb = callback(order_id=11)
    with TestClient(_echo_app()) as client:
        answer = cb.send(client)
        echoed = answer.json()
        assert answer.status_code == 200
        assert echoed["hmac"] == cb.hmac and echoed["type"] == "application/json"
        assert echoed["body"].encode() == cb.content
        redirect = response(order_id=11).send(client, "/back/")
        assert redirect.json()["method"] == "GET"


def test_send_to_a_django_test_client_verifies_there() -> None:
    from django.test import Client

    client = Client()
    good = callback(order_id=12, secret=django_site.SECRET)
    assert good.send(client, "/good/api/payments/webhook/").status_code == 200
    good.json["obj"]["amount_cents"] += 1
    assert good.send(client, "/good/api/payments/webhook/").status_code == 401
    back = response(order_id=12, secret=django_site.SECRET)
    assert back.send(client, "/good/api/payments/response/").status_code in (200, 302)


def test_send_refuses_what_it_cannot_drive() -> None:
    cb = callback()
    with pytest.raises(UsageError, match="cannot send a callback with a object"):
        cb.send(object())

    async def unused() -> None:
        async with httpx.AsyncClient() as client:
            cb.send(client)

    client = httpx.AsyncClient()
    try:
        with pytest.raises(UsageError, match="AsyncClient is asynchronous"):
            cb.send(client)
    finally:
        del unused


@pytest.mark.slow
def test_send_to_a_url() -> None:
    cb = callback(order_id=13)
    with Background(_echo_app()) as server:
        result = cb.send(f"{server.url}/api/payments/webhook/")
        assert result.status == 200 and cb.hmac is not None and cb.hmac in result.excerpt
    with pytest.raises(NetworkError, match="nothing is listening"):
        cb.send(server.url)


# --- the sandbox ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox() as running:
        yield running


def _checkout(sandbox: Sandbox, http: httpx.Client, amount: int = 15000) -> tuple[int, str]:
    base = sandbox.base_url
    auth = http.post(f"{base}/api/auth/tokens", json={"api_key": sandbox.api_key}).json()["token"]
    order = http.post(
        f"{base}/api/ecommerce/orders",
        json={
            "auth_token": auth,
            "amount_cents": amount,
            "currency": "EGP",
            "delivery_needed": False,
            "items": [],
        },
    ).json()
    key = http.post(
        f"{base}/api/acceptance/payment_keys",
        json={
            "auth_token": auth,
            "amount_cents": amount,
            "currency": "EGP",
            "order_id": order["id"],
            "integration_id": sandbox.integration_id,
            "expiration": 3600,
            "billing_data": BILLING,
        },
    ).json()
    return int(order["id"]), str(key["token"])


@pytest.mark.slow
def test_sandbox_pays_and_delivers_transaction_and_token(sandbox: Sandbox) -> None:
    sandbox.reset()
    received: list[dict[str, object]] = []

    async def hook(request: Request) -> JSONResponse:
        received.append({"hmac": request.query_params["hmac"], "body": await request.json()})
        return JSONResponse({"ok": True})

    app = Starlette(routes=[Route("/api/payments/webhook/", hook, methods=["POST"])])
    with Background(app) as shop, httpx.Client() as http:
        sandbox.set_callback_urls(f"{shop.url}/api/payments/webhook/")
        order_id, key = _checkout(sandbox, http)
        result = sandbox.pay(key, save_card=True)
        assert result.approved and result.three_ds
        assert [c.kind for c in result.callbacks] == ["TRANSACTION", "TOKEN"]
        sent = sandbox.wait_for_delivery("TOKEN", order_id=order_id)
        assert sent.state == "delivered" and sent.status == 200 and sent.obj["masked_pan"]
    assert [d.kind for d in sandbox.deliveries] == ["TRANSACTION", "TOKEN"]
    first = sandbox.deliveries[0]
    assert first.transaction_id == result.transaction_id and first.obj["success"] is True
    assert [t["id"] for t in sandbox.transactions] == [result.transaction_id]
    assert len(received) == 2
    for item in received:
        body = item["body"]
        assert isinstance(body, dict)
        kind = CallbackKind(body["type"])
        assert signing.verify(kind, body["obj"], sandbox.hmac_secret, str(item["hmac"])).valid


@pytest.mark.slow
def test_sandbox_declines_resets_and_times_out(sandbox: Sandbox) -> None:
    sandbox.reset()
    with httpx.Client() as http:
        _, key = _checkout(sandbox, http)
        declined = sandbox.pay(
            f"{sandbox.base_url}/api/acceptance/iframes/{sandbox.iframe_id}?payment_token={key}",
            card="0000000000001111",
        )
        assert declined.outcome == "declined" and declined.callbacks == ()
        assert len(sandbox.transactions) == 1
        sandbox.set_callback_urls("http://127.0.0.1:9/hook/")
        sandbox.reset()
        assert sandbox.transactions == [] and sandbox.deliveries == []
        urls = http.get(f"{sandbox.base_url}/_sandbox/callbacks").json()
        assert urls == {"callback_url": None, "response_url": None}
    with pytest.raises(WaitTimedOut, match=r"no TRANSACTION callback .* \(deliveries: none\)"):
        sandbox.wait_for_delivery(timeout=0.05)
    with pytest.raises(UsageError, match=r"refused /_sandbox/callbacks: callback_url: .*ftp://"):
        sandbox.set_callback_urls("ftp://shop.test/")


@pytest.mark.slow
def test_sandbox_with_own_secret_and_env() -> None:
    with Sandbox(hmac_secret="shop-test-secret") as own:
        env = own.env()
        assert env["PAYMOB_HMAC_SECRET"] == "shop-test-secret" == own.hmac_secret
        assert env["PAYMOB_BASE_URL"] == own.base_url.rstrip("/")
        assert env["PAYMOB_INTEGRATION_ID"] == str(own.integration_id)
        assert env["PAYMOB_IFRAME_ID"] == str(own.iframe_id)
        assert own.checkout_url("egy_csk_test_ab").endswith(
            f"/unifiedcheckout/?publicKey={own.public_key}&clientSecret=egy_csk_test_ab"
        )
    with pytest.raises(UsageError, match="the sandbox is not running"):
        _ = own.base_url
    assert Card(number="4111111111111111").month_year() == ("01", "39")


# --- the README's examples are real --------------------------------------------------------------

ROOT = Path(__file__).resolve().parent.parent


def _readme_python_blocks() -> list[str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Testing your integration", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)\n```", section, flags=re.S)


def test_readme_django_example_is_the_example_shops_test() -> None:
    django_block = _readme_python_blocks()[0]
    path = ROOT / "examples" / "django_shop" / "tests" / "test_readme_example.py"
    assert django_block + "\n" == path.read_text(encoding="utf-8")
    assert len(django_block.splitlines()) <= 15


@pytest.mark.slow
def test_readme_unittest_example_passes() -> None:
    block = _readme_python_blocks()[1]
    namespace: dict[str, object] = {"__name__": "readme_unittest_example"}
    exec(compile(block, "README.md", "exec"), namespace)  # noqa: S102 - our own README
    suite = unittest.defaultTestLoader.loadTestsFromTestCase(namespace["PaymobTests"])  # type: ignore[arg-type]
    outcome = unittest.TextTestRunner(stream=io.StringIO()).run(suite)
    assert outcome.wasSuccessful() and outcome.testsRun == 2, outcome.errors + outcome.failures


def test_emulator_reset_and_pristine() -> None:
    from paymobctl.emulator.state import Sandbox as State

    state = State(callback_url="http://127.0.0.1:8001/hook/")
    assert state.pristine()
    state.set_callback_urls("http://127.0.0.1:8002/other/", None)
    assert not state.pristine()
    state.reset()
    assert state.pristine()
    assert state.callback_urls() == {
        "callback_url": "http://127.0.0.1:8001/hook/",
        "response_url": None,
    }
    state.authenticate({"api_key": SANDBOX.api_key})
    assert not state.pristine() and state.auth_tokens
    state.reset()
    assert state.pristine() and not state.auth_tokens


@pytest.mark.parametrize("seed", [1, 12345])
def test_callback_fast_path_sends_what_simulate_prepares(seed: int) -> None:
    """``callback()`` builds and signs without the dict: the same bytes and HMAC as the general
    path (``simulation.prepare``), for every outcome/source/brand, or the same refusal."""
    from paymobctl import simulation
    from paymobctl.models import CardBrand, Outcome, PaymentSource
    from paymobctl.sandbox_profile import WEBHOOK_PATH

    for outcome, source, brand in itertools.product(Outcome, PaymentSource, CardBrand):
        options = {"outcome": outcome, "source": source, "brand": brand, "seed": seed}
        request = simulation.Request(
            what=simulation.What.TRANSACTION,
            currency=SANDBOX.currency,
            integration_id=SANDBOX.integration_id,
            merchant_id=SANDBOX.merchant_id,
            **options,
        )
        try:
            prepared = simulation.prepare(request, url=WEBHOOK_PATH, secret="s3cret")
        except UsageError as refused:
            with pytest.raises(UsageError, match=re.escape(str(refused))):
                callback(secret="s3cret", **options)
            continue
        built = callback(secret="s3cret", **options)
        assert (built.content, built.hmac) == (prepared.request.body, prepared.hmac)
        assert built.json == json.loads(prepared.request.body or b"")


def test_callbacks_with_a_new_order_id_or_amount_each_share_one_renderer() -> None:
    """A suite passing a distinct order id, amount or merchant order id per call compiles a
    handful of renderers, not one per call (round 2 compiled one each: 4 ms a callback), and
    every one still sends what ``simulate`` prepares."""
    from paymobctl import callbacks, simulation
    from paymobctl.sandbox_profile import WEBHOOK_PATH

    callback()  # the default shape's renderer, whatever ran before
    before = callbacks._shape_render.cache_info().misses
    for i in range(300):
        options: dict[str, object] = {"order_id": 5_000_000 + i, "amount_cents": 1000 + 37 * i}
        if i % 3 == 0:
            options["merchant_order_id"] = f"shop-{i}"
        if i % 50 == 0:
            options["seed"] = i
        built = callback(secret="s3cret", **options)  # type: ignore[arg-type]
        if i % 50 == 0:
            request = simulation.Request(
                what=simulation.What.TRANSACTION,
                currency=SANDBOX.currency,
                integration_id=SANDBOX.integration_id,
                merchant_id=SANDBOX.merchant_id,
                **options,  # type: ignore[arg-type]
            )
            prepared = simulation.prepare(request, url=WEBHOOK_PATH, secret="s3cret")
            assert (built.content, built.hmac) == (prepared.request.body, prepared.hmac)
        assert built.obj["order"]["id"] == 5_000_000 + i
        assert built.obj["amount_cents"] == 1000 + 37 * i
    assert callbacks._shape_render.cache_info().misses - before <= 3


def test_callback_spec_is_what_simulate_builds() -> None:
    """``callback()``'s spec (copied from a cached one with the per-call values changed) equals
    the one ``simulate`` builds for the same options, field for field."""
    from dataclasses import fields

    from paymobctl import callbacks, simulation, testing
    from paymobctl.models import CardBrand, Outcome, PaymentSource

    assert not hasattr(callbacks.TransactionSpec, "__post_init__")
    assert not hasattr(callbacks.TransactionSpec, "__slots__")
    for order_id, merchant_order_id, amount, seed in [
        (None, None, 10000, None),
        (5_000_001, "shop-1", 1234, 7),
        (5_000_002, None, 0, None),
    ]:
        spec = testing._transaction_spec(
            "declined", PaymentSource.WALLET, CardBrand.VISA, amount, "EGP", order_id,
            merchant_order_id, SANDBOX.integration_id, seed,
        )  # fmt: skip
        expected = simulation.transaction_spec(
            simulation.Request(
                what=simulation.What.TRANSACTION,
                outcome=Outcome.DECLINED,
                source=PaymentSource.WALLET,
                brand=CardBrand.VISA,
                amount_cents=amount,
                currency="EGP",
                order_id=order_id,
                merchant_order_id=merchant_order_id,
                integration_id=SANDBOX.integration_id,
                merchant_id=SANDBOX.merchant_id,
                seed=seed,
            )
        )
        assert spec == expected and hash(spec) == hash(expected)
        assert [f.name for f in fields(spec)] == list(vars(spec))
