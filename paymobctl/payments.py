"""Deposits and saved-card payments: the main job, as plain functions the CLI and the demo call.

A deposit is the guide's flow: create the checkout, record it (pending), then learn the outcome
from the store (updated by ``paymobctl listen`` when the webhook arrives) or from Paymob's
transaction inquiry, whichever knows first.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from paymobctl.client import Billing, Checkout, PaymobClient
from paymobctl.errors import (
    ApiError,
    ConfigError,
    NetworkError,
    PaymobctlError,
    UsageError,
    VerificationFailed,
    WaitTimedOut,
)
from paymobctl.models import (
    DepositStatus,
    PaymentStatus,
    TransactionChild,
    format_amount,
    is_local,
    lenient_int,
)

if TYPE_CHECKING:
    import httpx

    from paymobctl.config import Settings
    from paymobctl.runfile import ListenerRecord
    from paymobctl.store import Deposit, PaymentMethod, Store


def client_for(settings: Settings, http: httpx.Client) -> PaymobClient:
    """A Paymob client for the profile's base URL and keys over ``http``."""
    public = settings.get("public_key")
    return PaymobClient(
        http,
        base_url=settings.base_url,
        api_key=settings.secret("api_key"),
        secret_key=settings.secret("secret_key"),
        public_key=public if isinstance(public, str) else None,
    )


FLOWS = ("legacy", "intention")


def check_flow(flow: str) -> str:
    """``flow`` when it is a deposit flow (legacy or intention), else a usage error."""
    if flow not in FLOWS:
        raise UsageError(f"unknown --flow {flow!r}", hint="use legacy or intention")
    return flow


@dataclass(frozen=True)
class DepositRequest:
    """What ``deposit`` asks for: amount, payer, flow and how long the checkout stays valid."""

    amount_cents: int
    currency: str
    billing: Billing
    merchant_order_id: str | None = None
    save_card: bool = True
    flow: str = "legacy"  # legacy | intention
    expiration: int = 3600

    def __post_init__(self) -> None:
        check_flow(self.flow)


@dataclass(frozen=True)
class IntentionUrls:
    """The callback URLs an intention is created with, and a note on where they came from."""

    notification_url: str | None  # None: the integration's callback URLs apply
    redirection_url: str | None
    note: str | None = None  # what to tell the user about where they came from


def intention_urls(settings: Settings, listener: ListenerRecord | None) -> IntentionUrls:
    """An intention's ``notification_url``/``redirection_url``: the configured ones (flag, env,
    .env, profile), else those of the running ``paymobctl listen`` (its public tunnel URL; its
    local URL only when the Paymob server is on this machine, e.g. the sandbox).

    Paymob's Intention API: ``notification_url``/``redirection_url`` override the integration's
    processed/response callback URLs for card payments (docs/paymob.md §5.1);
    whether TOKEN callbacks follow them is disputed between doc versions (§5.4)."""
    explicit = {"flag", "env", ".env", "profile"}

    def configured(key: str) -> str | None:
        found = settings.values.get(key)
        return str(found.value) if found and found.source.value in explicit else None

    notification = configured("processed_callback_url")
    redirection = configured("response_callback_url")
    if listener is None or (notification and redirection):
        return IntentionUrls(notification, redirection)
    base = listener.public_url
    where = f"the running listener's tunnel ({listener.public_url})"
    if base is None and is_local(urlsplit(settings.base_url).hostname or ""):
        base, where = listener.local_url, f"the running listener ({listener.local_url})"
    if base is None:
        return IntentionUrls(
            notification,
            redirection,
            f"a listener is running at {listener.local_url} but without a public URL, which "
            f"{settings.base_url} cannot reach: the integration's callback URLs apply "
            "(start it with --tunnel ngrok)",
        )
    notification = notification or f"{base}{listener.webhook_path}"
    redirection = redirection or f"{base}{listener.response_path}"
    return IntentionUrls(
        notification,
        redirection,
        f"notification_url {notification} and redirection_url {redirection}: from {where}, "
        "since none are configured",
    )


