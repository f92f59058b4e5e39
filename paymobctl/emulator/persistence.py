"""The sandbox's tables of objects and where they are kept: in memory, or in a paymobctl store
(``paymobctl sandbox --state PATH``), saved as each object changes and loaded on start."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from typing import Any, Protocol

from paymobctl.emulator.records import (
    Attempt,
    CardToken,
    Delivery,
    Intention,
    Order,
    PaymentKey,
    Transaction,
)
from paymobctl.models import DeliveryState


class Persistence(Protocol):
    """Where the sandbox's objects are kept between runs."""

    def save(self, kind: str, key: str, value: Mapping[str, Any]) -> None:
        """Keep one object (a JSON-able mapping) of ``kind`` under ``key``."""

    def forget(self, kind: str, keys: Sequence[str]) -> None:
        """Delete the objects of ``kind`` under ``keys``."""

    def load(self) -> dict[str, list[dict[str, Any]]]:
        """Every kept object, by kind."""


class MemoryPersistence:
    """Keeps nothing: an in-memory sandbox starts empty."""

    def save(self, kind: str, key: str, value: Mapping[str, Any]) -> None:
        """Nothing to save."""
        del kind, key, value

    def forget(self, kind: str, keys: Sequence[str]) -> None:
        """Nothing to forget."""
        del kind, keys

    def load(self) -> dict[str, list[dict[str, Any]]]:
        """Nothing to load."""
        return {}


class StorePersistence:
    """Keeps the sandbox's objects in a paymobctl SQLite store (``paymobctl sandbox --state PATH``)."""

    def __init__(self, store: Any) -> None:
        self.store = store

    def save(self, kind: str, key: str, value: Mapping[str, Any]) -> None:
        """Write one object (card numbers masked, except in auth records)."""
        # An auth record is a digest and a time, nothing a request wrote: masking a digit run
        # of the digest would only make the token unknown after a restart.
        self.store.save_sandbox_object(kind, key, value, mask=kind != "auth")

    def forget(self, kind: str, keys: Sequence[str]) -> None:
        """Delete objects of one kind."""
        self.store.delete_sandbox_objects(kind, keys)

    def load(self) -> dict[str, list[dict[str, Any]]]:
        """Every kept object, by kind."""
        loaded: dict[str, list[dict[str, Any]]] = self.store.load_sandbox_objects()
        return loaded


def key_record_id(key: str) -> str:
    """What a payment key is saved under: its tail, never the whole (usable) key."""
    return key[-24:]


