"""The local SQLite store: schema, migrations and every query (the only module importing sqlite3).

WAL mode and a busy timeout let ``paymobctl listen`` write while other commands read. The schema
is versioned with ``PRAGMA user_version``; each migration runs in its own transaction, so an
interrupted upgrade leaves the previous version intact.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from paymobctl import pans
from paymobctl.errors import StoreError
from paymobctl.models import format_amount, mask_url_credentials

BUSY_TIMEOUT_MS = 10_000

# Each entry upgrades the schema from version (index) to version (index + 1).
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    # 1: foundation — a record of every HMAC verification (never the secret, never the payload).
    (
        """CREATE TABLE hmac_checks (
            id INTEGER PRIMARY KEY,
            created_at TEXT NOT NULL,
            kind TEXT NOT NULL,
            valid INTEGER NOT NULL,
            convention TEXT,
            profile TEXT,
            origin TEXT
        )""",
    ),
    # 2: simulate — every callback paymobctl sent (or printed), with the answer it got.
    (
        """CREATE TABLE deliveries (
            id INTEGER PRIMARY KEY,
            created_at TEXT NOT NULL,
            origin TEXT NOT NULL,
            kind TEXT NOT NULL,
            outcome TEXT,
            source TEXT,
            method TEXT NOT NULL,
            url TEXT NOT NULL,
            request_headers TEXT NOT NULL,
            request_body BLOB,
            signature TEXT NOT NULL,
            transaction_id INTEGER,
            order_id INTEGER,
            merchant_order_id TEXT,
            payload TEXT,
            status INTEGER,
            latency_ms REAL,
            response_headers TEXT,
            response_excerpt TEXT,
            error TEXT,
            pan_masked INTEGER NOT NULL DEFAULT 0
        )""",
        "CREATE INDEX deliveries_order ON deliveries (order_id, kind)",
    ),
    # 3: sandbox — the emulator's objects when it runs with --state PATH.
    (
        """CREATE TABLE sandbox_objects (
            kind TEXT NOT NULL,
            key TEXT NOT NULL,
            body TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            PRIMARY KEY (kind, key)
        )""",
    ),
    # 4: listen — every request the receiver got, forwards, and the effects on deposits and cards.
    (
        """CREATE TABLE events (
            id INTEGER PRIMARY KEY,
            received_at TEXT NOT NULL,
            method TEXT NOT NULL,
            path TEXT NOT NULL,
            query TEXT NOT NULL,
            headers TEXT NOT NULL,
            body BLOB NOT NULL,
            remote TEXT,
            kind TEXT NOT NULL,
            status INTEGER NOT NULL,
            verdict TEXT NOT NULL,
            convention TEXT,
            hmac TEXT,
            object_id TEXT,
            transaction_id INTEGER,
            order_id INTEGER,
            merchant_order_id TEXT,
            success INTEGER,
            pending INTEGER,
            amount_cents INTEGER,
            currency TEXT,
            problem TEXT,
            pan_masked INTEGER NOT NULL DEFAULT 0,
            duplicates INTEGER NOT NULL DEFAULT 0,
            last_seen_at TEXT,
            dedup_key TEXT
        )""",
        # One short unique key (type, object id, first 128 bits of the HMAC) is the only index
        # the hot insert maintains: scripts/bench_listen.py measured each extra index at ~6 µs.
        "CREATE UNIQUE INDEX events_dedup ON events (dedup_key) WHERE dedup_key IS NOT NULL",
        """CREATE TABLE forward_attempts (
            id INTEGER PRIMARY KEY,
            event_id INTEGER NOT NULL REFERENCES events (id),
            target TEXT NOT NULL,
            attempt INTEGER NOT NULL,
            at TEXT NOT NULL,
            status INTEGER,
            latency_ms REAL,
            error TEXT,
            excerpt TEXT
        )""",
        "CREATE INDEX forward_attempts_event ON forward_attempts (event_id)",
        """CREATE TABLE deposits (
            id INTEGER PRIMARY KEY,
            created_at TEXT NOT NULL,
            profile TEXT NOT NULL,
            mode TEXT NOT NULL,
            flow TEXT NOT NULL,
            base_url TEXT NOT NULL,
            order_id INTEGER NOT NULL,
            merchant_order_id TEXT,
            intention_id TEXT,
            amount_cents INTEGER NOT NULL,
            currency TEXT NOT NULL,
            checkout_url TEXT NOT NULL,
            expires_at TEXT,
            save_card INTEGER NOT NULL DEFAULT 0,
            status TEXT NOT NULL DEFAULT 'pending',
            transaction_id INTEGER,
            paid_at TEXT,
            decline_reason TEXT,
            refunded_cents INTEGER NOT NULL DEFAULT 0,
            updated_at TEXT NOT NULL,
            UNIQUE (base_url, order_id)
        )""",
        "CREATE INDEX deposits_order ON deposits (order_id)",
        """CREATE TABLE payment_methods (
            id INTEGER PRIMARY KEY,
            created_at TEXT NOT NULL,
            token TEXT NOT NULL UNIQUE,
            masked_pan TEXT NOT NULL,
            card_subtype TEXT,
            email TEXT,
            order_id INTEGER,
            paymob_id INTEGER,
            event_id INTEGER REFERENCES events (id),
            removed INTEGER NOT NULL DEFAULT 0
        )""",
    ),
    # 5: checklist — every go-live checklist run and its results, for history and --diff.
    (
        """CREATE TABLE checklist_runs (
            id INTEGER PRIMARY KEY,
            started_at TEXT NOT NULL,
            url TEXT NOT NULL,
            profile TEXT NOT NULL,
            mode TEXT NOT NULL,
            duration_ms REAL NOT NULL,
            fail_level TEXT NOT NULL,
            exit_code INTEGER NOT NULL,
            probe_order_id INTEGER
        )""",
        "CREATE INDEX checklist_runs_url ON checklist_runs (url, id)",
        """CREATE TABLE checklist_results (
            run_id INTEGER NOT NULL REFERENCES checklist_runs (id),
            check_id TEXT NOT NULL,
            area TEXT NOT NULL,
            severity TEXT NOT NULL,
            status TEXT NOT NULL,
            detail TEXT NOT NULL,
            hint TEXT,
            PRIMARY KEY (run_id, check_id)
        )""",
    ),
    # 6: webhook test and load — `webhook test` runs share the checklist's run tables (same
    # shape: graded results by stable id, history, --diff), told apart by `suite`; load runs of
    # `simulate … --count` keep their throughput, percentiles and status histogram.
    (
        "ALTER TABLE checklist_runs ADD COLUMN suite TEXT NOT NULL DEFAULT 'checklist'",
        """CREATE TABLE load_runs (
            id INTEGER PRIMARY KEY,
            started_at TEXT NOT NULL,
            url TEXT NOT NULL,
            profile TEXT NOT NULL,
            mode TEXT NOT NULL,
            summary TEXT NOT NULL
        )""",
    ),
    # 7: listen — a body over --max-body is answered 413 and only its first 64 KiB are kept.
    ("ALTER TABLE events ADD COLUMN truncated INTEGER NOT NULL DEFAULT 0",),
    # 8: intention deposits — recorded as soon as the server accepted the intention, before its
    # order id is known (learnt later from the webhook or the inquiry): order_id becomes nullable.
    (
        """CREATE TABLE deposits_v8 (
            id INTEGER PRIMARY KEY,
            created_at TEXT NOT NULL,
            profile TEXT NOT NULL,
            mode TEXT NOT NULL,
            flow TEXT NOT NULL,
            base_url TEXT NOT NULL,
            order_id INTEGER,
            merchant_order_id TEXT,
            intention_id TEXT,
            amount_cents INTEGER NOT NULL,
            currency TEXT NOT NULL,
            checkout_url TEXT NOT NULL,
            expires_at TEXT,
            save_card INTEGER NOT NULL DEFAULT 0,
            status TEXT NOT NULL DEFAULT 'pending',
            transaction_id INTEGER,
            paid_at TEXT,
            decline_reason TEXT,
            refunded_cents INTEGER NOT NULL DEFAULT 0,
            updated_at TEXT NOT NULL,
            UNIQUE (base_url, order_id)
        )""",
        "INSERT INTO deposits_v8 SELECT * FROM deposits",
        "DROP TABLE deposits",
        "ALTER TABLE deposits_v8 RENAME TO deposits",
        "CREATE INDEX deposits_order ON deposits (order_id)",
        "CREATE INDEX deposits_unlinked ON deposits (merchant_order_id) WHERE order_id IS NULL",
    ),
)

SCHEMA_VERSION = len(MIGRATIONS)
WAL_SIZE_LIMIT = 64 * 1024 * 1024  # bytes kept of the WAL file after a checkpoint resets it
CHECKPOINT_NICE = 10  # the background checkpointer's niceness (listen; Linux)


def _masked(text: str | None) -> tuple[str | None, bool]:
    """Optional text as stored: card numbers masked (pans.mask_text, the one masking function)."""
    if text is None:
        return None, False
    masked, count = pans.mask_text(text)
    return masked, count > 0


def _storable_text(value: Any) -> str | None:
    """A scalar from a callback as text for a TEXT column; objects and lists are dropped."""
    if value is None or isinstance(value, dict | list):
        return None
    return str(_storable(str(value)))


def _storable(value: Any) -> Any:
    """Text SQLite can store: a lone surrogate (only in forged input) becomes U+FFFD."""
    if isinstance(value, str) and not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return value.encode("utf-8", "replace").decode("utf-8")
    return value


def _transaction_effect(
    conn: sqlite3.Connection, event: NewEvent, event_id: int, now: str
) -> str | None:
    """A verified TRANSACTION's effect on its deposit: the one place a callback changes one.

    Everything used here is signed (docs/paymob.md §8.1): ``success``, ``pending``, the kind of
    child (from ``has_parent_transaction``, ``is_capture``, ``is_voided``: receiver._child),
    ``amount_cents``, ``currency`` and ``order.id``; and only when the signed amount and
    currency fit the deposit. A mismatch leaves the deposit as it was and says so in the
    event's ``problem`` (``events show``) and in the effect (``listen``'s line).
    """
    row = conn.execute(
        "SELECT id, amount_cents, currency, refunded_cents FROM deposits"
        " WHERE id = (SELECT max(id) FROM deposits WHERE order_id = ?)",
        (event.order_id,),
    ).fetchone()
    if row is None:
        return None
    deposit_id, expected, currency, refunded = row
    child, amount = event.child, event.amount_cents
    if child == "reversed":
        return None  # a payment already voided or refunded: nothing to mark paid
    mismatch = None
    if event.currency != currency:
        mismatch = f"signed currency {event.currency!r}, deposit {deposit_id} is in {currency}"
    elif amount is None:
        mismatch = "no signed amount"
    elif child is None and amount != expected:
        mismatch = f"signed {format_amount(amount, currency)}, deposit {deposit_id} is {format_amount(expected, currency)}"
    elif child in ("void", "capture") and amount > expected:
        mismatch = f"{child} of {format_amount(amount, currency)} exceeds deposit {deposit_id}'s {format_amount(expected, currency)}"
    elif child == "refund" and event.success and amount > expected - refunded:
        mismatch = (
            f"refund of {format_amount(amount, currency)} exceeds what deposit {deposit_id} has left"
            f" ({format_amount(expected - refunded, currency)})"
        )
    if mismatch is not None:
        problem = f"amount mismatch: {mismatch}; deposit unchanged"
        conn.execute(
            "UPDATE events SET problem = CASE WHEN problem IS NULL THEN ? ELSE problem || '; ' || ? END"
            " WHERE id = ?",
            (problem, problem, event_id),
        )
        return f"amount mismatch (deposit {deposit_id} unchanged)"
    if not event.success or child == "capture":
        if child is not None:
            return None  # a failed refund/void/capture, or a capture: the deposit stays paid
        changed = conn.execute(
            "UPDATE deposits SET status = 'declined', transaction_id = ?, decline_reason = ?,"
            " updated_at = ? WHERE id = ? AND status = 'pending'",
            (event.transaction_id, pans.mask_text(event.message or "declined")[0], now, deposit_id),
        ).rowcount
        return "deposit declined" if changed else None
    if child == "refund":
        # Refunds add up over distinct signed child transaction ids (a redelivery with a new
        # signature, or a replay, of the same child is counted once).
        counted = conn.execute(
            "SELECT 1 FROM events WHERE transaction_id = ? AND kind = 'TRANSACTION'"
            " AND verdict = 'valid' AND id != ? LIMIT 1",
            (event.transaction_id, event_id),
        ).fetchone()
        if counted is not None:
            return None
        changed = conn.execute(
            "UPDATE deposits SET refunded_cents = refunded_cents + ?, status = CASE WHEN"
            " refunded_cents + ? >= amount_cents THEN 'refunded' ELSE status END, updated_at = ?"
            " WHERE id = ? AND status IN ('paid', 'refunded')",
            (amount, amount, now, deposit_id),
        ).rowcount
        return "deposit refund recorded" if changed else None
    if child == "void":
        changed = conn.execute(
            "UPDATE deposits SET status = 'voided', updated_at = ? WHERE id = ? AND status = 'paid'",
            (now, deposit_id),
        ).rowcount
        return "deposit voided" if changed else None
    changed = conn.execute(
        "UPDATE deposits SET status = 'paid', transaction_id = ?, paid_at = ?, decline_reason = NULL,"
        " updated_at = ? WHERE id = ? AND status IN ('pending', 'declined')",
        (event.transaction_id, now, now, deposit_id),
    ).rowcount
    return "deposit paid" if changed else None


# Insert a received request; a redelivery (same type, object id, HMAC) only bumps the first row's
# counter. RETURNING tells which happened: duplicates is 0 for a new row.
_UPSERT_EVENT = (
    "INSERT INTO events (received_at, method, path, query, headers, body, remote, kind, status, verdict,"
    " convention, hmac, object_id, transaction_id, order_id, merchant_order_id, success, pending,"
    " amount_cents, currency, problem, pan_masked, dedup_key, truncated)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (dedup_key) WHERE dedup_key IS NOT NULL"
    " DO UPDATE SET duplicates = duplicates + 1, last_seen_at = excluded.received_at"
    " RETURNING id, duplicates, pan_masked"
)


def _create_private(path: Path) -> None:
    """Create a missing database file 0600 before SQLite opens (and creates) it."""
    with contextlib.suppress(OSError):  # exists, or cannot: opening it reports the problem
        os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600))


def _tighten(path: Path) -> None:
    """Take group/other access away from our database and its -wal and -shm files (SQLite
    creates those with the database file's mode). Only called once the file is known to be a
    paymobctl store: somebody else's file is never touched."""
    for candidate in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        with contextlib.suppress(OSError):  # absent, or not ours to change: still usable
            if candidate.stat().st_mode & 0o077:
                candidate.chmod(0o600)


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


@dataclass(frozen=True)
class HmacCheck:
    id: int
    created_at: str
    kind: str
    valid: bool
    convention: str | None
    profile: str | None
    origin: str | None


class Store:
    """A thread-safe handle on the SQLite database at ``path``."""

    def __init__(self, path: Path, *, migrate: bool = True) -> None:
        self.path = path
        self._lock = threading.RLock()
        self._conn = self._connect()
        self._checkpointer: tuple[threading.Event, threading.Thread] | None = None
        self._deposit_cache: set[int] | None = None
        self._unlinked_cache: set[str] = set()
        self._deposit_cache_version: int | None = None
        if migrate:
            try:
                self.migrate()
            except BaseException:
                self._conn.close()
                raise

    # -- connection ---------------------------------------------------------------------------

    def _fail(self, exc: Exception, action: str) -> StoreError:
        text = str(exc)
        if isinstance(exc, sqlite3.DatabaseError) and (
            "not a database" in text or "malformed" in text or "corrupt" in text
        ):
            return StoreError(
                f"{self.path}: the database is corrupt or not a paymobctl database ({text})",
                hint="move the file aside (it is left untouched) or use another file",
            )
        if "readonly" in text or "unable to open" in text or isinstance(exc, PermissionError):
            return StoreError(
                f"{self.path}: cannot {action} the database ({text})",
                hint="check the file's and directory's permissions, or use another file",
            )
        if "locked" in text:
            return StoreError(
                f"{self.path}: the database stayed locked for {BUSY_TIMEOUT_MS // 1000} s",
                hint="another process holds a long write; try again",
            )
        return StoreError(f"{self.path}: database error while trying to {action} ({text})")

    def _connect(self) -> sqlite3.Connection:
        try:
            # The store holds callbacks (customers' names, emails, masked cards): a directory
            # paymobctl creates is 0700, the file 0600; SQLite gives its -wal and -shm files
            # the database file's mode. An existing directory is the user's: left as it is.
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise StoreError(
                f"{self.path}: cannot create the database directory ({exc.strerror})",
                hint="pass another --db PATH or set PAYMOBCTL_DB",
            ) from None
        private = str(self.path) != ":memory:"
        if private:
            _create_private(self.path)
        conn: sqlite3.Connection | None = None
        try:
            conn = sqlite3.connect(
                self.path,
                timeout=BUSY_TIMEOUT_MS / 1000,
                isolation_level=None,  # autocommit; explicit BEGIN where atomicity matters
                check_same_thread=False,
            )
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            # Before changing anything: even switching the journal mode rewrites the header of
            # a database that is not ours.
            refusal = self._refusal(
                int(conn.execute("PRAGMA user_version").fetchone()[0]),
                [
                    str(row[0])
                    for row in conn.execute(
                        "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
                    )
                ],
            )
            if refusal is not None:
                conn.close()
                raise refusal
            if private:
                _tighten(self.path)
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode != "wal" and str(self.path) != ":memory:":
                conn.execute("PRAGMA journal_mode = DELETE")
            # NORMAL in WAL mode: a committed transaction survives a process crash (SIGKILL);
            # only an OS crash can lose the last transactions.
            conn.execute("PRAGMA synchronous = NORMAL")
            # A burst grows the WAL; once checkpointed and reset, give the space back.
            conn.execute(f"PRAGMA journal_size_limit = {WAL_SIZE_LIMIT}")
            conn.execute("PRAGMA foreign_keys = ON")
        except (sqlite3.Error, OSError) as exc:
            if conn is not None:  # Python 3.13 warns (ResourceWarning) about a leaked one
                conn.close()
            raise self._fail(exc, "open") from None
        return conn

    def checkpoint_in_background(self, interval: float = 2.0) -> None:
        """Move WAL checkpoints off the write path (for ``listen``).

        By default SQLite checkpoints inside whichever commit crosses 1000 WAL pages, so one
        request in a few hundred waits milliseconds for it. Here the writing connection never
        checkpoints; a thread with its own connection does (PASSIVE, never blocking writers),
        and sqlite releases the GIL while it copies pages.
        """
        if self._checkpointer is not None:
            return
        with self._lock:
            self._conn.execute("PRAGMA wal_autocheckpoint = 0")
        stop = threading.Event()

        def run() -> None:
            if sys.platform.startswith("linux"):
                # Maintenance yields to answering callbacks (a Linux thread is schedulable on
                # its own; elsewhere the id would not name this thread).
                with contextlib.suppress(OSError, AttributeError):
                    os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), CHECKPOINT_NICE)
            conn = sqlite3.connect(
                self.path, timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False
            )
            try:
                while not stop.wait(interval):
                    with contextlib.suppress(sqlite3.Error):
                        conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            finally:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                conn.close()

        thread = threading.Thread(target=run, name="paymobctl-checkpoint", daemon=True)
        thread.start()
        self._checkpointer = (stop, thread)

    def close(self) -> None:
        if self._checkpointer is not None:
            stop, thread = self._checkpointer
            stop.set()
            thread.join(timeout=5)
            self._checkpointer = None
        with self._lock, contextlib.suppress(sqlite3.Error):
            self._conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise self._fail(exc, "write to") from None
            try:
                yield self._conn
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    self._conn.execute("ROLLBACK")
                raise
            try:
                self._conn.execute("COMMIT")
            except sqlite3.Error as exc:
                raise self._fail(exc, "write to") from None

    def _write(self, sql: str, params: Sequence[Any] = ()) -> int:
        with self._lock:
            try:
                cursor = self._conn.execute(sql, params)
            except sqlite3.Error as exc:
                raise self._fail(exc, "write to") from None
            return int(cursor.lastrowid or 0)

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            try:
                return self._conn.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise self._fail(exc, "read") from None

    # -- schema -------------------------------------------------------------------------------

    @property
    def version(self) -> int:
        return int(self._query("PRAGMA user_version")[0][0])

    def migrate(self, target: int | None = None) -> None:
        """Apply the missing migrations, each atomically (a foreign or newer database was
        already refused when the connection opened)."""
        target = len(MIGRATIONS) if target is None else target
        for version in range(self.version, target):
            try:
                with self._transaction() as conn:
                    for statement in MIGRATIONS[version]:
                        conn.execute(statement)
                    conn.execute(f"PRAGMA user_version = {version + 1}")
            except sqlite3.Error as exc:
                raise self._fail(exc, "upgrade") from None

    def _refusal(self, version: int, tables: list[str]) -> StoreError | None:
        """Why this database is not one paymobctl may use, if it is not."""
        if version > len(MIGRATIONS):
            return StoreError(
                f"{self.path}: the database has schema version {version}, newer than this "
                f"paymobctl understands ({len(MIGRATIONS)})",
                hint="upgrade paymobctl, or pass another --db PATH",
            )
        foreign = [t for t in tables if not t.startswith("sqlite_")]
        if version == 0 and foreign:
            return StoreError(
                f"{self.path}: not a paymobctl database (it already has tables: "
                f"{', '.join(foreign[:5])})",
                hint="paymobctl leaves it untouched; pass another --db PATH",
            )
        return None

    def _newest(self, select: str, filters: Mapping[str, Any], limit: int) -> list[sqlite3.Row]:
        """The newest ``limit`` rows of ``select`` (a literal query) matching every filter given
        a value; each filter's key is a literal ``column = ?`` clause."""
        given = {clause: value for clause, value in filters.items() if value}
        where = " WHERE " + " AND ".join(given) if given else ""
        return self._query(select + where + " ORDER BY id DESC LIMIT ?", [*given.values(), limit])

    def tables(self) -> list[str]:
        rows = self._query("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        return [str(row[0]) for row in rows]

    # -- hmac checks --------------------------------------------------------------------------

    def record_hmac_check(
        self,
        *,
        kind: str,
        valid: bool,
        convention: str | None,
        profile: str | None,
        origin: str | None,
    ) -> int:
        return self._write(
            "INSERT INTO hmac_checks (created_at, kind, valid, convention, profile, origin)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (utc_now(), kind, int(valid), convention, profile, _masked(origin)[0]),
        )

    # -- deliveries (simulate, replay) ----------------------------------------------------------

    def record_delivery(
        self,
        *,
        origin: str,
        kind: str,
        method: str,
        url: str,
        request_headers: Sequence[tuple[str, str]],
        request_body: bytes | None,
        signature: str,
        outcome: str | None = None,
        source: str | None = None,
        transaction_id: int | None = None,
        order_id: int | None = None,
        merchant_order_id: str | None = None,
        payload: Any = None,
        status: int | None = None,
        latency_ms: float | None = None,
        response_headers: Sequence[tuple[str, str]] = (),
        response_excerpt: str | None = None,
        error: str | None = None,
    ) -> int:
        """Store one delivery. Full card numbers in the body or payload are masked first."""
        body, body_count = pans.mask_body(request_body) if request_body is not None else (None, 0)
        masked_value, payload_count = pans.mask_value(payload)
        payload_text = dumps(masked_value) if payload is not None else None
        url_text, url_count = pans.mask_text(mask_url_credentials(url))  # user:****@
        headers, header_count = pans.mask_pairs(list(request_headers))
        answer_headers, answer_count = pans.mask_pairs(list(response_headers))
        response_excerpt, excerpt_hit = _masked(response_excerpt)
        error, error_hit = _masked(error)
        merchant_order_id, merchant_hit = _masked(merchant_order_id)
        masked = (
            body_count + payload_count + url_count + header_count + answer_count > 0
            or excerpt_hit
            or error_hit
            or merchant_hit
        )
        return self._write(
            "INSERT INTO deliveries (created_at, origin, kind, outcome, source, method, url,"
            " request_headers, request_body, signature, transaction_id, order_id, merchant_order_id,"
            " payload, status, latency_ms, response_headers, response_excerpt, error, pan_masked)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                utc_now(),
                origin,
                kind,
                outcome,
                source,
                method,
                url_text,
                dumps(headers),
                body,
                signature,
                None if pans.is_pan_number(transaction_id) else transaction_id,
                None if pans.is_pan_number(order_id) else order_id,
                merchant_order_id,
                payload_text,
                status,
                latency_ms,
                dumps(answer_headers),
                response_excerpt,
                error,
                int(masked),
            ),
        )

    def deliveries(self, *, limit: int = 50, kind: str | None = None) -> list[Delivery]:
        rows = self._newest("SELECT * FROM deliveries", {"kind = ?": kind}, limit)
        return [_delivery(row) for row in rows]

    def delivery(self, delivery_id: int) -> Delivery | None:
        rows = self._query("SELECT * FROM deliveries WHERE id = ?", (delivery_id,))
        return _delivery(rows[0]) if rows else None

    def latest_transaction_payload(self, order_id: int) -> dict[str, Any] | None:
        """The obj of the last TRANSACTION simulated for ``order_id`` (to match a TOKEN to it)."""
        rows = self._query(
            "SELECT payload FROM deliveries WHERE order_id = ? AND kind IN ('TRANSACTION', 'RESPONSE')"
            " AND payload IS NOT NULL ORDER BY id DESC LIMIT 1",
            (order_id,),
        )
        if not rows:
            return None
        value = json.loads(rows[0]["payload"])
        return value if isinstance(value, dict) else None

    def is_simulated_token(self, token: str) -> bool:
        """Whether ``simulate token`` made this card token up. Deliveries are stored with card
        numbers masked, so a token is compared in that same masked form."""
        masked, _ = pans.mask_text(token)
        return masked in self.simulated_tokens()

    def simulated_tokens(self) -> set[str]:
        """Card tokens ``simulate token`` made up (sent or printed; as stored, card numbers
        masked): no server can charge them."""
        rows = self._query(
            "SELECT payload FROM deliveries WHERE kind = 'TOKEN' AND origin IN ('simulate', 'print')"
            " AND payload IS NOT NULL"
        )
        found = set()
        for row in rows:
            try:
                payload = json.loads(row["payload"])
            except ValueError:
                continue
            if isinstance(payload, dict) and isinstance(payload.get("token"), str):
                found.add(payload["token"])
        return found

    def latest_webhook_transaction(
        self, *, order_id: int | None = None, merchant_order_id: str | None = None
    ) -> dict[str, Any] | None:
        """The ``obj`` of the newest verified TRANSACTION callback ``listen`` stored for an order
        (by id or merchant order id): what `status` shows when the server has no inquiry."""
        if order_id is None and not merchant_order_id:
            return None
        rows = self._query(
            "SELECT body FROM events WHERE kind = 'TRANSACTION' AND verdict = 'valid' AND"
            " (order_id = ? OR (? IS NULL AND merchant_order_id = ?)) ORDER BY id DESC LIMIT 1",
            (order_id, order_id, merchant_order_id),
        )
        if not rows:
            return None
        try:
            body = json.loads(rows[0]["body"])
        except ValueError:
            return None
        obj = body.get("obj") if isinstance(body, dict) else None
        return obj if isinstance(obj, dict) else None

    # -- sandbox state (paymobctl sandbox --state PATH) -----------------------------------------

    def save_sandbox_object(self, kind: str, key: str, value: Any, *, mask: bool = True) -> None:
        """Upsert one sandbox object; card numbers are masked unless ``mask`` is False (for
        records that hold nothing a request wrote)."""
        body = dumps(pans.mask_value(value)[0] if mask else value)
        self._write(
            "INSERT INTO sandbox_objects (kind, key, body, updated_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (kind, key) DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at",
            (kind, key, body, utc_now()),
        )

    def delete_sandbox_objects(self, kind: str, keys: Sequence[str]) -> None:
        with self._transaction() as conn:
            conn.executemany(
                "DELETE FROM sandbox_objects WHERE kind = ? AND key = ?", [(kind, k) for k in keys]
            )

    def load_sandbox_objects(self) -> dict[str, list[dict[str, Any]]]:
        loaded: dict[str, list[dict[str, Any]]] = {}
        for row in self._query("SELECT kind, body FROM sandbox_objects ORDER BY rowid"):
            loaded.setdefault(row["kind"], []).append(json.loads(row["body"]))
        return loaded

    # -- events (listen) -------------------------------------------------------------------------

    def record_event(self, event: NewEvent) -> StoredEvent:
        """Store one received request (and its effects) before it is answered."""
        return self.record_events([event])[0]

    def record_events(self, events: Sequence[NewEvent]) -> list[StoredEvent]:
        """Store received requests and apply their effects in one transaction (a group commit).

        A redelivery (same type, object id and HMAC) is stored once: the first row counts it.
        Full card numbers are masked before anything is written. One commit for a few
        concurrent callbacks costs less than one each (scripts/bench_listen.py).
        """
        now = utc_now()
        rows = [self._event_params(event, now) for event in events]
        affecting = any(self._may_affect(event) for event in events)
        deposits = self._link_intention_deposits(events) if affecting else set()
        needs_effects = [
            self._may_affect(event) and (event.kind == "TOKEN" or event.order_id in deposits)
            for event in events
        ]
        results: list[StoredEvent] = []
        if len(events) == 1 and not needs_effects[0]:  # one statement is its own transaction
            with self._lock:
                try:
                    row = self._conn.execute(_UPSERT_EVENT, rows[0][0]).fetchone()
                except sqlite3.Error as exc:
                    raise self._fail(exc, "write to") from None
            return [StoredEvent(row[0], row[1] > 0, row[1], bool(row[2]), None)]
        with self._transaction() as conn:
            for event, (params, masked), effects in zip(events, rows, needs_effects, strict=True):
                row = conn.execute(_UPSERT_EVENT, params).fetchone()
                duplicate = row[1] > 0
                effect = (
                    self._apply_effects(conn, event, row[0], now)
                    if effects and not duplicate
                    else None
                )
                results.append(
                    StoredEvent(row[0], duplicate, row[1], bool(row[2]) or masked, effect)
                )
        return results

    @staticmethod
    def _may_affect(event: NewEvent) -> bool:
        if event.verdict != "valid":
            return False
        if event.kind == "TOKEN":
            return event.token is not None
        return event.kind == "TRANSACTION" and event.order_id is not None and not event.pending

    @staticmethod
    def _event_params(event: NewEvent, now: str) -> tuple[tuple[Any, ...], bool]:
        path, merchant_order_id, object_id, problem = (
            event.path,
            event.merchant_order_id,
            event.object_id,
            event.problem,
        )
        transaction_id, order_id = event.transaction_id, event.order_id
        hmac, currency = event.hmac, event.currency
        digest = hmac is None or pans.is_digest(hmac)  # a real HMAC: never masked, skip it
        texts = (
            path,
            merchant_order_id or "",
            object_id or "",
            problem or "",
            "" if digest else hmac or "",
            currency or "",
        )
        if not (
            pans.might_hold_card_data(event.body, event.query, event.headers, texts)
            or pans.is_pan_number(order_id)
            or pans.is_pan_number(transaction_id)
        ):
            # The common case, decided by one scan of the whole request: nothing to mask.
            body, query, headers_list, masked = event.body, event.query, event.headers, False
        else:
            body, body_count = pans.mask_body(event.body)
            query, query_count = pans.mask_query(event.query)
            headers_list, header_count = pans.mask_pairs(event.headers)
            path, hit1 = pans.mask_text(path)
            merchant_order_id, hit2 = _masked(merchant_order_id)
            object_id, hit3 = _masked(object_id)
            problem, hit4 = _masked(problem)
            hmac, hit5 = _masked(hmac)
            currency, hit6 = _masked(currency)
            hit7 = pans.is_pan_number(order_id) or pans.is_pan_number(transaction_id)
            order_id = None if pans.is_pan_number(order_id) else order_id
            transaction_id = None if pans.is_pan_number(transaction_id) else transaction_id
            masked_other = bool(hit1) or hit2 or hit3 or hit4 or hit5 or hit6 or hit7
            masked = body_count + query_count + header_count > 0 or masked_other
        headers = dumps(headers_list)
        dedup = (
            # Only a verified request can be a redelivery; a tampered one is kept on its own.
            # The signature, not the fields' split, identifies a callback: the same signed string
            # with digits moved between adjacent ids (id|integration_id) is still a redelivery.
            f"{event.kind}:{event.hmac[:32]}"
            if event.hmac and object_id and event.verdict == "valid"
            else None
        )
        params = (
            now,
            event.method,
            path,
            query or "",
            headers,
            body or b"",
            event.remote,
            event.kind,
            event.status,
            event.verdict,
            event.convention,
            hmac,
            object_id,
            transaction_id,
            order_id,
            merchant_order_id,
            None if event.success is None else int(event.success),
            None if event.pending is None else int(event.pending),
            event.amount_cents,
            currency,
            problem,
            int(masked),
            dedup,
            int(event.truncated),
        )
        # Text SQLite can store: only forged input holds a lone surrogate (rare: one check
        # over the row's text first).
        if not "".join([v for v in params if type(v) is str]).isascii():
            params = tuple(_storable(value) for value in params)
        return params, masked

    def _deposit_orders(self) -> set[int]:
        """Order ids that have a deposit, from a cache reloaded whenever another connection
        committed (``PRAGMA data_version`` changed): one pragma per batch of callbacks on the
        hot path of ``listen`` instead of a query per callback. Deposits are created before
        their checkout URL exists, so no callback can arrive before its deposit."""
        version = self._query("PRAGMA data_version")[0][0]
        if version != self._deposit_cache_version or self._deposit_cache is None:
            rows = self._query("SELECT order_id, merchant_order_id FROM deposits")
            self._deposit_cache = {row[0] for row in rows if row[0] is not None}
            self._unlinked_cache = {row[1] for row in rows if row[0] is None and row[1]}
            self._deposit_cache_version = version
        return self._deposit_cache

    def _link_intention_deposits(self, events: Sequence[NewEvent]) -> set[int]:
        """Give an intention deposit recorded without its order id (the server's answer lacked
        ``intention_order_id``) the order of the first verified payment callback that carries
        its reference. ``merchant_order_id`` (the intention's ``special_reference``) is not
        signed, so the signed ``amount_cents`` and ``currency`` must match the deposit too.
        Returns the order ids that have a deposit (:meth:`_deposit_orders`), linked ones included."""
        known = self._deposit_orders()
        candidates = [
            event
            for event in events
            if self._may_affect(event)
            and event.kind == "TRANSACTION"
            and not event.child
            and event.order_id not in known
            and event.merchant_order_id in self._unlinked_cache
        ]
        if not candidates:
            return known
        with self._transaction() as conn:
            for event in candidates:
                conn.execute(
                    "UPDATE deposits SET order_id = ?, updated_at = ? WHERE id = (SELECT max(id)"
                    " FROM deposits WHERE order_id IS NULL AND merchant_order_id = ?"
                    " AND amount_cents = ? AND currency = ?)",
                    (event.order_id, utc_now(), event.merchant_order_id, event.amount_cents,
                     event.currency),
                )  # fmt: skip
        self._deposit_cache = None
        return self._deposit_orders()

    def set_checkout_url(self, deposit_id: int, url: str) -> Deposit:
        """The checkout URL of a deposit recorded as soon as its order existed."""
        self._write(
            "UPDATE deposits SET checkout_url = ?, updated_at = ? WHERE id = ?",
            (url, utc_now(), deposit_id),
        )
        deposit = self.deposit(deposit_id)
        assert deposit is not None
        return deposit

    def link_deposit_order(self, deposit_id: int, order_id: int) -> Deposit:
        """Record the order id learnt for a deposit created without one (inquiry, webhook)."""
        self._deposit_cache = None
        self._write(
            "UPDATE deposits SET order_id = ?, updated_at = ? WHERE id = ? AND order_id IS NULL",
            (order_id, utc_now(), deposit_id),
        )
        deposit = self.deposit(deposit_id)
        assert deposit is not None
        return deposit

    @staticmethod
    def _apply_effects(
        conn: sqlite3.Connection, event: NewEvent, event_id: int, now: str
    ) -> str | None:
        """What the guide's backend does with a verified callback, mirrored in the store."""
        if event.kind == "TOKEN" and event.token:
            token = event.token
            if not isinstance(token.get("token"), str) or not token["token"]:
                return "TOKEN callback without a card token: nothing saved"
            masked_pan, _ = pans.mask_text(_storable_text(token.get("masked_pan")) or "")
            inserted = conn.execute(
                "INSERT INTO payment_methods (created_at, token, masked_pan, card_subtype, email, order_id,"
                " paymob_id, event_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (token) DO NOTHING",
                (
                    now,
                    _storable(str(token.get("token"))),
                    masked_pan,
                    _storable_text(token.get("card_subtype")),
                    _storable_text(token.get("email")),
                    event.order_id,
                    token.get("id") if isinstance(token.get("id"), int) else None,
                    event_id,
                ),
            ).rowcount
            return f"card saved ({token.get('card_subtype')} {masked_pan})" if inserted else None
        if event.kind != "TRANSACTION" or event.order_id is None or event.pending:
            return None
        return _transaction_effect(conn, event, event_id, now)

    def events(
        self,
        *,
        kind: str | None = None,
        invalid: bool = False,
        since: str | None = None,
        limit: int | None = 50,
        ascending: bool = False,
        after_id: int | None = None,
    ) -> list[Event]:
        sql = "SELECT * FROM events WHERE 1 = 1"
        params: list[Any] = []
        if after_id is not None:
            sql += " AND id > ?"
            params.append(after_id)
        if kind:
            sql += " AND kind = ?"
            params.append(kind)
        if invalid:
            sql += " AND verdict != 'valid'"
        if since:
            sql += " AND received_at >= ?"
            params.append(since)
        sql += f" ORDER BY id {'ASC' if ascending else 'DESC'}"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        return [_event(row) for row in self._query(sql, params)]

    def event(self, event_id: int) -> Event | None:
        rows = self._query("SELECT * FROM events WHERE id = ?", (event_id,))
        return _event(rows[0]) if rows else None

    def amount_mismatch(self, order_id: int) -> str | None:
        """The newest "amount mismatch" a verified callback for ``order_id`` was refused with."""
        rows = self._query(
            "SELECT problem FROM events WHERE order_id = ? AND verdict = 'valid'"
            " AND problem LIKE '%amount mismatch%' ORDER BY id DESC LIMIT 1",
            (order_id,),
        )
        if not rows:
            return None
        text = str(rows[0][0])
        return text[text.index("amount mismatch") :]

    def count_events(self) -> int:
        return int(self._query("SELECT count(*) FROM events")[0][0])

    def record_forward_attempt(
        self,
        *,
        event_id: int,
        target: str,
        attempt: int,
        status: int | None,
        latency_ms: float | None,
        error: str | None,
        excerpt: str | None,
    ) -> int:
        return self._write(
            "INSERT INTO forward_attempts (event_id, target, attempt, at, status, latency_ms, error, excerpt)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                event_id,
                pans.mask_text(target)[0],
                attempt,
                utc_now(),
                status,
                latency_ms,
                _masked(error)[0],
                _masked(excerpt)[0],
            ),
        )

    def forward_attempts(self, event_id: int) -> list[ForwardAttempt]:
        rows = self._query(
            "SELECT * FROM forward_attempts WHERE event_id = ? ORDER BY id", (event_id,)
        )
        return [ForwardAttempt(**_row_dict(row)) for row in rows]

    # -- deposits and saved cards -------------------------------------------------------------

    def create_deposit(
        self,
        *,
        profile: str,
        mode: str,
        flow: str,
        base_url: str,
        order_id: int | None,
        merchant_order_id: str | None,
        intention_id: str | None,
        amount_cents: int,
        currency: str,
        checkout_url: str,
        expires_at: str | None,
        save_card: bool,
    ) -> Deposit:
        now = utc_now()
        self._deposit_cache = None
        deposit_id = self._write(
            "INSERT INTO deposits (created_at, profile, mode, flow, base_url, order_id, merchant_order_id,"
            " intention_id, amount_cents, currency, checkout_url, expires_at, save_card, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                now,
                profile,
                mode,
                flow,
                base_url,
                order_id,
                merchant_order_id,
                intention_id,
                amount_cents,
                currency,
                checkout_url,
                expires_at,
                int(save_card),
                now,
            ),
        )
        deposit = self.deposit(deposit_id)
        assert deposit is not None
        return deposit

    def deposit(self, deposit_id: int) -> Deposit | None:
        rows = self._query("SELECT * FROM deposits WHERE id = ?", (deposit_id,))
        return _deposit(rows[0]) if rows else None

    def deposit_by_order(self, order_id: int) -> Deposit | None:
        rows = self._query(
            "SELECT * FROM deposits WHERE order_id = ? ORDER BY id DESC LIMIT 1", (order_id,)
        )
        return _deposit(rows[0]) if rows else None

    def deposits(
        self, *, profile: str | None = None, status: str | None = None, limit: int = 50
    ) -> list[Deposit]:
        rows = self._newest(
            "SELECT * FROM deposits", {"profile = ?": profile, "status = ?": status}, limit
        )
        return [_deposit(row) for row in rows]

    def update_deposit(
        self,
        deposit_id: int,
        *,
        status: str,
        transaction_id: int | None = None,
        reason: str | None = None,
    ) -> Deposit:
        """Record what an inquiry found (listen records callbacks itself, atomically)."""
        now = utc_now()
        self._write(
            "UPDATE deposits SET status = ?, transaction_id = COALESCE(?, transaction_id),"
            " paid_at = CASE WHEN ? = 'paid' AND paid_at IS NULL THEN ? ELSE paid_at END,"
            " decline_reason = ?, updated_at = ? WHERE id = ?",
            (status, transaction_id, status, now, reason, now, deposit_id),
        )
        deposit = self.deposit(deposit_id)
        assert deposit is not None
        return deposit

    def paid_total(self, profile: str, currency: str) -> tuple[int, int]:
        """(count, sum of amount_cents) of the profile's paid deposits in ``currency``."""
        row = self._query(
            "SELECT count(*), coalesce(sum(amount_cents - refunded_cents), 0) FROM deposits"
            " WHERE profile = ? AND currency = ? AND status IN ('paid', 'refunded')",
            (profile, currency),
        )[0]
        return int(row[0]), int(row[1])

    def payment_methods(self, *, include_removed: bool = False) -> list[PaymentMethod]:
        sql = "SELECT * FROM payment_methods"
        if not include_removed:
            sql += " WHERE removed = 0"
        sql += " ORDER BY id DESC"
        return [_payment_method(row) for row in self._query(sql)]

    def payment_method(self, method_id: int) -> PaymentMethod | None:
        rows = self._query("SELECT * FROM payment_methods WHERE id = ?", (method_id,))
        return _payment_method(rows[0]) if rows else None

    def save_payment_method(
        self,
        *,
        token: str,
        masked_pan: str,
        card_subtype: str | None,
        email: str | None,
        order_id: int | None,
        paymob_id: int | None = None,
    ) -> PaymentMethod:
        masked, _ = pans.mask_text(masked_pan)
        self._write(
            "INSERT INTO payment_methods (created_at, token, masked_pan, card_subtype, email, order_id, paymob_id)"
            " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (token) DO UPDATE SET removed = 0",
            (utc_now(), token, masked, card_subtype, email, order_id, paymob_id),
        )
        row = self._query("SELECT * FROM payment_methods WHERE token = ?", (token,))[0]
        return _payment_method(row)

    def remove_payment_method(self, method_id: int) -> bool:
        with self._lock:
            try:
                return (
                    self._conn.execute(
                        "UPDATE payment_methods SET removed = 1 WHERE id = ? AND removed = 0",
                        (method_id,),
                    ).rowcount
                    > 0
                )
            except sqlite3.Error as exc:
                raise self._fail(exc, "write to") from None

    # -- checklist runs ------------------------------------------------------------------------

    def record_checklist_run(
        self,
        *,
        url: str,
        profile: str,
        mode: str,
        started_at: str,
        duration_ms: float,
        fail_level: str,
        exit_code: int,
        probe_order_id: int | None,
        results: Sequence[Mapping[str, Any]],
        suite: str = "checklist",
    ) -> int:
        """Store a graded run: the go-live checklist, or (``suite="webhook"``) ``webhook test``."""
        with self._transaction() as conn:
            cursor = conn.execute(
                "INSERT INTO checklist_runs (started_at, url, profile, mode, duration_ms, fail_level, exit_code,"
                " probe_order_id, suite) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    started_at,
                    pans.mask_text(mask_url_credentials(url))[0],
                    profile,
                    mode,
                    duration_ms,
                    fail_level,
                    exit_code,
                    probe_order_id,
                    suite,
                ),
            )
            run_id = int(cursor.lastrowid or 0)
            conn.executemany(
                "INSERT INTO checklist_results (run_id, check_id, area, severity, status, detail, hint)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        run_id,
                        r["id"],
                        r["area"],
                        r["severity"],
                        r["status"],
                        pans.mask_text(str(r["detail"]))[0],
                        _masked(r.get("hint"))[0],
                    )
                    for r in results
                ],
            )
        return run_id

    def checklist_runs(
        self, *, url: str | None = None, limit: int = 20, suite: str = "checklist"
    ) -> list[dict[str, Any]]:
        rows = self._newest(
            "SELECT * FROM checklist_runs",
            {"suite = ?": suite, "url = ?": mask_url_credentials(url) if url else url},
            limit,
        )
        return [_row_dict(row) for row in rows]

    def checklist_results(self, run_id: int) -> list[dict[str, Any]]:
        rows = self._query(
            "SELECT * FROM checklist_results WHERE run_id = ? ORDER BY rowid", (run_id,)
        )
        return [_row_dict(row) for row in rows]

    # -- load runs ------------------------------------------------------------------------------

    def record_load_run(
        self, *, url: str, profile: str, mode: str, started_at: str, summary: Mapping[str, Any]
    ) -> int:
        """Store one load run (``simulate … --count``): its summary as JSON."""
        return self._write(
            "INSERT INTO load_runs (started_at, url, profile, mode, summary) VALUES (?, ?, ?, ?, ?)",
            (
                started_at,
                mask_url_credentials(url),
                profile,
                mode,
                mask_url_credentials(json.dumps(summary, separators=(",", ":"))),
            ),
        )

    def load_runs(self, *, url: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
        wanted = mask_url_credentials(url) if url else url
        rows = self._newest("SELECT * FROM load_runs", {"url = ?": wanted}, limit)
        return [{**_row_dict(row), "summary": json.loads(row["summary"])} for row in rows]

    def hmac_checks(self, limit: int = 50) -> list[HmacCheck]:
        rows = self._query("SELECT * FROM hmac_checks ORDER BY id DESC LIMIT ?", (limit,))
        return [_hmac_check(row) for row in rows]


@dataclass(frozen=True)
class Delivery:
    id: int
    created_at: str
    origin: str  # simulate | print | replay
    kind: str
    outcome: str | None
    source: str | None
    method: str
    url: str
    request_headers: list[tuple[str, str]]
    request_body: bytes | None
    signature: str  # signed | unsigned | bad-hmac
    transaction_id: int | None
    order_id: int | None
    merchant_order_id: str | None
    payload: dict[str, Any] | None
    status: int | None
    latency_ms: float | None
    response_headers: list[tuple[str, str]]
    response_excerpt: str | None
    error: str | None
    pan_masked: bool


def _delivery(row: sqlite3.Row) -> Delivery:
    values = _row_dict(row)
    values["request_headers"] = _pairs(values["request_headers"])
    values["payload"] = json.loads(values["payload"]) if values["payload"] else None
    values["response_headers"] = _pairs(values["response_headers"] or "[]")
    values["pan_masked"] = bool(values["pan_masked"])
    return Delivery(**values)


@dataclass(slots=True)  # not frozen: built on the receiver's hot path, frozen init costs ~5 µs
class NewEvent:
    """What the receiver learnt from one request, to be stored before it answers."""

    method: str
    path: str
    query: str
    headers: list[tuple[str, str]]
    body: bytes
    remote: str | None
    kind: str  # TRANSACTION | TOKEN | DELIVERY_STATUS | RESPONSE | UNKNOWN
    status: int
    verdict: str  # valid | invalid | missing | n/a
    convention: str | None = None
    hmac: str | None = None
    object_id: str | None = None
    transaction_id: int | None = None
    order_id: int | None = None
    merchant_order_id: str | None = None
    success: bool | None = None
    pending: bool | None = None
    amount_cents: int | None = None
    currency: str | None = None
    problem: str | None = None
    child: str | None = None  # refund | void | capture for child transactions
    message: str | None = None  # data.message, for a declined deposit's reason
    token: dict[str, Any] | None = None  # TOKEN: the card to save
    truncated: bool = False  # the body went over --max-body: ``body`` is its first 64 KiB


@dataclass(slots=True)
class StoredEvent:
    id: int
    duplicate: bool
    duplicates: int
    pan_masked: bool
    effect: str | None  # "deposit 3 paid", "card saved", ...


@dataclass(frozen=True)
class Event:
    id: int
    received_at: str
    method: str
    path: str
    query: str
    headers: list[tuple[str, str]]
    body: bytes
    remote: str | None
    kind: str
    status: int
    verdict: str
    convention: str | None
    hmac: str | None
    object_id: str | None
    transaction_id: int | None
    order_id: int | None
    merchant_order_id: str | None
    success: bool | None
    pending: bool | None
    amount_cents: int | None
    currency: str | None
    problem: str | None
    pan_masked: bool
    duplicates: int
    last_seen_at: str | None
    truncated: bool = False


def _opt_bool(value: Any) -> bool | None:
    return None if value is None else bool(value)


def _event(row: sqlite3.Row) -> Event:
    values = _row_dict(row)
    del values["dedup_key"]  # the receiver's duplicate index, not part of the record
    values["headers"] = _pairs(values["headers"])
    values["success"] = _opt_bool(values["success"])
    values["pending"] = _opt_bool(values["pending"])
    values["pan_masked"] = bool(values["pan_masked"])
    values["truncated"] = bool(values["truncated"])
    return Event(**values)


@dataclass(frozen=True)
class ForwardAttempt:
    id: int
    event_id: int
    target: str
    attempt: int
    at: str
    status: int | None
    latency_ms: float | None
    error: str | None
    excerpt: str | None


@dataclass(frozen=True)
class Deposit:
    id: int
    created_at: str
    profile: str
    mode: str
    flow: str
    base_url: str
    order_id: int | None  # None: an intention whose order id is not known yet
    merchant_order_id: str | None
    intention_id: str | None
    amount_cents: int
    currency: str
    checkout_url: str
    expires_at: str | None
    save_card: bool
    status: str
    transaction_id: int | None
    paid_at: str | None
    decline_reason: str | None
    refunded_cents: int
    updated_at: str


@dataclass(frozen=True)
class PaymentMethod:
    id: int
    created_at: str
    token: str
    masked_pan: str
    card_subtype: str | None
    email: str | None
    order_id: int | None
    paymob_id: int | None
    event_id: int | None
    removed: bool


def _row_dict(row: sqlite3.Row) -> dict[str, Any]:
    """A row as ``{column: value}``; the record dataclasses name their fields like the columns."""
    return dict(zip(row.keys(), tuple(row), strict=True))


def _pairs(text: str) -> list[tuple[str, str]]:
    """Header lists are stored as JSON arrays of ``[name, value]`` pairs."""
    return [tuple(pair) for pair in json.loads(text)]


def _hmac_check(row: sqlite3.Row) -> HmacCheck:
    values = _row_dict(row)
    values["valid"] = bool(values["valid"])
    return HmacCheck(**values)


def _deposit(row: sqlite3.Row) -> Deposit:
    values = _row_dict(row)
    values["save_card"] = bool(values["save_card"])
    return Deposit(**values)


def _payment_method(row: sqlite3.Row) -> PaymentMethod:
    values = _row_dict(row)
    values["removed"] = bool(values["removed"])
    return PaymentMethod(**values)


def dumps(value: Any) -> str:
    """Compact JSON for storage."""
    return _ENCODER.encode(value)


# One encoder for every row: json.dumps with options builds a new one per call (~3 µs a row).
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=str)
