"""Built payloads against real public Paymob callbacks (tests/data/real-samples, see its README).

For every real sample, the matching payload paymobctl builds (simulate's builder and the sandbox)
has every field the real one has, with the same JSON type where neither is null. What cannot
match is in ALLOWED_MISSING, each with its reason (README "How faithful is it").
"""

from __future__ import annotations

import fnmatch
import itertools
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from paymobctl import callbacks, redirects, signing
from paymobctl.callbacks import TransactionSpec
from paymobctl.emulator import cards
from paymobctl.emulator.state import Sandbox
from paymobctl.errors import UsageError
from paymobctl.models import (
    CallbackKind,
    CallbackOrder,
    KeyFlow,
    Outcome,
    PaymentSource,
    Region,
)
from paymobctl.sandbox_profile import SANDBOX

DATA = Path(__file__).parent / "data" / "real-samples"

# Paths a real sample may have that a built payload cannot know, and why. Patterns use fnmatch.
ALLOWED_MISSING: dict[str, str] = {
    "obj.payment_key_claims.extra.*": "the merchant's own data (extra / extras): none by default",
    "obj.payment_key_claims.notification_url": "only when an intention sets its own URL",
    "obj.payment_key_claims.redirection_url": "only when an intention sets its own URL",
    "obj.order.data.notification_url": "only when an intention sets its own URL",
    "obj.order.items[]*": "the merchant's items: simulate sends none",
    "obj.transaction_processed_callback_responses[]*": "Paymob's log of earlier deliveries of "
    "the same callback: empty on a first delivery",
}

_REGIONS = {"EG": Region.EG, "KSA": Region.KSA, "UAE": Region.UAE}


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"  # JSON has one number type (MIGS amounts are 267 or 267.0)
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def shape(value: Any, prefix: str = "") -> dict[str, set[str]]:
    """Every field path (``a.b``, list elements as ``a[]``) and the JSON types seen there."""
    found: dict[str, set[str]] = {}
    if prefix:
        found[prefix] = {json_type(value)}
    children: Iterator[tuple[str, Any]]
    if isinstance(value, dict):
        children = ((f"{prefix}.{k}" if prefix else k, v) for k, v in value.items())
    elif isinstance(value, list):
        children = ((f"{prefix}[]", v) for v in value)
    else:
        children = iter(())
    for path, child in children:
        for sub, types in shape(child, path).items():
            found.setdefault(sub, set()).update(types)
    return found


def differences(
    real: dict[str, set[str]], ours: dict[str, set[str]], *, skip: tuple[str, ...] = ()
) -> list[str]:
    """What the real shape has that ours lacks, or types that differ (nulls aside)."""
    problems = []
    for path, types in sorted(real.items()):
        if any(fnmatch.fnmatchcase(path, p) for p in (*ALLOWED_MISSING, *skip)):
            continue
        if path not in ours:
            problems.append(f"missing {path}")
            continue
        real_types, our_types = types - {"null"}, ours[path] - {"null"}
        if real_types and our_types and not real_types & our_types:
            problems.append(f"type of {path}: real {sorted(real_types)}, ours {sorted(our_types)}")
    return problems


def samples(kind: str) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in sorted(DATA.glob("*.json")):
        doc = json.loads(path.read_text(encoding="utf-8"))
        if doc["kind"] == kind:
            found.append((path.stem, doc))
    return found


def region_of(doc: dict[str, Any]) -> Region:
    return _REGIONS.get(str(doc.get("region", "EG")).rstrip("?"), Region.EG)


def flow_of(doc: dict[str, Any]) -> KeyFlow:
    claims = doc["body"]["obj"].get("payment_key_claims") or {}
    return KeyFlow.INTENTION if "next_payment_intention" in claims else KeyFlow.LEGACY


def combinations() -> list[tuple[Outcome, PaymentSource, Region]]:
    combos = []
    for outcome, source, region in itertools.product(Outcome, PaymentSource, Region):
        try:
            callbacks.check_combination(outcome, source)
        except UsageError:
            continue
        combos.append((outcome, source, region))
    return combos


TRANSACTIONS = samples("TRANSACTION")
TOKENS = samples("TOKEN")
REDIRECTS = samples("RESPONSE (GET)")


