"""`paymobctl webhook test`: the conformance suite graded against real receivers — the Django
site's four variants, a FastAPI receiver and `listen` itself — and the command around it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from paymobctl import callbacks, conformance, delivery, outbound, signing
from paymobctl.checklist import Severity, Status
from paymobctl.conformance import CASES, Report, Target
from paymobctl.conformance.cases import VALID_TRANSACTIONS
from paymobctl.models import CallbackKind, Outcome, PaymentSource
from paymobctl.receiver import create_app
from paymobctl.store import Store

from . import django_site, fastapi_site
from .conftest import run_cli
from .inprocess import in_process
from .servers import free_port, serve

WEBHOOK = "/api/payments/webhook/"
RESPONSE = "/api/payments/response/"
SECRET = "conformance-listen-secret"


def _run(base: str, secret: str) -> Report:
    target = Target(webhook_url=base + WEBHOOK, response_url=base + RESPONSE, secret=secret)
    with outbound.client() as http:
        return conformance.run(target, http=http)


def _by_id(report: Report) -> dict[str, conformance.CaseResult]:
    return {r.case.id: r for r in report.results}


@pytest.fixture(scope="module")
def django_base() -> Iterator[str]:
    with in_process(django_site.application(), lifespan="off") as base:
        yield base


@pytest.fixture(scope="module")
def django_reports(django_base: str) -> dict[str, Report]:
    return {v: _run(f"{django_base}/{v}", django_site.SECRET) for v in DJANGO_FAILURES}


VALID = [f"PMB-WH-{n:03d}" for n in range(1, 17)] + ["PMB-WH-020", "PMB-WH-021"]
SIGNATURE_POST = [f"PMB-WH-{n:03d}" for n in range(30, 38)]
FORGERIES = ["PMB-WH-050", "PMB-WH-051", "PMB-WH-052"]
ROBUSTNESS = ["PMB-WH-060", "PMB-WH-061", "PMB-WH-062", "PMB-WH-063", "PMB-WH-064"]

# Variant → {failed case: severity}. Everything else passes, except nocsrf's skips below.
DJANGO_FAILURES: dict[str, dict[str, Severity]] = {
    "good": {},
    "nocsrf": {
        **dict.fromkeys(VALID, Severity.ERROR),
        "PMB-WH-070": Severity.CRITICAL,
        "PMB-WH-072": Severity.ERROR,
    },
    "nohmac": dict.fromkeys(SIGNATURE_POST + FORGERIES, Severity.CRITICAL),
    "crash": {"PMB-WH-030": Severity.ERROR, "PMB-WH-034": Severity.ERROR},
}
DJANGO_SKIPS = {"nocsrf": set(SIGNATURE_POST + FORGERIES + ROBUSTNESS)}


@pytest.mark.slow
@pytest.mark.parametrize("variant", sorted(DJANGO_FAILURES))
def test_django_variants_are_graded(variant: str, django_reports: dict[str, Report]) -> None:
    report = django_reports[variant]
    failed = {r.case.id: r.severity for r in report.results if r.failed}
    skipped = {r.case.id for r in report.results if r.status is Status.SKIP}
    assert failed == DJANGO_FAILURES[variant]
    assert skipped == DJANGO_SKIPS.get(variant, set())
    assert len(report.results) == len(CASES)
    assert report.exit_code(Severity.ERROR) == (1 if failed else 0)
    assert report.exit_code(Severity.CRITICAL) == (1 if Severity.CRITICAL in failed.values() else 0)


@pytest.mark.slow
def test_failures_say_what_a_correct_receiver_does(django_reports: dict[str, Report]) -> None:
    forged = _by_id(django_reports["nohmac"])["PMB-WH-050"]
    data = forged.as_dict()
    assert data["expected"] == "4xx" and data["observed"] == "HTTP 200"
    assert "shape" in data["why"] and data["hint"].startswith("reject (400)")
    crashed = _by_id(django_reports["crash"])["PMB-WH-030"]
    assert crashed.observed == "HTTP 500" and "server error" in crashed.detail


@pytest.mark.slow
def test_fastapi_receiver_passes_every_case() -> None:
    # Over a real socket (uvicorn): the FastAPI target's end-to-end run.
    with serve(fastapi_site.create_app()) as base:
        report = _run(base, fastapi_site.SECRET)
    assert [r.case.id for r in report.results if r.status is not Status.PASS] == []


# --- listen itself ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def listen_report(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Report]:
    store = Store(tmp_path_factory.mktemp("listen") / "paymobctl.db")
    try:
        with in_process(create_app(store=store, secret=SECRET)) as base:
            yield _run(base, SECRET)
    finally:
        store.close()


@pytest.mark.slow
@pytest.mark.parametrize(
    "case_id",
    CASES,
)
def test_listen_passes_every_case(case_id: str, listen_report: Report) -> None:
    result = _by_id(listen_report)[case_id]
    assert result.status is Status.PASS, f"{result.observed}: {result.detail}"


# --- the probes themselves ---------------------------------------------------------------------

TARGET = Target(
    webhook_url="http://127.0.0.1:9/api/payments/webhook/",
    response_url="http://127.0.0.1:9/api/payments/response/",
    secret="probe-secret",
)


def _posted(case_id: str) -> tuple[dict[str, Any], str | None]:
    request = conformance.requests_for(case_id, TARGET)[0]
    assert request.body is not None
    return json.loads(request.body), signing.hmac_from_url(request.url)


@pytest.mark.parametrize("case_id", ["PMB-WH-050", "PMB-WH-051", "PMB-WH-052"])
def test_forgeries_keep_the_signed_string(case_id: str) -> None:
    body, digest = _posted(case_id)
    assert digest is not None
    # The bare HMAC still verifies: only the shape of the signed fields gives the forgery away,
    # and paymobctl's own verify (shapes first) refuses it.
    assert signing.verify(
        CallbackKind.TRANSACTION, body["obj"], "probe-secret", digest, check_shapes=False
    ).valid
    strict = signing.verify(CallbackKind.TRANSACTION, body["obj"], "probe-secret", digest)
    assert not strict.valid and strict.malformed


def test_field_shift_forgery_shape() -> None:
    body, _ = _posted("PMB-WH-050")
    obj = body["obj"]
    assert isinstance(obj["order"], int) and obj["order"] >= conformance.PROBE_ORDER_BASE
    assert str(obj["owner"]).startswith(str(obj["order"] - 1))
    float_obj = _posted("PMB-WH-051")[0]["obj"]
    assert isinstance(float_obj["id"], float)
    strings = _posted("PMB-WH-052")[0]["obj"]
    assert strings["success"] == "false" and strings["pending"] == "false"


def test_every_probe_is_for_an_order_that_cannot_exist() -> None:
    for case_id in conformance.BUILDERS:
        for request in conformance.requests_for(case_id, TARGET):
            if request.method == "GET":
                continue
            try:
                obj = json.loads(request.body or b"")["obj"]
            except ValueError:
                continue  # the deliberately broken body
            order = obj.get("order", obj.get("order_id"))
            order_id = int(order["id"] if isinstance(order, dict) else order)
            assert order_id >= conformance.PROBE_ORDER_BASE, case_id
            if (
                isinstance(order, dict)
                and "merchant_order_id" in order
                and order["merchant_order_id"]
            ):
                assert order["merchant_order_id"].startswith("paymobctl-probe-")


def test_valid_cases_are_every_combination_paymob_produces() -> None:
    produced = {
        (Outcome(outcome), PaymentSource(source))
        for outcome, overlays in callbacks.template("outcomes.json").items()
        if not outcome.startswith("_")
        for source in overlays
        if source != "refused"
    }
    assert {(o, s) for o, s, _ in VALID_TRANSACTIONS} == produced
    assert len(VALID_TRANSACTIONS) == len(produced)


def test_valid_cases_cover_every_outcome_and_source() -> None:
    covered = set()
    for case_id in VALID[:16]:
        body, digest = _posted(case_id)
        obj = body["obj"]
        assert signing.verify(CallbackKind.TRANSACTION, obj, "probe-secret", digest).valid
        covered.add((obj["success"], obj["pending"], obj["source_data"]["type"]))
    assert len(covered) >= 6
    blocked = _posted("PMB-WH-006")[0]["obj"]
    assert blocked["data"]["txn_response_code"] == "BLOCKED" and blocked["success"] is False


def test_one_mb_body_is_valid_and_just_under_a_mebibyte() -> None:
    request = conformance.requests_for("PMB-WH-062", TARGET)[0]
    assert request.body is not None
    assert 990_000 <= len(request.body) <= conformance.ONE_MB
    body = json.loads(request.body)
    digest = signing.hmac_from_url(request.url)
    assert signing.verify(CallbackKind.TRANSACTION, body["obj"], "probe-secret", digest).valid


def test_signature_cases_are_really_wrong() -> None:
    for case_id in ("PMB-WH-030", "PMB-WH-031", "PMB-WH-032", "PMB-WH-033"):
        body, digest = _posted(case_id)
        assert not signing.verify(
            CallbackKind.TRANSACTION, body["obj"], "probe-secret", digest
        ).valid
    token_body, token_digest = _posted("PMB-WH-035")
    assert token_body["type"] == "TOKEN"
    assert not signing.verify(
        CallbackKind.TOKEN, token_body["obj"], "probe-secret", token_digest
    ).valid
    redirect = conformance.requests_for("PMB-WH-041", TARGET)[0]
    payload = signing.parse_query(redirect.url)
    assert payload.hmac is not None and len(payload.hmac) == 64


def test_grading_of_a_crash_on_a_rejection_is_an_error_not_critical() -> None:
    case = CASES["PMB-WH-030"]
    crash = delivery.Result("u", status=500)
    accepted = delivery.Result("u", status=200)
    assert conformance.grade(case, [crash], csrf_status=None).severity is Severity.ERROR
    assert conformance.grade(case, [accepted], csrf_status=None).severity is Severity.CRITICAL
    no_answer = delivery.Result("u", error="timeout", error_message="no answer within 1 s")
    assert "no answer" in conformance.grade(case, [no_answer], csrf_status=None).detail


def _barrier_app(size: int, wait: float) -> Any:
    """Answers 200 once ``size`` requests are in flight at the same time, 503 to a request that
    waited ``wait`` seconds for the others: only really concurrent deliveries pass."""
    import asyncio

    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Route

    arrived = 0
    everyone = asyncio.Event()

    async def endpoint(request: Any) -> Response:
        nonlocal arrived
        await request.body()
        arrived += 1
        if arrived >= size:
            everyone.set()
        try:
            await asyncio.wait_for(everyone.wait(), wait)
        except TimeoutError:
            return Response(status_code=503)
        return Response(status_code=200)

    return Starlette(routes=[Route("/{path:path}", endpoint, methods=["POST"])])


@pytest.mark.slow
def test_concurrent_deliveries_are_all_in_flight_at_once() -> None:
    """PMB-WH-072 sends its 50 deliveries on 50 connections at once. The client's pool allowed
    10 connections: deliveries queued in the client, their deadline running, so a loaded machine
    timed out the last ones (and the wait counted as the receiver's latency)."""
    from paymobctl.conformance.suite import _send_all

    with serve(_barrier_app(conformance.CONCURRENT, wait=5.0)) as base:
        target = Target(webhook_url=base + WEBHOOK, secret=SECRET, timeout=20.0)
        requests = conformance.requests_for("PMB-WH-072", target)
        assert len(requests) == conformance.CONCURRENT
        with outbound.client() as http:
            results = _send_all(http, requests, target.timeout, concurrent=True)
    graded = conformance.grade(CASES["PMB-WH-072"], results, csrf_status=None)
    assert graded.status is Status.PASS, graded.detail


# --- the command -------------------------------------------------------------------------------


@pytest.fixture
def django_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYMOB_HMAC_SECRET", django_site.SECRET)


@pytest.mark.slow
def test_command_json_history_and_diff(
    django_base: str, django_secret: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"{django_base}/good{WEBHOOK}"
    first = run_cli(
        "webhook", "test", url, "--response-url", f"{django_base}/good{RESPONSE}", "--json"
    )
    assert first.code == 0, first.output
    data = first.json()
    assert data["summary"]["fail"] == 0 and len(data["cases"]) == len(CASES)
    assert all(c["id"].startswith("PMB-WH-") and c["why"] for c in data["cases"])
    monkeypatch.setenv("PAYMOB_HMAC_SECRET", "not-the-deployed-secret")
    second = run_cli("webhook", "test", url)
    assert second.code == 1
    assert "PMB-WH-001" in second.stdout and "a correct receiver" in second.stdout
    assert "skip" in second.stdout  # no --response-url: the GET cases are skipped
    history = run_cli("webhook", "history", "--json")
    assert [run["exit_code"] for run in history.json()] == [1, 0]
    diff = run_cli("webhook", "history", url, "--diff", "--json")
    changes = {c["id"]: (c["before"], c["now"]) for c in diff.json()["changes"]}
    assert changes["PMB-WH-001"] == ("pass", "fail")
    assert changes["PMB-WH-022"] == ("pass", "skip")
    # The checklist's own history does not see these runs.
    assert run_cli("checklist", "history", "--json").json() == []


@pytest.mark.slow
def test_fail_level_critical_ignores_errors(django_base: str, django_secret: None) -> None:
    result = run_cli("webhook", "test", f"{django_base}/crash{WEBHOOK}", "--fail-level", "critical")
    assert result.code == 0, result.output
    assert "PMB-WH-030" in result.stdout and "FAIL (error)" in result.stdout


@pytest.mark.slow
def test_refuses_a_live_profile_unless_allowed(
    django_base: str, django_secret: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PAYMOB_MODE", "live")
    monkeypatch.setenv("PAYMOB_PROFILE", "sandbox")  # live profiles are only used when chosen
    refused = run_cli("webhook", "test", f"{django_base}/good{WEBHOOK}")
    assert refused.code == 2 and "is live" in refused.stderr and "--allow-live" in refused.stderr
    allowed = run_cli("webhook", "test", f"{django_base}/good{WEBHOOK}", "--allow-live")
    assert allowed.code == 0, allowed.output
    assert "LIVE" in allowed.stderr


def test_bad_input_is_one_line(django_secret: None) -> None:
    bad = run_cli("webhook", "test", "not a url")
    assert bad.code == 2 and bad.stderr.count("\n") == 1
    level = run_cli("webhook", "test", "http://127.0.0.1:9/x", "--fail-level", "loud")
    assert level.code == 2 and "--fail-level" in level.stderr


@pytest.mark.slow
def test_nothing_listening_is_exit_3(django_secret: None) -> None:
    result = run_cli(
        "webhook", "test", f"http://127.0.0.1:{free_port()}{WEBHOOK}", "--timeout", "2"
    )
    assert result.code == 3
    assert "unreachable" in result.stderr + result.stdout


def test_probes_use_shared_builders() -> None:
    # The valid TOKEN case is exactly what callbacks.build_token makes for a probe order.
    body, digest = _posted("PMB-WH-021")
    rebuilt = callbacks.Callback(CallbackKind.TOKEN, body)
    assert rebuilt.sign("probe-secret") == digest
    assert int(body["obj"]["order_id"]) >= conformance.PROBE_ORDER_BASE


def test_readme_lists_every_case_as_it_is() -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    for case in CASES.values():
        row = f"| `{case.id}` | {case.area} | {case.title} | {case.expect.value} | {case.severity.label} |"
        assert row in readme, case.id


@pytest.mark.parametrize("suite", ["webhook", "checklist"])
def test_history_diff_without_a_url_picks_the_latest_url_with_two_runs(
    suite: str, tmp_path: Path
) -> None:
    """Acceptance review: `webhook history --diff` with no URL behaves like the checklist's."""
    from paymobctl.store import Store

    db = tmp_path / "runs.db"
    store = Store(db)

    def record(url: str, status: str) -> None:
        store.record_checklist_run(
            url=url, profile="sandbox", mode="test", started_at="2026-12-02T10:00:00+00:00",
            duration_ms=1.0, fail_level="error", exit_code=0, probe_order_id=None,
            results=[{"id": "PMB-WH-001", "area": "a", "severity": "error", "status": status, "detail": "d"}],
            suite=suite,
        )  # fmt: skip

    record("http://a.test/w", "fail")
    record("http://a.test/w", "pass")
    record("http://b.test/w", "pass")  # newest, but a single run: nothing to compare
    store.close()
    diff = run_cli("--db", str(db), suite, "history", "--diff", "--json")
    assert diff.code == 0, diff.output
    found = diff.json()
    assert found["url"] == "http://a.test/w"
    assert found["changes"] == [
        {"id": "PMB-WH-001", "before": "fail", "now": "pass", "detail": "d"}
    ]
