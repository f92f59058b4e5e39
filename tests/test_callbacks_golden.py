"""Golden outputs of the callback builders and the signer: byte for byte what they produced before
the prototype cache and the signing fast path (issue 14), for every outcome × source × region,
both key flows, explicit ids and times, unseeded draws (through the ``_rng`` seam), the testing
API with ``set=`` overrides, and ``signing.compute`` on odd data.

Regenerate only when a payload change is intended: ``python tests/test_callbacks_golden.py``.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import random
import sys
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from paymobctl import callbacks, delivery, redirects, signing, testing
from paymobctl.callbacks import Customer, OrderSpec, TokenSpec, TransactionSpec
from paymobctl.errors import UsageError
from paymobctl.models import CardBrand, KeyFlow, Outcome, PaymentSource, Region
from paymobctl.signing import CallbackKind

GOLDEN = Path(__file__).parent / "data" / "callbacks-golden.json"
SECRET = "golden-secret-ÿ"  # non-ASCII: the key is the secret as UTF-8
NOW = datetime(2026, 7, 14, 9, 30, 15, 123456, tzinfo=UTC)  # Cairo summer time
WINTER = datetime(2026, 1, 20, 22, 59, 59, 999999, tzinfo=UTC)


def _wire(value: Any) -> str:
    return hashlib.sha256(delivery.wire_json(value)).hexdigest()


def _callback(build: Callable[[], callbacks.Callback]) -> Callable[[], str]:
    def run() -> str:
        try:
            built = build()
        except UsageError as error:
            return f"UsageError: {error}"
        extras = ""
        if built.kind is CallbackKind.TRANSACTION:
            params = redirects.redirect_params(built.obj, built.sign(SECRET))
            extras = f" redirect {redirects.encode_params(params)}"
            extras += f" pay {_wire(redirects.pay_response(built.obj, built.sign(SECRET)))}"
        return f"{built.kind.value} {_wire(built.body)} {built.sign(SECRET)}{extras}"

    return run


def _seeded(index: int) -> int:
    return 1000 + index * 7


def _transactions() -> Iterator[tuple[str, Callable[[], str]]]:
    matrix = itertools.product(Outcome, PaymentSource, Region)
    for index, (outcome, source, region) in enumerate(matrix):
        spec = TransactionSpec(outcome=outcome, source=source, region=region, seed=_seeded(index))
        yield (
            f"txn {outcome}/{source}/{region}",
            _callback(lambda s=spec: callbacks.build_transaction(s)),
        )
    variations: dict[str, TransactionSpec] = {
        "legacy": TransactionSpec(flow=KeyFlow.LEGACY, seed=11),
        "legacy-ksa-wallet": TransactionSpec(
            flow=KeyFlow.LEGACY, region=Region.KSA, source=PaymentSource.WALLET, seed=12
        ),
        "auth": TransactionSpec(is_auth=True, seed=13),
        "auth-ksa": TransactionSpec(is_auth=True, region=Region.KSA, seed=13),
        "auth-declined": TransactionSpec(is_auth=True, outcome=Outcome.DECLINED, seed=14),
        "auth-capture": TransactionSpec(is_auth=True, outcome=Outcome.CAPTURE, seed=15),
        "live-visa": TransactionSpec(is_live=True, brand=CardBrand.VISA, seed=16),
        "live-uae-wallet": TransactionSpec(
            is_live=True, region=Region.UAE, source=PaymentSource.WALLET, seed=17
        ),
        "given-everything": TransactionSpec(
            outcome=Outcome.DECLINED,
            amount_cents=25050,
            currency="usd",
            order_id=123456789,
            merchant_order_id="shop-42",
            transaction_id=987654321,
            parent_transaction_id=5,
            integration_id=42,
            merchant_id=43,
            profile_id=44,
            pan_last4="9876",
            wallet_number="01099999999",
            customer=Customer("Ünïcode", "Ω", "a+b@example.com", "+200000000000"),
            decline_code="57",
            created_at=NOW - timedelta(minutes=3),
            updated_at=NOW,
            seed=18,
            bill_reference=777,
            payer_ip="10.0.0.1",
            next_payment_intention="pi_test_given",
        ),
        "unknown-decline-code": TransactionSpec(
            outcome=Outcome.DECLINED, decline_code="99", seed=19
        ),
        "refund-given-parent": TransactionSpec(
            outcome=Outcome.REFUND, parent_transaction_id=300000000, seed=20
        ),
        "odd-amount-jod": TransactionSpec(amount_cents=12345, currency="JOD", seed=21),
        "zero-amount": TransactionSpec(amount_cents=0, seed=22),
        "winter-created": TransactionSpec(created_at=WINTER, seed=23),
        "winter-created-pk": TransactionSpec(created_at=WINTER, region=Region.PAKISTAN, seed=23),
        "bad-last4": TransactionSpec(pan_last4="12a4", seed=24),
    }
    for name, spec in variations.items():
        yield f"txn {name}", _callback(lambda s=spec: callbacks.build_transaction(s))
    # Unseeded: ids and times drawn from a Random the test fixes, times from ``now``.
    unseeded: dict[str, TransactionSpec] = {
        "now": TransactionSpec(),
        "now-kiosk-oman": TransactionSpec(source=PaymentSource.KIOSK, region=Region.OMAN),
        "sandbox-like": TransactionSpec(
            outcome=Outcome.APPROVED,
            transaction_id=400000001,
            order_id=400000002,
            created_at=NOW - timedelta(seconds=40),
            updated_at=NOW,
            is_auth=True,
        ),
        "sandbox-like-ksa": TransactionSpec(
            region=Region.KSA,
            source=PaymentSource.WALLET,
            transaction_id=400000003,
            order_id=400000004,
            created_at=NOW - timedelta(seconds=1),
            updated_at=NOW,
        ),
        "updated-before-created": TransactionSpec(created_at=NOW, updated_at=NOW - timedelta(1)),
    }
    for index, (name, spec) in enumerate(unseeded.items()):
        yield (
            f"txn unseeded {name}",
            _unseeded(index, _callback(lambda s=spec: callbacks.build_transaction(s, now=NOW))),
        )


def _unseeded(index: int, run: Callable[[], str]) -> Callable[[], str]:
    def patched() -> str:
        with pytest.MonkeyPatch.context() as patch:
            draws = random.Random(424242 + index)
            original = callbacks._rng
            patch.setattr(callbacks, "_rng", lambda seed: draws if seed is None else original(seed))
            return run()

    return patched


def _tokens() -> Iterator[tuple[str, Callable[[], str]]]:
    for index, region in enumerate(Region):
        spec = TokenSpec(order_id=300000000 + index, region=region, seed=index)
        yield f"token {region}", _callback(lambda s=spec: callbacks.build_token(s, now=NOW))
    given = TokenSpec(
        order_id=5,
        email="x@y.z",
        card_subtype="Visa",
        pan_last4="1111",
        merchant_id=9,
        token="t" * 56,
        token_id=1234567,
        created_at=WINTER,
        region=Region.UAE,
        seed=3,
        next_payment_intention="pi_test_x",
    )
    yield "token given", _callback(lambda: callbacks.build_token(given))
    yield "token bad last4", _callback(lambda: callbacks.build_token(TokenSpec(1, pan_last4="x")))
    for index, (source, region) in enumerate(itertools.product(PaymentSource, Region)):
        spec = TransactionSpec(source=source, region=region, seed=50 + index)

        def follow(s: TransactionSpec = spec) -> callbacks.Callback:
            obj = callbacks.build_transaction(s).obj
            return callbacks.build_token(
                callbacks.token_spec_for(obj, seed=s.seed, region=s.region)
            )

        yield f"token after {source}/{region}", _callback(follow)
    yield (
        "token unseeded",
        _unseeded(99, _callback(lambda: callbacks.build_token(TokenSpec(order_id=7), now=NOW))),
    )
    for region in Region:
        yield (
            f"delivery status {region}",
            _callback(
                lambda r=region: callbacks.build_delivery_status(11, "Agent Out", region=r, now=NOW)
            ),
        )


def _parts() -> Iterator[tuple[str, Callable[[], str]]]:
    for region in Region:
        spec = OrderSpec(
            id=12, created_at="2026-01-01T10:00:00.000000", amount_cents=500, currency="EGP",
            region=region, merchant_order_id="m-1", paid_amount_cents=500,
            shipping_data={"first_name": "A", "id": 99, "unknown": 1},
            items=({"name": "x", "amount_cents": 500},), company_emails=None,
        )  # fmt: skip
        yield f"order {region}", lambda s=spec: _wire(callbacks.build_order(s, shipping_id=77))
    yield (
        "order default",
        lambda: _wire(callbacks.build_order(OrderSpec(1, "t", 1, "EGP"), shipping_id=2)),
    )
    for flow in KeyFlow:
        yield (
            f"claims {flow}",
            lambda f=flow: _wire(
                callbacks.payment_key_claims(
                    flow=f,
                    user_id=1,
                    amount_cents=2,
                    currency="EGP",
                    integration_id=3,
                    order_id=4,
                    billing={"first_name": "B", "email": "e"},
                    exp=5,
                    lock_order_when_paid=True,
                    extra={"k": [1]},
                    pmk_ip="1.2.3.4",
                    redirect_url="https://r",
                    next_payment_intention="pi",
                    optional={"notification_url": "https://n"},
                )
            ),
        )


def _testing_api() -> Iterator[tuple[str, Callable[[], str]]]:
    def signed(**options: Any) -> Callable[[], str]:
        def run() -> str:
            try:
                cb = testing.callback(**options)
            except UsageError as error:
                return f"UsageError: {error}"
            wire = cb.content
            body = "none" if wire is None else hashlib.sha256(wire).hexdigest()
            return f"{cb.kind} {body} {cb.hmac} {cb.query} {cb.url('/hook?hmac=old&a=1')}"

        return run

    combos = itertools.product(("transaction", "token", "response"), Outcome, PaymentSource)
    for index, (kind, outcome, source) in enumerate(combos):
        yield (
            f"testing {kind} {outcome}/{source}",
            signed(kind=kind, outcome=outcome, source=source, seed=_seeded(index)),
        )
    overrides: dict[str, dict[str, Any]] = {
        "pan": {"obj.source_data.pan": "1111"},
        "success-false": {"obj.success": False},
        "pending": {"obj.pending": True, "obj.success": False},
        "new-key": {"obj.extra_field": {"a": [1, None]}},
        "nested": {"obj.data.migs_order.status": "X", "obj.order.merchant_order_id": "ü"},
        "top": {"type": "X", "issuer_bank": "B"},
        "null-signed": {"obj.currency": None},
        "missing-parent": {"obj.nope.x": 1},
        "not-object": {"obj.id.x": 1},
    }
    for name, values in overrides.items():
        yield f"testing set {name}", signed(seed=5, set=values)
        yield f"testing response set {name}", signed(kind="response", seed=5, set=values)
    yield "testing options", signed(
        brand="Visa", order_id=77, merchant_order_id="mo", amount_cents=1, currency="USD",
        integration_id=8, secret="another", seed=6,
    )  # fmt: skip
    yield "testing unsigned", signed(signed=False, seed=6)
    yield "testing token unsigned", signed(kind="token", signed=False, seed=6)
    yield "testing bad outcome", signed(outcome="nope")


def _odd_data() -> Mapping[str, Any]:
    return callbacks.build_transaction(TransactionSpec(seed=1)).obj


def _compute() -> Iterator[tuple[str, Callable[[], str]]]:
    base = _odd_data()
    variants: dict[str, Callable[[dict[str, Any]], Any]] = {
        "plain": lambda o: o,
        "null-pan": lambda o: o["source_data"].update(pan=None),
        "no-source": lambda o: o.pop("source_data"),
        "order-int": lambda o: o.update(order=5),
        "order-list": lambda o: o.update(order=[1]),
        "floats": lambda o: o.update(amount_cents=100.0, id=1.5, owner=float("nan")),
        "texts": lambda o: o.update(amount_cents="100", success="true", currency=None),
        "nested": lambda o: o.update(owner={"a": [1, "ü"]}, is_auth=[True]),
        "unicode": lambda o: o.update(created_at="2026-01-01\ud800ü"),
        "int-subclass": lambda o: o.update(id=Outcome.APPROVED, integration_id=True, owner=1 << 70),
    }
    for name, change in variants.items():
        for kind in (CallbackKind.TRANSACTION, CallbackKind.TOKEN, CallbackKind.DELIVERY_STATUS):

            def run(
                change: Callable[[dict[str, Any]], Any] = change, kind: CallbackKind = kind
            ) -> str:
                obj = json.loads(json.dumps(base))
                change(obj)
                return " ".join(
                    signing.compute(kind, obj, secret) for secret in (SECRET, "", "k" * 200)
                )

            yield f"compute {kind} {name}", run
    query = dict(redirects.redirect_params(base, "x"))
    flat: dict[str, dict[str, Any]] = {
        "query": query,
        "aliases": {
            ("order_id" if k == "order" else k.replace(".", "_")): v for k, v in query.items()
        },
        "empty": {},
    }
    for name, data in flat.items():
        yield (
            f"compute response {name}",
            lambda d=data: signing.compute(CallbackKind.RESPONSE, d, SECRET),
        )


def cases() -> Iterator[tuple[str, Callable[[], str]]]:
    yield from _transactions()
    yield from _tokens()
    yield from _parts()
    yield from _testing_api()
    yield from _compute()


def record(*, full: bool = False) -> dict[str, str]:
    """Each case's result: errors as text, outputs as a SHA-256 of everything they produced."""
    seen: dict[str, str] = {}
    for name, run in cases():
        assert name not in seen, name
        text = run()
        short = text.startswith("UsageError") or full
        seen[name] = (
            text if short else hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
        )
    return seen


