"""Payload builders: every template registered, builds, verifies; shapes follow the reference."""

from __future__ import annotations

import itertools
import json
import math
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paymobctl import callbacks, delivery, overrides, prototypes, redirects, samples, signing
from paymobctl.callbacks import TransactionSpec
from paymobctl.errors import UsageError
from paymobctl.models import CardBrand, KeyFlow, Outcome, PaymentSource, Region
from paymobctl.signing import CallbackKind

SECRET = "unit-test-hmac-secret"
REAL_SAMPLES = Path(__file__).parent / "data" / "real-samples"


def reference_obj() -> dict[str, Any]:
    body = samples.load("reference-transaction").body
    assert body is not None
    obj: dict[str, Any] = body["obj"]
    return obj


def key_paths(value: Any, prefix: str = "") -> set[str]:
    paths: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            path = f"{prefix}.{key}" if prefix else key
            paths.add(path)
            if key not in ("data", "payment_key_claims", "source_data"):
                paths |= key_paths(item, path)
    return paths


def allowed_combinations() -> list[tuple[Outcome, PaymentSource]]:
    combos = []
    for outcome, source in itertools.product(Outcome, PaymentSource):
        try:
            callbacks.check_combination(outcome, source)
        except UsageError:
            continue
        combos.append((outcome, source))
    return combos


def test_every_template_is_registered_and_shipped() -> None:
    folder = resources.files("paymobctl") / "templates"
    shipped = sorted(entry.name for entry in folder.iterdir() if entry.name.endswith(".json"))
    assert shipped == sorted(prototypes.TEMPLATES)


@pytest.mark.parametrize("name", sorted(prototypes.TEMPLATES))
def test_every_template_builds_and_verifies_with_its_own_signature(name: str) -> None:
    built: list[callbacks.Callback] = []
    if name in ("order.json", "payment_key_claims.json", "regions.json"):
        # Parts of every TRANSACTION: build one per region and key flow.
        built = [
            callbacks.build_transaction(TransactionSpec(region=r, flow=f, seed=3))
            for r in Region
            for f in KeyFlow
        ]
    elif name == "transaction.json" or name.startswith("source.") or name == "outcomes.json":
        sources = (
            [PaymentSource(name.split(".")[1])]
            if name.startswith("source.")
            else list(PaymentSource)
        )
        built = [
            callbacks.build_transaction(TransactionSpec(outcome=o, source=s, seed=3))
            for o, s in allowed_combinations()
            if s in sources
        ]
    elif name == "token.json":
        built = [callbacks.build_token(callbacks.TokenSpec(order_id=1, seed=3))]
    elif name == "delivery_status.json":
        built = [callbacks.build_delivery_status(5, "On Route")]
    elif name in ("redirect.json", "pay_response.json"):
        txn = callbacks.build_transaction(TransactionSpec(seed=3))
        digest = txn.sign(SECRET)
        if name == "redirect.json":
            query = redirects.encode_params(redirects.redirect_params(txn.obj, digest))
            payload = signing.parse_query(query)
        else:
            record = redirects.pay_response(txn.obj, digest)
            payload = signing.parse_body(__import__("json").dumps(record))
        assert signing.verify(CallbackKind.RESPONSE, payload.data, SECRET, payload.hmac).valid
        return
    assert built
    for callback in built:
        digest = callback.sign(SECRET)
        assert signing.verify(callback.kind, callback.obj, SECRET, digest).valid
        assert "{{" not in __import__("json").dumps(callback.body)


def test_refused_combinations_say_why() -> None:
    refused = set(itertools.product(Outcome, PaymentSource)) - set(allowed_combinations())
    assert (Outcome.AUTH_FAILED, PaymentSource.KIOSK) in refused
    assert (Outcome.VOID, PaymentSource.WALLET) in refused
    for outcome, source in refused:
        with pytest.raises(UsageError) as info:
            callbacks.build_transaction(TransactionSpec(outcome=outcome, source=source))
        assert outcome.value in str(info.value) and source.value in str(info.value)
        assert "not a combination" not in str(info.value)  # every refusal has a real reason


