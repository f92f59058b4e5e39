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
)

SCHEMA_VERSION = len(MIGRATIONS)


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


def dumps(value: Any) -> str:
    """Compact JSON for storage."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)
