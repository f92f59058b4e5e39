"""``paymobctl demo``: the whole product offline, in a few seconds."""

from __future__ import annotations

import typer

from paymobctl.cli.options import command, runtime
from paymobctl.cli.payments_cmd import deposit_json, money

app = typer.Typer(add_completion=False, rich_markup_mode=None)


@command(app, "demo")
def demo() -> None:
    """Run the whole product offline in a few seconds: sandbox + listener in-process, a deposit paid
    in the hosted checkout with a test card and OTP, webhooks verified and stored, a second payment
    with the saved card, and a summary of the store. Leaves nothing running."""
    from paymobctl.demo import Step, run_demo

    rt = runtime()
    out = rt.out

    def show(step: Step) -> None:
        if rt.json:
            out.ndjson(
                {"step": step.title, "detail": step.detail, "seconds": round(step.seconds, 3)}
            )
        else:
            out.line(f"[{step.seconds * 1000:6.0f} ms] {step.title}: {step.detail}")
        out.stdout.flush()

    import os

    from paymobctl.demo import fresh_store_path

    # The demo keeps its own store unless a store was chosen explicitly (demo.fresh_store_path).
    explicit = bool(rt.options.db or os.environ.get("PAYMOBCTL_DB"))
    store_path = rt.db_path if explicit else fresh_store_path()
    if not rt.json:
        out.line("paymobctl demo — everything offline, on the built-in sandbox profile")
    report = run_demo(store_path, on_step=show)
    if rt.json:
        out.ndjson(
            {
                "summary": {
                    "seconds": round(report.total_seconds, 3),
                    "deposits": [deposit_json(d) for d in report.deposits],
                    "events": report.events,
                    "cards": report.cards,
                    "store": str(store_path),
                }
            }
        )
        return
    out.line(f"Store {store_path}:")
    for d in report.deposits[:2]:
        out.line(
            f"  deposit {d.id}: {money(d.amount_cents, d.currency)} {d.flow} order {d.order_id} → {d.status}"
        )
    out.line(
        "  events: " + ", ".join(f"{count} {key}" for key, count in sorted(report.events.items()))
    )
    out.line("  saved cards: " + (", ".join(report.cards) or "none"))
    out.ok(
        f"demo finished in {report.total_seconds:.2f} s — next: `paymobctl sandbox` and `paymobctl listen` in "
        "two terminals, then `paymobctl deposit 100 --wait`"
    )
