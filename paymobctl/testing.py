"""Paymob inside your own tests: the sandbox on a free loopback port, and signed callbacks.

The public testing API (the pytest plugin's fixtures are built on it; it works without pytest)::

    from paymobctl.testing import Sandbox, callback

    with Sandbox() as paymob:                    # a real HTTP server in a background thread
        os.environ.update(paymob.env())          # PAYMOB_API_KEY, ..., PAYMOB_BASE_URL
        paymob.set_callback_urls("http://127.0.0.1:8000/api/payments/webhook/")
        url = my_app_creates_a_deposit()         # your code calls the sandbox over HTTP
        result = paymob.pay(url, save_card=True) # completes the hosted checkout, no browser
        assert paymob.deliveries[0].status == 200

    cb = callback(outcome="declined", order_id=42)   # what ``paymobctl simulate`` sends
    cb.send(django_client)                           # or a URL, an httpx/requests session,
                                                     # a Starlette/FastAPI TestClient

Everything here reuses the product: the emulator app (``paymobctl.emulator``) served by
``paymobctl.serving``, the checkout "browser" (``paymobctl.checkout``) and the callback builders
of ``simulate`` (``paymobctl.simulation``), so a test sees exactly what ``paymobctl`` users see.
"""

from __future__ import annotations

import copy
import inspect
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Literal

from paymobctl import callbacks, delivery, outbound, overrides, redirects, simulation
from paymobctl.checkout import DEFAULT_OTP, Card, CheckoutResult
from paymobctl.documents import loads_json
from paymobctl.errors import UsageError, WaitTimedOut
from paymobctl.models import CardBrand, Outcome, PaymentSource, lenient_int
from paymobctl.sandbox_profile import RESPONSE_PATH, SANDBOX, WEBHOOK_PATH, SandboxCredentials

if TYPE_CHECKING:
    from types import TracebackType

    import httpx

    from paymobctl.serving import Background

__all__ = [
    "Callbacks",
    "Card",
    "CheckoutResult",
    "Delivery",
    "Sandbox",
    "SignedCallback",
    "callback",
    "response",
    "token",
]

Kind = Literal["transaction", "token", "response"]

# Deliveries in tests: retried like Paymob's (our assumption, emulator/notifier.py), but fast.
TEST_RETRY_POLICY = delivery.RetryPolicy(
    attempts=3, first_delay=0.05, factor=2.0, max_delay=0.2, retry_on=frozenset({"non-2xx"})
)


# --- signed callbacks ----------------------------------------------------------------------------


