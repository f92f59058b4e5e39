"""``paymobctl checklist URL``: the go-live checklist against a real deployment; ``history``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperGroup

from paymobctl.cli.options import command, runtime
from paymobctl.cli.output import local_time
from paymobctl.errors import UsageError

if TYPE_CHECKING:
    from paymobctl.checklist import Report


class DefaultToRun(TyperGroup):
    """``paymobctl checklist URL`` means ``paymobctl checklist run URL``; ``history`` is itself."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        # `checklist --help` shows the run command's options (the form people use); the
        # history command has its own `checklist history --help`.
        if args and args[0] not in self.commands:
            args = ["run", *args]
        return super().parse_args(ctx, args)


app = typer.Typer(
    add_completion=False,
    cls=DefaultToRun,
    rich_markup_mode=None,
    no_args_is_help=True,
    help="The go-live checklist run against a deployment: TLS, reachability, CSRF, HMAC enforcement, "
    "debug pages, configuration and the Paymob account. Its probes cannot move money: signed "
    "probes are declined test transactions for an order that cannot exist.",
)

_LEVELS = ("warning", "error", "critical")


@command(app, "run")
def run(
    url: Annotated[
        str, typer.Argument(help="The deployment's base URL, e.g. https://shop.example.")
    ],
    webhook_path: Annotated[
        str, typer.Option("--webhook-path", help="Processed callback path.")
    ] = ("/api/payments/webhook/"),
    response_path: Annotated[
        str | None,
        typer.Option(
            "--response-path",
            help="Transaction response (GET redirect) path. Default: the profile's "
            "response_callback_url path when it points at this host.",
            show_default=False,
        ),
    ] = None,
    api: Annotated[
        bool | None,
        typer.Option(
            "--api/--no-api",
            help="Check the Paymob account too (default: when the profile has an API key).",
            show_default=False,
        ),
    ] = None,
    ca_bundle: Annotated[
        Path | None,
        typer.Option(
            "--ca-bundle", help="Trust this CA bundle (PEM) for the target.", show_default=False
        ),
    ] = None,
    timeout: Annotated[
        float, typer.Option("--timeout", help="Seconds per network operation.", min=0.5)
    ] = 10.0,
    fail_level: Annotated[
        str,
        typer.Option(
            "--fail-level", help="Exit 1 when a check fails at or above: warning, error, critical."
        ),
    ] = "error",
    http_port: Annotated[
        int, typer.Option("--http-port", help="Where plain http is served, for the redirect check.")
    ] = 80,
) -> None:
    """Run every check; exit 0 when nothing fails at --fail-level or above, 1 otherwise, 3 when the
    target cannot be reached at all. Each run is stored (`paymobctl checklist history`)."""
    from paymobctl import checklist
    from paymobctl.payments import client_for

    rt = runtime()
    if fail_level not in _LEVELS:
        raise UsageError(
            f"unknown --fail-level {fail_level!r}", hint="use warning, error or critical"
        )
    if ca_bundle is not None:
        import ssl

        try:
            ssl.create_default_context(cafile=str(ca_bundle))
        except (OSError, ssl.SSLError) as exc:
            raise UsageError(
                f"--ca-bundle {ca_bundle}: not a readable PEM CA bundle ({exc})",
                hint="pass the CA certificate(s) in PEM format",
            ) from None
    if not webhook_path.startswith("/"):
        raise UsageError(f"--webhook-path {webhook_path!r}: expected an absolute path")
    checklist.parse_target(url)
    settings = rt.located_settings()
    rt.announce_mode(settings)
    from paymobctl.runfile import read_listener, stale_callback_urls

    for warning in stale_callback_urls(settings, read_listener()):
        rt.out.warn(warning)
    options = checklist.Options(
        url=url,
        webhook_path=webhook_path,
        response_path=response_path,
        ca_bundle=str(ca_bundle) if ca_bundle else None,
        timeout=timeout,
        api=api,
        http_port=http_port,
    )

    def http_factory(verify: Any) -> Any:
        from paymobctl import outbound

        return outbound.client(verify=verify)

    report = checklist.run(
        options,
        settings,
        http_factory=http_factory,
        client_factory=lambda http: client_for(settings, http),
    )
    level = checklist.Severity[fail_level.upper()]
    code = report.exit_code(level)
    rt.store().record_checklist_run(
        url=url.rstrip("/"),
        profile=report.profile,
        mode=report.mode,
        started_at=report.started_at,
        duration_ms=report.duration_ms,
        fail_level=fail_level,
        exit_code=code,
        probe_order_id=report.probe.order_id,
        results=[_result_json(r) for r in report.results],
    )
    _render(report, level, code)
    if code:
        raise typer.Exit(code)


