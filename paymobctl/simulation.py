"""``simulate``'s core: turn options into the exact signed request Paymob would send, send it,
and record the delivery."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from paymobctl import callbacks, delivery, outbound, overrides, redirects
from paymobctl.callbacks import Callback, TransactionSpec
from paymobctl.models import CardBrand, KeyFlow, Outcome, PaymentSource, Region, lenient_int
from paymobctl.overrides import Override
from paymobctl.signing import CallbackKind

if TYPE_CHECKING:
    import httpx

    from paymobctl.config import IntKey, Settings
    from paymobctl.store import Event, Store


class Signature(StrEnum):
    """How a simulated callback is signed: correctly, not at all, or with a wrong HMAC."""

    SIGNED = "signed"
    UNSIGNED = "unsigned"
    BAD = "bad-hmac"


class What(StrEnum):
    """Which callback ``simulate`` sends."""

    TRANSACTION = "transaction"
    TOKEN = "token"
    RESPONSE = "response"


@dataclass(frozen=True)
class Request:
    """Everything ``simulate`` needs to build one callback."""

    what: What
    outcome: Outcome = Outcome.APPROVED
    source: PaymentSource = PaymentSource.CARD
    brand: CardBrand = CardBrand.MASTERCARD
    amount_cents: int = 10000
    currency: str = "EGP"
    region: Region = Region.EG
    order_id: int | None = None
    merchant_order_id: str | None = None
    integration_id: int = 4822951
    merchant_id: int = 1835600
    is_live: bool = False
    overrides: tuple[Override, ...] = ()
    seed: int | None = None
    signature: Signature = Signature.SIGNED
    flow: KeyFlow = KeyFlow.INTENTION


_INTEGRATION_KEYS: dict[PaymentSource, IntKey] = {
    PaymentSource.CARD: "integration_id",
    PaymentSource.WALLET: "wallet_integration_id",
    PaymentSource.KIOSK: "kiosk_integration_id",
}


def integration_for(settings: Settings, source: PaymentSource) -> int:
    """The integration a ``source`` payment runs on: the profile's id for that source, else a
    distinct default (wallet and kiosk: the sandbox's), never the card id for a wallet."""
    from paymobctl.sandbox_profile import SANDBOX

    defaults = {
        PaymentSource.CARD: Request.integration_id,
        PaymentSource.WALLET: SANDBOX.wallet_integration_id,
        PaymentSource.KIOSK: SANDBOX.kiosk_integration_id,
    }
    configured = settings.get(_INTEGRATION_KEYS[source])
    return configured if configured is not None else defaults[source]


@dataclass(frozen=True)
class Prepared:
    """A callback ready to send: the signed request and what it says, for the summary and store."""

    what: What
    kind: CallbackKind
    request: delivery.HttpRequest
    obj: dict[str, Any]
    hmac: str | None
    outcome: Outcome | None
    source: PaymentSource | None
    transaction_id: int | None
    order_id: int | None
    merchant_order_id: str | None
    signature: Signature = Signature.SIGNED
    notes: tuple[str, ...] = field(default_factory=tuple)


def transaction_spec(req: Request) -> TransactionSpec:
    """The TRANSACTION ``req`` asks for (ids and times left to the builder)."""
    return TransactionSpec(
        outcome=req.outcome,
        source=req.source,
        brand=req.brand,
        amount_cents=req.amount_cents,
        currency=req.currency,
        region=req.region,
        order_id=req.order_id,
        merchant_order_id=req.merchant_order_id,
        integration_id=req.integration_id,
        merchant_id=req.merchant_id,
        is_live=req.is_live,
        seed=req.seed,
        flow=req.flow,
    )


def _signature(
    kind: CallbackKind, obj: dict[str, Any], secret: str | None, mode: Signature
) -> str | None:
    if mode is Signature.UNSIGNED:
        return None
    assert secret is not None
    from paymobctl import signing

    digest = signing.compute(kind, obj, secret)
    if mode is Signature.BAD:
        # Still 128 lowercase hex characters, so only the value is wrong.
        digest = digest[:-1] + ("0" if digest[-1] != "0" else "1")
    return digest


def prepare(
    req: Request,
    *,
    url: str,
    secret: str | None,
    store: Store | None = None,
    now: datetime | None = None,
) -> Prepared:
    """Build the callback, apply ``--set`` overrides, sign, and shape the HTTP request."""
    notes: list[str] = []
    wire: bytes | None = None  # the body's bytes, while nothing has changed it
    if req.what is What.TOKEN:
        callback, notes = _token(req, store, now)
    elif req.what is What.RESPONSE:  # a GET: no body to send
        callback = callbacks.build_transaction(transaction_spec(req), now=now)
    else:
        callback, wire = callbacks.build_transaction_with_wire(transaction_spec(req), now=now)
    body = callback.body
    if req.overrides:  # the body was just built: nobody else holds it
        body = overrides.apply_overrides(body, req.overrides, in_place=True)
        wire = None
    obj = callback.obj
    kind = CallbackKind.RESPONSE if req.what is What.RESPONSE else callback.kind
    signed_kind = CallbackKind.TRANSACTION if kind is CallbackKind.RESPONSE else kind
    digest = _signature(signed_kind, obj, secret, req.signature)
    url = redirects.without_param(url, "hmac")  # a stale ?hmac= in --to would shadow ours
    if req.what is What.RESPONSE:
        query = redirects.encode_params(redirects.redirect_params(obj, digest))
        request = delivery.get(redirects.with_query(url, query))
    else:
        target = redirects.with_query(url, f"hmac={digest}") if digest else url
        request = delivery.post_json(target, body, wire=wire)
    order = obj.get("order")
    order_id = order.get("id") if isinstance(order, dict) else obj.get("order_id")
    outcome = None if req.what is What.TOKEN else sent_outcome(req.outcome, obj, req.overrides)
    if outcome is not None and outcome is not req.outcome:
        notes.append(
            f"--set changed the outcome: the callback says {outcome.value} "
            f"(preset --outcome {req.outcome.value})"
        )
    return Prepared(
        what=req.what,
        kind=kind,
        request=request,
        obj=obj,
        hmac=digest,
        outcome=outcome,
        source=None if req.what is What.TOKEN else req.source,
        transaction_id=obj.get("id")
        if isinstance(obj.get("id"), int) and req.what is not What.TOKEN
        else None,
        order_id=lenient_int(order_id),
        merchant_order_id=order.get("merchant_order_id") if isinstance(order, dict) else None,
        signature=req.signature,
        notes=tuple(notes),
    )


OUTCOME_FIELDS = frozenset({"success", "pending"})


def sent_outcome(preset: Outcome, obj: dict[str, Any], overrides: tuple[Any, ...]) -> Outcome:
    """What the callback says happened: the preset, unless ``--set`` changed ``success`` or
    ``pending`` (then the summary and history describe what was sent, not the preset)."""
    touched = any(o.path[-1] in OUTCOME_FIELDS for o in overrides if o.path)
    if not touched:
        return preset

    def flag(name: str) -> bool:
        return obj.get(name) is True or obj.get(name) == "true"

    failures = (Outcome.DECLINED, Outcome.INSUFFICIENT_FUNDS, Outcome.AUTH_FAILED)
    if flag("pending"):
        return Outcome.PENDING
    if flag("success"):  # approved (or the refund/void/capture the preset made)
        return Outcome.APPROVED if preset in (*failures, Outcome.PENDING) else preset
    return preset if preset in failures else Outcome.DECLINED


def _token(req: Request, store: Store | None, now: datetime | None) -> tuple[Callback, list[str]]:
    notes: list[str] = []
    earlier = store.latest_transaction_payload(req.order_id) if (store and req.order_id) else None
    if earlier is not None:
        spec = callbacks.token_spec_for(earlier, seed=req.seed, region=req.region)
        notes.append(f"matches the transaction simulated earlier for order {req.order_id}")
    else:
        transaction = callbacks.build_transaction(
            transaction_spec(replace(req, outcome=Outcome.APPROVED, what=What.TRANSACTION)), now=now
        )
        spec = callbacks.token_spec_for(transaction.obj, seed=req.seed, region=req.region)
        if req.order_id:
            notes.append(
                f"no transaction was simulated for order {req.order_id}: card details are invented"
            )
    return callbacks.build_token(spec, now=now), notes


def send(
    prepared: Prepared,
    *,
    client: httpx.Client,
    timeout: float,
    store: Store | None,
    origin: str = "simulate",
) -> delivery.Result:
    """Send once, record the delivery (request and answer), and return the result."""
    result = delivery.attempt(client, prepared.request, timeout=timeout)
    if store is not None:
        record(prepared, store, origin=origin, result=result)
    return result


def record(prepared: Prepared, store: Store, *, origin: str, result: delivery.Result | None) -> int:
    """A prepared callback (sent when ``result`` is given) into the deliveries table."""
    return record_sent(
        store,
        prepared.request,
        result,
        origin=origin,
        kind=prepared.kind.value,
        signature=prepared.signature.value,
        outcome=prepared.outcome.value if prepared.outcome else None,
        source=prepared.source.value if prepared.source else None,
        transaction_id=prepared.transaction_id,
        order_id=prepared.order_id,
        merchant_order_id=prepared.merchant_order_id,
        payload=prepared.obj,
    )


def record_sent(
    store: Store,
    request: delivery.HttpRequest,
    result: delivery.Result | None,
    *,
    origin: str,
    kind: str,
    signature: str,
    outcome: str | None = None,
    source: str | None = None,
    transaction_id: int | None = None,
    order_id: int | None = None,
    merchant_order_id: str | None = None,
    payload: dict[str, Any] | None = None,
) -> int:
    """One request sent (or only printed: ``result`` None) and its answer, as a delivery row:
    the one writer for ``simulate``, ``events replay`` and the inspector's replay."""
    return store.record_delivery(
        origin=origin,
        kind=kind,
        method=request.method,
        url=request.url,
        request_headers=request.headers,
        request_body=request.body,
        signature=signature,
        outcome=outcome,
        source=source,
        transaction_id=transaction_id,
        order_id=order_id,
        merchant_order_id=merchant_order_id,
        payload=payload,
        status=result.status if result else None,
        latency_ms=result.latency_ms if result else None,
        response_headers=result.headers if result else (),
        response_excerpt=result.excerpt if result else None,
        error=(result.error_message or result.error) if result and result.error else None,
    )


# --- replaying a stored request ------------------------------------------------------------------


def check_replayable(event: Event) -> None:
    """A usage error unless ``event`` is a callback (a GET or POST of a known kind)."""
    from paymobctl.errors import UsageError

    if event.kind == "UNKNOWN" or event.method not in ("GET", "POST"):
        raise UsageError(
            f"event {event.id} is not a callback ({event.method} {event.path}): nothing to replay"
        )


def replay_target(event: Event, settings: Settings) -> str:
    """Where a replay goes by default: the profile's response callback URL for a GET redirect,
    its processed callback URL for a POST; a usage error when it has none."""
    from paymobctl.errors import UsageError

    key = "response_callback_url" if event.method == "GET" else "processed_callback_url"
    target = str(settings.get(key) or "")
    if not target:
        raise UsageError("no target", hint="pass --to URL")
    return target


def record_replay(
    store: Store, event: Event, request: delivery.HttpRequest, result: delivery.Result
) -> int:
    """A replay goes into the deliveries table (``simulate history``) like any sent callback."""
    return record_sent(
        store,
        request,
        result,
        origin="replay",
        kind=event.kind,
        signature="signed" if event.hmac else "unsigned",
        transaction_id=event.transaction_id,
        order_id=event.order_id,
    )


def replay(
    store: Store, event: Event, target: str, *, timeout: float, verify: bool = True
) -> tuple[delivery.HttpRequest, delivery.Result]:
    """Re-send a stored request byte for byte to ``target`` once, and record the delivery."""
    from paymobctl.forwarding import replay_request

    request = replay_request(event, target)
    with outbound.client(verify=verify) as client:
        result = delivery.attempt(client, request, timeout=timeout)
    record_replay(store, event, request, result)
    return request, result
