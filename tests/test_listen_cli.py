"""`paymobctl listen` and `paymobctl events` as a user runs them, plus the reliability guarantees."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest

from paymobctl import callbacks, serving, tunnel
from paymobctl.callbacks import TransactionSpec
from paymobctl.delivery import wire_json
from paymobctl.errors import TunnelError
from paymobctl.receiver import create_app as create_receiver
from paymobctl.sandbox_profile import SANDBOX
from paymobctl.store import Store

from .conftest import run_cli
from .inprocess import in_process
from .servers import Recorder, free_socket, serve, start_paymobctl, stop_paymobctl

WEBHOOK = "/api/payments/webhook/"


def start_listen(tmp_path: Path, db: Path, *args: str) -> tuple[subprocess.Popen[str], str]:
    return start_paymobctl("listen", tmp_path, "--db", str(db), *args)


def signed_transaction(number: int) -> tuple[bytes, str]:
    txn = callbacks.build_transaction(
        TransactionSpec(seed=number, transaction_id=700_000_000 + number)
    )
    return wire_json(txn.body), txn.sign(SANDBOX.hmac_secret)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "events.db"


@pytest.fixture
def running(tmp_path: Path, db: Path) -> Iterator[str]:
    process, url = start_listen(tmp_path, db)
    try:
        yield url
    finally:
        stop_paymobctl(process)


@pytest.mark.slow
def test_listen_end_to_end_with_simulate_and_events(tmp_path: Path, db: Path) -> None:
    app = Recorder()
    with serve(app.app()) as target:
        process, url = start_listen(tmp_path, db, "--forward-to", f"{target}/app/webhook/")
        try:
            assert httpx.get(f"{url}/healthz").json() == {"status": "ok"}
            simulate = ["--db", str(tmp_path / "sim.db"), "simulate", "transaction"]
            simulate += ["--to", f"{url}{WEBHOOK}", "--seed", "31"]
            request = json.loads(run_cli(*simulate, "--print").stdout)
            assert run_cli(*simulate).code == 0
            assert (
                run_cli("simulate", "transaction", "--to", f"{url}{WEBHOOK}", "--bad-hmac").code
                == 1
            )
            assert (
                run_cli("simulate", "response", "--to", f"{url}/api/payments/response/").code == 0
            )
            deadline = time.monotonic() + 10
            while len(app.requests) < 3 and time.monotonic() < deadline:
                time.sleep(0.02)
        finally:
            code, out, err = stop_paymobctl(process)
    assert code == 0, err
    lines = out.splitlines()
    assert any(line.startswith("Ready: listening on http://127.0.0.1:") for line in lines)
    assert lines.index(next(line for line in lines if line.startswith("Ready:"))) < next(
        i for i, line in enumerate(lines) if "TRANSACTION" in line and "HMAC valid" in line
    )
    assert any("HMAC INVALID" in line and "401" in line for line in lines)
    assert any("↳" in line and "/app/webhook/" in line for line in lines)
    assert "listener stopped" in lines[-1]
    # Forwarded byte for byte.
    forwarded = next(r for r in app.requests if r.method == "POST")
    assert (
        forwarded.body
        == json.dumps(request["body"], separators=(",", ":"), ensure_ascii=False).encode()
    )
    listing = run_cli("--db", str(db), "events", "list", "--json").json()
    assert [e["type"] for e in listing] == ["RESPONSE", "TRANSACTION", "TRANSACTION"]
    assert [e["hmac_verdict"] for e in listing] == ["valid", "invalid", "valid"]
    assert [
        e["id"] for e in run_cli("--db", str(db), "events", "list", "--invalid", "--json").json()
    ] == [2]
    assert (
        len(run_cli("--db", str(db), "events", "list", "--type", "TRANSACTION", "--json").json())
        == 2
    )
    assert run_cli("--db", str(db), "events", "list", "--since", "1h", "--json").json() == listing
    assert (
        run_cli("--db", str(db), "events", "list", "--since", "2999-01-01", "--json").json() == []
    )
    assert run_cli("--db", str(db), "events", "list", "--since", "yesterday").code == 2
    shown = run_cli("--db", str(db), "events", "show", "1", "--json").json()
    assert shown["hmac_explanation"]["valid"] is True and shown["body"] == json.dumps(
        request["body"], separators=(",", ":"), ensure_ascii=False
    )
    assert shown["forwards"][0]["status"] == 200
    text = run_cli("--db", str(db), "events", "show", "2")
    assert "result:        INVALID" in text.stdout and "signed string" in text.stdout
    assert run_cli("--db", str(db), "events", "show", "99").code == 2
    exported = run_cli("--db", str(db), "events", "export").stdout.splitlines()
    assert [json.loads(line)["id"] for line in exported] == [1, 2, 3]


@pytest.fixture
def receiving(db: Path) -> Iterator[str]:
    """The receiver `listen` serves, in process, writing `db`."""
    with (
        Store(db) as store,
        in_process(create_receiver(store=store, secret=SANDBOX.hmac_secret)) as url,
    ):
        yield url


def test_replay_byte_for_byte(tmp_path: Path, db: Path, receiving: str) -> None:
    body, digest = signed_transaction(1)
    httpx.post(
        f"{receiving}{WEBHOOK}?hmac={digest}",
        content=body,
        headers={"Content-Type": "application/json"},
    )
    app = Recorder()
    with in_process(app.app()) as target:
        result = run_cli("--db", str(db), "events", "replay", "1", "--to", f"{target}/mine/")
        assert result.code == 0, result.output
        assert app.requests[0].body == body and app.requests[0].query == f"hmac={digest}"
        assert app.requests[0].headers["content-type"] == "application/json"
        app.status = 500
        failed = run_cli(
            "--db", str(db), "events", "replay", "1", "--to", f"{target}/mine/", "--json"
        )
        assert failed.code == 1 and failed.json()["response"]["status"] == 500
    assert (
        run_cli("--db", str(db), "events", "replay", "1", "--to", "http://127.0.0.1:9/").code == 3
    )
    assert Store(db).deliveries()[0].origin == "replay"


@pytest.mark.slow
def test_sigkill_mid_burst_loses_no_acknowledged_event(tmp_path: Path, db: Path) -> None:
    process, url = start_listen(tmp_path, db)
    acknowledged: set[int] = set()
    lock = threading.Lock()
    stop = threading.Event()

    def burst(worker: int) -> None:
        with httpx.Client(base_url=url, timeout=5) as http:
            for n in range(worker * 10_000, worker * 10_000 + 2_000):
                if stop.is_set():
                    return
                body, digest = signed_transaction(n)
                try:
                    response = http.post(
                        f"{WEBHOOK}?hmac={digest}",
                        content=body,
                        headers={"Content-Type": "application/json"},
                    )
                except httpx.HTTPError:
                    return
                if response.status_code == 200:
                    with lock:
                        acknowledged.add(700_000_000 + n)

    threads = [threading.Thread(target=burst, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 20
    while len(acknowledged) < 300 and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)  # mid-burst: requests are in flight
    stop.set()
    for thread in threads:
        thread.join(timeout=20)
    process.communicate(timeout=20)
    assert len(acknowledged) >= 300
    stored = {e.transaction_id for e in Store(db).events(limit=None)}
    assert acknowledged <= stored, f"{len(acknowledged - stored)} acknowledged events were lost"


@pytest.mark.slow
def test_reading_events_while_listening_never_fails(tmp_path: Path, db: Path, running: str) -> None:
    stop = threading.Event()

    def writer() -> None:
        with httpx.Client(base_url=running) as http:
            n = 0
            while not stop.is_set():
                body, digest = signed_transaction(50_000 + n)
                http.post(
                    f"{WEBHOOK}?hmac={digest}",
                    content=body,
                    headers={"Content-Type": "application/json"},
                )
                n += 1

    threads = [threading.Thread(target=writer) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        for _ in range(40):
            result = run_cli("--db", str(db), "events", "list", "--limit", "5", "--json")
            assert result.code == 0, result.stderr
            assert "locked" not in result.stderr
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=20)
    assert Store(db).count_events() > 0


def test_port_in_use_exits_2_with_a_hint(db: Path) -> None:
    busy = free_socket()
    busy.listen(1)
    port = busy.getsockname()[1]
    try:
        result = run_cli("--db", str(db), "listen", "--port", str(port))
    finally:
        busy.close()
    assert result.code == 2 and "already in use" in result.stderr and "--port" in result.stderr


def test_bad_forward_options(db: Path) -> None:
    result = run_cli("--db", str(db), "listen", "--forward", "REFUND=http://x/")
    assert result.code == 2 and "TYPE=URL" in result.stderr
    result = run_cli("--db", str(db), "listen", "--forward-to", "localhost:8000/x")
    assert result.code == 2 and "invalid URL" in result.stderr
    result = run_cli("--db", str(db), "listen", "--path", "api/webhook")
    assert result.code == 2 and "absolute path" in result.stderr


# --- tunnel: a fake at the process edge (never ngrok itself) -----------------------------------


class FakeTunnel:
    opened: ClassVar[list[int]] = []
    closed = 0

    def __init__(self, options: tunnel.TunnelOptions, say: Any) -> None:
        self.authtoken = options.authtoken

    def open(self, port: int) -> str:
        FakeTunnel.opened.append(port)
        return "https://abc123.ngrok-free.app"

    def close(self) -> None:
        FakeTunnel.closed += 1


class BrokenTunnel(FakeTunnel):
    def open(self, port: int) -> str:
        raise TunnelError("ngrok could not open a tunnel (network unreachable)")


@pytest.fixture
def fake_serving(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Replace the blocking server loop: call on_ready once, then return as after Ctrl-C."""
    served: list[str] = []

    def run(app: Any, sock: Any, *, on_ready: Any, **config: Any) -> None:
        del app, config
        url = serving.base_url(sock)
        served.append(url)
        on_ready(url)
        sock.close()

    monkeypatch.setattr(serving, "run", run)
    return served


