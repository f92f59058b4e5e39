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
from paymobctl.errors import ApiError, ConfigError, UsageError
from paymobctl.models import is_local

if TYPE_CHECKING:
    import httpx

    from paymobctl.config import Settings
    from paymobctl.runfile import ListenerRecord
    from paymobctl.store import Deposit, PaymentMethod, Store


def client_for(settings: Settings, http: httpx.Client) -> PaymobClient:
    public = settings.get("public_key")
    return PaymobClient(
        http,
        base_url=settings.base_url,
        api_key=settings.secret("api_key"),
        secret_key=settings.secret("secret_key"),
        public_key=public if isinstance(public, str) else None,
    )


@dataclass(frozen=True)
class DepositRequest:
    amount_cents: int
    currency: str
    billing: Billing
    merchant_order_id: str | None = None
    save_card: bool = True
    flow: str = "legacy"  # legacy | intention
    expiration: int = 3600


@dataclass(frozen=True)
class IntentionUrls:
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
    checkout: Checkout
    if request.flow == "intention":
        settings.require("secret_key", "public_key", purpose="the Intention flow")
        chosen = urls or intention_urls(settings, None)
        checkout = client.intention_checkout(
            amount_cents=request.amount_cents,
            currency=request.currency,
            integration_id=integration,
            billing=request.billing,
            merchant_order_id=request.merchant_order_id,
            notification_url=chosen.notification_url,
            redirection_url=chosen.redirection_url,
            expiration=request.expiration,
        )
    elif request.flow == "legacy":
        settings.require("api_key", purpose="a deposit")
        iframe = settings.require_int("iframe_id", purpose="a deposit (the hosted card iframe)")
        checkout = client.legacy_checkout(
            amount_cents=request.amount_cents,
            currency=request.currency,
            integration_id=integration,
            iframe_id=iframe,
            billing=request.billing,
            merchant_order_id=request.merchant_order_id,
            tokenization=request.save_card,
            expiration=request.expiration,
        )
    else:
        raise UsageError(
            f"unknown flow {request.flow!r}", hint="use --flow legacy or --flow intention"
        )
    expires = (datetime.now(UTC) + timedelta(seconds=checkout.expires_in)).isoformat(
        timespec="seconds"
    )
    return store.create_deposit(
        profile=settings.profile,
        mode=settings.mode.value,
        flow=checkout.flow,
        base_url=client.base_url,
        order_id=checkout.order_id,
        merchant_order_id=checkout.merchant_order_id,
        intention_id=checkout.intention_id,
        amount_cents=checkout.amount_cents,
        currency=checkout.currency,
        checkout_url=checkout.url,
        expires_at=expires,
        save_card=request.save_card,
    )


# --- learning the outcome ----------------------------------------------------------------------


@dataclass(frozen=True)
class PaymentOutcome:
    status: str  # paid | declined | pending | none
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
    transaction_id = (
        int(identifier) if isinstance(identifier, int | str) and str(identifier).isdigit() else None
    )
    if flag("success"):
        return PaymentOutcome("paid", transaction_id, None, "inquiry")
    if flag("pending"):
        return PaymentOutcome("pending", transaction_id, str(message or "pending"), "inquiry")
    reason = " — ".join(str(part) for part in (message, code) if part) or "declined"
    return PaymentOutcome("declined", transaction_id, reason, "inquiry")


@dataclass(frozen=True)
class Tick:
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
        if deposit.status in ("paid", "refunded", "voided"):
            return PaymentOutcome("paid", deposit.transaction_id, None, "webhook")
        if deposit.status == "declined":
            return PaymentOutcome(
                "declined", deposit.transaction_id, deposit.decline_reason, "webhook"
            )
        if now >= next_inquiry:
            next_inquiry = now + interval
            try:
                found = client.inquiry(order_id=deposit.order_id)
            except ApiError as exc:
                state = f"inquiry failed: {exc.message}"
                found = None
            if found is not None:
                outcome = transaction_outcome(found)
                if outcome.status == "paid":
                    store.update_deposit(
                        deposit_id, status="paid", transaction_id=outcome.transaction_id
                    )
                    return outcome
                if outcome.status == "declined":
                    store.update_deposit(
                        deposit_id,
                        status="declined",
                        transaction_id=outcome.transaction_id,
                        reason=outcome.reason,
                    )
                    return outcome
                state = f"transaction {outcome.transaction_id} pending ({outcome.reason})"
            elif not state.startswith("inquiry failed"):
                state = "no transaction yet: waiting for the payer"
        if on_tick is not None:
            on_tick(Tick(elapsed, state))
        if elapsed >= timeout:
            return PaymentOutcome("none", None, f"no payment after {timeout:g} s", "")
        sleep(max(0.0, min(1.0, timeout - elapsed)))


# --- saved cards ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class TokenPayment:
    deposit: Deposit
    result: dict[str, Any]
    outcome: PaymentOutcome
    redirection_url: str | None


def usable_card(store: Store, card_id: int) -> PaymentMethod:
    card = store.payment_method(card_id)
    if card is None or card.removed:
        raise UsageError(f"no saved card {card_id}", hint="see `paymobctl cards list`")
    if not card.token or card.token in ("None", "null"):
        # The guide's saved-card validation: cards saved before tokenization cannot be charged.
        raise UsageError(
            f"card {card_id} ({card.masked_pan}) has no token and cannot be charged",
            hint="remove it (`paymobctl cards remove`) and let the customer pay once with 'save card' ticked",
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
    order_id, key = client.order_and_key(
        amount_cents=amount_cents,
        currency=currency,
        merchant_order_id=merchant_order_id,
        integration_id=moto,
        billing=billing,
        card_token=card.token,
    )
    result = client.pay_with_token(payment_key=key, card_token=card.token)
    outcome = transaction_outcome(result)
    redirect = (
        result.get("redirection_url") if isinstance(result.get("redirection_url"), str) else None
    )
    deposit = store.create_deposit(
        profile=settings.profile,
        mode=settings.mode.value,
        flow="saved-card",
        base_url=client.base_url,
        order_id=order_id,
        merchant_order_id=merchant_order_id,
        intention_id=None,
        amount_cents=amount_cents,
        currency=currency,
        checkout_url=redirect or "",
        expires_at=None,
        save_card=False,
    )
    if outcome.status in ("paid", "declined"):
        deposit = store.update_deposit(
            deposit.id,
            status=outcome.status,
            transaction_id=outcome.transaction_id,
            reason=outcome.reason,
        )
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
