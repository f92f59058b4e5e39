"""Issue 10 §1: listen acts only on what the HMAC covers. Each attack, against a real receiver."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from paymobctl import signing
from paymobctl.delivery import wire_json
from paymobctl.errors import ExitCode
from paymobctl.models import CallbackKind, Outcome, Verdict
from paymobctl.payments import Tick, wait_for_payment
from paymobctl.receiver import Receiver
from paymobctl.sandbox_profile import SANDBOX, WEBHOOK_PATH
from paymobctl.store import Deposit, Store

from .conftest import run_cli
from .test_listen import (
    SECRET,
    Listener,
    legacy_deposit,
    listener,
    signed,
    transaction,
    wait_for,
)
from .test_payments import Stack, run_in_thread, stack

__all__ = ["listener", "stack"]  # fixtures used by name

ATTACKER_ORDER = 307781192
VICTIM_ORDER = 307781999


def deposit_of(store: Store, order_id: int, cents: int) -> Deposit:
    deposit = legacy_deposit(store, order_id, save_card=False)
    if cents != deposit.amount_cents:  # legacy_deposit makes 50.00 EGP ones
        store._write("UPDATE deposits SET amount_cents = ? WHERE id = ?", (cents, deposit.id))
    fresh = store.deposit(deposit.id)
    assert fresh is not None
    return fresh


def field_shift(obj: dict[str, Any], victim_order: int) -> dict[str, Any]:
    """The forgery of issue 10: ``order`` as a bare int (its signed ``order.id`` renders empty),
    the attacker's own order digits moved into the front of ``owner``."""
    forged = copy.deepcopy(obj)
    own = forged["order"]["id"]
    forged["order"] = victim_order
    forged["owner"] = int(f"{own}{forged['owner']}")
    return forged


def test_field_shift_forgery_verifies_bare_but_is_refused(listener: Listener) -> None:
    victim = deposit_of(listener.store, VICTIM_ORDER, 5000)
    genuine, digest = signed(transaction(seed=21, order_id=ATTACKER_ORDER, amount_cents=5000))
    forged = {**genuine, "obj": field_shift(genuine["obj"], VICTIM_ORDER)}
    # The attack is real: the bare HMAC (no shape check) accepts the forged body.
    assert signing.verify(
        CallbackKind.TRANSACTION, forged["obj"], SECRET, digest, check_shapes=False
    ).valid
    response = listener.post(forged, hmac=digest)
    assert response.status_code == 400
    assert "order is an integer, not an object" in response.json()["detail"]
    event = listener.store.events()[0]
    assert event.verdict == Verdict.MALFORMED and event.status == 400
    assert event.problem is not None and "signed order.id renders empty" in event.problem
    assert event.order_id is None  # the bare int is never taken as the order
    after = listener.store.deposit(victim.id)
    assert after is not None and after.status == "pending"
    assert listener.log[-1].verdict == Verdict.MALFORMED and listener.log[-1].effect is None


def test_float_id_cannot_replay_a_refund(listener: Listener) -> None:
    store = listener.store
    deposit = deposit_of(store, 4242, 5000)
    payment, digest = signed(transaction(seed=22, order_id=4242, amount_cents=5000))
    assert listener.post(payment, hmac=digest).status_code == 200
    refund, refund_digest = signed(
        transaction(
            seed=23,
            order_id=4242,
            amount_cents=1000,
            outcome=Outcome.REFUND,
            parent_transaction_id=payment["obj"]["id"],
        )
    )
    assert listener.post(refund, hmac=refund_digest).status_code == 200
    assert listener.log[-1].effect == "deposit refund recorded"
    # The float id renders like the integer, so the HMAC still matches; it is refused by shape.
    replay = copy.deepcopy(refund)
    replay["obj"]["id"] = float(refund["obj"]["id"])
    assert b".0," in wire_json(replay)
    response = listener.post(replay, hmac=refund_digest)
    assert response.status_code == 400 and "decimal number" in response.json()["detail"]
    assert listener.log[-1].verdict == Verdict.MALFORMED
    # Digits moved between the adjacent id and integration_id: same signature, so a duplicate.
    shifted = copy.deepcopy(refund)
    text = f"{refund['obj']['id']}{refund['obj']['integration_id']}"
    shifted["obj"]["id"], shifted["obj"]["integration_id"] = int(text[:-1]), int(text[-1])
    assert listener.post(shifted, hmac=refund_digest).status_code == 200
    assert listener.log[-1].duplicate and listener.log[-1].effect is None
    after = store.deposit(deposit.id)
    assert after is not None and after.refunded_cents == 1000 and after.status == "paid"


