"""``simulate transaction --count N``: run a load plan with a progress bar, render and store it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import typer

from paymobctl.cli.options import runtime
from paymobctl.errors import ExitCode, NetworkError

if TYPE_CHECKING:
    from paymobctl.load import Plan, Progress, Report


@contextmanager
def _progress_bar(
    total: int | None, duration: float | None
) -> Iterator[Callable[[Progress], None]]:
    """A live rich progress bar on stderr when it is a terminal; otherwise nothing is drawn."""
    out = runtime().out
    if out.json_mode or not out.err_console.is_terminal:
        yield lambda progress: None
        return
    from rich import progress as rich_progress
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn

    bar = rich_progress.Progress(
        TextColumn("sending"),
        BarColumn(),
        MofNCompleteColumn() if total else TextColumn("{task.fields[sent]} sent"),
        TimeElapsedColumn(),
        console=out.err_console,
        transient=True,
    )
    # With --count the bar counts callbacks; with --duration alone it counts seconds.
    task = bar.add_task("load", total=total or duration, sent=0)

    def update(progress: Progress) -> None:
        done = progress.done if total else min(progress.elapsed, duration or 0)
        bar.update(task, completed=done, sent=progress.done)

    with bar:
        yield update


def run_load(plan: Plan) -> None:
    """Run ``plan``, show throughput, percentiles, statuses and errors, store the run.

    Exit 0 when every callback got a 2xx, 1 otherwise, 3 when nothing answered at all."""
    from paymobctl import load

    rt = runtime()
    plan.check()
    settings = rt.settings()
    with _progress_bar(plan.count, plan.duration) as on_progress:
        report = load.run(plan, on_progress=on_progress)
    summary = report.summary()
    rt.store().record_load_run(
        url=plan.url,
        profile=settings.profile,
        mode=settings.mode.value,
        started_at=report.started_at,
        summary=summary,
    )
    if rt.json:
        rt.out.json(summary)
    else:
        _render(report)
    if report.answered == 0 and report.errors:
        raise NetworkError(
            f"no callback got an answer from {plan.url.split('?', 1)[0]}: {report.first_error}",
            hint="start your app, or run `paymobctl listen` to receive callbacks locally",
        )
    if report.ok < report.sent:
        raise typer.Exit(int(ExitCode.FAILED))


def _render(report: Report) -> None:
    out = runtime().out
    summary = report.summary()
    latency = summary["latency_ms"]
    out.line(
        f"{report.sent} signed callbacks in {report.elapsed_s:.2f} s from {report.concurrency} "
        f"connections: {report.throughput:,.0f}/s answered"
    )
    if latency["p50"] is not None:
        out.line(
            f"latency p50 {latency['p50']:.1f} ms · p95 {latency['p95']:.1f} ms · "
            f"p99 {latency['p99']:.1f} ms · max {latency['max']:.1f} ms"
        )
    rows = [(f"HTTP {status}", count) for status, count in sorted(report.statuses.items())]
    rows += [(f"error: {kind}", count) for kind, count in sorted(report.errors.items())]
    out.table(["answer", "count"], rows)
    if report.first_error and report.answered:  # nothing answered: the error line says it
        out.warn(f"first error: {report.first_error}")
    line = f"{report.ok} of {report.sent} answered 2xx"
    if report.ok == report.sent:
        out.ok(line)
    else:
        out.bad(line)
