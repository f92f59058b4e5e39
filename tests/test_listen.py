"""The webhook receiver over real sockets: verdicts, storage, duplicates, masking, effects, forwarding."""

from __future__ import annotations

import html
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from paymobctl import callbacks, redirects, signing
from paymobctl.callbacks import TransactionSpec
from paymobctl.delivery import RetryPolicy, wire_json
from paymobctl.forwarding import Forwarder
from paymobctl.models import CallbackKind, Outcome
from paymobctl.receiver import Received, create_app
from paymobctl.store import Deposit, Store

from .inprocess import in_process
from .servers import Recorder, free_port

SECRET = "listen-test-hmac-secret"
WEBHOOK = "/api/payments/webhook/"
RESPONSE = "/api/payments/response/"


@dataclass
class Listener:
    http: httpx.Client
    store: Store
    url: str
    log: list[Received]

    def post(
        self,
        body: Any,
        *,
        hmac: str | None = None,
        raw: bytes | None = None,
        content_type: str = "application/json",
        path: str = WEBHOOK,
    ) -> httpx.Response:
        query = f"?hmac={hmac}" if hmac is not None else ""
        data = raw if raw is not None else wire_json(body)
        return self.http.post(
            f"{path}{query}", content=data, headers={"Content-Type": content_type}
        )


def wait_for(condition: Any, timeout: float = 10.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.01)


def signed(callback: callbacks.Callback) -> tuple[dict[str, Any], str]:
    return callback.body, callback.sign(SECRET)


def transaction(**spec: Any) -> callbacks.Callback:
    return callbacks.build_transaction(TransactionSpec(**spec))


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[Listener]:
    store = Store(tmp_path / "listen.db")
    log: list[Received] = []
    with (
        in_process(create_app(store=store, secret=SECRET, sink=log.append)) as url,
        httpx.Client(base_url=url) as http,
    ):
        yield Listener(http, store, url, log)


def test_valid_transaction_is_stored_then_acknowledged(listener: Listener) -> None:
    body, digest = signed(transaction(seed=1, amount_cents=15000))
    response = listener.post(body, hmac=digest)
    assert response.status_code == 200 and response.json() == {"detail": "ok"}
    event = listener.store.events()[0]
    assert event.kind == "TRANSACTION" and event.verdict == "valid" and event.convention == "empty"
    assert (
        event.transaction_id == body["obj"]["id"] and event.order_id == body["obj"]["order"]["id"]
    )
    assert event.success is True and event.amount_cents == 15000 and event.currency == "EGP"
    assert event.body == wire_json(body) and event.query == f"hmac={digest}"
    assert ("content-type", "application/json") in event.headers
    assert response.headers["x-paymobctl-event"] == str(event.id)
    assert listener.log[-1].verdict == "valid" and listener.log[-1].kind == "TRANSACTION"


def test_every_callback_kind(listener: Listener) -> None:
    txn = transaction(seed=2)
    token = callbacks.build_token(callbacks.token_spec_for(txn.obj, seed=2))
    delivery = callbacks.build_delivery_status(123, "Delivered")
    for callback in (token, delivery):
        body, digest = signed(callback)
        assert listener.post(body, hmac=digest).status_code == 200
    kinds = [e.kind for e in listener.store.events(ascending=True)]
    assert kinds == ["TOKEN", "DELIVERY_STATUS"]
    card = listener.store.payment_methods()[0]
    assert card.token == token.obj["token"] and card.masked_pan == "xxxx-xxxx-xxxx-2346"
    assert card.card_subtype == "MasterCard" and card.order_id == txn.obj["order"]["id"]
    assert card.email == "customer@example.com"


