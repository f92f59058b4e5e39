"""``paymobctl events list|show|replay|export``: what ``paymobctl listen`` received."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer

from paymobctl.cli.options import command, runtime
from paymobctl.cli.output import local_time
from paymobctl.errors import ExitCode, UsageError
from paymobctl.models import CallbackKind

if TYPE_CHECKING:
    from paymobctl.store import Event

app = typer.Typer(
    add_completion=False,
    rich_markup_mode=None,
    help="Received webhooks: list, show (with the HMAC explanation), replay byte for byte, export.",
    no_args_is_help=True,
)

TypeOpt = Annotated[
    CallbackKind | None,
    typer.Option(
        "--type", help="Only this callback type.", case_sensitive=False, show_default=False
    ),
]
SinceOpt = Annotated[
    str | None,
    typer.Option(
        "--since", help="Only newer events: 30m, 2h, 7d, or a date/time.", show_default=False
    ),
]
InvalidOpt = Annotated[
    bool,
    typer.Option("--invalid", help="Only events that were not accepted (bad or no HMAC, 4xx)."),
]


def _since(text: str | None) -> str | None:
    from paymobctl.models import parse_since

    return parse_since(text, datetime.now(UTC)) if text else None


def _event(event_id: int) -> Event:
    event = runtime().store().event(event_id)
    if event is None:
        raise UsageError(
            f"no event {event_id} in {runtime().db_path}", hint="see `paymobctl events list`"
        )
    return event


def _body_text(event: Event) -> str | None:
    try:
        return event.body.decode("utf-8")
    except UnicodeDecodeError:
        return None


def event_record(event: Event, *, full: bool) -> dict[str, Any]:
    """A stored request as ``--json`` and ``export`` print it (``full``: headers and body too)."""
    record: dict[str, Any] = {
        "id": event.id,
        "received_at": event.received_at,
        "method": event.method,
        "path": event.path,
        "type": event.kind,
        "status": event.status,
        "hmac_verdict": event.verdict,
        "convention": event.convention,
        "transaction_id": event.transaction_id,
        "order_id": event.order_id,
        "merchant_order_id": event.merchant_order_id,
        "success": event.success,
        "pending": event.pending,
        "amount_cents": event.amount_cents,
        "currency": event.currency,
        "problem": event.problem,
        "duplicates": event.duplicates,
        "pan_masked": event.pan_masked,
        "truncated": event.truncated,
    }
    if full:
        text = _body_text(event)
        record.update(
            query=event.query,
            headers=dict(event.headers),
            remote=event.remote,
            hmac=event.hmac,
            last_seen_at=event.last_seen_at,
            body=text if text is not None else None,
            body_base64=None if text is not None else base64.b64encode(event.body).decode(),
        )
    return record


@command(app, "list")
def list_events(
    type_: TypeOpt = None,
    invalid: InvalidOpt = False,
    since: SinceOpt = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="How many, newest first.")] = 50,
) -> None:
    """List received requests, newest first: type, ids, amount, HMAC verdict, answer."""
    rt = runtime()
    events = rt.store().events(
        kind=type_.value if type_ else None, invalid=invalid, since=_since(since), limit=limit
    )
    if rt.json:
        rt.out.json([event_record(e, full=False) for e in events])
        return
    from paymobctl.models import format_amount

    rows = []
    for e in events:
        amount = (
            format_amount(e.amount_cents, e.currency)
            if e.amount_cents is not None and e.currency
            else ""
        )
        state = (
            ""
            if e.success is None
            else ("success" if e.success else ("pending" if e.pending else "declined"))
        )
        rows.append(
            (
                e.id,
                local_time(e.received_at),
                e.method,
                e.kind,
                e.transaction_id or "",
                e.order_id or "",
                amount,
                state,
                e.verdict,
                e.status,
                f"×{e.duplicates + 1}" if e.duplicates else "",
                (e.problem or "")[:50],
            )
        )
    rt.out.table(
        [
            "id",
            "received",
            "method",
            "type",
            "txn",
            "order",
            "amount",
            "result",
            "hmac",
            "answer",
            "dup",
            "problem",
        ],
        rows,
        empty="no events yet: run `paymobctl listen`",
    )


@command(app, "show")
def show(
    event_id: Annotated[int, typer.Argument(help="Event id (see `paymobctl events list`).")],
    secret_file: Annotated[
        str | None,
        typer.Option(
            "--secret-file",
            help="Explain with this HMAC secret instead of the profile's.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Show one request in full, its forwards, and the HMAC explanation."""
    from paymobctl import signing

    rt = runtime()
    event = _event(event_id)
    record = event_record(event, full=True)
    forwards: list[dict[str, Any]] = [
        {
            "target": f.target,
            "attempt": f.attempt,
            "at": f.at,
            "status": f.status,
            "latency_ms": f.latency_ms,
            "error": f.error,
        }
        for f in rt.store().forward_attempts(event.id)
    ]
    record["forwards"] = forwards
    explanation: dict[str, Any] | None = None
    payload = _payload(event)
    if payload is not None:
        secret = _secret(secret_file)
        exp = signing.explain(
            payload.kind, payload.data, secret, payload.hmac, raw_query=payload.raw_query
        )
        explanation = {
            "type": exp.kind.value,
            "valid": exp.valid,
            "convention": exp.convention.value if exp.convention else None,
            "signed_string": exp.message,
            "computed": exp.computed,
            "received": exp.received,
            "diagnoses": [{"code": d.code, "message": d.message} for d in exp.diagnoses],
        }
    record["hmac_explanation"] = explanation
    if rt.json:
        rt.out.json(record)
        return
    out = rt.out
    out.pairs(
        [
            (k, v)
            for k, v in record.items()
            if k not in ("headers", "body", "body_base64", "forwards", "hmac_explanation")
        ]
    )
    out.line("headers:")
    for name, value in event.headers:
        out.line(f"  {name}: {value}")
    out.line("body:")
    text = record["body"]
    if text:
        try:
            from paymobctl.documents import loads_json

            out.line(json.dumps(loads_json(text), indent=2, ensure_ascii=False))
        except ValueError:
            out.line(text)
    elif record["body_base64"]:
        out.line(f"  (binary, base64) {record['body_base64'][:200]}")
    for f in forwards:
        out.line(
            f"forward #{f['attempt']} → {f['target']}: {f['status'] or f['error']} ({f['latency_ms']} ms)"
        )
    if explanation:
        out.pairs(
            [
                ("signed string", explanation["signed_string"]),
                ("computed", explanation["computed"]),
                ("received", explanation["received"] or "<none>"),
                ("result", "VALID" if explanation["valid"] else "INVALID"),
            ]
        )
        for d in explanation["diagnoses"]:
            out.line(f"  - {d['message']}  [{d['code']}]")
    elif event.kind == "UNKNOWN":
        out.line("no HMAC explanation: the request was not a callback")