def test_unsigned_is_refund_is_a_warning_never_an_effect(listener: Listener) -> None:
    store = listener.store
    deposit = deposit_of(store, 5151, 5000)
    payment, digest = signed(transaction(seed=24, order_id=5151, amount_cents=5000))
    tampered = copy.deepcopy(payment)
    tampered["obj"]["is_refund"] = True  # not signed: the HMAC still matches
    assert listener.post(tampered, hmac=digest).status_code == 200
    item = listener.log[-1]
    assert item.verdict == "valid" and item.effect == "deposit paid"
    assert item.problem is not None and "unsigned is_refund=true ignored" in item.problem
    # Replaying the genuine payment with is_refund added: the same signature, stored once.
    assert listener.post(tampered, hmac=digest).status_code == 200
    assert listener.log[-1].duplicate and listener.log[-1].effect is None
    after = store.deposit(deposit.id)
    assert after is not None and after.status == "paid" and after.refunded_cents == 0


def test_refunds_add_up_to_at_most_the_amount_paid(listener: Listener) -> None:
    store = listener.store
    deposit = deposit_of(store, 6161, 5000)
    payment, digest = signed(transaction(seed=25, order_id=6161, amount_cents=5000))
    listener.post(payment, hmac=digest)
    for seed, cents in ((26, 3000), (27, 3000)):
        refund, refund_digest = signed(
            transaction(seed=seed, order_id=6161, amount_cents=cents, outcome=Outcome.REFUND)
        )
        listener.post(refund, hmac=refund_digest)
    assert listener.log[-1].effect is not None and "amount mismatch" in listener.log[-1].effect
    after = store.deposit(deposit.id)
    assert after is not None and after.refunded_cents == 3000 and after.status == "paid"


def test_one_egp_signed_for_a_750_egp_deposit_is_an_amount_mismatch(listener: Listener) -> None:
    store = listener.store
    victim = deposit_of(store, VICTIM_ORDER, 75000)
    body, digest = signed(transaction(seed=28, order_id=VICTIM_ORDER, amount_cents=100))
    assert listener.post(body, hmac=digest).status_code == 200  # genuine: acknowledged, stored
    item = listener.log[-1]
    assert (
        item.verdict == "valid"
        and item.effect == f"amount mismatch (deposit {victim.id} unchanged)"
    )
    event = store.events()[0]
    assert event.problem is not None and "amount mismatch: signed 1.00 EGP" in event.problem
    assert "750.00 EGP" in event.problem
    after = store.deposit(victim.id)
    assert after is not None and after.status == "pending" and after.transaction_id is None
    assert store.amount_mismatch(VICTIM_ORDER) is not None
    # Another currency is a mismatch too.
    body, digest = signed(
        transaction(seed=29, order_id=VICTIM_ORDER, amount_cents=75000, currency="USD")
    )
    listener.post(body, hmac=digest)
    assert "amount mismatch" in (listener.log[-1].effect or "")
    assert store.deposit(victim.id).status == "pending"  # type: ignore[union-attr]


def test_events_show_and_listen_line_say_amount_mismatch(listener: Listener) -> None:
    from paymobctl.cli.listen_cmd import format_received

    deposit_of(listener.store, VICTIM_ORDER, 75000)
    body, digest = signed(transaction(seed=30, order_id=VICTIM_ORDER, amount_cents=100))
    listener.post(body, hmac=digest)
    assert "amount mismatch" in format_received(listener.log[-1], color=False)


