"""Issue 10 part 2: every read is bounded — request bodies, slow clients, responses from other
servers, and nesting depth of every JSON/TOML document paymobctl parses."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from paymobctl import delivery, outbound, serving
from paymobctl.documents import MAX_DEPTH, TooDeep, depth, loads_json, loads_toml
from paymobctl.emulator import create_app as create_sandbox
from paymobctl.receiver import ReceiverConfig
from paymobctl.receiver import create_app as create_receiver
from paymobctl.sandbox_profile import SANDBOX
from paymobctl.serving import KEPT_BODY, MAX_BODY, Background
from paymobctl.store import NewEvent, Store

from .servers import Hostile

SECRET = "limits-test-hmac-secret"
WEBHOOK = "/api/payments/webhook/"


def asgi(app: Any, method: str, path: str, **options: Any) -> httpx.Response:
    """One request to an ASGI app in process."""

    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            return await http.request(method, path, **options)

    return asyncio.run(go())


def deep_json(levels: int = 100_000) -> bytes:
    return b"[" * levels + b"]" * levels


def deep_callback(levels: int = 100_000) -> bytes:
    return b'{"type":"TRANSACTION","obj":' + deep_json(levels) + b"}"


# --- documents: the nesting bound ------------------------------------------------------------------


def test_nesting_bound_for_json_and_toml() -> None:
    assert depth({"a": [{"b": 1}]}) == 3
    assert loads_json(b'{"obj": {"order": {"id": 1}}}') == {"obj": {"order": {"id": 1}}}
    with pytest.raises(TooDeep, match="nested too deeply"):
        loads_json(deep_json())  # RecursionError inside json
    with pytest.raises(TooDeep):
        loads_json(deep_json(MAX_DEPTH + 1))  # parses, but deeper than the bound
    assert loads_json(deep_json(MAX_DEPTH)) is not None
    with pytest.raises(TooDeep, match="TOML"):
        loads_toml("a = " + "[" * 100_000 + "]" * 100_000)
    with pytest.raises(TooDeep, match="TOML"):
        loads_toml("a = " + "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1))
    assert isinstance(TooDeep(), ValueError)  # every `except ValueError` path handles it


# --- request bodies: listen -------------------------------------------------------------------------


class Upload:
    """An ASGI ``receive`` streaming ``total`` bytes in 64 KiB pieces, counting what was pulled."""

    def __init__(self, total: int, *, stall_after: int | None = None) -> None:
        self.total = total
        self.pulled = 0
        self.stall_after = stall_after

    async def __call__(self) -> dict[str, Any]:
        if self.stall_after is not None and self.pulled >= self.stall_after:
            await asyncio.sleep(3600)  # a client that stopped sending
        size = min(65_536, self.total - self.pulled)
        self.pulled += size
        return {"type": "http.request", "body": b"7" * size, "more_body": self.pulled < self.total}


async def call(app: Any, receive: Any, *, headers: list[tuple[bytes, bytes]] | None = None) -> Any:
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": WEBHOOK,
        "raw_path": WEBHOOK.encode(),
        "query_string": b"hmac=00",
        "headers": headers or [(b"content-type", b"application/json")],
        "client": ("127.0.0.1", 5555),
        "server": ("127.0.0.1", 8000),
        "scheme": "http",
        "root_path": "",
        "http_version": "1.1",
    }
    await app(scope, receive, send)
    start = sent[0]
    return start["status"], dict(start["headers"]), b"".join(m.get("body", b"") for m in sent[1:])


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "limits.db") as opened:
        yield opened


def test_listen_stops_reading_a_500_mb_upload_at_the_cap(store: Store) -> None:
    app = create_receiver(store=store, secret=SECRET)
    upload = Upload(500 * 1024 * 1024)  # chunked: no Content-Length
    status, headers, body = asyncio.run(call(app, upload))
    assert status == 413 and headers[b"connection"] == b"close"
    assert "body too large" in json.loads(body)["detail"]
    # Memory stays flat: only the limit (plus one piece) was ever pulled from the client.
    assert upload.pulled <= MAX_BODY + 65_536
    event = store.events(limit=1)[0]
    assert event.status == 413 and event.truncated
    assert len(event.body) == KEPT_BODY


def test_listen_refuses_a_declared_oversize_body_after_64_kib(store: Store) -> None:
    app = create_receiver(store=store, secret=SECRET, config=ReceiverConfig(max_body=100_000))
    upload = Upload(50 * 1024 * 1024)
    headers = [(b"content-type", b"application/json"), (b"content-length", b"52428800")]
    status, _, _ = asyncio.run(call(app, upload, headers=headers))
    assert status == 413
    assert upload.pulled <= KEPT_BODY + 65_536
    assert store.events(limit=1)[0].truncated


def test_listen_max_body_option_and_bodies_under_it(store: Store) -> None:
    app = create_receiver(store=store, secret=SECRET, config=ReceiverConfig(max_body=200_000))
    status, _, _ = asyncio.run(call(app, Upload(150_000)))
    assert status == 400  # read whole, then classified (not JSON): not a 413
    stored = store.events(limit=1)[0]
    assert not stored.truncated and len(stored.body) == 150_000


def test_listen_body_read_deadline_is_a_stored_408(store: Store) -> None:
    config = ReceiverConfig(read_timeout=0.2)
    app = create_receiver(store=store, secret=SECRET, config=config)
    upload = Upload(10_000_000, stall_after=65_536)
    status, headers, body = asyncio.run(call(app, upload))
    assert status == 408 and headers[b"connection"] == b"close"
    assert "not received within 0.2 s" in json.loads(body)["detail"]
    event = store.events(limit=1)[0]
    assert event.status == 408 and event.truncated and len(event.body) == 65_536


def test_truncated_column_survives_in_events_show(store: Store, cli: Any) -> None:
    app = create_receiver(store=store, secret=SECRET)
    asyncio.run(call(app, Upload(2 * MAX_BODY)))
    result = cli("--db", str(store.path), "--json", "events", "show", "1")
    assert result.code == 0, result.output
    assert result.json()["truncated"] is True


@pytest.mark.slow
def test_listen_over_a_real_socket_answers_413_to_an_endless_chunked_upload(
    store: Store,
) -> None:
    app = create_receiver(store=store, secret=SECRET)
    with Background(app, what="listen") as server:
        port = int(server.url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
            conn.sendall(
                f"POST {WEBHOOK} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                "Transfer-Encoding: chunked\r\n\r\n".encode()
            )
            chunk = b"%x\r\n%s\r\n" % (65_536, b"7" * 65_536)
            sent = 0
            try:
                while sent < 500 * 1024 * 1024:  # the server answers long before this
                    conn.sendall(chunk)
                    sent += len(chunk)
                    if sent > 4 * MAX_BODY:
                        conn.settimeout(0.01)
                        try:
                            if conn.recv(1, socket.MSG_PEEK):
                                break
                        except TimeoutError:
                            pass
                        conn.settimeout(10)
            except OSError:
                pass  # the server closed the connection after its 413: what we want
            conn.settimeout(10)
            answer = b""
            try:
                while b"\r\n\r\n" not in answer:
                    piece = conn.recv(4096)
                    if not piece:
                        break
                    answer += piece
            except OSError:
                pass
        assert sent < 64 * 1024 * 1024
    assert store.events(limit=1)[0].status == 413
    if answer:
        assert answer.startswith(b"HTTP/1.1 413")


# --- request bodies: the sandbox ----------------------------------------------------------------------


def test_sandbox_routes_refuse_bodies_over_the_cap() -> None:
    app = create_sandbox()
    big = b"{" + b" " * (MAX_BODY + 10) + b"}"
    response = asgi(app, "POST", "/api/auth/tokens", content=big)
    assert response.status_code == 413
    assert "request body too large" in response.json()["detail"]
    assert asgi(app, "POST", "/api/auth/tokens", json={"api_key": "nope"}).status_code == 403


# --- slow clients -------------------------------------------------------------------------------------


@pytest.mark.slow
def test_slow_header_connections_are_closed_and_healthz_keeps_answering(store: Store) -> None:
    app = create_receiver(store=store, secret=SECRET)
    with Background(app, what="listen", header_timeout=0.5) as server:
        port = int(server.url.rsplit(":", 1)[1])
        slow = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(40)]
        try:
            for conn in slow:
                conn.sendall(b"POST /api/payments/webhook/ HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            with httpx.Client(base_url=server.url, timeout=5) as http:
                assert http.get("/healthz").json() == {"status": "ok"}
            # The header deadline closes every slow connection (recv sees the end of stream).
            for conn in slow:
                assert conn.recv(1024) == b""
            with httpx.Client(base_url=server.url, timeout=5) as http:
                assert http.get("/healthz").json() == {"status": "ok"}
        finally:
            for conn in slow:
                conn.close()


@pytest.mark.slow
def test_header_deadline_spares_a_busy_keep_alive_connection_and_closes_it_once_idle(
    store: Store,
) -> None:
    """The deadline is re-armed lazily (one timer per connection): requests that keep coming
    for longer than the deadline are all answered on one connection, and the wait for the
    headers after the last response is cut at the deadline from that response."""
    app = create_receiver(store=store, secret=SECRET)
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    with Background(app, what="listen", header_timeout=0.5) as server:
        port = int(server.url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
            began = time.monotonic()
            answered = 0
            while time.monotonic() - began < 1.6:  # three deadlines' worth of traffic
                conn.sendall(request)
                reply = b""
                while not reply.endswith(b'"ok"}'):
                    chunk = conn.recv(4096)
                    assert chunk, "closed while requests kept coming"
                    reply += chunk
                answered += 1
                time.sleep(0.15)
            assert answered >= 8
            conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            waited = time.monotonic()
            assert conn.recv(1024) == b""  # closed by the header deadline
            assert time.monotonic() - waited < 2.0


@pytest.mark.slow
def test_sandbox_slow_body_is_a_408() -> None:
    app = create_sandbox()
    app.user_middleware.clear()
    app.add_middleware(serving.BoundedBodies, timeout=0.3)
    with Background(app, what="sandbox") as server:
        port = int(server.url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
            conn.sendall(
                b"POST /api/auth/tokens HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Content-Length: 100\r\n\r\n{"
            )
            answer = conn.recv(4096)
        assert answer.startswith(b"HTTP/1.1 408")


# --- responses from other servers ---------------------------------------------------------------------


@pytest.mark.slow
def test_outbound_cuts_an_endless_response_at_the_cap() -> None:
    with Hostile("flood") as server, outbound.client() as http:
        reply = outbound.request(http, "GET", server.url, timeout=10)
        assert reply.truncated and len(reply.content) == outbound.MAX_RESPONSE
    assert server.sent < 64 * 1024 * 1024  # stopped reading, far from 10 GB


@pytest.mark.slow
def test_outbound_cuts_a_gzip_bomb_after_decompression() -> None:
    with Hostile("bomb") as server, outbound.client() as http:
        reply = outbound.request(http, "GET", server.url, timeout=10, max_bytes=100_000)
    assert reply.truncated and reply.content == bytes(100_000)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["drip", "drip-headers"])
def test_outbound_total_deadline_ends_a_drip(mode: str) -> None:
    with Hostile(mode, interval=0.05) as server, outbound.client() as http:
        with pytest.raises(httpx.TimeoutException):
            outbound.request(http, "GET", server.url, timeout=0.5)
        sent = server.sent
    # httpx's per-read timeout alone never fires (a byte every 0.05 s): only the total
    # deadline ended it, after about 0.5 / 0.05 = 10 bytes (generous bound for a busy machine).
    assert sent < 200


@pytest.mark.slow
def test_async_attempt_ends_a_drip_as_a_timeout() -> None:
    async def run() -> delivery.Result:
        async with outbound.async_client() as http:
            with Hostile("drip", interval=0.05) as server:
                return await delivery.attempt_async(
                    http, delivery.get(server.url), timeout=0.5, attempt_no=1
                )

    result = asyncio.run(run())
    assert result.error == "timeout" and "within 0.5 s" in (result.error_message or "")


@pytest.mark.slow
def test_simulate_against_a_drip_ends_at_its_timeout(cli: Any) -> None:
    with Hostile("drip", interval=0.05) as server:
        result = cli("simulate", "transaction", "--to", f"{server.url}/hook", "--timeout", "1")
    assert result.code == 3
    assert "did not answer within 1 s" in result.output


@pytest.mark.slow
def test_simulate_reports_a_flooding_answer_cut_at_the_cap(cli: Any) -> None:
    with Hostile("flood") as server:
        result = cli("--json", "simulate", "transaction", "--to", f"{server.url}/hook")
    assert result.code == 0, result.output
    assert result.json()["response"]["truncated"] is True


@pytest.mark.slow
def test_sandbox_callback_attempt_timeout_holds_against_a_drip() -> None:
    from .test_sandbox import FAST, Sandbox

    with Hostile("drip", interval=0.05) as hook:
        app = create_sandbox(callback_url=f"{hook.url}/hook", policy=FAST, timeout=0.3)
        with (
            Background(app, what="sandbox") as server,
            httpx.Client(base_url=server.url, timeout=10) as http,
        ):
            sandbox = Sandbox(http, None, hook.url, None, [])  # type: ignore[arg-type]
            sandbox.pay_card("0000000000000000")
            sandbox.drain()
            failed = http.get("/_sandbox/deliveries").json()
    transaction = next(d for d in failed if d["type"] == "TRANSACTION")
    assert transaction["state"] == "failed"
    assert len(transaction["attempts"]) == FAST.attempts
    assert all("within 0.3 s" in (a["error"] or "") for a in transaction["attempts"])


# --- nesting everywhere ---------------------------------------------------------------------------


def test_listen_answers_deep_json_with_a_stored_4xx(store: Store) -> None:
    app = create_receiver(store=store, secret=SECRET)
    for body in (deep_json(), deep_callback(), deep_callback(900)):
        response = asgi(
            app,
            "POST",
            f"{WEBHOOK}?hmac=00",
            content=body,
            headers={"content-type": "application/json"},
        )
        assert 400 <= response.status_code < 500, response.text
    assert store.count_events() == 3


SANDBOX_JSON_ROUTES = [
    ("POST", "/api/auth/tokens"),
    ("POST", "/api/ecommerce/orders"),
    ("POST", "/api/ecommerce/orders/transaction_inquiry"),
    ("POST", "/api/acceptance/payment_keys"),
    ("POST", "/api/acceptance/payments/pay"),
    ("POST", "/api/acceptance/void_refund/refund"),
    ("POST", "/api/acceptance/void_refund/void"),
    ("POST", "/api/acceptance/capture"),
    ("POST", "/v1/intention/"),
    ("PUT", "/v1/intention/csk_test_anything"),
    ("POST", "/_sandbox/callbacks"),
]


@pytest.mark.parametrize(("method", "path"), SANDBOX_JSON_ROUTES)
@pytest.mark.parametrize("levels", [100_000, 500])
def test_sandbox_json_routes_answer_deep_json_with_a_400(
    method: str, path: str, levels: int
) -> None:
    body = b'{"a":' + deep_json(levels) + b"}"
    headers = {"content-type": "application/json"}
    if path.startswith("/v1/"):
        headers["authorization"] = f"Token {SANDBOX.secret_key}"
    response = asgi(create_sandbox(), method, path, content=body, headers=headers)
    assert response.status_code == 400, response.text
    assert "nested too deeply" in json.dumps(response.json())


@pytest.mark.parametrize("command", [["hmac", "sign"], ["hmac", "verify", "--hmac", "00"]])
def test_hmac_files_with_deep_json_exit_2(tmp_path: Path, cli: Any, command: list[str]) -> None:
    path = tmp_path / "deep.json"
    path.write_bytes(deep_callback())
    result = cli(*command, str(path))
    assert result.code == 2, result.output
    assert "nested too deeply" in result.output


@pytest.mark.parametrize(
    "text",
    [
        "a = " + "[" * 100_000 + "]" * 100_000,
        "[profiles.x]\nregion = " + "{a=" * 500 + "1" + "}" * 500,
    ],
)
def test_config_file_with_deep_toml_exits_2(tmp_path: Path, cli: Any, text: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(text)
    result = cli("--config", str(path), "config", "show")
    assert result.code == 2, result.output
    assert "nested too deeply" in result.output


def test_dotenv_with_deep_brackets_is_plain_text(
    tmp_path: Path, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("PAYMOB_INTEGRATION_ID=" + "[" * 100_000 + "\n")
    result = cli("config", "show")
    assert result.code == 2, result.output  # not an integer: a clean config error
    assert "PAYMOB_INTEGRATION_ID" in result.output


@pytest.mark.slow
def test_paymob_client_refuses_a_deep_json_answer() -> None:
    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Route

    from paymobctl.client import PaymobClient
    from paymobctl.errors import ApiError
    from paymobctl.models import Secret

    async def deep(request: Any) -> Response:
        del request
        return Response(deep_json(), media_type="application/json", status_code=201)

    app = Starlette(routes=[Route("/api/auth/tokens", deep, methods=["POST"])])
    with Background(app, what="fake paymob") as server, outbound.client() as http:
        client = PaymobClient(http, base_url=server.url, api_key=Secret("k" * 20))
        with pytest.raises(ApiError):
            client.auth_token()


@pytest.mark.slow
def test_listen_command_max_body_and_read_timeout(tmp_path: Path) -> None:
    from .servers import start_paymobctl, stop_paymobctl

    process, url = start_paymobctl(
        "listen", tmp_path, "--max-body", "4096", "--read-timeout", "0.5", "--json"
    )
    try:
        with httpx.Client(base_url=url, timeout=10) as http:
            big = http.post(WEBHOOK, content=b"{" + b" " * 10_000 + b"}")
            assert big.status_code == 413
            assert "limit 4096 bytes" in big.json()["detail"]
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as slow:
            slow.sendall(b"POST /api/payments/webhook/ HTTP/1.1\r\nHost: x\r\n")
            assert slow.recv(1024) == b""  # closed by the header deadline
    finally:
        code, out, err = stop_paymobctl(process)
    assert code == 0, err
    assert '"status": 413' in out or '"status":413' in out


@pytest.mark.slow
def test_paymob_client_against_a_drip_ends_at_its_timeout() -> None:
    from paymobctl.client import PaymobClient
    from paymobctl.errors import NetworkError
    from paymobctl.models import Secret

    with Hostile("drip", interval=0.05) as server, outbound.client() as http:
        client = PaymobClient(
            http, base_url=server.url, api_key=Secret("k" * 20), timeout=0.5, sleep=lambda _: None
        )
        with pytest.raises(NetworkError, match=r"did not answer within 0\.5 s"):
            client.auth_token()
        sent = server.sent
    assert sent < 600  # auth is idempotent: retried, each attempt ended by its deadline


@pytest.mark.slow
def test_forwarding_to_a_drip_ends_each_attempt_at_its_timeout(store: Store) -> None:
    from paymobctl.delivery import RetryPolicy
    from paymobctl.forwarding import Forwarder, Incoming

    async def run(url: str) -> None:
        forwarder = Forwarder(
            store,
            targets=[url],
            timeout=0.3,
            policy=RetryPolicy(attempts=2, first_delay=0.01, factor=1, max_delay=0.01),
        )
        forwarder.submit(Incoming(1, "TRANSACTION", "POST", "hmac=00", b"{}", "application/json"))
        await forwarder.drain(timeout=20)
        await forwarder.close()

    with Hostile("drip", interval=0.05) as server:
        event = store.record_event(
            NewEvent("POST", WEBHOOK, "", [], b"{}", None, "TRANSACTION", 401, "missing")
        )
        assert event.id == 1
        asyncio.run(run(f"{server.url}/hook"))
    attempts = store.forward_attempts(1)
    assert len(attempts) == 2
    assert all("within 0.3 s" in (a.error or "") for a in attempts)


@pytest.mark.slow
def test_checklist_against_a_drip_ends_with_a_clear_result(cli: Any) -> None:
    with Hostile("drip", interval=0.05) as server:
        result = cli("checklist", server.url, "--no-api", "--timeout", "1", "--json")
    found = {c["id"]: c for c in result.json()["checks"]}
    assert result.code == 1
    assert found["PMB-NET-002"]["status"] == "fail"
    assert "within 1 s" in found["PMB-NET-002"]["detail"]


def test_a_small_max_body_bounds_a_declared_oversize_upload(store: Store) -> None:
    app = create_receiver(store=store, secret=SECRET, config=ReceiverConfig(max_body=2048))
    upload = Upload(50 * 1024 * 1024)
    headers = [(b"content-type", b"application/json"), (b"content-length", b"52428800")]
    status, _, _ = asyncio.run(call(app, upload, headers=headers))
    assert status == 413
    assert upload.pulled <= 2 * 65_536  # the limit plus the piece that crossed it
    assert len(store.events(limit=1)[0].body) <= KEPT_BODY


def test_the_client_factory_takes_a_transport_timeout_and_limits() -> None:
    """One factory for every client: a given transport (here a fake) replaces the network, and
    the response is still read through the byte cap."""
    fake = httpx.MockTransport(lambda request: httpx.Response(200, content=b"x" * 100))
    with outbound.client(transport=fake, timeout=7, limits=httpx.Limits(max_connections=3)) as http:
        assert http.timeout.read == 7 and http.headers["User-Agent"] == outbound.USER_AGENT
        reply = outbound.request(http, "GET", "http://127.0.0.1:9/x", timeout=5, max_bytes=10)
    assert reply.content == b"x" * 10 and reply.truncated
    with outbound.client(limits=httpx.Limits(max_connections=3)) as http:
        assert http._transport._pool._max_connections == 3  # type: ignore[attr-defined]


def test_clients_share_one_tls_context_per_setting() -> None:
    """Loading the CA bundle costs ~45 ms of CPU: every client of a process reuses one context."""
    import ssl

    from paymobctl import outbound

    with outbound.client() as first, outbound.client() as second:
        assert outbound.tls_context(True) is outbound.tls_context(True)
        assert isinstance(outbound.tls_context(True), ssl.SSLContext)
        assert outbound.tls_context(False) is not outbound.tls_context(True)
        assert outbound.tls_context(False).verify_mode == ssl.CERT_NONE
        assert first._transport is not second._transport  # own pools, shared context
    custom = ssl.create_default_context()
    assert outbound.tls_context(custom) is custom
