"""`paymobctl sandbox` as a user runs it: a real process, credentials, readiness, Ctrl-C, the full flow."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from paymobctl import config, signing
from paymobctl.sandbox_profile import SANDBOX
from paymobctl.signing import CallbackKind

from .conftest import run_cli
from .servers import Recorder, free_socket, serve, start_paymobctl, stop_paymobctl


def start(tmp_path: Path, callbacks_to: str | None = None) -> tuple[subprocess.Popen[str], str]:
    """`paymobctl sandbox`; with `callbacks_to` (a base URL), its callbacks go to the usual paths there."""
    if callbacks_to is None:
        return start_paymobctl("sandbox", tmp_path)
    webhook, response = (
        f"{callbacks_to}/api/payments/webhook/",
        f"{callbacks_to}/api/payments/response/",
    )
    return start_paymobctl(
        "sandbox", tmp_path, "--callback-url", webhook, "--response-url", response
    )


def billing(first_name: str, last_name: str, email: str, phone_number: str) -> dict[str, str]:
    """Billing data as a web shop sends it: the contact fields, "NA" for the address."""
    address = ("apartment", "floor", "street", "building", "shipping_method", "postal_code", "city")
    return {
        "first_name": first_name,
        "last_name": last_name,
        "email": email,
        "phone_number": phone_number,
        **dict.fromkeys(address, "NA"),
        "country": "EG",
        "state": "NA",
    }


def payment_key(
    http: httpx.Client, amount: str | int, *, order: dict[str, Any], key: dict[str, Any]
) -> str:
    """The legacy three calls (auth token, order, payment key) with plain HTTP; the key's token."""
    token = http.post("/api/auth/tokens", json={"api_key": SANDBOX.api_key}).json()["token"]
    created = http.post(
        "/api/ecommerce/orders",
        json={"auth_token": token, "amount_cents": amount, "currency": "EGP", **order},
    ).json()
    return str(
        http.post(
            "/api/acceptance/payment_keys",
            json={
                "auth_token": token,
                "amount_cents": amount,
                "order_id": created["id"],
                "currency": "EGP",
                "integration_id": SANDBOX.integration_id,
                **key,
            },
        ).json()["token"]
    )


def card_form(key: str, number: str, holder: str) -> dict[str, str]:
    """The hosted checkout's card form, expiry 12/39, card saved."""
    return {
        "payment_token": key,
        "card_number": number,
        "card_holder": holder,
        "expiry_month": "12",
        "expiry_year": "39",
        "cvv": "123",
        "save_card": "true",
    }


@pytest.fixture
def merchant() -> Iterator[tuple[Recorder, str]]:
    recorder = Recorder()
    with serve(recorder.app()) as base:
        yield recorder, base


@pytest.mark.slow
def test_prints_the_builtin_profile_credentials_and_stops_cleanly(tmp_path: Path) -> None:
    process, url = start(tmp_path)
    assert httpx.get(f"{url}/healthz").json() == {"status": "ok"}
    code, out, err = stop_paymobctl(process)
    assert code == 0, err
    lines = dict(line.split(": ", 1) for line in out.splitlines() if ": " in line)
    profile = config.resolve()
    assert lines["API key"] == profile.get("api_key").reveal()
    assert lines["Secret key"] == profile.get("secret_key").reveal()
    assert lines["Public key"] == profile.get("public_key")
    assert lines["HMAC secret"] == profile.get("hmac_secret").reveal()
    assert lines["Integration ID"] == str(profile.get("integration_id"))
    assert lines["MOTO integration ID"] == str(profile.get("moto_integration_id"))
    assert lines["Iframe ID"] == str(profile.get("iframe_id"))
    assert lines["Processed callback"] == "http://127.0.0.1:8000/api/payments/webhook/"
    assert lines["Response callback"] == "http://127.0.0.1:8000/api/payments/response/"
    ready_line = next(line for line in out.splitlines() if line.startswith("Ready:"))
    assert url in ready_line
    assert out.index("API key:") < out.index("Ready:")  # credentials first, ready once listening
    assert out.rstrip().endswith("sandbox stopped")
    assert "unauthenticated" not in err  # loopback: no warning


def test_a_non_loopback_bind_is_recognised_for_the_warning() -> None:
    """Acceptance review: `sandbox --host 0.0.0.0` warns that /_sandbox/… is unauthenticated.
    (No test binds beyond loopback: the check runs on what the socket reports.)"""
    import socket

    from paymobctl import serving

    class Bound:
        def __init__(self, address: str) -> None:
            self.address = address

        def getsockname(self) -> tuple[str, int]:
            return self.address, 8010

    for address in ("0.0.0.0", "::", "192.168.1.20", "fe80::1%eth0"):
        assert not serving.is_loopback(Bound(address)), address  # type: ignore[arg-type]
    for address in ("127.0.0.1", "127.0.0.2", "::1"):
        assert serving.is_loopback(Bound(address)), address  # type: ignore[arg-type]
    with socket.socket() as real:
        real.bind(("127.0.0.1", 0))
        assert serving.is_loopback(real)


