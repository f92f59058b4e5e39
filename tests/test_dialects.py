"""Signing dialects and the receiver diagnosis, against verifiers written with each mistake.

The mistaken verifiers below are written independently of paymobctl.dialects, the way the
mistakes appear in real code, so a dialect is only "right" when such code accepts its probe.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from paymobctl import callbacks, dialects, redirects, signing
from paymobctl.config import sandbox_settings
from paymobctl.diagnosis import diagnose, explain_rejection, make_probe, probe_callback
from paymobctl.dialects import Mistake
from paymobctl.models import CallbackKind

BY_MISTAKE = {d.mistake: d for d in dialects.DIALECTS}

SECRET = "dialect-test-secret-0000"
SETTINGS = sandbox_settings("http://127.0.0.1:9")

TXN = [
    "amount_cents", "created_at", "currency", "error_occured", "has_parent_transaction", "id",
    "integration_id", "is_3d_secure", "is_auth", "is_capture", "is_refunded",
    "is_standalone_payment", "is_voided", "order.id", "owner", "pending", "source_data.pan",
    "source_data.sub_type", "source_data.type", "success",
]  # fmt: skip
TOKEN = [
    "card_subtype",
    "created_at",
    "email",
    "id",
    "masked_pan",
    "merchant_id",
    "order_id",
    "token",
]
GET_TXN = ["order" if f == "order.id" else f for f in TXN]


def _mac(message: str) -> str:
    return hmac.new(SECRET.encode(), message.encode(), hashlib.sha512).hexdigest()


def _get(obj: Mapping[str, Any], path: str) -> Any:
    for part in path.split("."):
        if not isinstance(obj, Mapping) or part not in obj:
            return None
        obj = obj[part]
    return obj


def _right(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return "" if v is None else str(v)


# Each verifier takes (kind, data, raw_query) and returns the HMAC it expects.
Verifier = Callable[[CallbackKind, Mapping[str, Any], str], str]


def _names(kind: CallbackKind) -> list[str]:
    return {CallbackKind.TRANSACTION: TXN, CallbackKind.TOKEN: TOKEN}.get(kind, GET_TXN)


def _value(kind: CallbackKind, data: Mapping[str, Any], name: str) -> Any:
    return data.get(name) if kind is CallbackKind.RESPONSE else _get(data, name)


def v_correct(kind: CallbackKind, data: Mapping[str, Any], raw: str) -> str:
    return _mac("".join(_right(_value(kind, data, n)) for n in _names(kind)))


def v_python_bool(kind: CallbackKind, data: Mapping[str, Any], raw: str) -> str:
    return _mac("".join(str(_value(kind, data, n)) for n in _names(kind)))  # str(True), str(None)


def v_php_bool(kind: CallbackKind, data: Mapping[str, Any], raw: str) -> str:
    def php(v: Any) -> str:
        return ("1" if v else "") if isinstance(v, bool) else _right(v)

    return _mac("".join(php(_value(kind, data, n)) for n in _names(kind)))


def v_order_id(kind: CallbackKind, data: Mapping[str, Any], raw: str) -> str:
    def value(n: str) -> Any:
        return data.get("order_id") if n in ("order.id", "order") else _value(kind, data, n)

    return _mac("".join(_right(value(n)) for n in _names(kind)))


def v_url_encoded(kind: CallbackKind, data: Mapping[str, Any], raw: str) -> str:
    pairs = dict(p.split("=", 1) for p in raw.split("&"))  # never decoded
    return _mac("".join(pairs.get(n, "") for n in _names(kind)))


def v_none(kind: CallbackKind, data: Mapping[str, Any], raw: str) -> str:
    def render(v: Any) -> str:
        return "None" if v is None else _right(v)

    return _mac("".join(render(_value(kind, data, n)) for n in _names(kind)))


def v_payload_order(kind: CallbackKind, data: Mapping[str, Any], raw: str) -> str:
    wanted = set(_names(kind))
    out = []
    for key, value in data.items():
        if isinstance(value, dict):
            out += [_right(v) for k, v in value.items() if f"{key}.{k}" in wanted]
        elif key in wanted:
            out.append(_right(value))
    return _mac("".join(out))


def v_extra_field(kind: CallbackKind, data: Mapping[str, Any], raw: str) -> str:
    names = sorted([*_names(kind), "is_void"])
    return _mac("".join(_right(_value(kind, data, n)) for n in names))


def v_txn_for_token(kind: CallbackKind, data: Mapping[str, Any], raw: str) -> str:
    return _mac("".join(_right(_get(data, n)) for n in TXN))


MISTAKEN: dict[Mistake, Verifier] = {
    Mistake.PYTHON_BOOL: v_python_bool,
    Mistake.PHP_BOOL: v_php_bool,
    Mistake.ORDER_ID: v_order_id,
    Mistake.URL_ENCODED: v_url_encoded,
    Mistake.NONE_FOR_NULL: v_none,
    Mistake.PAYLOAD_ORDER: v_payload_order,
    Mistake.EXTRA_FIELD: v_extra_field,
    Mistake.TRANSACTION_LIST_FOR_TOKEN: v_txn_for_token,
}


def probe_data(kind: CallbackKind) -> dict[str, Any]:
    txn = probe_callback(make_probe(), SETTINGS)
    if kind is CallbackKind.TOKEN:
        return dict(callbacks.build_token(callbacks.token_spec_for(txn.obj)).obj)
    if kind is CallbackKind.RESPONSE:
        return dict(redirects.redirect_params(txn.obj, None))
    return dict(txn.obj)


def raw_query(kind: CallbackKind, data: Mapping[str, Any]) -> str:
    if kind is not CallbackKind.RESPONSE:
        return ""
    return redirects.encode_params([(k, str(v)) for k, v in data.items()])


def test_the_independent_correct_verifier_agrees_with_signing() -> None:
    for kind in (CallbackKind.TRANSACTION, CallbackKind.TOKEN, CallbackKind.RESPONSE):
        data = probe_data(kind)
        assert v_correct(kind, data, raw_query(kind, data)) == signing.compute(kind, data, SECRET)


@pytest.mark.parametrize(
    "kind", [CallbackKind.TRANSACTION, CallbackKind.TOKEN, CallbackKind.RESPONSE]
)
def test_each_dialect_is_accepted_only_by_its_own_mistake(kind: CallbackKind) -> None:
    data = probe_data(kind)
    applicable = dialects.applicable(kind)
    assert applicable
    for dialect in applicable:
        signed = dialects.sign(dialect, kind, data, SECRET)
        assert signed is not None, dialect.mistake
        raw = raw_query(kind, signed.data)
        kinds_mistakes = {d.mistake for d in applicable}
        accepted = {
            mistake
            for mistake, verifier in MISTAKEN.items()
            if mistake in kinds_mistakes
            and hmac.compare_digest(verifier(kind, signed.data, raw), signed.hmac)
        }
        assert dialect.mistake in accepted, dialect.mistake
        assert accepted == {dialect.mistake}, (dialect.mistake, accepted)
        # Paymob's canonical rendering gives another signature: the probe really is signed wrongly.
        assert signing.compute(kind, signed.data, SECRET) != signed.hmac


def test_dialects_do_not_apply_where_the_mistake_cannot_show() -> None:
    token = probe_data(CallbackKind.TOKEN)
    python = BY_MISTAKE[Mistake.PYTHON_BOOL]
    assert dialects.sign(python, CallbackKind.TOKEN, token, SECRET) is None  # no booleans signed
    assert Mistake.URL_ENCODED not in {
        d.mistake for d in dialects.applicable(CallbackKind.TRANSACTION)
    }
    assert "`True`" in python.finding and "`true`" in python.finding


def _endpoint(verifier: Verifier) -> httpx.Client:
    """A webhook that verifies with ``verifier`` and answers like the guide's view."""

    def handle(request: httpx.Request) -> httpx.Response:
        query = urlsplit(str(request.url)).query
        params = dict(parse_qsl(query, keep_blank_values=True))
        received = params.pop("hmac", "")
        if request.method == "GET":
            kind, data = CallbackKind.RESPONSE, params
            raw = "&".join(p for p in query.split("&") if not p.startswith("hmac="))
        else:
            body = json.loads(request.content)
            kind, data, raw = CallbackKind(body["type"]), body["obj"], ""
        if hmac.compare_digest(verifier(kind, data, raw), received):
            return httpx.Response(200, json={"detail": "ok"})
        return httpx.Response(401, json={"detail": "Invalid HMAC Signature"})

    return httpx.Client(transport=httpx.MockTransport(handle))


