"""The cases of the webhook conformance suite, as data: stable id, severity, the answer a correct
receiver gives, one line on what it does and why, and the fix (README lists them; a test keeps
both in sync)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from paymobctl.checklist import FIX_CSRF, FIX_HMAC, Severity
from paymobctl.models import Outcome, PaymentSource

CONCURRENT = 50  # deliveries sent at once by PMB-WH-072


class Expect(StrEnum):
    """The answer a correct receiver gives to a case."""

    ACCEPT = "2xx"
    ACCEPT_OR_REDIRECT = "2xx or 3xx"
    REJECT = "4xx"
    NO_CRASH = "no 5xx"
    NOT_BLOCKED = "not CSRF-blocked"
    FAST = "p99 ≤ budget"


@dataclass(frozen=True)
class Case:
    """One conformance check: what a correct receiver answers, why, and how to fix a failure."""

    id: str
    area: str
    title: str
    severity: Severity  # of a failure
    expect: Expect
    why: str  # what a correct receiver does, and why (one line)
    fix: str  # what to change when it fails (one line)


# --- the cases -----------------------------------------------------------------------------------

_VALID_WHY = (
    "acknowledges every genuine callback with 2xx, even for an order it does not know: Paymob "
    "treats anything else as a failed delivery"
)
_VALID_FIX = (
    "verify the hmac, then answer 2xx for every valid callback (unknown order: log it and still "
    "answer 2xx); never let one outcome or source crash the view"
)
_REJECT_WHY = (
    "answers 4xx before acting: only Paymob holds the secret, so a callback that does not verify "
    "could come from anyone"
)
_SHAPE_WHY = (
    "checks the shape of every signed field before trusting the HMAC: values are concatenated "
    "without separators, so a reshaped payload can keep the same signed string"
)
_SHAPE_FIX = (
    "reject (400) a callback whose signed fields have the wrong JSON type: obj.order an object with "
    "an integer id; id, amount_cents, owner, integration_id integers; the flags JSON booleans"
)

# (outcome, source, title suffix) of the valid TRANSACTION cases, in id order: every combination
# Paymob produces (templates/outcomes.json; a test keeps both in sync). "blocked" is the test-mode
# or risk decline with txn_response_code BLOCKED (docs/paymob.md §14).
VALID_TRANSACTIONS: tuple[tuple[Outcome, PaymentSource, str], ...] = (
    (Outcome.APPROVED, PaymentSource.CARD, "approved card"),
    (Outcome.APPROVED, PaymentSource.WALLET, "approved wallet"),
    (Outcome.APPROVED, PaymentSource.KIOSK, "approved kiosk"),
    (Outcome.DECLINED, PaymentSource.CARD, "declined card"),
    (Outcome.DECLINED, PaymentSource.WALLET, "declined wallet"),
    (Outcome.BLOCKED, PaymentSource.CARD, "blocked card"),
    (Outcome.INSUFFICIENT_FUNDS, PaymentSource.CARD, "insufficient funds card"),
    (Outcome.AUTH_FAILED, PaymentSource.CARD, "3-D Secure failed card"),
    (Outcome.PENDING, PaymentSource.CARD, "pending card"),
    (Outcome.PENDING, PaymentSource.WALLET, "pending wallet"),
    (Outcome.PENDING, PaymentSource.KIOSK, "pending kiosk"),
    (Outcome.REFUND, PaymentSource.CARD, "refund card"),
    (Outcome.REFUND, PaymentSource.WALLET, "refund wallet"),
    (Outcome.VOID, PaymentSource.CARD, "void card"),
    (Outcome.CAPTURE, PaymentSource.CARD, "capture card"),
    (Outcome.INSUFFICIENT_FUNDS, PaymentSource.WALLET, "insufficient funds wallet"),
)

CHANNELS: tuple[tuple[str, str], ...] = (
    ("TRANSACTION", "POST TRANSACTION"),
    ("TOKEN", "POST TOKEN"),
    ("GET", "GET redirect"),
)
MUTATIONS: tuple[tuple[str, str, str], ...] = (
    ("unsigned", "without hmac", "treat a missing hmac as invalid: answer 401, never 500"),
    (
        "tampered",
        "signed, then a signed value changed",
        "compute the HMAC over the received values and compare it (constant time) with the hmac",
    ),
    ("wrong-secret", "signed with another secret", "use only your own HMAC secret; " + FIX_HMAC),
    (
        "truncated",
        "with the hmac cut to 64 characters",
        "compare the full 128-character digest; never a prefix, never a length-tolerant match",
    ),
)


def _build_cases() -> dict[str, Case]:
    cases: list[Case] = []
    for number, (_, _, title) in enumerate(VALID_TRANSACTIONS, start=1):
        cases.append(
            Case(
                f"PMB-WH-{number:03d}",
                "Valid deliveries",
                f"signed TRANSACTION, {title}",
                Severity.ERROR,
                Expect.ACCEPT,
                _VALID_WHY,
                _VALID_FIX,
            )
        )
    cases += [
        Case(
            "PMB-WH-020",
            "Valid deliveries",
            "the same signed delivery twice",
            Severity.ERROR,
            Expect.ACCEPT,
            "answers 2xx both times and acts once: Paymob retries deliveries it thinks failed",
            "make the handler idempotent (key on the transaction id) and answer 2xx to a duplicate",
        ),
        Case(
            "PMB-WH-021",
            "Valid deliveries",
            "signed TOKEN (saved card)",
            Severity.ERROR,
            Expect.ACCEPT,
            "accepts the TOKEN callback at the same URL: Paymob POSTs saved cards there too, "
            "signed over the token fields (docs/paymob.md §8.2)",
            "dispatch on the body's type: verify TOKEN callbacks over card_subtype, created_at, "
            "email, id, masked_pan, merchant_id, order_id, token",
        ),
        Case(
            "PMB-WH-022",
            "Valid deliveries",
            "signed GET redirect (transaction response)",
            Severity.ERROR,
            Expect.ACCEPT_OR_REDIRECT,
            "verifies the flattened query (order, source_data.pan …) and shows a page or redirects "
            "the payer",
            "verify the redirect over its query parameters (order, not order_id) and answer 2xx/3xx",
        ),
    ]
    number = 30
    for _channel, channel_text in CHANNELS:
        for mutation, mutation_text, fix in MUTATIONS:
            cases.append(
                Case(
                    f"PMB-WH-{number:03d}",
                    "Signature",
                    f"{channel_text} {mutation_text} ({mutation})",
                    Severity.CRITICAL,
                    Expect.REJECT,
                    _REJECT_WHY,
                    fix,
                )
            )
            number += 1
    cases += [
        Case(
            "PMB-WH-050",
            "Forgery",
            "field-shift forgery: obj.order a bare integer, its digits moved into owner",
            Severity.CRITICAL,
            Expect.REJECT,
            _SHAPE_WHY,
            _SHAPE_FIX,
        ),
        Case(
            "PMB-WH-051",
            "Forgery",
            "float transaction id (a signed value re-typed, same signed string)",
            Severity.CRITICAL,
            Expect.REJECT,
            _SHAPE_WHY + "; a float id also defeats de-duplication on the id",
            _SHAPE_FIX,
        ),
        Case(
            "PMB-WH-052",
            "Forgery",
            'string-typed booleans ("false" instead of false)',
            Severity.CRITICAL,
            Expect.REJECT,
            _SHAPE_WHY + '; and "false" is truthy in most languages',
            _SHAPE_FIX,
        ),
        Case(
            "PMB-WH-060",
            "Robustness",
            "signed callback with unknown extra fields",
            Severity.ERROR,
            Expect.NO_CRASH,
            "ignores fields it does not know: Paymob adds fields over time (docs/paymob.md §14)",
            "read only the fields you need; never fail on an unexpected key",
        ),
        Case(
            "PMB-WH-061",
            "Robustness",
            "signed callback with nulls in unsigned fields",
            Severity.ERROR,
            Expect.NO_CRASH,
            "tolerates null in unsigned fields: real callbacks carry many (gateway data, "
            "payment_key_claims, merchant_staff_tag)",
            "guard every read of an unsigned field against null",
        ),
        Case(
            "PMB-WH-062",
            "Robustness",
            "signed callback with a 1 MB body",
            Severity.ERROR,
            Expect.NO_CRASH,
            "answers a large body without crashing (a 413 or a 2xx both do): bodies grow with "
            "items and gateway data",
            "let the framework's body limit answer 413 rather than raising inside the view",
        ),
        Case(
            "PMB-WH-063",
            "Robustness",
            "a body that is not JSON",
            Severity.ERROR,
            Expect.NO_CRASH,
            "answers 400 to a body it cannot parse: anyone can POST anything to a public URL",
            "catch the JSON parse error and answer 400",
        ),
        Case(
            "PMB-WH-064",
            "Robustness",
            "a signed body with the wrong content type (text/plain)",
            Severity.ERROR,
            Expect.NO_CRASH,
            "answers a 2xx or a 4xx, never a crash, whatever the Content-Type header says",
            "parse the raw body (or answer 415/400); do not assume a form parser ran",
        ),
        Case(
            "PMB-WH-070",
            "Platform",
            "a POST to the webhook is not blocked by CSRF protection",
            Severity.CRITICAL,
            Expect.NOT_BLOCKED,
            "exempts the webhook from CSRF checks: Paymob's server has no session cookie or token, "
            "and the HMAC is what authenticates it",
            FIX_CSRF,
        ),
        Case(
            "PMB-WH-071",
            "Platform",
            "p99 latency of valid deliveries under the budget (--max-latency)",
            Severity.WARNING,
            Expect.FAST,
            "answers fast and does slow work afterwards: a slow answer is a failed delivery to a "
            "sender with a timeout",
            "acknowledge first, then fulfil in a background job (Celery, RQ, a queue table)",
        ),
        Case(
            "PMB-WH-072",
            "Platform",
            f"{CONCURRENT} concurrent valid deliveries",
            Severity.ERROR,
            Expect.ACCEPT,
            "handles bursts: a sale or a batch of refunds sends many callbacks at once",
            "run more than one worker, keep the view short, avoid table-wide locks while handling",
        ),
    ]
    return {case.id: case for case in cases}


CASES: dict[str, Case] = _build_cases()
