"""The ngrok tunnel through the real pyngrok code, against a fake agent (tests/fake_ngrok.py).

pyngrok starts tests/fake_ngrok.py as the ``ngrok`` process, waits for its startup log lines,
talks to its local API and gets a "public URL" that relays to the listener, exactly as it would
with ngrok. Nothing is downloaded and nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from paymobctl import runfile, tunnel
from paymobctl.errors import TunnelError, UsageError
from paymobctl.paths import runtime_dir
from paymobctl.receiver import create_app
from paymobctl.sandbox_profile import SANDBOX
from paymobctl.store import Store

from .conftest import run_cli
from .servers import serve
from .test_listen import wait_for
from .test_listen_cli import WEBHOOK, signed_transaction

FAKE_NGROK = Path(__file__).with_name("fake_ngrok.py")


def install_fake_agent(path: Path | str) -> None:
    """Copy the fake agent to ``path``, run by this interpreter (PATH may hold nothing else)."""
    text = FAKE_NGROK.read_text(encoding="utf-8").split("\n", 1)[1]
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(f"#!{sys.executable}\n{text}", encoding="utf-8")
    Path(path).chmod(0o700)


@pytest.fixture
def agent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The fake agent as `ngrok` on PATH (nothing else there), its state directory set."""
    state = tmp_path / "ngrok-state"
    state.mkdir()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    install_fake_agent(bin_dir / "ngrok")
    monkeypatch.setenv("FAKE_NGROK_DIR", str(state))
    monkeypatch.setenv("PATH", str(bin_dir))
    return state


def starts(state: Path) -> list[dict[str, Any]]:
    path = state / "starts.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def endpoints(state: Path) -> list[dict[str, Any]]:
    path = state / "endpoints.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


class Health:
    """What the listener's /healthz reports: its id and (once supervised) the tunnel's state."""

    def __init__(self) -> None:
        self.supervisor: tunnel.Supervisor | None = None

    def __call__(self) -> dict[str, Any]:
        state = self.supervisor.snapshot() if self.supervisor else {}
        return {"listener": "listener-1", **state}


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[tuple[str, Store, Health]]:
    store = Store(tmp_path / "tunnel.db")
    health = Health()
    app = create_app(store=store, secret=SANDBOX.hmac_secret, health=health)
    with serve(app) as url:
        yield url, store, health
    store.close()


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def post_callback(base: str, number: int) -> httpx.Response:
    body, digest = signed_transaction(number)
    return httpx.post(
        f"{base}{WEBHOOK}?hmac={digest}",
        content=body,
        headers={"content-type": "application/json"},
        timeout=10,
    )


@pytest.mark.slow
def test_connect_forwards_the_public_url_to_the_listener(
    agent: Path, listener: tuple[str, Store, Health]
) -> None:
    url, store, _ = listener
    opened = tunnel.NgrokTunnel(tunnel.TunnelOptions(authtoken="tok-123"))
    public = opened.open(port_of(url))
    try:
        assert public.startswith("http://127.0.0.1:") and public != url
        assert post_callback(public, 1).status_code == 200
        assert store.count_events() == 1
        assert tunnel.probe(public, "listener-1", timeout=5) is None
        assert tunnel.probe(public, "someone-else", timeout=5) == (
            "the public URL is answered by something other than this listener"
        )
        (started,) = starts(agent)
        assert started["argv"][:4] == ["start", "--none", "--log", "stdout"]
        # The authtoken is in paymobctl's own ngrok config (0600), never on the command line.
        assert "--authtoken" not in started["argv"] and "tok-123" not in started["argv"]
        config = Path(started["argv"][started["argv"].index("--config") + 1])
        assert config == runtime_dir() / "ngrok.yml"
        assert config.stat().st_mode & 0o777 == 0o600
        assert config.read_text() == 'version: "3"\nagent:\n  authtoken: "tok-123"\n'
        (created,) = endpoints(agent)
        assert created["request"]["upstream"]["url"] == f"http://localhost:{port_of(url)}"
    finally:
        opened.close()
    assert tunnel.probe(public, "listener-1", timeout=2) is not None  # the agent is gone