def _result_json(result: Any) -> dict[str, Any]:
    return {
        "id": result.id,
        "area": result.area,
        "title": result.title,
        "severity": result.severity.label,
        "status": result.status.value,
        "detail": result.detail,
        "hint": result.hint,
        "data": result.data,
    }


def _render(report: Report, level: Any, code: int) -> None:
    rt = runtime()
    out = rt.out
    if rt.json:
        out.json(
            {
                "url": report.url,
                "profile": report.profile,
                "mode": report.mode,
                **graded_json(report, level, code),
                "probe": {
                    "order_id": report.probe.order_id,
                    "merchant_order_id": report.probe.merchant_order_id,
                    "transaction_id": report.probe.transaction_id,
                    "moves_money": False,
                },
                "checks": [_result_json(r) for r in report.results],
            }
        )
        return
    out.line(f"paymobctl checklist {report.url} — profile {report.profile} ({report.mode})")
    out.line(
        f"probes: declined test transactions for order {report.probe.order_id} "
        f"(merchant_order_id {report.probe.merchant_order_id}): they cannot move money"
    )
    marks = {"pass": "PASS", "fail": "FAIL", "skip": "skip", "info": "info"}
    rows = []
    for r in report.results:
        rows.append(
            (r.area, r.id, r.severity.label if r.failed else "", marks[r.status.value], r.detail)
        )
    out.table(["area", "check", "severity", "status", "result"], rows)
    failures = [r for r in report.results if r.failed]
    if failures:
        out.line("")
        out.line("How to fix:")
        for r in failures:
            out.line(f"  {r.id} ({r.severity.label}): {r.hint or r.title}")
    render_summary(report, code)


def graded_json(report: Any, level: Any, code: int) -> dict[str, Any]:
    """The JSON fields every graded run has (checklist, webhook test)."""
    return {
        "started_at": report.started_at,
        "duration_ms": round(report.duration_ms, 1),
        "exit_code": code,
        "fail_level": level.label,
        "reachable": report.reachable,
        "summary": report.counts(),
    }


def render_summary(report: Any, code: int) -> None:
    """The last line of a graded run (checklist, webhook test): counts, time, exit code."""
    out = runtime().out
    counts = report.counts()
    summary = (
        f"{counts['pass']} passed, {counts['fail']} failed ({counts['critical']} critical, "
        f"{counts['error']} error, {counts['warning']} warning), {counts['skip']} skipped "
        f"in {report.duration_ms / 1000:.1f} s — exit {code}"
    )
    if not report.reachable:
        out.bad("target unreachable: " + summary)
    elif code:
        out.bad(summary)
    else:
        out.ok(summary)


HistoryUrl = Annotated[
    str | None, typer.Argument(help="Only runs against this URL.", show_default=False)
]
HistoryDiff = Annotated[
    bool, typer.Option("--diff", help="What changed between the last two runs (of URL).")
]
HistoryLimit = Annotated[int, typer.Option("--limit", min=1, help="How many runs, newest first.")]


@command(app, "history")
def history(url: HistoryUrl = None, diff: HistoryDiff = False, limit: HistoryLimit = 20) -> None:
    """List stored checklist runs; --diff shows what changed since the previous run."""
    show_history(
        "checklist",
        url,
        diff=diff,
        limit=limit,
        again="run `paymobctl checklist URL` again",
        empty="no checklist runs yet: `paymobctl checklist https://your-domain.example`",
    )


def show_history(
    suite: str, url: str | None, *, diff: bool, limit: int, again: str, empty: str
) -> None:
    """Stored graded runs of ``suite`` (checklist, webhook), or with ``diff`` what changed
    between the last two runs of a URL. Shared by ``checklist history`` and ``webhook history``."""
    from paymobctl.checklist import history

    rt = runtime()
    if diff:
        found = history.diff(rt.store(), suite, url)
        if found is None:
            raise UsageError("--diff needs two runs of the same URL", hint=again)
        if rt.json:
            rt.out.json(found.as_dict())
            return
        rt.out.line(
            f"{found.url}: run {found.from_run} ({found.from_started_at}) → run {found.to_run} "
            f"({found.to_started_at})"
        )
        rt.out.table(
            ["check", "before", "now", "result now"],
            [(c.id, c.before, c.now, c.detail) for c in found.changes],
            empty="nothing changed",
        )
        return
    summaries = [s.as_dict() for s in history.summaries(rt.store(), suite, url, limit)]
    if rt.json:
        rt.out.json(summaries)
        return
    rt.out.table(
        ["run", "started", "url", "profile", "passed", "failed", "critical", "exit"],
        [
            (
                s["id"],
                local_time(s["started_at"]),
                s["url"],
                s["profile"],
                s["passed"],
                s["failed"],
                s["critical"],
                s["exit_code"],
            )
            for s in summaries
        ],
        empty=empty,
    )
