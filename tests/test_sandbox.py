"""The sandbox emulator: every endpoint's success and error paths over real loopback sockets."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from paymobctl import signing
from paymobctl.delivery import RetryPolicy
from paymobctl.emulator import create_app
from paymobctl.emulator.state import StorePersistence
from paymobctl.models import Region
from paymobctl.sandbox_profile import SANDBOX
from paymobctl.signing import CallbackKind
from paymobctl.store import Store

from .inprocess import in_process
from .servers import Recorder
from .test_callbacks import assert_nothing_after

FAST = RetryPolicy(
    attempts=3, first_delay=0.01, factor=2, max_delay=0.05, retry_on=frozenset({"non-2xx"})
)
BILLING = {
    "first_name": "Mona", "last_name": "Adel", "email": "mona@example.com", "phone_number": "+201234567890",
    "apartment": "NA", "floor": "NA", "street": "NA", "building": "NA", "shipping_method": "NA",
    "postal_code": "NA", "city": "NA", "country": "EG", "state": "NA",
}  # fmt: skip
CHECKOUT = f"/api/acceptance/iframes/{SANDBOX.iframe_id}"


def card_form(
    key: str,
    number: str = "0000000000000000",
    expiry: tuple[str, str] = ("12", "39"),
    holder: str = "T",
) -> dict[str, str]:
    return {
        "payment_token": key,
        "card_number": number,
        "card_holder": holder,
        "expiry_month": expiry[0],
        "expiry_year": expiry[1],
        "cvv": "123",
    }


@dataclass
class Clock:
    now: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Sandbox:
    http: httpx.Client
    merchant: Recorder
    merchant_url: str
    clock: Clock
    events: list[tuple[str, str]]

    def token(self) -> str:
        response = self.http.post("/api/auth/tokens", json={"api_key": SANDBOX.api_key})
        assert response.status_code == 201, response.text
        return str(response.json()["token"])

    def order(self, amount: int = 15000, **extra: Any) -> dict[str, Any]:
        body = {
            "auth_token": self.token(),
            "delivery_needed": False,
            "amount_cents": amount,
            "currency": "EGP",
            "items": [],
            **extra,
        }
        response = self.http.post("/api/ecommerce/orders", json=body)
        assert response.status_code == 201, response.text
        return dict(response.json())

    def key(
        self, amount: int = 15000, integration: int = SANDBOX.integration_id, **extra: Any
    ) -> tuple[str, int]:
        order = self.order(amount)
        body = {
            "auth_token": self.token(),
            "amount_cents": amount,
            "expiration": 3600,
            "order_id": order["id"],
            "billing_data": BILLING,
            "currency": "EGP",
            "integration_id": integration,
            **extra,
        }
        response = self.http.post("/api/acceptance/payment_keys", json=body)
        assert response.status_code == 201, response.text
        return str(response.json()["token"]), int(order["id"])

    def pay_card(
        self,
        number: str,
        expiry: tuple[str, str] = ("12", "39"),
        *,
        save: bool = False,
        otp: str | None = None,
        **key_extra: Any,
    ) -> httpx.Response:
        key, _ = self.key(**key_extra)
        form = card_form(key, number, expiry, holder="Test Account")
        if save:
            form["save_card"] = "true"
        response = self.http.post(CHECKOUT, data=form)
        if response.status_code == 303 and "/acs/" in response.headers["location"]:
            acs = urlsplit(response.headers["location"]).path
            assert "3-D Secure" in self.http.get(acs).text
            response = self.http.post(acs, data={"otp": otp or "1234"})
        return response

    def submit_card(self, key: str) -> httpx.Response:
        """The checkout form with the approved test card, without following its redirect."""
        return self.http.post(CHECKOUT, data=card_form(key))

    def pay(self, key: str, identifier: str, subtype: str) -> httpx.Response:
        """`POST /api/acceptance/payments/pay` with one payment source."""
        return self.http.post(
            "/api/acceptance/payments/pay",
            json={"source": {"identifier": identifier, "subtype": subtype}, "payment_token": key},
        )

    def drain(self) -> None:
        self.http.post("/_sandbox/drain", params={"timeout": "10"})

    def callbacks(self) -> list[tuple[str, dict[str, Any], str]]:
        """(type, obj, hmac) of every callback the merchant received, verified as they arrive."""
        found = []
        for request in self.merchant.requests:
            if request.method != "POST":
                continue
            body = json.loads(request.body)
            received = dict(parse_qsl(request.query))["hmac"]
            found.append((body["type"], body["obj"], received))
        return found


def verified(kind: str, obj: dict[str, Any], received: str) -> bool:
    return signing.verify(CallbackKind(kind), obj, SANDBOX.hmac_secret, received).valid


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    merchant = Recorder()
    clock = Clock()
    events: list[tuple[str, str]] = []
    with in_process(merchant.app()) as merchant_url:
        app = create_app(
            callback_url=f"{merchant_url}/api/payments/webhook/",
            response_url=f"{merchant_url}/api/payments/response/",
            clock=clock,
            policy=FAST,
            timeout=2,
            on_event=lambda c, m: events.append((c, m)),
        )
        with in_process(app) as base, httpx.Client(base_url=base, timeout=10) as http:
            yield Sandbox(http, merchant, merchant_url, clock, events)


# --- auth ----------------------------------------------------------------------------------------


def test_auth_tokens(sandbox: Sandbox) -> None:
    token = sandbox.token()
    assert token.startswith(
        "ZXlKaGJHY2lPaUpJVXpVeE1pSXNJblI1Y0NJNklrcFhWQ0o5"
    )  # base64 of an HS512 JWT
    bad = sandbox.http.post("/api/auth/tokens", json={"api_key": "wrong"})
    assert bad.status_code == 403 and bad.json() == {"detail": "incorrect credentials"}
    missing = sandbox.http.post("/api/auth/tokens", json={})
    assert missing.status_code == 400 and missing.json() == {"api_key": ["This field is required."]}
    broken = sandbox.http.post(
        "/api/auth/tokens", content=b"{nope", headers={"content-type": "application/json"}
    )
    assert broken.status_code == 400 and "JSON parse error" in broken.json()["detail"]


def test_auth_token_everywhere_real_clients_put_it(sandbox: Sandbox) -> None:
    order = sandbox.order()
    token = sandbox.token()
    path = f"/api/ecommerce/orders/{order['id']}"
    assert sandbox.http.get(path, headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert sandbox.http.get(path, headers={"Authorization": token}).status_code == 200
    assert sandbox.http.get(path, params={"token": token}).status_code == 200
    denied = sandbox.http.get(path, headers={"Authorization": "Bearer nope"})
    assert denied.status_code == 401 and denied.json() == {"detail": "incorrect credentials"}


def test_auth_tokens_expire_after_an_hour(sandbox: Sandbox) -> None:
    token = sandbox.token()
    sandbox.clock.now += timedelta(minutes=61)
    response = sandbox.http.post(
        "/api/ecommerce/orders",
        json={"auth_token": token, "amount_cents": 1, "currency": "EGP", "delivery_needed": False},
    )
    assert response.status_code == 401


# --- orders and payment keys ----------------------------------------------------------------------


def test_orders_shape_validation_and_duplicates(sandbox: Sandbox) -> None:
    order = sandbox.order(merchant_order_id="SHOP-1")
    for key in (
        "id",
        "created_at",
        "delivery_needed",
        "merchant",
        "amount_cents",
        "shipping_data",
        "currency",
        "merchant_order_id",
        "paid_amount_cents",
        "items",
        "order_url",
        "payment_method",
        "api_source",
    ):
        assert key in order
    assert order["amount_cents"] == 15000 and order["merchant_order_id"] == "SHOP-1"
    token = sandbox.token()
    dup = sandbox.http.post(
        "/api/ecommerce/orders",
        json={
            "auth_token": token,
            "amount_cents": 100,
            "currency": "EGP",
            "delivery_needed": False,
            "merchant_order_id": "SHOP-1",
        },
    )
    assert dup.status_code == 422 and dup.json() == {"message": "duplicate"}
    cases = [
        (
            {"currency": "EGP", "delivery_needed": False},
            {"amount_cents": ["This field is required."]},
        ),
        (
            {"amount_cents": "abc", "currency": "EGP", "delivery_needed": False},
            {"amount_cents": ["A valid integer is required."]},
        ),
        (
            {"amount_cents": 100, "delivery_needed": False},
            {"currency": ["This field is required."]},
        ),
        (
            {"amount_cents": 100, "currency": "EGP"},
            {"delivery_needed": ["This field is required."]},
        ),
    ]
    for body, expected in cases:
        response = sandbox.http.post("/api/ecommerce/orders", json={"auth_token": token, **body})
        assert response.status_code == 400 and response.json() == expected
    as_strings = sandbox.http.post(
        "/api/ecommerce/orders",
        json={
            "auth_token": token,
            "amount_cents": "1100",
            "currency": "EGP",
            "delivery_needed": "false",
        },
    )
    assert as_strings.status_code == 201 and as_strings.json()["amount_cents"] == 1100


def test_payment_key_validation(sandbox: Sandbox) -> None:
    order = sandbox.order()
    token = sandbox.token()
    base = {
        "auth_token": token,
        "amount_cents": 15000,
        "expiration": 3600,
        "order_id": order["id"],
        "billing_data": BILLING,
        "currency": "EGP",
        "integration_id": SANDBOX.integration_id,
    }

    def post(**changes: Any) -> httpx.Response:
        body = {**base, **changes}
        return sandbox.http.post(
            "/api/acceptance/payment_keys", json={k: v for k, v in body.items() if v is not None}
        )

    ok = post(tokenization="true", lock_order_when_paid="true")
    assert ok.status_code == 201 and ok.json()["token"].startswith("ZXlK")
    assert any("tokenization" in message for _, message in sandbox.events)
    missing_phone = post(billing_data={k: v for k, v in BILLING.items() if k != "phone_number"})
    assert missing_phone.status_code == 400
    assert missing_phone.json() == {"billing_data": {"phone_number": ["This field is required."]}}
    missing_street = post(billing_data={k: v for k, v in BILLING.items() if k != "street"})
    assert missing_street.json() == {"billing_data": {"street": ["This field is required."]}}
    blank = post(billing_data={**BILLING, "email": " "})
    assert blank.json() == {"billing_data": {"email": ["This field may not be blank."]}}
    unknown = post(integration_id=999)
    assert unknown.status_code == 404 and unknown.json()["detail"].startswith(
        "Integration ID/Name does not exist"
    )
    currency = post(currency="SAR")
    assert currency.status_code == 400 and currency.json() == {"detail": "Invalid currency sent"}
    no_order = post(order_id=1)
    assert no_order.status_code == 400 and "object does not exist" in no_order.json()["order_id"][0]
    bad_token = post(token="not-a-card-token")
    assert bad_token.status_code == 400 and bad_token.json() == {"token": ["Invalid card token."]}
    assert post(expiration=0).status_code == 400
    too_long = post(expiration=10**30)
    assert too_long.status_code == 400
    assert too_long.json() == {
        "expiration": ["Ensure this value is less than or equal to 31536000."]
    }
    assert post(expiration=31536000).status_code == 201
    assert post(expiration="3600").status_code == 201
    assert post(expiration=1.5).json() == {"expiration": ["A valid integer is required."]}
    other_amount = post(amount_cents=14999)
    assert other_amount.status_code == 400
    assert other_amount.json() == {
        "amount_cents": [
            f"amount_cents 14999 does not equal order {order['id']}'s amount_cents 15000."
        ]
    }
    no_auth = post(auth_token="nope")
    assert no_auth.status_code == 401


@pytest.mark.parametrize(
    ("items", "error"),
    [
        (None, ["This field may not be null."]),
        (5, ['Expected a list of items but got type "int".']),
        ({"name": "x"}, ['Expected a list of items but got type "dict".']),
        ("[]", ['Expected a list of items but got type "str".']),
        ([1], {"non_field_errors": ["Invalid data. Expected a dictionary."]}),
        (
            [{"name": "x", "amount_cents": "ten"}],
            {"amount_cents": ["A valid integer is required."]},
        ),
        ([{"name": "x", "amount_cents": 1.5}], {"amount_cents": ["A valid integer is required."]}),
        ([{"name": "x", "amount_cents": [1]}], {"amount_cents": ["A valid integer is required."]}),
        (
            [{"name": "x", "amount_cents": 5, "quantity": "two"}],
            {"quantity": ["A valid integer is required."]},
        ),
        (
            [{"name": "x", "amount_cents": 5, "quantity": 0}],
            {"quantity": ["Ensure this value is greater than or equal to 1."]},
        ),
    ],
)
def test_order_items_are_validated_not_500(sandbox: Sandbox, items: Any, error: Any) -> None:
    response = sandbox.http.post(
        "/api/ecommerce/orders",
        json={
            "auth_token": sandbox.token(),
            "amount_cents": 100,
            "currency": "EGP",
            "delivery_needed": False,
            "items": items,
        },
    )
    assert response.status_code == 400 and response.json() == {"items": error}


def test_orders_reject_unknown_currencies(sandbox: Sandbox) -> None:
    def order(currency: Any) -> httpx.Response:
        return sandbox.http.post(
            "/api/ecommerce/orders",
            json={
                "auth_token": sandbox.token(),
                "amount_cents": 100,
                "currency": currency,
                "delivery_needed": False,
            },
        )

    assert order("XYZ").json() == {"currency": ['"XYZ" is not a valid choice.']}
    assert order(5).json() == {"currency": ['"5" is not a valid choice.']}
    assert order("omr").status_code == 201 and order("omr").json()["currency"] == "OMR"


def test_unexpected_body_shapes_are_400_not_500(sandbox: Sandbox) -> None:
    token = sandbox.token()
    for path in ("/api/ecommerce/orders", "/api/acceptance/payment_keys", "/v1/intention/"):
        for body in ([], [1, 2], "text", 5, None):
            response = sandbox.http.post(
                path,
                json=body,
                headers={"Authorization": f"Token {SANDBOX.secret_key}"}
                if path.startswith("/v1")
                else {"Authorization": f"Bearer {token}"},
            )
            assert 400 <= response.status_code < 500, (path, body, response.text)
            assert isinstance(response.json(), dict)
    limit = sandbox.http.get("/_sandbox/deliveries", params={"limit": "abc"})
    assert limit.status_code == 400 and "limit" in limit.json()
    assert sandbox.http.get("/_sandbox/deliveries", params={"limit": "0"}).status_code == 400
    assert sandbox.http.get("/_sandbox/deliveries", params={"limit": "5"}).status_code == 200


# --- hosted checkout ----------------------------------------------------------------------------


def test_checkout_page_and_its_errors(sandbox: Sandbox) -> None:
    key, order_id = sandbox.key(amount=25050)
    page = sandbox.http.get(CHECKOUT, params={"payment_token": key})
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    for needle in (
        "card_number",
        "card_holder",
        "expiry_month",
        "cvv",
        "save_card",
        "250.50 EGP",
        str(order_id),
        "5123 4567 8901 2346",
        "0000 0000 0000 2222",
    ):
        assert needle in page.text
    unknown = sandbox.http.get("/api/acceptance/iframes/1", params={"payment_token": key})
    assert unknown.status_code == 404 and "Iframe not found" in unknown.text
    assert sandbox.http.get(CHECKOUT).status_code == 400
    bogus = sandbox.http.get(CHECKOUT, params={"payment_token": "x"})
    assert bogus.status_code == 401 and "Invalid payment token" in bogus.text
    sandbox.clock.now += timedelta(hours=2)
    expired = sandbox.http.get(CHECKOUT, params={"payment_token": key})
    assert expired.status_code == 410 and "expired" in expired.text


def test_form_errors_are_shown_on_the_page(sandbox: Sandbox) -> None:
    key, _ = sandbox.key()
    form = card_form(key, "1234", ("01", "39"), holder="X")
    response = sandbox.http.post(CHECKOUT, data=form)
    assert response.status_code == 400 and "13 to 19 digits" in response.text
    form.update(card_number="4111111111111112")
    assert "Invalid card number" in sandbox.http.post(CHECKOUT, data=form).text
    form.update(card_number="4111111111111111", cvv="1")
    page = sandbox.http.post(CHECKOUT, data=form).text
    assert "CVV" in page
    # The field in error is marked; the message comes after every field, so none moves.
    assert re.search(r"<input type=password id=cvv name=cvv inputmode=numeric class=invalid", page)
    assert page.count("aria-invalid=true") == 1
    assert page.index("id=cvv") < page.index("id=form-error")
    form.update(card_holder=" ", cvv="123")
    holder = sandbox.http.post(CHECKOUT, data=form).text
    assert re.search(r'id=card_holder name=card_holder value="[^"]*" class=invalid', holder)


def redirect_query(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 303, response.text
    location = response.headers["location"]
    return dict(parse_qsl(urlsplit(location).query, keep_blank_values=True))


def test_guide_success_card_no_otp_redirect_and_callbacks(sandbox: Sandbox) -> None:
    response = sandbox.pay_card("0000 0000 0000 0000", save=True)
    assert response.headers["location"].startswith(
        f"{sandbox.merchant_url}/api/payments/response/?"
    )
    query = redirect_query(response)
    assert query["success"] == "true" and query["is_3d_secure"] == "false"
    assert signing.verify(
        CallbackKind.RESPONSE, query, SANDBOX.hmac_secret, query.pop("hmac")
    ).valid
    sandbox.drain()
    got = sandbox.callbacks()
    # Default --callback-order token-first, as in the real 2025 pair (docs/paymob.md §14).
    assert [kind for kind, _, _ in got] == ["TOKEN", "TRANSACTION"]
    for kind, obj, received in got:
        assert verified(kind, obj, received)
    token, txn = got[0][1], got[1][1]
    assert txn["id"] == int(query["id"]) and txn["success"] is True
    assert (
        token["order_id"] == str(txn["order"]["id"])
        and token["masked_pan"] == "xxxx-xxxx-xxxx-0000"
    )
    assert token["email"] == "mona@example.com"
    assert txn["payment_key_claims"]["billing_data"]["first_name"] == "Mona"


def test_decline_card(sandbox: Sandbox) -> None:
    query = redirect_query(sandbox.pay_card("0000000000001111", save=True))
    assert query["success"] == "false" and query["txn_response_code"] == "DECLINED"
    sandbox.drain()
    assert [k for k, _, _ in sandbox.callbacks()] == ["TRANSACTION"]  # no TOKEN for a declined card


def test_three_d_secure_with_otp(sandbox: Sandbox) -> None:
    query = redirect_query(sandbox.pay_card("0000000000002222"))
    assert query["success"] == "true" and query["is_3d_secure"] == "true"
    failed = redirect_query(sandbox.pay_card("5123456789012346", ("01", "39"), otp="9999"))
    assert failed["success"] == "false" and failed["txn_response_code"] == "AUTHENTICATION_FAILED"


@pytest.mark.parametrize(
    ("number", "expiry", "code"),
    [
        ("5123456789012346", ("01", "39"), "APPROVED"),
        ("4111111111111111", ("05", "39"), "DECLINED"),
        ("5123450000000008", ("04", "27"), "EXPIRED_CARD"),
        ("5123456789012346", ("08", "28"), "TIMED_OUT"),
        ("4987654321098769", ("12", "39"), "APPROVED"),
    ],
)
def test_documented_cards_and_mpgs_expiry_convention(
    sandbox: Sandbox, number: str, expiry: tuple[str, str], code: str
) -> None:
    query = redirect_query(sandbox.pay_card(number, expiry))
    assert query["txn_response_code"] == code
    assert query["success"] == ("true" if code == "APPROVED" else "false")


def test_unknown_real_card_is_declined_in_test_mode(sandbox: Sandbox) -> None:
    query = redirect_query(sandbox.pay_card("4242424242424242", ("01", "39")))
    assert query["success"] == "false" and "test cards only" in query["data.message"]


def test_used_key_and_locked_order(sandbox: Sandbox) -> None:
    key, order_id = sandbox.key(lock_order_when_paid=True)
    assert sandbox.submit_card(key).status_code == 303
    used = sandbox.http.get(CHECKOUT, params={"payment_token": key})
    assert used.status_code == 410 and "already used" in used.text
    order = sandbox.http.get(
        f"/api/ecommerce/orders/{order_id}", params={"token": sandbox.token()}
    ).json()
    assert order["is_payment_locked"] is True and order["paid_amount_cents"] == 15000


def test_no_response_url_shows_the_result_page(sandbox: Sandbox) -> None:
    assert (
        sandbox.http.post("/_sandbox/callbacks", json={"response_url": ""}).json()["response_url"]
        is None
    )
    response = sandbox.pay_card("0000000000000000")
    assert (
        response.status_code == 303 and "/api/acceptance/post_pay?" in response.headers["location"]
    )
    page = sandbox.http.get(
        urlsplit(response.headers["location"]).path
        + "?"
        + urlsplit(response.headers["location"]).query
    )
    assert "Payment successful" in page.text


# --- payments/pay ---------------------------------------------------------------------------------


def saved_token(sandbox: Sandbox, number: str = "0000000000000000") -> str:
    sandbox.pay_card(number, save=True)
    sandbox.drain()
    return next(obj["token"] for kind, obj, _ in sandbox.callbacks() if kind == "TOKEN")


def test_pay_with_saved_token_on_moto(sandbox: Sandbox) -> None:
    token = saved_token(sandbox)
    key, order_id = sandbox.key(integration=SANDBOX.moto_integration_id)
    response = sandbox.pay(key, token, "TOKEN")
    assert response.status_code == 200
    record = response.json()
    assert (
        record["success"] == "true"
        and record["pending"] == "false"
        and record["order"] == str(order_id)
    )
    assert all(
        isinstance(record[k], str)
        for k in ("id", "amount_cents", "is_3d_secure", "source_data.pan")
    )
    received = record.pop("hmac")
    assert signing.verify(CallbackKind.RESPONSE, record, SANDBOX.hmac_secret, received).valid
    sandbox.drain()
    assert sandbox.callbacks()[-1][0] == "TRANSACTION" and sandbox.callbacks()[-1][1]["id"] == int(
        record["id"]
    )


def test_pay_with_saved_3ds_token_on_card_integration_needs_redirection(sandbox: Sandbox) -> None:
    token = saved_token(sandbox, "0000000000002222")
    key, _ = sandbox.key()
    record = sandbox.pay(key, token, "TOKEN").json()
    assert (
        record["pending"] == "true"
        and record["success"] == "false"
        and record["use_redirection"] is True
    )
    acs = urlsplit(record["redirection_url"]).path
    done = sandbox.http.post(acs, data={"otp": "1234"})
    assert redirect_query(done)["success"] == "true"


def test_pay_errors(sandbox: Sandbox) -> None:
    key, _ = sandbox.key(integration=SANDBOX.moto_integration_id)
    cases = [
        ({"payment_token": key}, 400, {"source": ["This field is required."]}),
        ({"source": {"identifier": "x", "subtype": "TOKEN"}, "payment_token": "bad"}, 401, None),
        (
            {"source": {"identifier": "nope", "subtype": "TOKEN"}, "payment_token": key},
            400,
            {"detail": "Invalid card token."},
        ),
        ({"source": {"identifier": "cash", "subtype": "CASH"}, "payment_token": key}, 400, None),
    ]
    for body, status, expected in cases:
        response = sandbox.http.post("/api/acceptance/payments/pay", json=body)
        assert response.status_code == status, (body, response.text)
        if expected is not None:
            assert response.json() == expected


def test_wallet_payment(sandbox: Sandbox) -> None:
    key, _ = sandbox.key(integration=SANDBOX.wallet_integration_id)
    obj = sandbox.pay(key, "01010101010", "WALLET").json()
    assert obj["pending"] is True and obj["success"] is False
    assert obj["source_data"]["type"] == "wallet" and obj["data"]["klass"] == "WalletPayment"
    page = urlsplit(obj["iframe_redirection_url"])
    assert "MPIN" in sandbox.http.get(f"{page.path}?{page.query}").text
    done = sandbox.http.post(page.path, data={"mpin": "123456", "otp": "123456"})
    assert redirect_query(done)["success"] == "true"
    other_key, _ = sandbox.key(integration=SANDBOX.wallet_integration_id)
    declined = sandbox.pay(other_key, "01000000000", "WALLET").json()
    assert declined["success"] is False and declined["pending"] is False
    sandbox.drain()
    assert [obj["source_data"]["type"] for _, obj, _ in sandbox.callbacks()] == ["wallet", "wallet"]


def test_kiosk_payment(sandbox: Sandbox) -> None:
    key, _ = sandbox.key(integration=SANDBOX.kiosk_integration_id)
    obj = sandbox.pay(key, "AGGREGATOR", "AGGREGATOR").json()
    assert obj["pending"] == "true" and obj["source_data"]["sub_type"] == "AGGREGATOR"
    reference = obj["data"]["bill_reference"]
    paid = sandbox.http.post(f"/_sandbox/kiosk/{reference}/pay").json()
    assert paid["success"] is True
    sandbox.drain()
    kind, cb, received = sandbox.callbacks()[-1]
    assert kind == "TRANSACTION" and cb["source_data"]["pan"] == "" and verified(kind, cb, received)


# --- retrieval, inquiry, refund, void, capture ---------------------------------------------------------


def test_retrieve_and_inquiry(sandbox: Sandbox) -> None:
    key, order_id = sandbox.key()
    txn_id = int(redirect_query(sandbox.submit_card(key))["id"])
    token = sandbox.token()
    got = sandbox.http.get(
        f"/api/acceptance/transactions/{txn_id}", headers={"Authorization": f"Bearer {token}"}
    )
    assert got.status_code == 200 and got.json()["id"] == txn_id and got.json()["success"] is True
    assert (
        sandbox.http.get("/api/acceptance/transactions/1", params={"token": token}).status_code
        == 404
    )
    inquiry = sandbox.http.post(
        "/api/ecommerce/orders/transaction_inquiry",
        json={"auth_token": token, "order_id": order_id},
    )
    assert inquiry.status_code == 200 and inquiry.json()["id"] == txn_id
    order = sandbox.order(merchant_order_id="INQ-1")
    none = sandbox.http.post(
        "/api/ecommerce/orders/transaction_inquiry",
        json={"auth_token": token, "merchant_order_id": "INQ-1"},
    )
    assert none.status_code == 404 and str(order["id"]) in none.json()["detail"]
    assert (
        sandbox.http.post(
            "/api/ecommerce/orders/transaction_inquiry", json={"auth_token": token}
        ).status_code
        == 400
    )


def paid_transaction(
    sandbox: Sandbox, integration: int = SANDBOX.integration_id, amount: int = 10000
) -> int:
    key, _ = sandbox.key(amount=amount, integration=integration)
    return int(redirect_query(sandbox.submit_card(key))["id"])


REFUND = "/api/acceptance/void_refund/refund"
CAPTURE = "/api/acceptance/capture"


def post_amount(
    sandbox: Sandbox, path: str, token: str, txn_id: int, amount: int
) -> httpx.Response:
    """The body refund and capture share: auth token, transaction id, amount in cents."""
    return sandbox.http.post(
        path, json={"auth_token": token, "transaction_id": txn_id, "amount_cents": amount}
    )


def test_refund(sandbox: Sandbox) -> None:
    txn_id = paid_transaction(sandbox)
    token = sandbox.token()
    partial = post_amount(sandbox, REFUND, token, txn_id, 4000)
    assert partial.status_code == 201
    child = partial.json()
    assert (
        child["is_refund"] is True
        and child["parent_transaction"] == txn_id
        and child["amount_cents"] == 4000
    )
    over = sandbox.http.post(
        REFUND,
        headers={"Authorization": f"Token {SANDBOX.secret_key}"},
        json={"transaction_id": txn_id, "amount_cents": 7000},
    )
    assert over.status_code == 400
    assert over.json() == {
        "message": "Requested Refund Amount is greater than the maximum refund amount permissible. "
        "Maximum Refund Amount is EGP 60.0"
    }
    unknown = post_amount(sandbox, REFUND, token, 1, 1)
    assert unknown.status_code == 404 and unknown.json() == {"detail": "Invalid transaction id"}
    parent = sandbox.http.get(
        f"/api/acceptance/transactions/{txn_id}", params={"token": token}
    ).json()
    assert parent["is_refunded"] is True and parent["refunded_amount_cents"] == 4000
    sandbox.drain()
    kinds = [(obj["id"], obj["is_refund"]) for _, obj, _ in sandbox.callbacks()]
    assert (child["id"], True) in kinds
    assert all(verified(k, o, h) for k, o, h in sandbox.callbacks())


def test_void(sandbox: Sandbox) -> None:
    txn_id = paid_transaction(sandbox)
    token = sandbox.token()
    voided = sandbox.http.post(
        "/api/acceptance/void_refund/void", params={"token": token}, json={"transaction_id": txn_id}
    )
    assert voided.status_code == 200 and voided.json()["is_void"] is True
    again = sandbox.http.post(
        "/api/acceptance/void_refund/void", json={"auth_token": token, "transaction_id": txn_id}
    )
    assert again.status_code == 400 and "already voided" in again.json()["detail"]
    refund = post_amount(sandbox, REFUND, token, txn_id, 1)
    assert refund.status_code == 400


def test_capture(sandbox: Sandbox) -> None:
    txn_id = paid_transaction(sandbox, integration=SANDBOX.auth_integration_id)
    token = sandbox.token()
    auth = sandbox.http.get(
        f"/api/acceptance/transactions/{txn_id}", params={"token": token}
    ).json()
    assert auth["is_auth"] is True and auth["success"] is True
    over = post_amount(sandbox, CAPTURE, token, txn_id, 10001)
    assert over.status_code == 400 and over.json() == {
        "detail": "Capture amount cannot exceed auth amount"
    }
    captured = post_amount(sandbox, CAPTURE, token, txn_id, 6000)
    assert captured.status_code == 201
    child = captured.json()
    assert (
        child["is_capture"] is True
        and child["is_auth"] is False
        and child["has_parent_transaction"] is True
    )
    unknown = post_amount(sandbox, CAPTURE, token, 5, 1)
    assert unknown.status_code == 404 and unknown.json() == {"detail": "Invalid transaction id"}
    not_auth = paid_transaction(sandbox)
    nope = post_amount(sandbox, CAPTURE, token, not_auth, 1)
    assert nope.status_code == 400


# --- Intention API --------------------------------------------------------------------------------


def intention(sandbox: Sandbox, **extra: Any) -> httpx.Response:
    body = {
        "amount": 20000,
        "currency": "EGP",
        "payment_methods": [SANDBOX.integration_id],
        "items": [{"name": "Item", "amount": 20000, "description": "x", "quantity": 1}],
        "billing_data": {
            "first_name": "Mona",
            "last_name": "Adel",
            "email": "m@example.com",
            "phone_number": "+20100",
        },
        **extra,
    }
    return sandbox.http.post(
        "/v1/intention/", json=body, headers={"Authorization": f"Token {SANDBOX.secret_key}"}
    )


def test_intention_create_shape_and_errors(sandbox: Sandbox) -> None:
    response = intention(sandbox, special_reference="REF-1", extras={"ee": 22})
    assert response.status_code == 201
    data = response.json()
    assert data["object"] == "paymentintention" and data["status"] == "intended"
    assert re.fullmatch(r"pi_test_[0-9a-f]{32}", data["id"]) and data["client_secret"].startswith(
        "egy_csk_test_"
    )
    assert data["payment_keys"][0]["integration"] == SANDBOX.integration_id
    assert data["intention_order_id"] == data["payment_keys"][0]["order_id"]
    assert data["extras"]["creation_extras"] == {"ee": 22} and data["special_reference"] == "REF-1"
    bearer = sandbox.http.post(
        "/v1/intention/",
        headers={"Authorization": f"Bearer {SANDBOX.secret_key}"},
        json={
            "amount": 100,
            "currency": "EGP",
            "payment_methods": ["card"],
            "billing_data": {
                "first_name": "a",
                "last_name": "b",
                "email": "c",
                "phone_number": "d",
            },
        },
    )
    assert bearer.status_code == 201
    assert sandbox.http.post("/v1/intention/", json={}).json() == {
        "detail": "Authentication credentials were not provided."
    }
    assert (
        sandbox.http.post(
            "/v1/intention/", json={}, headers={"Authorization": "Token nope"}
        ).status_code
        == 401
    )
    missing_phone = intention(
        sandbox, billing_data={"first_name": "a", "last_name": "b", "email": "c"}
    )
    assert missing_phone.status_code == 400
    assert missing_phone.json() == {"billing_data": {"phone_number": ["This field is required."]}}
    item = intention(sandbox, items=[{"amount": 20000}])
    assert item.json() == {"items": {"name": ["This field is required."]}}
    unknown = intention(sandbox, payment_methods=[12345])
    assert (
        unknown.status_code == 404
        and "Integration ID/Name does not exist" in unknown.json()["detail"]
    )
    too_many = intention(sandbox, card_tokens=["a", "b", "c", "d"])
    assert too_many.json() == {"card_tokens": ["Ensure this field has no more than 3 elements."]}


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"items": None}, {"items": ["This field may not be null."]}),
        ({"items": 7}, {"items": ['Expected a list of items but got type "int".']}),
        ({"items": {"a": 1}}, {"items": ['Expected a list of items but got type "dict".']}),
        (
            {"items": [{"name": "x", "amount": "lots"}]},
            {"items": {"amount": ["A valid integer is required."]}},
        ),
        (
            {"items": [{"name": "x", "amount": 20000, "quantity": [2]}]},
            {"items": {"quantity": ["A valid integer is required."]}},
        ),
        ({"amount": 1.25}, {"amount": ["A valid integer is required."]}),
        ({"amount": -5}, {"amount": ["Ensure this value is greater than or equal to 1."]}),
        ({"currency": "XYZ"}, {"currency": ['"XYZ" is not a valid choice.']}),
        (
            {"payment_methods": 5},
            {"payment_methods": ['Expected a list of items but got type "int".']},
        ),
        (
            {"card_tokens": {"a": 1}},
            {"card_tokens": ['Expected a list of items but got type "dict".']},
        ),
        (
            {"expiration": 10**9},
            {"expiration": ["Ensure this value is less than or equal to 31536000."]},
        ),
    ],
)
def test_intention_body_shapes_are_validated(
    sandbox: Sandbox, changes: dict[str, Any], error: dict[str, Any]
) -> None:
    response = intention(sandbox, **changes)
    assert response.status_code == 400 and response.json() == error


def test_intention_item_quantities_count_towards_the_amount(sandbox: Sandbox) -> None:
    ok = intention(sandbox, items=[{"name": "x", "amount": "10000", "quantity": "2"}])
    assert ok.status_code == 201, ok.text
    wrong = intention(sandbox, items=[{"name": "x", "amount": 10000, "quantity": 3}])
    assert wrong.status_code == 400 and "Sum of items" in wrong.json()["detail"]


def test_unified_checkout_with_saved_cards_and_intention_urls(sandbox: Sandbox) -> None:
    token = saved_token(sandbox)
    merchant = sandbox.merchant_url
    created = intention(
        sandbox,
        card_tokens=[token],
        notification_url=f"{merchant}/intent/webhook",
        redirection_url=f"{merchant}/intent/return",
    ).json()
    params = {"publicKey": SANDBOX.public_key, "clientSecret": created["client_secret"]}
    page = sandbox.http.get("/unifiedcheckout/", params=params)
    assert (
        page.status_code == 200 and "xxxx-xxxx-xxxx-0000" in page.text and "200.00 EGP" in page.text
    )
    bad = sandbox.http.get("/unifiedcheckout/", params={**params, "publicKey": "nope"})
    assert bad.status_code == 401
    paid = sandbox.http.post("/unifiedcheckout/", data={**params, "card_token": token})
    assert paid.headers["location"].startswith(f"{merchant}/intent/return?")
    assert redirect_query(paid)["success"] == "true"
    element = sandbox.http.get(
        f"/v1/intention/element/{SANDBOX.public_key}/{created['client_secret']}/"
    ).json()
    assert element["paid"] is True and element["status"] == "paid"
    sandbox.drain()
    paths = [r.path for r in sandbox.merchant.requests if r.method == "POST"]
    assert paths[-1] == "/intent/webhook"
    again = sandbox.http.get("/unifiedcheckout/", params=params)
    assert again.status_code == 409


def test_intention_new_card_with_3ds(sandbox: Sandbox) -> None:
    created = intention(sandbox).json()
    form = {
        "publicKey": SANDBOX.public_key,
        "clientSecret": created["client_secret"],
        "card_number": "5123456789012346",
        "card_holder": "T",
        "expiry_month": "01",
        "expiry_year": "39",
        "cvv": "123",
        "save_card": "true",
    }
    step = sandbox.http.post("/unifiedcheckout/", data=form)
    assert step.status_code == 303 and "/acs/" in step.headers["location"]
    done = sandbox.http.post(urlsplit(step.headers["location"]).path, data={"otp": "1234"})
    assert redirect_query(done)["success"] == "true"
    sandbox.drain()
    token_cb = [obj for kind, obj, _ in sandbox.callbacks() if kind == "TOKEN"][-1]
    assert token_cb["next_payment_intention"] == created["id"]


# --- callbacks: retries, URLs, admin ---------------------------------------------------------------


def test_delivery_retries_and_every_attempt_is_listed(sandbox: Sandbox) -> None:
    sandbox.merchant.answers = [500, 503]
    sandbox.pay_card("0000000000000000")
    sandbox.drain()
    deliveries = sandbox.http.get("/_sandbox/deliveries").json()
    transaction = next(d for d in deliveries if d["type"] == "TRANSACTION")
    assert transaction["state"] == "delivered"
    assert [a["status"] for a in transaction["attempts"]] == [500, 503, 200]
    assert any(category == "callback-retry" for category, _ in sandbox.events)


def test_unreachable_callback_gives_up_and_keeps_serving(sandbox: Sandbox) -> None:
    sandbox.http.post("/_sandbox/callbacks", json={"callback_url": "http://127.0.0.1:9/nothing"})
    sandbox.pay_card("0000000000000000")
    sandbox.drain()
    failed = sandbox.http.get("/_sandbox/deliveries").json()[0]
    assert failed["state"] == "failed" and len(failed["attempts"]) == FAST.attempts
    assert any(
        "nothing is listening" in message
        for category, message in sandbox.events
        if category == "callback-failed"
    )
    assert sandbox.http.get("/healthz").json() == {"status": "ok"}


def test_callback_urls_change_while_running(sandbox: Sandbox) -> None:
    new = f"{sandbox.merchant_url}/other/hook"
    assert (
        sandbox.http.post("/_sandbox/callbacks", json={"callback_url": new}).json()["callback_url"]
        == new
    )
    bad = sandbox.http.post("/_sandbox/callbacks", json={"callback_url": "ftp://x"})
    assert bad.status_code == 400 and "invalid URL" in bad.json()["callback_url"][0]
    sandbox.pay_card("0000000000000000")
    sandbox.drain()
    assert sandbox.merchant.requests[-1].path == "/other/hook"


def test_hmac_secret_and_integrations(sandbox: Sandbox) -> None:
    token = sandbox.token()
    assert sandbox.http.get("/api/auth/hmac_secret/get_hmac", params={"token": token}).json() == {
        "hmac_secret": SANDBOX.hmac_secret
    }
    listing = sandbox.http.get(
        "/api/ecommerce/integrations", headers={"Authorization": f"Bearer {token}"}
    ).json()
    by_id = {i["id"]: i for i in listing["results"]}
    assert (
        by_id[SANDBOX.integration_id]["currency"] == "EGP"
        and by_id[SANDBOX.integration_id]["is_live"] is False
    )
    assert by_id[SANDBOX.moto_integration_id]["integration_type"] == "moto"
    assert by_id[SANDBOX.auth_integration_id]["is_auth"] is True
    assert sandbox.http.get("/api/ecommerce/integrations").status_code == 401
    index = sandbox.http.get("/")
    assert SANDBOX.api_key in index.text and "Test cards" in index.text


@contextmanager
def persisted_sandbox(path: Path, clock: Clock | None = None) -> Iterator[httpx.Client]:
    """A sandbox keeping its state in the store at `path`, and a client for it."""
    app = create_app(persistence=StorePersistence(Store(path)), clock=clock)
    with in_process(app) as base, httpx.Client(base_url=base) as http:
        yield http


def auth_token(http: httpx.Client) -> str:
    return str(http.post("/api/auth/tokens", json={"api_key": SANDBOX.api_key}).json()["token"])


def test_state_persists_across_restarts(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    order = {"amount_cents": 500, "currency": "EGP", "delivery_needed": False}
    with persisted_sandbox(path) as http:
        first = http.post(
            "/api/ecommerce/orders",
            json={"auth_token": auth_token(http), **order, "merchant_order_id": "KEEP"},
        ).json()
    with persisted_sandbox(path) as http:
        token = auth_token(http)
        kept = http.get(f"/api/ecommerce/orders/{first['id']}", params={"token": token})
        assert kept.status_code == 200 and kept.json()["merchant_order_id"] == "KEEP"
        second = http.post("/api/ecommerce/orders", json={"auth_token": token, **order}).json()
        assert second["id"] == first["id"] + 1
        dup = http.post(
            "/api/ecommerce/orders",
            json={"auth_token": token, **order, "amount_cents": 5, "merchant_order_id": "KEEP"},
        )
        assert dup.status_code == 422


def test_state_keeps_auth_tokens_hashed_and_drops_expired_ones(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    clock = Clock()
    with persisted_sandbox(path, clock) as http:
        token = auth_token(http)
    assert token not in path.read_bytes().decode("utf-8", "replace")
    order = {"amount_cents": 500, "currency": "EGP", "delivery_needed": False}
    with persisted_sandbox(path, clock) as http:
        # A client that authenticated before the restart keeps working (tokens last an hour).
        kept = http.post("/api/ecommerce/orders", json={"auth_token": token, **order})
        assert kept.status_code == 201, kept.text
    clock.now += timedelta(hours=2)
    with persisted_sandbox(path, clock) as http:
        expired = http.post("/api/ecommerce/orders", json={"auth_token": token, **order})
        assert expired.status_code == 401


def test_expired_auth_tokens_are_forgotten() -> None:
    from paymobctl.emulator.state import Sandbox as State

    clock = Clock()
    forgotten: list[str] = []

    class Recording:
        def save(self, kind: str, key: str, value: Any) -> None:
            del kind, key, value

        def forget(self, kind: str, keys: Any) -> None:
            forgotten.extend(f"{kind}:{k}" for k in keys)

        def load(self) -> dict[str, list[dict[str, Any]]]:
            return {}

    state = State(persistence=Recording(), clock=clock)
    old = state.authenticate({"api_key": SANDBOX.api_key})["token"]
    clock.now += timedelta(hours=2)
    for _ in range(1100):  # far more tokens than any client needs: the table prunes itself
        state.authenticate({"api_key": SANDBOX.api_key})
    assert len(forgotten) == 1 and forgotten[0].startswith("auth:")
    assert len(state.auth_tokens) == 1100
    with pytest.raises(Exception, match="incorrect credentials"):
        state.check_auth_token(old)


def test_persisted_auth_records_are_never_masked(tmp_path: Path) -> None:
    # A sha256 hex digest can hold a Luhn-valid run of digits; masking it would make the token
    # unknown after a restart.
    digest = "4111111111111111" + "a" * 48
    store = Store(tmp_path / "state.db")
    StorePersistence(store).save("auth", digest, {"sha256": digest, "expires": 1e12})
    StorePersistence(store).save("order", "1", {"note": "card 4111111111111111"})
    loaded = store.load_sandbox_objects()
    assert loaded["auth"] == [{"sha256": digest, "expires": 1e12}]
    assert "4111111111111111" not in json.dumps(loaded["order"])  # request data still masked


def test_expired_auth_rows_are_deleted_on_start(tmp_path: Path) -> None:
    from paymobctl.emulator.state import Sandbox as State

    clock = Clock()
    store = Store(tmp_path / "state.db")
    state = State(persistence=StorePersistence(store), clock=clock)
    for _ in range(3):
        state.authenticate({"api_key": SANDBOX.api_key})
    assert len(store.load_sandbox_objects()["auth"]) == 3
    clock.now += timedelta(hours=2)
    restarted = State(persistence=StorePersistence(store), clock=clock)
    assert restarted.auth_tokens == {} and "auth" not in store.load_sandbox_objects()


def test_forged_auth_token_text_is_a_401(sandbox: Sandbox) -> None:
    response = sandbox.http.post(
        "/api/ecommerce/orders",
        content=b'{"auth_token": "\\ud800", "amount_cents": 1, "currency": "EGP"}',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 401 and response.json() == {"detail": "incorrect credentials"}


def test_generated_identifiers_never_read_as_card_numbers(monkeypatch: pytest.MonkeyPatch) -> None:
    from paymobctl.emulator import context as state
    from paymobctl.models import mask_pans

    candidates = iter(["4111111111111111" + "ab" * 8, "c0ffee" * 6])
    monkeypatch.setattr(state.secrets, "token_hex", lambda n: next(candidates))
    assert state.hex_id(16) == "c0ffee" * 6
    monkeypatch.undo()
    for _ in range(2000):
        assert mask_pans(state.hex_id(16))[1] == 0


def test_no_time_in_a_sandbox_callback_is_after_it_became_final(sandbox: Sandbox) -> None:
    """Acceptance review: data.created_at and the MIGS times came out after updated_at."""
    for number in ("0000 0000 0000 0000", "0000000000001111", "0000000000002222"):
        sandbox.pay_card(number, save=True)
    key, _ = sandbox.key(integration=SANDBOX.wallet_integration_id)
    page = urlsplit(sandbox.pay(key, "01010101010", "WALLET").json()["iframe_redirection_url"])
    sandbox.http.post(page.path, data={"mpin": "123456", "otp": "123456"})
    sandbox.drain()
    transactions = [obj for kind, obj, _ in sandbox.callbacks() if kind == "TRANSACTION"]
    assert len(transactions) == 4
    for obj in transactions:
        assert_nothing_after(obj, sandbox.clock.now, Region.EG)


def test_expired_cards_are_declined_and_the_card_list_is_in_the_future(sandbox: Sandbox) -> None:
    from datetime import date

    from paymobctl.emulator import cards

    query = redirect_query(sandbox.pay_card("0000000000000000", ("12", "25")))
    assert query["success"] == "false" and query["txn_response_code"] == "EXPIRED_CARD"
    assert query["data.message"] == "Expired card"
    today = date.today()
    for card in cards.TEST_CARDS:
        month, year = card.expiry_shown(today).split("/")
        assert (2000 + int(year), int(month)) > (today.year, today.month), card
        assert not cards.is_expired(card.expiry_shown(today), today)
    assert cards.is_expired("11/26", date(2026, 12, 2)) and not cards.is_expired(
        "12/26", date(2026, 12, 2)
    )


def test_emitted_urls_use_the_real_host_and_port(sandbox: Sandbox) -> None:
    order = sandbox.order(100)
    base = str(sandbox.http.base_url).rstrip("/")
    assert order["order_url"].startswith(f"{base}/standalone/") and "8010" not in base
    assert order["url"].startswith(f"{base}/")