def test_transaction_shape_matches_reference() -> None:
    built = callbacks.build_transaction(TransactionSpec(seed=1, flow=KeyFlow.LEGACY)).body
    assert list(built) == [
        "type", "obj", "accept_fees", "issuer_bank", "transaction_processed_callback_responses"
    ]  # fmt: skip
    reference = reference_obj()
    ours = built["obj"]
    missing = key_paths(reference) - key_paths(ours)
    # The reference sample is an intention-era payment; legacy payment-key claims carry exp/pmk_ip.
    assert missing <= {
        "payment_key_claims.redirect_url",
        "payment_key_claims.next_payment_intention",
    }, missing
    assert set(reference["data"]) <= set(ours["data"])
    assert set(reference["source_data"]) == set(ours["source_data"])
    assert ours["payment_key_claims"]["exp"] > 0 and ours["payment_key_claims"]["pmk_ip"]


@pytest.mark.parametrize(("outcome", "source"), allowed_combinations(), ids=str)
def test_outcomes_are_internally_consistent(outcome: Outcome, source: PaymentSource) -> None:
    obj = callbacks.build_transaction(
        TransactionSpec(outcome=outcome, source=source, amount_cents=25050, seed=11)
    ).obj
    assert obj["amount_cents"] == 25050 and obj["order"]["amount_cents"] == 25050
    assert obj["currency"] == obj["order"]["currency"] == "EGP"
    assert (
        obj["order"]["id"]
        == obj["payment_key_claims"]["order_id"]
        == obj["order"]["shipping_data"]["order_id"]
    )
    assert obj["owner"] == obj["payment_key_claims"]["user_id"]
    assert obj["is_live"] is False
    assert obj["success"] is (
        outcome in (Outcome.APPROVED, Outcome.REFUND, Outcome.VOID, Outcome.CAPTURE)
    )
    assert obj["pending"] is (outcome is Outcome.PENDING)
    child = outcome in (Outcome.REFUND, Outcome.VOID, Outcome.CAPTURE)
    assert obj["has_parent_transaction"] is child
    assert (obj["parent_transaction"] is not None) is child
    assert obj["is_refund"] is (outcome is Outcome.REFUND)
    assert obj["is_void"] is (outcome is Outcome.VOID)
    assert obj["is_capture"] is (outcome is Outcome.CAPTURE)
    if source is PaymentSource.CARD:
        assert obj["data"]["migs_order"]["amount"] == 250.5  # MIGS reports major units
        assert obj["data"]["card_num"].endswith(obj["source_data"]["pan"])
        assert re.fullmatch(r"\d{6}x{6}\d{4}", obj["data"]["card_num"])
        assert obj["data"]["order_info"] == str(obj["order"]["id"])
    if source is PaymentSource.WALLET:
        assert obj["source_data"]["pan"] == obj["source_data"]["phone_number"] == "01010101010"
    if source is PaymentSource.KIOSK:
        assert obj["source_data"] == {"pan": "", "type": "aggregator", "sub_type": "AGGREGATOR"}
        assert isinstance(obj["data"]["bill_reference"], int)
    assert obj["data"]["txn_response_code"]
    if outcome is Outcome.DECLINED and source is PaymentSource.CARD:
        assert obj["data"]["acq_response_code"] in callbacks.DECLINE_CODES
    if outcome is Outcome.INSUFFICIENT_FUNDS:
        assert obj["data"]["txn_response_code"] == "INSUFFICIENT_FUNDS"
    if outcome is Outcome.AUTH_FAILED:
        assert obj["data"]["txn_response_code"] == "AUTHENTICATION_FAILED" and obj["is_3d_secure"]
    for field in signing.collect_fields(CallbackKind.TRANSACTION, obj):
        assert not field.missing and field.raw is not None, field.name


def test_visa_brand() -> None:
    obj = callbacks.build_transaction(TransactionSpec(brand=CardBrand.VISA, seed=2)).obj
    assert obj["source_data"]["sub_type"] == "Visa" and obj["source_data"]["pan"] == "1111"
    assert obj["data"]["card_type"] == "VISA" and obj["data"]["card_num"].startswith("411111")


def test_seed_is_deterministic_and_unseeded_is_not() -> None:
    one = callbacks.build_transaction(TransactionSpec(seed=42)).body
    two = callbacks.build_transaction(TransactionSpec(seed=42)).body
    assert one == two
    other = callbacks.build_transaction(TransactionSpec(seed=43)).body
    assert one["obj"]["id"] != other["obj"]["id"]
    fresh = [callbacks.build_transaction(TransactionSpec()).obj["id"] for _ in range(3)]
    assert len(set(fresh)) == 3