def test_port_in_use_and_bad_callback_url(tmp_path: Path) -> None:
    busy = free_socket()
    busy.listen(1)
    port = busy.getsockname()[1]
    try:
        result = run_cli("sandbox", "--port", str(port))
        assert result.code == 2 and f"port {port} on 127.0.0.1 is already in use" in result.stderr
        assert "--port" in result.stderr
    finally:
        busy.close()
    result = run_cli("sandbox", "--port", "0", "--callback-url", "localhost:8000/hook")
    assert result.code == 2 and "--callback-url" in result.stderr and "invalid URL" in result.stderr


@pytest.mark.slow
def test_a_new_users_first_payment(tmp_path: Path, merchant: tuple[Recorder, str]) -> None:
    """The issue's 'done when': payment key with plain HTTP, checkout in a browser, callbacks arrive."""
    recorder, base = merchant
    process, url = start(tmp_path, callbacks_to=base)
    try:
        with httpx.Client(base_url=url) as http:
            key = payment_key(
                http,
                "15000",
                order={"delivery_needed": "false", "items": []},
                key={
                    "expiration": 3600,
                    "tokenization": "true",
                    "billing_data": billing("Ali", "Hassan", "ali@example.com", "+201000000001"),
                },
            )
            checkout = f"/api/acceptance/iframes/{SANDBOX.iframe_id}?payment_token={key}"
            assert "Pay with card" in http.get(checkout).text
            step = http.post(
                f"/api/acceptance/iframes/{SANDBOX.iframe_id}",
                data=card_form(key, "0000 0000 0000 2222", "Ali Hassan"),
            )
            otp_page = urlsplit(step.headers["location"]).path
            landed = http.post(otp_page, data={"otp": "1234"}, follow_redirects=True)
            http.post("/_sandbox/drain", timeout=40)  # the sandbox drains for up to 30 s
        assert landed.status_code == 200 and str(landed.url).startswith(
            f"{base}/api/payments/response/?"
        )
        get = next(r for r in recorder.requests if r.method == "GET")
        query = dict(parse_qsl(get.query, keep_blank_values=True))
        assert signing.verify(
            CallbackKind.RESPONSE, query, SANDBOX.hmac_secret, query.pop("hmac")
        ).valid
        posts = [r for r in recorder.requests if r.method == "POST"]
        # --callback-order defaults to token-first, as in the real 2025 pair (docs/paymob.md §14).
        assert [json.loads(r.body)["type"] for r in posts] == ["TOKEN", "TRANSACTION"]
        for request in posts:
            body = json.loads(request.body)
            received = dict(parse_qsl(request.query))["hmac"]
            assert signing.verify(
                CallbackKind(body["type"]), body["obj"], SANDBOX.hmac_secret, received
            ).valid
        deliveries = run_cli("sandbox", "deliveries", "--url", url, "--json").json()
        assert {d["state"] for d in deliveries} == {"delivered"}
        first = min(deliveries, key=lambda d: d["id"])
        original = next(r for r in posts if json.loads(r.body)["type"] == first["type"])
        resent = run_cli("sandbox", "deliveries", "--url", url, "--resend", str(first["id"]))
        assert resent.code == 0 and f"delivery {first['id']} queued again" in resent.stdout
        httpx.post(f"{url}/_sandbox/drain")
        again = [r for r in recorder.requests if r.method == "POST"]
        assert len(again) == len(posts) + 1
        assert again[-1].body == original.body and again[-1].query == original.query
        missing = run_cli("sandbox", "deliveries", "--url", url, "--resend", "9999")
        assert missing.code == 2 and "No delivery 9999" in missing.stderr
        assert (
            run_cli("sandbox", "callbacks", "--url", url, "--callback-url", f"{base}/x").code == 0
        )
        assert (
            run_cli("sandbox", "callbacks", "--url", url, "--json").json()["callback_url"]
            == f"{base}/x"
        )
    finally:
        code, out, _ = stop_paymobctl(process)
    assert code == 0
    assert "transaction" in out and "callback" in out  # the event log


def test_admin_commands_without_a_sandbox() -> None:
    result = run_cli("sandbox", "deliveries", "--url", "http://127.0.0.1:9")
    assert (
        result.code == 3
        and "no sandbox answers" in result.stderr
        and "paymobctl sandbox" in result.stderr
    )


