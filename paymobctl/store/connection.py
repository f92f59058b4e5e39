"""The store's connection: opening (refusing foreign or newer files), WAL, locking, migrating."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self

from paymobctl import pans
from paymobctl.errors import StoreError
from paymobctl.store import schema

BUSY_TIMEOUT_MS = 10_000
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


def _row_dict(row: sqlite3.Row) -> dict[str, Any]:
    """A row as ``{column: value}``; the record dataclasses name their fields like the columns."""
    return dict(zip(row.keys(), tuple(row), strict=True))


def dumps(value: Any) -> str:
    """Compact JSON for storage."""
    return _ENCODER.encode(value)


# One encoder for every row: json.dumps with options builds a new one per call (~3 µs a row).
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=str)


def utc_now() -> str:
    """The current UTC time as stored: ISO 8601 with microseconds."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


class StoreBase:
    """A thread-safe handle on the SQLite database at ``path``: connection, transactions, schema."""

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
            # One read snapshot for both: another process may be creating the schema right now.
            conn.execute("BEGIN")
            try:
                version = int(conn.execute("PRAGMA user_version").fetchone()[0])
                tables = [
                    str(row[0])
                    for row in conn.execute(
                        "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
                    )
                ]
            finally:
                conn.execute("COMMIT")
            refusal = self._refusal(version, tables)
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
        """Stop the background checkpointer (if any) and close the connection."""
        if self._checkpointer is not None:
            stop, thread = self._checkpointer
            stop.set()
            thread.join(timeout=5)
            self._checkpointer = None
        with self._lock, contextlib.suppress(sqlite3.Error):
            self._conn.close()

    def __enter__(self) -> Self:
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
        """The schema version of the open database (``PRAGMA user_version``)."""
        return int(self._query("PRAGMA user_version")[0][0])

    def migrate(self, target: int | None = None) -> None:
        """Create a new database from the baseline, then apply the missing migrations, each
        atomically (a foreign, outdated or newer database was already refused on opening)."""
        target = schema.latest_version() if target is None else target
        # Each step re-reads the version inside its write transaction: two processes opening a
        # new database at once (listen and a CLI command, say) must not both create the schema.
        if self.version >= target:
            return  # the common case: no write transaction at all
        try:
            with self._transaction() as conn:
                if _user_version(conn) == 0:
                    for statement in schema.BASELINE:
                        conn.execute(statement)
                    conn.execute(f"PRAGMA user_version = {schema.BASELINE_VERSION}")
            for version in range(self.version, target):
                with self._transaction() as conn:
                    if _user_version(conn) != version:
                        continue  # another process applied this step meanwhile
                    for statement in schema.MIGRATIONS[version - schema.BASELINE_VERSION]:
                        conn.execute(statement)
                    conn.execute(f"PRAGMA user_version = {version + 1}")
        except sqlite3.Error as exc:
            raise self._fail(exc, "upgrade") from None

    def _refusal(self, version: int, tables: list[str]) -> StoreError | None:
        """Why this database is not one paymobctl may use, if it is not."""
        latest = schema.latest_version()
        if version > latest:
            return StoreError(
                f"{self.path}: the database has schema version {version}, newer than this "
                f"paymobctl understands ({latest})",
                hint="upgrade paymobctl, or pass another --db PATH",
            )
        if 0 < version < schema.BASELINE_VERSION:
            # 0.1.0 starts from one baseline schema: the steps before it are gone.
            return StoreError(
                f"{self.path}: the database was made by a development build of paymobctl "
                f"before 0.1.0 (schema version {version}), which this release cannot upgrade",
                hint="paymobctl leaves it untouched; delete it (it holds local history only) "
                "or pass another --db PATH",
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
        """The database's table names, sorted."""
        rows = self._query("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        return [str(row[0]) for row in rows]


def _user_version(conn: sqlite3.Connection) -> int:
    """``PRAGMA user_version`` read on ``conn`` (inside the caller's transaction)."""
    return int(conn.execute("PRAGMA user_version").fetchone()[0])
