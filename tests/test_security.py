"""A canary secret never appears in any output, log or store; config files stay private."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from .conftest import run_cli

CANARY_HMAC = "CANARYHMAC0000000000000000000001"
CANARY_API = "CANARY-API-KEY-0000000000000000000002"
CANARY_SK = "egy_sk_test_CANARY0000000000000000000003"

COMMANDS: list[tuple[str, ...]] = [
    ("config", "show"),
    ("config", "show", "--json"),
    ("config", "profiles"),
    ("config", "profiles", "--json"),
    ("config", "path"),
    ("hmac", "verify", "--url", "https://x.example/r?id=1&order=2&hmac=abc", "--explain"),
    ("hmac", "verify", "--url", "https://x.example/r?id=1&order=2&hmac=abc", "--json"),
    ("hmac", "sign", "--url", "https://x.example/r?id=1&order=2", "--explain"),
    ("hmac", "sign", "--url", "https://x.example/r?id=1&order=2", "--json", "--explain"),
    ("simulate", "transaction", "--print"),
    ("simulate", "response", "--print"),
    ("simulate", "token", "--print", "--json"),
    ("simulate", "transaction", "--to", "http://127.0.0.1:9/unreachable", "--timeout", "0.5"),
    ("simulate", "history", "--json"),
    ("events", "list"),
    ("events", "export"),
    ("checklist", "history"),
    ("deposits", "list"),
    ("cards", "list", "--json"),
]


@pytest.fixture
def canaries(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("PAYMOB_HMAC_SECRET", CANARY_HMAC)
    monkeypatch.setenv("PAYMOB_API_KEY", CANARY_API)
    monkeypatch.setenv("PAYMOB_SECRET_KEY", CANARY_SK)
    db = tmp_path / "canary.db"
    monkeypatch.setenv("PAYMOBCTL_DB", str(db))
    return db


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: " ".join(a[:3]))
def test_canary_never_printed(canaries: Path, args: tuple[str, ...]) -> None:
    result = run_cli(*args)
    for canary in (CANARY_HMAC, CANARY_API, CANARY_SK):
        assert canary not in result.output, f"{canary} leaked by {' '.join(args)}"
        assert canary[-10:] not in result.output


def test_canary_never_stored(canaries: Path) -> None:
    for args in COMMANDS:
        run_cli(*args)
    data = b"".join(p.read_bytes() for p in canaries.parent.glob("canary.db*"))
    assert data, "the store was written"
    for canary in (CANARY_HMAC, CANARY_API, CANARY_SK):
        assert canary.encode() not in data


def test_config_written_private_even_with_permissive_umask(
    config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PAYMOB_API_KEY", "k")
    monkeypatch.setenv("PAYMOB_HMAC_SECRET", "s")
    monkeypatch.setenv("PAYMOB_INTEGRATION_ID", "1")
    old = os.umask(0o000)
    try:
        assert (
            run_cli(
                "--profile", "p", "config", "init", "--no-input", "--iframe-id", "5",
                "--from-env", "--no-verify",
            ).code
            == 0
        )  # fmt: skip
    finally:
        os.umask(old)
    assert config_file.stat().st_mode & 0o077 == 0
