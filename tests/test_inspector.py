"""The listener's web inspector, in process: pages, escaping, loopback-only, token, actions, live rows."""

from __future__ import annotations

import asyncio
import re
import shlex
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from paymobctl import callbacks, web
from paymobctl.callbacks import TransactionSpec
from paymobctl.delivery import wire_json
from paymobctl.inspector import create_inspector
from paymobctl.inspector.views import EventFilter
from paymobctl.models import Outcome
from paymobctl.receiver import create_app
from paymobctl.store import Store

SECRET = "inspector-test-hmac-secret"
WEBHOOK = "/api/payments/webhook/"
LOCAL = "http://127.0.0.1:8000"
ATTACK = '<script>alert(1)</script>"><img src=x onerror=alert(2)>'


@dataclass
class Setup:
    store: Store
    app: Any
    replayed: list[httpx.Request]

    def run(self, work: Callable[[httpx.AsyncClient], Awaitable[Any]], **client: Any) -> Any:
        async def main() -> Any:
            transport = httpx.ASGITransport(
                app=self.app, client=client.pop("peer", ("127.0.0.1", 50123))
            )
            async with httpx.AsyncClient(
                transport=transport, base_url=client.pop("base", LOCAL)
            ) as http:
                return await work(http)

        return asyncio.run(main())


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    store = Store(tmp_path / "inspector.db")
    replayed: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        replayed.append(request)
        return httpx.Response(200, json={"detail": "merchant got it"})

    def inspector(fallback: Any) -> Any:
        return create_inspector(
            store=store,
            secret=SECRET,
            fallback=fallback,
            replay_targets=lambda kind: ["http://127.0.0.1:8001/api/payments/webhook/"],
            client_factory=lambda: httpx.AsyncClient(transport=httpx.MockTransport(answer)),
            token=web.ActionToken("test-token"),
        )

    app = create_app(store=store, secret=SECRET, inspector=inspector)
    yield Setup(store, app, replayed)
    store.close()


def inspector_of(app: Any) -> Any:
    (mount,) = [r for r in app.starlette.routes if getattr(r, "path", "") == "/_paymobctl"]
    return mount.app.app.state.inspector


def transaction(outcome: Outcome = Outcome.APPROVED, **spec: Any) -> callbacks.Callback:
    return callbacks.build_transaction(TransactionSpec(outcome=outcome, seed=7, **spec))


async def post(http: httpx.AsyncClient, cb: callbacks.Callback, hmac: str, **kw: Any) -> int:
    response = await http.post(
        f"{WEBHOOK}?hmac={hmac}",
        content=wire_json(cb.body),
        headers={"Content-Type": "application/json", **kw.get("headers", {})},
    )
    return int(response.headers["x-paymobctl-event"])


def test_events_list_and_event_page_with_signed_fields_and_explanation(setup: Setup) -> None:
    good = transaction(merchant_order_id="shop-42")
    bad = transaction(Outcome.DECLINED, order_id=777)

    async def work(http: httpx.AsyncClient) -> None:
        valid_id = await post(http, good, good.sign(SECRET))
        invalid_id = await post(http, bad, "0" * 128)
        page = await http.get("/_paymobctl/")
        assert page.status_code == 200
        assert f'id="event-{valid_id}"' in page.text and f'id="event-{invalid_id}"' in page.text
        assert "HMAC valid" in page.text and "HMAC invalid" in page.text
        assert page.headers["content-security-policy"].startswith("default-src 'self'")
        # The event page: request, headers, body with the signed fields marked, explanation.
        valid = (await http.get(f"/_paymobctl/events/{valid_id}")).text
        assert "VALID (null rendering: empty)" in valid
        assert "<mark title=signed>  &quot;amount_cents&quot;" in valid.replace("    ", "  ")
        assert "shop-42" in valid and "content-type" in valid
        invalid = (await http.get(f"/_paymobctl/events/{invalid_id}")).text
        assert "INVALID" in invalid and "signed string" in invalid
        assert "computed" in invalid and "0" * 128 in invalid
        # Same code as `hmac verify --explain`: its diagnosis for a wrong signature is there.
        from paymobctl import signing

        exp = signing.explain(bad.kind, bad.obj, SECRET, "0" * 128)
        for diagnosis in exp.diagnoses:
            assert diagnosis.code in invalid

    setup.run(work)


