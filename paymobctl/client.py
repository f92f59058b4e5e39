"""Paymob's HTTP API over an injected httpx client: the legacy flow, saved-card payments, inquiry,
refund/void/capture, and the Intention API. Errors become actionable :class:`ApiError`s
(worded in :mod:`paymobctl.api_errors`).

Works the same against real Paymob (any region) and against ``paymobctl sandbox``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

from paymobctl import delivery, outbound
from paymobctl.api_errors import NOT_RUNNING_HINT, api_error, describe, field_int
from paymobctl.delivery import RetryPolicy
from paymobctl.errors import ApiError, NetworkError
from paymobctl.models import Secret, lenient_int

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    import httpx

    from paymobctl.outbound import Reply

    # What a caller shows while one HTTP call is under way: (what it waits for, retry number).
    Progress = Callable[[str, int], AbstractContextManager[None]]

# Error wording lives in api_errors; these names stay importable from here.
__all__ = [
    "NOT_RUNNING_HINT",
    "Account",
    "Billing",
    "Checkout",
    "PaymobClient",
    "api_error",
    "field_int",
    "intention_order_id",
]

AUTH_TOKEN_TTL = (
    55 * 60
)  # Paymob's tokens live one hour (docs/paymob.md §3.1); renew a little early
DEFAULT_TIMEOUT = 20.0
# Idempotent calls are retried after no answer or a 5xx, 0.25 then 0.75 s apart; others never.
IDEMPOTENT_RETRY = RetryPolicy(attempts=3, first_delay=0.25, factor=3.0, max_delay=0.75)
NO_RETRY = RetryPolicy(attempts=1)

BILLING_OPTIONAL = ("apartment", "floor", "street", "building", "shipping_method", "postal_code", "city",
                    "country", "state")  # fmt: skip


@dataclass(frozen=True)
class Billing:
    """``billing_data``: the four Paymob requires, the rest "NA" as Paymob asks (docs/paymob.md §3.3)."""

    first_name: str
    last_name: str
    email: str
    phone_number: str
    extra: Mapping[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, str]:
        """The billing_data Paymob requires, with "NA" for every optional field not given."""
        data = dict.fromkeys(BILLING_OPTIONAL, "NA")
        data.update(self.extra)
        data.update(
            first_name=self.first_name,
            last_name=self.last_name,
            email=self.email,
            phone_number=self.phone_number,
        )
        return data


@dataclass(frozen=True)
class Checkout:
    """What a deposit needs to be paid: the order and the URL the payer opens."""

    flow: str  # legacy | intention
    order_id: int | None  # None: an intention whose answer did not name its order (learnt later)
    url: str  # "" when the server's answer gave nothing to build it from
    amount_cents: int
    currency: str
    merchant_order_id: str | None
    expires_in: int
    payment_key: str | None = None
    intention_id: str | None = None
    client_secret: str | None = None


@dataclass(frozen=True)
class Account:
    """What authenticating found: the merchant, the integration asked about (None: not
    listed), how many integrations the account has (None: unknown) and why not, if unknown."""

    merchant: str
    integration: dict[str, Any] | None
    integrations: int | None
    problem: str | None


class PaymobClient:
    """One merchant account's API. Auth tokens are cached for their lifetime within the process."""

    def __init__(
        self,
        http: httpx.Client,
        *,
        base_url: str,
        api_key: Secret | None = None,
        secret_key: Secret | None = None,
        public_key: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        progress: Progress | None = None,
    ) -> None:
        self.progress = progress
        self.http = http
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.secret_key = secret_key
        self.public_key = public_key
        self.timeout = timeout
        self.clock = clock
        self.sleep = sleep
        self._token: tuple[str, float] | None = None

    # -- plumbing -----------------------------------------------------------------------------

    def _request(
        self,
        method: str,
        path: str,
        *,
        action: str,
        json: Any = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool = False,
        expect: Sequence[int] = (200, 201),
        credential: str | None = None,
    ) -> Any:
        import httpx

        url = f"{self.base_url}{path}"
        policy = IDEMPOTENT_RETRY if idempotent else NO_RETRY
        started = self.clock()

        def send(number: int) -> Reply | httpx.HTTPError:
            try:
                with self.progress(action, number - 1) if self.progress else nullcontext():
                    return outbound.request(
                        self.http,
                        method,
                        url,
                        json=json,
                        params=params,
                        headers=headers,
                        timeout=self.timeout,
                    )
            except httpx.HTTPError as exc:
                return exc

        def answered(outcome: Reply | httpx.HTTPError, number: int) -> bool:
            return not isinstance(outcome, httpx.HTTPError) and outcome.status_code < 500

        response = delivery.retry(send, policy, final=answered, sleep=self.sleep)
        if isinstance(response, httpx.TimeoutException):
            spent = self.clock() - started
            tries = f"{policy.attempts} attempts, " if policy.attempts > 1 else ""
            raise NetworkError(
                f"{action}: {self.base_url} did not answer within {self.timeout:g} s "
                f"({tries}{spent:.1f} s in all)",
                hint="check your network, or try again",
            ) from None
        if isinstance(response, httpx.HTTPError):
            raise self._unreachable(action, response) from None
        body = _body(response)
        if response.status_code not in expect:
            raise api_error(response.status_code, body, action=action, credential=credential)
        if (
            isinstance(body, Mapping)
            and body.get("success") in (False, "false")
            and path.endswith(("/refund", "/void", "/capture"))
        ):
            raise api_error(response.status_code, body, action=action, credential=credential)
        if not isinstance(body, dict):
            raise ApiError(
                f"{action}: unexpected answer from {self.base_url} (HTTP {response.status_code}, "
                f"not a JSON object: {str(body)[:80]!r})",
                hint="is base_url/region pointing at Paymob (or `paymobctl sandbox`)?",
                status=response.status_code,
                body=body,
            )
        return body

    def _unreachable(self, action: str, exc: Exception) -> NetworkError:
        host = urlsplit(self.base_url).netloc
        if host.startswith(("127.0.0.1", "localhost")):
            return NetworkError(
                f"{action}: nothing answers at {self.base_url}",
                hint=NOT_RUNNING_HINT,
            )
        return NetworkError(
            f"{action}: cannot reach {self.base_url} ({type(exc).__name__}: {exc})",
            hint="check your network and the profile's region/base_url",
        )

    def auth_token(self) -> str:
        """A legacy auth token, cached for its lifetime (docs/paymob.md §3.1)."""
        if self._token and self._token[1] > self.clock():
            return self._token[0]
        return self._authenticate()[0]

    def _authenticate(self) -> tuple[str, dict[str, Any]]:
        """A new auth token and the merchant profile Paymob answers with (docs/paymob.md §3.1)."""
        now = self.clock()
        if self.api_key is None:
            raise ApiError("no API key", hint="set PAYMOB_API_KEY or the profile's api_key")
        body = self._request(
            "POST",
            "/api/auth/tokens",
            action="authentication",
            json={"api_key": self.api_key.reveal()},
            idempotent=True,
            credential="api key",
        )
        token = body.get("token") if isinstance(body, Mapping) else None
        if not isinstance(token, str):
            raise ApiError("authentication failed: no token in Paymob's answer", body=body)
        self._token = (token, now + AUTH_TOKEN_TTL)
        profile = body.get("profile")
        return token, dict(profile) if isinstance(profile, Mapping) else {}

    def account(self, integration_id: int | None = None) -> Account:
        """Authenticate once and describe the account, like ``stripe login`` does: the
        merchant, and the integration ``integration_id`` if the account lists it."""
        _, profile = self._authenticate()
        user = profile.get("user") if isinstance(profile.get("user"), Mapping) else {}
        name = profile.get("company_name") or (user or {}).get("username") or "unnamed merchant"
        merchant_id = (user or {}).get("id") or profile.get("id")
        merchant = f"{name} (merchant {merchant_id})" if merchant_id else str(name)
        try:
            items = self.integrations()
        except ApiError as exc:
            return Account(merchant, None, None, f"could not list integrations ({exc.message})")
        found = next((i for i in items if i.get("id") == integration_id), None)
        return Account(merchant, found, len(items), None)

    def _bearer(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.auth_token()}"}

    def _secret_header(self) -> dict[str, str]:
        if self.secret_key is None:
            raise ApiError(
                "no secret key", hint="set PAYMOB_SECRET_KEY (egy_sk_test_…) for the Intention API"
            )
        return {"Authorization": f"Token {self.secret_key.reveal()}"}

    # -- legacy flow --------------------------------------------------------------------------

    def create_order(
        self,
        *,
        amount_cents: int,
        currency: str,
        merchant_order_id: str | None = None,
        items: Sequence[Mapping[str, Any]] = (),
    ) -> dict[str, Any]:
        """Register a legacy order; its answer (the order id under ``id``)."""
        body: dict[str, Any] = {
            "auth_token": self.auth_token(),
            "delivery_needed": False,
            "amount_cents": amount_cents,
            "currency": currency,
            "items": list(items),
        }
        if merchant_order_id is not None:
            body["merchant_order_id"] = merchant_order_id
        result: dict[str, Any] = self._request(
            "POST", "/api/ecommerce/orders", action="creating the order", json=body,
            credential="auth token",
        )  # fmt: skip
        return result

    def payment_key(
        self,
        *,
        order_id: int,
        amount_cents: int,
        currency: str,
        integration_id: int,
        billing: Billing,
        expiration: int = 3600,
        lock_order_when_paid: bool = True,
        tokenization: bool = False,
        card_token: str | None = None,
    ) -> str:
        """A legacy payment key for an order and integration."""
        body: dict[str, Any] = {
            "auth_token": self.auth_token(),
            "amount_cents": amount_cents,
            "expiration": expiration,
            "order_id": order_id,
            "billing_data": billing.as_dict(),
            "currency": currency,
            "integration_id": integration_id,
            "lock_order_when_paid": lock_order_when_paid,
        }
        if tokenization:
            # What the guide's backend sends. Not a documented Paymob field (docs/paymob.md §12):
            # card saving is an integration feature plus the payer ticking "save card".
            body["tokenization"] = "true"
        if card_token:
            body["token"] = card_token
        result = self._request(
            "POST", "/api/acceptance/payment_keys", action="creating the payment key", json=body,
            credential="auth token",
        )  # fmt: skip
        key = result.get("token") if isinstance(result, Mapping) else None
        if not isinstance(key, str):
            raise ApiError(
                "creating the payment key failed: no token in Paymob's answer", body=result
            )
        return key

    def order_and_key(
        self,
        *,
        amount_cents: int,
        currency: str,
        merchant_order_id: str | None,
        integration_id: int,
        billing: Billing,
        expiration: int = 3600,
        tokenization: bool = False,
        card_token: str | None = None,
        on_order: Callable[[int], None] | None = None,
    ) -> tuple[int, str]:
        """An order, then a payment key for all of it: (order id, payment key). ``on_order``
        hears of the order as soon as it exists on the server (to record it before the next
        call can fail)."""
        order = self.create_order(
            amount_cents=amount_cents, currency=currency, merchant_order_id=merchant_order_id
        )
        order_id = field_int(order, "id", action="creating the order")
        if on_order is not None:
            on_order(order_id)
        key = self.payment_key(
            order_id=order_id,
            amount_cents=amount_cents,
            currency=currency,
            integration_id=integration_id,
            billing=billing,
            expiration=expiration,
            tokenization=tokenization,
            card_token=card_token,
        )
        return order_id, key

    def iframe_url(self, iframe_id: int, payment_key: str) -> str:
        """The hosted card iframe's URL for a payment key."""
        return f"{self.base_url}/api/acceptance/iframes/{iframe_id}?{urlencode({'payment_token': payment_key})}"

    def check_iframe(self, iframe_id: int, payment_key: str) -> None:
        """Load the iframe page once: a wrong iframe id is the guide's "iframe refuses to load"."""
        import httpx

        try:
            response = outbound.request(
                self.http, "GET", self.iframe_url(iframe_id, payment_key), timeout=self.timeout
            )
        except httpx.HTTPError as exc:
            raise self._unreachable("loading the checkout page", exc) from None
        if response.status_code == 404:
            raise ApiError(
                f"iframe {iframe_id} does not exist",
                status=404,
                hint="ensure PAYMOB_IFRAME_ID matches an iframe in Paymob's dashboard (Developers → "
                "Iframes) of this mode",
            )
        if response.status_code >= 400:
            raise ApiError(
                f"the checkout page answered HTTP {response.status_code}",
                status=response.status_code,
                hint="create a new deposit; if it persists, check the iframe and integration ids",
            )

    def pay_with_token(self, *, payment_key: str, card_token: str) -> dict[str, Any]:
        """Pay a payment key with a saved card token (MOTO)."""
        return self._pay(payment_key, card_token, "TOKEN", action="paying with the saved card")

    def _pay(
        self, payment_key: str, identifier: str, subtype: str, *, action: str
    ) -> dict[str, Any]:
        """Pay a payment key from a non-card source (a saved card's token, a wallet number)."""
        result: dict[str, Any] = self._request(
            "POST",
            "/api/acceptance/payments/pay",
            action=action,
            json={
                "source": {"identifier": identifier, "subtype": subtype},
                "payment_token": payment_key,
            },
        )
        return result

    # -- after the payment --------------------------------------------------------------------

    def transaction(self, transaction_id: int) -> dict[str, Any]:
        """One transaction by id (retrieve)."""
        result: dict[str, Any] = self._request(
            "GET",
            f"/api/acceptance/transactions/{transaction_id}",
            action=f"retrieving transaction {transaction_id}",
            headers=self._bearer(),
            credential="auth token",
            idempotent=True,
        )
        return result

    def inquiry(
        self, *, order_id: int | None = None, merchant_order_id: str | None = None
    ) -> dict[str, Any] | None:
        """The order's latest transaction, or None when it has none yet."""
        body: dict[str, Any] = {"auth_token": self.auth_token()}
        if order_id is not None:
            body["order_id"] = order_id
        if merchant_order_id is not None:
            body["merchant_order_id"] = merchant_order_id
        try:
            result: dict[str, Any] = self._request(
                "POST",
                "/api/ecommerce/orders/transaction_inquiry",
                action="transaction inquiry",
                json=body,
                idempotent=True,
                credential="auth token",
            )
        except ApiError as exc:
            if exc.status == 404 and "no transactions" in describe(exc.body).lower():
                return None
            raise
        return result

    def refund(self, *, transaction_id: int, amount_cents: int) -> dict[str, Any]:
        """Refund ``amount_cents`` of a paid transaction; the refund transaction."""
        return self._on_transaction(
            "/api/acceptance/void_refund/refund", "refunding", transaction_id, amount_cents
        )

    def void(self, *, transaction_id: int) -> dict[str, Any]:
        """Void a same-day transaction; the void transaction."""
        return self._on_transaction("/api/acceptance/void_refund/void", "voiding", transaction_id)

    def capture(self, *, transaction_id: int, amount_cents: int) -> dict[str, Any]:
        """Capture ``amount_cents`` of an authorised transaction; the capture transaction."""
        return self._on_transaction(
            "/api/acceptance/capture", "capturing", transaction_id, amount_cents
        )

    def _on_transaction(
        self, path: str, verb: str, transaction_id: int, amount_cents: int | None = None
    ) -> dict[str, Any]:
        """Refund, void or capture. Paymob's current docs authenticate these with
        ``Authorization: Token <secret key>``; the legacy ``auth_token`` in the body still works
        (docs/paymob.md §6). The secret key first when the profile has one, the auth token otherwise
        or when the key is refused; a failure says which was used."""
        body: dict[str, Any] = {"transaction_id": transaction_id}
        if amount_cents is not None:
            body["amount_cents"] = amount_cents
        action = f"{verb} transaction {transaction_id}"
        refused: ApiError | None = None
        if self.secret_key is not None:
            try:
                result: dict[str, Any] = self._request(
                    "POST", path, action=f"{action} (with the secret key)", json=body,
                    headers=self._secret_header(), credential="secret key",
                )  # fmt: skip
                return result
            except ApiError as exc:
                if exc.status not in (401, 403) or self.api_key is None:
                    raise
                refused = exc
        try:
            result = self._request(
                "POST", path, action=f"{action} (with the auth token)",
                json={"auth_token": self.auth_token(), **body}, credential="auth token",
            )  # fmt: skip
        except ApiError as exc:
            if refused is None:
                raise
            raise ApiError(
                f"{exc.message}; the secret key was refused first (HTTP {refused.status})",
                hint=exc.hint,
                status=exc.status,
                body=exc.body,
            ) from None
        return result

    # -- account ------------------------------------------------------------------------------

    def hmac_secret(self) -> str:
        """The account's HMAC secret as Paymob holds it."""
        result = self._request(
            "GET",
            "/api/auth/hmac_secret/get_hmac",
            action="reading the HMAC secret",
            headers=self._bearer(),
            credential="auth token",
            idempotent=True,
        )
        secret = result.get("hmac_secret") if isinstance(result, Mapping) else None
        if not isinstance(secret, str):
            raise ApiError("reading the HMAC secret failed: no hmac_secret in Paymob's answer")
        return secret

    def integrations(self) -> list[dict[str, Any]]:
        """The account's payment integrations."""
        result = self._request(
            "GET",
            "/api/ecommerce/integrations",
            action="listing integrations",
            headers=self._bearer(),
            credential="auth token",
            params={"is_plugin": "true", "page_size": "500"},
            idempotent=True,
        )
        items = result.get("results") if isinstance(result, Mapping) else result
        return [dict(i) for i in items] if isinstance(items, list) else []

    # -- Intention API ------------------------------------------------------------------------

    def create_intention(
        self,
        *,
        amount_cents: int,
        currency: str,
        integration_ids: Sequence[int],
        billing: Billing,
        special_reference: str | None = None,
        notification_url: str | None = None,
        redirection_url: str | None = None,
        card_tokens: Sequence[str] = (),
        expiration: int = 3600,
        items: Sequence[Mapping[str, Any]] = (),
    ) -> dict[str, Any]:
        """Create a payment intention (Intention API); Paymob's answer."""
        body: dict[str, Any] = {
            "amount": amount_cents,
            "currency": currency,
            "payment_methods": list(integration_ids),
            "billing_data": billing.as_dict(),
            "items": list(items),
            "expiration": expiration,
        }
        for key, value in (
            ("special_reference", special_reference),
            ("notification_url", notification_url),
            ("redirection_url", redirection_url),
        ):
            if value:
                body[key] = value
        if card_tokens:
            body["card_tokens"] = list(card_tokens)
        result: dict[str, Any] = self._request(
            "POST",
            "/v1/intention/",
            action="creating the intention",
            json=body,
            headers=self._secret_header(),
            credential="secret key",
        )
        return result

    def unified_checkout_url(self, client_secret: str) -> str:
        """The unified checkout URL for an intention's client secret."""
        if not self.public_key:
            raise ApiError(
                "no public key",
                hint="set PAYMOB_PUBLIC_KEY (egy_pk_test_…) for the unified checkout",
            )
        query = urlencode({"publicKey": self.public_key, "clientSecret": client_secret})
        return f"{self.base_url}/unifiedcheckout/?{query}"

    # -- whole flows ----------------------------------------------------------------------------

    def legacy_checkout(
        self,
        *,
        amount_cents: int,
        currency: str,
        integration_id: int,
        iframe_id: int,
        billing: Billing,
        merchant_order_id: str | None,
        tokenization: bool,
        expiration: int = 3600,
        check_iframe: bool = True,
        on_order: Callable[[int], None] | None = None,
    ) -> Checkout:
        """auth → order → payment key → iframe URL (the guide's deposit)."""
        order_id, key = self.order_and_key(
            amount_cents=amount_cents,
            currency=currency,
            merchant_order_id=merchant_order_id,
            integration_id=integration_id,
            billing=billing,
            expiration=expiration,
            tokenization=tokenization,
            on_order=on_order,
        )
        if check_iframe:
            self.check_iframe(iframe_id, key)
        return Checkout(
            "legacy",
            order_id,
            self.iframe_url(iframe_id, key),
            amount_cents,
            currency,
            merchant_order_id,
            expiration,
            payment_key=key,
        )

    def intention_checkout(
        self,
        *,
        amount_cents: int,
        currency: str,
        integration_id: int,
        billing: Billing,
        merchant_order_id: str | None,
        notification_url: str | None = None,
        redirection_url: str | None = None,
        card_tokens: Sequence[str] = (),
        expiration: int = 3600,
    ) -> Checkout:
        """A checkout through the Intention API: the intention, its order and the URL to pay at."""
        intention = self.create_intention(
            amount_cents=amount_cents,
            currency=currency,
            integration_ids=[integration_id],
            billing=billing,
            special_reference=merchant_order_id,
            notification_url=notification_url,
            redirection_url=redirection_url,
            card_tokens=card_tokens,
            expiration=expiration,
            items=[
                {
                    "name": "Deposit",
                    "amount": amount_cents,
                    "description": "paymobctl deposit",
                    "quantity": 1,
                }
            ],
        )
        # Read leniently: the intention exists on the server now, so whatever its answer lacks
        # must not lose it (the caller records it first and complains afterwards).
        secret = _opt_str(intention.get("client_secret"))
        return Checkout(
            "intention",
            intention_order_id(intention),
            self.unified_checkout_url(secret) if secret else "",
            amount_cents,
            currency,
            merchant_order_id,
            expiration,
            intention_id=_opt_str(intention.get("id")),
            client_secret=secret,
        )


def intention_order_id(intention: Mapping[str, Any]) -> int | None:
    """The order behind an intention: ``intention_order_id``, else its payment keys' ``order_id``
    (docs/paymob.md §5.1); None when the answer names neither (some Paymob-compatible servers)."""
    keys = intention.get("payment_keys")
    candidates = [intention.get("intention_order_id")]
    if isinstance(keys, list):
        candidates += [k.get("order_id") for k in keys if isinstance(k, Mapping)]
    for value in candidates:
        if isinstance(value, int) and value <= 0:
            continue  # a non-positive integer is not an order; a later candidate may be
        number = lenient_int(value)
        if number is not None:
            return number
    return None


def _opt_str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _body(response: Reply) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text
