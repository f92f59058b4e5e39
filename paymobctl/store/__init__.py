"""The local SQLite store: schema, migrations and every query (the only package importing sqlite3).

WAL mode and a busy timeout let ``paymobctl listen`` write while other commands read. The schema
is versioned with ``PRAGMA user_version``; each migration runs in its own transaction, so an
interrupted upgrade leaves the previous version intact. One module per group of tables:
``connection`` (opening, transactions, migrating), ``schema``, ``records`` (the dataclasses),
``events``, ``deliveries``, ``deposits``, ``runs`` and ``sandbox``.
"""

from __future__ import annotations

from paymobctl.store.connection import BUSY_TIMEOUT_MS, utc_now
from paymobctl.store.deliveries import DeliveryQueries
from paymobctl.store.deposits import DepositQueries
from paymobctl.store.events import EventQueries
from paymobctl.store.records import (
    Delivery,
    Deposit,
    Event,
    ForwardAttempt,
    HmacCheck,
    NewEvent,
    PaymentMethod,
    StoredEvent,
    dumps,
)
from paymobctl.store.runs import RunQueries
from paymobctl.store.sandbox import SandboxQueries
from paymobctl.store.schema import MIGRATIONS, SCHEMA_VERSION

__all__ = [
    "BUSY_TIMEOUT_MS",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "Delivery",
    "Deposit",
    "Event",
    "ForwardAttempt",
    "HmacCheck",
    "NewEvent",
    "PaymentMethod",
    "Store",
    "StoredEvent",
    "dumps",
    "utc_now",
]


class Store(EventQueries, DeliveryQueries, DepositQueries, RunQueries, SandboxQueries):
    """A thread-safe handle on the SQLite database at ``path``."""
