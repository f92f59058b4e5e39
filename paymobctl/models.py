"""Shared value types: secrets, regions, modes, amounts in minor units."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from paymobctl.errors import UsageError
from paymobctl.pans import luhn_valid as _luhn_valid
from paymobctl.pans import mask_text as _mask_text

# Card data (PAN detection, masking, CVV) lives in paymobctl.pans. These two names stay
# importable from here (the emulator's cards and identifiers use them): aliases, not copies.
luhn_valid = _luhn_valid
mask_pans = _mask_text


class Secret:
    """A credential whose ``str``/``repr`` never shows more than its last four characters."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The real value: only for signing and for the HTTP calls that need it."""
        return self._value

    @property
    def masked(self) -> str:
        """The masked form shown everywhere (``****`` plus the last four characters)."""
        return mask_secret(self._value)

    def __repr__(self) -> str:
        return f"Secret({self.masked!r})"

    def __str__(self) -> str:
        return self.masked

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        import hmac

        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash(("Secret", len(self._value)))

    def __bool__(self) -> bool:
        return bool(self._value)


def mask_secret(value: str) -> str:
    """``****a1b2``: the last four characters of a long secret, nothing of a short one."""
    if len(value) >= 12:
        return "****" + value[-4:]
    return "****"


_URL_PASSWORD = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.-]*://[^/?#@:\s]*):(?P<pw>[^/?#@\s]+)@")


def mask_url_credentials(text: str) -> str:
    """``http://user:****@host/``: the password of every URL in ``text`` masked (idempotent)."""
    return _URL_PASSWORD.sub(lambda m: f"{m.group('head')}:****@", text)


class CallbackKind(StrEnum):
    """What is being signed. RESPONSE is the GET transaction-response redirect (flat query)."""

    TRANSACTION = "TRANSACTION"
    TOKEN = "TOKEN"
    DELIVERY_STATUS = "DELIVERY_STATUS"
    RESPONSE = "RESPONSE"


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


class DepositStatus(StrEnum):
    """A deposit's status in the store."""

    PENDING = "pending"
    PAID = "paid"
    DECLINED = "declined"
    REFUNDED = "refunded"  # refunds reached the deposit's amount
    VOIDED = "voided"
    FAILED = "failed"  # a step after the order's creation failed: nobody can pay it


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


@dataclass(frozen=True)
class RegionInfo:
    """What differs per region: host, currency, country code, time zone."""

    base_url: str
    currency: str
    country: str  # ISO 3166 alpha-3, as Paymob's merchant objects carry it
    time_zone: str  # IANA zone of the account's local time (docs/paymob.md §2, §14)
    naive_times: bool = False  # Egypt renders local time without an offset (docs/paymob.md §14)


class Region(StrEnum):
    """Paymob regions and their hosts (docs/paymob.md §1.1)."""

    EG = "eg"
    KSA = "ksa"
    UAE = "uae"
    OMAN = "oman"
    PAKISTAN = "pakistan"

    @property
    def info(self) -> RegionInfo:
        """This region's host, currency, country and time zone."""
        return _REGIONS[self]

    @classmethod
    def parse(cls, text: str) -> Region:
        """A region from its name or a common code (EG, SA/KSA, AE/UAE, OM, PK); ValueError."""
        name = text.strip().lower()
        return cls(REGION_ALIASES.get(name, name))

    @property
    def base_url(self) -> str:
        """This region's Paymob host."""
        return self.info.base_url


# Country codes and names users type for a region (ISO 3166 alpha-2 and alpha-3, common names).
REGION_ALIASES: dict[str, str] = {
    "egy": "eg",
    "egypt": "eg",
    "sa": "ksa",
    "sau": "ksa",
    "saudi": "ksa",
    "ae": "uae",
    "are": "uae",
    "om": "oman",
    "omn": "oman",
    "pk": "pakistan",
    "pak": "pakistan",
}

_REGIONS: dict[Region, RegionInfo] = {
    Region.EG: RegionInfo(
        "https://accept.paymob.com", "EGP", "EGY", "Africa/Cairo", naive_times=True
    ),
    Region.KSA: RegionInfo("https://ksa.paymob.com", "SAR", "SAU", "Asia/Riyadh"),
    Region.UAE: RegionInfo("https://uae.paymob.com", "AED", "ARE", "Asia/Dubai"),
    Region.OMAN: RegionInfo("https://oman.paymob.com", "OMR", "OMN", "Asia/Muscat"),
    Region.PAKISTAN: RegionInfo("https://pakistan.paymob.com", "PKR", "PAK", "Asia/Karachi"),
}

# Minor-unit exponent per currency. OMR has three decimals; Paymob's own plugin multiplies
# by 1000 there (docs/paymob.md §11, single source). Everything else Paymob serves uses two.
CURRENCY_EXPONENT: dict[str, int] = {"EGP": 2, "SAR": 2, "AED": 2, "OMR": 3, "PKR": 2, "USD": 2}

_CURRENCY_RE = r"^[A-Z]{3}$"  # compiled (and cached) by re on first use, not at start-up


def currency_exponent(currency: str) -> int:
    """Decimal places of a currency's minor unit (2 unless known otherwise)."""
    return CURRENCY_EXPONENT.get(currency.upper(), 2)


