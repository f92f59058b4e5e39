"""Paymob's HTTP API over an injected httpx client: the legacy flow, saved-card payments, inquiry,
refund/void/capture, and the Intention API. Errors become actionable :class:`ApiError`s.

Works the same against real Paymob (any region) and against ``paymobctl sandbox``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

from paymobctl import outbound
from paymobctl.errors import ApiError, NetworkError
from paymobctl.models import Secret

if TYPE_CHECKING:
    import httpx

    from paymobctl.outbound import Reply

AUTH_TOKEN_TTL = 55 * 60  # Paymob's tokens live one hour (reference §3.1); renew a little early
DEFAULT_TIMEOUT = 20.0
RETRY_DELAYS = (0.25, 0.75)  # idempotent calls only

BILLING_OPTIONAL = ("apartment", "floor", "street", "building", "shipping_method", "postal_code", "city",
                    "country", "state")  # fmt: skip


@dataclass(frozen=True)
class Billing:
    """``billing_data``: the four Paymob requires, the rest "NA" as Paymob asks (reference §3.3)."""

    first_name: str
    last_name: str
    email: str
    phone_number: str
    extra: Mapping[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, str]:
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
    order_id: int
    url: str
    amount_cents: int
    currency: str
    merchant_order_id: str | None
    expires_in: int
    payment_key: str | None = None
    intention_id: str | None = None
    client_secret: str | None = None


def _describe(body: Any) -> str:
    """Paymob's error bodies in one line: detail, message, or DRF field-keyed lists."""
    if isinstance(body, Mapping):
        for key in ("detail", "message"):
            if isinstance(body.get(key), str):
                return str(body[key])
        parts = []

        def walk(value: Any, path: str) -> None:
            if isinstance(value, Mapping):
                for key, item in value.items():
                    walk(item, f"{path}.{key}" if path else str(key))
            elif isinstance(value, list) and value and all(isinstance(v, str) for v in value):
                parts.append(f"{path}: {' '.join(value)}")
            elif isinstance(value, str):
                parts.append(f"{path}: {value}" if path else value)

        walk(body, "")
        if parts:
            return "; ".join(parts)
    if isinstance(body, str) and body.strip():
        return body.strip()[:300]
    return "no details"


# The integration guide's troubleshooting table, keyed by what Paymob answers.
_HINTS: tuple[tuple[str, str, str], ...] = (
    (
        "incorrect credentials",
        "the API key was rejected",
        "check PAYMOB_API_KEY: test and live keys differ; copy it from Paymob's dashboard (Settings → "
        "Account info). 'Failed to initiate deposit' in the guide is usually this",
    ),
    (
        "integration id/name does not exist",
        "the integration id does not exist in this mode",
        "use an integration id of this mode (test vs live) from Developers → Payment Integrations; "
        "a test integration does not work with live keys and vice versa",
    ),
    (
        "invalid currency",
        "the currency does not match the integration's",
        "use the integration's currency (paymobctl config show → currency), or an integration in that currency",
    ),
    (
        "invalid token.",
        "the secret key was rejected",
        "check PAYMOB_SECRET_KEY (egy_sk_test_… / egy_sk_live_…) for this mode",
    ),
    (
        "authentication credentials were not provided",
        "no secret key was sent",
        "set PAYMOB_SECRET_KEY for the Intention API",
    ),
    (
        "capture amount cannot exceed",
        "capture over the authorised amount",
        "capture at most what was authorised; check `paymobctl status`",
    ),
    (
        "requested refund amount is greater",
        "refund over the refundable amount",
        "refund at most what is left; `paymobctl status` shows the transaction",
    ),
    (
        "invalid transaction id",
        "no such transaction",
        "check the transaction id (`paymobctl deposits list`)",
    ),
    (
        "duplicate",
        "merchant_order_id was already used",
        "merchant order ids must be unique: pick a new one",
    ),
)