class Tables:
    """Every object of the sandbox by key, and the ids it hands out; each change is saved
    through a :class:`Persistence` by :meth:`save`."""

    def __init__(self, persistence: Persistence | None = None) -> None:
        self.persistence = persistence or MemoryPersistence()
        # sha256(token) -> expiry: the store never holds a usable token.
        self.auth_tokens: dict[str, float] = {}
        self.orders: dict[int, Order] = {}
        self.keys: dict[str, PaymentKey] = {}
        self.transactions: dict[int, Transaction] = {}
        self.tokens: dict[str, CardToken] = {}
        self.intentions: dict[str, Intention] = {}
        self.deliveries: dict[int, Delivery] = {}
        # Real Paymob ids never repeat; neither do ours across restarts of an in-memory sandbox
        # (a store or listener that outlives the sandbox would otherwise confuse two orders).
        run = secrets.randbelow(90_000_000)
        self._next = {
            "order": 300_000_000 + run,
            "transaction": 400_000_000 + run,
            "token": 9_100_000 + run % 800_000,
            "delivery": 1,
        }

    def next_id(self, name: str) -> int:
        """The next ``order``, ``transaction``, ``token`` or ``delivery`` id (never reused)."""
        value = self._next[name]
        self._next[name] = value + 1
        return value

    def save(self, kind: str, key: object, value: Any) -> None:
        """Persist one object (a dataclass) under ``kind`` and ``key``."""
        self.persistence.save(kind, str(key), asdict(value))

    def save_order(self, order: Order) -> None:
        """Persist an order."""
        self.save("order", order.id, order)

    def save_key(self, key: PaymentKey) -> None:
        """Persist a payment key (under its tail only)."""
        self.save("key", key_record_id(key.key), key)

    def save_transaction(self, txn: Transaction) -> Transaction:
        """Keep a transaction in the table and persist it."""
        self.transactions[txn.id] = txn
        self.save("transaction", txn.id, txn)
        return txn

    def save_intention(self, intention: Intention) -> None:
        """Persist an intention."""
        self.save("intention", intention.client_secret, intention)

    def save_delivery(self, item: Delivery) -> None:
        """Persist a delivery record."""
        self.save("delivery", item.id, item)

    def add_auth(self, digest: str, expires: float) -> None:
        """Remember an auth token's digest and expiry."""
        self.auth_tokens[digest] = expires
        self.persistence.save("auth", digest, {"sha256": digest, "expires": expires})

    def drop_auth(self, digests: Sequence[str]) -> None:
        """Forget auth tokens by digest."""
        for digest in digests:
            self.auth_tokens.pop(digest, None)
        if digests:
            self.persistence.forget("auth", digests)

    def load(self, now: float) -> None:
        """Fill the tables from the persistence (auth tokens expired by ``now`` are deleted);
        a persisted sandbox continues its own numbering."""
        stored = self.persistence.load()
        expired = []
        for raw in stored.get("auth", []):
            if float(raw["expires"]) > now:
                self.auth_tokens[str(raw["sha256"])] = float(raw["expires"])
            else:
                expired.append(str(raw["sha256"]))
        if expired:
            self.persistence.forget("auth", expired)
        tables: tuple[tuple[str, type[Any], dict[Any, Any], Callable[[Any], Any]], ...] = (
            ("order", Order, self.orders, lambda o: o.id),
            ("key", PaymentKey, self.keys, lambda k: k.key),
            ("transaction", Transaction, self.transactions, lambda t: t.id),
            ("token", CardToken, self.tokens, lambda t: t.token),
            ("intention", Intention, self.intentions, lambda i: i.client_secret),
            ("delivery", Delivery, self.deliveries, lambda d: d.id),
        )
        for kind, cls, table, key_of in tables:
            for raw in stored.get(kind, []):
                if kind == "delivery":
                    raw["attempts"] = [Attempt(**a) for a in raw.get("attempts", [])]
                    if "state" in raw:
                        raw["state"] = DeliveryState(raw["state"])
                item = cls(**raw)
                table[key_of(item)] = item
        for name, values in (
            ("order", self.orders),
            ("transaction", self.transactions),
            ("delivery", self.deliveries),
        ):
            if values:
                self._next[name] = max(values) + 1
        if self.tokens:
            self._next["token"] = max(t.id for t in self.tokens.values()) + 1

    def clear(self) -> None:
        """Forget every object, here and in the persistence; ids keep counting."""
        # The keys each kind is saved under (the ``save_*`` methods).
        tables: tuple[tuple[str, dict[Any, Any], Callable[[Any, Any], object]], ...] = (
            ("auth", self.auth_tokens, lambda key, _: key),
            ("order", self.orders, lambda key, _: key),
            ("key", self.keys, lambda key, _: key_record_id(key)),
            ("transaction", self.transactions, lambda key, _: key),
            ("token", self.tokens, lambda _, token: token.id),
            ("intention", self.intentions, lambda key, _: key),
            ("delivery", self.deliveries, lambda key, _: key),
        )
        for kind, table, saved_as in tables:
            if table:
                self.persistence.forget(kind, [str(saved_as(k, v)) for k, v in table.items()])
            table.clear()

    def empty(self) -> bool:
        """Whether no object of any kind is held."""
        return not (
            self.auth_tokens
            or self.orders
            or self.keys
            or self.transactions
            or self.tokens
            or self.intentions
            or self.deliveries
        )