def check_currency(currency: str) -> str:
    """Normalise a currency code or raise a usage error naming it."""
    code = currency.strip().upper()
    if not re.match(_CURRENCY_RE, code):
        raise UsageError(
            f"invalid currency {currency!r}",
            hint="use a three-letter ISO code such as EGP, SAR, AED, OMR or PKR",
        )
    return code


# Far above any card payment, far below what SQLite and Paymob's integer fields can hold.
def lenient_int(value: object, *, max_digits: int = 4000, minimum: int | None = None) -> int | None:
    """A whole number given as a JSON integer or as a string of ASCII digits, else None.

    Paymob sends ids both ways; booleans, floats, signs, spaces and non-ASCII digits (``"²"``,
    ``"١٢"``, which ``str.isdigit`` accepts and ``int`` may refuse) are not numbers here. Strings
    longer than ``max_digits`` and results below ``minimum`` are None too.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        number = value
    elif (
        isinstance(value, str) and len(value) <= max_digits and value.isascii() and value.isdigit()
    ):
        number = int(value)
    else:
        return None
    return None if minimum is not None and number < minimum else number


MAX_AMOUNT_CENTS = 10**12
_AMOUNT_RE = r"^\d{1,15}(?:\.\d{1,6})?$"


def check_cents(cents: int, *, text: str | None = None) -> int:
    """A positive amount in minor units within :data:`MAX_AMOUNT_CENTS`, or a usage error."""
    shown = text if text is not None else str(cents)
    if cents <= 0:
        raise UsageError(f"invalid amount {shown!r}", hint="the amount must be greater than zero")
    if cents > MAX_AMOUNT_CENTS:
        raise UsageError(
            f"amount {shown!r} is too large",
            hint=f"the most paymobctl sends is {MAX_AMOUNT_CENTS} minor units",
        )
    return cents


def parse_amount(text: str, currency: str, *, minor_flag: str | None = None) -> int:
    """Major units as typed by a person (``150``, ``150.50``) → integer minor units.

    A comma is refused: ``1,000`` is a thousand in one locale and one in another. ``minor_flag``
    names the option of the calling command that takes minor units, for the hints."""
    exponent = currency_exponent(currency)
    cleaned = text.strip()
    if "," in cleaned:
        raise UsageError(
            f"ambiguous amount {text!r}: a comma is a thousands separator in some places and a "
            "decimal mark in others",
            hint="write it without separators and with a dot for decimals (1000 or 1.50)",
        )
    if not re.match(_AMOUNT_RE, cleaned):
        raise UsageError(f"invalid amount {text!r}", hint="give major units such as 150 or 150.50")
    from decimal import Decimal  # only amounts typed on the command line need it

    scaled = Decimal(cleaned).scaleb(exponent)
    if scaled != scaled.to_integral_value():
        raise UsageError(
            f"amount {text!r} has more than {exponent} decimals for {currency}",
            hint=f"round it to {exponent} decimals"
            + (f", or give minor units with {minor_flag}" if minor_flag else ""),
        )
    return check_cents(int(scaled), text=text)


def format_amount(cents: int, currency: str) -> str:
    """Integer minor units → ``150.50 EGP`` (integer arithmetic: it runs once per logged event)."""
    exponent = currency_exponent(currency)
    sign = "-" if cents < 0 else ""
    whole, part = divmod(abs(cents), 10**exponent)
    return f"{sign}{whole}.{part:0{exponent}d} {currency}"


def show_amount(cents: int | None, currency: str | None) -> str:
    """An amount as a log line or page shows it: ``150.50 EGP``, the raw values for a currency we
    do not know, empty when either is missing (a received request may carry anything)."""
    if cents is None or not currency:
        return ""
    try:
        return format_amount(cents, currency)
    except (ValueError, ArithmeticError):
        return f"{cents} {currency}"


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


_DURATION_RE = r"^(\d+)\s*([smhdw])$"
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_since(text: str, now: datetime) -> str:
    """``10m``, ``2h``, ``3d``, ``1w`` ago, or an ISO date/time → an ISO UTC timestamp."""
    value = text.strip()
    match = re.match(_DURATION_RE, value.lower())
    if match:
        try:
            moment = now - timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])
        except OverflowError:
            raise UsageError(
                f"--since {text!r} reaches before year 1", hint="use a shorter duration"
            ) from None
        return moment.astimezone(UTC).isoformat(timespec="microseconds")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise UsageError(
            f"invalid --since {text!r}",
            hint="use a duration such as 30m, 2h, 7d, or a date such as 2026-11-27",
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def is_local(host: str) -> bool:
    """A loopback host name or address (what only this machine can reach)."""
    return (
        host in ("localhost", "127.0.0.1", "::1")
        or host.startswith("127.")
        or host.endswith(".localhost")
    )


TUNNEL_HOST_MARKERS = ("ngrok", "trycloudflare", "localtunnel", "serveo")


def is_tunnel_host(host: str) -> bool:
    """A development tunnel's host (ngrok, Cloudflare quick tunnels, localtunnel, serveo)."""
    return any(marker in host for marker in TUNNEL_HOST_MARKERS)
