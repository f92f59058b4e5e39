"""``paymobctl sandbox``: run the local Paymob emulator; inspect and reconfigure a running one."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from paymobctl.cli.options import command, runtime
from paymobctl.cli.output import local_time
from paymobctl.errors import NetworkError, UsageError
from paymobctl.models import CallbackOrder

app = typer.Typer(
    add_completion=False,
    rich_markup_mode=None,
    help="A local emulator of Paymob's API and hosted checkout: the offline default for every command.",
)

UrlOpt = Annotated[
    str | None,
    typer.Option(
        "--url",
        metavar="URL",
        help="The running sandbox (default: the sandbox profile's base URL).",
        show_default=False,
    ),
]


def _check(name: str, value: str | None) -> str | None:
    from paymobctl.emulator.validation import callback_url_error

    if value in (None, ""):
        return value
    problem = callback_url_error(value)
    if problem:
        raise UsageError(
            f"{name} {value!r}: {problem[0]}", hint="give a full http(s) URL, or '' to turn it off"
        )
    return value


@command(app, None, callback=True)
def sandbox(
    host: Annotated[str, typer.Option("--host", help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port (0 picks a free one).")] = 8010,
    callback_url: Annotated[
        str,
        typer.Option(
            "--callback-url",
            metavar="URL",
            help="Transaction processed callback (POST) of every integration.",
        ),
    ] = "http://127.0.0.1:8000/api/payments/webhook/",
    response_url: Annotated[
        str,
        typer.Option(
            "--response-url", metavar="URL", help="Transaction response callback (GET redirect)."
        ),
    ] = "http://127.0.0.1:8000/api/payments/response/",
    state: Annotated[
        Path | None,
        typer.Option(
            "--state",
            help="Keep the sandbox's orders, keys, transactions and cards in this SQLite file.",
            show_default=False,
        ),
    ] = None,
    ready_file: Annotated[
        Path | None,
        typer.Option(
            "--ready-file",
            help="Write the base URL here once listening (for scripts).",
            show_default=False,
        ),
    ] = None,
    retries: Annotated[
        int,
        typer.Option(
            "--retries",
            help="Delivery attempts per callback (non-2xx and timeouts retried).",
            min=1,
            max=20,
        ),
    ] = 5,
    callback_order: Annotated[
        CallbackOrder,
        typer.Option(
            "--callback-order",
            help="Which callback of a saved-card payment goes first: TOKEN (as in a real pair), "
            "TRANSACTION, or a random one each time. Paymob promises no order.",
            case_sensitive=False,
        ),
    ] = CallbackOrder.TOKEN_FIRST,
) -> None:
    """Run the sandbox until Ctrl-C. Its credentials equal the built-in 'sandbox' profile, so other
    commands work against it with no configuration."""
    from paymobctl import sandbox_runtime, serving
    from paymobctl.delivery import RetryPolicy
    from paymobctl.emulator import create_app, credentials_table
    from paymobctl.emulator.notifier import DEFAULT_POLICY
    from paymobctl.emulator.state import StorePersistence
    from paymobctl.sandbox_profile import SANDBOX

    rt = runtime()
    out = rt.out
    if ready_file is not None:
        serving.check_ready_file(ready_file)
    callback = _check("--callback-url", callback_url)
    response = _check("--response-url", response_url)
    persistence = None
    if state is not None:
        from paymobctl.store import Store

        persistence = StorePersistence(Store(state))

    def on_event(category: str, message: str) -> None:
        if rt.json:
            out.ndjson({"time": _now(), "event": category, "message": message})
        else:
            style = (
                "red"
                if category == "callback-failed"
                else ("yellow" if category == "callback-retry" else None)
            )
            out.line(f"{local_time(_now(), clock_only=True)} {category:<12} {message}", style=style)
        out.stdout.flush()

    policy = RetryPolicy(
        attempts=retries,
        first_delay=DEFAULT_POLICY.first_delay,
        factor=DEFAULT_POLICY.factor,
        max_delay=DEFAULT_POLICY.max_delay,
        retry_on=DEFAULT_POLICY.retry_on,
    )
    application = create_app(
        callback_url=callback or None,
        response_url=response or None,
        persistence=persistence,
        on_event=on_event,
        policy=policy,
        callback_order=callback_order,
    )
    sock = serving.bind(host, port, what="the sandbox")
    if not serving.is_loopback(sock):
        out.warn(
            f"--host {host}: the sandbox is reachable from other machines and its control routes "
            "(/_sandbox/…: callbacks, kiosk payments, deliveries) are unauthenticated; bind "
            "127.0.0.1 unless you mean it"
        )
    announced: list[Path] = []

    def ready(url: str) -> None:
        # The runtime file first: once "Ready" (or the ready file) appears, commands find it.
        runtime_file, problem = sandbox_runtime.announce(url)
        announced.append(runtime_file)
        if problem:
            out.warn(
                f"{problem}: other commands will not find this sandbox; set PAYMOB_BASE_URL={url}"
            )
        creds = credentials_table(SANDBOX, url)
        links = {
            "Checkout": f"{url}/api/acceptance/iframes/{SANDBOX.iframe_id}?payment_token=<payment key>",
            "Unified checkout": f"{url}/unifiedcheckout/?publicKey={SANDBOX.public_key}&clientSecret=<client secret>",
            "Processed callback": callback or "(none)",
            "Response callback": response or "(none: the sandbox shows its own result page)",
            "Dashboard": f"{url}/_sandbox/ (this machine only)",
        }
        if rt.json:
            out.ndjson({"event": "ready", "url": url, "credentials": creds, "urls": links})
        else:
            out.line("paymobctl sandbox — a local Paymob emulator (test mode, demo credentials)")
            for label, value in {**creds, **links}.items():
                out.line(f"{label}: {value}")
            if url != SANDBOX.base_url:
                out.line(
                    f"Note: not the default {SANDBOX.base_url}: other commands of the sandbox "
                    f"profile find this one through its runtime file (or PAYMOB_BASE_URL={url})"
                )
            out.ok(f"Ready: sandbox listening on {url} (Ctrl-C to stop)")
        out.stdout.flush()
        if ready_file is not None:
            problem = serving.write_ready_file(ready_file, url)
            if problem:
                out.warn(problem)

    try:
        serving.run(application, sock, on_ready=ready)
    finally:
        for path in announced:
            sandbox_runtime.withdraw(path)
    if not rt.json:
        out.line("sandbox stopped")


def _now() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _admin(url: str | None) -> str:
    from paymobctl.sandbox_profile import SANDBOX

    if url:
        return url.rstrip("/")
    settings = runtime().located_settings(url_option="--url")
    return settings.base_url if settings.is_sandbox else SANDBOX.base_url


def _call(method: str, url: str, body: dict[str, Any] | None = None) -> Any:
    import httpx

    from paymobctl import outbound
    from paymobctl.client import NOT_RUNNING_HINT

    try:
        with outbound.client() as http:
            response = outbound.request(http, method, url, json=body, timeout=10)
    except httpx.HTTPError:
        raise NetworkError(
            f"no sandbox answers at {url.split('/_sandbox', maxsplit=1)[0]}",
            hint=f"{NOT_RUNNING_HINT}; or pass --url",
        ) from None
    if response.status_code >= 400:
        raise UsageError(f"the sandbox refused: {response.text}")
    try:
        return response.json()
    except ValueError:
        raise UsageError(
            f"the sandbox answered something that is not JSON: {response.text[:80]!r}"
        ) from None


@command(app, "callbacks")
def callbacks_cmd(
    url: UrlOpt = None,
    callback_url: Annotated[
        str | None,
        typer.Option(
            "--callback-url",
            metavar="URL",
            help="New processed callback URL ('' turns it off).",
            show_default=False,
        ),
    ] = None,
    response_url: Annotated[
        str | None,
        typer.Option(
            "--response-url",
            metavar="URL",
            help="New response callback URL ('' turns it off).",
            show_default=False,
        ),
    ] = None,
    save: Annotated[
        bool,
        typer.Option(
            "--save",
            help="Also store these URLs as the active profile's callback URLs (simulate and "
            "checklist use them).",
        ),
    ] = False,
) -> None:
    """Show, or change while it runs, the callback URLs of a running sandbox."""
    rt = runtime()
    base = _admin(url)
    if callback_url is None and response_url is None:
        current = _call("GET", f"{base}/_sandbox/callbacks")
    else:
        body = {
            "callback_url": _check("--callback-url", callback_url),
            "response_url": _check("--response-url", response_url),
        }
        current = _call(
            "POST", f"{base}/_sandbox/callbacks", {k: v for k, v in body.items() if v is not None}
        )
    if save:
        _save_callbacks(current)
    if rt.json:
        rt.out.json(current)
    else:
        rt.out.pairs(
            [
                ("Processed callback", current.get("callback_url") or "(none)"),
                ("Response callback", current.get("response_url") or "(none)"),
            ]
        )
    if not save:
        _warn_if_profile_differs(current)


_PROFILE_KEYS = (
    ("callback_url", "processed_callback_url"),
    ("response_url", "response_callback_url"),
)


def _warn_if_profile_differs(current: dict[str, Any]) -> None:
    """simulate and checklist default to the profile's URLs: say when they point elsewhere."""
    rt = runtime()
    settings = rt.settings()
    for sandbox_key, profile_key in _PROFILE_KEYS:
        mine, theirs = settings.get(profile_key), current.get(sandbox_key)
        if theirs and mine != theirs:
            rt.out.warn(
                f"profile {settings.profile!r} has {profile_key} = {mine or '(unset)'}, the "
                f"sandbox sends to {theirs}: pass --save to store the sandbox's URLs in the profile"
            )


