"""HMAC rules of docs/paymob.md §8: known-answer vectors, properties, conventions and diagnoses."""

from __future__ import annotations

import copy
import hashlib
import hmac
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paymobctl import samples, signing
from paymobctl.signing import CallbackKind, NullConvention

from .test_simulate import TOKEN_PATHS

DOCS_SECRET = "04DC1A9490B8CC2094C011FC055ADCDB"
DOCS_STRING = (
    "1000002024-06-13T11:33:44.592345EGPfalsefalse1920364654097558truefalsefalsefalsetruefalse"
    "217503754302852false2346MasterCardcardtrue"
)
DOCS_HMAC = (
    "fa8ac0b7f3852e60c50e7fdd4ea5ef0bda96030c19dea1d55df8c76d6c08ab1877774662cbb04981dc84839ad4"
    "da560bcc8cb53b8973548657f7e8f8d2e79930"
)
REF_SECRET = "emulator_demo_hmac_secret_2025"
REF_TXN_HMAC = (
    "518ea0b42fa06ae6ce00bd997e951d4af58c6c7006d658228331fa5fd8775649879f97ebe0c92071b617372d3a"
    "aeae30b2f9401ec132cebf07371a4fad3007a2"
)
REF_TOKEN_HMAC = (
    "c67085c848c636e5e991f3f7e02a6e2741a3c8b997e235bc3e0cd8a09008c1596c80ec2c4d3621307b5935d7c7"
    "90e8d4ed526857edc227f3276742bb3a585a99"
)


def docs_obj() -> dict[str, Any]:
    body = samples.load("docs-transaction").body
    assert body is not None
    return copy.deepcopy(body["obj"])


def reference_obj() -> dict[str, Any]:
    body = samples.load("reference-transaction").body
    assert body is not None
    return copy.deepcopy(body["obj"])


def independent_hmac(secret: str, message: str) -> str:
    return hmac.new(secret.encode(), message.encode(), hashlib.sha512).hexdigest()


def test_docs_known_answer_vector() -> None:
    obj = docs_obj()
    fields = signing.collect_fields(CallbackKind.TRANSACTION, obj)
    assert signing.signing_string(fields) == DOCS_STRING
    assert independent_hmac(DOCS_SECRET, DOCS_STRING) == DOCS_HMAC
    assert signing.compute(CallbackKind.TRANSACTION, obj, DOCS_SECRET) == DOCS_HMAC
    result = signing.verify(CallbackKind.TRANSACTION, obj, DOCS_SECRET, DOCS_HMAC)
    assert result.valid and result.convention is NullConvention.EMPTY


def test_reference_vectors_post_get_and_token() -> None:
    assert signing.compute(CallbackKind.TRANSACTION, reference_obj(), REF_SECRET) == REF_TXN_HMAC
    redirect = signing.parse_query(samples.load("reference-redirect").url)
    assert redirect.hmac == REF_TXN_HMAC  # same 20 values → same HMAC as the POST (§7.2)
    assert signing.verify(CallbackKind.RESPONSE, redirect.data, REF_SECRET, redirect.hmac).valid
    token_body = samples.load("reference-token").body
    assert token_body is not None
    assert signing.compute(CallbackKind.TOKEN, token_body["obj"], REF_SECRET) == REF_TOKEN_HMAC


def test_field_lists_are_the_documented_ones() -> None:
    post = [f.post_path for f in signing.TRANSACTION_FIELDS]
    assert len(post) == 20
    assert [f.get_key for f in signing.TRANSACTION_FIELDS][13] == "order"
    assert [f.name for f in signing.collect_fields(CallbackKind.TOKEN, {})] == sorted(TOKEN_PATHS)
    assert [f.post_path for f in signing.DELIVERY_STATUS_FIELDS] == [
        "order_id",
        "order_delivery_status",
        "merchant_id",
        "merchant_name",
        "updated_at",
    ]


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (True, "true"),
        (False, "false"),
        (0, "0"),
        (25000, "25000"),
        ("MasterCard", "MasterCard"),
        ("", ""),
        (None, ""),
        (100.0, "100"),
    ],
)
def test_render_value(value: object, text: str) -> None:
    assert signing.render_value(value) == text


