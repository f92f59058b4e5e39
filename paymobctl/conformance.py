"""The webhook conformance suite behind ``paymobctl webhook test``: cases, their requests, grades.

Cases are data: a stable id, a severity, the answer a correct receiver gives, one line on what it
does and why, and a fix. :func:`run` sends every case's requests to the developer's endpoint and
grades the answers; nothing here prints. Every request is harmless by construction, like the
checklist's probes: order ids at or above 999,900,000,000 that no real order has,
``merchant_order_id = paymobctl-probe-…``, and declined transactions wherever a valid delivery is
not the point of the case. Payloads come from :mod:`paymobctl.callbacks`, so they are Paymob's
shapes; the forgeries change a correctly signed callback the way an attacker would.
"""

from __future__ import annotations

import copy
import math
import secrets
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from paymobctl import callbacks, delivery
from paymobctl.callbacks import Callback, TokenSpec, TransactionSpec
from paymobctl.checklist import FIX_CSRF, FIX_HMAC, Graded, Severity, Status, _is_csrf, _send
from paymobctl.models import Outcome, PaymentSource, Region
from paymobctl.signing import CallbackKind

if TYPE_CHECKING:
    import httpx

# Probe ids: far above any real Paymob order or transaction (the checklist uses the same ranges).
PROBE_ORDER_BASE = 999_900_000_000
PROBE_TRANSACTION_BASE = 999_800_000_000
ONE_MB = 1_000_000  # the "1 MB valid body" case: just under listen's 1 MiB limit
CONCURRENT = 50


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
    id: str
    area: str
    title: str
    severity: Severity  # of a failure
    expect: Expect
    why: str  # what a correct receiver does, and why (one line)
    fix: str  # what to change when it fails (one line)


@dataclass(frozen=True)
class Target:
    """Where and how to probe: the endpoint, the secret it should hold, the profile's money."""

    webhook_url: str
    secret: str
    response_url: str | None = None  # the GET redirect view; its cases are skipped without it
    currency: str = "EGP"
    region: Region = Region.EG
    integration_id: int = 4822951
    timeout: float = 10.0
    max_latency_ms: float = 3000.0
    concurrency: int = CONCURRENT


@dataclass(frozen=True)
class CaseResult:
    case: Case
    status: Status
    observed: str  # what came back, e.g. "HTTP 401" or "HTTP 200, 200"
    detail: str
    severity: Severity = Severity.INFO  # of this failure (a crash instead of a 4xx: error)
    statuses: tuple[int | None, ...] = ()
    latencies_ms: tuple[float, ...] = ()
    excerpt: str = ""  # the first answer's body excerpt (JSON output only: never on a terminal raw)

    @property
    def failed(self) -> bool:
        return self.status is Status.FAIL

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.case.id,
            "area": self.case.area,
            "title": self.case.title,
            "severity": self.severity.label,
            "status": self.status.value,
            "expected": self.case.expect.value,
            "observed": self.observed,
            "detail": self.detail,
            "why": self.case.why,
            "hint": self.case.fix if self.failed else None,
            "statuses": list(self.statuses),
            "body_excerpt": self.excerpt,
        }


@dataclass
class Report(Graded):
    url: str
    response_url: str | None
    started_at: str
    duration_ms: float
    results: list[CaseResult]
    reachable: bool
    order_ids: tuple[int, int] = (0, 0)  # first and last probe order id used


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

# (outcome, source, title suffix) of the valid TRANSACTION cases, in id order. "blocked" is a
# declined card payment with txn_response_code BLOCKED (test-mode declines, reference §14).
_VALID_TRANSACTIONS: tuple[tuple[Outcome, PaymentSource, str], ...] = (
    (Outcome.APPROVED, PaymentSource.CARD, "approved card"),
    (Outcome.APPROVED, PaymentSource.WALLET, "approved wallet"),
    (Outcome.APPROVED, PaymentSource.KIOSK, "approved kiosk"),
    (Outcome.DECLINED, PaymentSource.CARD, "declined card"),
    (Outcome.DECLINED, PaymentSource.WALLET, "declined wallet"),
    (Outcome.DECLINED, PaymentSource.CARD, "blocked card"),
    (Outcome.INSUFFICIENT_FUNDS, PaymentSource.CARD, "insufficient funds card"),
    (Outcome.AUTH_FAILED, PaymentSource.CARD, "3-D Secure failed card"),
    (Outcome.PENDING, PaymentSource.CARD, "pending card"),
    (Outcome.PENDING, PaymentSource.WALLET, "pending wallet"),
    (Outcome.PENDING, PaymentSource.KIOSK, "pending kiosk"),
    (Outcome.REFUND, PaymentSource.CARD, "refund card"),
    (Outcome.REFUND, PaymentSource.WALLET, "refund wallet"),
    (Outcome.VOID, PaymentSource.CARD, "void card"),
    (Outcome.CAPTURE, PaymentSource.CARD, "capture card"),
)
_BLOCKED = "blocked card"

