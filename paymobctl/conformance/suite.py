"""Running the conformance suite: send every case's requests, grade the answers (no printing)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from paymobctl import delivery
from paymobctl.checklist import Graded, Severity, Status
from paymobctl.checklist.probes import is_csrf, send
from paymobctl.conformance.cases import CASES, Case, Expect
from paymobctl.conformance.probes import BUILDERS, GET_CASES, Probes, Target
from paymobctl.diagnosis import Verdict, explain_rejection
from paymobctl.load import percentile
from paymobctl.models import FailureKind
from paymobctl.signing import CallbackKind

if TYPE_CHECKING:
    import httpx

    from paymobctl.config import Settings


@dataclass(frozen=True)
class CaseResult:
    """How the receiver answered one case: pass, fail or skip, with what was observed."""

    case: Case
    status: Status
    observed: str  # what came back, e.g. "HTTP 401" or "HTTP 200, 200"
    detail: str
    severity: Severity = Severity.INFO  # of this failure (a crash instead of a 4xx: error)
    statuses: tuple[int | None, ...] = ()
    latencies_ms: tuple[float, ...] = ()
    excerpt: str = ""  # the first answer's body excerpt (JSON output only: never on a terminal raw)

    @property
    def failed(self) -> bool:
        """Whether the receiver got this case wrong (a skipped case did not fail)."""
        return self.status is Status.FAIL

    def as_dict(self) -> dict[str, Any]:
        """The result as plain JSON-ready data for ``--json`` output and history."""
        return {
            "id": self.case.id,
            "area": self.case.area,
            "title": self.case.title,
            "severity": self.severity.label,
            "status": self.status.value,
            "expected": self.case.expect.value,
            "observed": self.observed,
            "detail": self.detail,
            "why": self.case.why,
            "hint": self.case.fix if self.failed else None,
            "statuses": list(self.statuses),
            "body_excerpt": self.excerpt,
        }


@dataclass
class Report(Graded):
    """A whole ``webhook test`` run against one endpoint: every case's result and the diagnosis."""

    url: str
    response_url: str | None
    started_at: str
    duration_ms: float
    results: list[CaseResult]
    reachable: bool
    order_ids: tuple[int, int] = (0, 0)  # first and last probe order id used
    # Why the endpoint rejected a correctly signed delivery (the named mistake), when it did.
    diagnosis: Verdict | None = None


# --- grading -------------------------------------------------------------------------------------


def _observed(results: Sequence[delivery.Result]) -> str:
    parts: list[str] = []
    for result in results:
        parts.append(
            str(result.status) if result.status is not None else (result.error or "no answer")
        )
    if len(set(parts)) == 1 and len(parts) > 2:
        return f"HTTP {parts[0]} ×{len(parts)}"
    return "HTTP " + ", ".join(parts)


def _meets(expect: Expect, status: int | None) -> bool:
    if status is None:
        return False
    if expect is Expect.ACCEPT:
        return 200 <= status < 300
    if expect is Expect.ACCEPT_OR_REDIRECT:
        return 200 <= status < 400
    if expect is Expect.REJECT:
        return 400 <= status < 500
    return status < 500


def grade(case: Case, results: Sequence[delivery.Result], *, csrf_status: int | None) -> CaseResult:
    """Grade a case's answers. ``csrf_status``: the status CSRF protection answered (if it did)."""
    statuses = tuple(r.status for r in results)
    observed = _observed(results)

    def done(status: Status, detail: str, severity: Severity = case.severity) -> CaseResult:
        return CaseResult(
            case,
            status,
            observed,
            detail,
            severity=severity if status is Status.FAIL else Severity.INFO,
            statuses=statuses,
            latencies_ms=tuple(r.latency_ms for r in results),
            excerpt=results[0].excerpt if results else "",
        )

    blocked = csrf_status is not None and all(s == csrf_status for s in statuses)
    if blocked and case.id not in GET_CASES:
        if case.expect is Expect.ACCEPT:
            return done(Status.FAIL, f"blocked by CSRF protection ({observed}), see PMB-WH-070")
        return done(Status.SKIP, "blocked by CSRF protection before the view ran (PMB-WH-070)")
    if all(_meets(case.expect, s) for s in statuses):
        return done(Status.PASS, f"expected {case.expect.value}, got {observed}")
    if any(s is None for s in statuses):
        first = next(r for r in results if r.status is None)
        return done(Status.FAIL, f"no answer: {first.error_message or first.error}")
    if case.expect is Expect.REJECT and any(200 <= (s or 0) < 300 for s in statuses):
        return done(Status.FAIL, f"accepted ({observed}): a forged callback would be acted on")
    if any((s or 0) >= 500 for s in statuses):
        # A crash is never right, but rejecting by crashing is an error, not an acceptance.
        return done(
            Status.FAIL,
            f"server error ({observed}) where a correct receiver answers {case.expect.value}",
            min(case.severity, Severity.ERROR) if case.expect is Expect.REJECT else case.severity,
        )
    return done(Status.FAIL, f"expected {case.expect.value}, got {observed}")


