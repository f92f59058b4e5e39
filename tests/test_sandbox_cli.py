"""`paymobctl sandbox` as a user runs it: a real process, credentials, readiness, Ctrl-C, the full flow."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from paymobctl import config, signing
from paymobctl.sandbox_profile import SANDBOX
from paymobctl.signing import CallbackKind

from .conftest import run_cli
from .servers import Recorder, free_socket, serve


def start(tmp_path: Path, *args: str) -> tuple[subprocess.Popen[str], str]:
    ready = tmp_path / f"ready-{time.monotonic_ns()}"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "paymobctl",
            "sandbox",
            "--port",
            "0",
            "--ready-file",
            str(ready),
            *args,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    deadline = time.monotonic() + 20
    while not ready.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"sandbox did not start: {process.communicate()}")
        time.sleep(0.02)
    return process, ready.read_text().strip()


def stop(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=20)
    return process.returncode, out, err


@pytest.fixture
def merchant() -> Iterator[tuple[Recorder, str]]:
    recorder = Recorder()
    with serve(recorder.app()) as base:
        yield recorder, base


def test_prints_the_builtin_profile_credentials_and_stops_cleanly(tmp_path: Path) -> None:
    process, url = start(tmp_path)
    assert httpx.get(f"{url}/healthz").json() == {"status": "ok"}
    code, out, err = stop(process)
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


def test_a_new_users_first_payment(tmp_path: Path, merchant: tuple[Recorder, str]) -> None:
    """The issue's 'done when': payment key with plain HTTP, checkout in a browser, callbacks arrive."""
    recorder, base = merchant
    process, url = start(
        tmp_path,
        "--callback-url",
        f"{base}/api/payments/webhook/",
        "--response-url",
        f"{base}/api/payments/response/",
    )
    try:
        with httpx.Client(base_url=url) as http:
            token = http.post("/api/auth/tokens", json={"api_key": SANDBOX.api_key}).json()["token"]
            order = http.post(
                "/api/ecommerce/orders",
                json={
                    "auth_token": token,
                    "delivery_needed": "false",
                    "amount_cents": "15000",
                    "currency": "EGP",
                    "items": [],
                },
            ).json()
            key = http.post(
                "/api/acceptance/payment_keys",
                json={
                    "auth_token": token,
                    "amount_cents": "15000",
                    "expiration": 3600,
                    "order_id": order["id"],
                    "currency": "EGP",
                    "integration_id": SANDBOX.integration_id,
                    "tokenization": "true",
                    "billing_data": {
                        "first_name": "Ali",
                        "last_name": "Hassan",
                        "email": "ali@example.com",
                        "phone_number": "+201000000001",
                        "apartment": "NA",
                        "floor": "NA",
                        "street": "NA",
                        "building": "NA",
                        "shipping_method": "NA",
                        "postal_code": "NA",
                        "city": "NA",
                        "country": "EG",
                        "state": "NA",
                    },
                },
            ).json()["token"]
            checkout = f"/api/acceptance/iframes/{SANDBOX.iframe_id}?payment_token={key}"
            assert "Pay with card" in http.get(checkout).text
            step = http.post(
                f"/api/acceptance/iframes/{SANDBOX.iframe_id}",
                data={
                    "payment_token": key,
                    "card_number": "0000 0000 0000 2222",
                    "card_holder": "Ali Hassan",
                    "expiry_month": "12",
                    "expiry_year": "25",
                    "cvv": "123",
                    "save_card": "true",
                },
            )
            otp_page = urlsplit(step.headers["location"]).path
            landed = http.post(otp_page, data={"otp": "1234"}, follow_redirects=True)
            http.post("/_sandbox/drain")
        assert landed.status_code == 200 and str(landed.url).startswith(
            f"{base}/api/payments/response/?"
        )
        get = next(r for r in recorder.requests if r.method == "GET")
        query = dict(parse_qsl(get.query, keep_blank_values=True))
        assert signing.verify(
            CallbackKind.RESPONSE, query, SANDBOX.hmac_secret, query.pop("hmac")
        ).valid
        posts = [r for r in recorder.requests if r.method == "POST"]
        assert [json.loads(r.body)["type"] for r in posts] == ["TRANSACTION", "TOKEN"]
        for request in posts:
            body = json.loads(request.body)
            received = dict(parse_qsl(request.query))["hmac"]
            assert signing.verify(
                CallbackKind(body["type"]), body["obj"], SANDBOX.hmac_secret, received
            ).valid
        deliveries = run_cli("sandbox", "deliveries", "--url", url, "--json").json()
        assert {d["state"] for d in deliveries} == {"delivered"}
        assert (
            run_cli("sandbox", "callbacks", "--url", url, "--callback-url", f"{base}/x").code == 0
        )
        assert (
            run_cli("sandbox", "callbacks", "--url", url, "--json").json()["callback_url"]
            == f"{base}/x"
        )
    finally:
        code, out, _ = stop(process)
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


def test_sandbox_callbacks_reach_a_live_listen(tmp_path: Path) -> None:
    """checkout form → signed callbacks → `paymobctl listen` verifies and stores them."""
    from .test_listen_cli import start_listen

    db = tmp_path / "events.db"
    listener, listen_url = start_listen(tmp_path, db)
    sandbox, url = start(
        tmp_path,
        "--callback-url",
        f"{listen_url}/api/payments/webhook/",
        "--response-url",
        f"{listen_url}/api/payments/response/",
    )
    try:
        with httpx.Client(base_url=url) as http:
            token = http.post("/api/auth/tokens", json={"api_key": SANDBOX.api_key}).json()["token"]
            order = http.post(
                "/api/ecommerce/orders",
                json={
                    "auth_token": token,
                    "delivery_needed": False,
                    "amount_cents": 9900,
                    "currency": "EGP",
                },
            ).json()
            key = http.post(
                "/api/acceptance/payment_keys",
                json={
                    "auth_token": token,
                    "amount_cents": 9900,
                    "order_id": order["id"],
                    "currency": "EGP",
                    "integration_id": SANDBOX.integration_id,
                    "billing_data": {
                        "first_name": "A",
                        "last_name": "B",
                        "email": "a@b.example",
                        "phone_number": "+2010",
                        "apartment": "NA",
                        "floor": "NA",
                        "street": "NA",
                        "building": "NA",
                        "shipping_method": "NA",
                        "postal_code": "NA",
                        "city": "NA",
                        "country": "EG",
                        "state": "NA",
                    },
                },
            ).json()["token"]
            landed = http.post(
                f"/api/acceptance/iframes/{SANDBOX.iframe_id}",
                follow_redirects=True,
                data={
                    "payment_token": key,
                    "card_number": "0000000000000000",
                    "card_holder": "A B",
                    "expiry_month": "12",
                    "expiry_year": "25",
                    "cvv": "123",
                    "save_card": "true",
                },
            )
            http.post("/_sandbox/drain")
        assert landed.status_code == 200 and landed.json() == {"detail": "ok"}
    finally:
        stop(sandbox)
        listener.send_signal(signal.SIGINT)
        listener.communicate(timeout=20)
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