@pytest.mark.parametrize(
    ("region", "pattern"),
    [
        (Region.EG, r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}$"),
        (Region.KSA, r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+03:00$"),
        (Region.UAE, r"\+04:00$"),
        (Region.OMAN, r"\+04:00$"),
        (Region.PAKISTAN, r"\+05:00$"),
    ],
)
def test_timestamps_in_the_regions_format(region: Region, pattern: str) -> None:
    obj = callbacks.build_transaction(TransactionSpec(region=region, seed=5)).obj
    for value in (obj["created_at"], obj["updated_at"], obj["order"]["created_at"]):
        assert re.search(pattern, value), value
    assert obj["currency"] == region.info.currency


def test_fixed_time_renders_like_paymob() -> None:
    moment = datetime(2025, 3, 17, 10, 54, 36, 718150, tzinfo=UTC)
    obj = callbacks.build_transaction(TransactionSpec(created_at=moment, seed=1)).obj
    assert obj["created_at"] == "2025-03-17T12:54:36.718150"  # Cairo, naive (docs/paymob.md §2)


def test_oman_uses_three_decimals() -> None:
    obj = callbacks.build_transaction(
        TransactionSpec(region=Region.OMAN, amount_cents=12345, seed=1)
    ).obj
    assert obj["currency"] == "OMR" and obj["data"]["migs_order"]["amount"] == 12.345


def test_token_is_consistent_with_its_transaction() -> None:
    txn = callbacks.build_transaction(
        TransactionSpec(brand=CardBrand.VISA, pan_last4="4242", seed=9)
    )
    token = callbacks.build_token(callbacks.token_spec_for(txn.obj, seed=9))
    obj = token.obj
    assert obj["order_id"] == str(txn.obj["order"]["id"])  # a string (docs/paymob.md §7.3)
    assert obj["email"] == txn.obj["payment_key_claims"]["billing_data"]["email"]
    assert obj["card_subtype"] == "Visa"
    assert obj["masked_pan"] == "xxxx-xxxx-xxxx-4242"
    assert obj["merchant_id"] == txn.obj["owner"]
    assert re.fullmatch(r"[0-9a-f]{56}", obj["token"])
    assert obj["created_at"] > txn.obj["created_at"]
    assert set(obj) == {
        "id",
        "token",
        "masked_pan",
        "merchant_id",
        "card_subtype",
        "created_at",
        "email",
        "order_id",
        "user_added",
        "next_payment_intention",
    }
    # The TOKEN names the intention of the payment it follows (docs/paymob.md §14).
    assert obj["next_payment_intention"] == txn.obj["payment_key_claims"]["next_payment_intention"]


def test_redirect_carries_the_same_hmac_as_the_post() -> None:
    txn = callbacks.build_transaction(TransactionSpec(merchant_order_id="ORD-7", seed=4))
    digest = txn.sign(SECRET)
    params = redirects.redirect_params(txn.obj, digest)
    names = [name for name, _ in params]
    assert names[:3] == ["id", "pending", "amount_cents"] and names[-1] == "hmac"
    assert "order" in names and "order_id" not in names
    assert all(isinstance(value, str) for _, value in params)
    flat = dict(params)
    assert flat["success"] == "true" and flat["merchant_order_id"] == "ORD-7"
    assert flat["source_data.pan"] == "2346" and flat["discount_details"] == "[]"
    payload = signing.parse_query(redirects.encode_params(params))
    assert payload.hmac == digest
    assert signing.verify(CallbackKind.RESPONSE, payload.data, SECRET, digest).valid


def test_pay_response_is_flat_and_string_typed() -> None:
    txn = callbacks.build_transaction(TransactionSpec(seed=4))
    record = redirects.pay_response(txn.obj, txn.sign(SECRET))
    assert record["success"] == "true" and record["order"] == str(txn.obj["order"]["id"])
    assert record["data.message"] == "Approved" and record["hmac"] == txn.sign(SECRET)


def test_overrides() -> None:
    body = callbacks.build_transaction(TransactionSpec(seed=1)).body
    changed = overrides.apply_overrides(
        body,
        [
            overrides.parse_override("obj.success=false"),
            overrides.parse_override("obj.source_data.pan=9999"),
            overrides.parse_override("obj.data.message=Hello world"),
            overrides.parse_override('obj.extra={"a": 1}'),
        ],
    )
    assert changed["obj"]["success"] is False
    assert changed["obj"]["source_data"]["pan"] == 9999
    assert changed["obj"]["data"]["message"] == "Hello world"
    assert changed["obj"]["extra"] == {"a": 1}
    assert body["obj"]["success"] is True  # the original is untouched
    for bad in ("obj.success", "=1", "obj..x=1"):
        with pytest.raises(UsageError):
            overrides.parse_override(bad)
    with pytest.raises(UsageError, match=r"'obj\.nope' does not exist"):
        overrides.apply_overrides(body, [overrides.parse_override("obj.nope.x=1")])
    with pytest.raises(UsageError, match="is not an object"):
        overrides.apply_overrides(body, [overrides.parse_override("obj.id.x=1")])


def test_signed_fields_never_null() -> None:
    with pytest.raises(UsageError, match="null or missing"):
        callbacks.check_signed_fields(CallbackKind.TRANSACTION, {"id": None})


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 10**6),
    amount=st.integers(1, 10**9),
    combo=st.sampled_from(allowed_combinations()),
    region=st.sampled_from(list(Region)),
)
def test_any_built_transaction_verifies(
    seed: int, amount: int, combo: tuple[Outcome, PaymentSource], region: Region
) -> None:
    outcome, source = combo
    txn = callbacks.build_transaction(
        TransactionSpec(
            outcome=outcome, source=source, amount_cents=amount, region=region, seed=seed
        )
    )
    digest = txn.sign(SECRET)
    assert signing.verify(CallbackKind.TRANSACTION, txn.obj, SECRET, digest).valid
    query = redirects.encode_params(redirects.redirect_params(txn.obj, digest))
    payload = signing.parse_query(query)
    assert signing.verify(CallbackKind.RESPONSE, payload.data, SECRET, payload.hmac).valid


