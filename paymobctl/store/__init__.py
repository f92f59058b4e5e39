"""The local SQLite store: schema, migrations and every query (the only package importing sqlite3).

WAL mode and a busy timeout let ``paymobctl listen`` write while other commands read. The schema
is versioned with ``PRAGMA user_version``; each migration runs in its own transaction, so an
interrupted upgrade leaves the previous version intact. One module per group of tables:
``connection`` (opening, transactions, migrating), ``schema``, ``records`` (the dataclasses),
``events``, ``deliveries``, ``deposits``, ``runs`` and ``sandbox``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from paymobctl.store.connection import BUSY_TIMEOUT_MS, dumps, utc_now
from paymobctl.store.deliveries import DeliveryQueries
from paymobctl.store.deposits import DepositQueries
from paymobctl.store.events import EventQueries
from paymobctl.store.runs import RunQueries
from paymobctl.store.sandbox import SandboxQueries
from paymobctl.store.schema import MIGRATIONS, SCHEMA_VERSION

if TYPE_CHECKING:
    from paymobctl.store.records import (
        Delivery,
        Deposit,
        Event,
        ForwardAttempt,
        HmacCheck,
        NewEvent,
        PaymentMethod,
        StoredEvent,
    )

# The record dataclasses, loaded on first use: creating them costs more than the rest of the
# store's import, and `hmac verify` (start-up, issue 13) only inserts a row.
_RECORDS = frozenset(
    {
        "Delivery",
        "Deposit",
        "Event",
        "ForwardAttempt",
        "HmacCheck",
        "NewEvent",
        "PaymentMethod",
        "StoredEvent",
    }
)


def __getattr__(name: str) -> object:
    if name in _RECORDS:
        from paymobctl.store import records

        value: object = getattr(records, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