def test_filters_and_search(setup: Setup) -> None:
    one, two = transaction(order_id=111, transaction_id=222), transaction(order_id=333)
    deposit = setup.store.create_deposit(
        profile="sandbox", mode="test", flow="intention", base_url="http://x", order_id=333,
        merchant_order_id=None, intention_id=None, amount_cents=100, currency="EGP",
        checkout_url="http://x/pay", expires_at=None, save_card=False,
    )  # fmt: skip

    async def work(http: httpx.AsyncClient) -> None:
        first = await post(http, one, one.sign(SECRET))
        second = await post(http, two, "f" * 128)
        rows = lambda text: set(re.findall(r'id="event-(\d+)"', text))  # noqa: E731
        assert rows((await http.get("/_paymobctl/?q=222")).text) == {str(first)}
        assert rows((await http.get("/_paymobctl/?q=333")).text) == {str(second)}
        assert rows((await http.get("/_paymobctl/?verdict=invalid")).text) == {str(second)}
        assert rows((await http.get("/_paymobctl/?type=TOKEN")).text) == set()
        by_deposit = (await http.get(f"/_paymobctl/?deposit={deposit.id}")).text
        assert rows(by_deposit) == {str(second)}
        assert "333" in (await http.get("/_paymobctl/deposits")).text

    setup.run(work)


def test_attack_payloads_are_escaped_everywhere(setup: Setup) -> None:
    cb = transaction(merchant_order_id=ATTACK)
    cb.obj["data"]["message"] = ATTACK

    async def work(http: httpx.AsyncClient) -> None:
        event_id = await post(http, cb, ATTACK, headers={"X-Evil": ATTACK})
        await http.get(f"/api/payments/response/?id=1&order={ATTACK}&hmac=x")
        await http.post(f"/nowhere/{ATTACK}", content=ATTACK.encode())
        pages = [
            (await http.get("/_paymobctl/")).text,
            (await http.get("/_paymobctl/?q=" + ATTACK)).text,
        ]
        for number in range(1, event_id + 3):
            pages.append((await http.get(f"/_paymobctl/events/{number}")).text)
        for text in pages:
            assert "<script>alert" not in text and "<img src=x" not in text
        assert any("&lt;script&gt;alert(1)&lt;/script&gt;" in text for text in pages)

    setup.run(work)


@pytest.mark.parametrize(
    ("base", "peer", "headers"),
    [
        ("https://abc123.ngrok-free.app", ("127.0.0.1", 40000), {}),  # the tunnel's public host
        (LOCAL, ("127.0.0.1", 40000), {"X-Forwarded-For": "203.0.113.9"}),  # ngrok, host rewritten
        (LOCAL, ("127.0.0.1", 40000), {"X-Forwarded-Host": "abc123.ngrok-free.app"}),
        (LOCAL, ("192.168.1.20", 40000), {}),  # another machine on the LAN
        ("http://evil.example:8000", ("127.0.0.1", 40000), {}),  # DNS rebinding
    ],
)
def test_not_local_means_404_and_stored_like_any_unknown_path(
    setup: Setup, base: str, peer: tuple[str, int], headers: dict[str, str]
) -> None:
    async def work(http: httpx.AsyncClient) -> list[int]:
        statuses = []
        for path in ("/_paymobctl/", "/_paymobctl/events/1", "/_paymobctl/static/ui.js"):
            statuses.append((await http.get(path, headers=headers)).status_code)
        statuses.append(
            (await http.post("/_paymobctl/events/1/replay", headers=headers)).status_code
        )
        return statuses

    assert setup.run(work, base=base, peer=peer) == [404, 404, 404, 404]
    kinds = {e.kind for e in setup.store.events(limit=10)}
    assert kinds == {"UNKNOWN"} and setup.store.count_events() == 4