@pytest.mark.parametrize("mistake", list(Mistake))
def test_diagnosis_names_the_mistake_the_endpoint_makes(mistake: Mistake) -> None:
    dialect = BY_MISTAKE[mistake]
    kind = next(iter(sorted(dialect.kinds)))
    with _endpoint(MISTAKEN[mistake]) as http:
        found = diagnose(
            http, "http://shop.test/api/payments/webhook/", kind, SECRET, settings=SETTINGS
        )
    assert found.matched == (dialect,)
    assert found.finding().endswith(dialect.finding)
    assert found.fix == dialect.fix


def test_diagnosis_of_a_correct_endpoint_and_of_one_with_another_secret() -> None:
    with _endpoint(v_correct) as http:
        found = diagnose(
            http, "http://shop.test/w/", CallbackKind.TRANSACTION, SECRET, settings=SETTINGS
        )
    assert found.canonical_accepted and not found.matched and "signature is fine" in found.finding()

    def other_secret(kind: CallbackKind, data: Mapping[str, Any], raw: str) -> str:
        return signing.compute(kind, data, "another-secret")

    with _endpoint(other_secret) as http:
        found = diagnose(
            http, "http://shop.test/w/", CallbackKind.TRANSACTION, SECRET, settings=SETTINGS
        )
    assert not found.matched and not found.canonical_accepted
    assert "secret probably differs" in found.finding()
    assert "disagrees with Paymob's rules" in found.finding(secret_matches=True)


