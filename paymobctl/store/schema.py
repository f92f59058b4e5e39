"""The store's schema: the baseline every new database starts from, and the migrations after it.

0.1.0 is the first release. Its schema is one baseline, version 8: versions 1 to 7 existed only in
development builds before it (their databases are refused with a message saying so, see
``connection``), and a development build's version 8 is this very schema. A later change appends
a step to ``MIGRATIONS``; each step runs in its own transaction.
"""

from __future__ import annotations

BASELINE_VERSION = 8  # ``PRAGMA user_version`` of a database created from ``BASELINE``

BASELINE: tuple[str, ...] = (
    # Every HMAC verification (never the secret, never the payload).
    """CREATE TABLE hmac_checks (
        id INTEGER PRIMARY KEY,
        created_at TEXT NOT NULL,
        kind TEXT NOT NULL,
        valid INTEGER NOT NULL,
        convention TEXT,
        profile TEXT,
        origin TEXT
    )""",
    # simulate — every callback paymobctl sent (or printed), with the answer it got.
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
    # sandbox — the emulator's objects when it runs with --state PATH.
    """CREATE TABLE sandbox_objects (
        kind TEXT NOT NULL,
        key TEXT NOT NULL,
        body TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (kind, key)
    )""",
    # listen — every request the receiver got (a body over --max-body is answered 413 and only
    # its first 64 KiB are kept: ``truncated``), forwards, and the effects on deposits and cards.
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
        dedup_key TEXT,
        truncated INTEGER NOT NULL DEFAULT 0
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
    # An intention deposit is recorded as soon as the server accepted the intention, before its
    # order id is known (learnt later from the webhook or the inquiry): order_id is nullable.
    """CREATE TABLE deposits (
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
    "CREATE INDEX deposits_order ON deposits (order_id)",
    "CREATE INDEX deposits_unlinked ON deposits (merchant_order_id) WHERE order_id IS NULL",
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
    # checklist and `webhook test` — graded runs and their results, for history and --diff; the
    # two share these tables (same shape: results by stable id), told apart by ``suite``.
    """CREATE TABLE checklist_runs (
        id INTEGER PRIMARY KEY,
        started_at TEXT NOT NULL,
        url TEXT NOT NULL,
        profile TEXT NOT NULL,
        mode TEXT NOT NULL,
        duration_ms REAL NOT NULL,
        fail_level TEXT NOT NULL,
        exit_code INTEGER NOT NULL,
        probe_order_id INTEGER,
        suite TEXT NOT NULL DEFAULT 'checklist'
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
    # load runs of `simulate … --count`: throughput, percentiles and status histogram (JSON).
    """CREATE TABLE load_runs (
        id INTEGER PRIMARY KEY,
        started_at TEXT NOT NULL,
        url TEXT NOT NULL,
        profile TEXT NOT NULL,
        mode TEXT NOT NULL,
        summary TEXT NOT NULL
    )""",
)

# Each entry upgrades the schema from version BASELINE_VERSION + index to the next one.
MIGRATIONS: tuple[tuple[str, ...], ...] = ()

SCHEMA_VERSION = BASELINE_VERSION + len(MIGRATIONS)


def latest_version() -> int:
    """The schema version this paymobctl creates and upgrades to."""
    return BASELINE_VERSION + len(MIGRATIONS)