def test_is_local_accepts_the_loopback_spellings() -> None:
    def scope(host: str, peer: str = "127.0.0.1") -> dict[str, Any]:
        return {
            "type": "http",
            "client": (peer, 1),
            "server": ("127.0.0.1", 8000),
            "headers": [(b"host", host.encode())],
        }

    for host in ("127.0.0.1:8000", "localhost:8000", "[::1]:8000", "LOCALHOST:8000"):
        assert web.is_local(scope(host)), host
    assert web.is_local(scope("[::1]:8000", peer="::1"))
    for host in ("127.0.0.1:8001", "example.com:8000", "", "127.0.0.1:abc", "localhost.evil:8000"):
        assert not web.is_local(scope(host)), host


def test_actions_need_the_page_token_and_same_origin(setup: Setup) -> None:
    cb = transaction()

    async def work(http: httpx.AsyncClient) -> None:
        event_id = await post(http, cb, cb.sign(SECRET))
        url = f"/_paymobctl/events/{event_id}/replay"
        page = (await http.get(f"/_paymobctl/events/{event_id}")).text
        assert 'name=paymobctl-token content="test-token"' in page
        target = {"to": "http://127.0.0.1:8001/api/payments/webhook/"}
        assert (await http.post(url, data=target)).status_code == 403
        assert (await http.post(url, data={**target, "token": "guess"})).status_code == 403
        other = {"Origin": "https://evil.example"}
        forged = await http.post(url, data={**target, "token": "test-token"}, headers=other)
        assert forged.status_code == 403
        cross = {"Sec-Fetch-Site": "cross-site"}
        assert (
            await http.post(url, data={**target, "token": "test-token"}, headers=cross)
        ).status_code == 403
        assert not setup.replayed
        same = {"Origin": LOCAL}
        done = await http.post(url, data={**target, "token": "test-token"}, headers=same)
        assert done.status_code == 200 and "replayed to http://127.0.0.1:8001" in done.text
        assert "merchant got it" in done.text
        bad_target = await http.post(url, data={"to": "ftp://x", "token": "test-token"})
        assert bad_target.status_code == 400 and "replay target" in bad_target.text

    setup.run(work)
    (request,) = setup.replayed
    assert request.url.path == WEBHOOK and request.url.params["hmac"] == cb.sign(SECRET)
    assert request.content == wire_json(cb.body)
    (recorded,) = setup.store.deliveries(kind="TRANSACTION")
    assert recorded.origin == "replay" and recorded.status == 200


def test_copy_as_curl_and_simulate_command(setup: Setup, cli: Any) -> None:
    cb = transaction(
        Outcome.DECLINED, order_id=4242, merchant_order_id="shop 7", amount_cents=15050
    )

    async def work(http: httpx.AsyncClient) -> tuple[str, str, int]:
        event_id = await post(http, cb, cb.sign(SECRET))
        url = f"/_paymobctl/events/{event_id}/copy"
        assert (await http.post(url, data={"what": "curl"})).status_code == 403
        curl = (await http.post(url, data={"what": "curl", "token": "test-token"})).text
        simulate = (await http.post(url, data={"what": "simulate", "token": "test-token"})).text
        return curl, simulate, event_id

    curl, simulate, _ = setup.run(work)
    words = shlex.split(curl)
    assert words[:4] == ["curl", "-i", "-X", "POST"]
    assert words[4] == f"{LOCAL}{WEBHOOK}?hmac={cb.sign(SECRET)}"
    assert words[words.index("--data-binary") + 1].encode() == wire_json(cb.body)
    args = shlex.split(simulate)
    assert args[:3] == ["paymobctl", "simulate", "transaction"]
    assert args[args.index("--outcome") + 1] == "declined"
    assert args[args.index("--order-id") + 1] == "4242"
    assert args[args.index("--merchant-order-id") + 1] == "shop 7"
    # The command is one simulate accepts: print what it would send.
    result = cli(*args[1:], "--print")
    assert result.code == 0, result.output
    sent = result.json()["body"]["obj"]
    assert sent["order"]["id"] == 4242 and sent["amount_cents"] == 15050
    assert sent["success"] is False


