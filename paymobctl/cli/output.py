"""Rendering: rich tables and colour on a terminal, plain stable text when piped, JSON on request."""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, is_dataclass
from enum import Enum
from typing import IO, TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from rich.console import Console


# Characters a terminal acts on instead of showing: C0 controls (ESC starts colour, cursor and
# clear-screen sequences, CR overwrites a line, BEL rings), DEL, C1 controls (U+009B is a CSI
# on its own), and the bidirectional overrides and isolates that reorder what is displayed
# (the "Trojan Source" characters). Line and paragraph separators end a line in some terminals.
# Patterns as text: `re` compiles each on first use and caches it, so start-up compiles none.
_UNSAFE = "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]"
_UNSAFE_ONE_LINE = "[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]"
_JSON_UNSAFE = "[\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]"


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group(0))
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def terminal_safe(text: str, *, one_line: bool = False) -> str:
    """``text`` with everything a terminal would act on shown as an escape (``\\x1b``,
    ``\\u202e``): the one escaping function every renderer uses for what a request sent.

    Newlines and tabs are kept unless ``one_line`` (a log line must stay one line). Rich markup
    is not interpreted anywhere text goes through :class:`Output` (``markup=False``, table
    cells as plain ``Text``), so ``[red]`` stays literal.
    """
    pattern = re.compile(_UNSAFE_ONE_LINE if one_line else _UNSAFE)  # cached by re
    return pattern.sub(_escape, text) if pattern.search(text) else text


def json_terminal_safe(text: str) -> str:
    """Serialised JSON with C1 controls and bidi characters as ``\\u`` escapes (json escapes
    only C0): the same JSON value, safe on a terminal."""
    return re.sub(_JSON_UNSAFE, lambda m: f"\\u{ord(m.group(0)):04x}", text)


def to_jsonable(value: Any) -> Any:
    """Dataclasses, enums, secrets and paths → plain JSON values."""
    from paymobctl.models import Secret

    if isinstance(value, Secret):
        return value.masked
    if is_dataclass(value) and not isinstance(value, type):
        return to_jsonable(asdict(value))
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_jsonable(v) for v in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


