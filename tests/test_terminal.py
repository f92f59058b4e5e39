"""Issue 10 §3: nothing a request sent reaches a terminal raw (log, events show, tables, JSON)."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from urllib.parse import quote

import pytest

from paymobctl.cli.listen_cmd import format_received
from paymobctl.cli.output import Output, terminal_safe
from paymobctl.store import NewEvent, Store

from .conftest import run_cli
from .test_listen import Listener, listener

__all__ = ["listener"]

HOSTILE = "\x1b[2J\x1b[H\rHMAC valid \x07\x9b31m\u202egnp.exe\u2066[red]FAKE[/red]\x00\x7f"
# Anything a terminal acts on: C0 (but newline and tab), DEL, C1, bidi controls.
RAW = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_terminal_safe_escapes_what_terminals_act_on() -> None:
    shown = terminal_safe(HOSTILE)
    assert not RAW.search(shown)
    assert "\\x1b[2J" in shown and "\\x0d" in shown and "\\x9b" in shown and "\\u202e" in shown
    assert "[red]FAKE[/red]" in shown  # text, not markup: Output never interprets it
    assert terminal_safe("two\nlines\tok") == "two\nlines\tok"
    assert terminal_safe("two\nlines", one_line=True) == "two\\x0alines"
    assert terminal_safe("plain ascii, café, مرحبا") == "plain ascii, café, مرحبا"


@pytest.mark.parametrize("color", [False, True])
def test_tables_pairs_and_lines_never_interpret_request_text(color: bool) -> None:
    stream = Terminal()
    out = Output(stdout=stream, stderr=Terminal(), no_color=not color)
    out.table(["kind", "problem"], [("TRANSACTION", HOSTILE)])
    out.pairs([("path", HOSTILE)])
    out.line(HOSTILE, style="bold")
    out.warn(HOSTILE)
    text = stream.getvalue()
    assert "[red]FAKE" in text  # rich markup shown literally, never rendered as red
    assert "\x1b[2J" not in text and "\x1b[H" not in text and "\r" not in text
    assert "\x9b" not in text and "\u202e" not in text and "\x07" not in text


def test_json_output_escapes_c1_and_bidi() -> None:
    stream = Terminal()
    Output(stdout=stream, json_mode=True).json({"problem": HOSTILE})
    text = stream.getvalue()
    assert not RAW.search(text)
    assert json.loads(text) == {"problem": HOSTILE}  # the same value, only escaped


def test_listen_log_line_escapes_everything_a_request_sent(listener: Listener) -> None:
    listener.post({"type": HOSTILE, "obj": {}}, hmac="x")
    listener.post(
        {"type": "TRANSACTION", "obj": {"amount_cents": 100, "currency": HOSTILE, "id": 1.5}},
        hmac="x",
    )
    hostile = quote(HOSTILE, safe="")  # percent-encoded on the wire, decoded by the receiver
    listener.http.get(f"/api/payments/response/?id=1&order=2&currency={hostile}&amount_cents=5")
    assert len(listener.log) == 3
    for item in listener.log:
        for color in (False, True):
            line = format_received(item, color=color)
            assert "\n" not in line
            stripped = re.sub(r"\x1b\[[0-9;]*m", "", line) if color else line  # our colours
            assert not RAW.search(stripped), stripped


def test_events_show_and_list_escape_stored_request_text(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "t.db"
    monkeypatch.setenv("PAYMOBCTL_DB", str(db))
    with Store(db) as store:
        stored = store.record_event(
            NewEvent(
                method="POST",
                path="/api/payments/webhook/" + HOSTILE,
                query="hmac=" + HOSTILE,
                headers=[("user-agent", HOSTILE), ("referer", HOSTILE)],
                body=HOSTILE.encode(),
                remote="127.0.0.1:1",
                kind="UNKNOWN",
                status=400,
                verdict="n/a",
                problem=HOSTILE,
                currency=HOSTILE,
                amount_cents=100,
            )
        )
    for args in (
        ("events", "show", str(stored.id)),
        ("events", "list"),
        ("events", "show", str(stored.id), "--json"),
        ("events", "list", "--json"),
    ):
        result = run_cli(*args)
        assert result.code == 0, result.output
        assert not RAW.search(result.output), args
    assert "FAKE" in run_cli("events", "show", str(stored.id)).stdout