def test_invalid_and_missing_hmac_are_401_and_still_stored(listener: Listener) -> None:
    body, digest = signed(transaction(seed=3))
    bad = listener.post(body, hmac=digest[:-1] + ("0" if digest[-1] != "0" else "1"))
    assert bad.status_code == 401 and bad.json() == {"detail": "Invalid HMAC Signature"}
    missing = listener.post(body)
    assert missing.status_code == 401 and missing.json() == {"detail": "Invalid HMAC Signature"}
    verdicts = [e.verdict for e in listener.store.events(ascending=True)]
    assert verdicts == ["invalid", "missing"]
    assert [e.status for e in listener.store.events(invalid=True)] == [401, 401]
    token_body, token_digest = signed(
        callbacks.build_token(callbacks.TokenSpec(order_id=1, seed=1))
    )
    tampered = json.loads(json.dumps(token_body))
    tampered["obj"]["masked_pan"] = "xxxx-xxxx-xxxx-9999"
    assert listener.post(tampered, hmac=token_digest).status_code == 401
    assert listener.store.payment_methods() == []  # no effect from an invalid callback


@pytest.mark.parametrize(
    ("raw", "content_type", "needle"),
    [
        (b"{not json", "application/json", "malformed JSON"),
        (b"[1, 2]", "application/json", "not an object"),
        (b'{"type": "REFUND", "obj": {}}', "application/json", "unknown callback type 'REFUND'"),
        (b'{"obj": {}}', "application/json", "unknown callback type"),
        (b'{"type": "TRANSACTION"}', "application/json", "no 'obj' object"),
        (b"a=1&b=2", "application/x-www-form-urlencoded", "wrong content type"),
        (b"", "application/json", "empty body"),
        (b"\xff\xfe\x00garbage", "application/json", "malformed JSON"),
    ],
)
def test_malformed_requests_are_400_naming_the_problem(
    listener: Listener, raw: bytes, content_type: str, needle: str
) -> None:
    response = listener.post(None, hmac="ab", raw=raw, content_type=content_type)
    assert response.status_code == 400
    assert needle in response.json()["detail"]
    stored = listener.store.events()[0]
    assert stored.status == 400 and needle in (stored.problem or "") and stored.body == raw


def test_other_paths_and_methods(listener: Listener) -> None:
    assert listener.http.get("/healthz").json() == {"status": "ok"}
    missing = listener.http.post("/api/other/", content=b"{}")
    assert missing.status_code == 404 and WEBHOOK in missing.json()["detail"]
    wrong = listener.http.get(WEBHOOK)
    assert wrong.status_code == 405 and wrong.headers["allow"] == "POST"
    body, digest = signed(transaction(seed=4))
    assert (
        listener.post(body, hmac=digest, path=WEBHOOK.rstrip("/")).status_code == 200
    )  # no trailing slash
    assert {e.status for e in listener.store.events()} == {404, 405, 200}


def test_browser_noise_is_404_without_an_event(listener: Listener) -> None:
    for path in ("/favicon.ico", "/robots.txt", "/apple-touch-icon.png"):
        assert listener.http.get(path).status_code == 404
    assert listener.store.events() == [] and listener.log == []
    assert listener.http.get("/other").status_code == 404  # a person's request is still stored
    assert len(listener.store.events()) == 1


def test_get_redirect(listener: Listener) -> None:
    txn = transaction(seed=5, outcome=Outcome.DECLINED)
    digest = txn.sign(SECRET)
    query = redirects.encode_params(redirects.redirect_params(txn.obj, digest))
    ok = listener.http.get(f"{RESPONSE}?{query}")
    assert ok.status_code == 200 and ok.json() == {"detail": "ok"}
    page = listener.http.get(f"{RESPONSE}?{query}", headers={"Accept": "text/html"})
    assert page.status_code == 200 and "Payment failed" in page.text
    reason = dict(redirects.redirect_params(txn.obj, digest))["data.message"]
    assert reason and f"Reason: {html.escape(str(reason))}." in page.text
    bad = listener.http.get(f"{RESPONSE}?{query.replace('amount_cents=', 'amount_cents=9')}")
    assert bad.status_code == 401
    not_redirect = listener.http.get(f"{RESPONSE}?foo=bar")
    assert not_redirect.status_code == 400
    first = listener.store.events(ascending=True)[0]
    assert first.kind == "RESPONSE" and first.verdict == "valid" and first.success is False
    assert first.duplicates == 1  # the HTML fetch was the same redirect again