def _secret(secret_file: str | None) -> str:
    return runtime().hmac_secret(secret_file, purpose="explaining the HMAC")[0]


def _payload(event: Event) -> Any:
    from paymobctl import signing

    return signing.stored_payload(event.kind, event.body, event.query, event.hmac)


@command(app, "replay")
def replay(
    event_id: Annotated[int, typer.Argument(help="Event id to re-deliver.")],
    to: Annotated[
        str | None,
        typer.Option(
            "--to",
            metavar="URL",
            help="Target. Default: the profile's processed (or response) callback URL.",
            show_default=False,
        ),
    ] = None,
    timeout: Annotated[float, typer.Option("--timeout", min=0.1, help="Seconds to wait.")] = 10.0,
    insecure: Annotated[
        bool, typer.Option("--insecure", help="Accept a self-signed certificate.")
    ] = False,
) -> None:
    """Re-deliver a stored request byte for byte: same method, body, query (with hmac), content type."""
    from paymobctl import delivery, simulation
    from paymobctl.config import check_url

    rt = runtime()
    event = _event(event_id)
    simulation.check_replayable(event)
    if to is None:
        to = simulation.replay_target(event, rt.settings())
    try:
        check_url(to)
    except ValueError as exc:
        raise UsageError(f"--to: {exc}") from None
    request, result = simulation.replay(rt.store(), event, to, timeout=timeout, verify=not insecure)
    if rt.json:
        rt.out.json(
            {
                "event": event.id,
                "request": {"method": request.method, "url": request.url},
                "response": result.as_dict(),
            }
        )
    elif result.status is not None:
        line = f"replayed #{event.id} → {request.method} {to}: {result.status} {result.reason} ({result.latency_ms:.1f} ms)"
        (rt.out.ok if result.ok else rt.out.bad)(line)
        if result.excerpt:
            rt.out.line("  " + result.excerpt)
    if event.pan_masked:
        rt.out.warn(
            "this event's body was masked before storage (it held a full card number): the replay "
            "carries the masked body, so its HMAC may no longer match"
        )
    delivery.raise_for(result, timeout=timeout)
    if not result.ok:
        raise typer.Exit(int(ExitCode.FAILED))


@command(app, "export")
def export(
    type_: TypeOpt = None,
    invalid: InvalidOpt = False,
    since: SinceOpt = None,
) -> None:
    """Write every stored request as NDJSON (one JSON object per line, oldest first)."""
    rt = runtime()
    after = 0
    while True:  # in batches, so a large store is streamed rather than loaded at once
        batch = rt.store().events(
            kind=type_.value if type_ else None,
            invalid=invalid,
            since=_since(since),
            limit=1000,
            ascending=True,
            after_id=after,
        )
        for event in batch:
            rt.out.ndjson(event_record(event, full=True))
        if len(batch) < 1000:
            break
        after = batch[-1].id
    rt.out.stdout.flush()