def test_diagnosis_of_an_endpoint_that_accepts_anything() -> None:
    def accept_all(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200)

    with httpx.Client(transport=httpx.MockTransport(accept_all)) as http:
        found = diagnose(
            http, "http://shop.test/w/", CallbackKind.TRANSACTION, SECRET, settings=SETTINGS
        )
    assert found.unverified and "does not verify the HMAC" in found.finding()


def test_every_probe_is_a_declined_unknown_order() -> None:
    seen: list[dict[str, Any]] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        return httpx.Response(401)

    with httpx.Client(transport=httpx.MockTransport(record)) as http:
        diagnose(http, "http://shop.test/w/", CallbackKind.TRANSACTION, SECRET, settings=SETTINGS)
    assert len(seen) >= 2 + 5
    for body in seen:
        obj = body["obj"]
        assert obj["success"] is False and obj["order"]["id"] >= 999_900_000_000
        assert obj["order"]["merchant_order_id"].startswith("paymobctl-probe-")


# --- the CLI: simulate --expect-reject, simulate's diagnosis, hmac fields ---------------------------


def test_simulate_expect_reject() -> None:
    from .conftest import run_cli
    from .inprocess import in_process
    from .servers import Recorder

    recorder = Recorder(status=401)
    with in_process(recorder.app()) as base:
        rejected = run_cli(
            "simulate", "transaction", "--to", f"{base}/w/", "--bad-hmac", "--expect-reject"
        )
        assert rejected.code == 0 and "rejected as expected (HTTP 401)" in rejected.stdout
        assert len(recorder.requests) == 1  # no diagnosis probes for a negative test
        recorder.status = 200
        accepted = run_cli(
            "simulate", "transaction", "--to", f"{base}/w/", "--unsigned", "--expect-reject"
        )
        assert accepted.code == 1 and "expected a 4xx rejection, got HTTP 200" in accepted.output