@pytest.mark.slow
def test_static_domain_and_region(agent: Path, listener: tuple[str, Store, Health]) -> None:
    url, _, _ = listener
    options = tunnel.TunnelOptions(
        authtoken="tok",
        domain=tunnel.check_domain("https://Shop-Dev.ngrok-free.app/"),
        region=tunnel.check_region("EU"),
    )
    opened = tunnel.NgrokTunnel(options)
    try:
        assert opened.open(port_of(url)) == "https://shop-dev.ngrok-free.app"
        (created,) = endpoints(agent)
        assert created["request"]["url"] == "https://shop-dev.ngrok-free.app"
        argv = starts(agent)[0]["argv"]
        assert argv[argv.index("--region") + 1] == "eu"
        # The fake's relay for that domain reaches this very listener.
        routes = json.loads((agent / "routes.json").read_text())
        assert (
            tunnel.probe(routes["https://shop-dev.ngrok-free.app"], "listener-1", timeout=5) is None
        )
    finally:
        opened.close()
    refused = tunnel.NgrokTunnel(
        tunnel.TunnelOptions(authtoken="tok", domain="not-mine.ngrok-free.app")
    )
    with pytest.raises(TunnelError, match="ERR_NGROK_319") as info:
        refused.open(port_of(url))
    assert info.value.hint and "dashboard.ngrok.com/domains" in info.value.hint
    for bad in ("shop dev", "https://x.ngrok-free.app/path", "localhost:8000", ""):
        with pytest.raises(UsageError, match="--tunnel-domain"):
            tunnel.check_domain(bad)
    with pytest.raises(UsageError, match="not an ngrok region"):
        tunnel.check_region("mars")


@pytest.mark.slow
def test_the_machines_ngrok_config_supplies_the_authtoken(
    agent: Path, listener: tuple[str, Store, Health]
) -> None:
    url, _, _ = listener
    said: list[str] = []
    with pytest.raises(TunnelError, match="no ngrok authtoken") as info:
        tunnel.NgrokTunnel(tunnel.TunnelOptions(), said.append).open(port_of(url))
    assert info.value.hint and "ngrok config add-authtoken" in info.value.hint
    assert starts(agent) == []  # refused before starting anything
    config = Path(os.environ["XDG_CONFIG_HOME"]) / "ngrok" / "ngrok.yml"
    config.parent.mkdir(parents=True)
    config.write_text('version: "3"\nagent:\n  authtoken: machine-token-1\n')
    opened = tunnel.NgrokTunnel(tunnel.TunnelOptions(), said.append)
    try:
        opened.open(port_of(url))
    finally:
        opened.close()
    argv = starts(agent)[0]["argv"]
    assert "--authtoken" not in argv and argv[argv.index("--config") + 1] == str(config)
    assert said == [f"ngrok authtoken: from the ngrok config {config}"]


@pytest.mark.slow
def test_a_rejected_authtoken_is_one_clear_error(
    agent: Path, listener: tuple[str, Store, Health]
) -> None:
    url, _, _ = listener
    with pytest.raises(TunnelError) as info:
        tunnel.NgrokTunnel(tunnel.TunnelOptions(authtoken="bad-token")).open(port_of(url))
    assert "authentication failed" in info.value.message and "ERR_NGROK_4018" in info.value.message
    assert info.value.hint and "authtoken" in info.value.hint
    assert "\n" not in str(info.value)


