"""The sandbox's objects: integrations, orders, payment keys, transactions, saved cards,
intentions, callback deliveries, and what an operation hands the HTTP layer to deliver.

Plain dataclasses (persisted with :func:`dataclasses.asdict`); the rules live elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from paymobctl.models import CallbackKind, DeliveryState, PaymentSource

if TYPE_CHECKING:
    from paymobctl import delivery


@dataclass
class Integration:
    """A payment integration of the sandbox's merchant (card, MOTO, auth, wallet or kiosk)."""

    id: int
    name: str
    kind: str  # card | moto | auth | wallet | kiosk
    currency: str
    three_ds: bool
    is_auth: bool = False
    callback_url: str | None = None
    response_url: str | None = None

    @property
    def gateway_type(self) -> str:
        """Paymob's gateway name for this kind of integration."""
        return {"wallet": "UIG", "kiosk": "AGGREGATOR"}.get(self.kind, "MIGS")

    @property
    def integration_type(self) -> str:
        """``moto`` or ``online``, as the integrations API says."""
        return "moto" if self.kind == "moto" else "online"

    @property
    def source(self) -> PaymentSource:
        """The payment source this integration takes."""
        return {"wallet": PaymentSource.WALLET, "kiosk": PaymentSource.KIOSK}.get(
            self.kind, PaymentSource.CARD
        )

    def public(self) -> dict[str, Any]:
        """The integration as ``GET /api/ecommerce/integrations`` lists it."""
        return {
            "id": self.id,
            "name": self.name,
            "gateway_type": self.gateway_type,
            "integration_type": self.integration_type,
            "is_live": False,
            "currency": self.currency,
            "is_auth": self.is_auth,
            "is_standalone": True,
            "installments": [],
            "transaction_processed_callback": self.callback_url or "",
            "transaction_response_callback": self.response_url or "",
        }


@dataclass
class Order:
    """An order created through the orders API (or for an intention)."""

    id: int
    created_at: str
    amount_cents: int
    currency: str
    merchant_order_id: str | None
    delivery_needed: bool
    items: list[dict[str, Any]]
    shipping_data: dict[str, Any]
    paid_amount_cents: int = 0
    is_payment_locked: bool = False
    intention_id: str | None = None


@dataclass
class PaymentKey:
    """A payment key: what the payer may pay, on which integration, until when."""

    key: str
    order_id: int
    integration_id: int
    amount_cents: int
    currency: str
    billing_data: dict[str, Any]
    lock_order_when_paid: bool
    expires_at: float
    claims: dict[str, Any]
    tokenization: Any = None
    card_token: str | None = None
    intention_id: str | None = None
    used: bool = False


@dataclass
class Transaction:
    """A payment or a child (refund, void, capture) with its Paymob transaction object."""

    id: int
    order_id: int
    integration_id: int
    key: str | None
    kind: str  # payment | refund | void | capture
    source: str
    obj: dict[str, Any]
    parent_id: int | None = None
    state: str = "final"  # final | pending_3ds | pending_wallet | pending_kiosk
    save_card: bool = False
    card: dict[str, Any] | None = None  # brand, last4, expiry, behaviour (never the number)
    token_created: str | None = None

    @property
    def success(self) -> bool:
        """Whether Paymob's object says ``success``."""
        return bool(self.obj.get("success"))


@dataclass
class CardToken:
    """A saved card (never its number): what a TOKEN callback and saved-card payments use."""

    token: str
    id: int
    masked_pan: str
    last4: str
    card_subtype: str
    email: str
    order_id: int
    created_at: str
    behaviour: str
    expiry: str


@dataclass
class Intention:
    """A payment intention of the Intention API, keyed by its client secret."""

    id: str
    client_secret: str
    amount: int
    currency: str
    payment_methods: list[int]
    items: list[dict[str, Any]]
    billing_data: dict[str, Any]
    special_reference: str | None
    notification_url: str | None
    redirection_url: str | None
    card_tokens: list[str]
    extras: dict[str, Any]
    order_id: int
    keys: list[dict[str, Any]]
    created: str
    status: str = "intended"


@dataclass
class Attempt:
    """One attempt at delivering a callback and the answer it got."""

    number: int
    at: str
    status: int | None
    latency_ms: float
    error: str | None


@dataclass
class Delivery:
    """A callback the sandbox sent (or is sending), with every attempt."""

    id: int
    kind: str
    url: str
    transaction_id: int | None
    method: str
    body: str | None  # JSON text as sent
    created_at: str
    state: DeliveryState = DeliveryState.PENDING
    attempts: list[Attempt] = field(default_factory=list)

    def public(self) -> dict[str, Any]:
        """The delivery as ``GET /_sandbox/deliveries`` lists it."""
        return {
            "id": self.id,
            "type": self.kind,
            "url": self.url,
            "transaction_id": self.transaction_id,
            "state": self.state,
            "created_at": self.created_at,
            "attempts": [
                {
                    "number": a.number,
                    "at": a.at,
                    "status": a.status,
                    "latency_ms": a.latency_ms,
                    "error": a.error,
                }
                for a in self.attempts
            ],
        }


@dataclass(frozen=True)
class Outbound:
    """A callback the HTTP layer must deliver."""

    delivery_id: int
    request: delivery.HttpRequest
    kind: CallbackKind
    transaction_id: int | None


@dataclass(frozen=True)
class Completion:
    """Where the payer's browser goes when a payment step ends, and what to deliver."""

    transaction: Transaction
    redirect_url: str | None  # signed response-callback URL, None → the post_pay page
    outbound: tuple[Outbound, ...] = ()