def create_deposit(
    client: PaymobClient,
    settings: Settings,
    store: Store,
    request: DepositRequest,
    urls: IntentionUrls | None = None,
) -> Deposit:
    """Create the checkout and record the deposit as pending (``urls``: the intention flow's
    callback URLs, by default the configured ones)."""
    integration = settings.require_int("integration_id", purpose="a deposit")
    expires = (datetime.now(UTC) + timedelta(seconds=request.expiration)).isoformat(
        timespec="seconds"
    )

    def record(order_id: int | None, checkout: Checkout | None = None) -> Deposit:
        return store.create_deposit(
            profile=settings.profile,
            mode=settings.mode.value,
            flow=request.flow,
            base_url=client.base_url,
            order_id=order_id,
            merchant_order_id=checkout.merchant_order_id if checkout else request.merchant_order_id,
            intention_id=checkout.intention_id if checkout else None,
            amount_cents=request.amount_cents,
            currency=request.currency,
            checkout_url=checkout.url if checkout else "",
            expires_at=expires,
            save_card=request.save_card,
        )

    checkout: Checkout
    if request.flow == "intention":
        settings.require("secret_key", "public_key", purpose="the Intention flow")
        chosen = urls or intention_urls(settings, None)
        checkout = client.intention_checkout(
            amount_cents=request.amount_cents,
            currency=request.currency,
            integration_id=integration,
            billing=request.billing,
            # Always a reference: it comes back as merchant_order_id in callbacks and inquiries,
            # which is how a deposit whose order id the answer lacked finds its order later.
            merchant_order_id=request.merchant_order_id or new_reference(),
            notification_url=chosen.notification_url,
            redirection_url=chosen.redirection_url,
            expiration=request.expiration,
        )
    else:  # legacy (DepositRequest checked the flow)
        settings.require("api_key", purpose="a deposit")
        iframe = settings.require_int("iframe_id", purpose="a deposit (the hosted card iframe)")
        # The order exists on the server before its payment key does: record it at once, so a
        # failing payment key or iframe leaves a failed deposit, not an unknown order.
        recorded: list[Deposit] = []
        try:
            checkout = client.legacy_checkout(
                amount_cents=request.amount_cents,
                currency=request.currency,
                integration_id=integration,
                iframe_id=iframe,
                billing=request.billing,
                merchant_order_id=request.merchant_order_id,
                tokenization=request.save_card,
                expiration=request.expiration,
                on_order=lambda order_id: recorded.append(record(order_id)),
            )
        except PaymobctlError as exc:
            fail_recorded(store, recorded, exc)
            raise
        return store.set_checkout_url(recorded[0].id, checkout.url)
    deposit = record(checkout.order_id, checkout)
    if not deposit.checkout_url:
        raise ApiError(
            f"creating the intention: unexpected answer from {client.base_url}, no "
            f"client_secret, so no checkout URL; the intention it accepted is recorded as "
            f"deposit {deposit.id} (reference {deposit.merchant_order_id})",
            hint="is base_url/region pointing at Paymob (or `paymobctl sandbox`)? "
            f"`paymobctl deposits show {deposit.id}` keeps the reference",
        )
    return deposit


def fail_recorded(store: Store, recorded: list[Deposit], exc: PaymobctlError) -> None:
    """A step after the order's creation failed: keep the order as a failed deposit, and say so."""
    if recorded:
        failed = store.apply_deposit_change(recorded[0].id, creation_failed(exc.message))
        exc.message += f" (order {failed.order_id} is recorded as failed deposit {failed.id})"


def new_reference() -> str:
    """A unique merchant reference for a deposit created without one."""
    import secrets

    return f"paymobctl-{secrets.token_hex(6)}"


def inquire(client: PaymobClient, store: Store, deposit: Deposit) -> dict[str, Any] | None:
    """Paymob's latest transaction for a deposit: by order id, or by its reference while the
    order id is unknown (an intention), learning the order id from the answer when the signed
    amount and currency match the deposit."""
    if deposit.order_id is not None:
        return client.inquiry(order_id=deposit.order_id)
    if not deposit.merchant_order_id:
        return None
    found = client.inquiry(merchant_order_id=deposit.merchant_order_id)
    if found is None:
        return None
    order_id = order_of(found)
    if (
        not isinstance(order_id, int)
        or isinstance(order_id, bool)
        or _amount_differs(found, deposit)
    ):
        return None  # not this deposit's payment: keep waiting
    store.link_deposit_order(deposit.id, order_id)
    return found