class SignedCallback:
    """One callback as Paymob would send it. ``json`` is the body (mutable: change a field after
    signing to get a tampered callback); ``hmac`` the signature computed when it was built."""

    def __init__(self, kind: Kind, hmac: str | None, *, wire: bytes | None, obj: dict[str, Any]):
        self.kind: Kind = kind
        self.hmac = hmac
        self._wire = wire  # the bytes simulate would send, until .json is asked for
        self._json: dict[str, Any] | None = None if wire is not None else {"obj": obj}

    def __repr__(self) -> str:
        return f"<SignedCallback {self.kind} hmac={(self.hmac or 'none')[:12]}…>"

    @property
    def json(self) -> dict[str, Any]:
        """The callback's JSON document (parsed from the exact bytes on first use)."""
        if self._json is None:
            assert self._wire is not None
            self._json = loads_json(self._wire)
        return self._json

    @property
    def obj(self) -> dict[str, Any]:
        """The callback's ``obj``: the transaction or saved card itself."""
        obj = self.json["obj"]
        assert isinstance(obj, dict)
        return obj

    @property
    def method(self) -> str:
        """How Paymob sends it: GET for the response redirect, POST for the others."""
        return "GET" if self.kind == "response" else "POST"

    @property
    def query(self) -> str:
        """``hmac=…`` for a POSTed callback; the whole flattened, signed query for a response."""
        if self.kind == "response":
            return redirects.encode_params(redirects.redirect_params(self.obj, self.hmac))
        return f"hmac={self.hmac}" if self.hmac is not None else ""

    @property
    def content(self) -> bytes | None:
        """The body's bytes exactly as sent (compact UTF-8 JSON); None for a GET response."""
        if self.kind == "response":
            return None
        return self._wire if self._json is None else delivery.wire_json(self._json)

    @property
    def headers(self) -> dict[str, str]:
        """The headers Paymob sends with it (the JSON content type for a POST)."""
        return {"Content-Type": "application/json"} if self.kind != "response" else {}

    def url(self, base: str) -> str:
        """``base`` (a URL or a path) with this callback's query (any stale ``hmac=`` removed)."""
        target = redirects.without_param(base, "hmac")
        return redirects.with_query(target, self.query) if self.query else target

    def send(self, target: Any, path: str | None = None, *, timeout: float = 10.0) -> Any:
        """Deliver to ``target``: a URL, an ``httpx.Client`` (a Starlette/FastAPI ``TestClient``
        is one), a ``requests.Session``, or a Django test ``Client``; clients get ``path``
        (default: the integration guide's webhook or response path). Returns the client's own
        response; for a URL, a ``paymobctl.delivery.Result`` (``.status``, ``.ok``)."""
        if isinstance(target, str):
            request = delivery.HttpRequest(
                self.method, self.url(target), self.content, (*self.headers.items(),)
            )
            with outbound.client() as http:
                result = delivery.attempt(http, request, timeout=timeout)
            delivery.raise_for(result, timeout=timeout)
            return result
        where = self.url(path or (RESPONSE_PATH if self.kind == "response" else WEBHOOK_PATH))
        module = type(target).__module__
        request_method = getattr(target, "request", None)
        if module.startswith("django.") and hasattr(target, "generic"):
            content_type = self.headers.get("Content-Type", "application/octet-stream")
            return target.generic(self.method, where, self.content or b"", content_type)
        if inspect.iscoroutinefunction(request_method):
            raise UsageError(
                f"{type(target).__name__} is asynchronous: send() cannot await it",
                hint="await client.request(cb.method, cb.url(path), content=cb.content, "
                "headers=cb.headers)",
            )
        if module.startswith("requests.") and callable(request_method):
            return request_method(
                self.method, where, data=self.content, headers=self.headers, timeout=timeout
            )
        if hasattr(target, "build_request") and callable(request_method):
            # httpx.Client (and httpx2's, which TestClient is): the client's own timeout applies.
            return request_method(self.method, where, content=self.content, headers=self.headers)
        raise UsageError(
            f"cannot send a callback with a {type(target).__name__}",
            hint="pass a URL, an httpx.Client, a requests.Session, a Django test Client or a "
            "Starlette/FastAPI TestClient",
        )


def _enum(kind: type[Any], value: object, what: str) -> Any:
    try:
        return kind(value)
    except ValueError:
        choices = ", ".join(str(member.value) for member in kind)
        raise UsageError(f"{what}={value!r} is not one of: {choices}") from None


def callback(
    kind: Kind = "transaction",
    *,
    outcome: Outcome | str = Outcome.APPROVED,
    source: PaymentSource | str = PaymentSource.CARD,
    brand: CardBrand | str = CardBrand.MASTERCARD,
    order_id: int | None = None,
    merchant_order_id: str | None = None,
    amount_cents: int = 10000,
    currency: str = SANDBOX.currency,
    integration_id: int = SANDBOX.integration_id,
    set: Mapping[str, Any] | None = None,  # the name of ``simulate --set``
    secret: str | None = None,
    signed: bool = True,
    seed: int | None = None,
) -> SignedCallback:
    """The callback ``paymobctl simulate`` would send, signed with ``secret`` (default: the
    sandbox's HMAC secret). ``set`` changes fields before signing, by dotted path from the body's
    top level (``{"obj.source_data.pan": "1111"}``), exactly like ``simulate --set``."""
    key = secret if secret is not None else SANDBOX.hmac_secret
    if kind == "transaction" and not set and signed:
        # The common case, built and signed without the dict (``.json`` parses the bytes).
        spec = _transaction_spec(
            outcome, source, brand, amount_cents, currency, order_id, merchant_order_id,
            integration_id, seed,
        )  # fmt: skip
        wire, digest = callbacks.signed_transaction_wire(spec, key)
        return SignedCallback(kind, digest, wire=wire, obj={})
    what = _enum(simulation.What, kind, "kind")
    changes = tuple(
        overrides.Override(tuple(path.split(".")), value, f"{path}={value!r}")
        for path, value in (set or {}).items()
    )
    request = simulation.Request(
        what=what,
        outcome=_enum(Outcome, outcome, "outcome"),
        source=_enum(PaymentSource, source, "source"),
        brand=_enum(CardBrand, brand, "brand"),
        amount_cents=amount_cents,
        currency=currency,
        order_id=order_id,
        merchant_order_id=merchant_order_id,
        integration_id=integration_id,
        merchant_id=SANDBOX.merchant_id,
        overrides=changes,
        seed=seed,
        signature=simulation.Signature.SIGNED if signed else simulation.Signature.UNSIGNED,
    )
    prepared = simulation.prepare(request, url=WEBHOOK_PATH, secret=key)
    return SignedCallback(kind, prepared.hmac, wire=prepared.request.body, obj=prepared.obj)


