"""Stored graded runs (the checklist, ``webhook test``): their summaries, and what changed
between the last two runs of a URL (``history --diff``).

Both suites share the store's run tables, told apart by ``suite`` (``checklist``, ``webhook``),
so one function serves ``checklist history`` and ``webhook history``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from paymobctl.store import Store

ABSENT = "—"  # the status of a check that was not in a run


@dataclass(frozen=True)
class Change:
    """A check whose status differs between two runs (:data:`ABSENT` where it was not run)."""

    id: str
    before: str
    now: str
    detail: str

    def as_dict(self) -> dict[str, str]:
        """The JSON shape of ``history --diff --json``'s changes."""
        return {"id": self.id, "before": self.before, "now": self.now, "detail": self.detail}


@dataclass(frozen=True)
class RunDiff:
    """What changed from one stored run of a URL to the next."""

    url: str
    from_run: int
    from_started_at: str
    to_run: int
    to_started_at: str
    changes: tuple[Change, ...]

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape of ``history --diff --json``."""
        return {
            "url": self.url,
            "from_run": self.from_run,
            "to_run": self.to_run,
            "changes": [change.as_dict() for change in self.changes],
        }


@dataclass(frozen=True)
class RunSummary:
    """A stored run (its row) and its counts: passed, failed, failed critically."""

    run: Mapping[str, Any]
    passed: int
    failed: int
    critical: int

    def as_dict(self) -> dict[str, Any]:
        """The run's stored fields with the counts, as ``history --json`` shows them."""
        return {**self.run, "passed": self.passed, "failed": self.failed, "critical": self.critical}


def compare(
    before: Sequence[Mapping[str, Any]], after: Sequence[Mapping[str, Any]]
) -> list[Change]:
    """The checks whose status changed from the stored results ``before`` to ``after``: in
    ``after``'s order, then the checks no longer run."""
    old = {r["check_id"]: r for r in before}
    changes = []
    for r in after:
        previous = old.pop(r["check_id"], None)
        was = previous["status"] if previous else ABSENT
        if previous is None or previous["status"] != r["status"]:
            changes.append(Change(r["check_id"], was, r["status"], r["detail"]))
    for check_id, r in old.items():
        changes.append(Change(check_id, r["status"], ABSENT, "no longer run"))
    return changes


def diff(store: Store, suite: str, url: str | None = None) -> RunDiff | None:
    """What changed between the last two runs of ``url`` (default: :func:`latest_url`); None
    when there are not two such runs."""
    wanted = (url.rstrip("/") if url else url) or latest_url(store, suite)
    runs = store.checklist_runs(url=wanted, limit=2, suite=suite)
    if len(runs) < 2:
        return None
    before, after = runs[1], runs[0]
    changes = compare(store.checklist_results(before["id"]), store.checklist_results(after["id"]))
    return RunDiff(
        after["url"],
        before["id"],
        before["started_at"],
        after["id"],
        after["started_at"],
        tuple(changes),
    )


def latest_url(store: Store, suite: str) -> str | None:
    """The URL whose newest run is the most recent among URLs with two runs (what a diff can
    compare), else the most recent URL (then the diff says it needs two runs)."""
    runs = store.checklist_runs(limit=1000, suite=suite)
    urls = [str(run["url"]) for run in runs]
    newest_first = list(dict.fromkeys(urls))
    return next((u for u in newest_first if urls.count(u) >= 2), urls[0] if urls else None)


def summaries(
    store: Store, suite: str, url: str | None = None, limit: int = 20
) -> list[RunSummary]:
    """The newest ``limit`` runs of ``suite`` (of ``url``), each with its counts."""
    found = []
    for run in store.checklist_runs(url=url.rstrip("/") if url else url, limit=limit, suite=suite):
        results = store.checklist_results(run["id"])
        failed = [r for r in results if r["status"] == "fail"]
        found.append(
            RunSummary(
                run,
                passed=sum(r["status"] == "pass" for r in results),
                failed=len(failed),
                critical=sum(r["severity"] == "critical" for r in failed),
            )
        )
    return found
