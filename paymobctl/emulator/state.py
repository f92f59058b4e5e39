"""The sandbox's Paymob: merchants' orders, payment keys, transactions, card tokens, intentions.

Pure state and rules, no HTTP: each operation validates like Paymob (DRF-style error bodies,
docs/paymob.md §3–§6, §10), changes the state, and returns what the HTTP layer must answer and which
callbacks must be delivered. Every callback is built by :mod:`paymobctl.callbacks`, so it has the
same shape as ``paymobctl simulate``'s and verifies with the sandbox's HMAC secret.

:class:`Sandbox` is the one object the app, the dashboard, the notifier and tests use; it is
composed of one part per concept (plain objects; its methods delegate to them):

- :class:`~paymobctl.emulator.auth.Auth`: auth tokens, secret and public keys;
- :class:`~paymobctl.emulator.orders.Orders`: orders and payment keys;
- :class:`~paymobctl.emulator.payments.Payments`: card, wallet and kiosk payments;
- :class:`~paymobctl.emulator.ledger.Ledger`: refund, void, capture, lookups and inquiry;
- :class:`~paymobctl.emulator.intentions.Intentions`: the Intention API;
- :class:`~paymobctl.emulator.deliveries.Deliveries`: callbacks, redirects, delivery records;

over a shared :class:`~paymobctl.emulator.context.Context` and its
:class:`~paymobctl.emulator.persistence.Tables`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from paymobctl.emulator import cards
from paymobctl.emulator.auth import Auth
from paymobctl.emulator.context import Context, Event
from paymobctl.emulator.deliveries import Deliveries
from paymobctl.emulator.intentions import Intentions
from paymobctl.emulator.ledger import Ledger
from paymobctl.emulator.orders import Orders
from paymobctl.emulator.payments import PayAnswer, Payments
from paymobctl.emulator.persistence import (
    MemoryPersistence,
    Persistence,
    StorePersistence,
    Tables,
)
from paymobctl.emulator.records import (
    Attempt,
    CardToken,
    Completion,
    Delivery,
    Integration,
    Intention,
    Order,
    Outbound,
    PaymentKey,
    Transaction,
)
from paymobctl.emulator.validation import (
    LINK_LOCAL_REFUSED,
    PageError,
    SandboxError,
    callback_url_error,
    link_local,
)
from paymobctl.models import CallbackOrder
from paymobctl.sandbox_profile import SANDBOX, SandboxCredentials

__all__ = [
    "LINK_LOCAL_REFUSED",
    "Attempt",
    "CardToken",
    "Completion",
    "Delivery",
    "Event",
    "Integration",
    "Intention",
    "MemoryPersistence",
    "Order",
    "Outbound",
    "PageError",
    "PaymentKey",
    "Persistence",
    "Sandbox",
    "SandboxError",
    "StorePersistence",
    "Transaction",
    "callback_url_error",
    "link_local",
]


class Sandbox:
    """All of the emulator's state and rules, as one facade over its parts."""

    def __init__(
        self,
        *,
        credentials: SandboxCredentials = SANDBOX,
        callback_url: str | None = None,
        response_url: str | None = None,
        persistence: Persistence | None = None,
        clock: Callable[[], datetime] | None = None,
        on_event: Event | None = None,
        callback_order: CallbackOrder = CallbackOrder.TOKEN_FIRST,
        order_seed: int | None = None,
    ) -> None:
        self.tables = Tables(persistence)
        self.ctx = Context(
            credentials=credentials,
            tables=self.tables,
            clock=clock,
            on_event=on_event,
            callback_url=callback_url,
            response_url=response_url,
        )
        self._auth = Auth(self.ctx)
        self._orders = Orders(self.ctx)
        self._deliveries = Deliveries(
            self.ctx, callback_order=callback_order, order_seed=order_seed
        )
        self._payments = Payments(self.ctx, self._orders, self._deliveries)
        self._ledger = Ledger(self.ctx, self._payments)
        self._intentions = Intentions(self.ctx, self._auth, self._orders, self._payments)
        self.tables.load(self.ctx.now().timestamp())

    # -- shared state ---------------------------------------------------------------------------

    @property
    def creds(self) -> SandboxCredentials:
        """The sandbox merchant's credentials."""
        return self.ctx.creds

    @property
    def base_url(self) -> str:
        """Where emitted URLs (order URLs, redirects) point: the host the sandbox was reached on."""
        return self.ctx.base_url

    @base_url.setter
    def base_url(self, value: str) -> None:
        """Set where emitted URLs point (the app, from each request)."""
        self.ctx.base_url = value

    @property
    def on_event(self) -> Event:
        """Where the sandbox reports what happens: ``(category, message)``."""
        return self.ctx.on_event

    @property
    def integrations(self) -> dict[int, Integration]:
        """The merchant's integrations by id."""
        return self.ctx.integrations

    @property
    def auth_tokens(self) -> dict[str, float]:
        """Live auth tokens: sha256 digest → expiry."""
        return self.tables.auth_tokens

    @property
    def orders(self) -> dict[int, Order]:
        """Orders by id."""
        return self.tables.orders

    @property
    def keys(self) -> dict[str, PaymentKey]:
        """Payment keys by key."""
        return self.tables.keys

    @property
    def transactions(self) -> dict[int, Transaction]:
        """Transactions by id."""
        return self.tables.transactions

    @property
    def tokens(self) -> dict[str, CardToken]:
        """Saved cards by token."""
        return self.tables.tokens

    @property
    def intentions(self) -> dict[str, Intention]:
        """Intentions by client secret."""
        return self.tables.intentions

    @property
    def deliveries(self) -> dict[int, Delivery]:
        """Callback deliveries by id."""
        return self.tables.deliveries

    def stamp(self) -> str:
        """Now as Paymob writes its timestamps."""
        return self.ctx.stamp()

    def reset(self) -> None:
        """Forget every object (orders, keys, transactions, cards, deliveries, auth tokens) and
        restore the callback URLs the sandbox started with; ids keep counting, never reused."""
        self.tables.clear()
        self.ctx.restore_callback_urls()

    def pristine(self) -> bool:
        """Nothing to reset: no object of any kind, and the callback URLs it started with."""
        return self.tables.empty() and self.ctx.callback_urls_as_started()

    def set_callback_urls(self, callback_url: str | None, response_url: str | None) -> None:
        """Set the callback URLs of every integration (``""`` turns one off; 400 if invalid)."""
        self.ctx.set_callback_urls(callback_url, response_url)

    def callback_urls(self) -> dict[str, str | None]:
        """The callback URLs now in force."""
        return self.ctx.callback_urls()

    # -- auth -----------------------------------------------------------------------------------

    def authenticate(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """``POST /api/auth/tokens``."""
        return self._auth.authenticate(body)

    def check_auth_token(self, token: str | None) -> None:
        """A 401 unless ``token`` is a live auth token."""
        self._auth.check_auth_token(token)

    def check_secret_key(self, header: str | None) -> None:
        """A 401 unless ``header`` is ``Token <secret key>``."""
        self._auth.check_secret_key(header)

    def check_token_or_secret_key(self, authorization: str | None, token: str | None) -> None:
        """Refund/void/capture: a secret key in ``authorization``, else a live auth token."""
        self._auth.check_token_or_secret_key(authorization, token)

    # -- orders and payment keys ----------------------------------------------------------------

    def create_order(self, body: Mapping[str, Any]) -> Order:
        """``POST /api/ecommerce/orders``."""
        return self._orders.create_order(body)

    def order_object(self, order: Order, *, api: bool = True) -> dict[str, Any]:
        """The order as the orders API (``api``) or a callback renders it."""
        return self._orders.order_object(order, api=api)

    def get_order(self, order_id: int) -> Order:
        """An order by id, else a 404."""
        return self._orders.get_order(order_id)

    def create_payment_key(self, body: Mapping[str, Any]) -> PaymentKey:
        """``POST /api/acceptance/payment_keys``."""
        return self._orders.create_payment_key(body)

    def checkout(self, iframe_id: int, token: str | None) -> tuple[PaymentKey, Order]:
        """The card iframe's key and order, else its error page."""
        return self._orders.checkout(iframe_id, token)

    def saved_card(self, key: PaymentKey) -> CardToken | None:
        """The saved card a payment key was made for, if it still exists."""
        return self.tokens.get(key.card_token) if key.card_token else None

    # -- payments -------------------------------------------------------------------------------

    def pay_with_card(
        self, key: PaymentKey, entry: cards.CardEntry, *, save_card: bool
    ) -> Transaction:
        """A card typed into the hosted checkout: pending_3ds or final."""
        return self._payments.pay_with_card(key, entry, save_card=save_card)

    def waiting(self, txn_id: int, state: str) -> Transaction:
        """The transaction held in ``state`` for a hosted page, else that page's 404."""
        return self._payments.waiting(txn_id, state)

    def complete_3ds(self, txn_id: int, otp: str) -> Transaction:
        """The 3-D Secure OTP: the held card payment becomes final."""
        return self._payments.complete_3ds(txn_id, otp)

    def pay_api(self, body: Mapping[str, Any], base: str) -> PayAnswer:
        """``POST /api/acceptance/payments/pay`` (saved card, wallet, kiosk)."""
        return self._payments.pay_api(body, base)

    def complete_wallet(self, txn_id: int, mpin: str, otp: str) -> Transaction:
        """The wallet page's MPIN and OTP: the held wallet payment becomes final."""
        return self._payments.complete_wallet(txn_id, mpin, otp)

    def pay_kiosk_reference(self, reference: int) -> Transaction:
        """Cash paid against a kiosk reference: its payment becomes final."""
        return self._payments.pay_kiosk_reference(reference)

    # -- afterwards -----------------------------------------------------------------------------

    def get_transaction(self, txn_id: int) -> Transaction:
        """A transaction by id, else a 404."""
        return self._ledger.get_transaction(txn_id)

    def inquiry(self, body: Mapping[str, Any]) -> Transaction:
        """``POST /api/ecommerce/orders/transaction_inquiry``."""
        return self._ledger.inquiry(body)

    def manage(self, operation: str, body: Mapping[str, Any]) -> Transaction:
        """``refund``, ``void`` or ``capture`` of a payment (the API's and the dashboard's
        routes): the child transaction."""
        ledger = self._ledger
        run = {"refund": ledger.refund, "void": ledger.void, "capture": ledger.capture}[operation]
        return run(body)

    # -- intentions -----------------------------------------------------------------------------

    def create_intention(self, body: Mapping[str, Any]) -> Intention:
        """``POST /v1/intention/``."""
        return self._intentions.create_intention(body)

    def intention_response(self, intention: Intention) -> dict[str, Any]:
        """The intention as the Intention API answers it."""
        return self._intentions.intention_response(intention)

    def update_intention(self, client_secret: str, body: Mapping[str, Any]) -> Intention:
        """``PUT /v1/intention/{client_secret}``."""
        return self._intentions.update_intention(client_secret, body)

    def intention_for_checkout(
        self, public_key: str | None, client_secret: str | None
    ) -> Intention:
        """The intention the unified checkout shows, else its error page."""
        return self._intentions.intention_for_checkout(public_key, client_secret)

    def element(self, public_key: str, client_secret: str) -> dict[str, Any]:
        """The intention's public view (``/v1/intention/element/...``)."""
        return self._intentions.element(public_key, client_secret)

    def intention_key(self, intention: Intention, kind: str = "card") -> PaymentKey:
        """The intention's usable payment key for a kind of method."""
        return self._intentions.intention_key(intention, kind)

    def pay_intention_token(
        self, intention: Intention, token: str, base: str
    ) -> tuple[Transaction, Completion | None]:
        """A saved card paying an intention; its completion unless 3-D Secure waits."""
        return self._intentions.pay_intention_token(intention, token, base)

    def saved_cards(self, intention: Intention) -> list[CardToken]:
        """The saved cards an intention offers (those that still exist)."""
        return [self.tokens[t] for t in intention.card_tokens if t in self.tokens]

    def offers_wallet(self, intention: Intention) -> bool:
        """Whether an intention can be paid with a mobile wallet."""
        return any(self.integrations[i].kind == "wallet" for i in intention.payment_methods)

    # -- callbacks ------------------------------------------------------------------------------

    def completion(self, txn: Transaction) -> Completion:
        """A final transaction's signed callbacks and the browser's signed redirect."""
        return self._deliveries.completion(txn)

    def child_completion(self, txn: Transaction) -> tuple[Outbound, ...]:
        """The callbacks of a refund, void or capture."""
        return self._deliveries.completion(txn).outbound

    def resend(self, delivery_id: int) -> Outbound:
        """A delivery again, as a new delivery."""
        return self._deliveries.resend(delivery_id)

    def record_attempt(
        self, delivery_id: int, attempt: Attempt, *, final: bool, ok: bool
    ) -> Delivery:
        """Record a delivery attempt (the notifier)."""
        return self._deliveries.record_attempt(delivery_id, attempt, final=final, ok=ok)

    def recent_deliveries(self, limit: int) -> list[Delivery]:
        """The newest ``limit`` deliveries, newest first."""
        return sorted(self.deliveries.values(), key=lambda d: d.id, reverse=True)[:limit]

    def recent_transactions(self, limit: int) -> list[Transaction]:
        """The newest ``limit`` transactions, newest first."""
        return sorted(self.transactions.values(), key=lambda t: t.id, reverse=True)[:limit]