def test_duplicates_are_acknowledged_and_stored_once(listener: Listener) -> None:
    body, digest = signed(transaction(seed=6))
    first = listener.post(body, hmac=digest)
    second = listener.post(body, hmac=digest)
    assert first.status_code == second.status_code == 200
    assert (
        "x-paymobctl-duplicate" not in first.headers
        and second.headers["x-paymobctl-duplicate"] == "1"
    )
    events = listener.store.events()
    assert len(events) == 1 and events[0].duplicates == 1 and events[0].last_seen_at
    assert listener.log[-1].duplicate is True
    assert listener.post(body, hmac=digest[:-1] + "0").status_code in (
        200,
        401,
    )  # another hmac: another row
    assert len(listener.store.events()) == 2


def test_full_card_numbers_are_masked_before_storage(listener: Listener, tmp_path: Path) -> None:
    txn = transaction(seed=7)
    txn.obj["source_data"]["pan"] = "5123456789012346"
    txn.obj["data"]["card_num"] = "4111 1111 1111 1111"
    body, digest = signed(txn)
    response = listener.post(body, hmac=digest)
    assert response.status_code == 200  # verified against what was received
    event = listener.store.events()[0]
    assert (
        event.pan_masked
        and b"5123456789012346" not in event.body
        and b"4111 1111 1111 1111" not in event.body
    )
    assert b"xxxxxxxxxxxx2346" in event.body
    assert listener.log[-1].pan_masked
    data = b"".join(p.read_bytes() for p in tmp_path.glob("listen.db*"))
    assert b"5123456789012346" not in data and b"4111 1111 1111 1111" not in data


def legacy_deposit(store: Store, order_id: int, *, save_card: bool) -> Deposit:
    """A 50.00 EGP legacy-flow deposit on the sandbox profile, as `paymobctl deposit` records it."""
    return store.create_deposit(
        profile="sandbox",
        mode="test",
        flow="legacy",
        base_url="http://x",
        order_id=order_id,
        merchant_order_id=None,
        intention_id=None,
        amount_cents=5000,
        currency="EGP",
        checkout_url="http://x/c",
        expires_at=None,
        save_card=save_card,
    )


def test_effects_on_deposits(listener: Listener) -> None:
    store = listener.store
    paid = legacy_deposit(store, 1001, save_card=True)
    declined = legacy_deposit(store, 1002, save_card=False)
    body, digest = signed(transaction(seed=8, order_id=1001, amount_cents=5000))
    assert listener.post(body, hmac=digest).status_code == 200
    after = store.deposit(paid.id)
    assert (
        after is not None and after.status == "paid" and after.transaction_id == body["obj"]["id"]
    )
    assert listener.log[-1].effect == "deposit paid"
    body, digest = signed(
        transaction(
            seed=9, order_id=1002, amount_cents=5000, outcome=Outcome.DECLINED, decline_code="05"
        )
    )
    listener.post(body, hmac=digest)
    after = store.deposit(declined.id)
    assert (
        after is not None and after.status == "declined" and after.decline_reason == "Do not honour"
    )
    refund = transaction(seed=10, order_id=1001, amount_cents=5000, outcome=Outcome.REFUND)
    body, digest = signed(refund)
    listener.post(body, hmac=digest)
    after = store.deposit(paid.id)
    assert after is not None and after.status == "refunded" and after.refunded_cents == 5000