class _MaskedStream:
    """A text stream that masks the password of every URL written to it (``user:****@``):
    credentials in a URL the user gave never reach the terminal, a pipe or a log."""

    def __init__(self, inner: IO[str]) -> None:
        self.inner = inner

    def write(self, text: str) -> int:
        from paymobctl.models import mask_url_credentials

        return self.inner.write(mask_url_credentials(text) if "@" in text else text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


SPINNER_DELAY = 1.0  # seconds a call may take before a spinner shows it
ATOMIC_WIDTH = 24  # a space-free cell up to this long is an id or a word: never split


_LAST_ZONE: dict[tuple[object, ...], Any] = {}  # local_time's last zone lookup
_LAST_CLOCK: dict[tuple[object, ...], tuple[str, str]] = {}  # and its last clock_only second


def local_time(iso: str | None, *, clock_only: bool = False) -> str:
    """A stored time (ISO-8601, UTC) for people: the local zone, offset shown
    (``2026-12-02 12:40:00+02:00``; ``12:40:00.123+02:00`` with ``clock_only``). Every
    human-facing time goes through here; ``--json`` keeps the stored ISO-8601 text."""
    if not iso:
        return ""
    if clock_only and len(iso) == 29 and iso[19] == "." and iso[23:] == "+00:00":
        # A log line's receive time (UTC, milliseconds): the local clock and offset of its
        # whole second are kept (a burst of callbacks shares them; the zone's offsets are
        # whole minutes, so the milliseconds carry over as they are).
        import time

        key = (iso[:19], time.tzname, time.timezone, os.environ.get("TZ"))
        clock = _LAST_CLOCK.get(key)
        if clock is None:
            text = _local_time(f"{iso[:19]}.000+00:00", clock_only=True)
            if text[8:12] != ".000":  # not a time after all: shown as it came
                return _local_time(iso, clock_only=True)
            clock = (text[:8], text[12:])
            _LAST_CLOCK.clear()
            _LAST_CLOCK[key] = clock
        return f"{clock[0]}{iso[19:23]}{clock[1]}"
    return _local_time(iso, clock_only=clock_only)


def _local_time(iso: str, *, clock_only: bool) -> str:
    from datetime import UTC, datetime

    try:
        moment = datetime.fromisoformat(iso)
    except ValueError:
        return iso
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    # astimezone() asks the C library for the zone of every call (half of a `listen` log
    # line's cost); its answer only changes with the second (zone transitions are whole
    # seconds) or the zone setting, so the last one is kept (a burst is logged at one
    # lookup per second).
    import time

    key = (aware.timestamp() // 1, time.tzname, time.timezone, os.environ.get("TZ"))
    zone = _LAST_ZONE.get(key)
    if zone is None:
        zone = aware.astimezone().tzinfo
        _LAST_ZONE.clear()
        _LAST_ZONE[key] = zone
    local = aware.astimezone(zone)
    if clock_only:
        return local.isoformat(timespec="milliseconds")[11:]
    return local.isoformat(sep=" ", timespec="seconds")


class Output:
    """Where every command writes. Results go to stdout; diagnostics to stderr."""

    def __init__(
        self,
        *,
        json_mode: bool = False,
        no_color: bool = False,
        stdout: IO[str] | None = None,
        stderr: IO[str] | None = None,
    ) -> None:
        self.json_mode = json_mode
        self.stdout = cast("IO[str]", _MaskedStream(stdout or sys.stdout))
        self.stderr = cast("IO[str]", _MaskedStream(stderr or sys.stderr))
        self.is_terminal = _isatty(self.stdout)
        self.color = not no_color and "NO_COLOR" not in os.environ and self.is_terminal
        self.err_tty = _isatty(self.stderr)
        self.err_color = not no_color and "NO_COLOR" not in os.environ and self.err_tty
        self._console: Console | None = None
        self._err_console: Console | None = None

    # -- consoles (rich is imported only when a terminal needs it) ------------------------------

    @property
    def console(self) -> Console:
        if self._console is None:
            from rich.console import Console

            self._console = Console(
                file=self.stdout,
                no_color=not self.color,
                highlight=False,
                soft_wrap=False,
                force_terminal=self.color or None,
            )
        return self._console

    @property
    def err_console(self) -> Console:
        if self._err_console is None:
            from rich.console import Console

            self._err_console = Console(
                file=self.stderr,
                no_color=not self.err_color,
                highlight=False,
                force_terminal=self.err_color or None,
            )
        return self._err_console

    # -- results ------------------------------------------------------------------------------

    def json(self, value: Any) -> None:
        text = json.dumps(to_jsonable(value), indent=2, ensure_ascii=False)
        self.stdout.write(json_terminal_safe(text) + "\n")
        self.stdout.flush()

    def ndjson(self, value: Any) -> None:
        text = json.dumps(to_jsonable(value), ensure_ascii=False, separators=(",", ":"))
        self.stdout.write(json_terminal_safe(text) + "\n")

    def line(self, text: str = "", *, style: str | None = None) -> None:
        text = terminal_safe(text)
        if self.color and style:
            self.console.print(text, style=style, markup=False, highlight=False)
        else:
            self.stdout.write(text + "\n")

    def pairs(self, rows: Iterable[tuple[str, Any]]) -> None:
        """``Label: value`` lines, aligned."""
        items = [
            (label, "" if value is None else terminal_safe(str(value), one_line=True))
            for label, value in rows
        ]
        width = max((len(label) for label, _ in items), default=0) + 1
        for label, value in items:
            self.line(f"{(label + ':').ljust(width)} {value}")

    def table(
        self,
        columns: Sequence[str],
        rows: Iterable[Sequence[Any]],
        *,
        title: str | None = None,
        empty: str = "nothing to show",
    ) -> None:
        data = [
            ["" if cell is None else terminal_safe(str(cell), one_line=True) for cell in row]
            for row in rows
        ]
        if not data:
            self.line(empty)
            return
        if self.is_terminal:
            from rich.table import Table
            from rich.text import Text

            table = Table(title=title, show_lines=False, header_style="bold" if self.color else "")
            for index, column in enumerate(columns):
                cells = [row[index] for row in data if index < len(row)]
                # Ids, enum words and other single tokens never wrap; text columns give way
                # (wrap at spaces, an ellipsis for what still does not fit) so tables fit.
                atomic = all(len(c) <= ATOMIC_WIDTH and not any(ch.isspace() for ch in c)
                             for c in cells)  # fmt: skip
                table.add_column(column, no_wrap=atomic, overflow="ellipsis")
            for row in data:
                table.add_row(*[Text(cell) for cell in row])  # Text: "[red]" is not markup
            self.console.print(table)
            return
        widths = [len(c) for c in columns]
        for row in data:
            for index, cell in enumerate(row):
                widths[index] = max(widths[index], len(cell))
        if title:
            self.stdout.write(title + "\n")
        header = "  ".join(c.ljust(widths[i]) for i, c in enumerate(columns)).rstrip()
        self.stdout.write(header + "\n")
        for row in data:
            self.stdout.write(
                "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() + "\n"
            )

    # -- progress -----------------------------------------------------------------------------

    def spinner_text(self, text: str) -> str:
        """One spinner line that fits the terminal (80 columns at most): spinner, space, text."""
        from rich.markup import escape

        width = min(80, self.err_console.width if self.err_tty else 80) - 2
        text = terminal_safe(text, one_line=True)
        return escape(text if len(text) <= width else text[: width - 1] + "…")

    @contextlib.contextmanager
    def waiting(self, action: str, attempt: int = 0) -> Iterator[None]:
        """Around a call that may take long: after ``SPINNER_DELAY`` a spinner on stderr saying
        what it waits for (and the retry, if one), only when stderr is a terminal."""
        if not self.err_tty:
            yield
            return
        import threading

        retry = f" (retry {attempt})" if attempt else ""
        text = self.spinner_text(f"{action}{retry}…")
        status = self.err_console.status(text)
        timer = threading.Timer(SPINNER_DELAY, status.start)
        timer.start()
        try:
            yield
        finally:
            timer.cancel()
            status.stop()

    # -- diagnostics --------------------------------------------------------------------------

    def info(self, text: str) -> None:
        text = terminal_safe(text)
        if self.err_color:
            self.err_console.print(text, style="dim", markup=False, highlight=False)
        else:
            self.stderr.write(text + "\n")

    def warn(self, text: str) -> None:
        text = terminal_safe(text)
        if self.err_color:
            self.err_console.print(
                "warning: " + text, style="yellow", markup=False, highlight=False
            )
        else:
            self.stderr.write("warning: " + text + "\n")

    def error_object(self, message: str, hint: str | None, exit_code: int) -> None:
        """With ``--json``: the error as one JSON object on stdout, for scripts (the line on
        stderr is written too)."""
        self.ndjson({"error": {"message": message, "hint": hint, "exit_code": exit_code}})
        self.stdout.flush()

    def error(self, text: str) -> None:
        text = terminal_safe(text)
        if self.err_color:
            self.err_console.print(
                "error: " + text, style="bold red", markup=False, highlight=False
            )
        else:
            self.stderr.write("error: " + text + "\n")
        self.stderr.flush()

    def ok(self, text: str) -> None:
        self.line(text, style="bold green")

    def bad(self, text: str) -> None:
        self.line(text, style="bold red")


def _isatty(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def visible(text: str) -> str:
    """``text`` with control and other non-printable characters escaped (``\\x1b``), for values
    another server chose (URLs, messages) on their way to a terminal."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
