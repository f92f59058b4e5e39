"""Load runs (`simulate transaction --count`): distinct signed callbacks, measured, bounded, stored."""

from __future__ import annotations

import io
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl

import pytest

from paymobctl import callbacks, delivery, load, overrides, signing
from paymobctl.callbacks import TransactionSpec
from paymobctl.models import CallbackKind, Outcome
from paymobctl.receiver import create_app
from paymobctl.store import Store

from .conftest import run_cli
from .servers import Recorder, free_port, serve

SECRET = "load-test-secret"
WEBHOOK = "/api/payments/webhook/"
TEMPLATE = callbacks.build_transaction(TransactionSpec(seed=3))


@pytest.mark.parametrize("secret", [SECRET, "ß€-секрет", "k" * 300, ""])
def test_fast_wire_form_is_the_plain_callback(secret: str) -> None:
    signer = load.Signer(TEMPLATE, secret)
    seen = set()
    # Numbers come in blocks of 10**7 (their own segments): both sides of the first boundaries.
    numbers = (0, 1, 9, 10, 12345, 999_999, 9_999_999, 10_000_000, 10_000_001, 123_456_789)
    for number in numbers:
        body, digest = signer.callback(number)
        wire, wire_digest = signer.wire(number)
        assert wire == delivery.wire_json(body) and wire_digest == digest
        obj = json.loads(wire)["obj"]
        assert signing.verify(CallbackKind.TRANSACTION, obj, secret, digest).valid
        assert obj["id"] == load.LOAD_TRANSACTION_BASE + number
        assert obj["order"]["id"] == load.LOAD_ORDER_BASE + number
        assert obj["order"]["merchant_order_id"] == f"paymobctl-load-{signer.tag}-{number:07d}"
        seen.add((obj["id"], obj["order"]["id"], digest))
    assert len(seen) == len(numbers)


def test_the_template_is_the_builders_callback_with_new_ids() -> None:
    """Only the transaction id, order id and merchant order id change; the rest is the
    template ``callbacks.build_transaction`` produced, and every HMAC is ``signing.compute``'s."""
    signer = load.Signer(TEMPLATE, SECRET)
    body, digest = signer.callback(77)
    expected = json.loads(json.dumps(TEMPLATE.body))
    expected["obj"]["id"] = load.LOAD_TRANSACTION_BASE + 77
    expected["obj"]["order"]["id"] = load.LOAD_ORDER_BASE + 77
    expected["obj"]["order"]["merchant_order_id"] = f"paymobctl-load-{signer.tag}-0000077"
    assert body == expected
    assert digest == signing.compute(CallbackKind.TRANSACTION, expected["obj"], SECRET)
    assert signer.wire(77) == (delivery.wire_json(expected), digest)


def test_requests_are_what_delivery_would_send() -> None:
    signer = load.Signer(TEMPLATE, SECRET)
    url = "http://127.0.0.1:8000/hook%20s/?tenant=a%25d"  # a % in the URL is not a placeholder
    requests = load._Requests(signer, url, "127.0.0.1:8000")
    head, body = requests.payload(7).split(b"\r\n\r\n", 1)
    lines = head.decode().split("\r\n")
    expected = signer.request(url, 7)
    assert lines[0] == f"POST /hook%20s/?{expected.url.split('?', 1)[1]} HTTP/1.1"
    assert "Content-Type: application/json" in lines and f"Content-Length: {len(body)}" in lines
    assert body == expected.body


def test_requests_across_blocks_are_the_plain_callbacks() -> None:
    """The request builder keeps one block's segments; numbers from other blocks (a long
    --duration run) switch them, and going back works too."""
    signer = load.Signer(TEMPLATE, SECRET)
    url = "http://127.0.0.1:8000/api/payments/webhook/?tenant=x"
    requests = load._Requests(signer, url, "127.0.0.1:8000")
    for number in (0, 9_999_999, 10_000_000, 3, 25_000_000, 25_000_001, 1_234_567_890):
        head, body = requests.payload(number).split(b"\r\n\r\n", 1)
        expected = signer.request(url, number)
        assert (
            head.split(b" ")[1].decode() == "/api/payments/webhook/?" + expected.url.split("?")[1]
        )
        assert body == expected.body and f"Content-Length: {len(body)}".encode() in head
    # The ids stay exact sums because both bases are whole blocks.
    assert load.LOAD_TRANSACTION_BASE % load._BLOCK == 0 == load.LOAD_ORDER_BASE % load._BLOCK