def test_the_ground_truth_is_all_here() -> None:
    assert len(TRANSACTIONS) >= 4 and len(TOKENS) >= 2 and len(REDIRECTS) >= 3
    readme = (DATA / "README.md").read_text(encoding="utf-8")
    for path in DATA.glob("*.json"):
        assert path.name in readme, f"{path.name} has no provenance row in the README"


@pytest.mark.parametrize(("name", "doc"), TRANSACTIONS, ids=[n for n, _ in TRANSACTIONS])
def test_simulate_has_every_field_of_the_real_transaction(name: str, doc: dict[str, Any]) -> None:
    spec = TransactionSpec(
        outcome=Outcome(doc["outcome"]),
        source=PaymentSource(doc["source"]),
        region=region_of(doc),
        flow=flow_of(doc),
        seed=7,
    )
    ours = callbacks.build_transaction(spec).body
    assert differences(shape(doc["body"]), shape(ours)) == []


SIGNED = [(n, d) for n, d in (*TRANSACTIONS, *TOKENS) if d["secret"]]


@pytest.mark.parametrize(("name", "doc"), SIGNED, ids=[n for n, _ in SIGNED])
def test_real_hmacs_verify(name: str, doc: dict[str, Any]) -> None:
    kind = CallbackKind(doc["kind"])
    assert signing.verify(kind, doc["body"]["obj"], doc["secret"], doc["hmac"]).valid


@pytest.mark.parametrize(
    ("outcome", "source", "region"), combinations(), ids=lambda v: str(getattr(v, "value", v))
)
def test_every_outcome_source_and_region_has_the_real_envelope(
    outcome: Outcome, source: PaymentSource, region: Region
) -> None:
    """The envelope, obj, order and key claims of every combination have every real field;
    ``obj.data`` and ``source_data`` too where a real sample of that source exists (cards,
    wallets). Against the same region's samples when there are some, else Egypt's."""
    regional = [d for _, d in TRANSACTIONS if region_of(d) is region] or [
        d for _, d in TRANSACTIONS if region_of(d) is Region.EG
    ]
    for flow in KeyFlow:
        built = callbacks.build_transaction(
            TransactionSpec(outcome=outcome, source=source, region=region, flow=flow, seed=5)
        )
        ours = shape(built.body)
        for doc in (d for d in regional if flow_of(d) is flow):
            same_source = PaymentSource(doc["source"]) is source
            skip = () if same_source else ("obj.data.*", "obj.source_data.*")
            assert differences(shape(doc["body"]), ours, skip=skip) == [], doc["provenance"]
        assert signing.verify(CallbackKind.TRANSACTION, built.obj, "s", built.sign("s")).valid


# --- the sandbox builds the same payloads ---------------------------------------------------------

BILLING = {
    "first_name": "Mona", "last_name": "Adel", "email": "mona@example.com",
    "phone_number": "+201234567890", "apartment": "NA", "floor": "NA", "street": "NA",
    "building": "NA", "shipping_method": "NA", "postal_code": "NA", "city": "NA",
    "country": "EG", "state": "NA",
}  # fmt: skip


def sandbox_payment(
    number: str, *, order: CallbackOrder = CallbackOrder.TOKEN_FIRST, seed: int | None = None
) -> tuple[list[tuple[CallbackKind, dict[str, Any], str]], str | None]:
    """A card payment in an in-process sandbox: its POSTed callbacks (kind, body, url) in the
    order they go out, and the browser's redirect URL."""
    sandbox = Sandbox(
        callback_url="http://127.0.0.1:9/hook",
        response_url="http://127.0.0.1:9/return",
        callback_order=order,
        order_seed=seed,
    )
    made = sandbox.create_order(
        {"amount_cents": 10000, "currency": "EGP", "delivery_needed": False, "items": []}
    )
    key = sandbox.create_payment_key(
        {
            "amount_cents": 10000,
            "expiration": 3600,
            "order_id": made.id,
            "billing_data": BILLING,
            "currency": "EGP",
            "integration_id": SANDBOX.integration_id,
        }
    )
    entry = cards.check_entry(number, "Test Account", "12", "39", "123")
    assert isinstance(entry, cards.CardEntry)
    done = sandbox.completion(sandbox.pay_with_card(key, entry, save_card=True))
    sent = [
        (item.kind, json.loads(item.request.body or b"{}"), item.request.url)
        for item in done.outbound
    ]
    return sent, done.redirect_url