def test_constant_time_comparison_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    import _operator
    import importlib

    compute = importlib.import_module("paymobctl.signing.compute")  # the module, not compute()

    # The stdlib's constant-time comparison in C: the one hmac.compare_digest falls back to
    # without OpenSSL (signing avoids loading libcrypto at start-up).
    assert compute.compare_digest is _operator._compare_digest
    assert signing.compare_digest(b"abc", b"abc") and not signing.compare_digest(b"abc", b"abd")
    calls: list[tuple[bytes, bytes]] = []
    real = compute.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(compute, "compare_digest", spy)
    assert signing.verify(CallbackKind.TRANSACTION, docs_obj(), DOCS_SECRET, DOCS_HMAC).valid
    assert calls and calls[0][1] == DOCS_HMAC.encode()


@pytest.mark.parametrize("length", [0, 1, 64, 127, 128, 129, 300])
def test_keyed_sha512_is_hmac_sha512(length: int) -> None:
    """The HMAC built from two SHA-512 states is the stdlib's HMAC-SHA512 (RFC 2104), for keys
    shorter than, equal to and longer than the 128-byte block, and for several messages."""
    key = bytes((i * 37 + 11) % 256 for i in range(length))
    keyed = signing.KeyedSha512(key)
    for message in (b"", b"x", "é€".encode() * 100, bytes(range(256)) * 9):
        expected = hmac.new(key, message, hashlib.sha512)
        assert keyed.hexdigest(message) == expected.hexdigest()
        assert keyed.digest(message) == expected.digest()


@settings(max_examples=200, deadline=None)
@given(secret=st.text(max_size=200), message=st.text(max_size=400))
def test_digest_matches_stdlib_hmac(secret: str, message: str) -> None:
    key = secret.encode("utf-8", "surrogatepass")
    expected = hmac.new(key, message.encode("utf-8", "surrogatepass"), hashlib.sha512)
    assert signing.digest(secret, message) == expected.hexdigest()


# --- GET redirect variants ---------------------------------------------------------------------


def redirect_query(**changes: str) -> dict[str, str]:
    data = dict(signing.parse_query(samples.load("reference-redirect").url).data)
    data.update(changes)
    return data


def test_get_accepts_order_id_and_underscored_source_names() -> None:
    data = redirect_query()
    data["order_id"] = data.pop("order")
    for key in ("source_data.pan", "source_data.type", "source_data.sub_type"):
        data[key.replace(".", "_")] = data.pop(key)
    result = signing.verify(CallbackKind.RESPONSE, data, REF_SECRET, REF_TXN_HMAC)
    assert result.valid
    exp = signing.explain(CallbackKind.RESPONSE, data, REF_SECRET, REF_TXN_HMAC)
    assert {d.code for d in exp.diagnoses} == {"alias"}


def test_get_values_are_url_decoded_before_signing() -> None:
    url = samples.load("reference-redirect").url
    assert "%3A" in url
    payload = signing.parse_query(url)
    assert payload.data["created_at"] == "2025-03-17T12:54:36.718150"


def test_null_conventions_are_tried_and_reported() -> None:
    obj = reference_obj()
    obj["source_data"]["pan"] = None
    fields = signing.collect_fields(CallbackKind.TRANSACTION, obj)
    none_style = independent_hmac(REF_SECRET, signing.signing_string(fields, NullConvention.NONE))
    result = signing.verify(CallbackKind.TRANSACTION, obj, REF_SECRET, none_style)
    assert result.valid and result.convention is NullConvention.NONE
    canonical = signing.compute(CallbackKind.TRANSACTION, obj, REF_SECRET)
    assert (
        signing.verify(CallbackKind.TRANSACTION, obj, REF_SECRET, canonical).convention
        is NullConvention.EMPTY
    )
    # A missing GET key: Odoo's "false" default.
    data = redirect_query()
    del data["source_data.pan"]
    fields = signing.collect_fields(CallbackKind.RESPONSE, data)
    odoo = independent_hmac(REF_SECRET, signing.signing_string(fields, NullConvention.FALSE))
    assert (
        signing.verify(CallbackKind.RESPONSE, data, REF_SECRET, odoo).convention
        is NullConvention.FALSE
    )


def test_no_fallback_without_nulls() -> None:
    obj = reference_obj()
    fields = signing.collect_fields(CallbackKind.TRANSACTION, obj)
    none_style = independent_hmac(REF_SECRET, signing.signing_string(fields, NullConvention.NONE))
    assert none_style == REF_TXN_HMAC  # nothing is null: every convention is the same string
    assert signing.verify(CallbackKind.TRANSACTION, obj, REF_SECRET, "0" * 128).valid is False


# --- diagnoses ----------------------------------------------------------------------------------


def codes(exp: signing.Explanation) -> set[str]:
    return {d.code for d in exp.diagnoses}


def test_explain_wrong_secret() -> None:
    exp = signing.explain(CallbackKind.TRANSACTION, docs_obj(), "another-secret", DOCS_HMAC)
    assert not exp.valid and "wrong-secret" in codes(exp)
    assert exp.message == DOCS_STRING