def api_error(status: int, body: Any, *, action: str) -> ApiError:
    text = _describe(body)
    lowered = text.lower()
    for needle, what, hint in _HINTS:
        if needle in lowered:
            return ApiError(
                f"{action} failed: {what} (HTTP {status}: {text})",
                hint=hint,
                status=status,
                body=body,
            )
    if status >= 500:
        return ApiError(
            f"{action} failed: Paymob answered HTTP {status} ({text})",
            hint="try again in a moment",
            status=status,
            body=body,
        )
    return ApiError(
        f"{action} failed: HTTP {status}: {text}",
        hint="see the message above; `paymobctl config show` lists the ids and keys in use",
        status=status,
        body=body,
    )


NOT_RUNNING_HINT = (
    "is a sandbox running on another port? set PAYMOB_BASE_URL (or base_url in the profile; "
    "`paymobctl sandbox` runs one; --profile picks a real account)"
)


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
    ) -> None:
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
    ) -> Any:
        import httpx

        url = f"{self.base_url}{path}"
        attempts = len(RETRY_DELAYS) + 1 if idempotent else 1
        for attempt in range(attempts):
            try:
                response = outbound.request(
                    self.http,
                    method,
                    url,
                    json=json,
                    params=params,
                    headers=headers,
                    timeout=self.timeout,
                )
            except httpx.TimeoutException:
                if attempt + 1 < attempts:
                    self.sleep(RETRY_DELAYS[attempt])
                    continue
                raise NetworkError(
                    f"{action}: {self.base_url} did not answer within {self.timeout:g} s",
                    hint="check your network, or try again",
                ) from None
            except httpx.HTTPError as exc:
                if attempt + 1 < attempts:
                    self.sleep(RETRY_DELAYS[attempt])
                    continue
                raise self._unreachable(action, exc) from None
            if response.status_code >= 500 and attempt + 1 < attempts:
                self.sleep(RETRY_DELAYS[attempt])
                continue
            body = _body(response)
            if response.status_code not in expect:
                raise api_error(response.status_code, body, action=action)
            if (
                isinstance(body, Mapping)
                and body.get("success") in (False, "false")
                and path.endswith(("/refund", "/void", "/capture"))
            ):
                raise api_error(response.status_code, body, action=action)
            if not isinstance(body, dict):
                raise ApiError(
                    f"{action}: unexpected answer from {self.base_url} (HTTP {response.status_code}, "
                    f"not a JSON object: {str(body)[:80]!r})",
                    hint="is base_url/region pointing at Paymob (or `paymobctl sandbox`)?",
                    status=response.status_code,
                    body=body,
                )
            return body
        raise AssertionError("unreachable")  # pragma: no cover

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
        now = self.clock()
        if self._token and self._token[1] > now:
            return self._token[0]
        if self.api_key is None:
            raise ApiError("no API key", hint="set PAYMOB_API_KEY or the profile's api_key")
        body = self._request(
            "POST",
            "/api/auth/tokens",
            action="authentication",
            json={"api_key": self.api_key.reveal()},
            idempotent=True,
        )
        token = body.get("token") if isinstance(body, Mapping) else None
        if not isinstance(token, str):
            raise ApiError("authentication failed: no token in Paymob's answer", body=body)
        self._token = (token, now + AUTH_TOKEN_TTL)
        return token

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
            "POST", "/api/ecommerce/orders", action="creating the order", json=body
        )
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
            # What the guide's backend sends. Not a documented Paymob field (reference §12):
            # card saving is an integration feature plus the payer ticking "save card".
            body["tokenization"] = "true"
        if card_token:
            body["token"] = card_token
        result = self._request(
            "POST", "/api/acceptance/payment_keys", action="creating the payment key", json=body
        )
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
    ) -> tuple[int, str]:
        """An order, then a payment key for all of it: (order id, payment key)."""
        order = self.create_order(
            amount_cents=amount_cents, currency=currency, merchant_order_id=merchant_order_id
        )
        order_id = field_int(order, "id", action="creating the order")
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
        return self._pay(payment_key, card_token, "TOKEN", action="paying with the saved card")

    def pay_wallet(self, *, payment_key: str, phone: str) -> dict[str, Any]:
        return self._pay(payment_key, phone, "WALLET", action="paying with the wallet")

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
        result: dict[str, Any] = self._request(
            "GET",
            f"/api/acceptance/transactions/{transaction_id}",
            action=f"retrieving transaction {transaction_id}",
            headers=self._bearer(),
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
            )
        except ApiError as exc:
            if exc.status == 404 and "no transactions" in _describe(exc.body).lower():
                return None
            raise
        return result

    def refund(self, *, transaction_id: int, amount_cents: int) -> dict[str, Any]:
        return self._on_transaction(
            "/api/acceptance/void_refund/refund", "refunding", transaction_id, amount_cents
        )

    def void(self, *, transaction_id: int) -> dict[str, Any]:
        return self._on_transaction("/api/acceptance/void_refund/void", "voiding", transaction_id)

    def capture(self, *, transaction_id: int, amount_cents: int) -> dict[str, Any]:
        return self._on_transaction(
            "/api/acceptance/capture", "capturing", transaction_id, amount_cents
        )

    def _on_transaction(
        self, path: str, verb: str, transaction_id: int, amount_cents: int | None = None
    ) -> dict[str, Any]:
        """Refund, void or capture: the transaction id (and amount) with the auth token."""
        body: dict[str, Any] = {"auth_token": self.auth_token(), "transaction_id": transaction_id}
        if amount_cents is not None:
            body["amount_cents"] = amount_cents
        result: dict[str, Any] = self._request(
            "POST", path, action=f"{verb} transaction {transaction_id}", json=body
        )
        return result

    # -- account ------------------------------------------------------------------------------

    def hmac_secret(self) -> str:
        result = self._request(
            "GET",
            "/api/auth/hmac_secret/get_hmac",
            action="reading the HMAC secret",
            headers=self._bearer(),
            idempotent=True,
        )
        secret = result.get("hmac_secret") if isinstance(result, Mapping) else None
        if not isinstance(secret, str):
            raise ApiError("reading the HMAC secret failed: no hmac_secret in Paymob's answer")
        return secret

    def integrations(self) -> list[dict[str, Any]]:
        result = self._request(
            "GET",
            "/api/ecommerce/integrations",
            action="listing integrations",
            headers=self._bearer(),
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
        )
        return result

    def unified_checkout_url(self, client_secret: str) -> str:
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
        action = "creating the intention"
        secret = field_str(intention, "client_secret", action=action)
        return Checkout(
            "intention",
            field_int(intention, "intention_order_id", action=action),
            self.unified_checkout_url(secret),
            amount_cents,
            currency,
            merchant_order_id,
            expiration,
            intention_id=field_str(intention, "id", action=action),
            client_secret=secret,
        )


def field_int(body: Mapping[str, Any], key: str, *, action: str) -> int:
    """An integer field of Paymob's answer, or an API error saying the answer was not Paymob's."""
    value = body.get(key)
    if isinstance(value, bool) or not (
        isinstance(value, int) or (isinstance(value, str) and value.isdigit())
    ):
        raise ApiError(
            f"{action}: unexpected answer, {key!r} is {value!r}",
            hint="is base_url/region pointing at Paymob (or `paymobctl sandbox`)?",
            body=body,
        )
    return int(value)


def field_str(body: Mapping[str, Any], key: str, *, action: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise ApiError(
            f"{action}: unexpected answer, no {key!r}",
            hint="is base_url/region pointing at Paymob (or `paymobctl sandbox`)?",
            body=body,
        )
    return value


def _body(response: Reply) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text


def new_http_client(*, verify: bool = True) -> httpx.Client:
    from paymobctl.delivery import USER_AGENT

    return outbound.client(verify=verify, user_agent=USER_AGENT)