# -- no time later than the moment of sending (acceptance review, issue 11) ------------------------

_TIME_KEY = re.compile(r"created|updated|date|time", re.IGNORECASE)


def sent_times(value: Any, region: Region, path: str = "") -> dict[str, datetime]:
    """Every timestamp-looking field of a callback, as aware UTC (Paymob's and MIGS renderings)."""
    found: dict[str, datetime] = {}
    if isinstance(value, dict):
        for key, item in value.items():
            found |= sent_times(item, region, f"{path}.{key}" if path else str(key))
    elif isinstance(value, str) and _TIME_KEY.search(path.rsplit(".", 1)[-1]):
        moment = callbacks.parse_paymob_timestamp(value, region)
        if moment is None and re.fullmatch(r"\d{4}-\d\d-\d\dT[\d:.]+Z", value):
            moment = datetime.fromisoformat(value)  # MIGS: UTC with a Z
        if path.endswith("data.created_at") and moment is not None:
            # The gateway's time is naive UTC (docs sample: 08:34 beside 11:34 Cairo).
            moment = datetime.fromisoformat(value).replace(tzinfo=UTC)
        if moment is not None:
            found[path] = moment
    return found


def assert_nothing_after(obj: dict[str, Any], sent: datetime, region: Region) -> None:
    times = sent_times(obj, region)
    assert {"created_at", "updated_at", "data.created_at"} <= set(times), sorted(times)
    for path, moment in times.items():
        assert moment <= sent, f"{path} = {moment} is after the send time {sent}"
    assert times["order.created_at"] <= times["created_at"] <= times["updated_at"]
    assert times["data.created_at"] <= times["updated_at"]


@pytest.mark.parametrize(("outcome", "source"), allowed_combinations(), ids=str)
@pytest.mark.parametrize("region", [Region.EG, Region.KSA])
def test_no_timestamp_is_after_the_send_time(
    outcome: Outcome, source: PaymentSource, region: Region
) -> None:
    sent = datetime(2026, 3, 1, 9, 30, 0, 123456, tzinfo=UTC)
    txn = callbacks.build_transaction(
        TransactionSpec(outcome=outcome, source=source, region=region), now=sent
    )
    assert_nothing_after(txn.obj, sent, region)
    assert callbacks.parse_paymob_timestamp(txn.obj["updated_at"], region) == sent
    if source is PaymentSource.CARD:
        token = callbacks.build_token(callbacks.token_spec_for(txn.obj, region=region), now=sent)
        assert callbacks.parse_paymob_timestamp(token.obj["created_at"], region) <= sent  # type: ignore[operator]