# --- deposit state: the one owner --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DepositFacts:
    """What the rules need of a deposit (the store reads these four columns on listen's path)."""

    id: int
    amount_cents: int
    currency: str
    refunded_cents: int


@dataclass(frozen=True, slots=True)
class PaymentFacts:
    """A transaction's outcome: a verified webhook's signed fields, or Paymob's own answer."""

    success: bool
    transaction_id: int | None
    amount_cents: int | None = None
    currency: str | None = None
    child: TransactionChild | None = None  # a refund, void or capture of a payment
    reason: str | None = None  # why it was declined (data.message)


@dataclass(frozen=True, slots=True)
class DepositChange:
    """One guarded update: applied only while the deposit's status is one of ``allowed``."""

    status: DepositStatus  # a refund: REFUNDED once the refunds reach the amount
    allowed: tuple[DepositStatus, ...]
    effect: str  # what listen's line says when it applied
    transaction_id: int | None = None
    reason: str | None = None
    refund_cents: int = 0


@dataclass(frozen=True, slots=True)
class Mismatch:
    """A payment whose amount or currency does not fit the deposit: the deposit stays as it is."""

    problem: str  # stored in the event's problem
    effect: str  # listen's line


def deposit_change(deposit: DepositFacts, payment: PaymentFacts) -> DepositChange | Mismatch | None:
    """The one owner of a deposit's status: what a payment does to it (``listen``'s receiver,
    ``deposit --wait``/``status`` inquiries and saved-card payments all apply this).

    A payment must carry the deposit's amount and currency; a void or capture at most its
    amount, a successful refund at most what is left. Paid comes from pending or declined,
    declined only from pending, never downgrading a paid deposit; refunds add up to refunded.
    """
    child, amount, currency = payment.child, payment.amount_cents, deposit.currency
    if child == TransactionChild.REVERSED:
        return None  # a payment already voided or refunded: nothing to mark paid
    expected, left, number = (
        deposit.amount_cents,
        deposit.amount_cents - deposit.refunded_cents,
        deposit.id,
    )
    mismatch = None
    if payment.currency != currency:
        mismatch = f"signed currency {payment.currency!r}, deposit {number} is in {currency}"
    elif amount is None:
        mismatch = "no signed amount"
    elif child is None and amount != expected:
        mismatch = f"signed {format_amount(amount, currency)}, deposit {number} is {format_amount(expected, currency)}"
    elif child in (TransactionChild.VOID, TransactionChild.CAPTURE) and amount > expected:
        mismatch = f"{child} of {format_amount(amount, currency)} exceeds deposit {number}'s {format_amount(expected, currency)}"
    elif child == TransactionChild.REFUND and payment.success and amount > left:
        mismatch = (
            f"refund of {format_amount(amount, currency)} exceeds what deposit {number} has left"
            f" ({format_amount(left, currency)})"
        )
    if mismatch is not None:
        return Mismatch(
            f"amount mismatch: {mismatch}; deposit unchanged",
            f"amount mismatch (deposit {number} unchanged)",
        )
    if not payment.success or child == TransactionChild.CAPTURE:
        if child is not None:
            return None  # a failed refund/void/capture, or a capture: the deposit stays paid
        return DepositChange(
            DepositStatus.DECLINED,
            (DepositStatus.PENDING,),
            "deposit declined",
            payment.transaction_id,
            payment.reason or "declined",
        )
    if child == TransactionChild.REFUND:
        return DepositChange(
            DepositStatus.REFUNDED,
            (DepositStatus.PAID, DepositStatus.REFUNDED),
            "deposit refund recorded",
            refund_cents=amount or 0,
        )
    if child == TransactionChild.VOID:
        return DepositChange(DepositStatus.VOIDED, (DepositStatus.PAID,), "deposit voided")
    return DepositChange(
        DepositStatus.PAID,
        (DepositStatus.PENDING, DepositStatus.DECLINED),
        "deposit paid",
        payment.transaction_id,
    )


def creation_failed(reason: str) -> DepositChange:
    """A step after the order's creation failed: the pending deposit becomes ``failed``."""
    return DepositChange(
        DepositStatus.FAILED, (DepositStatus.PENDING,), "deposit failed", reason=reason
    )


