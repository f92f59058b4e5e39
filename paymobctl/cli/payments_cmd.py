"""The main job: ``deposit``, ``pay``, ``status``, ``refund``, ``void``, ``capture``, ``cards``,
``deposits`` (the offline ``demo`` is ``demo_cmd``)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated, Any

import typer

from paymobctl.cli.options import choices, command, runtime
from paymobctl.cli.output import local_time
from paymobctl.errors import UsageError
from paymobctl.models import DepositStatus

if TYPE_CHECKING:
    from paymobctl.client import PaymobClient
    from paymobctl.config import Settings
    from paymobctl.errors import PaymobctlError
    from paymobctl.payments import PaymentOutcome
    from paymobctl.store import Deposit

deposit_app = typer.Typer(add_completion=False, rich_markup_mode=None)
pay_app = typer.Typer(add_completion=False, rich_markup_mode=None)
status_app = typer.Typer(add_completion=False, rich_markup_mode=None)
refund_app = typer.Typer(add_completion=False, rich_markup_mode=None)
void_app = typer.Typer(add_completion=False, rich_markup_mode=None)
capture_app = typer.Typer(add_completion=False, rich_markup_mode=None)
cards_app = typer.Typer(
    add_completion=False,
    rich_markup_mode=None,
    help="Saved cards (from TOKEN webhooks): list, remove.",
    no_args_is_help=True,
)
deposits_app = typer.Typer(
    add_completion=False,
    rich_markup_mode=None,
    help="Deposits recorded by `deposit` and `pay`: list, show.",
    no_args_is_help=True,
)

CurrencyOpt = Annotated[
    str | None,
    typer.Option("--currency", help="Default: the profile's currency.", show_default=False),
]
EmailOpt = Annotated[
    str | None, typer.Option("--email", help="Payer's email (billing data).", show_default=False)
]
FirstOpt = Annotated[
    str | None, typer.Option("--first-name", help="Payer's first name.", show_default=False)
]
LastOpt = Annotated[
    str | None, typer.Option("--last-name", help="Payer's last name.", show_default=False)
]
PhoneOpt = Annotated[
    str | None, typer.Option("--phone", help="Payer's phone number.", show_default=False)
]
MerchantOrderOpt = Annotated[
    str | None,
    typer.Option(
        "--merchant-order-id", help="Your own unique order reference.", show_default=False
    ),
]


AllowMixedOpt = Annotated[
    bool,
    typer.Option(
        "--allow-mixed-mode",
        help="Run even when PAYMOB_* keys in the environment or .env are of the other mode "
        "(live keys in a test profile, or the reverse).",
    ),
]


@contextlib.contextmanager
def paymob(*, allow_mixed: bool = False) -> Iterator[tuple[Settings, PaymobClient]]:
    """The located settings (mode checked and announced) and a Paymob client for one command."""
    from paymobctl import outbound
    from paymobctl.payments import client_for

    rt = runtime()
    settings = rt.located_settings()
    rt.refuse_mixed_mode(settings, allowed=allow_mixed)
    rt.announce_mode(settings)
    with outbound.client() as http:
        client = client_for(settings, http)
        client.progress = rt.out.waiting
        yield settings, client


def _cents(amount: str, cents: bool, currency: str) -> int:
    from paymobctl.models import check_cents, lenient_int, parse_amount

    if cents:
        number = lenient_int(amount.strip(), max_digits=15)
        if number is None:
            raise UsageError(
                f"invalid amount {amount!r} with --cents",
                hint="give a positive whole number of minor units",
            )
        return check_cents(number, text=amount)
    return parse_amount(amount, currency, minor_flag="--cents")


def money(cents: int | None, currency: str | None) -> str:
    """An amount as the commands show it (``150.50 EGP``); empty when either part is missing."""
    from paymobctl.models import format_amount

    if cents is None or not currency:
        return ""
    return format_amount(cents, currency)


def deposit_json(deposit: Deposit) -> dict[str, Any]:
    """A deposit as ``--json`` prints it."""
    from dataclasses import asdict

    return asdict(deposit)


def _show_deposit(deposit: Deposit) -> None:
    out = runtime().out
    out.pairs(
        [
            ("deposit", deposit.id),
            (
                "order",
                deposit.order_id
                if deposit.order_id is not None
                else "— (learnt from the webhook or the inquiry)",
            ),
            ("amount", money(deposit.amount_cents, deposit.currency)),
            ("status", deposit.status),
            ("flow", deposit.flow),
            ("checkout URL", deposit.checkout_url or "—"),
            ("created", local_time(deposit.created_at)),
            ("expires", local_time(deposit.expires_at) or "—"),
            *(
                [("merchant order id", deposit.merchant_order_id)]
                if deposit.merchant_order_id
                else []
            ),
            *([("transaction", deposit.transaction_id)] if deposit.transaction_id else []),
            *([("reason", deposit.decline_reason)] if deposit.decline_reason else []),
            *(
                [("refunded", money(deposit.refunded_cents, deposit.currency))]
                if deposit.refunded_cents
                else []
            ),
            ("profile", f"{deposit.profile} ({deposit.mode})"),
        ]
    )


def _reported(error: PaymobctlError) -> PaymobctlError:
    """``error`` marked as shown: the command rendered it; main only sets its exit code."""
    error.reported = True
    return error


def _finish_wait(outcome: PaymentOutcome, deposit_id: int) -> None:
    from paymobctl.errors import WaitTimedOut
    from paymobctl.payments import outcome_error

    rt = runtime()
    store = rt.store()
    deposit = store.deposit(deposit_id)
    assert deposit is not None
    if rt.json:  # the last NDJSON line of `deposit --wait --json`
        rt.out.ndjson(
            {
                "deposit": deposit_json(deposit),
                "outcome": outcome.status,
                "transaction_id": outcome.transaction_id,
                "reason": outcome.reason,
                "learnt_from": outcome.source or None,
            }
        )
    error = outcome_error(outcome, deposit.order_id)
    if error is None:
        count, total = store.paid_total(deposit.profile, deposit.currency)
        if not rt.json:
            rt.out.ok(
                f"✓ Paid: {money(deposit.amount_cents, deposit.currency)} (transaction "
                f"{outcome.transaction_id}, from the {outcome.source})"
            )
            rt.out.line(
                f"Total paid with profile {deposit.profile}: {count} deposit(s), "
                f"{money(total, deposit.currency)}"
            )
        return
    if not rt.json and isinstance(error, WaitTimedOut):
        rt.out.bad(f"… {error.message}")
        rt.out.info(error.hint or "")
    elif not rt.json:
        rt.out.bad(f"✗ {error.message}")
    raise _reported(error)


def _wait(client: PaymobClient, deposit_id: int, interval: float, timeout: float) -> None:
    from paymobctl.payments import Tick, wait_for_payment

    rt = runtime()
    out = rt.out
    client.progress = None  # one live display at a time: the wait's own status line
    last: list[str] = [""]
    status: Any = None
    if out.err_tty and not rt.json:
        status = out.err_console.status(out.spinner_text("waiting for the payment…"))
        status.start()

    def tick(item: Tick) -> None:
        minutes, seconds = divmod(int(item.elapsed), 60)
        text = f"{minutes}:{seconds:02d} elapsed · {item.state}"
        if status is not None:
            status.update(out.spinner_text(f"waiting for the payment · {text}"))
        elif rt.json and item.state != last[0]:
            out.ndjson({"status": {"elapsed": round(item.elapsed, 1), "state": item.state}})
            out.stdout.flush()
        elif item.state != last[0]:
            out.info(text)
        last[0] = item.state

    try:
        outcome = wait_for_payment(
            client, rt.store(), deposit_id, interval=interval, timeout=timeout, on_tick=tick
        )
    finally:
        if status is not None:
            status.stop()
    _finish_wait(outcome, deposit_id)


def _open_in_browser(url: str) -> None:
    """``--open``: a browser when one can be started, else the URL to open by hand (stderr)."""
    import webbrowser

    try:
        opened = webbrowser.open(url)
    except webbrowser.Error:
        opened = False
    if not opened:
        runtime().out.warn(f"no browser could be opened (--open); open this URL by hand: {url}")


@command(deposit_app, "deposit")
def deposit(
    amount: Annotated[
        str, typer.Argument(help="Amount in major units (150 or 150.50); minor units with --cents.")
    ],
    cents: Annotated[
        bool, typer.Option("--cents", help="AMOUNT is in minor units (piasters, halalas…).")
    ] = False,
    currency: CurrencyOpt = None,
    merchant_order_id: MerchantOrderOpt = None,
    email: EmailOpt = None,
    first_name: FirstOpt = None,
    last_name: LastOpt = None,
    phone: PhoneOpt = None,
    save_card: Annotated[
        bool,
        typer.Option(
            "--save-card/--no-save-card",
            help="Send tokenization as the guide's backend does. Whether a card is saved depends on "
            "the integration (card saving enabled by Paymob) and on the payer ticking 'save card'; "
            "the TOKEN webhook then arrives.",
        ),
    ] = True,
    flow: Annotated[
        str,
        typer.Option(
            "--flow",
            help="legacy (iframe) or intention (unified checkout).",
            autocompletion=choices("legacy", "intention"),
        ),
    ] = "legacy",
    expiration: Annotated[
        int,
        typer.Option(
            "--expiration",
            help="Seconds the checkout stays valid (60 s to one year).",
            min=60,
            max=365 * 24 * 3600,
        ),
    ] = 3600,
    open_: Annotated[bool, typer.Option("--open", help="Open the checkout in a browser.")] = False,
    wait: Annotated[
        bool, typer.Option("--wait", help="Poll until paid, declined or --timeout.")
    ] = False,
    interval: Annotated[
        float, typer.Option("--interval", help="Seconds between Paymob inquiries.", min=0.5)
    ] = 5.0,
    timeout: Annotated[
        float, typer.Option("--timeout", help="Seconds to wait with --wait.", min=1)
    ] = 600.0,
    allow_mixed: AllowMixedOpt = False,
) -> None:
    """Create a deposit: auth → order → payment key → checkout URL; recorded as pending.

    With --wait: exit 0 paid, 1 declined, 4 timed out. --wait --json prints NDJSON: the deposit
    (with its checkout URL) at once, then status lines, then the outcome."""
    from paymobctl.models import check_currency
    from paymobctl.payments import DepositRequest, create_deposit, default_billing

    rt = runtime()
    with paymob(allow_mixed=allow_mixed) as (settings, client):
        code = check_currency(currency) if currency else settings.currency
        request = DepositRequest(
            amount_cents=_cents(amount, cents, code),
            currency=code,
            billing=default_billing(
                settings, email=email, first_name=first_name, last_name=last_name, phone=phone
            ),
            merchant_order_id=merchant_order_id,
            save_card=save_card,
            flow=flow,
            expiration=expiration,
        )
        urls = None
        if flow == "intention":
            from paymobctl.payments import intention_urls
            from paymobctl.runfile import read_listener

            urls = intention_urls(settings, read_listener())
            if urls.note:
                rt.out.info(urls.note)
        created = create_deposit(client, settings, rt.store(), request, urls)
        if open_:
            _open_in_browser(created.checkout_url)
        if rt.json and not wait:
            rt.out.json(deposit_json(created))
        elif rt.json:  # NDJSON: the deposit at once (a script can pay it), then status lines
            rt.out.ndjson({"deposit": deposit_json(created)})
            rt.out.stdout.flush()
        else:
            _show_deposit(created)
            rt.out.line(f"Open the checkout URL to pay{'; waiting…' if wait else ''}")
        if wait:
            _wait(client, created.id, interval, timeout)


@command(pay_app, "pay")
def pay(
    amount: Annotated[str, typer.Argument(help="Amount in major units; minor units with --cents.")],
    card: Annotated[
        int, typer.Option("--card", help="Saved card id (see `paymobctl cards list`).")
    ],
    cents: Annotated[bool, typer.Option("--cents", help="AMOUNT is in minor units.")] = False,
    currency: CurrencyOpt = None,
    merchant_order_id: MerchantOrderOpt = None,
    email: EmailOpt = None,
    first_name: FirstOpt = None,
    last_name: LastOpt = None,
    phone: PhoneOpt = None,
    allow_mixed: AllowMixedOpt = False,
) -> None:
    """Pay with a saved card: payment key on the MOTO integration, then pay with the card token.
    Exit 0 approved, 1 declined; a 3-D Secure redirection URL is printed when Paymob returns one."""
    from paymobctl.models import check_currency
    from paymobctl.payments import (
        default_billing,
        outcome_error,
        pay_with_saved_card,
        usable_card,
    )

    rt = runtime()
    store = rt.store()
    saved = usable_card(store, card)
    with paymob(allow_mixed=allow_mixed) as (settings, client):
        code = check_currency(currency) if currency else settings.currency
        billing = default_billing(
            settings,
            email=email or saved.email,
            first_name=first_name,
            last_name=last_name,
            phone=phone,
        )
        result = pay_with_saved_card(
            client,
            settings,
            store,
            card=saved,
            amount_cents=_cents(amount, cents, code),
            currency=code,
            billing=billing,
            merchant_order_id=merchant_order_id,
        )
    outcome = result.outcome
    if rt.json:
        rt.out.json(
            {
                "deposit": deposit_json(result.deposit),
                "outcome": outcome.status,
                "transaction_id": outcome.transaction_id,
                "reason": outcome.reason,
                "redirection_url": result.redirection_url,
            }
        )
    elif outcome.status == "paid":
        rt.out.ok(
            f"✓ Paid {money(result.deposit.amount_cents, result.deposit.currency)} with "
            f"{saved.card_subtype} {saved.masked_pan} (transaction {outcome.transaction_id}, "
            f"order {result.deposit.order_id})"
        )
    elif result.redirection_url:
        rt.out.line(f"3-D Secure needed: send the payer to {result.redirection_url}")
        rt.out.info(
            f"then `paymobctl status {result.deposit.order_id}` (or a running `paymobctl listen`) tells "
            "the result"
        )
    error = outcome_error(outcome, result.deposit.order_id)
    if outcome.status == "declined" and error is not None:
        if not rt.json:
            rt.out.bad(f"✗ {error.message}")
        raise _reported(error)


@command(status_app, "status")
def status(
    reference: Annotated[
        str, typer.Argument(help="Order id, merchant order id or transaction id.")
    ],
    by: Annotated[
        str,
        typer.Option(
            "--by",
            help="auto, order, merchant-order or transaction.",
            autocompletion=choices("auto", "order", "merchant-order", "transaction"),
        ),
    ] = "auto",
) -> None:
    """Ask Paymob about a payment (transaction inquiry); updates the matching deposit in the store."""
    from paymobctl.transactions import lookup_status, record_status, transaction_facts

    rt = runtime()
    if by not in ("auto", "order", "merchant-order", "transaction"):
        raise UsageError(
            f"unknown --by {by!r}", hint="use auto, order, merchant-order or transaction"
        )
    store = rt.store()
    with paymob() as (_, client):
        found = lookup_status(client, store, reference, by)
    obj = found.transaction
    if found.note:
        rt.out.warn(found.note)
    if obj is None:
        if rt.json:
            rt.out.json({"reference": reference, "transaction": None})
        else:
            rt.out.line(
                f"{reference}: the order exists but has no transaction yet (the payer has not paid)"
            )
        return
    warning = record_status(store, obj)
    if warning is not None:
        rt.out.warn(warning)
    if rt.json:
        rt.out.json(obj)
        return
    rt.out.pairs(transaction_facts(obj))


def _child_result(child: dict[str, Any], verb: str) -> None:
    from paymobctl.errors import VerificationFailed
    from paymobctl.models import lenient_int
    from paymobctl.payments import transaction_outcome

    rt = runtime()
    if rt.json:
        rt.out.json(child)
        return
    outcome = transaction_outcome(child)
    amount = child.get("amount_cents")
    currency = str(child.get("currency") or "")
    cents = lenient_int(amount, minimum=0)
    shown = money(cents, currency) if cents is not None and currency else str(amount)
    if outcome.status == "paid":
        rt.out.ok(
            f"✓ {verb} {shown}: transaction {child.get('id')} (parent {child.get('parent_transaction')})"
        )
    else:
        error = VerificationFailed(f"{verb} failed: {outcome.reason}")
        rt.out.bad(f"✗ {error.message}")
        raise _reported(error)


@command(refund_app, "refund")
def refund(
    transaction: Annotated[int, typer.Argument(help="The transaction id to refund.")],
    amount: Annotated[
        str | None,
        typer.Option("--amount", help="Major units; default: what is left.", show_default=False),
    ] = None,
    allow_mixed: AllowMixedOpt = False,
) -> None:
    """Refund a transaction (partially with --amount)."""
    from paymobctl.transactions import amount_left

    with paymob(allow_mixed=allow_mixed) as (_, client):
        cents = amount_left(client, transaction, amount, "refunded_amount_cents", "refund")
        child = client.refund(transaction_id=transaction, amount_cents=cents)
    _child_result(child, "Refunded")


@command(void_app, "void")
def void(
    transaction: Annotated[
        int, typer.Argument(help="The transaction id to void (same day, card).")
    ],
    allow_mixed: AllowMixedOpt = False,
) -> None:
    """Void a card transaction before settlement."""
    with paymob(allow_mixed=allow_mixed) as (_, client):
        child = client.void(transaction_id=transaction)
    _child_result(child, "Voided")


@command(capture_app, "capture")
def capture(
    transaction: Annotated[int, typer.Argument(help="The authorisation to capture.")],
    amount: Annotated[
        str | None,
        typer.Option(
            "--amount", help="Major units; default: all that is left.", show_default=False
        ),
    ] = None,
    allow_mixed: AllowMixedOpt = False,
) -> None:
    """Capture an authorisation (auth/capture integrations)."""
    from paymobctl.transactions import amount_left

    with paymob(allow_mixed=allow_mixed) as (_, client):
        cents = amount_left(client, transaction, amount, "captured_amount", "capture")
        child = client.capture(transaction_id=transaction, amount_cents=cents)
    _child_result(child, "Captured")


@command(cards_app, "list")
def cards_list() -> None:
    """List saved cards (from verified TOKEN webhooks). Tokens are shown shortened."""
    rt = runtime()
    cards = rt.store().payment_methods()
    simulated = {c.id for c in cards if rt.store().is_simulated_token(c.token)}
    if rt.json:
        rt.out.json(
            [
                {
                    "id": c.id,
                    "masked_pan": c.masked_pan,
                    "card_subtype": c.card_subtype,
                    "email": c.email,
                    "order_id": c.order_id,
                    "token": c.token,
                    "created_at": c.created_at,
                    "simulated": c.id in simulated,
                }
                for c in cards
            ]
        )
        return
    rt.out.table(
        ["id", "card", "masked pan", "email", "order", "token", "saved"],
        [
            (
                c.id,
                c.card_subtype,
                c.masked_pan,
                c.email,
                c.order_id,
                "simulated" if c.id in simulated else f"{c.token[:8]}…",
                local_time(c.created_at),
            )
            for c in cards
        ],
        empty="no saved cards: pay with 'save card' ticked while `paymobctl listen` runs",
    )


@command(cards_app, "remove")
def cards_remove(card_id: Annotated[int, typer.Argument(help="Card id.")]) -> None:
    """Forget a saved card locally."""
    rt = runtime()
    if not rt.store().remove_payment_method(card_id):
        raise UsageError(f"no saved card {card_id}", hint="see `paymobctl cards list`")
    if rt.json:
        rt.out.json({"removed": card_id})
    else:
        rt.out.ok(f"removed card {card_id}")


@command(deposits_app, "list")
def deposits_list(
    status_: Annotated[
        str | None,
        typer.Option(
            "--status",
            help="pending, paid, declined, refunded, voided, failed.",
            show_default=False,
            autocompletion=choices("pending", "paid", "declined", "refunded", "voided", "failed"),
        ),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="How many, newest first.")] = 50,
) -> None:
    """List deposits and saved-card payments, newest first."""
    rt = runtime()
    statuses = ("pending", "paid", "declined", "refunded", "voided", "failed")
    if status_ is not None and status_ not in statuses:
        raise UsageError(f"unknown --status {status_!r}", hint="use one of: " + ", ".join(statuses))
    wanted = DepositStatus(status_) if status_ is not None else None
    deposits = rt.store().deposits(status=wanted, limit=limit)
    if rt.json:
        rt.out.json([deposit_json(d) for d in deposits])
        return
    rt.out.table(
        ["id", "created", "profile", "flow", "order", "amount", "status", "transaction"],
        [
            (
                d.id,
                local_time(d.created_at),
                d.profile,
                d.flow,
                d.order_id,
                money(d.amount_cents, d.currency),
                d.status,
                d.transaction_id or "",
            )
            for d in deposits
        ],
        empty="no deposits yet: `paymobctl deposit 100`",
    )


@command(deposits_app, "show")
def deposits_show(deposit_id: Annotated[int, typer.Argument(help="Deposit id.")]) -> None:
    """Show one deposit."""
    rt = runtime()
    found = rt.store().deposit(deposit_id)
    if found is None:
        raise UsageError(f"no deposit {deposit_id}", hint="see `paymobctl deposits list`")
    if rt.json:
        rt.out.json(deposit_json(found))
        return
    _show_deposit(found)