def test_builders_and_signer_match_the_golden_outputs() -> None:
    expected = json.loads(GOLDEN.read_text(encoding="utf-8"))
    actual = record()
    assert sorted(actual) == sorted(expected)
    different = [name for name in expected if actual[name] != expected[name]]
    assert not different, f"{len(different)} differ, e.g. {different[:5]}"


def test_built_callbacks_share_no_state() -> None:
    """Changing one built callback (a tampering test does) never changes the next one."""
    spec = TransactionSpec(seed=9)
    first = callbacks.build_transaction(spec)
    expected = delivery.wire_json(first.body)

    def scribble(value: Any) -> None:
        if isinstance(value, dict):
            for key in list(value):
                scribble(value[key])
                value[key] = "x"
            value["new"] = 1
        elif isinstance(value, list):
            for item in value:
                scribble(item)
            value.append(1)

    scribble(first.body)
    assert delivery.wire_json(callbacks.build_transaction(spec).body) == expected
    cb = testing.callback(seed=9)
    wire = cb.content
    scribble(cb.json)
    assert testing.callback(seed=9).content == wire


if __name__ == "__main__":
    # ``python tests/test_callbacks_golden.py [FULL.json]``: rewrite the golden file, or write every
    # output in full to FULL.json (to diff two versions while working).
    target, full = (Path(sys.argv[1]), True) if len(sys.argv) > 1 else (GOLDEN, False)
    target.write_text(json.dumps(record(full=full), indent=0, ensure_ascii=False) + "\n")
    sys.exit(0)
