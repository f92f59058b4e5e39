"""``paymobctl simulate transaction|token|response|history``: signed callbacks that look exactly
like Paymob's, sent to any endpoint."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import typer

from paymobctl.cli.options import command, runtime
from paymobctl.cli.output import Output, local_time
from paymobctl.errors import ExitCode, UsageError
from paymobctl.models import CallbackKind, CardBrand, KeyFlow, Outcome, PaymentSource

app = typer.Typer(
    add_completion=False,
    rich_markup_mode=None,
    help="Send signed callbacks that look exactly like Paymob's to any endpoint.",
    no_args_is_help=True,
)

ToOpt = Annotated[
    str | None,
    typer.Option(
        "--to",
        metavar="URL",
        help="Target. Default: the profile's processed (or response) callback URL, else the "
        "local listener's http://127.0.0.1:8000/api/payments/webhook/.",
        show_default=False,
    ),
]
OutcomeOpt = Annotated[
    Outcome, typer.Option("--outcome", help="What happened to the payment.", case_sensitive=False)
]
SourceOpt = Annotated[
    PaymentSource, typer.Option("--source", help="How it was paid.", case_sensitive=False)
]
BrandOpt = Annotated[
    CardBrand, typer.Option("--brand", help="Card scheme (card source).", case_sensitive=False)
]
AmountOpt = Annotated[
    str | None,
    typer.Option("--amount", help="Amount in major units (150 or 150.50).", show_default=False),
]
CentsOpt = Annotated[
    int | None,
    typer.Option("--amount-cents", help="Amount in minor units (15050).", show_default=False),
]
CurrencyOpt = Annotated[
    str | None,
    typer.Option("--currency", help="Default: the profile's currency.", show_default=False),
]
OrderOpt = Annotated[
    int | None,
    typer.Option("--order-id", help="Paymob order id.", show_default=False, min=1, max=2**63 - 1),
]
MerchantOrderOpt = Annotated[
    str | None,
    typer.Option("--merchant-order-id", help="Your own order reference.", show_default=False),
]
SetOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        metavar="PATH=VALUE",
        help="Change a field before signing, e.g. obj.source_data.pan=1234 or obj.success=false "
        "(VALUE is JSON when it parses, else a string). Repeatable.",
        show_default=False,
    ),
]
KeyFlowOpt = Annotated[
    KeyFlow,
    typer.Option(
        "--key-flow",
        help="How the payment key was made, which shapes payment_key_claims: intention "
        "(unified checkout: next_payment_intention, redirect_url) or legacy (payment_keys API: "
        "exp, pmk_ip).",
        case_sensitive=False,
    ),
]
SeedOpt = Annotated[
    int | None,
    typer.Option("--seed", help="Make ids, times and codes deterministic.", show_default=False),
]
UnsignedOpt = Annotated[bool, typer.Option("--unsigned", help="Send without any hmac.")]
BadHmacOpt = Annotated[bool, typer.Option("--bad-hmac", help="Send a well-formed but wrong hmac.")]
InsecureOpt = Annotated[
    bool, typer.Option("--insecure", help="Accept a self-signed certificate (local HTTPS).")
]
TimeoutOpt = Annotated[
    float, typer.Option("--timeout", help="Seconds to wait for the answer.", min=0.1)
]
PrintOpt = Annotated[
    bool,
    typer.Option(
        "--print",
        help='Print the exact request as one JSON object {"method", "url", "body"} and send nothing.',
    ),
]
ExpectRejectOpt = Annotated[
    bool,
    typer.Option(
        "--expect-reject",
        help="A negative test: exit 0 when the target answers 4xx, 1 otherwise.",
    ),
]
SecretFileOpt = Annotated[
    Path | None,
    typer.Option("--secret-file", help="Read the HMAC secret from this file.", show_default=False),
]
CountOpt = Annotated[
    int | None,
    typer.Option(
        "--count",
        help="Load: send N distinct signed TRANSACTION callbacks (unique ids) and measure.",
        show_default=False,
        min=1,
    ),
]
ConcurrencyOpt = Annotated[
    int | None,
    typer.Option(
        "--concurrency",
        help="Load: connections sending at once (default 10).",
        min=1,
        max=1000,
        show_default=False,
    ),
]
RateOpt = Annotated[
    float | None,
    typer.Option("--rate", help="Load: at most R callbacks per second.", show_default=False),
]
DurationOpt = Annotated[
    float | None,
    typer.Option(
        "--duration",
        help="Load: send for S seconds (with --count: whichever ends first).",
        show_default=False,
    ),
]


def _amount(amount: str | None, cents: int | None, currency: str) -> int:
    from paymobctl.models import parse_amount

    if amount is not None and cents is not None:
        raise UsageError("--amount and --amount-cents are exclusive", hint="give one of them")
    if cents is not None:
        from paymobctl.models import check_cents

        return check_cents(cents, text=f"--amount-cents {cents}")
    if amount is not None:
        return parse_amount(amount, currency, minor_flag="--amount-cents")
    return 10000


def _target(to: str | None, *, response: bool) -> str:
    from paymobctl.config import TextKey, check_url
    from paymobctl.sandbox_profile import DEFAULT_CALLBACK_URL, DEFAULT_RESPONSE_URL

    if to is None:
        settings = runtime().settings()
        key: TextKey = "response_callback_url" if response else "processed_callback_url"
        configured = settings.get(key)
        to = _running_sandbox_target(key) or (
            configured
            if configured is not None
            else (DEFAULT_RESPONSE_URL if response else DEFAULT_CALLBACK_URL)
        )
    try:
        return check_url(to)
    except ValueError as exc:
        raise UsageError(
            f"--to: {exc}",
            hint="give a full URL such as http://127.0.0.1:8000/api/payments/webhook/",
        ) from None


def _running_sandbox_target(key: str) -> str | None:
    """With the sandbox profile and no callback URL configured, a running sandbox's own callback
    URL (where its payments go, e.g. your app after `sandbox callbacks --callback-url`); says so."""
    import httpx

    from paymobctl import outbound
    from paymobctl.config import Source
    from paymobctl.sandbox_runtime import find

    rt = runtime()
    settings = rt.located_settings()
    resolved = settings.values.get(key)
    if not settings.is_sandbox or (resolved is not None and resolved.source is not Source.BUILTIN):
        return None
    running = find()
    if running is None:
        return None
    try:
        with outbound.client() as http:
            urls = outbound.request(
                http, "GET", f"{running.url}/_sandbox/callbacks", timeout=2
            ).json()
    except (httpx.HTTPError, ValueError):
        return None
    name = "response_url" if key == "response_callback_url" else "callback_url"
    url = urls.get(name) if isinstance(urls, dict) else None
    if isinstance(url, str) and url:
        rt.out.info(f"--to: the running sandbox's {name.replace('_', ' ')} {url} ({running.url})")
        return url
    return None


def _secret(secret_file: Path | None, needed: bool) -> str | None:
    return runtime().hmac_secret(secret_file, purpose="signing callbacks")[0] if needed else None


def _short_url(url: str) -> str:
    return re.sub(r"hmac=([0-9a-f]{8})[0-9a-f]{112}([0-9a-f]{8})", r"hmac=\1…\2", url)


def _show(out: Output, prepared: object, result: object) -> None:
    from paymobctl.delivery import Result
    from paymobctl.models import format_amount
    from paymobctl.simulation import Prepared

    assert isinstance(prepared, Prepared) and isinstance(result, Result)
    obj = prepared.obj
    facts = [prepared.kind.value]
    if prepared.outcome:
        facts.append(
            f"{prepared.outcome.value} {prepared.source.value if prepared.source else ''}".strip()
        )
    if isinstance(obj.get("amount_cents"), int) and isinstance(obj.get("currency"), str):
        facts.append(format_amount(obj["amount_cents"], obj["currency"]))
    if prepared.order_id:
        facts.append(f"order {prepared.order_id}")
    if prepared.transaction_id:
        facts.append(f"txn {prepared.transaction_id}")
    facts.append(prepared.signature.value)
    out.line(f"{prepared.request.method} {_short_url(prepared.request.url)}")
    out.line("     " + " · ".join(facts))
    for note in prepared.notes:
        out.info(note)
    if result.status is None:
        return
    line = f"{result.status} {result.reason} · {result.latency_ms:.1f} ms"
    if result.ok:
        out.ok(line)
    else:
        out.bad(line)
    for name, value in result.headers:
        out.line(f"  {name}: {value}")
    if result.excerpt:
        out.line("  " + result.excerpt.replace("\n", "\n  "))


def _simulate(
    what_name: str,
    *,
    to: str | None,
    outcome: Outcome,
    source: PaymentSource,
    brand: CardBrand,
    amount: str | None,
    amount_cents: int | None,
    currency: str | None,
    order_id: int | None,
    merchant_order_id: str | None,
    set_: list[str] | None,
    key_flow: KeyFlow,
    seed: int | None,
    unsigned: bool,
    bad_hmac: bool,
    insecure: bool,
    timeout: float,
    print_: bool,
    secret_file: Path | None,
    expect_reject: bool = False,
    load: tuple[int | None, int | None, float | None, float | None] = (None, None, None, None),
) -> None:
    from paymobctl import callbacks, delivery, diagnosis, outbound, simulation
    from paymobctl.models import check_currency
    from paymobctl.overrides import parse_override
    from paymobctl.sandbox_profile import SANDBOX

    rt = runtime()
    what = simulation.What(what_name)
    if unsigned and bad_hmac:
        raise UsageError("--unsigned and --bad-hmac are exclusive", hint="choose one")
    loading = load[0] is not None or load[3] is not None
    if not loading and (load[1] is not None or load[2] is not None):
        given = "--concurrency" if load[1] is not None else "--rate"
        raise UsageError(
            f"{given} only shapes a load run", hint="add --count N (or --duration S), or drop it"
        )
    refused = unsigned or bad_hmac or print_ or expect_reject
    if loading and (what is not simulation.What.TRANSACTION or refused):
        raise UsageError(
            "--count/--duration send signed TRANSACTION callbacks",
            hint="use `simulate transaction` without --unsigned, --bad-hmac, --print or "
            "--expect-reject",
        )
    if what is simulation.What.TOKEN:
        if source is not PaymentSource.CARD:
            raise UsageError(
                f"--source {source.value}: TOKEN callbacks are for saved cards",
                hint="use --source card",
            )
        if outcome is not Outcome.APPROVED:
            raise UsageError(
                f"--outcome {outcome.value}: a TOKEN follows an approved card payment",
                hint="simulate the transaction with that outcome instead",
            )
        if amount is not None or amount_cents is not None:
            raise UsageError(
                "a TOKEN callback carries no amount", hint="drop --amount/--amount-cents"
            )
    settings = rt.located_settings(announce=to is None)
    rt.announce_mode(settings)
    code = check_currency(currency) if currency else settings.currency
    request = simulation.Request(
        what=what,
        outcome=outcome,
        source=source,
        brand=brand,
        amount_cents=_amount(amount, amount_cents, code),
        currency=code,
        region=settings.region,
        order_id=order_id,
        merchant_order_id=merchant_order_id,
        integration_id=simulation.integration_for(settings, source),
        merchant_id=SANDBOX.merchant_id,
        is_live=settings.is_live,
        overrides=tuple(parse_override(text) for text in set_ or []),
        flow=key_flow,
        seed=seed,
        signature=simulation.Signature.UNSIGNED
        if unsigned
        else (simulation.Signature.BAD if bad_hmac else simulation.Signature.SIGNED),
    )
    url = _target(to, response=what is simulation.What.RESPONSE)
    store = rt.store()
    secret = _secret(secret_file, not unsigned)
    prepared = simulation.prepare(request, url=url, secret=secret, store=store)
    if loading:
        from paymobctl import load as load_engine
        from paymobctl.cli.load_view import run_load

        template = callbacks.Callback(prepared.kind, prepared.request.printable()["body"])
        count, concurrency, rate, duration = load
        assert secret is not None  # loading is never unsigned
        run_load(
            load_engine.Plan(
                url=url,
                secret=secret,
                template=template,
                count=count,
                concurrency=concurrency or 10,
                rate=rate,
                duration=duration,
                timeout=timeout,
                verify=not insecure,
            )
        )
        return
    if print_:
        simulation.record(prepared, store, origin="print", result=None)
        for note in prepared.notes:
            rt.out.info(note)
        import json

        rt.out.stdout.write(
            json.dumps(prepared.request.printable(), separators=(",", ":"), ensure_ascii=False)
            + "\n"
        )
        return
    with outbound.client(verify=not insecure) as client:
        result = simulation.send(prepared, client=client, timeout=timeout, store=store)
        found = None
        if not expect_reject and request.signature is simulation.Signature.SIGNED:
            assert secret is not None
            found = diagnosis.explain_rejection(
                client,
                url if what is not simulation.What.RESPONSE else url.split("?", 1)[0],
                CallbackKind.RESPONSE if what is simulation.What.RESPONSE else prepared.kind,
                secret,
                settings=settings,
                status=result.status,
                answer_text=result.excerpt,
                timeout=timeout,
            )
    if rt.json:
        rt.out.json(
            {
                "request": {
                    **prepared.request.printable(),
                    "headers": dict(prepared.request.headers),
                },
                "callback": {
                    "type": prepared.kind.value,
                    "outcome": prepared.outcome,
                    "source": prepared.source,
                    "order_id": prepared.order_id,
                    "transaction_id": prepared.transaction_id,
                    "hmac": prepared.hmac,
                    "signature": prepared.signature,
                    "notes": list(prepared.notes),
                },
                "response": result.as_dict(),
                **({"diagnosis": found.as_dict()} if found else {}),
            }
        )
    else:
        _show(rt.out, prepared, result)
        if found is not None:
            rt.out.bad(f"diagnosis: {found.text}")
            if found.fix:
                rt.out.line(f"  fix: {found.fix}")
    delivery.raise_for(result, timeout=timeout)
    if expect_reject:
        _expect_rejection(result.status)
        return
    redirected = (
        what is simulation.What.RESPONSE
        and result.status is not None
        and 300 <= result.status < 400
    )
    if not (result.ok or redirected):
        raise typer.Exit(int(ExitCode.FAILED))


def _expect_rejection(status: int | None) -> None:
    """--expect-reject: a 4xx is the pass; anything else fails with a line saying so. A 404/405
    is no pass: nothing at that path/method verified anything (a typo'd URL is no negative test)."""
    from paymobctl.diagnosis import NO_ENDPOINT_STATUSES

    rt = runtime()
    if status in NO_ENDPOINT_STATUSES:
        rt.out.bad(
            f"expected a 4xx rejection from the verification code, got HTTP {status}: no "
            "endpoint at this path/method; check the URL (a typo, the trailing slash)"
        )
        raise typer.Exit(int(ExitCode.FAILED))
    if status is not None and 400 <= status < 500:
        if not rt.json:
            rt.out.ok(f"rejected as expected (HTTP {status})")
        return
    rt.out.bad(f"expected a 4xx rejection, got HTTP {status}: the endpoint accepted or failed")
    raise typer.Exit(int(ExitCode.FAILED))


def _register(what: str, doc: str) -> None:
    """The three simulate commands share every option; one signature serves them all."""

    def simulate_command(
        to: ToOpt = None,
        outcome: OutcomeOpt = Outcome.APPROVED,
        source: SourceOpt = PaymentSource.CARD,
        brand: BrandOpt = CardBrand.MASTERCARD,
        amount: AmountOpt = None,
        amount_cents: CentsOpt = None,
        currency: CurrencyOpt = None,
        order_id: OrderOpt = None,
        merchant_order_id: MerchantOrderOpt = None,
        set_: SetOpt = None,
        key_flow: KeyFlowOpt = KeyFlow.INTENTION,
        seed: SeedOpt = None,
        unsigned: UnsignedOpt = False,
        bad_hmac: BadHmacOpt = False,
        insecure: InsecureOpt = False,
        timeout: TimeoutOpt = 10.0,
        print_: PrintOpt = False,
        secret_file: SecretFileOpt = None,
        expect_reject: ExpectRejectOpt = False,
        count: CountOpt = None,
        concurrency: ConcurrencyOpt = None,
        rate: RateOpt = None,
        duration: DurationOpt = None,
    ) -> None:
        _simulate(
            what,
            to=to,
            outcome=outcome,
            source=source,
            brand=brand,
            amount=amount,
            amount_cents=amount_cents,
            currency=currency,
            order_id=order_id,
            merchant_order_id=merchant_order_id,
            set_=set_,
            key_flow=key_flow,
            seed=seed,
            unsigned=unsigned,
            bad_hmac=bad_hmac,
            insecure=insecure,
            timeout=timeout,
            print_=print_,
            secret_file=secret_file,
            expect_reject=expect_reject,
            load=(count, concurrency, rate, duration),
        )

    simulate_command.__doc__ = doc
    simulate_command.__name__ = what
    command(app, what)(simulate_command)


_register(
    "transaction",
    "POST a TRANSACTION processed callback (JSON body, ?hmac= in the URL). Exit 0 on 2xx.",
)
_register(
    "token",
    "POST a TOKEN (saved card) callback; with --order-id it matches the transaction simulated earlier "
    "for that order (same email, card subtype and last four digits).",
)
_register(
    "response",
    "GET the transaction response callback (the browser redirect, flattened query with hmac). Exit 0 "
    "on 2xx or 3xx (response views usually redirect the payer onwards).",
)


@command(app, "history")
def history(
    limit: Annotated[int, typer.Option("--limit", help="How many, newest first.", min=1)] = 20,
    kind: Annotated[
        CallbackKind | None,
        typer.Option("--type", help="Only this callback type.", case_sensitive=False),
    ] = None,
) -> None:
    """List the callbacks simulate has sent (or printed) and how the targets answered."""
    rt = runtime()
    rows = rt.store().deliveries(limit=limit, kind=kind.value if kind else None)
    if rt.json:
        rt.out.json(
            [
                {
                    "id": d.id,
                    "created_at": d.created_at,
                    "origin": d.origin,
                    "type": d.kind,
                    "outcome": d.outcome,
                    "source": d.source,
                    "method": d.method,
                    "url": d.url,
                    "signature": d.signature,
                    "order_id": d.order_id,
                    "transaction_id": d.transaction_id,
                    "status": d.status,
                    "latency_ms": d.latency_ms,
                    "error": d.error,
                }
                for d in rows
            ]
        )
        return
    rt.out.table(
        ["id", "time", "type", "outcome", "signature", "method", "url", "status", "ms"],
        [
            (
                d.id,
                local_time(d.created_at),
                d.kind,
                d.outcome or "",
                d.signature,
                d.method,
                _short_url(d.url).split("?", 1)[0],
                d.status
                if d.status is not None
                else ("printed" if d.origin == "print" else (d.error or "")[:30]),
                f"{d.latency_ms:.1f}" if d.latency_ms is not None else "",
            )
            for d in rows
        ],
        empty="no callbacks simulated yet: try `paymobctl simulate transaction --print`",
    )