def test_given_final_time_keeps_the_gateway_between_created_and_updated() -> None:
    """The sandbox: created when the payment began, final now; data.created_at in between."""
    began = datetime(2026, 3, 1, 9, 30, 0, tzinfo=UTC)
    for final in (began, began + timedelta(microseconds=50), began + timedelta(minutes=2)):
        for seed in range(20):
            obj = callbacks.build_transaction(
                TransactionSpec(created_at=began, updated_at=final, seed=seed)
            ).obj
            assert_nothing_after(obj, final, Region.EG)
            assert callbacks.parse_paymob_timestamp(obj["updated_at"], Region.EG) == final


def test_real_samples_order_their_times_like_ours() -> None:
    """The evidence: s01 (docs) and s06 (real KSA) have data.created_at <= updated_at."""
    for name, region in (
        ("s01_docs_txn_card_approved_192036465.json", Region.EG),
        ("s06_real_ksa_txn_card_approved_973572_2025.json", Region.KSA),
    ):
        body = json.loads((REAL_SAMPLES / name).read_text(encoding="utf-8"))
        obj = body["body"]["obj"]
        updated = callbacks.parse_paymob_timestamp(obj["updated_at"], region)
        assert updated is not None
        assert_nothing_after(obj, updated, region)


# --- prototypes: templates compiled once (paymobctl.prototypes) --------------------------------


def _holes(shape: Any) -> set[str]:
    if isinstance(shape, dict):
        return set().union(*(_holes(v) for v in shape.values()))
    if isinstance(shape, list):
        return set().union(*(_holes(v) for v in shape))
    if isinstance(shape, prototypes.Hole):
        return {shape.name}
    if isinstance(shape, prototypes.Joined):
        return {p.name for p in shape.parts if isinstance(p, prototypes.Hole)}
    return set()


_ODD_VALUES: list[Any] = [
    "plain", "", 'quo"te\\ \n\t\x00 ü € 😀', "\u2028", 0, -1, 2**70, True, False, None, 1.5,
    1e16, -0.0, [], {}, [1, "a", None, {"k": [True]}], {"x": {"y": []}, "2": 3.25},
    Outcome.APPROVED, CardBrand.VISA, {1: "int key"},
]  # fmt: skip


@pytest.mark.parametrize(
    "template",
    [
        {"a": "{{x}}", "b": ["{{x}}", "pre {{y}} mid {{x}}{{y}} post", {"c": "{{y}}"}], "d": 1},
        {"only": "{{x}}"},
        {"empty": [], "nested": {"deeper": {"deepest": "x{{x}}"}}, "n": None, "t": True},
        *[callbacks.template(name) for name in ("order.json", "token.json")],
        *callbacks.template("payment_key_claims.json").values(),
        callbacks.template("delivery_status.json"),
        callbacks.template("source.card.json"),
    ],
)
def test_a_prototype_builds_what_fill_builds_and_renders_its_wire_json(template: Any) -> None:
    shape = prototypes.skeleton(template)
    compiled = prototypes.Prototype(shape, "test")
    names = sorted(_holes(shape))
    for index in range(len(_ODD_VALUES)):
        context = {
            name: _ODD_VALUES[(index + offset) % len(_ODD_VALUES)]
            for offset, name in enumerate(names)
        }
        built = compiled.build(context)
        assert built == prototypes.fill(template, context)
        assert json.dumps(built) == json.dumps(prototypes.fill(template, context))  # key order
        assert compiled.render(context).encode() == delivery.wire_json(built)
    if names:
        with pytest.raises(KeyError):
            compiled.build({})
        nan = dict.fromkeys(names, math.nan)  # as text inside a string; refused as a value
        outcomes = []
        for write in (
            lambda: delivery.wire_json(compiled.build(nan)),
            lambda: compiled.render(nan).encode(),
        ):
            try:
                outcomes.append(write())
            except ValueError as error:
                outcomes.append(str(error))
        assert outcomes[0] == outcomes[1]


