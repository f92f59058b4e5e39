"""The sandbox's parts on their own: its TRANSACTION callbacks have the template's shape, billing
is checked by one rule for keys and intentions, and the facade's tables are its parts' tables."""

from __future__ import annotations

import json
from typing import Any

import pytest

from paymobctl import callbacks
from paymobctl.callbacks import TransactionSpec
from paymobctl.emulator import cards
from paymobctl.emulator.state import Sandbox, SandboxError
from paymobctl.emulator.validation import billing_error
from paymobctl.models import CallbackKind, KeyFlow, Outcome, PaymentSource
from paymobctl.sandbox_profile import SANDBOX

BILLING = {
    "first_name": "Mona", "last_name": "Adel", "email": "mona@example.com",
    "phone_number": "+201234567890", "apartment": "NA", "floor": "NA", "street": "NA",
    "building": "NA", "shipping_method": "NA", "postal_code": "NA", "city": "NA",
    "country": "EG", "state": "NA",
}  # fmt: skip


def kinds(value: Any, prefix: str = "") -> dict[str, str]:
    """Every field path and its JSON type (``null`` as ``NoneType``; lists by their path)."""
    found = {prefix: type(value).__name__} if prefix else {}
    if isinstance(value, dict):
        for key, child in value.items():
            found.update(kinds(child, f"{prefix}.{key}" if prefix else key))
    return found


def sent_transaction(sandbox: Sandbox, integration_id: int, number: str) -> dict[str, Any]:
    """The body of the TRANSACTION callback a card payment in ``sandbox`` sends."""
    order = sandbox.create_order(
        {"amount_cents": 10000, "currency": "EGP", "delivery_needed": False, "items": []}
    )
    key = sandbox.create_payment_key(
        {
            "amount_cents": 10000,
            "order_id": order.id,
            "billing_data": BILLING,
            "currency": "EGP",
            "integration_id": integration_id,
        }
    )
    entry = cards.check_entry(number, "Test Account", "12", "39", "123")
    assert isinstance(entry, cards.CardEntry)
    done = sandbox.completion(sandbox.pay_with_card(key, entry, save_card=False))
    (item,) = [o for o in done.outbound if o.kind is CallbackKind.TRANSACTION]
    body = json.loads(item.request.body or b"{}")
    assert isinstance(body, dict)
    return body


@pytest.mark.parametrize(
    ("number", "outcome"),
    [("0000000000000000", Outcome.APPROVED), ("0000000000001111", Outcome.DECLINED)],
)
def test_sandbox_transaction_has_the_templates_keys_and_types(
    number: str, outcome: Outcome
) -> None:
    sandbox = Sandbox(callback_url="http://127.0.0.1:9/hook")
    body = sent_transaction(sandbox, SANDBOX.moto_integration_id, number)
    template = callbacks.build_transaction(
        TransactionSpec(outcome=outcome, source=PaymentSource.CARD, flow=KeyFlow.LEGACY, seed=1)
    ).body
    assert list(body) == list(template)  # the envelope: same keys, same order
    ours, theirs = kinds(body), kinds(template)
    assert sorted(set(ours) ^ set(theirs)) == []
    # Types agree wherever both have a value (a null in either is the template's choice).
    assert {
        path: (theirs[path], ours[path])
        for path in theirs
        if theirs[path] != ours[path] and "NoneType" not in (theirs[path], ours[path])
    } == {}


def test_billing_is_one_rule_for_keys_and_intentions() -> None:
    required = ["This field is required."]
    assert billing_error("x", strict_presence=True) == required
    assert billing_error({**BILLING, "email": " "}, strict_presence=False) == {
        "email": ["This field may not be blank."]
    }
    assert billing_error({"first_name": "a", "last_name": "b", "email": "e", "phone_number": "1"},
                         strict_presence=False) is None  # fmt: skip
    assert set(billing_error({"first_name": "a"}, strict_presence=True)) == {
        "last_name", "email", "phone_number", "apartment", "floor", "street", "building",
        "shipping_method", "postal_code", "city", "country", "state",
    }  # fmt: skip
    sandbox = Sandbox()
    order = sandbox.create_order({"amount_cents": 100, "currency": "EGP", "delivery_needed": False})
    bad = {"first_name": "", "last_name": "b", "email": "e", "phone_number": "1"}
    with pytest.raises(SandboxError) as key_error:
        sandbox.create_payment_key(
            {"amount_cents": 100, "order_id": order.id, "billing_data": bad, "currency": "EGP",
             "integration_id": SANDBOX.integration_id}
        )  # fmt: skip
    with pytest.raises(SandboxError) as intention_error:
        sandbox.create_intention(
            {"amount": 100, "currency": "EGP", "payment_methods": [SANDBOX.integration_id],
             "billing_data": bad}
        )  # fmt: skip
    first_name = ["This field may not be blank."]
    assert key_error.value.body["billing_data"]["first_name"] == first_name
    assert intention_error.value.body == {"billing_data": {"first_name": first_name}}


def test_the_facade_shows_its_parts_state() -> None:
    sandbox = Sandbox(callback_url="http://127.0.0.1:9/hook")
    sent_transaction(sandbox, SANDBOX.moto_integration_id, "0000000000000000")
    assert sandbox.orders is sandbox.tables.orders and len(sandbox.orders) == 1
    assert sandbox.transactions is sandbox.tables.transactions and len(sandbox.transactions) == 1
    assert [d.kind for d in sandbox.recent_deliveries(10)] == ["TRANSACTION"]
    (txn,) = sandbox.recent_transactions(10)
    refund = sandbox.manage("refund", {"transaction_id": txn.id, "amount_cents": 100})
    assert refund.obj["parent_transaction"] == txn.id and refund.parent_id == txn.id
    sandbox.base_url = "http://127.0.0.1:1234"
    assert sandbox.order_object(sandbox.orders[txn.order_id])["url"].startswith(sandbox.base_url)
    sandbox.reset()
    assert sandbox.pristine() and not sandbox.orders


def test_refund_void_capture_take_a_secret_key_or_an_auth_token() -> None:
    sandbox = Sandbox()
    token = sandbox.authenticate({"api_key": SANDBOX.api_key})["token"]
    sandbox.check_token_or_secret_key(f"Token {SANDBOX.secret_key}", None)
    sandbox.check_token_or_secret_key(None, token)
    sandbox.check_token_or_secret_key(f"Bearer {token}", token)
    with pytest.raises(SandboxError):
        sandbox.check_token_or_secret_key("Token egy_sk_test_wrong", token)
    with pytest.raises(SandboxError):
        sandbox.check_token_or_secret_key(None, "forged")
