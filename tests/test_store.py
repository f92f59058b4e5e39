"""The SQLite store: WAL, versioned migrations, upgrade path and clear errors."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from paymobctl import store as store_mod
from paymobctl.errors import StoreError
from paymobctl.store import SCHEMA_VERSION, Store

from .conftest import run_cli


def test_new_store_is_wal_and_current(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db") as s:
        assert s.version == SCHEMA_VERSION
        assert s._query("PRAGMA journal_mode")[0][0] == "wal"
        assert int(s._query("PRAGMA busy_timeout")[0][0]) == store_mod.BUSY_TIMEOUT_MS
        assert "hmac_checks" in s.tables()


def _record_check(store: Store) -> None:
    store.record_hmac_check(
        kind="TRANSACTION", valid=True, convention="empty", profile="p", origin="o"
    )


def test_new_database_starts_from_the_baseline(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db") as s:
        assert s.version == store_mod.schema.BASELINE_VERSION == SCHEMA_VERSION
        assert s.tables() == sorted(
            line.split()[2] for line in store_mod.schema.BASELINE if line.startswith("CREATE TABLE")
        )


def test_upgrade_path_keeps_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The mechanism the next real migration uses: a baseline database with data, upgraded by a
    (here made-up) step after it, keeps its data and reaches the new version."""
    path = tmp_path / "baseline.db"
    with Store(path) as old:
        _record_check(old)
    step = (
        "CREATE TABLE notes (check_id INTEGER REFERENCES hmac_checks (id), note TEXT)",
        "INSERT INTO notes SELECT id, 'migrated' FROM hmac_checks",
    )
    monkeypatch.setattr(store_mod.schema, "MIGRATIONS", (step,))
    with Store(path) as upgraded:
        assert upgraded.version == store_mod.schema.BASELINE_VERSION + 1
        assert upgraded._query("SELECT note FROM notes")[0][0] == "migrated"
        checks = upgraded.hmac_checks()
        assert len(checks) == 1 and checks[0].valid and checks[0].profile == "p"
    with Store(tmp_path / "new.db") as fresh:  # a new database gets the baseline, then the step
        assert fresh.version == store_mod.schema.BASELINE_VERSION + 1
        assert fresh._query("SELECT count(*) FROM notes")[0][0] == 0
        _record_check(fresh)


def test_migrate_stops_at_a_target(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    steps = (("CREATE TABLE one (x)",), ("CREATE TABLE two (x)",))
    monkeypatch.setattr(store_mod.schema, "MIGRATIONS", steps)
    path = tmp_path / "s.db"
    old = Store(path, migrate=False)
    old.migrate(target=store_mod.schema.BASELINE_VERSION + 1)
    assert "one" in old.tables() and "two" not in old.tables()
    _record_check(old)
    old.close()
    with Store(path) as upgraded:
        assert upgraded.version == store_mod.schema.BASELINE_VERSION + 2
        assert "two" in upgraded.tables() and len(upgraded.hmac_checks()) == 1


@pytest.mark.parametrize("version", [1, 7])
def test_development_build_database_is_refused_untouched(tmp_path: Path, version: int) -> None:
    """0.1.0 collapsed the development builds' schema steps 1-7 into its baseline (version 8)."""
    path = tmp_path / "dev.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE hmac_checks (id INTEGER PRIMARY KEY)")
    conn.execute(f"PRAGMA user_version = {version}")
    conn.commit()
    conn.close()
    before = path.read_bytes()
    with pytest.raises(StoreError, match=f"development build .* \\(schema version {version}\\)"):
        Store(path)
    result = run_cli("--db", str(path), "events", "list")
    assert result.code == 2 and "delete it" in result.stderr and "Traceback" not in result.stderr
    assert path.read_bytes() == before


def test_each_migration_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    broken = (*store_mod.schema.MIGRATIONS, ("CREATE TABLE extra (x)", "THIS IS NOT SQL"))
    monkeypatch.setattr(store_mod.schema, "MIGRATIONS", broken)
    path = tmp_path / "s.db"
    with pytest.raises(StoreError):
        Store(path)
    conn = sqlite3.connect(path)
    assert (
        conn.execute("PRAGMA user_version").fetchone()[0]
        == store_mod.schema.BASELINE_VERSION + len(broken) - 1
    )
    assert (
        conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 'extra'").fetchone()[0] == 0
    )
    conn.close()


def test_corrupt_database_is_named_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "bad.db"
    garbage = b"this is not a database at all" * 200
    path.write_bytes(garbage)
    with pytest.raises(StoreError, match="corrupt or not a paymobctl database"):
        Store(path)
    assert path.read_bytes() == garbage
    result = run_cli("--db", str(path), "hmac", "verify", "--sample", "docs-transaction")
    assert result.code == 2 and str(path) in result.stderr and "Traceback" not in result.stderr
    assert path.read_bytes() == garbage


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    conn.close()
    with pytest.raises(StoreError, match="newer than this paymobctl understands"):
        Store(path)


def test_unwritable_location(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = run_cli(
        "--db", str(blocker / "sub" / "s.db"), "hmac", "verify", "--sample", "docs-transaction"
    )
    assert result.code == 2 and "cannot create the database directory" in result.stderr


def test_db_env_and_flag(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env_db = tmp_path / "env.db"
    monkeypatch.setenv("PAYMOBCTL_DB", str(env_db))
    assert run_cli("hmac", "verify", "--sample", "docs-transaction").code == 0
    assert len(Store(env_db).hmac_checks()) == 1
    flag_db = tmp_path / "flag.db"
    assert run_cli("hmac", "verify", "--sample", "docs-transaction", "--db", str(flag_db)).code == 0
    assert len(Store(flag_db).hmac_checks()) == 1 and len(Store(env_db).hmac_checks()) == 1


def test_concurrent_writers_do_not_fail(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    Store(path).close()
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            with Store(path) as s:
                for _ in range(50):
                    s.record_hmac_check(
                        kind="TOKEN", valid=False, convention=None, profile=None, origin=None
                    )
                    s.hmac_checks(limit=5)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(Store(path).hmac_checks(limit=1000)) == 200


def test_someone_elses_database_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "app.sqlite3"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE auth_user (id INTEGER PRIMARY KEY)")
    conn.commit()
    conn.close()
    before = path.read_bytes()
    with pytest.raises(StoreError, match="not a paymobctl database"):
        Store(path)
    result = run_cli("--db", str(path), "events", "list")
    assert result.code == 2 and "auth_user" in result.stderr and "another --db" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert path.read_bytes() == before


def test_simulated_tokens_match_even_when_masked(tmp_path: Path) -> None:
    token = "ab4111111111111111cd" + "e" * 36  # a card-number-looking run inside the token
    with Store(tmp_path / "s.db") as store:
        store.record_delivery(
            origin="simulate", kind="TOKEN", method="POST", url="http://x/w",
            request_headers=[], request_body=None, signature="signed",
            payload={"token": token, "masked_pan": "xxxx-xxxx-xxxx-1111"},
        )  # fmt: skip
        assert token not in store.simulated_tokens()  # stored masked
        assert store.is_simulated_token(token)
        assert not store.is_simulated_token("f" * 56)


def test_two_first_openings_of_a_new_database_do_not_race(tmp_path: Path) -> None:
    """Two processes (threads here) creating the schema of one new database at once: both open it."""
    path = tmp_path / "race.db"
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def open_store() -> None:
        barrier.wait()
        try:
            Store(path).close()
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=open_store) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    store = Store(path)
    try:
        assert store.version == SCHEMA_VERSION
    finally:
        store.close()