def test_a_prototype_fills_a_nested_template_from_its_own_context() -> None:
    outer = {"id": "{{id}}", "inner": "{{inner}}", "tail": "t{{id}}"}
    inner = {"id": "{{id}}", "list": ["{{id}}"]}
    shape = prototypes.nest(prototypes.skeleton(outer), {"inner": prototypes.skeleton(inner)})
    compiled = prototypes.Prototype(shape, "nested")
    context = {"id": 1, "inner": {"id": "ü"}}
    expected = prototypes.fill(outer, {"id": 1, "inner": prototypes.fill(inner, {"id": "ü"})})
    assert compiled.build(context) == expected
    assert compiled.render(context).encode() == delivery.wire_json(expected)


def test_prototypes_build_fresh_containers() -> None:
    compiled = prototypes.Prototype(prototypes.skeleton({"a": [], "b": {"c": []}}), "fresh")
    first = compiled.build({})
    first["a"].append(1)
    first["b"]["c"].append(2)
    assert compiled.build({}) == {"a": [], "b": {"c": []}}


@pytest.mark.parametrize("region", list(Region))
def test_signed_transaction_wire_matches_the_general_path_for_one_reused_spec(
    region: Region,
) -> None:
    """The fast path bakes what a spec fixes into a renderer kept per spec object: reusing one
    unseeded spec with different draws and times still gives the general path's bytes and HMAC."""
    now = datetime(2025, 10, 30, 21, 59, 58, 999_000, tzinfo=UTC)  # Cairo's summer time ends
    specs = [
        TransactionSpec(region=region),
        TransactionSpec(region=region, outcome=Outcome.DECLINED, brand=CardBrand.VISA),
        TransactionSpec(
            region=region,
            outcome=Outcome.DECLINED,
            source=PaymentSource.WALLET,
            amount_cents=12345,
            currency="usd",
            merchant_order_id="shop-7",
            customer=callbacks.Customer("Ali", "Hassan", "ali@example.com", "+201000000000"),
        ),
        TransactionSpec(region=region, outcome=Outcome.REFUND, is_live=True, is_auth=True),
        TransactionSpec(region=region, source=PaymentSource.KIOSK, flow=KeyFlow.LEGACY),
    ]
    for spec in specs:
        for draw in range(6):
            moment = now + timedelta(milliseconds=700 * draw)
            callbacks._DRAWS.seed(draw)
            wire, digest = callbacks.signed_transaction_wire(spec, "s3cret", now=moment)
            callbacks._DRAWS.seed(draw)
            built, expected = callbacks.build_transaction_with_wire(spec, now=moment)
            assert wire == expected
            assert digest == built.sign("s3cret")


def test_signed_transaction_wire_matches_the_general_path_across_per_call_values() -> None:
    """Specs differing only in per-call values (ids, amounts, merchant order id, times, seed)
    share one baked renderer and one set of order/claims parts: each still gives the general
    path's bytes and HMAC, and the shared parts are compiled once."""
    base = TransactionSpec(outcome=Outcome.DECLINED, brand=CardBrand.VISA)
    now = datetime(2025, 10, 30, 21, 59, 58, 999_000, tzinfo=UTC)
    callbacks.signed_transaction_wire(base, "s3cret", now=now)
    before = callbacks._shape_render.cache_info().misses
    for i in range(40):
        spec = replace(
            base,
            order_id=None if i % 4 == 0 else 300_000_000 + i,
            merchant_order_id=None if i % 2 else f"shop-{i}",
            amount_cents=0 if i == 7 else 100 + 999 * i,
            transaction_id=None if i % 3 else 250_000_000 + i,
            seed=i if i % 5 == 0 else None,
            created_at=now - timedelta(minutes=i) if i % 7 == 0 else None,
            bill_reference=None if i % 6 else 12_345_678,
        )
        for outcome in (Outcome.APPROVED, Outcome.DECLINED):
            spec = replace(spec, outcome=outcome)
            callbacks._DRAWS.seed(i)
            wire, digest = callbacks.signed_transaction_wire(spec, "s3cret", now=now)
            callbacks._DRAWS.seed(i)
            built, expected = callbacks.build_transaction_with_wire(spec, now=now)
            assert wire == expected
            assert digest == built.sign("s3cret")
    assert callbacks._shape_render.cache_info().misses - before <= 1