def test_sandbox_transaction_has_every_field_of_the_real_ones() -> None:
    sent, _ = sandbox_payment("0000000000000000")
    body = next(b for kind, b, _ in sent if kind is CallbackKind.TRANSACTION)
    compared = 0
    for _, doc in TRANSACTIONS:
        if region_of(doc) is Region.EG and flow_of(doc) is KeyFlow.LEGACY:
            skip = () if doc["source"] == "card" else ("obj.data.*", "obj.source_data.*")
            assert differences(shape(doc["body"]), shape(body), skip=skip) == []
            compared += 1
    assert compared >= 2


def test_sandbox_wallet_payment_has_every_field_of_the_real_one() -> None:
    sandbox = Sandbox(callback_url="http://127.0.0.1:9/hook", response_url="http://127.0.0.1:9/r")
    made = sandbox.create_order(
        {"amount_cents": 10000, "currency": "EGP", "delivery_needed": False, "items": []}
    )
    key = sandbox.create_payment_key(
        {
            "amount_cents": 10000,
            "expiration": 3600,
            "order_id": made.id,
            "billing_data": BILLING,
            "currency": "EGP",
            "integration_id": SANDBOX.wallet_integration_id,
        }
    )
    wallet = {"identifier": cards.WALLET_NUMBER, "subtype": "WALLET"}
    _, record, _ = sandbox.pay_api({"source": wallet, "payment_token": key.key}, "http://x")
    txn = sandbox.complete_wallet(int(record["id"]), cards.WALLET_MPIN, cards.WALLET_OTP)
    done = sandbox.completion(txn)
    body = json.loads(done.outbound[0].request.body or b"{}")
    wallets = [d for _, d in TRANSACTIONS if d["source"] == "wallet"]
    assert wallets
    for doc in wallets:
        assert differences(shape(doc["body"]), shape(body)) == []
    assert done.redirect_url and "acq_response_code" not in done.redirect_url


def test_sandbox_intention_payment_has_every_field_of_the_real_ones() -> None:
    sandbox = Sandbox(callback_url="http://127.0.0.1:9/hook")
    intention = sandbox.create_intention(
        {
            "amount": 10000,
            "currency": "EGP",
            "payment_methods": [SANDBOX.integration_id],
            "billing_data": BILLING,
            "notification_url": "https://shop.example/hook",
        }
    )
    entry = cards.check_entry("0000000000000000", "T A", "12", "39", "123")
    assert isinstance(entry, cards.CardEntry)
    txn = sandbox.pay_with_card(sandbox.intention_key(intention), entry, save_card=False)
    body = json.loads(sandbox.completion(txn).outbound[0].request.body or b"{}")
    claims = body["obj"]["payment_key_claims"]
    assert claims["next_payment_intention"] == intention.id
    assert claims["notification_url"] == "https://shop.example/hook"
    assert list(claims) == list(callbacks.jsonb_order(claims))
    compared = 0
    for _, doc in TRANSACTIONS:
        if region_of(doc) is Region.EG and flow_of(doc) is KeyFlow.INTENTION:
            assert differences(shape(doc["body"]), shape(body)) == []
            compared += 1
    assert compared >= 2


@pytest.mark.parametrize(
    ("number", "outcome"),
    [
        ("0000000000000000", Outcome.APPROVED),
        ("0000000000001111", Outcome.DECLINED),
        ("0000000000003333", Outcome.BLOCKED),
    ],
)
def test_sandbox_and_simulate_agree(number: str, outcome: Outcome) -> None:
    sent, _ = sandbox_payment(number)
    sandbox_body = next(b for kind, b, _ in sent if kind is CallbackKind.TRANSACTION)
    simulated = callbacks.build_transaction(
        TransactionSpec(outcome=outcome, flow=KeyFlow.LEGACY, seed=2)
    ).body
    ours, theirs = shape(simulated), shape(sandbox_body)
    # Same fields both ways, with the same types.
    assert differences(ours, theirs) == [] and differences(theirs, ours) == []
    assert (
        sandbox_body["obj"]["data"]["txn_response_code"]
        == (simulated["obj"]["data"]["txn_response_code"])
    )
    tokens = [body for kind, body, _ in sent if kind is CallbackKind.TOKEN]
    assert len(tokens) == (1 if outcome is Outcome.APPROVED else 0)
    for token in tokens:
        built = callbacks.build_token(callbacks.TokenSpec(order_id=1, seed=1)).body
        assert shape(token) == shape(built)