def _save_callbacks(current: dict[str, Any]) -> None:
    from paymobctl.config import save_profile
    from paymobctl.paths import config_path

    rt = runtime()
    settings = rt.settings()
    values = {p: current.get(s) or None for s, p in _PROFILE_KEYS}
    save_profile(config_path(rt.options.config), settings.profile, values)
    if not rt.json:
        rt.out.ok(
            f"saved to profile {settings.profile!r} "
            f"({config_path(rt.options.config)}): "
            + ", ".join(f"{k} = {v or '(unset)'}" for k, v in values.items())
        )


@command(app, "deliveries")
def deliveries(
    url: UrlOpt = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="How many, newest first.")] = 20,
    resend: Annotated[
        int | None,
        typer.Option(
            "--resend",
            metavar="ID",
            min=1,
            help="Send delivery ID again (same body and HMAC, same URL), like `stripe events "
            "resend`; it is listed as a new delivery.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """List a running sandbox's callback deliveries and every attempt; --resend ID sends one again."""
    rt = runtime()
    if resend is not None:
        queued = _call("POST", f"{_admin(url)}/_sandbox/deliveries/{resend}/resend")
        if rt.json:
            rt.out.json(queued)
        else:
            rt.out.ok(
                f"delivery {resend} queued again as delivery {queued['id']} "
                "(`paymobctl sandbox deliveries` shows its attempts)"
            )
        return
    items = _call("GET", f"{_admin(url)}/_sandbox/deliveries?limit={limit}")
    if rt.json:
        rt.out.json(items)
        return
    rows = []
    for item in items:
        attempts = item["attempts"]
        last = attempts[-1] if attempts else {}
        rows.append(
            (
                item["id"],
                item["type"],
                item["transaction_id"] or "",
                item["url"],
                item["state"],
                len(attempts),
                last.get("status") or (last.get("error") or "")[:40],
            )
        )
    rt.out.table(
        ["id", "type", "txn", "url", "state", "attempts", "last answer"],
        rows,
        empty="no callbacks delivered yet",
    )


@command(app, "pay")
def pay_cmd(
    checkout_url: Annotated[
        str,
        typer.Argument(
            metavar="CHECKOUT_URL",
            help="The checkout URL your app created (card iframe or unified checkout).",
            show_default=False,
        ),
    ],
    card: Annotated[
        str, typer.Option("--card", metavar="N", help="Card number (see `sandbox cards`).")
    ] = "5123456789012346",
    expiry: Annotated[
        str,
        typer.Option(
            "--expiry", metavar="MM/YY", help="Expiry; on 3-D Secure cards it picks the result."
        ),
    ] = "01/39",
    cvv: Annotated[
        str, typer.Option("--cvv", metavar="CVV", help="CVV (never stored or printed).")
    ] = "123",
    save_card: Annotated[
        bool, typer.Option("--save-card", help="Tick 'save card' (a TOKEN callback follows).")
    ] = False,
    otp: Annotated[str, typer.Option("--otp", metavar="CODE", help="3-D Secure OTP.")] = "1234",
    timeout: Annotated[
        float,
        typer.Option(
            "--timeout",
            metavar="SECONDS",
            min=0.1,
            help="Per page; waiting for the callbacks' delivery gets three times as long.",
        ),
    ] = 10.0,
) -> None:
    """Pay a checkout your app created, as a payer's browser would; print where the browser was
    redirected and which callbacks the sandbox sent. Exit 0 approved, 1 declined or pending."""
    from paymobctl import checkout, outbound

    rt = runtime()
    with outbound.client() as http:
        result = checkout.pay(
            http,
            checkout_url,
            card=checkout.Card(number=card, expiry=expiry, cvv=cvv),
            save_card=save_card,
            otp=otp,
            timeout=timeout,
            wait_callbacks=timeout * 3,
        )
    if rt.json:
        rt.out.json(result)
    else:
        _show_payment(result)
    if not result.approved:
        raise typer.Exit(1)


def _show_payment(result: Any) -> None:
    from paymobctl.checkout import CheckoutResult
    from paymobctl.cli.output import visible

    assert isinstance(result, CheckoutResult)
    out = runtime().out
    verdict = f"transaction {result.transaction_id} {result.outcome.upper()}"
    detail = " · ".join(
        part
        for part in (
            visible(result.message),
            result.txn_response_code,
            "3-D Secure OTP answered" if result.three_ds else "",
            f"{result.flow} checkout",
        )
        if part
    )
    (out.ok if result.approved else out.bad)(f"{verdict} ({detail})")
    landed = (
        f"HTTP {result.landed_status}"
        if result.landed_status is not None
        else f"not loaded: {visible(result.landed_error or '')}"
    )
    out.line(f"browser redirected to {visible(result.redirect_url.split('?', 1)[0])} ({landed})")
    if not result.callbacks:
        out.line("callbacks: none sent (no processed callback URL configured in the sandbox)")
    for sent in result.callbacks:
        answer = f"HTTP {sent.status}" if sent.status is not None else (sent.error or "no answer")
        out.line(
            f"callback {sent.kind} → {visible(sent.url)}: {sent.state}, {answer}, "
            f"{sent.attempts} attempt{'s' if sent.attempts != 1 else ''}"
        )


@command(app, "cards")
def cards_cmd() -> None:
    """List the test cards the sandbox accepts and what each does."""
    from datetime import date

    from paymobctl.emulator import cards

    today = date.today()
    rt = runtime()
    if rt.json:
        rt.out.json(
            [
                {
                    "number": c.number,
                    "brand": c.brand.value,
                    "expiry": c.expiry_shown(today),
                    "behaviour": c.behaviour.value,
                    "note": c.note,
                    "source": c.source,
                }
                for c in cards.TEST_CARDS
            ]
            + [
                {"expiry": r.expiry, "txn_response_code": r.txn_response_code, "message": r.message}
                for r in cards.EXPIRY_RULES.values()
            ]
        )
        return
    rt.out.table(
        ["number", "brand", "expiry", "result", "from"],
        [
            (c.grouped, c.brand.value, c.expiry_shown(today), c.note, c.source)
            for c in cards.TEST_CARDS
        ],
    )
    rt.out.line(
        f"OTP {cards.OTP}; wallet {cards.WALLET_NUMBER} (MPIN {cards.WALLET_MPIN}, OTP {cards.WALLET_OTP})."
    )
    rt.out.line(
        "On 3-D Secure cards the expiry picks the result: 01/39 approved, "
        + ", ".join(f"{r.expiry} {r.message.lower()}" for r in cards.EXPIRY_RULES.values())
        + "; any past expiry is declined as an expired card."
    )