@pytest.mark.slow
def test_deposit_wait_does_not_print_paid_for_a_smaller_amount(stack: Stack) -> None:
    thread, box = run_in_thread(["deposit", "750", "--wait", "--interval", "0.5", "--timeout", "4"])
    store = stack.store()
    wait_for(lambda: bool(store.deposits(status="pending", limit=1)) or "result" in box)
    assert "result" not in box, box["result"].output
    deposit = store.deposits(status="pending", limit=1)[0]
    forged = transaction(seed=31, order_id=deposit.order_id, amount_cents=100)
    httpx.post(
        f"{stack.listener}{WEBHOOK_PATH}?hmac={forged.sign(SANDBOX.hmac_secret)}",
        content=wire_json(forged.body),
        headers={"Content-Type": "application/json"},
    )
    thread.join(timeout=30)
    result = box["result"]
    assert result.code == int(ExitCode.TIMEOUT), result.output
    assert "amount mismatch" in result.output and "Paid" not in result.stdout
    after = store.deposit(deposit.id)
    assert after is not None and after.status == "pending"
    shown = run_cli("events", "show", str(store.events()[0].id))
    assert "amount mismatch" in shown.output


class FakeInquiry:
    """Paymob's inquiry answering a 1 EGP success for the deposit's order."""

    def __init__(self, transaction: dict[str, Any]) -> None:
        self.transaction = transaction
        self.calls = 0

    def inquiry(self, *, order_id: int) -> dict[str, Any]:
        self.calls += 1
        return self.transaction


def test_wait_compares_the_inquiry_amount_before_paid(tmp_path: Path) -> None:
    store = Store(tmp_path / "w.db")
    deposit = deposit_of(store, VICTIM_ORDER, 75000)
    obj = transaction(seed=32, order_id=VICTIM_ORDER, amount_cents=100).obj
    fake = FakeInquiry(obj)
    ticks: list[Tick] = []
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    outcome = wait_for_payment(
        fake,  # type: ignore[arg-type]
        store,
        deposit.id,
        interval=1,
        timeout=3,
        on_tick=ticks.append,
        clock=lambda: now[0],
        sleep=sleep,
    )
    assert outcome.status == "none" and fake.calls >= 2
    assert any("amount mismatch" in t.state and "1.00 EGP" in t.state for t in ticks)
    after = store.deposit(deposit.id)
    assert after is not None and after.status == "pending"
    obj["amount_cents"] = 75000  # the right amount: paid
    now[0] = 0.0
    assert (
        wait_for_payment(
            fake,  # type: ignore[arg-type]
            store,
            deposit.id,
            interval=1,
            timeout=3,
            clock=lambda: now[0],
            sleep=sleep,
        ).status
        == "paid"
    )


def test_hmac_verify_explain_names_the_shape_trick(hermetic: Path) -> None:
    genuine, digest = signed(transaction(seed=33, order_id=ATTACKER_ORDER))
    forged = {**genuine, "obj": field_shift(genuine["obj"], VICTIM_ORDER)}
    (hermetic / "forged.json").write_text(json.dumps(forged))
    (hermetic / "secret").write_text(SECRET)
    result = run_cli(
        "hmac", "verify", "forged.json", "--hmac", digest, "--secret-file", "secret", "--explain"
    )
    assert result.code == int(ExitCode.FAILED), result.output
    assert "order is an integer, not an object: the signed order.id renders empty" in result.output
    assert "only because of the fields' JSON shapes" in result.output
    plain = run_cli("hmac", "verify", "forged.json", "--hmac", digest, "--secret-file", "secret")
    assert plain.code == int(ExitCode.FAILED)


def test_real_samples_have_the_strict_shapes() -> None:
    """Every real callback kept in tests/data passes the shape check (no false refusals)."""
    for path in sorted((Path(__file__).parent / "data" / "real-samples").glob("*.json")):
        sample = json.loads(path.read_text())
        if "body" in sample:
            kind = CallbackKind(sample["kind"])
            obj = sample["body"]["obj"]
        else:
            kind, obj = CallbackKind.RESPONSE, signing.parse_query(sample["url"]).data
        assert signing.shape_problems(kind, obj) == (), path.name
        if sample.get("secret"):
            assert signing.verify(kind, obj, sample["secret"], sample["hmac"]).valid, path.name


# --- properties: never 5xx, never "valid" when a signed field is misshapen ---------------------

WRONG = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-5, max_value=10**6),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
PATHS = [f.post_path for f in signing.TRANSACTION_FIELDS] + ["order", "source_data"]