def _latency_result(target: Target, graded: Sequence[CaseResult]) -> CaseResult:
    case = CASES["PMB-WH-071"]
    latencies = [
        ms
        for r in graded
        if r.case.expect in (Expect.ACCEPT, Expect.ACCEPT_OR_REDIRECT) and r.status is Status.PASS
        for ms in r.latencies_ms
    ]
    if not latencies:
        return CaseResult(case, Status.SKIP, "—", "no valid delivery was accepted to time")
    p99 = percentile(latencies, 0.99)
    observed = f"p99 {p99:.0f} ms over {len(latencies)} deliveries"
    budget = f"budget {target.max_latency_ms:.0f} ms"
    status = Status.PASS if p99 <= target.max_latency_ms else Status.FAIL
    return CaseResult(
        case, status, observed, f"{observed} ({budget})", latencies_ms=tuple(latencies)
    )


def _csrf_result(
    http: httpx.Client, probes: Probes
) -> tuple[CaseResult, int | None, delivery.Result]:
    """PMB-WH-070, and the status CSRF protection answers with (None when it does not block)."""
    case = CASES["PMB-WH-070"]
    request = probes.post(probes.transaction())
    answer = send(http, "POST", request.url, request.body, probes.target.timeout)
    result = delivery.Result(
        request.url,
        status=answer.status,
        latency_ms=answer.ms,
        excerpt=answer.text[: delivery.EXCERPT_CHARS],
        error=FailureKind.OTHER if answer.status is None else None,
        error_message=answer.error,
    )
    observed = _observed([result])
    statuses = (answer.status,)
    if answer.status is None:
        detail = f"no answer: {answer.error}"
        return (
            CaseResult(case, Status.FAIL, observed, detail, case.severity, statuses),
            None,
            result,
        )
    if is_csrf(answer):
        detail = f"the POST was rejected by CSRF protection ({observed})"
        failed = CaseResult(case, Status.FAIL, observed, detail, case.severity, statuses)
        return failed, answer.status, result
    detail = f"not blocked by CSRF protection ({observed})"
    return CaseResult(case, Status.PASS, observed, detail, statuses=statuses), None, result


def _send_all(
    http: httpx.Client, requests: Sequence[delivery.HttpRequest], timeout: float, concurrent: bool
) -> list[delivery.Result]:
    if not concurrent:
        return [delivery.attempt(http, request, timeout=timeout) for request in requests]
    with ThreadPoolExecutor(max_workers=len(requests)) as pool:
        return list(pool.map(lambda r: delivery.attempt(http, r, timeout=timeout), requests))


# The kind of callback each signed valid case sends (the others: TRANSACTION).
_VALID_KINDS = {"PMB-WH-021": CallbackKind.TOKEN, "PMB-WH-022": CallbackKind.RESPONSE}


def _diagnosed(
    target: Target, graded: Sequence[CaseResult], http: httpx.Client, settings: Settings
) -> Verdict | None:
    """When a correctly signed delivery got a 4xx, why: the diagnosis ``simulate`` and the
    checklist run (each common implementation mistake, probed once), for the first such case."""
    for result in graded:
        rejected = [s for s in result.statuses if s is not None and 400 <= s < 500]
        if result.case.expect not in (Expect.ACCEPT, Expect.ACCEPT_OR_REDIRECT) or not rejected:
            continue
        kind = _VALID_KINDS.get(result.case.id, CallbackKind.TRANSACTION)
        url = target.response_url if kind is CallbackKind.RESPONSE else target.webhook_url
        if result.status is not Status.FAIL or url is None:
            continue
        return explain_rejection(
            http,
            url,
            kind,
            target.secret,
            settings=settings,
            status=rejected[0],
            answer_text=result.excerpt,
            timeout=target.timeout,
        )
    return None


def run(target: Target, *, http: httpx.Client, settings: Settings | None = None) -> Report:
    """Send every case to ``target`` and grade the answers (the CSRF probe first: when CSRF
    protection blocks POSTs, the rejection cases are skipped rather than counted as passed).
    With ``settings``, a correctly signed delivery the endpoint rejects is diagnosed once."""
    started = time.perf_counter()
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    probes = Probes(target)
    first_order = probes.order_base + 1
    csrf, csrf_status, first = _csrf_result(http, probes)
    if first.status is None:
        # Nothing answers at all: one result says so, and the exit code is 3.
        return Report(
            target.webhook_url,
            target.response_url,
            started_at,
            (time.perf_counter() - started) * 1000,
            [csrf],
            reachable=False,
            order_ids=(first_order, probes.order_base + probes.used),
        )
    graded: list[CaseResult] = []
    for case_id, case in CASES.items():
        if case_id == "PMB-WH-070":
            graded.append(csrf)
            continue
        if case_id == "PMB-WH-071":
            continue
        if case_id in GET_CASES and target.response_url is None:
            graded.append(
                CaseResult(
                    case, Status.SKIP, "—", "no response URL: pass --response-url to test it"
                )
            )
            continue
        requests = BUILDERS[case_id](probes)
        results = _send_all(http, requests, target.timeout, concurrent=case_id == "PMB-WH-072")
        graded.append(grade(case, results, csrf_status=csrf_status))
    graded.append(_latency_result(target, graded))
    graded.sort(key=lambda r: r.case.id)
    found = None
    if settings is not None and csrf_status is None:
        found = _diagnosed(target, graded, http, settings)
    return Report(
        target.webhook_url,
        target.response_url,
        started_at,
        (time.perf_counter() - started) * 1000,
        graded,
        reachable=True,
        order_ids=(first_order, probes.order_base + probes.used),
        diagnosis=found,
    )
