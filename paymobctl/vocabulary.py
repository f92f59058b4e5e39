"""The StrEnums of fixed vocabularies the start-up path does not need (EventKind, Verdict,
Mode, Outcome, ...): loaded on first use, and importable from ``paymobctl.models`` as well
(its ``__getattr__``). Creating an enum class costs ~0.3 M instructions at import."""

from __future__ import annotations

from enum import StrEnum


class EventKind(StrEnum):
    """What ``listen`` stored a request as: a callback kind, or UNKNOWN (any other request)."""

    TRANSACTION = "TRANSACTION"
    TOKEN = "TOKEN"
    DELIVERY_STATUS = "DELIVERY_STATUS"
    RESPONSE = "RESPONSE"
    UNKNOWN = "UNKNOWN"


class Verdict(StrEnum):
    """The HMAC verdict of a received request (``n/a``: not a callback, or not storable as one)."""

    VALID = "valid"
    INVALID = "invalid"
    MISSING = "missing"
    NOT_APPLICABLE = "n/a"
    MALFORMED = "malformed-signed-fields"  # signed fields misshapen: never trusted (§14)


class TransactionChild(StrEnum):
    """What a transaction is from its signed flags, when not a plain payment (receiver._child)."""

    REFUND = "refund"
    VOID = "void"
    CAPTURE = "capture"
    REVERSED = "reversed"  # a payment already marked voided or refunded


class PaymentStatus(StrEnum):
    """What waiting for, or asking about, a payment learnt (``none``: nothing before the timeout)."""

    PAID = "paid"
    DECLINED = "declined"
    PENDING = "pending"
    NONE = "none"


class DeliveryState(StrEnum):
    """Where a callback the sandbox sends stands."""

    PENDING = "pending"
    DELIVERED = "delivered"  # answered 2xx
    FAILED = "failed"  # every attempt failed


class FailureKind(StrEnum):
    """Why an HTTP attempt got no answer at all (delivery.Result.error)."""

    REFUSED = "refused"
    DNS = "dns"
    TIMEOUT = "timeout"
    TLS = "tls"
    INVALID_URL = "invalid-url"
    OTHER = "other"
    BLOCKED = "blocked"  # the sandbox refused to call the URL


class Mode(StrEnum):
    """Test or live: which of a profile's keys and integrations are used."""

    TEST = "test"
    LIVE = "live"


class Outcome(StrEnum):
    """What a simulated or sandbox transaction turns out as (a payment, or a child of one)."""

    APPROVED = "approved"
    DECLINED = "declined"
    INSUFFICIENT_FUNDS = "insufficient_funds"
    AUTH_FAILED = "auth_failed"
    BLOCKED = "blocked"  # test-mode / risk block: txn_response_code BLOCKED (docs/paymob.md §14)
    PENDING = "pending"
    REFUND = "refund"
    VOID = "void"
    CAPTURE = "capture"

    @property
    def is_child(self) -> bool:
        """A refund, void or capture: a transaction with a parent payment."""
        return self in (Outcome.REFUND, Outcome.VOID, Outcome.CAPTURE)


class CallbackOrder(StrEnum):
    """Which of a saved-card payment's two callbacks the sandbox sends first (§7.3, §14)."""

    TOKEN_FIRST = "token-first"  # as in the real 2025 KSA pair: the TOKEN was created first
    TRANSACTION_FIRST = "transaction-first"
    RANDOM = "random"


class KeyFlow(StrEnum):
    """How the payment key was made: its claims differ (docs/paymob.md §3.3, §5, §14)."""

    INTENTION = (
        "intention"  # Intention API / unified checkout: next_payment_intention, redirect_url
    )
    LEGACY = "legacy"  # POST /api/acceptance/payment_keys: exp, pmk_ip


class PaymentSource(StrEnum):
    """How a payer pays: card, mobile wallet or kiosk."""

    CARD = "card"
    WALLET = "wallet"
    KIOSK = "kiosk"


class CardBrand(StrEnum):
    """The brands of Paymob's documented test cards."""

    MASTERCARD = "MasterCard"
    VISA = "Visa"

    @property
    def bin(self) -> str:
        """The first six digits of the brand's test card."""
        # Paymob's documented test cards (docs/paymob.md §9): 5123456789012346 and 4111111111111111.
        return "512345" if self is CardBrand.MASTERCARD else "411111"

    @property
    def default_last4(self) -> str:
        """The last four digits of the brand's test card."""
        return "2346" if self is CardBrand.MASTERCARD else "1111"

    @property
    def card_type(self) -> str:
        """The brand as Paymob's ``source_data.sub_type`` spells it."""
        return "MASTERCARD" if self is CardBrand.MASTERCARD else "VISA"