def test_explain_one_hex_digit_is_not_another_secret() -> None:
    tampered = DOCS_HMAC[:-1] + ("0" if DOCS_HMAC[-1] != "0" else "1")
    exp = signing.explain(CallbackKind.TRANSACTION, docs_obj(), DOCS_SECRET, tampered)
    assert not exp.valid and codes(exp) == {"altered-signature"}
    assert "1 of 128" in exp.diagnoses[0].message


def test_explain_python_style_booleans() -> None:
    obj = docs_obj()
    fields = signing.collect_fields(CallbackKind.TRANSACTION, obj)
    python = "".join(str(f.raw) for f in fields)
    exp = signing.explain(
        CallbackKind.TRANSACTION, obj, DOCS_SECRET, independent_hmac(DOCS_SECRET, python)
    )
    assert "python-bool" in codes(exp)


def test_explain_python_style_values_in_query() -> None:
    data = redirect_query(success="True")
    exp = signing.explain(CallbackKind.RESPONSE, data, REF_SECRET, REF_TXN_HMAC)
    assert "python-bool-in-payload" in codes(exp) and not exp.valid


@pytest.mark.parametrize("received", [DOCS_HMAC.upper(), f"  {DOCS_HMAC}\n"])
def test_explain_uppercase_or_padded_hex(received: str) -> None:
    exp = signing.explain(CallbackKind.TRANSACTION, docs_obj(), DOCS_SECRET, received)
    assert not exp.valid and codes(exp) == {"hex-format"}


def test_explain_missing_field() -> None:
    obj = docs_obj()
    del obj["is_voided"]
    exp = signing.explain(CallbackKind.TRANSACTION, obj, DOCS_SECRET, DOCS_HMAC)
    assert "missing-field" in codes(exp)
    assert any("is_voided" in d.message for d in exp.diagnoses)


def test_explain_order_vs_order_id() -> None:
    data = redirect_query(order_id="999")
    fields = [
        f if f.name != "order" else signing.FieldValue("order", "order_id", "999", False)
        for f in signing.collect_fields(CallbackKind.RESPONSE, data)
    ]
    wrong = independent_hmac(REF_SECRET, signing.signing_string(fields))
    exp = signing.explain(CallbackKind.RESPONSE, data, REF_SECRET, wrong)
    assert "order-vs-order_id" in codes(exp)


def test_explain_url_encoded_values() -> None:
    url = samples.load("reference-redirect").url
    payload = signing.parse_query(url)
    raw = dict(pair.split("=", 1) for pair in payload.raw_query.split("&"))  # type: ignore[union-attr]
    raw.pop("hmac")
    wrong = independent_hmac(
        REF_SECRET, signing.signing_string(signing.collect_fields(CallbackKind.RESPONSE, raw))
    )
    exp = signing.explain(
        CallbackKind.RESPONSE, payload.data, REF_SECRET, wrong, raw_query=payload.raw_query
    )
    assert "url-encoded" in codes(exp)


def test_explain_secret_with_quotes_and_sha256_and_hex_key() -> None:
    obj = docs_obj()
    exp = signing.explain(CallbackKind.TRANSACTION, obj, f'"{DOCS_SECRET}" ', DOCS_HMAC)
    assert "secret-whitespace" in codes(exp)
    sha256 = hmac.new(DOCS_SECRET.encode(), DOCS_STRING.encode(), hashlib.sha256).hexdigest()
    assert "sha256" in codes(signing.explain(CallbackKind.TRANSACTION, obj, DOCS_SECRET, sha256))
    hexkey = hmac.new(bytes.fromhex(DOCS_SECRET), DOCS_STRING.encode(), hashlib.sha512).hexdigest()
    assert "secret-hex-decoded" in codes(
        signing.explain(CallbackKind.TRANSACTION, obj, DOCS_SECRET, hexkey)
    )


def test_explain_no_hmac_and_wrong_type() -> None:
    exp = signing.explain(CallbackKind.TOKEN, docs_obj(), DOCS_SECRET, None)
    assert {"no-hmac", "wrong-type"} <= codes(exp)


def test_delivery_status_is_experimental() -> None:
    obj = {
        "order_id": 1,
        "order_delivery_status": "Delivered",
        "merchant_id": 2,
        "merchant_name": "Shop",
        "updated_at": "2025-01-01T00:00:00",
    }
    digest = signing.compute(CallbackKind.DELIVERY_STATUS, obj, "s")
    assert digest == independent_hmac("s", "1Delivered2Shop2025-01-01T00:00:00")
    exp = signing.explain(CallbackKind.DELIVERY_STATUS, obj, "s", digest)
    assert exp.valid and exp.experimental and "experimental" in codes(exp)