def _settle(store: Store, deposit: Deposit, outcome: PaymentOutcome) -> Deposit:
    """Apply Paymob's own answer (an inquiry, a saved-card payment) to a deposit whose amount,
    currency and order it was checked against."""
    payment = PaymentFacts(
        success=outcome.status == PaymentStatus.PAID,
        transaction_id=outcome.transaction_id,
        amount_cents=deposit.amount_cents,
        currency=deposit.currency,
        reason=outcome.reason,
    )
    facts = DepositFacts(deposit.id, deposit.amount_cents, deposit.currency, deposit.refunded_cents)
    change = deposit_change(facts, payment)
    assert isinstance(change, DepositChange)
    return store.apply_deposit_change(deposit.id, change)


# --- learning the outcome ----------------------------------------------------------------------


_SETTLED = (PaymentStatus.PAID, PaymentStatus.DECLINED)  # outcomes that settle a deposit


@dataclass(frozen=True)
class PaymentOutcome:
    """What a payment came to (paid, declined, pending, none), its transaction, and who said so."""

    status: PaymentStatus
    transaction_id: int | None = None
    reason: str | None = None
    source: str = ""  # "webhook" (listen) or "inquiry" (Paymob)


def transaction_outcome(obj: dict[str, Any]) -> PaymentOutcome:
    """Read a transaction object (JSON booleans or the flat string-typed shape)."""

    def flag(name: str) -> bool:
        value = obj.get(name)
        return value is True or value == "true"

    data = obj.get("data") if isinstance(obj.get("data"), dict) else {}
    message = obj.get("data.message") or (data or {}).get("message")
    code = obj.get("txn_response_code") or (data or {}).get("txn_response_code")
    identifier = obj.get("id")
    transaction_id = lenient_int(identifier, minimum=0)
    if flag("success"):
        return PaymentOutcome(PaymentStatus.PAID, transaction_id, None, "inquiry")
    if flag("pending"):
        return PaymentOutcome(
            PaymentStatus.PENDING, transaction_id, str(message or "pending"), "inquiry"
        )
    reason = " — ".join(str(part) for part in (message, code) if part) or "declined"
    return PaymentOutcome(PaymentStatus.DECLINED, transaction_id, reason, "inquiry")


def transaction_result(obj: dict[str, Any]) -> str:
    """How ``status`` words a transaction: a paid one that was later voided or refunded is not
    "paid" any more (``is_voided``/``is_refunded`` are signed, docs/paymob.md §8.1)."""
    outcome = transaction_outcome(obj)

    def flag(name: str) -> bool:
        return obj.get(name) is True or obj.get(name) == "true"

    if outcome.status != PaymentStatus.PAID:
        return outcome.status + (f" ({outcome.reason})" if outcome.reason else "")
    if flag("is_voided"):
        return "voided"
    if flag("is_refunded"):
        amount, refunded = obj.get("amount_cents"), obj.get("refunded_amount_cents")
        partly = isinstance(amount, int) and isinstance(refunded, int) and refunded < amount
        return "partly refunded" if partly else "refunded"
    return "paid"


def inquiry_mismatch(found: dict[str, Any], deposit: Deposit) -> str | None:
    """Why the transaction Paymob's inquiry returned is not this deposit's payment, or None.

    The amount and currency must be the deposit's (an order can be paid with another amount:
    a 1 EGP payment is not 750 EGP), and the order the deposit's.
    """
    from paymobctl.models import format_amount

    order_id = order_of(found)
    if order_id is not None and str(order_id) != str(deposit.order_id):
        return f"the inquiry returned order {order_id}, not {deposit.order_id}"
    shown = _amount_differs(found, deposit)
    if shown is None:
        return None
    return (
        f"Paymob reports {shown} for order {deposit.order_id}, the deposit is "
        f"{format_amount(deposit.amount_cents, deposit.currency)}"
    )


def order_of(found: dict[str, Any]) -> object:
    """The order id of a transaction: ``order`` is an object in JSON, a plain id when flat."""
    order = found.get("order")
    return order.get("id") if isinstance(order, dict) else order