# --- TOKEN ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "doc"), TOKENS, ids=[n for n, _ in TOKENS])
def test_token_has_every_field_of_the_real_one(name: str, doc: dict[str, Any]) -> None:
    ours = callbacks.build_token(callbacks.TokenSpec(order_id=5, region=region_of(doc), seed=3))
    assert differences(shape(doc["body"]), shape(ours.body)) == []
    assert list(doc["body"]["obj"]) == list(ours.obj)  # the same key order too
    if doc["secret"]:
        assert signing.verify(CallbackKind.TOKEN, doc["body"]["obj"], doc["secret"], doc["hmac"])


# --- GET redirects --------------------------------------------------------------------------------


def real_params(doc: dict[str, Any]) -> list[str]:
    return [name for name, _ in parse_qsl(urlsplit(doc["url"]).query) if name != "hmac"]


def built_params(outcome: Outcome, source: PaymentSource, region: Region) -> list[str]:
    obj = callbacks.build_transaction(
        TransactionSpec(
            outcome=outcome, source=source, region=region, merchant_order_id="ORD-1", seed=4
        )
    ).obj
    return [name for name, _ in redirects.redirect_params(obj, None)]


@pytest.mark.parametrize(("name", "doc"), REDIRECTS, ids=[n for n, _ in REDIRECTS])
def test_redirect_has_every_real_parameter_in_order(name: str, doc: dict[str, Any]) -> None:
    ours = built_params(Outcome(doc["outcome"]), PaymentSource(doc["source"]), Region.EG)
    real = real_params(doc)
    assert set(real) <= set(ours), set(real) - set(ours)
    if doc.get("param_order"):  # parameters as Paymob sent them: ours keep that order
        assert [p for p in ours if p in real] == real
    # A real parameter that is absent is absent from ours too (acq_response_code of BLOCKED).
    if "acq_response_code" not in real:
        assert "acq_response_code" not in ours


@pytest.mark.parametrize(
    ("outcome", "source", "region"), combinations(), ids=lambda v: str(getattr(v, "value", v))
)
def test_every_redirect_has_the_2026_parameters(
    outcome: Outcome, source: PaymentSource, region: Region
) -> None:
    newest = next(d for n, d in REDIRECTS if n.startswith("r03"))
    obj = callbacks.build_transaction(
        TransactionSpec(
            outcome=outcome, source=source, region=region, merchant_order_id="ORD-1", seed=4
        )
    ).obj
    ours = [name for name, _ in redirects.redirect_params(obj, None)]
    # A null or absent value is no parameter at all: acq_response_code of wallets, kiosks,
    # pending and BLOCKED payments (real wallet and BLOCKED redirects have none, §14).
    has_code = obj["data"].get("acq_response_code") is not None
    expected = [p for p in real_params(newest) if has_code or p != "acq_response_code"]
    if source is PaymentSource.WALLET or outcome is Outcome.BLOCKED:
        assert not has_code
    elif source is PaymentSource.CARD and outcome is not Outcome.PENDING:
        assert has_code
    assert [p for p in ours if p in expected] == expected


# --- values: blocked, time zones, regions, callback order ---------------------------------------


def test_blocked_has_the_nulls_of_a_real_test_mode_decline() -> None:
    obj = callbacks.build_transaction(TransactionSpec(outcome=Outcome.BLOCKED, seed=1)).obj
    data = obj["data"]
    assert obj["success"] is False and obj["pending"] is False and obj["error_occured"] is False
    assert data["txn_response_code"] == "BLOCKED" and data["message"] == "BLOCKED"
    for name in (
        "acq_response_code", "receipt_no", "transaction_no", "authorize_id", "secure_hash",
        "avs_result_code", "avs_acq_response_code",
    ):  # fmt: skip
        assert data[name] is None, name
    assert obj["order"]["payment_status"] == "UNPAID" and obj["order"]["paid_amount_cents"] == 0


