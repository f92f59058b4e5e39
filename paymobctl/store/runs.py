"""Graded runs (checklist, ``webhook test``) and load runs, for history and ``--diff``."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from paymobctl import pans
from paymobctl.models import mask_url_credentials
from paymobctl.store.connection import StoreBase, _masked
from paymobctl.store.records import _row_dict


class RunQueries(StoreBase):
    """The ``checklist_runs``/``checklist_results`` and ``load_runs`` tables."""

    # -- checklist runs ------------------------------------------------------------------------

    def record_checklist_run(
        self,
        *,
        url: str,
        profile: str,
        mode: str,
        started_at: str,
        duration_ms: float,
        fail_level: str,
        exit_code: int,
        probe_order_id: int | None,
        results: Sequence[Mapping[str, Any]],
        suite: str = "checklist",
    ) -> int:
        """Store a graded run: the go-live checklist, or (``suite="webhook"``) ``webhook test``."""
        with self._transaction() as conn:
            cursor = conn.execute(
                "INSERT INTO checklist_runs (started_at, url, profile, mode, duration_ms, fail_level, exit_code,"
                " probe_order_id, suite) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    started_at,
                    pans.mask_text(mask_url_credentials(url))[0],
                    profile,
                    mode,
                    duration_ms,
                    fail_level,
                    exit_code,
                    probe_order_id,
                    suite,
                ),
            )
            run_id = int(cursor.lastrowid or 0)
            conn.executemany(
                "INSERT INTO checklist_results (run_id, check_id, area, severity, status, detail, hint)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        run_id,
                        r["id"],
                        r["area"],
                        r["severity"],
                        r["status"],
                        pans.mask_text(str(r["detail"]))[0],
                        _masked(r.get("hint"))[0],
                    )
                    for r in results
                ],
            )
        return run_id

    def checklist_runs(
        self, *, url: str | None = None, limit: int = 20, suite: str = "checklist"
    ) -> list[dict[str, Any]]:
        """The newest graded runs of one suite, optionally for one URL."""
        rows = self._newest(
            "SELECT * FROM checklist_runs",
            {"suite = ?": suite, "url = ?": mask_url_credentials(url) if url else url},
            limit,
        )
        return [_row_dict(row) for row in rows]

    def checklist_results(self, run_id: int) -> list[dict[str, Any]]:
        """The results of one graded run, in the order they were stored."""
        rows = self._query(
            "SELECT * FROM checklist_results WHERE run_id = ? ORDER BY rowid", (run_id,)
        )
        return [_row_dict(row) for row in rows]

    # -- load runs ------------------------------------------------------------------------------

    def record_load_run(
        self, *, url: str, profile: str, mode: str, started_at: str, summary: Mapping[str, Any]
    ) -> int:
        """Store one load run (``simulate … --count``): its summary as JSON."""
        return self._write(
            "INSERT INTO load_runs (started_at, url, profile, mode, summary) VALUES (?, ?, ?, ?, ?)",
            (
                started_at,
                mask_url_credentials(url),
                profile,
                mode,
                mask_url_credentials(json.dumps(summary, separators=(",", ":"))),
            ),
        )

    def load_runs(self, *, url: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
        """The newest load runs, optionally for one URL, with their summaries."""
        wanted = mask_url_credentials(url) if url else url
        rows = self._newest("SELECT * FROM load_runs", {"url = ?": wanted}, limit)
        return [{**_row_dict(row), "summary": json.loads(row["summary"])} for row in rows]