# --- parsing ------------------------------------------------------------------------------------


def test_parse_body_shapes() -> None:
    assert (
        signing.parse_body('{"type": "TOKEN", "obj": {"token": "t", "masked_pan": "x"}}').kind
        is CallbackKind.TOKEN
    )
    assert signing.parse_body('{"token": "t", "masked_pan": "x"}').kind is CallbackKind.TOKEN
    flat = signing.parse_body('{"id": "1", "order": "2", "source_data.pan": "2346", "hmac": "ab"}')
    assert flat.kind is CallbackKind.RESPONSE and flat.hmac == "ab" and "hmac" not in flat.data
    for bad in (
        "not json",
        "[1, 2]",
        '{"type": "TRANSACTION", "obj": 5}',
        '{"type": "NOPE", "obj": {}}',
    ):
        with pytest.raises(signing.UsageError):
            signing.parse_body(bad)
    with pytest.raises(signing.UsageError):
        signing.parse_query("https://example.com/no-query")


# --- properties (STYLE §12) --------------------------------------------------------------------

scalar = st.one_of(
    st.booleans(),
    st.integers(min_value=0, max_value=10**12),
    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=30),
)
secrets = st.text(min_size=1, max_size=40).filter(lambda s: s.strip() == s)


def build_obj(values: list[Any]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for spec, value in zip(signing.TRANSACTION_FIELDS, values, strict=True):
        target = obj
        parts = spec.post_path.split(".")
        for part in parts[:-1]:
            target = target.setdefault(part, {})
        target[parts[-1]] = value
    return obj


@settings(max_examples=150, deadline=None)
@given(values=st.lists(scalar, min_size=20, max_size=20), secret=secrets)
def test_sign_then_verify(values: list[Any], secret: str) -> None:
    obj = build_obj(values)
    digest = signing.compute(CallbackKind.TRANSACTION, obj, secret)
    assert len(digest) == 128 and digest == digest.lower()
    assert signing.verify(CallbackKind.TRANSACTION, obj, secret, digest, check_shapes=False).valid


@settings(max_examples=150, deadline=None)
@given(
    values=st.lists(scalar, min_size=20, max_size=20),
    index=st.integers(min_value=0, max_value=19),
    replacement=scalar,
    secret=secrets,
)
def test_changing_any_signed_field_fails(
    values: list[Any], index: int, replacement: Any, secret: str
) -> None:
    obj = build_obj(values)
    digest = signing.compute(CallbackKind.TRANSACTION, obj, secret)
    if signing.render_value(replacement) == signing.render_value(values[index]):
        return  # the same text: not a change to the signed string
    changed = list(values)
    changed[index] = replacement
    assert not signing.verify(
        CallbackKind.TRANSACTION, build_obj(changed), secret, digest, check_shapes=False
    ).valid


@settings(max_examples=100, deadline=None)
@given(
    extra=st.dictionaries(
        st.text(min_size=1, max_size=12).filter(
            lambda k: k not in {f.post_path.split(".")[0] for f in signing.TRANSACTION_FIELDS}
        ),
        scalar,
        max_size=6,
    )
)
def test_unsigned_fields_do_not_matter(extra: dict[str, Any]) -> None:
    obj = docs_obj()
    obj.update(extra)
    obj["data"] = {"message": "anything"}
    obj["order"]["merchant_order_id"] = "changed"
    assert signing.verify(CallbackKind.TRANSACTION, obj, DOCS_SECRET, DOCS_HMAC).valid


@settings(max_examples=100, deadline=None)
@given(values=st.lists(scalar, min_size=20, max_size=20), secret=secrets)
def test_get_query_round_trip(values: list[Any], secret: str) -> None:
    flat = {
        spec.get_key: signing.render_value(v)
        for spec, v in zip(signing.TRANSACTION_FIELDS, values, strict=True)
    }
    digest = signing.compute(CallbackKind.RESPONSE, flat, secret)
    query = (
        "&".join(f"{quote(k, safe='.')}={quote(v, safe='')}" for k, v in flat.items())
        + f"&hmac={digest}"
    )
    payload = signing.parse_query(query)
    assert signing.verify(
        CallbackKind.RESPONSE, payload.data, secret, payload.hmac, check_shapes=False
    ).valid
    assert digest == signing.compute(CallbackKind.TRANSACTION, build_obj(values), secret)