@lru_cache(maxsize=256, typed=True)  # typed: 1 and 1.0 or True build different text
def _transaction_spec(
    outcome: Outcome | str,
    source: PaymentSource | str,
    brand: CardBrand | str,
    amount_cents: int,
    currency: str,
    order_id: int | None,
    merchant_order_id: str | None,
    integration_id: int,
    seed: int | None,
) -> callbacks.TransactionSpec:
    """What ``simulate`` builds for these options (frozen, so one per distinct call is kept)."""
    base = _base_spec(outcome, source, brand, currency, integration_id)
    # ``replace(base, ...)`` without re-running the frozen dataclass's __init__ (8 µs of its
    # 28 guarded setattrs, a tenth of a callback): a copy of base's fields with the four per-call
    # ones changed. TransactionSpec has no __post_init__ nor __slots__ (a test checks equality).
    spec: callbacks.TransactionSpec = object.__new__(callbacks.TransactionSpec)
    spec.__dict__.update(
        base.__dict__,
        amount_cents=amount_cents,
        order_id=order_id,
        merchant_order_id=merchant_order_id,
        seed=seed,
    )
    return spec


@lru_cache(maxsize=64, typed=True)
def _base_spec(
    outcome: Outcome | str,
    source: PaymentSource | str,
    brand: CardBrand | str,
    currency: str,
    integration_id: int,
) -> callbacks.TransactionSpec:
    """What ``simulate`` builds for these options, with the defaults of the per-call ones (a
    test passing a new order id or amount each time validates and builds the rest once)."""
    return simulation.transaction_spec(
        simulation.Request(
            what=simulation.What.TRANSACTION,
            outcome=_enum(Outcome, outcome, "outcome"),
            source=_enum(PaymentSource, source, "source"),
            brand=_enum(CardBrand, brand, "brand"),
            currency=currency,
            integration_id=integration_id,
            merchant_id=SANDBOX.merchant_id,
        )
    )


class Callbacks:
    """``callback``, ``token`` and ``response`` with a fixed HMAC secret (``paymob_callback``)."""

    def __init__(self, secret: str | None = None) -> None:
        self.secret = SANDBOX.hmac_secret if secret is None else secret

    def __call__(self, kind: Kind = "transaction", **options: Any) -> SignedCallback:
        return callback(kind, **{"secret": self.secret, **options})

    def token(self, **options: Any) -> SignedCallback:
        """A TOKEN (saved card) callback signed with this builder's secret."""
        return self("token", **options)

    def response(self, **options: Any) -> SignedCallback:
        """The signed GET response redirect, with this builder's secret."""
        return self("response", **options)


def token(**options: Any) -> SignedCallback:
    """A TOKEN (saved card) callback: ``callback("token", ...)``."""
    return callback("token", **options)


def response(**options: Any) -> SignedCallback:
    """The signed GET redirect to the response URL: ``callback("response", ...)``."""
    return callback("response", **options)


# --- the sandbox -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    """One callback the sandbox sent (or is still sending) and the answer it got."""

    id: int
    kind: str  # TRANSACTION | TOKEN
    url: str  # without the ?hmac= query
    method: str
    body: dict[str, Any] | None
    state: str  # delivered | failed | pending
    status: int | None  # the last attempt's HTTP status (None: no answer, or not tried yet)
    attempts: int
    error: str | None
    transaction_id: int | None

    @property
    def obj(self) -> dict[str, Any]:
        """The delivered callback's ``obj`` ({} for a GET or an unparsable body)."""
        obj = (self.body or {}).get("obj")
        return obj if isinstance(obj, dict) else {}