@pytest.mark.slow
def test_first_use_installs_the_agent_through_pyngrok(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    listener: tuple[str, Store, Health],
) -> None:
    from pyngrok import installer

    state = tmp_path / "ngrok-state"
    state.mkdir()
    monkeypatch.setenv("FAKE_NGROK_DIR", str(state))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no ngrok anywhere
    monkeypatch.delenv("PYNGROK_NGROK_PATH", raising=False)
    installed: list[str] = []

    def fake_install(path: str, ngrok_version: str = "3", **kwargs: Any) -> None:
        # pyngrok's installer prints its progress on stdout; paymobctl routes it to stderr.
        print("Downloading ngrok: 100%", end="\r")
        install_fake_agent(path)
        installed.append(path)

    monkeypatch.setattr(installer, "install_ngrok", fake_install)
    url, _, _ = listener
    expected = Path(os.environ["XDG_CONFIG_HOME"]) / "ngrok" / "ngrok"

    said: list[str] = []
    refused = tunnel.NgrokTunnel(tunnel.TunnelOptions(authtoken="tok", install=False), said.append)
    with pytest.raises(TunnelError, match="not installed") as info:
        refused.open(port_of(url))
    assert info.value.hint and "--no-install" in info.value.hint and installed == []

    opened = tunnel.NgrokTunnel(tunnel.TunnelOptions(authtoken="tok"), said.append)
    try:
        public = opened.open(port_of(url))
        assert tunnel.probe(public, "listener-1", timeout=5) is None
    finally:
        opened.close()
    assert installed == [str(expected)]
    assert said[0].startswith(
        "ngrok agent not found: downloading it once from https://bin.ngrok.com/"
    )
    assert said[0].endswith(f"to {expected} (pyngrok's installer)")
    assert said[1] == f"ngrok agent installed at {expected}"
    captured = capsys.readouterr()
    assert "Downloading ngrok: 100%" in captured.err and "Downloading" not in captured.out
    # Next time the installed agent is found: nothing is downloaded again.
    assert tunnel.find_agent() == str(expected)


def test_pyngroks_own_wrapper_script_is_not_an_agent(tmp_path: Path) -> None:
    wrapper = tmp_path / "ngrok"
    wrapper.write_text("#!/usr/bin/python3\nimport sys\nfrom pyngrok.ngrok import main\nmain()\n")
    wrapper.chmod(0o755)
    assert tunnel.find_agent(str(wrapper)) is None
    assert tunnel.find_agent(str(FAKE_NGROK)) == str(FAKE_NGROK)


def supervise(
    opened: tunnel.Tunnel, url: str, public: str, health: Health, **options: Any
) -> tuple[tunnel.Supervisor, list[tunnel.TunnelEvent]]:
    events: list[tunnel.TunnelEvent] = []
    supervisor = tunnel.Supervisor(
        opened, port_of(url), public, "listener-1", on_event=events.append, **options
    )
    health.supervisor = supervisor
    return supervisor, events


@pytest.mark.slow
def test_supervisor_sees_a_drop_reconnects_and_reports_the_new_url(
    agent: Path, listener: tuple[str, Store, Health]
) -> None:
    url, store, health = listener
    opened = tunnel.NgrokTunnel(tunnel.TunnelOptions(authtoken="tok"))
    first = opened.open(port_of(url))
    supervisor, events = supervise(opened, url, first, health, interval=0.2, backoff=(0.1, 0.2))
    supervisor.start()
    try:
        wait_for(lambda: supervisor.checked_at is not None)
        assert events == [] and httpx.get(f"{first}/healthz").json()["tunnel"]["state"] == "up"
        os.kill(starts(agent)[-1]["pid"], signal.SIGKILL)  # the agent dies: the tunnel drops
        wait_for(lambda: len(events) >= 2)
        down, up = events[:2]
        assert down.state is tunnel.TunnelState.DOWN and down.message.startswith("tunnel DOWN: ")
        assert "reconnecting" in down.message
        assert up.state is tunnel.TunnelState.UP and up.changed and up.public_url != first
        assert (
            up.message
            == f"tunnel UP again: {up.public_url} (NEW URL: the old one no longer reaches this listener)"
        )
        assert up.public_url is not None and post_callback(up.public_url, 2).status_code == 200
        assert store.count_events() == 1
        report = httpx.get(f"{url}/healthz").json()
        assert report["status"] == "ok" and report["listener"] == "listener-1"
        assert report["tunnel"]["state"] == "up" and report["tunnel"]["reconnects"] == 1
        assert report["tunnel"]["public_url"] == up.public_url
        assert len(starts(agent)) == 2 and not supervisor.gave_up.is_set()
    finally:
        supervisor.stop()
        opened.close()