def test_forwarding_exact_bytes_routes_and_retries(tmp_path: Path) -> None:
    app_a, app_b = Recorder(answers=[500, 503]), Recorder()
    with in_process(app_a.app()) as a, in_process(app_b.app()) as b:
        store = Store(tmp_path / "f.db")
        forwarded: list[Any] = []
        forwarder = Forwarder(
            store,
            targets=[f"{a}/hooks/paymob/"],
            routes={"TOKEN": f"{b}/hooks/token/"},
            policy=RetryPolicy(attempts=4, first_delay=0.01, factor=2, max_delay=0.05),
            timeout=2,
            sink=forwarded.append,
        )
        app = create_app(store=store, secret=SECRET, forwarder=forwarder)
        with in_process(app) as url, httpx.Client(base_url=url) as http:
            txn = transaction(seed=11)
            body = wire_json(txn.body)
            digest = txn.sign(SECRET)
            assert (
                http.post(
                    f"{WEBHOOK}?hmac={digest}",
                    content=body,
                    headers={"Content-Type": "application/json"},
                ).status_code
                == 200
            )
            wait_for(lambda: any(f.final for f in forwarded))
            token = callbacks.build_token(callbacks.token_spec_for(txn.obj, seed=11))
            http.post(
                f"{WEBHOOK}?hmac={token.sign(SECRET)}",
                content=wire_json(token.body),
                headers={"Content-Type": "application/json"},
            )
            query = redirects.encode_params(redirects.redirect_params(txn.obj, digest))
            http.get(f"{RESPONSE}?{query}")
            wait_for(lambda: len([f for f in forwarded if f.final]) >= 3)
        got = [r for r in app_a.requests if r.method == "POST"]
        assert len(got) == 3  # 500, 503, then 200
        assert got[-1].body == body and got[-1].query == f"hmac={digest}"
        assert (
            got[-1].path == "/hooks/paymob/"
            and got[-1].headers["content-type"] == "application/json"
        )
        assert [r.path for r in app_b.requests] == ["/hooks/token/"]  # the per-type route
        assert json.loads(app_b.requests[0].body)["type"] == "TOKEN"
        get = [r for r in app_a.requests if r.method == "GET"]
        assert len(get) == 1 and get[0].query == query
        event = store.events(kind="TRANSACTION")[0]
        attempts = store.forward_attempts(event.id)
        assert [a.status for a in attempts] == [500, 503, 200]


def test_forward_to_nothing_gives_up_after_bounded_retries(tmp_path: Path) -> None:
    store = Store(tmp_path / "g.db")
    forwarded: list[Any] = []
    forwarder = Forwarder(
        store,
        targets=[f"http://127.0.0.1:{free_port()}/x"],
        policy=RetryPolicy(attempts=3, first_delay=0.01, factor=2, max_delay=0.05),
        timeout=1,
        sink=forwarded.append,
    )
    with (
        in_process(create_app(store=store, secret=SECRET, forwarder=forwarder)) as url,
        httpx.Client(base_url=url) as http,
    ):
        body, digest = signed(transaction(seed=12))
        assert (
            http.post(
                f"{WEBHOOK}?hmac={digest}",
                content=wire_json(body),
                headers={"Content-Type": "application/json"},
            ).status_code
            == 200
        )
        wait_for(lambda: any(f.final for f in forwarded))
    attempts = store.forward_attempts(store.events()[0].id)
    assert len(attempts) == 3 and all(a.status is None and a.error for a in attempts)
    assert forwarded[-1].final and forwarded[-1].error == "refused"


query_text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=80)


@settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    body=st.one_of(
        st.binary(max_size=300),
        st.recursive(
            st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=20)),
            lambda children: st.one_of(
                st.lists(children, max_size=4),
                st.dictionaries(
                    st.sampled_from(["type", "obj", "id", "order", "x"]), children, max_size=4
                ),
            ),
            max_leaves=12,
        ).map(lambda v: json.dumps(v).encode()),
    ),
    query=query_text,
    path=st.sampled_from([WEBHOOK, RESPONSE, "/", "/x/../api/payments/webhook/", "/%00"]),
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE"]),
    content_type=st.sampled_from(
        ["application/json", "text/plain", "", "application/json; charset=utf-8"]
    ),
)
def test_never_a_5xx_and_keeps_serving(
    listener: Listener, body: bytes, query: str, path: str, method: str, content_type: str
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    response = listener.http.request(
        method, f"{path}?{quote(query, safe='=&')}", content=body, headers=headers
    )
    assert response.status_code < 500, response.text
    assert (
        response.json().get("detail")
        if response.headers.get("content-type", "").startswith("application/json")
        else True
    )
    assert listener.http.get("/healthz").status_code == 200


def test_signed_type_confusion_is_rejected(listener: Listener) -> None:
    """A TRANSACTION body presented as TOKEN is refused (its TOKEN fields are misshapen)."""
    body, digest = signed(transaction(seed=13))
    body = {**body, "type": "TOKEN"}
    assert listener.post(body, hmac=digest).status_code == 400
    assert listener.log[-1].verdict == "malformed-signed-fields"
    assert signing.verify(CallbackKind.TOKEN, body["obj"], SECRET, digest).valid is False


def test_one_unstorable_request_does_not_cost_the_others(listener: Listener) -> None:
    """Regression: an odd value in one request of a group commit must not drop its neighbours."""
    import asyncio

    poison = b'{"type":"TRANSACTION","obj":{"id":1,"order":{"id":1,"merchant_order_id":{"a":1}}}}'

    async def burst() -> list[int]:
        async with httpx.AsyncClient(base_url=listener.url, timeout=10) as http:

            async def valid(n: int) -> int:
                body, digest = signed(transaction(seed=100 + n))
                response = await http.post(
                    f"{WEBHOOK}?hmac={digest}",
                    content=wire_json(body),
                    headers={"Content-Type": "application/json"},
                )
                return response.status_code

            async def bad() -> int:
                response = await http.post(
                    WEBHOOK, content=poison, headers={"Content-Type": "application/json"}
                )
                return response.status_code

            return list(
                await asyncio.gather(
                    *[valid(n) for n in range(6)], bad(), *[valid(n) for n in range(6, 12)]
                )
            )

    codes = asyncio.run(burst())
    assert codes.count(200) == 12 and codes[6] == 400  # misshapen signed fields
    assert listener.store.count_events() == 13


@pytest.mark.parametrize(
    ("raw", "query"),
    [
        (b"[" * 100_000, ""),  # nested too deeply for the JSON parser
        (b'{"type":"TRANSACTION","obj":{"id":"\\ud800"}}', "?hmac=abc"),  # a lone surrogate
        (
            b'{"type":"TRANSACTION","obj":{"id":1,"order":{"id":"\\ud800x","merchant_order_id":"\\udc80"}}}',
            "?hmac=%ED%A0%80",
        ),
        (
            b'{"type":"TOKEN","obj":{"id":5,"token":"t","email":[1],"masked_pan":{"x":1},"order_id":"1"}}',
            "?hmac=x",
        ),
    ],
)
def test_hostile_values_are_stored_and_answered_4xx(
    listener: Listener, raw: bytes, query: str
) -> None:
    response = listener.http.post(
        f"{WEBHOOK}{query}", content=raw, headers={"Content-Type": "application/json"}
    )
    assert 400 <= response.status_code < 500, response.text
    assert listener.store.count_events() == 1


def test_card_numbers_outside_the_body_are_masked_too(listener: Listener, tmp_path: Path) -> None:
    listener.http.get(
        "/api/payments/webhook/4111111111111111", headers={"X-Card": "5123 4567 8901 2346"}
    )
    txn = transaction(seed=21, merchant_order_id="5123456789012346")
    body, digest = signed(txn)
    assert listener.post(body, hmac=digest).status_code == 200
    listener.http.get(f"/api/payments/response/?id=1&order=4111111111111111&hmac={digest}")
    events = listener.store.events(limit=None)
    assert all(e.pan_masked for e in events)
    data = b"".join(p.read_bytes() for p in tmp_path.glob("listen.db*"))
    for number in (b"4111111111111111", b"5123456789012346", b"5123 4567 8901 2346"):
        assert number not in data