def test_live_rows_are_polled_from_the_store_by_id(setup: Setup) -> None:
    cb = transaction(order_id=9001)
    inspector = inspector_of(setup.app)

    async def main() -> list[str]:
        transport = httpx.ASGITransport(app=setup.app, client=("127.0.0.1", 1))
        async with httpx.AsyncClient(transport=transport, base_url=LOCAL) as http:
            stream = inspector.rows(EventFilter(q="9001"), 0, lambda: False, seconds=1.0)
            chunks = [await anext(stream)]
            await post(http, transaction(order_id=5), "x")  # filtered out: only its id moves on
            await post(http, cb, cb.sign(SECRET))
            async for chunk in stream:
                chunks.append(chunk)
                if "event: row" in chunk:
                    break
            await stream.aclose()
            return chunks

    chunks = asyncio.run(main())
    assert chunks[0] == "retry: 500\n\n"
    assert chunks[-1].startswith('id: 2\nevent: row\ndata: <tr id="event-2">')
    assert "event-1" not in "".join(chunks)  # filtered out


def test_a_burst_streams_only_the_newest_rows_and_says_how_many_it_skipped(setup: Setup) -> None:
    from paymobctl.inspector import app as inspector_app

    inspector = inspector_of(setup.app)
    many = [transaction(order_id=1000 + n) for n in range(inspector_app.BURST_ROWS + 5)]

    async def main() -> list[str]:
        transport = httpx.ASGITransport(app=setup.app, client=("127.0.0.1", 1))
        async with httpx.AsyncClient(transport=transport, base_url=LOCAL) as http:
            for cb in many:
                await post(http, cb, cb.sign(SECRET))
        stream = inspector.rows(EventFilter(), 0, lambda: False, seconds=0.1)
        return [chunk async for chunk in stream]

    chunks = asyncio.run(main())
    assert "event: skipped\ndata: 5\n\n" in chunks
    rows = [c for c in chunks if "event: row" in c]
    assert len(rows) == inspector_app.BURST_ROWS
    assert rows[0].startswith("id: 6\n") and rows[-1].startswith(f"id: {len(many)}\n")


def test_deposits_and_saved_cards_views_show_stored_masked_values(setup: Setup) -> None:
    token = callbacks.build_token(callbacks.TokenSpec(order_id=555, seed=3))

    async def work(http: httpx.AsyncClient) -> str:
        await post(http, token, token.sign(SECRET))
        return (await http.get("/_paymobctl/cards")).text

    text = setup.run(work)
    (method,) = setup.store.payment_methods()
    assert method.masked_pan in text and method.token not in text


def test_no_inspector_means_the_receiver_answers(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    app = create_app(store=store, secret=SECRET)

    async def main() -> int:
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 1))
        async with httpx.AsyncClient(transport=transport, base_url=LOCAL) as http:
            return (await http.get("/_paymobctl/")).status_code

    assert asyncio.run(main()) == 404
    store.close()


@pytest.mark.slow
def test_listen_serves_the_inspector_and_stops_with_a_page_connected(tmp_path: Path) -> None:
    import socket

    from .servers import start_paymobctl, stop_paymobctl

    db = tmp_path / "e2e.db"
    process, url = start_paymobctl("listen", tmp_path, "--db", str(db))
    try:
        assert httpx.get(f"{url}/_paymobctl/").status_code == 200
        tunnelled = httpx.get(f"{url}/_paymobctl/", headers={"X-Forwarded-For": "203.0.113.1"})
        assert tunnelled.status_code == 404
        host, port = url.removeprefix("http://").split(":")
        stream = socket.create_connection((host, int(port)), timeout=10)
        stream.sendall(f"GET /_paymobctl/stream HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
        assert stream.recv(4096).startswith(b"HTTP/1.1 200")
    finally:
        code, out, err = stop_paymobctl(process)
    stream.close()
    assert code == 0, err
    assert f"Inspector:          {url}/_paymobctl/ (this machine only)" in out
    process, url = start_paymobctl("listen", tmp_path, "--db", str(db), "--no-inspector")
    try:
        assert httpx.get(f"{url}/_paymobctl/").status_code == 404
    finally:
        code, out, err = stop_paymobctl(process)
    assert code == 0 and "Inspector:" not in out


@pytest.mark.parametrize("received", ["abc", "0" * 127, "z" * 128, ATTACK])
def test_explaining_a_malformed_hmac_never_fails(received: str) -> None:
    from paymobctl import signing

    cb = transaction()
    exp = signing.explain(cb.kind, cb.obj, SECRET, received)
    assert not exp.valid and exp.diagnoses