def test_cards_listing() -> None:
    listing = run_cli("sandbox", "cards", "--json").json()
    numbers = {c.get("number") for c in listing}
    assert {
        "5123456789012346",
        "0000000000000000",
        "0000000000001111",
        "0000000000002222",
    } <= numbers
    text = run_cli("sandbox", "cards").stdout
    assert "OTP 1234" in text and "05/39" in text


@pytest.mark.slow
def test_sandbox_callbacks_reach_a_live_listen(tmp_path: Path) -> None:
    """checkout form → signed callbacks → `paymobctl listen` verifies and stores them."""
    db = tmp_path / "events.db"
    listener, listen_url = start_paymobctl("listen", tmp_path, "--db", str(db))
    sandbox, url = start(tmp_path, callbacks_to=listen_url)
    try:
        with httpx.Client(base_url=url) as http:
            key = payment_key(
                http,
                9900,
                order={"delivery_needed": False},
                key={"billing_data": billing("A", "B", "a@b.example", "+2010")},
            )
            landed = http.post(
                f"/api/acceptance/iframes/{SANDBOX.iframe_id}",
                follow_redirects=True,
                data=card_form(key, "0000000000000000", "A B"),
            )
            http.post("/_sandbox/drain", timeout=40)  # the sandbox drains for up to 30 s
        assert landed.status_code == 200 and landed.json() == {"detail": "ok"}
    finally:
        stop_paymobctl(sandbox)
        stop_paymobctl(listener)
    events = run_cli("--db", str(db), "events", "list", "--json").json()
    assert sorted(e["type"] for e in events) == ["RESPONSE", "TOKEN", "TRANSACTION"]
    assert {e["hmac_verdict"] for e in events} == {"valid"}
    assert run_cli("--db", str(db), "events", "list", "--invalid", "--json").json() == []


def test_unwritable_ready_file_is_refused_before_starting(tmp_path: Path) -> None:
    missing_dir = run_cli("sandbox", "--port", "0", "--ready-file", str(tmp_path / "no" / "ready"))
    assert missing_dir.code == 2 and "does not exist" in missing_dir.stderr
    a_dir = run_cli("sandbox", "--port", "0", "--ready-file", str(tmp_path))
    assert a_dir.code == 2 and "is a directory" in a_dir.stderr
    listen = run_cli("listen", "--port", "0", "--ready-file", str(tmp_path / "no" / "ready"))
    assert listen.code == 2 and "does not exist" in listen.stderr


def test_ready_file_write_failure_is_reported_not_raised(tmp_path: Path) -> None:
    from paymobctl.serving import write_ready_file

    tmp_path = tmp_path / "ready-dir"
    tmp_path.mkdir()
    target = tmp_path / "taken"
    target.mkdir()
    (target / "inside").write_text("x")  # a non-empty directory cannot be replaced by a file
    message = write_ready_file(target, "http://127.0.0.1:1")
    assert message is not None and "could not write --ready-file" in message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]  # no temporary file left
    ok = tmp_path / "ready"
    assert write_ready_file(ok, "http://127.0.0.1:1") is None
    assert ok.read_text() == "http://127.0.0.1:1\n"
    assert ok.stat().st_mode & 0o777 == 0o644  # readable by whoever waits for it


@pytest.mark.slow
@pytest.mark.parametrize(("command", "gap"), [("sandbox", 0.02), ("listen", 0.5)])
def test_double_ctrl_c_exits_quietly(command: str, gap: float, tmp_path: Path) -> None:
    # 0.02 s: the second Ctrl-C forces the shutdown; 0.5 s: it lands while the process ends.
    import signal
    import socket

    process, url = start_paymobctl(command, tmp_path, "--db", str(tmp_path / "s.db"))
    host, port = url.removeprefix("http://").rsplit(":", 1)
    # An idle keep-alive connection makes the first Ctrl-C wait for it: the second forces.
    with socket.create_connection((host, int(port))) as conn:
        conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        conn.recv(1024)
        process.send_signal(signal.SIGINT)
        time.sleep(gap)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=20)
    assert process.returncode == 0, (process.returncode, out, err)
    assert "Traceback" not in err and "CancelledError" not in err, err


def test_callback_order_option() -> None:
    assert "--callback-order" in run_cli("sandbox", "--help").stdout
    wrong = run_cli("sandbox", "--port", "0", "--callback-order", "sideways")
    assert wrong.code == 2 and "--callback-order" in wrong.stderr
    assert "Traceback" not in wrong.stderr