def _amount_differs(found: dict[str, Any], deposit: Deposit) -> str | None:
    """The transaction's amount and currency as text when they are not the deposit's, else None
    (the one amount check of ``inquire`` and ``inquiry_mismatch``)."""
    from paymobctl.models import format_amount

    amount, currency = found.get("amount_cents"), found.get("currency")
    number = lenient_int(amount) if isinstance(amount, str) else None
    if number is not None:
        amount = number  # the flat, string-typed shape
    if type(amount) is not int or currency != deposit.currency:
        return f"{amount} {currency}"
    if amount != deposit.amount_cents:
        return format_amount(amount, str(currency))
    return None


def record_inquiry(
    store: Store, deposit: Deposit, found: dict[str, Any]
) -> tuple[PaymentOutcome, str | None]:
    """What Paymob's inquiry says about a pending deposit, recorded in the store (the one path
    from an inquiry to a deposit's status: ``deposit --wait`` and ``status``).

    Returns the outcome and, when the transaction's amount, currency or order is not the
    deposit's, why; the deposit is then left as it was.
    """
    outcome = transaction_outcome(found)
    mismatch = inquiry_mismatch(found, deposit)
    if mismatch is None and deposit.status == DepositStatus.PENDING and outcome.status in _SETTLED:
        _settle(store, deposit, outcome)
    return outcome, mismatch


@dataclass(frozen=True)
class Tick:
    """One second of ``wait_for_payment``: time elapsed and what it is waiting for."""

    elapsed: float
    state: str


