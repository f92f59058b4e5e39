"""What a checklist run takes and gives: its options, each check's result, the graded report."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from paymobctl.diagnosis import Probe


class Severity(IntEnum):
    """How much a failed check matters; ``--fail-level`` compares against it."""

    INFO = 0
    WARNING = 1
    ERROR = 2
    CRITICAL = 3

    @property
    def label(self) -> str:
        """The lowercase name shown and stored (``critical``, ``error``, ...)."""
        return self.name.lower()


class Status(StrEnum):
    """What a check concluded."""

    PASS = "pass"
    FAIL = "fail"
    SKIP = "skip"
    INFO = "info"


@dataclass(frozen=True)
class CheckResult:
    """One check's outcome: stable id, area, severity, status, one-line detail and the fix."""

    id: str
    area: str
    title: str
    severity: Severity
    status: Status
    detail: str
    hint: str | None = None
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        """Whether the check failed (a skip or an info is not a failure)."""
        return self.status is Status.FAIL


@dataclass(frozen=True)
class Options:
    """What to check: the deployment's base URL, its paths, trust, time and what to include."""

    url: str
    webhook_path: str = "/api/payments/webhook/"
    response_path: str | None = None
    ca_bundle: str | None = None
    timeout: float = 10.0
    api: bool | None = None  # None: on when the profile has credentials
    http_port: int = 80


class Graded:
    """What a graded run (the checklist, ``webhook test``) answers about its results, which have
    ``failed``, ``severity`` and ``status``: failures at a level, the exit code, the counts."""

    results: Sequence[Any]
    reachable: bool

    def failures(self, level: Severity) -> list[Any]:
        """The failed results at ``level`` or above."""
        return [r for r in self.results if r.failed and r.severity >= level]

    def exit_code(self, level: Severity) -> int:
        """3 when the target could not be reached, 1 when something failed at ``level``, else 0."""
        if not self.reachable:
            return 3
        return 1 if self.failures(level) else 0

    def counts(self) -> dict[str, int]:
        """How many results per status, and how many failures per severity."""
        counts = dict.fromkeys(("pass", "fail", "skip", "info", "critical", "error", "warning"), 0)
        for result in self.results:
            counts[result.status.value] += 1
            if result.failed:
                counts[result.severity.label] += 1
        return counts


@dataclass
class Report(Graded):
    """A checklist run: the target, the profile, when, how long, the probe used, the results."""

    url: str
    profile: str
    mode: str
    started_at: str
    duration_ms: float
    probe: Probe
    results: list[CheckResult]
    reachable: bool