@pytest.fixture
def listen_url(tmp_path: Path) -> Iterator[tuple[str, Store]]:
    store = Store(tmp_path / "listen.db")
    try:
        with serve(create_app(store=store, secret=SECRET)) as base:
            yield base + WEBHOOK, store
    finally:
        store.close()


@pytest.mark.slow
def test_every_delivery_is_distinct_and_valid_for_listen(listen_url: tuple[str, Store]) -> None:
    url, store = listen_url
    progress: list[load.Progress] = []
    report = load.run(
        load.Plan(url=url, secret=SECRET, template=TEMPLATE, count=300, concurrency=8),
        on_progress=progress.append,
    )
    assert report.sent == report.answered == report.ok == 300
    assert dict(report.statuses) == {200: 300} and not report.errors
    assert progress[-1].done == 300 and progress[-1].total == 300
    events = store.events(limit=1000)
    assert len(events) == 300
    assert all(e.verdict == "valid" for e in events)
    assert len({e.transaction_id for e in events}) == 300  # no duplicates: distinct ids
    summary = report.summary()
    assert (
        summary["latency_ms"]["p50"] <= summary["latency_ms"]["p99"] <= summary["latency_ms"]["max"]
    )


@pytest.mark.slow
def test_n_deliveries_are_n_distinct_validly_signed_callbacks() -> None:
    """The receiver's side: every request the engine sent verifies with the secret, and no
    transaction id, order id, merchant order id or HMAC repeats."""
    recorder = Recorder()
    count = 2000
    with serve(recorder.app()) as base:
        report = load.run(
            load.Plan(
                url=base + WEBHOOK, secret=SECRET, template=TEMPLATE, count=count, concurrency=16
            )
        )
    assert report.sent == report.ok == len(recorder.requests) == count
    ids, orders, references, digests = set(), set(), set(), set()
    for request in recorder.requests:
        assert request.headers["content-type"] == "application/json"
        assert int(request.headers["content-length"]) == len(request.body)
        obj = json.loads(request.body)["obj"]
        digest = dict(parse_qsl(request.query))["hmac"]
        assert signing.verify(CallbackKind.TRANSACTION, obj, SECRET, digest).valid
        ids.add(obj["id"])
        orders.add(obj["order"]["id"])
        references.add(obj["order"]["merchant_order_id"])
        digests.add(digest)
    assert len(ids) == len(orders) == len(references) == len(digests) == count
    assert ids == {load.LOAD_TRANSACTION_BASE + n for n in range(count)}


@pytest.mark.slow
def test_rate_and_duration_bound_what_is_sent() -> None:
    recorder = Recorder()
    with serve(recorder.app()) as base:
        report = load.run(
            load.Plan(
                url=base + WEBHOOK,
                secret=SECRET,
                template=TEMPLATE,
                rate=40,
                duration=0.5,
                concurrency=4,
            )
        )
    # Callback n is due at n / rate seconds; nothing is sent once the duration is over.
    assert 1 <= report.sent <= 40 * 0.5 + 1
    assert len(recorder.requests) == report.answered == report.sent


@pytest.mark.slow
def test_status_histogram_and_errors() -> None:
    recorder = Recorder(answers=[500, 503], status=200)
    with serve(recorder.app()) as base:
        report = load.run(
            load.Plan(url=base + WEBHOOK, secret=SECRET, template=TEMPLATE, count=10, concurrency=1)
        )
    assert dict(report.statuses) == {500: 1, 503: 1, 200: 8} and report.ok == 8


