"""`paymobctl simulate`: real delivery to a local app, byte-exact --print, history, error paths."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from paymobctl.sandbox_profile import SANDBOX
from paymobctl.store import Store

from .conftest import run_cli
from .inprocess import in_process
from .servers import Recorder, free_port, serve
from .test_callbacks import allowed_combinations

# An independent implementation of docs/paymob.md §8.1/§8.2, to check paymobctl's signatures.
TXN_PATHS = [
    "amount_cents", "created_at", "currency", "error_occured", "has_parent_transaction", "id",
    "integration_id", "is_3d_secure", "is_auth", "is_capture", "is_refunded", "is_standalone_payment",
    "is_voided", "order.id", "owner", "pending", "source_data.pan", "source_data.sub_type",
    "source_data.type", "success",
]  # fmt: skip
TOKEN_PATHS = [
    "card_subtype",
    "created_at",
    "email",
    "id",
    "masked_pan",
    "merchant_id",
    "order_id",
    "token",
]


def render(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def reference_hmac(secret: str, obj: dict[str, Any], paths: list[str]) -> str:
    def get(path: str) -> Any:
        current: Any = obj
        for part in path.split("."):
            current = current[part]
        return current

    message = "".join(render(get(p)) for p in paths)
    return hmac.new(secret.encode(), message.encode(), hashlib.sha512).hexdigest()


def reference_get_hmac(secret: str, query: dict[str, str]) -> str:
    keys = [("order" if p == "order.id" else p) for p in TXN_PATHS]
    return hmac.new(
        secret.encode(), "".join(query[k] for k in keys).encode(), hashlib.sha512
    ).hexdigest()


@pytest.fixture
def merchant() -> Iterator[tuple[Recorder, str]]:
    recorder = Recorder()
    with in_process(recorder.app()) as base:
        yield recorder, base


def test_print_is_the_exact_request_and_verifies_independently() -> None:
    result = run_cli("simulate", "transaction", "--print", "--seed", "7", "--amount", "150.50")
    assert result.code == 0 and result.stdout.count("\n") == 1
    printed = json.loads(result.stdout)
    assert set(printed) == {"method", "url", "body"} and printed["method"] == "POST"
    url = urlsplit(printed["url"])
    assert f"{url.scheme}://{url.netloc}{url.path}" == "http://127.0.0.1:8000/api/payments/webhook/"
    query = dict(parse_qsl(url.query))
    obj = printed["body"]["obj"]
    assert obj["amount_cents"] == 15050
    assert query["hmac"] == reference_hmac(SANDBOX.hmac_secret, obj, TXN_PATHS)
    again = run_cli("simulate", "transaction", "--print", "--seed", "7", "--amount", "150.50")
    assert again.stdout == result.stdout  # deterministic with a seed


@pytest.mark.parametrize(("outcome", "source"), allowed_combinations(), ids=str)
def test_every_outcome_and_source_is_delivered_signed(
    merchant: tuple[Recorder, str], outcome: Any, source: Any
) -> None:
    recorder, base = merchant
    url = f"{base}/api/payments/webhook/"
    simulate = ["simulate", "transaction", "--to", url, "--outcome", outcome.value]
    simulate += ["--source", source.value, "--seed", "5"]
    printed = run_cli(*simulate, "--print").json()
    result = run_cli(*simulate, "--json")
    assert result.code == 0, result.output
    sent = recorder.requests[-1]
    assert sent.method == "POST" and sent.path == "/api/payments/webhook/"
    assert sent.headers["content-type"] == "application/json"
    # --print is byte-exact with what is sent.
    assert (
        sent.body == json.dumps(printed["body"], separators=(",", ":"), ensure_ascii=False).encode()
    )
    assert f"{base}{sent.path}?{sent.query}" == printed["url"]
    body = json.loads(sent.body)
    assert body["type"] == "TRANSACTION"
    assert dict(parse_qsl(sent.query))["hmac"] == reference_hmac(
        SANDBOX.hmac_secret, body["obj"], TXN_PATHS
    )
    report = result.json()
    assert (
        report["response"]["status"] == 200
        and report["response"]["body_excerpt"] == '{"detail":"ok"}'
    )
    assert report["callback"]["outcome"] == outcome.value


@pytest.mark.parametrize(("outcome", "source"), allowed_combinations(), ids=str)
def test_every_outcome_as_get_redirect(
    merchant: tuple[Recorder, str], outcome: Any, source: Any
) -> None:
    recorder, base = merchant
    result = run_cli(
        "simulate",
        "response",
        "--to",
        f"{base}/api/payments/response/",
        "--outcome",
        outcome.value,
        "--source",
        source.value,
        "--seed",
        "8",
    )
    assert result.code == 0, result.output
    sent = recorder.requests[-1]
    assert sent.method == "GET" and sent.body == b""
    query = dict(parse_qsl(sent.query, keep_blank_values=True))
    assert query["hmac"] == reference_get_hmac(SANDBOX.hmac_secret, query)
    assert "order" in query and "source_data.pan" in query


def test_post_and_get_of_the_same_transaction_share_the_hmac(
    merchant: tuple[Recorder, str],
) -> None:
    _, base = merchant
    post = run_cli("simulate", "transaction", "--to", f"{base}/w", "--seed", "3", "--print").json()
    get = run_cli("simulate", "response", "--to", f"{base}/r", "--seed", "3", "--print").json()
    assert get["body"] is None and get["method"] == "GET"
    assert (
        dict(parse_qsl(urlsplit(post["url"]).query))["hmac"]
        == dict(parse_qsl(urlsplit(get["url"]).query))["hmac"]
    )


def test_token_matches_an_earlier_transaction(merchant: tuple[Recorder, str]) -> None:
    recorder, base = merchant
    url = f"{base}/api/payments/webhook/"
    assert (
        run_cli(
            "simulate",
            "transaction",
            "--to",
            url,
            "--order-id",
            "424242",
            "--brand",
            "visa",
            "--set",
            "obj.source_data.pan=4242",
            "--set",
            "obj.payment_key_claims.billing_data.email=buyer@shop.example",
        ).code
        == 0
    )
    result = run_cli("simulate", "token", "--to", url, "--order-id", "424242")
    assert result.code == 0, result.output
    assert "matches the transaction simulated earlier" in result.stderr
    body = json.loads(recorder.requests[-1].body)
    obj = body["obj"]
    assert body["type"] == "TOKEN" and obj["order_id"] == "424242"
    assert obj["card_subtype"] == "Visa" and obj["masked_pan"].endswith("4242")
    assert obj["email"] == "buyer@shop.example"
    assert dict(parse_qsl(recorder.requests[-1].query))["hmac"] == reference_hmac(
        SANDBOX.hmac_secret, obj, TOKEN_PATHS
    )
    unknown = run_cli("simulate", "token", "--to", url, "--order-id", "99")
    assert unknown.code == 0 and "no transaction was simulated for order 99" in unknown.stderr


def test_unsigned_bad_hmac_and_set(merchant: tuple[Recorder, str]) -> None:
    recorder, base = merchant
    assert run_cli("simulate", "transaction", "--to", f"{base}/w", "--unsigned").code == 0
    assert recorder.requests[-1].query == ""
    assert run_cli("simulate", "transaction", "--to", f"{base}/w", "--bad-hmac").code == 0
    sent = recorder.requests[-1]
    body = json.loads(sent.body)
    received = dict(parse_qsl(sent.query))["hmac"]
    assert len(received) == 128 and received != reference_hmac(
        SANDBOX.hmac_secret, body["obj"], TXN_PATHS
    )
    assert (
        run_cli(
            "simulate",
            "transaction",
            "--to",
            f"{base}/w",
            "--set",
            "obj.success=false",
            "--set",
            "obj.data.message=Do not honour",
        ).code
        == 0
    )
    body = json.loads(recorder.requests[-1].body)
    assert body["obj"]["success"] is False and body["obj"]["data"]["message"] == "Do not honour"
    assert dict(parse_qsl(recorder.requests[-1].query))["hmac"] == reference_hmac(
        SANDBOX.hmac_secret, body["obj"], TXN_PATHS
    )


def test_non_2xx_exits_1_and_shows_the_answer(merchant: tuple[Recorder, str]) -> None:
    recorder, base = merchant
    recorder.status = 403
    result = run_cli("simulate", "transaction", "--to", f"{base}/api/payments/webhook/")
    assert result.code == 1
    assert "403 Forbidden" in result.stdout and '{"detail":"nope"}' in result.stdout
    assert "content-type: application/json" in result.stdout


def test_history_records_requests_and_answers(
    merchant: tuple[Recorder, str], tmp_path: Path
) -> None:
    _, base = merchant
    db = tmp_path / "h.db"
    run_cli(
        "--db", str(db), "simulate", "transaction", "--to", f"{base}/w", "--outcome", "declined"
    )
    run_cli("--db", str(db), "simulate", "response", "--to", f"{base}/r", "--print")
    run_cli("--db", str(db), "simulate", "transaction", "--to", f"http://127.0.0.1:{free_port()}/w")
    rows = run_cli("--db", str(db), "simulate", "history", "--json").json()
    assert [r["origin"] for r in rows] == ["simulate", "print", "simulate"]
    assert rows[2]["outcome"] == "declined" and rows[2]["status"] == 200
    assert rows[0]["status"] is None and "refused" in rows[0]["error"].lower()
    stored = Store(db).delivery(rows[2]["id"])
    assert (
        stored is not None and stored.request_body and stored.response_excerpt == '{"detail":"ok"}'
    )
    text = run_cli("--db", str(db), "simulate", "history")
    assert "printed" in text.stdout and "TRANSACTION" in text.stdout
    only = run_cli("--db", str(db), "simulate", "history", "--type", "RESPONSE", "--json").json()
    assert [r["type"] for r in only] == ["RESPONSE"]


def test_full_pan_set_by_the_user_is_masked_in_the_store(
    merchant: tuple[Recorder, str], tmp_path: Path
) -> None:
    recorder, base = merchant
    db = tmp_path / "p.db"
    run_cli(
        "--db",
        str(db),
        "simulate",
        "transaction",
        "--to",
        f"{base}/w",
        "--set",
        "obj.source_data.pan=5123456789012346",
    )
    assert b"5123456789012346" in recorder.requests[-1].body  # sent as asked
    data = b"".join(p.read_bytes() for p in tmp_path.glob("p.db*"))
    assert b"5123456789012346" not in data
    assert Store(db).deliveries()[0].pan_masked


def test_error_paths() -> None:
    port = free_port()
    cases = [
        (
            ("simulate", "transaction", "--to", f"http://127.0.0.1:{port}/w"),
            3,
            "nothing is listening at",
        ),
        (("simulate", "transaction", "--to", "not a url"), 2, "invalid URL"),
        (
            ("simulate", "transaction", "--set", "obj.nope.deeper=1", "--print"),
            2,
            "'obj.nope' does not exist",
        ),
        (("simulate", "transaction", "--set", "novalue", "--print"), 2, "expected PATH=VALUE"),
        (
            ("simulate", "transaction", "--outcome", "auth_failed", "--source", "kiosk"),
            2,
            "3-D Secure",
        ),
        (("simulate", "transaction", "--amount", "abc"), 2, "invalid amount"),
        (("simulate", "transaction", "--amount", "1.234"), 2, "more than 2 decimals"),
        (("simulate", "transaction", "--amount", "1", "--amount-cents", "100"), 2, "exclusive"),
        (("simulate", "transaction", "--unsigned", "--bad-hmac"), 2, "exclusive"),
        (("simulate", "token", "--source", "wallet"), 2, "saved cards"),
        (("simulate", "transaction", "--outcome", "maybe"), 2, "maybe"),
    ]
    for args, code, needle in cases:
        result = run_cli(*args)
        assert result.code == code, (args, result.output)
        assert needle in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.output
        assert "nothing is listening" not in needle or "paymobctl listen" in result.stderr


def test_missing_secret_explains(config_file: Path) -> None:
    config_file.parent.mkdir(parents=True)
    config_file.write_text('default_profile = "shop"\n[profiles.shop]\niframe_id = 1\n')
    result = run_cli("simulate", "transaction", "--print")
    assert (
        result.code == 2
        and "hmac_secret is not set" in result.stderr
        and "PAYMOB_HMAC_SECRET" in result.stderr
    )
    assert run_cli("simulate", "transaction", "--print", "--unsigned").code == 0


def test_tls_failure_hints_insecure(tmp_path: Path) -> None:
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.private_key_pem.write_to_path(str(key_file))
    cert.cert_chain_pems[0].write_to_path(str(cert_file))
    recorder = Recorder()
    with serve(recorder.app(), ssl_certfile=str(cert_file), ssl_keyfile=str(key_file)) as base:
        url = base.replace("http://", "https://") + "/w"
        result = run_cli("simulate", "transaction", "--to", url)
        assert result.code == 3 and "--insecure" in result.stderr
        assert run_cli("simulate", "transaction", "--to", url, "--insecure").code == 0
        assert recorder.requests[-1].method == "POST"


def test_hostile_arguments_are_clear_errors() -> None:
    too_big = run_cli("simulate", "transaction", "--print", "--order-id", str(2**63))
    assert (
        too_big.code == 2 and "--order-id" in too_big.stderr and "Traceback" not in too_big.output
    )
    assert run_cli("simulate", "transaction", "--print", "--order-id", "0").code == 2
    token = run_cli("simulate", "token", "--print", "--outcome", "declined")
    assert token.code == 2 and "--outcome" in token.stderr


def test_non_finite_set_values_stay_valid_json() -> None:
    result = run_cli(
        "simulate", "transaction", "--print", "--set", "obj.amount_cents=NaN",
        "--set", "obj.data.amount=Infinity", "--set", "obj.data.currency=1e400",
    )  # fmt: skip
    assert result.code == 0, result.stderr
    body = json.loads(result.stdout, parse_constant=lambda c: pytest.fail(f"bare {c} in JSON"))[
        "body"
    ]
    assert body["obj"]["amount_cents"] == "NaN" and body["obj"]["data"]["amount"] == "Infinity"
    assert body["obj"]["data"]["currency"] == "1e400"


@pytest.mark.parametrize("value", ["²", "١٢", "abc", "9" * 5000])
def test_a_non_ascii_digit_order_id_is_sent_verbatim(value: str) -> None:
    """``"²"`` passes ``str.isdigit`` but is no integer: like any forged value it is sent as
    given (it used to crash with exit 70 in the int parser)."""
    result = run_cli("simulate", "transaction", "--print", "--set", f'obj.order.id="{value}"')
    assert result.code == 0, result.stderr
    assert json.loads(result.stdout)["body"]["obj"]["order"]["id"] == value


def test_lenient_int_takes_json_integers_and_ascii_digit_strings_only() -> None:
    from paymobctl.models import lenient_int

    assert [lenient_int(v) for v in (5, -3, "42", "007")] == [5, -3, 42, 7]
    for value in (True, False, 5.0, None, "", " 5", "-3", "+3", "1.5", "²", "١٢", "5x", [5]):
        assert lenient_int(value) is None, value
    assert lenient_int("9" * 19, max_digits=18) is None and lenient_int("9" * 18, max_digits=18)
    assert lenient_int("9" * 5000) is None  # beyond int()'s digit limit: not a crash
    assert lenient_int(-1, minimum=0) is None and lenient_int("0", minimum=0) == 0


def test_a_stale_hmac_in_the_target_url_is_replaced(merchant: tuple[Recorder, str]) -> None:
    recorder, base = merchant
    result = run_cli("simulate", "transaction", "--to", f"{base}/w?hmac=deadbeef&keep=1")
    assert result.code == 0, result.stderr
    query = parse_qsl(recorder.requests[-1].query)
    body = json.loads(recorder.requests[-1].body)
    assert ("keep", "1") in query and [v for k, v in query if k == "hmac"] == [
        reference_hmac(SANDBOX.hmac_secret, body["obj"], TXN_PATHS)
    ]


def test_unresolvable_host_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    real = socket.getaddrinfo

    def fake(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "shop.invalid":
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    result = run_cli("simulate", "transaction", "--to", "http://shop.invalid/w")
    assert result.code == 3 and "cannot resolve shop.invalid" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_response_redirects_count_as_delivered(merchant: tuple[Recorder, str]) -> None:
    recorder, base = merchant
    recorder.status = 302
    result = run_cli("simulate", "response", "--to", f"{base}/api/payments/response/")
    assert result.code == 0, result.output
    assert recorder.requests[-1].method == "GET"
    # A webhook must answer 2xx: the same status is a failure there.
    assert run_cli("simulate", "transaction", "--to", f"{base}/w").code == 1


def test_unresolvable_hosts_are_retried_by_forwarders() -> None:
    from paymobctl.delivery import Result

    assert Result("http://app:8000/", error="dns").failed_transiently
    assert not Result("http://app:8000/", error="tls").failed_transiently


def test_set_outcome_fields_describe_what_was_sent(merchant: tuple[Recorder, str]) -> None:
    _, base = merchant
    result = run_cli("simulate", "transaction", "--to", f"{base}/w", "--set", "obj.success=false")
    assert result.code == 0, result.output
    assert "· declined card ·" in result.stdout and "approved" not in result.stdout
    assert "--set changed the outcome: the callback says declined (preset --outcome approved)" in (
        result.stderr
    )
    history = run_cli("simulate", "history", "--json").json()
    assert history[0]["outcome"] == "declined"
    pending = run_cli(
        "simulate", "transaction", "--to", f"{base}/w", "--outcome", "declined",
        "--set", "obj.pending=true",
    )  # fmt: skip
    assert "· pending card ·" in pending.stdout
    plain = run_cli("simulate", "transaction", "--to", f"{base}/w", "--set", "obj.id=5")
    assert "· approved card ·" in plain.stdout and "changed the outcome" not in plain.stderr


def test_key_flow_and_blocked_outcome_from_the_command_line() -> None:
    legacy = run_cli(
        "simulate", "transaction", "--print", "--seed", "3", "--key-flow", "legacy"
    ).json()
    claims = legacy["body"]["obj"]["payment_key_claims"]
    assert {"exp", "pmk_ip", "extra", "single_payment_attempt"} <= set(claims)
    assert "next_payment_intention" not in claims
    intention = run_cli("simulate", "transaction", "--print", "--seed", "3").json()
    assert intention["body"]["obj"]["payment_key_claims"]["next_payment_intention"].startswith(
        "pi_test_"
    )
    blocked = run_cli("simulate", "response", "--print", "--outcome", "blocked", "--seed", "3")
    assert blocked.code == 0
    url = blocked.json()["url"]
    assert "txn_response_code=BLOCKED" in url and "acq_response_code" not in url
    refused = run_cli("simulate", "transaction", "--outcome", "blocked", "--source", "wallet")
    assert refused.code == 2 and "blocked" in refused.stderr and "Traceback" not in refused.stderr


@pytest.mark.parametrize(
    ("source", "env", "expected"),
    [
        ("wallet", {}, SANDBOX.wallet_integration_id),
        ("kiosk", {}, SANDBOX.kiosk_integration_id),
        ("wallet", {"PAYMOB_WALLET_INTEGRATION_ID": "7700001"}, 7700001),
        ("kiosk", {"PAYMOB_KIOSK_INTEGRATION_ID": "7700002"}, 7700002),
        ("card", {"PAYMOB_WALLET_INTEGRATION_ID": "7700001"}, SANDBOX.integration_id),
    ],
)
def test_wallet_and_kiosk_carry_their_own_integration_id(
    source: str, env: dict[str, str], expected: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Acceptance review: wallet and kiosk callbacks carried the card integration id."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    args = ("simulate", "transaction", "--source", source, "--print", "--to", "http://127.0.0.1:9/")
    obj = run_cli("--json", *args).json()["body"]["obj"]
    assert obj["integration_id"] == expected
    assert obj["payment_key_claims"]["integration_id"] == expected
    assert obj["data"]["gateway_integration_pk"] == expected


def test_credentials_in_urls_are_masked_in_output_and_never_stored(
    merchant: tuple[Recorder, str], tmp_path: Path
) -> None:
    """Acceptance review: http://user:pass@host/ was printed and stored in clear."""
    from paymobctl.models import mask_url_credentials

    recorder, base = merchant
    secret_url = base.replace("http://", "http://shop:Pa55w0rdXYZ@") + "/w/"
    db = tmp_path / "c.db"
    runs = [
        run_cli("--db", str(db), "simulate", "transaction", "--to", secret_url),
        run_cli("--db", str(db), "--json", "simulate", "transaction", "--to", secret_url),
        run_cli("--db", str(db), "simulate", "transaction", "--to", secret_url, "--count", "2"),
        run_cli("--db", str(db), "webhook", "test", secret_url),
        run_cli("--db", str(db), "webhook", "test", secret_url),
        run_cli("--db", str(db), "webhook", "history", secret_url),
        run_cli("--db", str(db), "simulate", "history", "--json"),
    ]
    assert runs[0].code == 0 and recorder.requests  # the credentials were still sent
    for result in runs:
        assert "Pa55w0rdXYZ" not in result.output, result.output
    assert "shop:****@" in runs[1].output and "shop:****@" in runs[5].output
    assert b"Pa55w0rdXYZ" not in db.read_bytes()
    # The history is found by the URL as the user types it.
    diff = run_cli("--db", str(db), "webhook", "history", secret_url, "--diff", "--json")
    assert diff.code == 0 and "shop:****@" in diff.json()["url"]
    assert mask_url_credentials("x https://a:b@h/ and ftp://u:p@h2") == (
        "x https://a:****@h/ and ftp://u:****@h2"
    )
    assert mask_url_credentials("https://token@h/ mail a@b.c") == "https://token@h/ mail a@b.c"