@pytest.mark.slow
def test_supervisor_gives_up_when_required(
    agent: Path, listener: tuple[str, Store, Health]
) -> None:
    url, _, health = listener
    opened = tunnel.NgrokTunnel(tunnel.TunnelOptions(authtoken="tok"))
    first = opened.open(port_of(url))
    supervisor, events = supervise(
        opened, url, first, health, require=True, interval=0.2, backoff=(0.05, 0.05, 0.05)
    )
    (agent / "refuse").touch()  # the network is gone: the agent cannot start again
    supervisor.start()
    try:
        os.kill(starts(agent)[-1]["pid"], signal.SIGKILL)
        assert supervisor.gave_up.wait(20)
        assert [e.state for e in events] == [tunnel.TunnelState.DOWN, tunnel.TunnelState.FAILED]
        assert events[1].message.startswith("tunnel could not be restored after 3 attempts (")
        assert "no such host" in events[1].message and "--require-tunnel" in events[1].message
        report = httpx.get(f"{url}/healthz").json()["tunnel"]
        assert report["state"] == "failed" and report["public_url"] is None
    finally:
        supervisor.stop()
        opened.close()


def live_record(**changes: Any) -> runfile.ListenerRecord:
    """The record of a listener running in this process, its tunnel up."""
    values: dict[str, Any] = {
        "pid": os.getpid(),
        "local_url": "http://127.0.0.1:8000",
        "webhook_path": "/api/payments/webhook/",
        "response_path": "/api/payments/response/",
        "started_at": "2026-12-02T10:00:00+00:00",
        "tunnel": "ngrok",
        "public_url": "https://shop-dev.ngrok-free.app",
        "tunnel_state": "up",
    }
    return runfile.ListenerRecord(**{**values, **changes})


def test_runtime_record_and_stale_detection(tmp_path: Path) -> None:
    path = tmp_path / "state" / "listen.json"
    record = live_record()
    assert runfile.write_listener(record, path) is None
    assert path.stat().st_mode & 0o777 == 0o600
    assert runfile.read_listener(path) == record
    assert record.public_webhook == "https://shop-dev.ngrok-free.app/api/payments/webhook/"
    runfile.remove_listener(os.getpid() + 1, path)  # another process's record stays
    assert path.exists()
    # A record whose process is gone is stale: ignored and removed.
    assert runfile.read_listener(path, alive=lambda pid: False) is None and not path.exists()
    for junk in (b"{", b"[]", b'{"pid": "1"}', b"x" * (runfile.MAX_RECORD_BYTES + 1)):
        path.write_bytes(junk)
        assert runfile.read_listener(path) is None and not path.exists()
    runfile.write_listener(record, path)
    runfile.remove_listener(os.getpid(), path)
    assert not path.exists()


# --- `paymobctl listen --tunnel ngrok` and `deposit --flow intention`, as a user runs them -------


