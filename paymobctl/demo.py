"""``paymobctl demo``: the whole product, offline, in one command.

Starts the sandbox and a listener in-process on free loopback ports, creates a deposit through
the real client, pays it in the sandbox's hosted checkout the way a browser does (load the page,
submit the form with a test card, answer the 3-D Secure OTP), waits for the TRANSACTION and TOKEN
webhooks to be verified and stored, pays again with the saved card, and reports the store.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from paymobctl import checkout, outbound, serving
from paymobctl.client import Billing
from paymobctl.config import sandbox_settings
from paymobctl.emulator import create_app as create_sandbox
from paymobctl.errors import VerificationFailed
from paymobctl.models import CallbackOrder
from paymobctl.payments import (
    DepositRequest,
    client_for,
    create_deposit,
    pay_with_saved_card,
    wait_for_payment,
)
from paymobctl.receiver import create_app as create_receiver
from paymobctl.sandbox_profile import RESPONSE_PATH, SANDBOX, WEBHOOK_PATH
from paymobctl.store import Deposit, Store

if TYPE_CHECKING:
    import httpx

DEMO_CARD = checkout.Card()  # Paymob's documented Mastercard, 3-D Secure with OTP 1234


# --- the demo ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """One step of the demo, with the time it took, for the terminal."""

    title: str
    detail: str
    seconds: float


@dataclass
class DemoReport:
    """What the demo did and left behind: its steps, deposits, events by type and saved cards."""

    steps: list[Step] = field(default_factory=list)
    deposits: list[Deposit] = field(default_factory=list)
    events: dict[str, int] = field(default_factory=dict)
    cards: list[str] = field(default_factory=list)
    total_seconds: float = 0.0


def fresh_store_path() -> Path:
    """The demo's own store next to the default one, emptied: its payments must not count in
    your totals, nor its sandbox-only card appear in `cards list`."""
    from paymobctl.paths import default_db_path

    store_path = default_db_path().with_name("demo.db")
    for leftover in store_path.parent.glob("demo.db*"):
        leftover.unlink()
    return store_path


def run_demo(
    store_path: Path,
    *,
    on_step: Callable[[Step], None] | None = None,
    timeout: float = 20.0,
    callback_order: CallbackOrder = CallbackOrder.TOKEN_FIRST,
) -> DemoReport:
    """Pay by card with 3-D Secure, then again with the saved card, through a throwaway
    sandbox and a listener recording into ``store_path``; fails when a step does not happen.

    Both servers run on free loopback ports and are stopped before this returns.
    """
    report = DemoReport()
    started = time.perf_counter()
    last = started

    def step(title: str, detail: str) -> None:
        nonlocal last
        now = time.perf_counter()
        item = Step(title, detail, now - last)
        last = now
        report.steps.append(item)
        if on_step is not None:
            on_step(item)

    listener_store = Store(store_path)
    demo_store = Store(store_path)
    receiver = create_receiver(store=listener_store, secret=SANDBOX.hmac_secret)
    try:
        with serving.Background(receiver, what="the demo's listener") as listener:
            sandbox_app = create_sandbox(
                callback_url=f"{listener.url}{WEBHOOK_PATH}",
                response_url=f"{listener.url}{RESPONSE_PATH}",
                callback_order=callback_order,
            )
            with (
                serving.Background(sandbox_app, what="the demo's sandbox") as sandbox,
                outbound.client(timeout=10) as http,
            ):
                step("started", f"sandbox {sandbox.url} · listener {listener.url}{WEBHOOK_PATH}")
                _run(http, sandbox.url, demo_store, step, timeout)
    finally:
        listener_store.close()
    report.deposits = demo_store.deposits(limit=5)
    for event in demo_store.events(limit=None):
        key = f"{event.kind} {event.verdict}"
        report.events[key] = report.events.get(key, 0) + 1
    report.cards = [
        f"#{c.id} {c.card_subtype} {c.masked_pan}" for c in demo_store.payment_methods()
    ]
    demo_store.close()
    report.total_seconds = time.perf_counter() - started
    return report


def _run(
    http: httpx.Client, base: str, store: Store, step: Callable[[str, str], None], timeout: float
) -> None:
    settings = sandbox_settings(base)
    client = client_for(settings, http)
    billing = Billing("Mona", "Adel", "mona@example.com", "+201234567890")
    deposit = create_deposit(
        client,
        settings,
        store,
        DepositRequest(amount_cents=15000, currency="EGP", billing=billing, save_card=True),
    )
    step(
        "deposit created",
        f"150.00 EGP · order {deposit.order_id} · {deposit.checkout_url.split('?')[0]}",
    )

    paid = checkout.pay(http, deposit.checkout_url, card=DEMO_CARD, save_card=True)
    if not paid.three_ds:
        raise VerificationFailed("expected the 3-D Secure page after the card form")
    step(
        "card submitted",
        f"Mastercard •••• {DEMO_CARD.number[-4:]} with 'save card' ticked → 3-D Secure page",
    )
    landed = paid.redirect_url.split("?", 1)[0]
    step("OTP answered", f"browser redirected to {landed} (HTTP {paid.landed_status})")

    # The webhooks first (what `listen` stored), then the deposit as `deposit --wait` sees it.
    card = _wait_for_card(store, deposit.order_id, timeout)
    _wait_for_event(store, deposit.order_id, timeout)
    outcome = wait_for_payment(
        client,
        store,
        deposit.id,
        interval=5.0,
        timeout=timeout,
        sleep=lambda seconds: time.sleep(min(seconds, 0.02)),
    )
    if outcome.status != "paid":
        raise VerificationFailed(f"the deposit did not turn paid: {outcome.reason}")
    events = [e for e in store.events(limit=None) if e.order_id == deposit.order_id]
    verified = sorted(f"{e.kind}" for e in events if e.verdict == "valid")
    step(
        "webhooks verified",
        f"{', '.join(verified)} stored with valid HMACs · deposit {deposit.id} is paid "
        f"(learnt from the {outcome.source}) · card saved: {card.card_subtype} {card.masked_pan}",
    )

    again = pay_with_saved_card(
        client, settings, store, card=card, amount_cents=5000, currency="EGP", billing=billing
    )
    if again.outcome.status != "paid":
        raise VerificationFailed(f"the saved-card payment was not approved: {again.outcome.reason}")
    _wait_for_event(store, again.deposit.order_id, timeout)
    step(
        "paid again with the saved card",
        f"50.00 EGP · MOTO integration · transaction "
        f"{again.outcome.transaction_id} · webhook stored",
    )


def _wait_for_card(store: Store, order_id: int | None, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for card in store.payment_methods():
            if card.order_id == order_id:
                return card
        time.sleep(0.01)
    raise VerificationFailed("the TOKEN webhook never arrived: no card was saved")


def _wait_for_event(store: Store, order_id: int | None, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(e.order_id == order_id and e.kind == "TRANSACTION" for e in store.events(limit=20)):
            return
        time.sleep(0.01)
    raise VerificationFailed(f"the TRANSACTION webhook for order {order_id} never arrived")
