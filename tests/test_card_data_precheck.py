"""The store's one-scan pre-check (pans.might_hold_card_data): when it says "nothing to mask",
every masking function would have returned its input unchanged; card data in any encoding and
in any part of a request still takes the masking path and never reaches the store."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest

from paymobctl import pans
from paymobctl.store import NewEvent, Store

from .test_card_data import PAN, assert_no_card_data, encodings

CLEAN_HEADERS = [("host", "127.0.0.1:8000"), ("content-type", "application/json")]
HMAC = "e9e411ee3341d5e63a211470ba58" + "1234567890123" + "0" * 87  # a digest holding 13 digits


def clean_body() -> bytes:
    return json.dumps(
        {
            "type": "TRANSACTION",
            "obj": {
                "id": 500000001,
                "amount_cents": 25000,
                "order": {"id": 600000001, "shipping_data": {"phone_number": "+201234567890"}},
                "source_data": {"pan": "2346", "type": "card", "sub_type": "MasterCard"},
                "created_at": "2025-04-12T14:10:57.596853",
                "is_voided": False,
                "success": True,
            },
        }
    ).encode()


def event(body: bytes, query: str, headers: list[tuple[str, str]], **extra: object) -> NewEvent:
    fields: dict[str, object] = {"kind": "TRANSACTION", "status": 200, "verdict": "n/a"}
    fields.update(extra)
    return NewEvent(
        method="POST",
        path="/api/payments/webhook/",
        query=query,
        headers=headers,
        body=body,
        remote="127.0.0.1:4000",
        **fields,  # type: ignore[arg-type]
    )


def test_a_clean_callback_is_decided_by_the_one_scan_and_stored_byte_identical(
    tmp_path: Path,
) -> None:
    body, query = clean_body(), f"hmac={HMAC}"
    assert not pans.might_hold_card_data(body, query, CLEAN_HEADERS, ("/x", "EGP"))
    with Store(tmp_path / "db.sqlite") as store:
        stored = store.record_event(event(body, query, CLEAN_HEADERS, hmac=HMAC))
        row = store.event(stored.id)
    assert row is not None and not stored.pan_masked
    assert row.body == body and row.query == query and row.hmac == HMAC


def placements(spelling: str) -> list[tuple[bytes, str, list[tuple[str, str]], dict[str, object]]]:
    """A card number spelt ``spelling`` in each part of a request, the rest clean."""
    body, query = clean_body(), f"hmac={HMAC}"
    as_json_text = json.dumps(spelling)[1:-1].replace("\\\\u", "\\u")  # keep \\u escapes live
    return [
        (body[:-2] + f',"note":"{as_json_text}"}}}}'.encode(), query, CLEAN_HEADERS, {}),
        (body, f"{query}&card={spelling}", CLEAN_HEADERS, {}),
        (body, f"card={spelling}&{query}", CLEAN_HEADERS, {}),
        (body, query, [*CLEAN_HEADERS, ("referer", f"https://shop.example/pay?c={spelling}")], {}),
        (body, query, [*CLEAN_HEADERS, (f"x-{spelling}", "1")], {}),
        (body, query, CLEAN_HEADERS, {"merchant_order_id": spelling}),
        (body, query, CLEAN_HEADERS, {"object_id": spelling}),
        (body, query, CLEAN_HEADERS, {"currency": spelling}),
        (body, query, CLEAN_HEADERS, {"hmac": spelling}),
        (body, query, CLEAN_HEADERS, {"problem": f"warning about {spelling}"}),
    ]


ODD_SPLITS = [
    "4 539 57876 3621 486",
    "45-395787-63621486",
    "4539+5787+6362+1486",
    "45 39-5787+6362 1486",
]


@pytest.mark.parametrize("spelling", [*encodings(), *ODD_SPLITS])
def test_card_numbers_anywhere_in_a_request_still_take_the_masking_path(
    tmp_path: Path, spelling: str
) -> None:
    with Store(tmp_path / "db.sqlite") as store:
        for body, query, headers, extra in placements(spelling):
            texts = tuple(str(v) for v in extra.values())
            assert pans.might_hold_card_data(body, query, headers, texts), (spelling, extra)
            stored = store.record_event(event(body, query, headers, **extra))
            assert stored.pan_masked, (spelling, body[-60:], query, headers, extra)
    assert_no_card_data(tmp_path / "db.sqlite")
    data = b"".join(p.read_bytes() for p in tmp_path.glob("db.sqlite*"))
    for split in ODD_SPLITS:
        assert split.encode() not in data


@pytest.mark.parametrize(
    "body",
    [
        b'{"obj":{"card":' + PAN.encode() + b"}}",  # a JSON number
        b'{"obj":{"card":' + PAN.encode() + b".0}}",  # an integral float
        b'{"obj":{"cards":[[["' + " ".join(["4539", "5787", "6362", "1486"]).encode() + b'"]]]}}',
        b'{"obj":{"card_cvv":"Q731","cvc2":"Q842"}}',
        b'{"obj":{"Security-Code":"Q953"}}',
        b"card_number=" + PAN.encode() + b"&cvv=Q731",
    ],
)
def test_json_numbers_arrays_and_security_codes_are_caught(tmp_path: Path, body: bytes) -> None:
    assert pans.might_hold_card_data(body, "", CLEAN_HEADERS)
    with Store(tmp_path / "db.sqlite") as store:
        assert store.record_event(event(body, "", CLEAN_HEADERS)).pan_masked
    assert_no_card_data(tmp_path / "db.sqlite")


def test_cvv_header_names_and_pan_numbers_in_id_columns_are_caught(tmp_path: Path) -> None:
    with Store(tmp_path / "db.sqlite") as store:
        headers = [*CLEAN_HEADERS, ("X-Card-CVV", "Q731")]
        assert store.record_event(event(clean_body(), "", headers)).pan_masked
        numbered = event(clean_body(), "", CLEAN_HEADERS, order_id=int(PAN), transaction_id=1)
        assert store.record_event(numbered).pan_masked
        row = store.events(limit=1)[0]
        assert row.order_id is None
    assert_no_card_data(tmp_path / "db.sqlite")


ALPHABET = '0123456789 -+%\\uUcvsCSeEriIaAx_:=&"{}[],.\n'


def test_property_the_one_scan_never_skips_what_a_masking_function_would_change() -> None:
    """Random texts rich in digits, separators, escapes and security-code letters: whenever
    the combined pre-check says "nothing", each part's own masking leaves it as it is."""
    rng = random.Random(10)
    skipped = 0
    for _ in range(3000):

        def text(size: int) -> str:
            return "".join(rng.choice(ALPHABET) for _ in range(rng.randrange(size)))

        body = (rng.choice(["", '{"a":"', "x="]) + text(60)).encode()
        query = rng.choice(["", f"hmac={HMAC}&", "a="]) + text(30)
        pairs = [(text(8) or "h", text(30))]
        others = (text(20), text(20))
        if pans.might_hold_card_data(body, query, pairs, others):
            continue
        skipped += 1
        assert pans.mask_body(body) == (body, 0)
        assert pans.mask_query(query) == (query, 0)
        assert pans.mask_pairs(pairs) == (pairs, 0)
        for other in others:
            assert pans.mask_text(other) == (other, 0)
    assert skipped > 300  # the property was exercised, not vacuous


def test_is_digest_is_the_long_hex_word_rule() -> None:
    rule = re.compile(r"[0-9a-fA-F]{64,}")
    rng = random.Random(3)
    cases = [HMAC, HMAC[:63], HMAC.upper(), HMAC + "g", " " + HMAC, HMAC + "\n", "0x" + HMAC, ""]
    for _ in range(2000):
        cases.append(
            "".join(rng.choice("0123456789abcdefABCDEF g\n") for _ in range(rng.randrange(62, 70)))
        )
    for case in cases:
        assert pans.is_digest(case) == (rule.fullmatch(case) is not None), case