@pytest.mark.slow
def test_listen_with_a_static_domain_prints_the_dashboard_urls_and_records_itself(
    agent: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from paymobctl import serving

    seen: dict[str, Any] = {}

    def run(app: Any, sock: Any, *, on_ready: Any, **config: Any) -> None:
        on_ready(serving.base_url(sock))
        seen["record"] = runfile.read_listener()
        seen["stop"] = config.get("stop")
        sock.close()

    monkeypatch.setattr(serving, "run", run)
    monkeypatch.setenv("NGROK_AUTHTOKEN", "tok-secret-123456")
    result = run_cli(
        "--db", str(tmp_path / "l.db"), "listen", "--port", "0",
        "--tunnel", "ngrok", "--tunnel-domain", "shop-dev.ngrok-free.app", "--tunnel-region", "eu",
    )  # fmt: skip
    assert result.code == 0, result.output
    public = "https://shop-dev.ngrok-free.app"
    assert f"Transaction processed callback: {public}/api/payments/webhook/" in result.stdout
    assert f"Transaction response callback:  {public}/api/payments/response/" in result.stdout
    assert "deposit --flow intention` sends these URLs" in result.stdout
    assert "tok-secret-123456" not in result.output
    record = seen["record"]
    assert record is not None and record.pid == os.getpid() and record.public_url == public
    assert record.tunnel == "ngrok" and record.tunnel_state == "up"
    assert seen["stop"] is not None  # the server stops when the supervisor gives up
    assert runfile.read_listener() is None  # removed on exit
    argv = starts(agent)[0]["argv"]
    assert argv[argv.index("--region") + 1] == "eu"
    assert "--authtoken" not in argv and "tok-secret-123456" not in " ".join(argv)


def test_deposit_intention_uses_the_running_listeners_urls(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from paymobctl.emulator import create_app as create_sandbox

    app = create_sandbox()
    with serve(app) as sandbox:
        monkeypatch.setenv("PAYMOB_BASE_URL", sandbox)
        monkeypatch.setenv("PAYMOBCTL_DB", str(tmp_path / "d.db"))
        record = live_record(
            local_url="http://127.0.0.1:8123",
            webhook_path="/hooks/paymob/",
            response_path="/hooks/return/",
        )
        runfile.write_listener(record)
        result = run_cli("deposit", "100", "--flow", "intention")
        assert result.code == 0, result.output
        assert (
            "notification_url https://shop-dev.ngrok-free.app/hooks/paymob/ and redirection_url "
            "https://shop-dev.ngrok-free.app/hooks/return/: from the running listener's tunnel"
        ) in result.stderr
        sent = list(app.state.sandbox.intentions.values())[-1]
        assert sent.notification_url == "https://shop-dev.ngrok-free.app/hooks/paymob/"
        assert sent.redirection_url == "https://shop-dev.ngrok-free.app/hooks/return/"
        # Without a tunnel the local URL is used, since this Paymob (the sandbox) is local too.
        runfile.write_listener(record.with_tunnel(None, "none"))
        result = run_cli("deposit", "100", "--flow", "intention")
        assert "from the running listener (http://127.0.0.1:8123)" in result.stderr
        # Configured URLs win, and nothing is said.
        monkeypatch.setenv("PAYMOB_PROCESSED_CALLBACK_URL", "https://shop.example/webhook/")
        monkeypatch.setenv("PAYMOB_RESPONSE_CALLBACK_URL", "https://shop.example/return/")
        result = run_cli("deposit", "100", "--flow", "intention")
        assert result.code == 0 and "notification_url" not in result.stderr
        sent = list(app.state.sandbox.intentions.values())[-1]
        assert sent.notification_url == "https://shop.example/webhook/"
        # A stale record (its process is gone) is ignored and removed.
        monkeypatch.delenv("PAYMOB_PROCESSED_CALLBACK_URL")
        monkeypatch.delenv("PAYMOB_RESPONSE_CALLBACK_URL")
        runfile.write_listener(live_record(pid=2**22 + 7))
        result = run_cli("deposit", "100", "--flow", "intention")
        assert result.code == 0 and "notification_url" not in result.stderr
        assert runfile.read_listener() is None


@pytest.mark.slow
def test_listen_tunnel_deposit_intention_wait_drop_and_reconnect(
    agent: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The issue's "done when": `listen --tunnel ngrok` and `deposit 100 --flow intention
    --wait`; the webhook arrives through the tunnel with no dashboard edit. Then the agent dies:
    the listener says so at once, reconnects and prints the new URL. (A static domain cannot
    resolve offline, so this run uses the agent's random URL; the domain is tested above.)"""
    from paymobctl.emulator import create_app as create_sandbox

    from .servers import free_port, start_paymobctl, stop_paymobctl
    from .test_payments import pay_checkout

    db = tmp_path / "paymobctl.db"
    monkeypatch.setenv("NGROK_AUTHTOKEN", "tok-e2e-123456")
    monkeypatch.setenv("PAYMOBCTL_DB", str(db))
    nowhere = f"http://127.0.0.1:{free_port()}"  # the integration's URLs reach nothing
    app = create_sandbox(callback_url=f"{nowhere}/webhook/", response_url=f"{nowhere}/return/")
    with serve(app) as sandbox:
        monkeypatch.setenv("PAYMOB_BASE_URL", sandbox)
        process, local = start_paymobctl(
            "listen", tmp_path, "--tunnel", "ngrok", "--tunnel-check", "1"
        )
        try:
            record = runfile.read_listener()
            assert record is not None and record.public_url and record.tunnel_state == "up"
            relay = record.public_url
            thread_result: dict[str, Any] = {}

            def deposit() -> None:
                thread_result["r"] = run_cli(
                    "deposit", "100", "--flow", "intention", "--wait", "--interval", "30",
                    "--timeout", "30",
                )  # fmt: skip

            worker = threading.Thread(target=deposit)
            worker.start()
            store = Store(db)
            try:
                wait_for(lambda: store.deposits(status="pending", limit=1) != [], 30)
                pay_checkout(store.deposits(status="pending", limit=1)[0].checkout_url)
                worker.join(30)  # --interval 30: the outcome can only come from the webhook
                result = thread_result["r"]
                assert result.code == 0, result.output
                assert f"notification_url {relay}/api/payments/webhook/" in result.stderr
                events = store.events(limit=10)
                assert any(e.kind == "TRANSACTION" and e.verdict == "valid" for e in events)
                (paid,) = store.deposits(status="paid", limit=5)
                assert paid.amount_cents == 10000
            finally:
                store.close()
            # The agent dies: one line at once, then a reconnect with a new random URL.
            os.kill(starts(agent)[-1]["pid"], signal.SIGKILL)
            wait_for(lambda: httpx.get(f"{local}/healthz").json()["tunnel"]["reconnects"] == 1, 30)
            health = httpx.get(f"{local}/healthz").json()
            new = health["tunnel"]["public_url"]
            assert health["tunnel"]["state"] == "up" and new != relay
            wait_for(lambda: (runfile.read_listener() or record).public_url == new)
        finally:
            code, out, err = stop_paymobctl(process)
    assert code == 0, err
    lines = out.splitlines()
    down = next(i for i, line in enumerate(lines) if line.startswith("tunnel DOWN: "))
    assert lines[down + 1] == (
        f"tunnel UP again: {new} (NEW URL: the old one no longer reaches this listener)"
    )
    assert lines[down + 3] == f"  Transaction processed callback: {new}/api/payments/webhook/"
    assert "tok-e2e-123456" not in out + err
    assert runfile.read_listener() is None


def test_doctor_and_checklist_warn_about_an_old_tunnel_url(
    agent: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from .servers import free_port

    monkeypatch.setenv("NGROK_AUTHTOKEN", "tok-doctor-98765")
    healthy = run_cli("config", "doctor")
    assert healthy.code == 0, healthy.output
    assert f"ngrok agent: {agent.parent / 'bin' / 'ngrok'}" in healthy.stdout
    assert "ngrok authtoken: ****8765 from NGROK_AUTHTOKEN" in healthy.stdout
    assert "listener: none running" in healthy.stdout and "tok-doctor" not in healthy.output
    runfile.write_listener(live_record(public_url="https://new-one.ngrok-free.app"))
    old = "https://old-one.ngrok-free.app/api/payments/webhook/"
    monkeypatch.setenv("PAYMOB_PROCESSED_CALLBACK_URL", old)
    monkeypatch.setenv("PAYMOB_RESPONSE_CALLBACK_URL", "https://shop.example/return/")
    warning = (
        f"processed_callback_url is {old}, not the running listener's tunnel: set it (and "
        "Paymob's dashboard) to https://new-one.ngrok-free.app/api/payments/webhook/"
    )
    stale = run_cli("config", "doctor")
    assert stale.code == 1 and f"warning: {warning}" in stale.stderr
    assert "listener: pid" in stale.stdout and "tunnel up at https://new-one" in stale.stdout
    assert "response_callback_url" not in stale.stderr  # a deployment's URL is deliberate
    checked = run_cli("checklist", f"http://127.0.0.1:{free_port()}", "--no-api")
    assert f"warning: {warning}" in checked.stderr
    monkeypatch.setenv("PATH", str(agent))  # no agent, and installing refused
    monkeypatch.setenv("PAYMOB_NGROK_INSTALL", "false")
    monkeypatch.delenv("NGROK_AUTHTOKEN")
    missing = run_cli("config", "doctor", "--json")
    assert missing.code == 1
    texts = [f["text"] for f in missing.json() if not f["ok"]]
    assert texts[0].startswith("ngrok agent: not installed and ngrok_install = false")
    assert texts[1].startswith("ngrok authtoken: none")


@pytest.mark.slow
def test_listen_installs_the_agent_on_first_use_unless_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pyngrok import installer

    from paymobctl import serving

    monkeypatch.setenv("FAKE_NGROK_DIR", str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setenv("NGROK_AUTHTOKEN", "tok-install-1")
    installed: list[str] = []

    def fake_install(path: str, ngrok_version: str = "3", **kwargs: Any) -> None:
        install_fake_agent(path)
        installed.append(path)

    monkeypatch.setattr(installer, "install_ngrok", fake_install)

    def run(app: Any, sock: Any, *, on_ready: Any, **config: Any) -> None:
        on_ready(serving.base_url(sock))
        sock.close()

    monkeypatch.setattr(serving, "run", run)
    listen = ["--db", str(tmp_path / "l.db"), "listen", "--port", "0", "--tunnel", "ngrok"]
    refused = run_cli(*listen, "--no-install", "--require-tunnel")
    assert refused.code == 3 and "the ngrok agent is not installed" in refused.stderr
    monkeypatch.setenv("PAYMOB_NGROK_INSTALL", "false")
    refused = run_cli(*listen)  # without --require-tunnel: a warning, and serving locally
    assert (
        refused.code == 0
        and "not installed" in refused.stderr
        and "still listening" in refused.stderr
    )
    assert installed == []
    monkeypatch.delenv("PAYMOB_NGROK_INSTALL")
    result = run_cli(*listen)
    assert result.code == 0, result.output
    assert installed == [str(Path(os.environ["XDG_CONFIG_HOME"]) / "ngrok" / "ngrok")]
    assert "ngrok agent not found: downloading it once from https://bin.ngrok.com/" in result.stderr
    assert "Transaction processed callback: http://127.0.0.1:" in result.stdout


def test_ngrok_errors_become_one_safe_line_with_a_hint() -> None:
    cases = {
        "authentication failed: ERR_NGROK_4018": "authtoken",
        'The endpoint "https://x.ngrok-free.app" is already online. ERR_NGROK_334': "another ngrok agent",
        "failed to bind the domain x.example": "dashboard.ngrok.com/domains",
        "dial tcp: i/o timeout": "reach ngrok's servers",
    }
    for text, hint in cases.items():
        error = tunnel._ngrok_failure(text)
        assert error.hint and hint in error.hint, text
    raw = "bad\x1b[31m thing\r\nsecond line" + "x" * 500
    assert tunnel.one_line(raw) == "bad?[31m thing"
    assert len(tunnel.one_line("y" * 500)) == 200
    assert tunnel.public_base("http://abc.ngrok-free.app/") == "https://abc.ngrok-free.app"
    assert tunnel.public_base("http://127.0.0.1:4567") == "http://127.0.0.1:4567"


# --- cloudflared quick tunnels (the same fake, installed as `cloudflared`) -----------------------


@pytest.fixture
def cloudflared(agent: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    install_fake_agent(agent.parent / "bin" / "cloudflared")
    monkeypatch.setenv("FAKE_CLOUDFLARED_DELAY", "0.6")  # the new URL answers a bit later
    return agent


@pytest.mark.slow
def test_cloudflared_quick_tunnel_settles_drops_and_reconnects(
    cloudflared: Path, listener: tuple[str, Store, Health]
) -> None:
    url, store, health = listener
    opened = tunnel.CloudflaredTunnel(tunnel.TunnelOptions())
    first = opened.open(port_of(url))
    argv = starts(cloudflared)[0]["argv"]
    assert argv == ["tunnel", "--no-autoupdate", "--url", f"http://127.0.0.1:{port_of(url)}"]
    supervisor, events = supervise(opened, url, first, health, interval=0.2, backoff=(0.1, 0.2))
    supervisor.start()
    try:
        # Not reachable for the first 0.6 s: a quick tunnel settling, not a drop.
        wait_for(lambda: supervisor.checked_at is not None and supervisor.problem is None)
        assert events == [] and supervisor.state is tunnel.TunnelState.UP
        assert post_callback(first, 3).status_code == 200 and store.count_events() == 1
        os.kill(starts(cloudflared)[-1]["pid"], signal.SIGKILL)
        wait_for(lambda: len(events) >= 2)
        assert [e.state for e in events[:2]] == [tunnel.TunnelState.DOWN, tunnel.TunnelState.UP]
        assert events[1].changed and events[1].public_url != first
    finally:
        supervisor.stop()
        opened.close()
    assert tunnel.probe(str(events[1].public_url), "listener-1", timeout=2) is not None


@pytest.mark.slow
def test_cloudflared_missing_or_offline_is_one_clear_error(
    cloudflared: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (cloudflared / "refuse").touch()
    with pytest.raises(TunnelError, match="failed to request quick Tunnel") as info:
        tunnel.CloudflaredTunnel(tunnel.TunnelOptions()).open(8000)
    assert info.value.hint and "api.trycloudflare.com" in info.value.hint
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(TunnelError, match="cloudflared is not installed") as info:
        tunnel.CloudflaredTunnel(tunnel.TunnelOptions()).open(8000)
    assert info.value.hint and "developers.cloudflare.com" in info.value.hint
    result = run_cli(
        "listen", "--port", "0", "--tunnel", "cloudflared", "--tunnel-domain", "x.example.com"
    )
    assert result.code == 2 and "are ngrok options" in result.stderr


@pytest.mark.slow
def test_listen_require_tunnel_exits_3_when_the_tunnel_cannot_be_restored(
    agent: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("NGROK_AUTHTOKEN", "tok-require")
    monkeypatch.setattr(tunnel, "BACKOFF", (0.05, 0.05))
    box: dict[str, Any] = {}
    args = ["--db", str(tmp_path / "r.db"), "listen", "--port", "0", "--tunnel", "ngrok"]
    args += ["--require-tunnel", "--tunnel-check", "0.2"]
    worker = threading.Thread(target=lambda: box.update(result=run_cli(*args)))
    worker.start()
    try:
        wait_for(lambda: runfile.read_listener() is not None, 30)
        (agent / "refuse").touch()  # the network is gone: the agent cannot start again
        os.kill(starts(agent)[-1]["pid"], signal.SIGKILL)
    finally:
        worker.join(30)
    result = box["result"]
    assert result.code == 3, result.output
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .startswith("error: the tunnel dropped and could not be restored (--require-tunnel)")
    )
    lines = result.stdout.splitlines()
    assert any(line.startswith("tunnel DOWN: ") for line in lines)
    assert any(line.startswith("tunnel could not be restored after 2 attempts (") for line in lines)
    assert runfile.read_listener() is None
