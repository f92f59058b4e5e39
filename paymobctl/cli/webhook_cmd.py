"""``paymobctl webhook test URL``: the conformance suite against your own endpoint; ``history``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from paymobctl.cli.checklist_cmd import (
    HistoryDiff,
    HistoryLimit,
    HistoryUrl,
    graded_json,
    render_summary,
    show_history,
)
from paymobctl.cli.options import command, runtime
from paymobctl.errors import UsageError

if TYPE_CHECKING:
    from paymobctl.conformance import Report

app = typer.Typer(
    add_completion=False,
    rich_markup_mode=None,
    no_args_is_help=True,
    help="Test your webhook endpoint against everything Paymob (and an attacker) can send.",
)

_LEVELS = ("warning", "error", "critical")


def _url(text: str, option: str) -> str:
    from paymobctl.config import check_url

    try:
        return check_url(text)
    except ValueError as exc:
        raise UsageError(
            f"{option}: {exc}",
            hint="give the full URL, e.g. http://127.0.0.1:8000/api/payments/webhook/",
        ) from None


@command(app, "test")
def test(
    url: Annotated[
        str,
        typer.Argument(
            help="Your processed-callback URL, e.g. http://127.0.0.1:8000/api/payments/webhook/."
        ),
    ],
    response_url: Annotated[
        str | None,
        typer.Option(
            "--response-url",
            metavar="URL",
            help="Your transaction response (GET redirect) URL; its cases are skipped without it.",
            show_default=False,
        ),
    ] = None,
    fail_level: Annotated[
        str,
        typer.Option(
            "--fail-level", help="Exit 1 when a case fails at or above: warning, error, critical."
        ),
    ] = "error",
    max_latency: Annotated[
        float,
        typer.Option(
            "--max-latency", help="p99 budget in seconds for valid deliveries.", min=0.001
        ),
    ] = 3.0,
    timeout: Annotated[
        float, typer.Option("--timeout", help="Seconds to wait for each answer.", min=0.1)
    ] = 10.0,
    allow_live: Annotated[
        bool,
        typer.Option(
            "--allow-live", help="Run with a live profile (a staging copy of production)."
        ),
    ] = False,
    insecure: Annotated[
        bool, typer.Option("--insecure", help="Accept a self-signed certificate (local HTTPS).")
    ] = False,
    secret_file: Annotated[
        Path | None,
        typer.Option(
            "--secret-file", help="Read the HMAC secret from this file.", show_default=False
        ),
    ] = None,
) -> None:
    """Send every case (valid deliveries, bad signatures, forgeries, odd bodies, a burst) and grade
    the answers. Exit 0 when nothing fails at --fail-level or above, 1 otherwise, 3 when nothing
    answers. Each run is stored (`paymobctl webhook history`)."""
    from paymobctl import conformance, outbound
    from paymobctl.checklist import Severity

    rt = runtime()
    if fail_level not in _LEVELS:
        raise UsageError(
            f"unknown --fail-level {fail_level!r}", hint="use warning, error or critical"
        )
    url = _url(url, "URL")
    response_url = _url(response_url, "--response-url") if response_url else None
    settings = rt.settings()
    if settings.is_live and not allow_live:
        raise UsageError(
            f"profile {settings.profile!r} is live: webhook test sends forged and malformed "
            "callbacks signed with its secret",
            hint="use a test profile (--profile), or pass --allow-live for a staging endpoint",
        )
    rt.announce_mode(settings)
    secret, _ = rt.hmac_secret(secret_file, purpose="signing the test callbacks")
    integration = settings.get("integration_id")
    target = conformance.Target(
        webhook_url=url,
        secret=secret,
        response_url=response_url,
        currency=settings.currency,
        region=settings.region,
        integration_id=integration if isinstance(integration, int) else 4822951,
        timeout=timeout,
        max_latency_ms=max_latency * 1000,
    )
    with outbound.client(verify=not insecure) as http:
        report = conformance.run(target, http=http, settings=settings)
    level = Severity[fail_level.upper()]
    code = report.exit_code(level)
    rt.store().record_checklist_run(
        url=url.rstrip("/"),
        profile=settings.profile,
        mode=settings.mode.value,
        started_at=report.started_at,
        duration_ms=report.duration_ms,
        fail_level=fail_level,
        exit_code=code,
        probe_order_id=report.order_ids[0],
        results=[{**r.as_dict(), "detail": f"{r.observed} — {r.detail}"} for r in report.results],
        suite="webhook",
    )
    _render(report, level, code, settings.profile)
    if code:
        raise typer.Exit(code)


def _render(report: Report, level: Any, code: int, profile: str) -> None:
    rt = runtime()
    out = rt.out
    if rt.json:
        out.json(
            {
                "url": report.url,
                "response_url": report.response_url,
                "profile": profile,
                **graded_json(report, level, code),
                "probe_order_ids": list(report.order_ids),
                "diagnosis": report.diagnosis.as_dict() if report.diagnosis else None,
                "cases": [r.as_dict() for r in report.results],
            }
        )
        return
    out.line(f"paymobctl webhook test {report.url} — profile {profile}")
    out.line(
        f"probes: orders {report.order_ids[0]}…{report.order_ids[1]} that no real order has "
        "(merchant_order_id paymobctl-probe-…)"
    )
    marks = {"pass": "PASS", "fail": "FAIL", "skip": "skip", "info": "info"}
    out.table(
        ["case", "what", "expected", "observed", "status"],
        [
            (
                r.case.id,
                r.case.title,
                r.case.expect.value,
                r.observed,
                marks[r.status.value] + (f" ({r.severity.label})" if r.failed else ""),
            )
            for r in report.results
        ],
    )
    failures = [r for r in report.results if r.failed]
    if failures:
        out.line("")
        out.line("What a correct receiver does, and how to fix:")
        for r in failures:
            out.line(f"  {r.case.id} ({r.severity.label}): {r.detail}")
            out.line(f"    a correct receiver {r.case.why}")
            out.line(f"    fix: {r.case.fix}")
    if report.diagnosis is not None:
        out.line("")
        out.bad(f"diagnosis: {report.diagnosis.text}")
        if report.diagnosis.fix:
            out.line(f"  fix: {report.diagnosis.fix}")
    render_summary(report, code)


@command(app, "history")
def history(url: HistoryUrl = None, diff: HistoryDiff = False, limit: HistoryLimit = 20) -> None:
    """List stored `webhook test` runs; --diff shows which cases changed since the previous run."""
    show_history(
        "webhook",
        url,
        diff=diff,
        limit=limit,
        again="run `paymobctl webhook test URL` again",
        empty="no webhook test runs yet: `paymobctl webhook test http://127.0.0.1:8000/api/payments/webhook/`",
    )
