"""Issue 10 §3: no full card number and no CVV reaches the store, in any encoding or column."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paymobctl import pans
from paymobctl.delivery import RetryPolicy
from paymobctl.errors import StoreError
from paymobctl.forwarding import Forwarder
from paymobctl.receiver import create_app
from paymobctl.store import NewEvent, Store

from .inprocess import in_process
from .servers import Recorder
from .test_listen import SECRET, WEBHOOK, signed, transaction, wait_for

PAN = "4539578763621486"  # Luhn-valid, not a test card anywhere else in the suite
GROUPS = ["4539", "5787", "6362", "1486"]


def encodings() -> list[str]:
    """Every spelling of PAN the store must never hold."""
    percent = "".join(f"%{ord(d):02X}" for d in PAN)
    escaped = "".join(f"\\u{ord(d):04x}" for d in PAN)
    return [
        PAN,
        " ".join(GROUPS),
        "-".join(GROUPS),
        "+".join(GROUPS),
        "%20".join(GROUPS),
        percent,
        percent.lower(),
        escaped,
    ]


def stored_bytes(db: Path) -> bytes:
    return b"".join(p.read_bytes() for p in db.parent.glob(db.name + "*"))


def assert_no_card_data(db: Path) -> None:
    data = stored_bytes(db)
    for spelling in encodings():
        assert spelling.encode() not in data, spelling
    assert b"\\u0034\\u0035\\u0033\\u0039" not in data
    for cvv in (b"Q731", b"Q842", b"Q953"):  # the CVV values below, with a marker prefix
        assert cvv not in data


def test_pan_detection_and_masking_units() -> None:
    for spelling in encodings():
        masked, count = pans.mask_text(f"card={spelling}&x=1")
        assert count == 1 and "1486" in masked, spelling
        assert not any(s in masked for s in encodings()), spelling
    # A digit run glued to letters is still masked; one inside a 128-hex digest is not.
    assert pans.mask_text(f"pan{PAN}abc")[1] == 1
    digest = "ab" * 20 + PAN + "cd" * 36
    assert len(digest) == 128 and pans.mask_text(digest) == (digest, 0)
    assert pans.mask_text(f"hmac={PAN}")[1] == 1
    # JSON numbers (int and integral float), keys, nesting.
    value, count = pans.mask_value({PAN: [[int(PAN)], [float(PAN)]], "cvv": "123"})
    assert count == 4 and PAN not in json.dumps(value) and "cvv" not in json.dumps(value)
    assert pans.is_cvv_key("card_cvv") and pans.is_cvv_key("cardSecurityCode")
    assert pans.is_cvv_key("CVC2") and not pans.is_cvv_key("currency")


def test_masked_bodies_stay_byte_identical_when_they_can() -> None:
    body = f'{{"note": "card {PAN}", "x": [1, 2]}}'.encode()
    masked, count = pans.mask_body(body)
    assert count == 1 and len(masked) == len(body) and b"xxxxxxxxxxxx1486" in masked
    untouched = b'{"id": 1234567890123, "amount_cents": 100}'  # not Luhn-valid
    assert pans.mask_body(untouched) == (untouched, 0) or pans.is_pan("1234567890123")


@settings(max_examples=150, deadline=None)
@given(prefix=st.text(max_size=20), suffix=st.text(max_size=20))
def test_property_masked_text_never_holds_the_number(prefix: str, suffix: str) -> None:
    for spelling in encodings():
        masked, _ = pans.mask_text(prefix + " " + spelling + " " + suffix)
        for other in encodings():
            assert other not in masked or other in prefix + suffix


def test_every_encoding_and_column_is_masked_in_a_real_listener(tmp_path: Path) -> None:
    db = tmp_path / "cards.db"
    store = Store(db)
    app = Recorder()
    with in_process(app.app()) as downstream:
        forwarder = Forwarder(
            store,
            targets=[f"{downstream}/hook/?card={PAN}"],
            policy=RetryPolicy(attempts=1, first_delay=0.01, factor=1, max_delay=0.01),
            timeout=2,
        )
        receiver = create_app(store=store, secret=SECRET, forwarder=forwarder)
        with in_process(receiver) as url, httpx.Client(base_url=url) as http:
            headers = {
                "Content-Type": "application/json",
                "Referer": f"https://shop.example/pay?card={'%20'.join(GROUPS)}",
                "X-Card": "+".join(GROUPS),
            }
            for spelling in encodings():
                http.get(f"/api/payments/response/?id=1&order=2&pan={spelling}&currency={PAN}")
            http.post(f"{WEBHOOK}?hmac={PAN}", content=b"{}", headers=headers)
            escaped = "".join(f"\\u{ord(d):04x}" for d in PAN)
            bodies = [
                f'{{"type":"TRANSACTION","obj":{{"id":{PAN},"currency":"{PAN}",'
                f'"card":"{escaped}","deep":[[[[{PAN}]]]],"f":{PAN}.0,'
                '"cvv":"Q731","card_cvv":"Q842","security_code":"Q953"}}',
                f'{{"type":"TRANSACTION","obj":{{"order":{{"id":1,"merchant_order_id":"{PAN}"}}}}}}',
            ]
            for body in bodies:
                http.post(WEBHOOK, content=body.encode(), headers=headers)
            http.post(
                WEBHOOK,
                content=f"card_number={'+'.join(GROUPS)}&cvv2=Q731".encode(),
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )
            genuine, digest = signed(transaction(seed=40))
            assert http.post(f"{WEBHOOK}?hmac={digest}", json=genuine).status_code == 200
            wait_for(lambda: len(app.requests) >= 5)
    events = store.events(limit=None)
    assert all(e.pan_masked for e in events if e.verdict != "valid")
    valid = [e for e in events if e.verdict == "valid"]
    assert valid and valid[0].hmac == digest  # a genuine 128-hex HMAC is kept as it is
    attempts = [a for e in events for a in store.forward_attempts(e.id)]
    assert attempts and all(PAN not in a.target and "1486" in a.target for a in attempts)
    store.close()
    assert_no_card_data(db)


@pytest.mark.parametrize("mode", ["query", "body"])
def test_cvv_keys_are_dropped_from_stored_bodies(tmp_path: Path, mode: str) -> None:
    db = tmp_path / "cvv.db"
    store = Store(db)
    with (
        in_process(create_app(store=store, secret=SECRET)) as url,
        httpx.Client(base_url=url) as http,
    ):
        if mode == "query":
            http.get("/api/payments/response/?id=1&order=2&cvc=Q731&Card_CVV=Q842")
        else:
            http.post(
                WEBHOOK,
                content=b'{"type":"TOKEN","obj":{"cvv":"Q731","nested":{"cvc2":"Q842"}}}',
                headers={"Content-Type": "application/json"},
            )
    event = store.events()[0]
    text = event.body.decode() + event.query
    assert "Q731" not in text and "Q842" not in text
    if mode == "body":
        assert json.loads(event.body) == {"type": "TOKEN", "obj": {"nested": {}}}
    store.close()
    assert_no_card_data(db)


def test_no_digit_run_in_the_store_reads_as_a_card_number(tmp_path: Path) -> None:
    """Whatever was stored above, a scan of the file finds no Luhn-valid 13–19 digit run
    outside long hex digests."""
    db = tmp_path / "scan.db"
    store = Store(db)
    store.save_sandbox_object("card", "k", {"number": int(PAN), "cvv": "Q731"})
    store.save_payment_method(
        token="t" * 20, masked_pan=PAN, card_subtype="Visa", email=None, order_id=None
    )
    store.close()
    text = stored_bytes(db).decode("latin-1")
    runs = [m.group(0) for m in re.finditer(r"[0-9]{13,19}", text)]
    assert not [r for r in runs if pans.is_pan(r)]
    assert "Q731" not in text


# --- the store's files and what listen says when it cannot store ----------------------------


def test_store_files_are_private(tmp_path: Path) -> None:
    import os
    import stat

    old = os.umask(0o022)
    try:
        db = tmp_path / "new" / "dir" / "p.db"
        with Store(db) as store:
            store.record_event(NewEvent("GET", "/", "", [], b"", None, "UNKNOWN", 404, "n/a"))
            files = [db, db.with_name("p.db-wal"), db.with_name("p.db-shm")]
            assert all(f.exists() for f in files)
            for path in files:
                assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
        assert stat.S_IMODE(db.parent.stat().st_mode) == 0o700
        # An existing store readable by others is tightened once it is known to be ours.
        db.chmod(0o644)
        Store(db).close()
        assert stat.S_IMODE(db.stat().st_mode) == 0o600
        # Somebody else's file is refused and left exactly as it was.
        foreign = tmp_path / "foreign.db"
        import sqlite3

        conn = sqlite3.connect(foreign)
        conn.execute("CREATE TABLE other (x)")
        conn.commit()
        conn.close()
        foreign.chmod(0o644)
        with pytest.raises(StoreError):
            Store(foreign)
        assert stat.S_IMODE(foreign.stat().st_mode) == 0o644
    finally:
        os.umask(old)


class FullStore(Store):
    """A store whose disk is full: every write fails as SQLite reports it."""

    def record_events(self, events: Any) -> Any:
        raise StoreError(
            f"{self.path}: database error while trying to write to (database or disk is full)"
        )


def test_every_503_is_logged_with_its_reason(tmp_path: Path) -> None:
    import asyncio

    from paymobctl.cli.listen_cmd import format_received
    from paymobctl.receiver import Received

    log: list[Received] = []
    app = create_app(store=FullStore(tmp_path / "full.db"), secret=SECRET, sink=log.append)

    async def post() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://listen") as http:
            return await http.post(
                WEBHOOK, content=b"{}", headers={"content-type": "application/json"}
            )

    response = asyncio.run(post())
    assert response.status_code == 503 and "disk is full" in response.json()["detail"]
    assert len(log) == 1 and log[0].status == 503
    line = format_received(log[0], color=False)
    assert "#-" in line and "503" in line and "NOT STORED" in line and "disk is full" in line
