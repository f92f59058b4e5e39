"""The local SQLite store: schema, migrations and every query (the only module importing sqlite3).

WAL mode and a busy timeout let ``paymobctl listen`` write while other commands read. The schema
is versioned with ``PRAGMA user_version``; each migration runs in its own transaction, so an
interrupted upgrade leaves the previous version intact.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from paymobctl.errors import StoreError
from paymobctl.models import mask_pans, mask_pans_in

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
)

SCHEMA_VERSION = len(MIGRATIONS)


def _mask_text(text: str | None) -> tuple[str | None, bool]:
    if text is None:
        return None, False
    masked, count = mask_pans(text)
    return masked, count > 0


def _mask_bytes(data: bytes | None) -> tuple[bytes | None, bool]:
    """Mask card numbers in bytes about to be stored.

    Text-level masking keeps every byte but the masked digits. When that would turn a JSON body
    into invalid JSON (a card number sent as a JSON number), the body is masked structurally
    and re-serialised instead: still JSON, no longer byte-identical (it is flagged either way).
    """
    if data is None:
        return None, False
    text = data.decode("utf-8", "surrogateescape")
    masked, count = mask_pans(text)
    if not count:
        return data, False
    try:
        parsed = json.loads(text)
    except ValueError:
        return masked.encode("utf-8", "surrogateescape"), True
    try:
        json.loads(masked)
    except ValueError:
        structural, _ = mask_pans_in(parsed)
        return dumps(structural).encode("utf-8"), True
    return masked.encode("utf-8", "surrogateescape"), True


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
        if migrate:
            self.migrate()

    # -- connection ---------------------------------------------------------------------------

    def _fail(self, exc: Exception, action: str) -> StoreError:
        text = str(exc)
        if isinstance(exc, sqlite3.DatabaseError) and (
            "not a database" in text or "malformed" in text or "corrupt" in text
        ):
            return StoreError(
                f"{self.path}: the database is corrupt or not a paymobctl database ({text})",
                hint="move the file aside (it is left untouched) or pass another --db PATH",
            )
        if "readonly" in text or "unable to open" in text or isinstance(exc, PermissionError):
            return StoreError(
                f"{self.path}: cannot {action} the database ({text})",
                hint="check the file's and directory's permissions, or pass another --db PATH",
            )
        if "locked" in text:
            return StoreError(
                f"{self.path}: the database stayed locked for {BUSY_TIMEOUT_MS // 1000} s",
                hint="another process holds a long write; try again",
            )
        return StoreError(f"{self.path}: database error while trying to {action} ({text})")

    def _connect(self) -> sqlite3.Connection:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"{self.path}: cannot create the database directory ({exc.strerror})",
                hint="pass another --db PATH or set PAYMOBCTL_DB",
            ) from None
        try:
            conn = sqlite3.connect(
                self.path,
                timeout=BUSY_TIMEOUT_MS / 1000,
                isolation_level=None,  # autocommit; explicit BEGIN where atomicity matters
                check_same_thread=False,
            )
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode != "wal" and str(self.path) != ":memory:":
                conn.execute("PRAGMA journal_mode = DELETE")
            # NORMAL in WAL mode: a committed transaction survives a process crash (SIGKILL);
            # only an OS crash can lose the last transactions.
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA foreign_keys = ON")
        except (sqlite3.Error, OSError) as exc:
            raise self._fail(exc, "open") from None
        return conn

    def close(self) -> None:
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
        latest = len(MIGRATIONS)
        target = latest if target is None else target
        current = self.version
        if current > latest:
            raise StoreError(
                f"{self.path}: the database has schema version {current}, newer than this "
                f"paymobctl understands ({latest})",
                hint="upgrade paymobctl, or pass another --db PATH",
            )
        for version in range(current, target):
            try:
                with self._transaction() as conn:
                    for statement in MIGRATIONS[version]:
                        conn.execute(statement)
                    conn.execute(f"PRAGMA user_version = {version + 1}")
            except sqlite3.Error as exc:
                raise self._fail(exc, "upgrade") from None

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
            (utc_now(), kind, int(valid), convention, profile, origin),
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
        body, masked_body = _mask_bytes(request_body)
        masked_value, payload_count = mask_pans_in(payload)
        payload_text = dumps(masked_value) if payload is not None else None
        masked_payload = payload_count > 0
        url_text, masked_url = _mask_text(url)
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
                dumps(list(request_headers)),
                body,
                signature,
                transaction_id,
                order_id,
                merchant_order_id,
                payload_text,
                status,
                latency_ms,
                dumps(list(response_headers)),
                response_excerpt,
                error,
                int(masked_body or masked_payload or masked_url),
            ),
        )

    def deliveries(self, *, limit: int = 50, kind: str | None = None) -> list[Delivery]:
        sql = "SELECT * FROM deliveries"
        params: list[Any] = []
        if kind:
            sql += " WHERE kind = ?"
            params.append(kind)
        sql += " ORDER BY id DESC LIMIT ?"
        params.append(limit)
        return [_delivery(row) for row in self._query(sql, params)]

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

    # -- sandbox state (paymobctl sandbox --state PATH) -----------------------------------------

    def save_sandbox_object(self, kind: str, key: str, value: Any) -> None:
        body, _ = _mask_text(dumps(value))
        self._write(
            "INSERT INTO sandbox_objects (kind, key, body, updated_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (kind, key) DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at",
            (kind, key, body, utc_now()),
        )

    def load_sandbox_objects(self) -> dict[str, list[dict[str, Any]]]:
        loaded: dict[str, list[dict[str, Any]]] = {}
        for row in self._query("SELECT kind, body FROM sandbox_objects ORDER BY rowid"):
            loaded.setdefault(row["kind"], []).append(json.loads(row["body"]))
        return loaded

    def hmac_checks(self, limit: int = 50) -> list[HmacCheck]:
        rows = self._query("SELECT * FROM hmac_checks ORDER BY id DESC LIMIT ?", (limit,))
        return [
            HmacCheck(
                row["id"],
                row["created_at"],
                row["kind"],
                bool(row["valid"]),
                row["convention"],
                row["profile"],
                row["origin"],
            )
            for row in rows
        ]


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
    return Delivery(
        id=row["id"],
        created_at=row["created_at"],
        origin=row["origin"],
        kind=row["kind"],
        outcome=row["outcome"],
        source=row["source"],
        method=row["method"],
        url=row["url"],
        request_headers=[tuple(h) for h in json.loads(row["request_headers"])],
        request_body=row["request_body"],
        signature=row["signature"],
        transaction_id=row["transaction_id"],
        order_id=row["order_id"],
        merchant_order_id=row["merchant_order_id"],
        payload=json.loads(row["payload"]) if row["payload"] else None,
        status=row["status"],
        latency_ms=row["latency_ms"],
        response_headers=[tuple(h) for h in json.loads(row["response_headers"] or "[]")],
        response_excerpt=row["response_excerpt"],
        error=row["error"],
        pan_masked=bool(row["pan_masked"]),
    )


def dumps(value: Any) -> str:
    """Compact JSON for storage."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)