class Sandbox:
    """The emulator as a real HTTP server on a free loopback port, in a background thread.

    Use it as a context manager. ``hmac_secret`` replaces the demo HMAC secret (the other demo
    credentials are fixed, see ``paymobctl sandbox``); the callback URLs given here are the ones
    ``reset()`` returns to.
    """

    def __init__(
        self,
        *,
        hmac_secret: str | None = None,
        callback_url: str | None = None,
        response_url: str | None = None,
        delivery_timeout: float = 10.0,
    ) -> None:
        creds = SANDBOX if hmac_secret is None else replace(SANDBOX, hmac_secret=hmac_secret)
        self.credentials: SandboxCredentials = creds
        self._urls = (callback_url, response_url)
        self._timeout = delivery_timeout
        self._server: Background | None = None
        self._http: httpx.Client | None = None
        self._app: Any = None

    # -- lifecycle ----------------------------------------------------------------------------

    def __enter__(self) -> Sandbox:
        from paymobctl import serving
        from paymobctl.emulator import create_app

        self._app = create_app(
            credentials=self.credentials,
            callback_url=self._urls[0],
            response_url=self._urls[1],
            policy=TEST_RETRY_POLICY,
            timeout=self._timeout,
        )
        self._server = serving.Background(self._app, what="the test sandbox")
        self._server.__enter__()
        self._http = outbound.client()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None
        if self._server is not None:
            self._server.__exit__(kind, exc, traceback)
            self._server = None

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``: where code under test sends its Paymob API calls."""
        if self._server is None:
            raise UsageError("the sandbox is not running", hint="use it as `with Sandbox() as s:`")
        return self._server.url

    # -- credentials --------------------------------------------------------------------------

    @property
    def api_key(self) -> str:
        """The legacy API key (`PAYMOB_API_KEY`) for `POST /api/auth/tokens`."""
        return self.credentials.api_key

    @property
    def secret_key(self) -> str:
        """The secret key (`PAYMOB_SECRET_KEY`) for intentions and refunds."""
        return self.credentials.secret_key

    @property
    def public_key(self) -> str:
        """The public key (`PAYMOB_PUBLIC_KEY`) for the unified checkout URL."""
        return self.credentials.public_key

    @property
    def hmac_secret(self) -> str:
        """The HMAC secret (`PAYMOB_HMAC_SECRET`) the sandbox signs callbacks with."""
        return self.credentials.hmac_secret

    @property
    def integration_id(self) -> int:
        """The online card integration id (`PAYMOB_INTEGRATION_ID`)."""
        return self.credentials.integration_id

    @property
    def moto_integration_id(self) -> int:
        """The MOTO integration id (`PAYMOB_MOTO_INTEGRATION_ID`) for saved-card payments."""
        return self.credentials.moto_integration_id

    @property
    def iframe_id(self) -> int:
        """The card iframe id (`PAYMOB_IFRAME_ID`)."""
        return self.credentials.iframe_id

    def env(self) -> dict[str, str]:
        """The ``PAYMOB_*`` variables an app (and paymobctl itself) reads, pointing at this sandbox.
        The integration guide's four plus ``PAYMOB_BASE_URL``, the Intention API keys, the MOTO
        integration and ``PAYMOB_MODE=test``."""
        c = self.credentials
        return {
            "PAYMOB_API_KEY": c.api_key,
            "PAYMOB_SECRET_KEY": c.secret_key,
            "PAYMOB_PUBLIC_KEY": c.public_key,
            "PAYMOB_HMAC_SECRET": c.hmac_secret,
            "PAYMOB_INTEGRATION_ID": str(c.integration_id),
            "PAYMOB_MOTO_INTEGRATION_ID": str(c.moto_integration_id),
            "PAYMOB_IFRAME_ID": str(c.iframe_id),
            "PAYMOB_BASE_URL": self.base_url,
            "PAYMOB_CURRENCY": c.currency,
            "PAYMOB_MODE": "test",
        }

    # -- driving it ---------------------------------------------------------------------------

    def _client(self) -> httpx.Client:
        if self._http is None:
            raise UsageError("the sandbox is not running", hint="use it as `with Sandbox() as s:`")
        return self._http

    def _admin(self, path: str, body: Mapping[str, Any] | None = None) -> Any:
        from paymobctl import outbound

        answer = outbound.request(
            self._client(), "POST", f"{self.base_url}{path}", json=dict(body or {}), timeout=10
        )
        payload = answer.json()
        if answer.status_code != 200:
            problems = "; ".join(
                f"{name}: {' '.join(map(str, value)) if isinstance(value, list) else value}"
                for name, value in payload.items()
            )
            raise UsageError(f"the sandbox refused {path}: {problems}")
        return payload

    def set_callback_urls(
        self, callback_url: str | None = None, response_url: str | None = None
    ) -> None:
        """Where the sandbox sends TRANSACTION/TOKEN callbacks and redirects the payer; ``None``
        leaves a URL as it is, ``""`` removes it."""
        self._admin(
            "/_sandbox/callbacks", {"callback_url": callback_url, "response_url": response_url}
        )

    def reset(self) -> None:
        """Forget every order, payment, saved card and delivery (pending ones are cancelled),
        and restore the callback URLs the sandbox was created with."""
        if self._state().pristine():
            return  # a test that did not touch the sandbox costs the next one nothing
        self._admin("/_sandbox/reset")

    def checkout_url(self, checkout_url_or_payment_key: str) -> str:
        """A payment key (or an Intention client secret) as the hosted checkout's URL."""
        value = checkout_url_or_payment_key.strip()
        if value.startswith(("http://", "https://")):
            return value
        if "_csk_" in value:
            return (
                f"{self.base_url}/unifiedcheckout/?publicKey={self.public_key}&clientSecret={value}"
            )
        return f"{self.base_url}/api/acceptance/iframes/{self.iframe_id}?payment_token={value}"

    def pay(
        self,
        checkout_url_or_payment_key: str,
        *,
        card: Card | str | None = None,
        save_card: bool = False,
        otp: str = DEFAULT_OTP,
        timeout: float = 10.0,
    ) -> CheckoutResult:
        """Pay as a payer's browser would (card form, 3-D Secure OTP, redirect to the response
        URL), then wait until the sandbox delivered the payment's callbacks. ``card`` is a
        ``Card`` or a card number (see ``paymobctl sandbox cards``); default: the approved
        Mastercard."""
        from paymobctl import checkout

        chosen = Card(number=card) if isinstance(card, str) else card
        return checkout.pay(
            self._client(),
            self.checkout_url(checkout_url_or_payment_key),
            card=chosen,
            save_card=save_card,
            otp=otp,
            timeout=timeout,
            wait_callbacks=timeout,
        )

    # -- what happened ------------------------------------------------------------------------

    def _state(self) -> Any:
        if self._app is None or self._server is None:
            raise UsageError("the sandbox is not running", hint="use it as `with Sandbox() as s:`")
        return self._app.state.sandbox

    @property
    def transactions(self) -> list[dict[str, Any]]:
        """Every transaction, oldest first, as Paymob's transaction object (the callbacks' ``obj``)."""
        items = list(self._state().transactions.values())
        return [copy.deepcopy(t.obj) for t in sorted(items, key=lambda t: t.id)]

    @property
    def deliveries(self) -> list[Delivery]:
        """Every callback sent, oldest first, with its body and the answer it got."""
        found = []
        for item in sorted(self._state().deliveries.values(), key=lambda d: d.id):
            attempts = list(item.attempts)
            last = attempts[-1] if attempts else None
            found.append(
                Delivery(
                    id=item.id,
                    kind=item.kind,
                    url=item.url,
                    method=item.method,
                    body=loads_json(item.body) if item.body else None,
                    state=item.state,
                    status=last.status if last else None,
                    attempts=len(attempts),
                    error=last.error if last else None,
                    transaction_id=item.transaction_id,
                )
            )
        return found

    def wait_for_delivery(
        self,
        kind: str = "TRANSACTION",
        *,
        transaction_id: int | None = None,
        order_id: int | None = None,
        timeout: float = 10.0,
    ) -> Delivery:
        """The newest finished (delivered or failed) callback of ``kind``, matching the
        transaction or order when given; waits up to ``timeout`` seconds for one."""
        wanted = kind.upper()
        deadline = time.monotonic() + timeout
        while True:
            for item in reversed(self.deliveries):
                if item.kind != wanted or item.state == "pending":
                    continue
                if transaction_id is not None and item.transaction_id != transaction_id:
                    continue
                if order_id is not None and _order_of(item) != order_id:
                    continue
                return item
            if time.monotonic() >= deadline:
                seen = ", ".join(f"{d.kind} {d.state}" for d in self.deliveries) or "none"
                raise WaitTimedOut(
                    f"no {wanted} callback was delivered within {timeout:g} s (deliveries: {seen})",
                    hint="set_callback_urls(...) to your app's webhook URL before paying",
                )
            time.sleep(0.005)


def _order_of(item: Delivery) -> int | None:
    obj = item.obj
    order = obj.get("order")
    raw = order.get("id") if isinstance(order, dict) else obj.get("order_id")
    return lenient_int(raw, minimum=0)
