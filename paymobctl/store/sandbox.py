"""The sandbox's objects when it runs with ``--state PATH``."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from paymobctl import pans
from paymobctl.store.connection import StoreBase, utc_now
from paymobctl.store.records import dumps


class SandboxQueries(StoreBase):
    """The ``sandbox_objects`` table."""

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
        """Delete sandbox objects of one kind by key, atomically."""
        with self._transaction() as conn:
            conn.executemany(
                "DELETE FROM sandbox_objects WHERE kind = ? AND key = ?", [(kind, k) for k in keys]
            )

    def load_sandbox_objects(self) -> dict[str, list[dict[str, Any]]]:
        """Every saved sandbox object by kind, in the order first saved."""
        loaded: dict[str, list[dict[str, Any]]] = {}
        for row in self._query("SELECT kind, body FROM sandbox_objects ORDER BY rowid"):
            loaded.setdefault(row["kind"], []).append(json.loads(row["body"]))
        return loaded
