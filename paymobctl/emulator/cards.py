"""Test cards the sandbox accepts and what each one does (docs/paymob.md §9, the integration guide)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from paymobctl.models import CardBrand, lenient_int, luhn_valid


class Behaviour(StrEnum):
    """What a test card does when paid with."""

    APPROVE = "approve"  # approved without a 3-D Secure step
    DECLINE = "decline"  # declined by the issuer
    THREE_DS = "3ds"  # 3-D Secure OTP page first (OTP 1234), then approved
    BLOCK = "block"  # blocked by the gateway before the issuer: txn_response_code BLOCKED


@dataclass(frozen=True)
class TestCard:
    """A documented test card number and what it does."""

    number: str
    brand: CardBrand
    behaviour: Behaviour
    # A fixed expiry that selects a result (MPGS convention), or None: any future date. (The
    # guide's and tutorials' "12/25" is in the past now, and an expired card is declined.)
    expiry: str | None
    source: str
    note: str

    def expiry_shown(self, today: date) -> str:
        """The expiry to type: the fixed one, else December three years from ``today``."""
        return self.expiry or f"12/{(today.year + 3) % 100:02d}"

    @property
    def last4(self) -> str:
        """The last four digits."""
        return self.number[-4:]

    @property
    def grouped(self) -> str:
        """The number in groups of four, as printed on a card."""
        return " ".join(self.number[i : i + 4] for i in range(0, len(self.number), 4))


OTP = "1234"
WALLET_NUMBER = "01010101010"
WALLET_MPIN = "123456"
WALLET_OTP = "123456"

TEST_CARDS: tuple[TestCard, ...] = (
    TestCard("5123456789012346", CardBrand.MASTERCARD, Behaviour.THREE_DS, "01/39", "Paymob docs",
             "3-D Secure (OTP 1234); the expiry picks the result, see below"),
    TestCard("5123450000000008", CardBrand.MASTERCARD, Behaviour.THREE_DS, "01/39", "Paymob docs",
             "3-D Secure (OTP 1234)"),
    TestCard("4111111111111111", CardBrand.VISA, Behaviour.THREE_DS, "01/39", "Paymob docs", "3-D Secure (OTP 1234)"),
    TestCard("4987654321098769", CardBrand.VISA, Behaviour.THREE_DS, None, "older Paymob tutorials",
             "3-D Secure (OTP 1234)"),
    TestCard("0000000000000000", CardBrand.MASTERCARD, Behaviour.APPROVE, None, "integration guide",
             "approved, no OTP"),
    TestCard("0000000000001111", CardBrand.MASTERCARD, Behaviour.DECLINE, None, "integration guide", "declined"),
    TestCard("0000000000002222", CardBrand.MASTERCARD, Behaviour.THREE_DS, None, "integration guide",
             "OTP page (enter 1234), then approved"),
    TestCard("0000000000003333", CardBrand.MASTERCARD, Behaviour.BLOCK, None, "paymobctl (invented number)",
             "blocked: txn_response_code BLOCKED with null gateway fields, like real test-mode declines"),
)  # fmt: skip

_BY_NUMBER = {card.number: card for card in TEST_CARDS}


@dataclass(frozen=True)
class ExpiryRule:
    """An expiry date that selects a failure (MPGS test convention), and what it answers."""

    expiry: str
    txn_response_code: str
    acq_response_code: str
    message: str
    error_occured: bool = False


# Mastercard Gateway (MPGS) test convention: the expiry date selects the result. Paymob acquires
# through MPGS, so it probably applies; the table comes from another MPGS merchant's docs
# (docs/paymob.md §9, unverified for Paymob). 01/39 (and any other expiry) approves.
EXPIRY_RULES: dict[str, ExpiryRule] = {
    rule.expiry: rule
    for rule in (
        ExpiryRule("05/39", "DECLINED", "05", "Do not honour"),
        ExpiryRule("04/27", "EXPIRED_CARD", "54", "Expired card"),
        ExpiryRule("08/28", "TIMED_OUT", "68", "Response received too late", True),
        ExpiryRule("01/37", "ACQUIRER_SYSTEM_ERROR", "96", "Acquirer system error", True),
        ExpiryRule("02/37", "UNSPECIFIED_FAILURE", "06", "Unspecified failure", True),
        ExpiryRule("05/37", "UNKNOWN", "-", "Unknown result", True),
    )
}


@dataclass(frozen=True)
class CardEntry:
    """A card typed into the checkout, checked."""

    number: str
    name: str
    expiry: str  # MM/YY
    cvv: str

    @property
    def last4(self) -> str:
        """The last four digits."""
        return self.number[-4:]


def normalise_number(text: str) -> str:
    """A typed card number without its spaces and dashes."""
    return re.sub(r"[\s-]", "", text)


def check_entry(number: str, name: str, month: str, year: str, cvv: str) -> CardEntry | str:
    """The checked card, or the message the checkout shows next to the form."""
    digits = normalise_number(number)
    if not (digits.isascii() and digits.isdigit()) or not 13 <= len(digits) <= 19:
        return "Enter the card number: 13 to 19 digits."
    if digits not in _BY_NUMBER and not luhn_valid(digits):
        return "Invalid card number."
    if not name.strip():
        return "Enter the name on the card."
    month = month.strip().zfill(2)
    year = year.strip()[-2:].zfill(2)
    month_number = lenient_int(month, max_digits=2)
    if month_number is None or not 1 <= month_number <= 12 or lenient_int(year) is None:
        return "Enter the expiry date as MM / YY."
    if not re.fullmatch(r"\d{3,4}", cvv.strip()):
        return "Enter the 3-digit CVV."
    return CardEntry(digits, name.strip(), f"{month}/{year}", cvv.strip())


EXPIRED = ExpiryRule("", "EXPIRED_CARD", "54", "Expired card")


def is_expired(expiry: str, today: date) -> bool:
    """``MM/YY`` before ``today``'s month (a card is valid through its expiry month)."""
    month, _, year = expiry.partition("/")
    month_number, year_number = lenient_int(month), lenient_int(year)
    if month_number is None or year_number is None:
        return False
    return (2000 + year_number, month_number) < (today.year, today.month)


def error_field(message: str) -> str | None:
    """The form field a :func:`check_entry` message is about (to mark it in the form)."""
    lowered = message.lower()
    for needle, name in (
        ("card number", "card_number"),
        ("name on the card", "card_holder"),
        ("expiry", "expiry_month"),
        ("cvv", "cvv"),
    ):
        if needle in lowered:
            return name
    return None


def lookup(number: str) -> TestCard | None:
    """The test card with this number, if it is one."""
    return _BY_NUMBER.get(number)


def brand_of(number: str) -> CardBrand:
    """The card's brand: a test card's own, else Visa for a 4, Mastercard otherwise."""
    card = lookup(number)
    if card is not None:
        return card.brand
    return CardBrand.VISA if number.startswith("4") else CardBrand.MASTERCARD