def wait_for_payment(
    client: PaymobClient,
    store: Store,
    deposit_id: int,
    *,
    interval: float = 5.0,
    timeout: float = 600.0,
    on_tick: Callable[[Tick], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> PaymentOutcome:
    """The guide's reactive polling: the store every second (a running ``listen`` updates it when
    the webhook arrives) and Paymob's transaction inquiry every ``interval`` seconds.

    Returns the outcome (paid or declined), or status ``none`` when ``timeout`` ran out.
    """
    started = clock()
    next_inquiry = started
    state = "waiting for the payer"
    while True:
        now = clock()
        elapsed = now - started
        deposit = store.deposit(deposit_id)
        if deposit is None:
            raise UsageError(f"deposit {deposit_id} disappeared from the store")
        if deposit.status in (DepositStatus.PAID, DepositStatus.REFUNDED, DepositStatus.VOIDED):
            return PaymentOutcome(PaymentStatus.PAID, deposit.transaction_id, None, "webhook")
        if deposit.status == DepositStatus.DECLINED:
            return PaymentOutcome(
                PaymentStatus.DECLINED, deposit.transaction_id, deposit.decline_reason, "webhook"
            )
        if now >= next_inquiry:
            next_inquiry = now + interval
            try:
                found = inquire(client, store, deposit)
            except ApiError as exc:
                state = f"inquiry failed: {exc.message}"
                found = None
            if found is not None:
                deposit = store.deposit(deposit_id) or deposit  # the inquiry may link the order
                outcome, mismatch = record_inquiry(store, deposit, found)
                if mismatch is not None:
                    state = f"amount mismatch: {mismatch}; still waiting"
                elif outcome.status in _SETTLED:
                    return outcome
                else:
                    state = f"transaction {outcome.transaction_id} pending ({outcome.reason})"
            elif not state.startswith("inquiry failed"):
                state = "no transaction yet: waiting for the payer"
        noticed = store.amount_mismatch(deposit.order_id) if deposit.order_id is not None else None
        if noticed is not None and not state.startswith("amount mismatch"):
            state = f"{noticed} (a callback listen refused); still waiting"
        if on_tick is not None:
            on_tick(Tick(elapsed, state))
        if elapsed >= timeout:
            return PaymentOutcome(PaymentStatus.NONE, None, f"no payment after {timeout:g} s", "")
        sleep(max(0.0, min(1.0, timeout - elapsed)))


def outcome_error(outcome: PaymentOutcome, order_id: int | None) -> PaymobctlError | None:
    """How a payment outcome ends a command: None when paid; declined is a failed check (exit 1);
    still unpaid after a wait is ``WaitTimedOut`` (exit 4), with what to do next as its hint."""
    if outcome.status == "paid":
        return None
    if outcome.status == "declined":
        return VerificationFailed(f"Declined: {outcome.reason}")
    return WaitTimedOut(
        f"Still unpaid: {outcome.reason}",
        hint="start `paymobctl listen` so webhooks update the deposit, or check `paymobctl status "
        f"{order_id}` later",
    )


# --- saved cards ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class TokenPayment:
    """A saved-card payment: its deposit, Paymob's answer, the outcome, a 3-D Secure URL."""

    deposit: Deposit
    result: dict[str, Any]
    outcome: PaymentOutcome
    redirection_url: str | None


def usable_card(store: Store, card_id: int) -> PaymentMethod:
    """The saved card ``card_id`` when it can be charged, else a usage error saying why."""
    card = store.payment_method(card_id)
    if card is None or card.removed:
        raise UsageError(f"no saved card {card_id}", hint="see `paymobctl cards list`")
    if not card.token or card.token in ("None", "null"):
        # The guide's saved-card validation: cards saved before tokenization cannot be charged.
        raise UsageError(
            f"card {card_id} ({card.masked_pan}) has no token and cannot be charged",
            hint="remove it (`paymobctl cards remove`) and let the customer pay once with 'save card' ticked",
        )
    if store.is_simulated_token(card.token):
        raise UsageError(
            f"card {card_id} ({card.masked_pan}) was saved from a `paymobctl simulate token` "
            "callback: its token is made up and no server can charge it",
            hint="save a real card: pay a deposit with 'save card' ticked (e.g. against "
            "`paymobctl sandbox`) while `paymobctl listen` runs",
        )
    return card


def pay_with_saved_card(
    client: PaymobClient,
    settings: Settings,
    store: Store,
    *,
    card: PaymentMethod,
    amount_cents: int,
    currency: str,
    billing: Billing,
    merchant_order_id: str | None = None,
) -> TokenPayment:
    """Payment key on the MOTO integration, then ``payments/pay`` with the card token."""
    moto = settings.require_int("moto_integration_id", purpose="paying with a saved card")
    recorded: list[Deposit] = []

    def record(order_id: int) -> None:
        recorded.append(
            store.create_deposit(
                profile=settings.profile,
                mode=settings.mode.value,
                flow="saved-card",
                base_url=client.base_url,
                order_id=order_id,
                merchant_order_id=merchant_order_id,
                intention_id=None,
                amount_cents=amount_cents,
                currency=currency,
                checkout_url="",
                expires_at=None,
                save_card=False,
            )
        )

    try:
        _, key = client.order_and_key(
            amount_cents=amount_cents,
            currency=currency,
            merchant_order_id=merchant_order_id,
            integration_id=moto,
            billing=billing,
            card_token=card.token,
            on_order=record,
        )
        result = client.pay_with_token(payment_key=key, card_token=card.token)
    except NetworkError as exc:
        if recorded:  # no answer to the payment: it may have gone through, so it stays pending
            exc.message += (
                f" (deposit {recorded[0].id} stays pending: `paymobctl status "
                f"{recorded[0].order_id}` tells whether it was paid)"
            )
        raise
    except PaymobctlError as exc:
        fail_recorded(store, recorded, exc)
        raise
    outcome = transaction_outcome(result)
    redirect = (
        result.get("redirection_url") if isinstance(result.get("redirection_url"), str) else None
    )
    deposit = store.set_checkout_url(recorded[0].id, redirect or "")
    if outcome.status in _SETTLED:
        deposit = _settle(store, deposit, outcome)
    return TokenPayment(deposit, result, outcome, redirect or None)


def default_billing(
    settings: Settings,
    *,
    email: str | None,
    first_name: str | None,
    last_name: str | None,
    phone: str | None,
) -> Billing:
    """Billing data; in test mode missing values get obvious placeholders, live mode needs them all."""
    given = {"email": email, "first_name": first_name, "last_name": last_name, "phone": phone}
    if settings.is_live:
        missing = [f"--{k.replace('_', '-')}" for k, v in given.items() if not v]
        if missing:
            raise ConfigError(
                "live payments need the payer's billing data: " + ", ".join(missing),
                hint="Paymob requires first name, last name, email and phone",
            )
    return Billing(
        first_name=first_name or "Test",
        last_name=last_name or "Customer",
        email=email or "customer@example.com",
        phone_number=phone or "+201000000000",
    )
