"""The requests each conformance case sends, built with :mod:`paymobctl.callbacks` (Paymob's
shapes) for probe orders no real order has; forgeries reshape a correctly signed callback."""

from __future__ import annotations

import copy
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from paymobctl import callbacks, delivery, redirects
from paymobctl.callbacks import Callback, TokenSpec, TransactionSpec
from paymobctl.conformance.cases import (
    CHANNELS,
    CONCURRENT,
    MUTATIONS,
    VALID_TRANSACTIONS,
)
from paymobctl.models import Outcome, PaymentSource, Region
from paymobctl.signing import TRANSACTION_BOOLEANS, CallbackKind

# Probe ids: far above any real Paymob order or transaction (the checklist uses the same ranges).
PROBE_ORDER_BASE = 999_900_000_000
PROBE_TRANSACTION_BASE = 999_800_000_000
ONE_MB = 1_000_000  # the "1 MB valid body" case: just under listen's 1 MiB limit


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


# --- building the requests -----------------------------------------------------------------------


@dataclass
class Probes:
    """Builds each case's requests with fresh probe ids (order and transaction) every time."""

    target: Target
    run_tag: str = field(default_factory=lambda: secrets.token_hex(4))
    order_base: int = field(
        default_factory=lambda: PROBE_ORDER_BASE + secrets.randbelow(90_000) * 1000
    )
    used: int = 0

    def next_ids(self) -> tuple[int, int]:
        """A fresh (order id, transaction id) pair from the probe ranges for the next request."""
        self.used += 1
        return self.order_base + self.used, PROBE_TRANSACTION_BASE + (
            self.order_base - PROBE_ORDER_BASE + self.used
        )

    def transaction(
        self, outcome: Outcome = Outcome.DECLINED, source: PaymentSource = PaymentSource.CARD
    ) -> Callback:
        """A correctly signed TRANSACTION callback (declined by default) for a fresh probe order."""
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
        """A correctly signed TOKEN callback for a fresh probe order."""
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
        """The GET redirect to the response URL: ``obj`` as its query, signed with ``digest``."""
        assert self.target.response_url is not None
        query = redirects.encode_params(redirects.redirect_params(obj, digest))
        return delivery.get(redirects.with_query(self.target.response_url, query))


def _post(url: str, body: Any, digest: str | None) -> delivery.HttpRequest:
    target = redirects.with_query(url, f"hmac={digest}") if digest is not None else url
    return delivery.post_json(target, body)


def _valid_transaction(index: int) -> Callable[[Probes], list[delivery.HttpRequest]]:
    outcome, source, _ = VALID_TRANSACTIONS[index]

    def build(probes: Probes) -> list[delivery.HttpRequest]:
        return [probes.post(probes.transaction(outcome, source))]

    return build


def _twice(probes: Probes) -> list[delivery.HttpRequest]:
    request = probes.post(probes.transaction(Outcome.APPROVED))
    return [request, request]


def _token(probes: Probes) -> list[delivery.HttpRequest]:
    return [probes.post(probes.token())]


def _redirect(probes: Probes) -> list[delivery.HttpRequest]:
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


def _signature_case(channel: str, mutation: str) -> Callable[[Probes], list[delivery.HttpRequest]]:
    def build(probes: Probes) -> list[delivery.HttpRequest]:
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


def _forged(probes: Probes, change: Callable[[dict[str, Any]], None]) -> list[delivery.HttpRequest]:
    """A correctly signed declined TRANSACTION, reshaped after signing by ``change``."""
    callback = probes.transaction()
    obj = copy.deepcopy(callback.obj)
    change(obj)
    assert callback.sign(probes.target.secret) == callbacks.Callback(
        CallbackKind.TRANSACTION, {"obj": obj}
    ).sign(probes.target.secret), "a forgery must keep the signed string"
    return [probes.post(callback, body={**callback.body, "obj": obj})]


def _field_shift(obj: dict[str, Any]) -> None:
    # The signed string has order.id then owner with no separator (docs/paymob.md §8.1, §14): a bare
    # integer order renders order.id as "", and its digits in front of owner restore the string.
    order_id = obj["order"]["id"]
    obj["order"] = order_id + 1  # "another" order (still a probe id no real order has)
    obj["owner"] = int(f"{order_id}{obj['owner']}")


def _float_id(obj: dict[str, Any]) -> None:
    obj["id"] = float(obj["id"])  # 999800000123.0 renders as 999800000123


_SIGNED_FLAGS = TRANSACTION_BOOLEANS  # the ten signed flags (signing, docs/paymob.md §8.1)


def _string_booleans(obj: dict[str, Any]) -> None:
    for name in _SIGNED_FLAGS:
        obj[name] = "true" if obj[name] else "false"


def _extra_fields(probes: Probes) -> list[delivery.HttpRequest]:
    callback = probes.transaction()
    obj = {**callback.obj, "paymobctl_future_field": {"nested": [1, "two", None]}}
    body = {**callback.body, "obj": obj, "paymobctl_future_envelope": True}
    return [probes.post(callback, body=body)]


def _unsigned_nulls(probes: Probes) -> list[delivery.HttpRequest]:
    callback = probes.transaction()
    obj = copy.deepcopy(callback.obj)
    for name in ("data", "payment_key_claims", "terminal_id", "installment", "merchant_staff_tag"):
        obj[name] = None
    obj["order"]["shipping_data"] = None
    obj["order"]["merchant_order_id"] = None
    return [probes.post(callback, body={**callback.body, "obj": obj})]


def _large(probes: Probes) -> list[delivery.HttpRequest]:
    callback = probes.transaction()
    size = len(delivery.wire_json(callback.body))
    obj = {**callback.obj, "paymobctl_padding": ""}
    padding = ONE_MB - size - len(',"paymobctl_padding":""')
    obj["paymobctl_padding"] = "x" * max(0, padding)
    return [probes.post(callback, body={**callback.body, "obj": obj})]


def _not_json(probes: Probes) -> list[delivery.HttpRequest]:
    callback = probes.transaction()
    url = redirects.with_query(
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


def _wrong_type(probes: Probes) -> list[delivery.HttpRequest]:
    request = probes.post(probes.transaction())
    headers = tuple(
        ("Content-Type", "text/plain") if name.lower() == "content-type" else (name, value)
        for name, value in request.headers
    )
    return [delivery.HttpRequest("POST", request.url, request.body, headers)]


def _concurrent(probes: Probes) -> list[delivery.HttpRequest]:
    return [
        probes.post(probes.transaction(Outcome.APPROVED)) for _ in range(probes.target.concurrency)
    ]


def _builders() -> dict[str, Callable[[Probes], list[delivery.HttpRequest]]]:
    builders: dict[str, Callable[[Probes], list[delivery.HttpRequest]]] = {
        f"PMB-WH-{n + 1:03d}": _valid_transaction(n) for n in range(len(VALID_TRANSACTIONS))
    }
    builders.update({"PMB-WH-020": _twice, "PMB-WH-021": _token, "PMB-WH-022": _redirect})
    number = 30
    for channel, _ in CHANNELS:
        for mutation, _, _ in MUTATIONS:
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
GET_CASES = frozenset({"PMB-WH-022", "PMB-WH-038", "PMB-WH-039", "PMB-WH-040", "PMB-WH-041"})


def requests_for(case_id: str, target: Target) -> list[delivery.HttpRequest]:
    """The exact requests a case sends (for tests and ``--print``-style inspection)."""
    return BUILDERS[case_id](Probes(target))