def _set(obj: dict[str, Any], path: str, value: Any) -> None:
    target = obj
    parts = path.split(".")
    for part in parts[:-1]:
        target = target[part]
    target[parts[-1]] = value


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(path=st.sampled_from(PATHS), value=WRONG)
def test_receiver_never_calls_a_misshapen_payload_valid(path: str, value: Any) -> None:
    receiver = Receiver(None, SECRET)  # type: ignore[arg-type]  # classification is pure
    obj = copy.deepcopy(transaction(seed=34).obj)
    _set(obj, path, value)
    wellformed = signing.shape_problems(CallbackKind.TRANSACTION, obj) == ()
    digest = signing.compute(CallbackKind.TRANSACTION, obj, SECRET)  # signs whatever renders
    body = json.dumps({"type": "TRANSACTION", "obj": obj}).encode()
    outcome = receiver.classify_post(body, f"hmac={digest}", "application/json")
    assert outcome.status < 500
    if wellformed:
        assert outcome.status == 200 and outcome.fields["verdict"] == "valid"
    else:
        assert outcome.status == 400 and outcome.fields["verdict"] == Verdict.MALFORMED


def test_get_redirect_and_token_shapes(listener: Listener) -> None:
    from urllib.parse import urlencode

    from paymobctl import callbacks, redirects

    txn = transaction(seed=35)
    query = dict(redirects.redirect_params(txn.obj, None))  # as Paymob flattens it (§7.2)
    query.pop("hmac", None)
    good = signing.compute(CallbackKind.RESPONSE, query, SECRET)
    ok = listener.http.get(f"/api/payments/response/?{urlencode({**query, 'hmac': good})}")
    assert ok.status_code == 200
    for key, value in (("success", "True"), ("order", f"0{query['order']}"), ("id", "1.0")):
        bad = {**query, key: value}
        digest = signing.compute(CallbackKind.RESPONSE, bad, SECRET)
        response = listener.http.get(
            f"/api/payments/response/?{urlencode({**bad, 'hmac': digest})}"
        )
        assert response.status_code == 400, (key, value)
        assert listener.log[-1].verdict == Verdict.MALFORMED
    token = callbacks.build_token(callbacks.token_spec_for(txn.obj, seed=35))
    body, digest = signed(token)
    assert listener.post(body, hmac=digest).status_code == 200
    shifted = copy.deepcopy(body)
    shifted["obj"]["merchant_id"] = str(body["obj"]["merchant_id"])  # a string, not an int
    assert listener.post(shifted, hmac=digest).status_code == 400
    assert listener.log[-1].verdict == Verdict.MALFORMED


def test_status_and_wait_record_an_inquiry_only_when_it_fits(tmp_path: Path) -> None:
    from paymobctl.payments import record_inquiry

    store = Store(tmp_path / "s.db")
    deposit = deposit_of(store, VICTIM_ORDER, 75000)
    obj = transaction(seed=36, order_id=VICTIM_ORDER, amount_cents=100).obj
    outcome, mismatch = record_inquiry(store, deposit, obj)
    assert outcome.status == "paid" and mismatch is not None and "1.00 EGP" in mismatch
    assert store.deposit(deposit.id).status == "pending"  # type: ignore[union-attr]
    other = transaction(seed=37, order_id=VICTIM_ORDER + 1, amount_cents=75000).obj
    assert record_inquiry(store, deposit, other)[1] is not None  # another order
    obj["amount_cents"] = 75000
    assert record_inquiry(store, deposit, obj)[1] is None
    assert store.deposit(deposit.id).status == "paid"  # type: ignore[union-attr]
    store.close()


def test_a_stale_inquiry_never_downgrades_a_paid_deposit(tmp_path: Path) -> None:
    """Every path applies payments.deposit_change under the same status guard: an inquiry that
    read the deposit while pending cannot turn it declined once something marked it paid."""
    from paymobctl.payments import record_inquiry

    store = Store(tmp_path / "s.db")
    stale = deposit_of(store, VICTIM_ORDER, 75000)
    paid = transaction(seed=38, order_id=VICTIM_ORDER, amount_cents=75000).obj
    assert record_inquiry(store, stale, paid)[0].status == "paid"
    declined = {**paid, "success": False}
    outcome, mismatch = record_inquiry(store, stale, declined)  # stale: still says pending
    assert outcome.status == "declined" and mismatch is None
    assert store.deposit(stale.id).status == "paid"  # type: ignore[union-attr]
    store.close()