def _raw_server(answer: bytes | None, stop: threading.Event) -> tuple[int, threading.Thread]:
    """A server that reads a request and then answers ``answer`` (None: never answers)."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(0.05)

    def serve_until_stopped() -> None:
        clients = []
        while not stop.is_set():
            try:
                client, _ = server.accept()
            except TimeoutError:
                continue
            clients.append(client)
            client.recv(65536)
            if answer is not None:
                client.sendall(answer)
        for client in clients:
            client.close()
        server.close()

    thread = threading.Thread(target=serve_until_stopped, daemon=True)
    thread.start()
    return int(server.getsockname()[1]), thread


@pytest.mark.slow
@pytest.mark.parametrize(
    ("answer", "kind"),
    [
        (None, "timeout"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2000000\r\n\r\n" + b"x" * 1_100_000, "too-large"),
        (b"NOT HTTP AT ALL\r\n\r\n", "protocol"),
    ],
)
def test_every_answer_has_a_deadline_and_a_size_cap(answer: bytes | None, kind: str) -> None:
    stop = threading.Event()
    port, thread = _raw_server(answer, stop)
    try:
        report = load.run(
            load.Plan(
                url=f"http://127.0.0.1:{port}{WEBHOOK}",
                secret=SECRET,
                template=TEMPLATE,
                count=2,
                concurrency=2,
                timeout=0.3,
            )
        )
    finally:
        stop.set()
        thread.join(timeout=5)
    assert report.errors[kind] == 2 and report.answered == 0
    assert report.first_error


def test_nothing_listening_stops_early() -> None:
    report = load.run(
        load.Plan(
            url=f"http://127.0.0.1:{free_port()}{WEBHOOK}",
            secret=SECRET,
            template=TEMPLATE,
            count=100_000,
            concurrency=4,
        )
    )
    assert report.errors["refused"] >= 1 and report.sent < 100
    assert report.answered == 0


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"count": None, "duration": None}, "--count N or --duration S"),
        ({"count": 0}, "--count 0"),
        ({"concurrency": 0}, "--concurrency 0"),
        ({"rate": -1.0}, "--rate -1.0"),
        ({"duration": 0.0}, "--duration 0.0"),
        ({"url": "ftp://x/"}, "invalid URL"),
    ],
)
def test_plan_is_checked(changes: dict[str, object], message: str) -> None:
    from dataclasses import replace

    from paymobctl.errors import UsageError

    plan = replace(
        load.Plan(url="http://127.0.0.1:1/", secret="s", template=TEMPLATE, count=1), **changes
    )  # type: ignore[arg-type]
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace("*", r"\*")):
        plan.check()


# --- the command -------------------------------------------------------------------------------


@pytest.mark.slow
def test_command_json_is_stored(
    listen_url: tuple[str, Store], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, _ = listen_url
    monkeypatch.setenv("PAYMOB_HMAC_SECRET", SECRET)
    db = tmp_path / "cli.db"
    result = run_cli(
        "--db", str(db), "simulate", "transaction", "--to", url, "--count", "40",
        "--concurrency", "4", "--outcome", "declined", "--json",
    )  # fmt: skip
    assert result.code == 0, result.output
    summary = result.json()
    assert summary["sent"] == summary["ok"] == 40 and summary["statuses"] == {"200": 40}
    assert summary["throughput_per_s"] > 0 and summary["latency_ms"]["p99"] is not None
    runs = Store(db).load_runs()
    assert len(runs) == 1 and runs[0]["summary"]["sent"] == 40 and runs[0]["url"] == url
    text = run_cli("--db", str(db), "simulate", "transaction", "--to", url, "--count", "5")
    assert text.code == 0 and "5 of 5 answered 2xx" in text.stdout and "p99" in text.stdout


@pytest.mark.slow
def test_command_exit_codes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYMOB_HMAC_SECRET", SECRET)
    recorder = Recorder(status=401)
    with serve(recorder.app()) as base:
        rejected = run_cli("simulate", "transaction", "--to", base + WEBHOOK, "--count", "3")
    assert rejected.code == 1 and "0 of 3 answered 2xx" in rejected.stdout
    down = run_cli(
        "simulate", "transaction", "--to", f"http://127.0.0.1:{free_port()}/", "--count", "3"
    )
    assert down.code == 3 and down.stderr.strip().startswith("error: no callback got an answer")


@pytest.mark.parametrize(
    "args",
    [
        ["token", "--count", "3"],
        ["transaction", "--count", "3", "--unsigned"],
        ["transaction", "--count", "3", "--print"],
        ["transaction", "--count", "3", "--rate", "0"],
        # Acceptance review: load options without a load run were silently ignored.
        ["transaction", "--rate", "5"],
        ["transaction", "--concurrency", "4"],
        ["response", "--concurrency", "4", "--rate", "2"],
    ],
)
def test_refused_combinations(args: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYMOB_HMAC_SECRET", SECRET)
    result = run_cli("simulate", *args, "--to", "http://127.0.0.1:9/")
    assert result.code == 2 and result.stderr.count("\n") == 1, result.output


def test_outcome_options_shape_the_template() -> None:
    declined = callbacks.build_transaction(TransactionSpec(outcome=Outcome.DECLINED))
    body, _ = load.Signer(declined, SECRET).callback(0)
    assert body["obj"]["success"] is False


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("terminal", [True, False])
def test_progress_bar_only_on_a_terminal(terminal: bool) -> None:
    from paymobctl.cli.load_view import _progress_bar
    from paymobctl.cli.output import Output
    from paymobctl.cli.runtime import GlobalOptions, Runtime, reset_runtime, set_runtime

    stderr = _Terminal() if terminal else io.StringIO()
    token = set_runtime(Runtime(GlobalOptions(), Output(stdout=io.StringIO(), stderr=stderr)))
    try:
        with _progress_bar(100, None) as update:
            update(load.Progress(done=40, total=100, elapsed=0.5))
    finally:
        reset_runtime(token)
    drawn = stderr.getvalue()
    assert ("40/100" in drawn) is terminal
    assert drawn == "" or terminal


def test_progress_bar_for_a_duration_counts_seconds_and_shows_callbacks() -> None:
    from paymobctl.cli.load_view import _progress_bar
    from paymobctl.cli.output import Output
    from paymobctl.cli.runtime import GlobalOptions, Runtime, reset_runtime, set_runtime

    stderr = _Terminal()
    token = set_runtime(Runtime(GlobalOptions(), Output(stdout=io.StringIO(), stderr=stderr)))
    try:
        with _progress_bar(None, 10.0) as update:
            update(load.Progress(done=1234, total=None, elapsed=2.0))
    finally:
        reset_runtime(token)
    assert "1234 sent" in stderr.getvalue()


def test_percent_signs_in_the_template_are_kept() -> None:
    body = overrides.apply_overrides(
        TEMPLATE.body, [overrides.parse_override("obj.data.message=100%d %s %b approved")]
    )
    signer = load.Signer(callbacks.with_body(TEMPLATE, body), SECRET)
    plain, digest = signer.callback(3)
    assert signer.wire(3) == (delivery.wire_json(plain), digest)


def _one_answer_per_connection(
    stop: threading.Event, *, answer_first: bool
) -> tuple[int, threading.Thread]:
    """Each connection: read a request and answer 200 keep-alive (no ``Connection: close``), then
    read the next request and close without a byte of answer. ``answer_first`` False: close on
    the first request already (nothing was ever answered on that connection)."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    server.settimeout(0.05)

    def handle(client: socket.socket) -> None:
        with client:
            client.settimeout(5)
            if answer_first and client.recv(65536):
                client.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            client.recv(65536)  # the next request (or the first): read, never answered

    def serve_until_stopped() -> None:
        while not stop.is_set():
            try:
                client, _ = server.accept()
            except TimeoutError:
                continue
            threading.Thread(target=handle, args=(client,), daemon=True).start()
        server.close()

    thread = threading.Thread(target=serve_until_stopped, daemon=True)
    thread.start()
    return int(server.getsockname()[1]), thread


