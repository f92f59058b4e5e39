"""The sandbox dashboard at /_sandbox/, in process: lists, loopback-only, token, resend, refund/void/capture."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from paymobctl.delivery import RetryPolicy
from paymobctl.emulator import create_app
from paymobctl.sandbox_profile import SANDBOX

BASE = "http://127.0.0.1:8080"
ONE_TRY = RetryPolicy(attempts=1, first_delay=0.01, factor=1, max_delay=0.01, retry_on=frozenset())
ATTACK = "<script>alert(1)</script>"
BILLING = {
    "first_name": "Mona", "last_name": "Adel", "email": "mona@example.com", "phone_number": "+201234567890",
    "apartment": "NA", "floor": "NA", "street": "NA", "building": "NA", "shipping_method": "NA",
    "postal_code": "NA", "city": "NA", "country": "EG", "state": "NA",
}  # fmt: skip


def run(work: Callable[[httpx.AsyncClient, Any], Awaitable[Any]], **app_options: Any) -> Any:
    app = create_app(policy=ONE_TRY, timeout=1.0, **app_options)

    async def main() -> Any:
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as http:
            try:
                return await work(http, app.state.sandbox)
            finally:
                await app.state.notifier.drain(5)
                await app.state.notifier.close()

    return asyncio.run(main())


async def paid(http: httpx.AsyncClient, integration: int = SANDBOX.moto_integration_id) -> int:
    """One approved card payment through the API and the checkout form; its transaction id."""
    token = (await http.post("/api/auth/tokens", json={"api_key": SANDBOX.api_key})).json()["token"]
    order = await http.post(
        "/api/ecommerce/orders",
        json={"auth_token": token, "delivery_needed": False, "amount_cents": 15000,
              "currency": "EGP", "items": [], "merchant_order_id": ATTACK},
    )  # fmt: skip
    key = await http.post(
        "/api/acceptance/payment_keys",
        json={"auth_token": token, "amount_cents": 15000, "expiration": 3600,
              "order_id": order.json()["id"], "billing_data": BILLING, "currency": "EGP",
              "integration_id": integration},
    )  # fmt: skip
    form = {
        "payment_token": key.json()["token"], "card_number": "5123456789012346",
        "card_holder": "Test", "expiry_month": "12", "expiry_year": "30", "cvv": "123",
    }  # fmt: skip
    response = await http.post(f"/api/acceptance/iframes/{SANDBOX.iframe_id}", data=form)
    assert response.status_code == 303, response.text
    location = response.headers["location"]
    return int(httpx.URL(location).params["id"])


def action(token: str, **body: Any) -> dict[str, Any]:
    return {"json": {"token": token, **body}, "headers": {"Origin": BASE}}


async def page_token(http: httpx.AsyncClient) -> str:
    text = (await http.get("/_sandbox/")).text
    return text.split('name=paymobctl-token content="', 1)[1].split('"', 1)[0]


def test_dashboard_lists_escaped_and_live_fragment() -> None:
    async def work(http: httpx.AsyncClient, sandbox: Any) -> None:
        txn = await paid(http)
        page = await http.get("/_sandbox/")
        assert page.status_code == 200 and f'id="txn-{txn}"' in page.text
        assert "Refund" in page.text and "Void" in page.text
        assert ATTACK not in page.text and "&lt;script&gt;" in page.text
        assert page.headers["content-security-policy"].startswith("default-src 'self'")
        live = await http.get("/_sandbox/live")
        assert f'id="txn-{txn}"' in live.text and "<html" not in live.text
        assert (await http.get("/_sandbox/static/ui.js")).status_code == 200

    run(work)


def test_refund_void_capture_need_the_token_and_follow_the_sandbox_rules() -> None:
    async def work(http: httpx.AsyncClient, sandbox: Any) -> None:
        txn = await paid(http)
        token = await page_token(http)
        url = "/_sandbox/dashboard/refund"
        assert (
            await http.post(url, **action("nope", transaction_id=txn, amount_cents=100))
        ).status_code == 403
        forged = await http.post(
            url, json={"token": token, "transaction_id": txn, "amount_cents": 100},
            headers={"Origin": "https://evil.example"},
        )  # fmt: skip
        assert forged.status_code == 403
        form = await http.post(url, data={"token": token, "transaction_id": str(txn)})
        assert form.status_code == 415
        done = await http.post(url, **action(token, transaction_id=txn, amount_cents=5000))
        assert done.status_code == 200 and done.json()["message"].startswith("refund: transaction")
        assert sandbox.transactions[txn].obj["refunded_amount_cents"] == 5000
        too_much = await http.post(url, **action(token, transaction_id=txn, amount_cents=999_999))
        assert too_much.status_code == 400 and "Maximum Refund Amount" in too_much.json()["message"]
        void = await http.post("/_sandbox/dashboard/void", **action(token, transaction_id=txn))
        assert void.status_code == 400 and "refunded" in void.json()["message"]
        missing = await http.post(url, **action(token, transaction_id="x", amount_cents=1))
        assert missing.status_code == 400

    run(work)


def test_resend_a_delivery_signs_it_again_and_queues_a_new_one() -> None:
    async def work(http: httpx.AsyncClient, sandbox: Any) -> None:
        await paid(http)
        await http.post("/_sandbox/drain")
        first = max(sandbox.deliveries)
        token = await page_token(http)
        done = await http.post("/_sandbox/dashboard/resend", **action(token, delivery_id=first))
        assert done.status_code == 200, done.text
        await http.post("/_sandbox/drain")
        again = sandbox.deliveries[max(sandbox.deliveries)]
        assert again.id != first and again.body == sandbox.deliveries[first].body
        assert again.attempts  # it was attempted (nothing listens on port 9: refused)
        unknown = await http.post("/_sandbox/dashboard/resend", **action(token, delivery_id=999))
        assert unknown.status_code == 404

    run(work, callback_url="http://127.0.0.1:9/api/payments/webhook/")


def test_dashboard_is_loopback_only() -> None:
    async def work(http: httpx.AsyncClient, sandbox: Any) -> list[int]:
        statuses = []
        for headers in ({"Host": "sandbox.example.com"}, {"X-Forwarded-For": "203.0.113.1"}):
            statuses.append((await http.get("/_sandbox/", headers=headers)).status_code)
            statuses.append(
                (
                    await http.post("/_sandbox/dashboard/resend", json={}, headers=headers)
                ).status_code
            )
        return statuses

    assert run(work) == [404, 404, 404, 404]


def test_action_bodies_are_bounded() -> None:
    async def work(http: httpx.AsyncClient, sandbox: Any) -> int:
        token = await page_token(http)
        body = {"token": token, "delivery_id": 1, "padding": "x" * 70_000}
        response = await http.post(
            "/_sandbox/dashboard/resend", json=body, headers={"Origin": BASE}
        )
        return response.status_code

    assert run(work) == 413