def test_cairo_local_time_follows_summer_time() -> None:
    summer = datetime(2025, 7, 1, 9, 0, tzinfo=UTC)
    winter = datetime(2025, 1, 15, 9, 0, tzinfo=UTC)
    assert callbacks.paymob_timestamp(summer, Region.EG) == "2025-07-01T12:00:00.000000"
    assert callbacks.paymob_timestamp(winter, Region.EG) == "2025-01-15T11:00:00.000000"
    # Naive text is Cairo time; text with an offset is taken as written.
    assert callbacks.parse_paymob_timestamp("2025-07-01T12:00:00.000000", Region.EG) == summer
    assert callbacks.parse_paymob_timestamp("2025-07-01T12:00:00+03:00", Region.EG) == summer
    # The docs sample: created 11:33 Cairo in June, the gateway's UTC clock says 08:34.
    built = callbacks.build_transaction(TransactionSpec(created_at=summer, seed=1)).obj
    local = datetime.fromisoformat(built["created_at"])
    gateway = datetime.fromisoformat(built["data"]["created_at"])
    assert 3 * 3600 - 60 < (local - gateway).total_seconds() < 3 * 3600
    assert built["data"]["migs_transaction"]["acquirer"]["timeZone"] == "+0300"


@pytest.mark.parametrize(
    ("region", "currency", "offset", "country", "phone"),
    [
        (Region.EG, "EGP", "", "EGY", r"\+20\d{10}"),
        (Region.KSA, "SAR", "+03:00", "SAU", r"\+9665\d{8}"),
        (Region.UAE, "AED", "+04:00", "ARE", r"\+9715\d{8}"),
        (Region.OMAN, "OMR", "+04:00", "OMN", r"\+968\d{8}"),
        (Region.PAKISTAN, "PKR", "+05:00", "PAK", r"\+923\d{9}"),
    ],
)
def test_region_true_values(
    region: Region, currency: str, offset: str, country: str, phone: str
) -> None:
    import re

    obj = callbacks.build_transaction(
        TransactionSpec(region=region, created_at=datetime(2025, 7, 1, 9, tzinfo=UTC), seed=1)
    ).obj
    assert obj["currency"] == obj["order"]["currency"] == currency
    assert obj["created_at"].endswith(offset) if offset else "+" not in obj["created_at"]
    assert obj["order"]["merchant"]["country"] == country
    assert re.fullmatch(phone, obj["payment_key_claims"]["billing_data"]["phone_number"])
    assert re.fullmatch(phone, obj["order"]["merchant"]["phones"][0])


@pytest.mark.parametrize(
    ("order", "first"),
    [
        (CallbackOrder.TOKEN_FIRST, CallbackKind.TOKEN),
        (CallbackOrder.TRANSACTION_FIRST, CallbackKind.TRANSACTION),
    ],
)
def test_callback_order(order: CallbackOrder, first: CallbackKind) -> None:
    sent, _ = sandbox_payment("0000000000000000", order=order)
    assert sent[0][0] is first and len(sent) == 2


def test_random_callback_order_sends_both_orders() -> None:
    firsts = {
        sandbox_payment("0000000000000000", order=CallbackOrder.RANDOM, seed=s)[0][0][0]
        for s in range(12)
    }
    assert firsts == {CallbackKind.TOKEN, CallbackKind.TRANSACTION}


def test_checklist_probes_have_every_field_of_the_real_ones(tmp_path: Path) -> None:
    """The go-live checklist's webhook probes come from the same builder (a declined payment)."""
    from paymobctl.checklist import Probe, probe_callback
    from paymobctl.config import ConfigFile, sandbox_settings

    empty = ConfigFile(tmp_path / "c.toml", exists=False, default_profile=None, profiles={})
    settings = sandbox_settings("http://127.0.0.1:9", config_file=empty)
    probe = Probe(999_900_000_001, "paymobctl-probe-test", 999_900_000_002)
    body = probe_callback(probe, settings).body
    for _, doc in TRANSACTIONS:
        if region_of(doc) is Region.EG and flow_of(doc) is KeyFlow.INTENTION:
            assert differences(shape(doc["body"]), shape(body)) == []