def test_simulate_diagnoses_a_rejected_token_and_a_csrf_block(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from .conftest import run_cli
    from .inprocess import in_process
    from .servers import Recorder, free_port

    monkeypatch.setenv("PAYMOB_BASE_URL", f"http://127.0.0.1:{free_port()}")  # no account to ask
    recorder = Recorder(status=403)
    with in_process(recorder.app()) as base:
        result = run_cli("simulate", "token", "--to", f"{base}/w/")
    assert result.code == 1
    # Every probe is refused the same way: no mistake explains it, and with no account to compare
    # the secret with, the secret is the suspect.
    assert "diagnosis: no common implementation mistake is accepted" in result.stdout
    assert "secret probably differs" in result.stdout
    assert len(recorder.requests) > 3

    def csrf(request: httpx.Request) -> httpx.Response:
        return httpx.Response(403, text="<h1>Forbidden (403)</h1><p>CSRF verification failed.</p>")

    with httpx.Client(transport=httpx.MockTransport(csrf)) as http:
        from paymobctl.diagnosis import explain_rejection

        verdict = explain_rejection(
            http, "http://shop.test/w/", CallbackKind.TRANSACTION, SECRET, settings=SETTINGS,
            status=403, answer_text="CSRF verification failed. Request aborted.",
        )  # fmt: skip
    assert verdict is not None and "CSRF" in verdict.text and "csrf_exempt" in (verdict.fix or "")


def test_hmac_fields() -> None:
    from .conftest import run_cli

    token = run_cli("hmac", "fields", "token")
    assert token.code == 0
    listed = [ln.split(". ", 1)[1] for ln in token.stdout.splitlines() if ". " in ln[:6]]
    assert listed == TOKEN
    assert "true / false in lowercase" in token.stdout
    redirect = run_cli("--json", "hmac", "fields", "redirect").json()
    assert [f["field"] for f in redirect["fields"]["redirect"]] == GET_TXN
    everything = run_cli("--json", "hmac", "fields").json()["fields"]
    assert [f["field"] for f in everything["transaction"]] == TXN
    bad = run_cli("hmac", "fields", "refund")
    assert bad.code == 2 and "choose transaction, token or redirect" in bad.stderr


def test_simulate_blames_the_code_when_the_account_holds_the_same_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from paymobctl.emulator import create_app as create_sandbox

    from .conftest import run_cli
    from .inprocess import in_process
    from .servers import Recorder

    recorder = Recorder(status=401)
    with in_process(create_sandbox()) as sandbox, in_process(recorder.app()) as base:
        monkeypatch.setenv("PAYMOB_BASE_URL", sandbox)
        result = run_cli("simulate", "transaction", "--to", f"{base}/w/")
    assert result.code == 1
    assert "the secret matches the account" in result.stdout
    assert "disagrees with Paymob's rules" in result.stdout


def test_an_app_that_verifies_then_404s_unknown_orders_is_diagnosed() -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        params = dict(parse_qsl(urlsplit(str(request.url)).query))
        obj = json.loads(request.content)["obj"]
        if not hmac.compare_digest(
            v_python_bool(CallbackKind.TRANSACTION, obj, ""), params["hmac"]
        ):
            return httpx.Response(401)
        return httpx.Response(404, json={"detail": "Transaction not found"})  # verified first

    with httpx.Client(transport=httpx.MockTransport(handle)) as http:
        found = diagnose(
            http, "http://shop.test/w/", CallbackKind.TRANSACTION, SECRET, settings=SETTINGS
        )
    assert [d.mistake for d in found.matched] == [Mistake.PYTHON_BOOL]


def test_checklist_blames_the_code_when_api_004_passes(monkeypatch: pytest.MonkeyPatch) -> None:
    from paymobctl.emulator import create_app as create_sandbox

    from . import django_site
    from .conftest import run_cli
    from .inprocess import in_process

    # The profile's secret is the account's (the sandbox's); the deployment verifies with another.
    with (
        in_process(create_sandbox()) as sandbox,
        in_process(django_site.application(), lifespan="off") as app,
    ):
        monkeypatch.setenv("PAYMOB_BASE_URL", sandbox)
        result = run_cli("--json", "checklist", f"{app}/good")
    checks = {c["id"]: c for c in result.json()["checks"]}
    assert checks["PMB-API-004"]["status"] == "pass"
    found = checks["PMB-HMAC-003"]
    assert found["status"] == "fail" and "disagrees with Paymob's rules" in found["detail"]
    assert "secret probably differs" not in found["detail"]
    assert "_secret_matches" not in json.dumps(found)  # internal, never shown


@pytest.mark.parametrize("status", [404, 405])
def test_a_wrong_path_is_no_endpoint_not_a_verification_mistake(status: int) -> None:
    """Acceptance review: every probe got the same 404/405; the verification code never ran."""
    seen: list[str] = []

    def missing(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(status)

    with httpx.Client(transport=httpx.MockTransport(missing)) as http:
        found = diagnose(http, "http://shop.test/w/", CallbackKind.TRANSACTION, SECRET, settings=SETTINGS)  # fmt: skip
        verdict = explain_rejection(
            http, "http://shop.test/w/", CallbackKind.TRANSACTION, SECRET, settings=SETTINGS,
            status=status, answer_text="",
        )  # fmt: skip
    assert len(seen) == 4  # canonical and wrong hmac, twice: no mistake probes
    assert found.no_endpoint == status and not found.matched
    text = found.finding()
    assert text.startswith("no endpoint at this path/method") and f"HTTP {status}" in text
    assert "secret" not in text and "verification code never ran" in text
    assert verdict is not None and verdict.text == text and verdict.fix is None


def test_a_404_for_the_signed_probe_only_is_still_diagnosed() -> None:
    """An app that verifies first and answers 404 for the unknown order is not "no endpoint"."""

    def verifying(request: httpx.Request) -> httpx.Response:
        query = dict(httpx.QueryParams(request.url.query))
        digest = signing.compute(
            CallbackKind.TRANSACTION, json.loads(request.content)["obj"], SECRET
        )
        return httpx.Response(404 if query["hmac"] == digest else 401)

    with httpx.Client(transport=httpx.MockTransport(verifying)) as http:
        found = diagnose(http, "http://shop.test/w/", CallbackKind.TRANSACTION, SECRET, settings=SETTINGS)  # fmt: skip
    assert found.no_endpoint is None and found.canonical_accepted and len(found.tried) > 2


@pytest.mark.parametrize("status", [404, 405])
def test_simulate_expect_reject_does_not_pass_on_no_endpoint(status: int) -> None:
    from .conftest import run_cli
    from .inprocess import in_process
    from .servers import Recorder

    recorder = Recorder(status=status)
    with in_process(recorder.app()) as base:
        result = run_cli(
            "simulate", "transaction", "--to", f"{base}/typo/", "--bad-hmac", "--expect-reject"
        )
    assert result.code == 1, result.output
    assert f"got HTTP {status}: no endpoint at this path/method" in result.output
    assert "rejected as expected" not in result.output