def test_tunnel_prints_the_dashboard_urls(
    monkeypatch: pytest.MonkeyPatch, fake_serving: list[str], db: Path
) -> None:
    monkeypatch.setitem(tunnel.FACTORIES, "ngrok", FakeTunnel)
    monkeypatch.setenv("NGROK_AUTHTOKEN", "tok-123456789")
    result = run_cli("--db", str(db), "listen", "--port", "0", "--tunnel", "ngrok")
    assert result.code == 0, result.output
    assert "Tunnel: https://abc123.ngrok-free.app" in result.stdout
    assert (
        "Transaction processed callback: https://abc123.ngrok-free.app/api/payments/webhook/"
        in result.stdout
    )
    assert (
        "Transaction response callback:  https://abc123.ngrok-free.app/api/payments/response/"
        in result.stdout
    )
    assert "browser warning" in result.stdout
    assert FakeTunnel.closed >= 1 and "tok-123456789" not in result.output


def test_tunnel_failure_keeps_serving_or_exits_3(
    monkeypatch: pytest.MonkeyPatch, fake_serving: list[str], db: Path
) -> None:
    monkeypatch.setitem(tunnel.FACTORIES, "ngrok", BrokenTunnel)
    result = run_cli("--db", str(db), "listen", "--port", "0", "--tunnel", "ngrok")
    assert result.code == 0 and "still listening locally" in result.stderr
    assert "Ready: listening on" in result.stdout and len(fake_serving) == 1
    required = run_cli(
        "--db", str(db), "listen", "--port", "0", "--tunnel", "ngrok", "--require-tunnel"
    )
    assert required.code == 3 and "network unreachable" in required.stderr
    assert len(fake_serving) == 1  # never started serving
    unknown = run_cli("--db", str(db), "listen", "--port", "0", "--tunnel", "localtunnel")
    assert unknown.code == 2 and "unknown --tunnel 'localtunnel'" in unknown.stderr


def test_tunnel_options_are_checked_before_anything_starts(
    monkeypatch: pytest.MonkeyPatch, fake_serving: list[str], db: Path
) -> None:
    monkeypatch.setitem(tunnel.FACTORIES, "ngrok", FakeTunnel)
    base = ["--db", str(db), "listen", "--port", "0"]
    opened = len(FakeTunnel.opened)
    cases = [
        (["--tunnel-domain", "shop.ngrok-free.app"], "need a tunnel"),
        (["--tunnel", "ngrok", "--tunnel-domain", "shop dev"], "--tunnel-domain 'shop dev'"),
        (["--tunnel", "ngrok", "--tunnel-region", "mars"], "not an ngrok region"),
    ]
    for args, message in cases:
        result = run_cli(*base, *args)
        assert result.code == 2 and message in result.stderr, result.output
    assert fake_serving == [] and len(FakeTunnel.opened) == opened