_CHANNELS: tuple[tuple[str, str], ...] = (
    ("TRANSACTION", "POST TRANSACTION"),
    ("TOKEN", "POST TOKEN"),
    ("GET", "GET redirect"),
)
_MUTATIONS: tuple[tuple[str, str, str], ...] = (
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
    for number, (_, _, title) in enumerate(_VALID_TRANSACTIONS, start=1):
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
            "signed over the token fields (reference §8.2)",
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
    for _channel, channel_text in _CHANNELS:
        for mutation, mutation_text, fix in _MUTATIONS:
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
            "ignores fields it does not know: Paymob adds fields over time (reference §14)",
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


# --- building the requests -----------------------------------------------------------------------


@dataclass
class _Probes:
    """Builds each case's requests with fresh probe ids (order and transaction) every time."""

    target: Target
    run_tag: str = field(default_factory=lambda: secrets.token_hex(4))
    order_base: int = field(
        default_factory=lambda: PROBE_ORDER_BASE + secrets.randbelow(90_000) * 1000
    )
    used: int = 0

    def next_ids(self) -> tuple[int, int]:
        self.used += 1
        return self.order_base + self.used, PROBE_TRANSACTION_BASE + (
            self.order_base - PROBE_ORDER_BASE + self.used
        )

    def transaction(
        self, outcome: Outcome = Outcome.DECLINED, source: PaymentSource = PaymentSource.CARD
    ) -> Callback:
        order_id, transaction_id = self.next_ids()
        return callbacks.build_transaction(
            TransactionSpec(
                outcome=outcome,
                source=source,
                amount_cents=100,
                currency=self.target.currency,
                region=self.target.region,
                order_id=order_id,
                transaction_id=transaction_id,
                merchant_order_id=f"paymobctl-probe-{self.run_tag}-{self.used}",
                integration_id=self.target.integration_id,
                is_live=False,
                decline_code="05",
            )
        )

    def token(self) -> Callback:
        order_id, token_id = self.next_ids()
        return callbacks.build_token(TokenSpec(order_id=order_id, token_id=token_id))

    def post(
        self, callback: Callback, *, body: dict[str, Any] | None = None
    ) -> delivery.HttpRequest:
        """POST ``body`` (default: the callback's own) with the callback's correct hmac."""
        return _post(
            self.target.webhook_url, body or callback.body, callback.sign(self.target.secret)
        )

    def get(self, obj: dict[str, Any], digest: str | None) -> delivery.HttpRequest:
        assert self.target.response_url is not None
        query = callbacks.encode_params(callbacks.redirect_params(obj, digest))
        return delivery.get(callbacks.with_query(self.target.response_url, query))


def _post(url: str, body: Any, digest: str | None) -> delivery.HttpRequest:
    target = callbacks.with_query(url, f"hmac={digest}") if digest is not None else url
    return delivery.post_json(target, body)


def _valid_transaction(index: int) -> Callable[[_Probes], list[delivery.HttpRequest]]:
    outcome, source, title = _VALID_TRANSACTIONS[index]

    def build(probes: _Probes) -> list[delivery.HttpRequest]:
        callback = probes.transaction(outcome, source)
        if title == _BLOCKED:  # unsigned gateway fields only: the signed ones stay a decline
            callback = callbacks.with_body(
                callback,
                callbacks.apply_overrides(
                    callback.body,
                    [
                        callbacks.parse_override("obj.data.txn_response_code=BLOCKED"),
                        callbacks.parse_override("obj.data.message=Blocked by risk rules"),
                    ],
                ),
            )
        return [probes.post(callback)]

    return build


def _twice(probes: _Probes) -> list[delivery.HttpRequest]:
    request = probes.post(probes.transaction(Outcome.APPROVED))
    return [request, request]


def _token(probes: _Probes) -> list[delivery.HttpRequest]:
    return [probes.post(probes.token())]


def _redirect(probes: _Probes) -> list[delivery.HttpRequest]:
    callback = probes.transaction(Outcome.APPROVED)
    return [probes.get(callback.obj, callback.sign(probes.target.secret))]


def _wrong(digest: str, mutation: str, secret_digest: Callable[[], str]) -> str | None:
    if mutation == "unsigned":
        return None
    if mutation == "wrong-secret":
        return secret_digest()
    if mutation == "truncated":
        return digest[:64]
    return digest  # tampered: the hmac is right, a signed value is not


def _signature_case(channel: str, mutation: str) -> Callable[[_Probes], list[delivery.HttpRequest]]:
    def build(probes: _Probes) -> list[delivery.HttpRequest]:
        secret = probes.target.secret
        callback = probes.token() if channel == "TOKEN" else probes.transaction()
        digest = callback.sign(secret)
        other = _wrong(digest, mutation, lambda: callback.sign(secret + "-not-it"))
        obj = copy.deepcopy(callback.obj)
        if mutation == "tampered":
            if channel == "TOKEN":
                obj["masked_pan"] = "xxxx-xxxx-xxxx-0000"
            else:
                obj["amount_cents"] = obj["amount_cents"] + 100_000
        if channel == "GET":
            return [probes.get(obj, other)]
        return [_post(probes.target.webhook_url, {**callback.body, "obj": obj}, other)]

    return build


def _forged(
    probes: _Probes, change: Callable[[dict[str, Any]], None]
) -> list[delivery.HttpRequest]:
    """A correctly signed declined TRANSACTION, reshaped after signing by ``change``."""
    callback = probes.transaction()
    obj = copy.deepcopy(callback.obj)
    change(obj)
    assert callback.sign(probes.target.secret) == callbacks.Callback(
        CallbackKind.TRANSACTION, {"obj": obj}
    ).sign(probes.target.secret), "a forgery must keep the signed string"
    return [probes.post(callback, body={**callback.body, "obj": obj})]


def _field_shift(obj: dict[str, Any]) -> None:
    # The signed string has order.id then owner with no separator (reference §8.1, §14): a bare
    # integer order renders order.id as "", and its digits in front of owner restore the string.
    order_id = obj["order"]["id"]
    obj["order"] = order_id + 1  # "another" order (still a probe id no real order has)
    obj["owner"] = int(f"{order_id}{obj['owner']}")


def _float_id(obj: dict[str, Any]) -> None:
    obj["id"] = float(obj["id"])  # 999800000123.0 renders as 999800000123


_SIGNED_FLAGS = (
    "error_occured",
    "has_parent_transaction",
    "is_3d_secure",
    "is_auth",
    "is_capture",
    "is_refunded",
    "is_standalone_payment",
    "is_voided",
    "pending",
    "success",
)


def _string_booleans(obj: dict[str, Any]) -> None:
    for name in _SIGNED_FLAGS:
        obj[name] = "true" if obj[name] else "false"


def _extra_fields(probes: _Probes) -> list[delivery.HttpRequest]:
    callback = probes.transaction()
    obj = {**callback.obj, "paymobctl_future_field": {"nested": [1, "two", None]}}
    body = {**callback.body, "obj": obj, "paymobctl_future_envelope": True}
    return [probes.post(callback, body=body)]


def _unsigned_nulls(probes: _Probes) -> list[delivery.HttpRequest]:
    callback = probes.transaction()
    obj = copy.deepcopy(callback.obj)
    for name in ("data", "payment_key_claims", "terminal_id", "installment", "merchant_staff_tag"):
        obj[name] = None
    obj["order"]["shipping_data"] = None
    obj["order"]["merchant_order_id"] = None
    return [probes.post(callback, body={**callback.body, "obj": obj})]


def _large(probes: _Probes) -> list[delivery.HttpRequest]:
    callback = probes.transaction()
    size = len(delivery.wire_json(callback.body))
    obj = {**callback.obj, "paymobctl_padding": ""}
    padding = ONE_MB - size - len(',"paymobctl_padding":""')
    obj["paymobctl_padding"] = "x" * max(0, padding)
    return [probes.post(callback, body={**callback.body, "obj": obj})]


def _not_json(probes: _Probes) -> list[delivery.HttpRequest]:
    callback = probes.transaction()
    url = callbacks.with_query(
        probes.target.webhook_url, f"hmac={callback.sign(probes.target.secret)}"
    )
    return [
        delivery.HttpRequest(
            "POST",
            url,
            b'{"type": "TRANSACTION", "obj": {"id": 1,',
            (("Content-Type", "application/json"), ("User-Agent", delivery.USER_AGENT)),
        )
    ]


def _wrong_type(probes: _Probes) -> list[delivery.HttpRequest]:
    request = probes.post(probes.transaction())
    headers = tuple(
        ("Content-Type", "text/plain") if name.lower() == "content-type" else (name, value)
        for name, value in request.headers
    )
    return [delivery.HttpRequest("POST", request.url, request.body, headers)]


def _concurrent(probes: _Probes) -> list[delivery.HttpRequest]:
    return [
        probes.post(probes.transaction(Outcome.APPROVED)) for _ in range(probes.target.concurrency)
    ]


def _builders() -> dict[str, Callable[[_Probes], list[delivery.HttpRequest]]]:
    builders: dict[str, Callable[[_Probes], list[delivery.HttpRequest]]] = {
        f"PMB-WH-{n + 1:03d}": _valid_transaction(n) for n in range(len(_VALID_TRANSACTIONS))
    }
    builders.update({"PMB-WH-020": _twice, "PMB-WH-021": _token, "PMB-WH-022": _redirect})
    number = 30
    for channel, _ in _CHANNELS:
        for mutation, _, _ in _MUTATIONS:
            builders[f"PMB-WH-{number:03d}"] = _signature_case(channel, mutation)
            number += 1
    builders.update(
        {
            "PMB-WH-050": lambda p: _forged(p, _field_shift),
            "PMB-WH-051": lambda p: _forged(p, _float_id),
            "PMB-WH-052": lambda p: _forged(p, _string_booleans),
            "PMB-WH-060": _extra_fields,
            "PMB-WH-061": _unsigned_nulls,
            "PMB-WH-062": _large,
            "PMB-WH-063": _not_json,
            "PMB-WH-064": _wrong_type,
            "PMB-WH-072": _concurrent,
        }
    )
    return builders


BUILDERS = _builders()
_GET_CASES = frozenset({"PMB-WH-022", "PMB-WH-038", "PMB-WH-039", "PMB-WH-040", "PMB-WH-041"})


def requests_for(case_id: str, target: Target) -> list[delivery.HttpRequest]:
    """The exact requests a case sends (for tests and ``--print``-style inspection)."""
    return BUILDERS[case_id](_Probes(target))


# --- grading -------------------------------------------------------------------------------------


def _observed(results: Sequence[delivery.Result]) -> str:
    parts: list[str] = []
    for result in results:
        parts.append(
            str(result.status) if result.status is not None else (result.error or "no answer")
        )
    if len(set(parts)) == 1 and len(parts) > 2:
        return f"HTTP {parts[0]} ×{len(parts)}"
    return "HTTP " + ", ".join(parts)


def _meets(expect: Expect, status: int | None) -> bool:
    if status is None:
        return False
    if expect is Expect.ACCEPT:
        return 200 <= status < 300
    if expect is Expect.ACCEPT_OR_REDIRECT:
        return 200 <= status < 400
    if expect is Expect.REJECT:
        return 400 <= status < 500
    return status < 500


def grade(case: Case, results: Sequence[delivery.Result], *, csrf_status: int | None) -> CaseResult:
    """Grade a case's answers. ``csrf_status``: the status CSRF protection answered (if it did)."""
    statuses = tuple(r.status for r in results)
    observed = _observed(results)

    def done(status: Status, detail: str, severity: Severity = case.severity) -> CaseResult:
        return CaseResult(
            case,
            status,
            observed,
            detail,
            severity=severity if status is Status.FAIL else Severity.INFO,
            statuses=statuses,
            latencies_ms=tuple(r.latency_ms for r in results),
            excerpt=results[0].excerpt if results else "",
        )

    blocked = csrf_status is not None and all(s == csrf_status for s in statuses)
    if blocked and case.id not in _GET_CASES:
        if case.expect is Expect.ACCEPT:
            return done(Status.FAIL, f"blocked by CSRF protection ({observed}), see PMB-WH-070")
        return done(Status.SKIP, "blocked by CSRF protection before the view ran (PMB-WH-070)")
    if all(_meets(case.expect, s) for s in statuses):
        return done(Status.PASS, f"expected {case.expect.value}, got {observed}")
    if any(s is None for s in statuses):
        first = next(r for r in results if r.status is None)
        return done(Status.FAIL, f"no answer: {first.error_message or first.error}")
    if case.expect is Expect.REJECT and any(200 <= (s or 0) < 300 for s in statuses):
        return done(Status.FAIL, f"accepted ({observed}): a forged callback would be acted on")
    if any((s or 0) >= 500 for s in statuses):
        # A crash is never right, but rejecting by crashing is an error, not an acceptance.
        return done(
            Status.FAIL,
            f"server error ({observed}) where a correct receiver answers {case.expect.value}",
            min(case.severity, Severity.ERROR) if case.expect is Expect.REJECT else case.severity,
        )
    return done(Status.FAIL, f"expected {case.expect.value}, got {observed}")


def _percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (0 < fraction ≤ 1) of a non-empty sequence."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def _latency_result(target: Target, graded: Sequence[CaseResult]) -> CaseResult:
    case = CASES["PMB-WH-071"]
    latencies = [
        ms
        for r in graded
        if r.case.expect in (Expect.ACCEPT, Expect.ACCEPT_OR_REDIRECT) and r.status is Status.PASS
        for ms in r.latencies_ms
    ]
    if not latencies:
        return CaseResult(case, Status.SKIP, "—", "no valid delivery was accepted to time")
    p99 = _percentile(latencies, 0.99)
    observed = f"p99 {p99:.0f} ms over {len(latencies)} deliveries"
    budget = f"budget {target.max_latency_ms:.0f} ms"
    status = Status.PASS if p99 <= target.max_latency_ms else Status.FAIL
    return CaseResult(
        case, status, observed, f"{observed} ({budget})", latencies_ms=tuple(latencies)
    )


def _csrf_result(
    http: httpx.Client, probes: _Probes
) -> tuple[CaseResult, int | None, delivery.Result]:
    """PMB-WH-070, and the status CSRF protection answers with (None when it does not block)."""
    case = CASES["PMB-WH-070"]
    request = probes.post(probes.transaction())
    answer = _send(http, "POST", request.url, request.body, probes.target.timeout)
    result = delivery.Result(
        request.url,
        status=answer.status,
        latency_ms=answer.ms,
        excerpt=answer.text[: delivery.EXCERPT_CHARS],
        error="other" if answer.status is None else None,
        error_message=answer.error,
    )
    observed = _observed([result])
    statuses = (answer.status,)
    if answer.status is None:
        detail = f"no answer: {answer.error}"
        return (
            CaseResult(case, Status.FAIL, observed, detail, case.severity, statuses),
            None,
            result,
        )
    if _is_csrf(answer):
        detail = f"the POST was rejected by CSRF protection ({observed})"
        failed = CaseResult(case, Status.FAIL, observed, detail, case.severity, statuses)
        return failed, answer.status, result
    detail = f"not blocked by CSRF protection ({observed})"
    return CaseResult(case, Status.PASS, observed, detail, statuses=statuses), None, result


def _send_all(
    http: httpx.Client, requests: Sequence[delivery.HttpRequest], timeout: float, concurrent: bool
) -> list[delivery.Result]:
    if not concurrent:
        return [delivery.attempt(http, request, timeout=timeout) for request in requests]
    with ThreadPoolExecutor(max_workers=len(requests)) as pool:
        return list(pool.map(lambda r: delivery.attempt(http, r, timeout=timeout), requests))


def run(target: Target, *, http: httpx.Client, only: Sequence[str] = ()) -> Report:
    """Send every case (or ``only`` those ids) to ``target`` and grade the answers."""
    started = time.perf_counter()
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    probes = _Probes(target)
    first_order = probes.order_base + 1
    csrf, csrf_status, first = _csrf_result(http, probes)
    if first.status is None:
        # Nothing answers at all: one result says so, and the exit code is 3.
        return Report(
            target.webhook_url,
            target.response_url,
            started_at,
            (time.perf_counter() - started) * 1000,
            [csrf],
            reachable=False,
            order_ids=(first_order, probes.order_base + probes.used),
        )
    graded: list[CaseResult] = []
    for case_id, case in CASES.items():
        if only and case_id not in only:
            continue
        if case_id == "PMB-WH-070":
            graded.append(csrf)
            continue
        if case_id == "PMB-WH-071":
            continue
        if case_id in _GET_CASES and target.response_url is None:
            graded.append(
                CaseResult(
                    case, Status.SKIP, "—", "no response URL: pass --response-url to test it"
                )
            )
            continue
        requests = BUILDERS[case_id](probes)
        results = _send_all(http, requests, target.timeout, concurrent=case_id == "PMB-WH-072")
        graded.append(grade(case, results, csrf_status=csrf_status))
    if not only or "PMB-WH-071" in only:
        graded.append(_latency_result(target, graded))
    graded.sort(key=lambda r: r.case.id)
    return Report(
        target.webhook_url,
        target.response_url,
        started_at,
        (time.perf_counter() - started) * 1000,
        graded,
        reachable=True,
        order_ids=(first_order, probes.order_base + probes.used),
    )