@pytest.mark.slow
@pytest.mark.parametrize("concurrency", [1, 3])
def test_a_keep_alive_connection_closed_after_an_answer_is_reopened(concurrency: int) -> None:
    """Acceptance review: a server closing an idle keep-alive connection (no Connection: close)
    made the next request count as an error; it is resent on a new connection instead."""
    stop = threading.Event()
    port, thread = _one_answer_per_connection(stop, answer_first=True)
    try:
        plan = load.Plan(
            url=f"http://127.0.0.1:{port}{WEBHOOK}",
            secret=SECRET,
            template=TEMPLATE,
            count=6,
            concurrency=concurrency,
            timeout=5,
        )
        report = load.run(plan)
    finally:
        stop.set()
        thread.join(timeout=5)
    assert not report.errors, report.first_error
    assert report.sent == report.answered == report.ok == 6 and dict(report.statuses) == {200: 6}


@pytest.mark.slow
def test_a_request_never_answered_on_a_fresh_connection_is_an_error() -> None:
    """The resend is only for a reused connection, and only once: no retry loop, no hiding."""
    stop = threading.Event()
    port, thread = _one_answer_per_connection(stop, answer_first=False)
    try:
        plan = load.Plan(
            url=f"http://127.0.0.1:{port}{WEBHOOK}",
            secret=SECRET,
            template=TEMPLATE,
            count=3,
            concurrency=1,
            timeout=5,
        )
        report = load.run(plan)
    finally:
        stop.set()
        thread.join(timeout=5)
    assert report.errors["closed"] == 3 and report.sent == 3 and report.answered == 0
