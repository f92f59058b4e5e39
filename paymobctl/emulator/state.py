"""The sandbox's Paymob: merchants' orders, payment keys, transactions, card tokens, intentions.

Pure state and rules, no HTTP: each operation validates like Paymob (DRF-style error bodies,
docs/paymob.md §3–§6, §10), changes the state, and returns what the HTTP layer must answer and which
callbacks must be delivered. Every callback is built by :mod:`paymobctl.callbacks`, so it has the
same shape as ``paymobctl simulate``'s and verifies with the sandbox's HMAC secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import random
import secrets
import socket
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Protocol
from urllib.parse import urlsplit

from paymobctl import callbacks, delivery, signing
from paymobctl.callbacks import Customer, TransactionSpec
from paymobctl.config import check_url
from paymobctl.emulator import cards
from paymobctl.emulator.cards import Behaviour
from paymobctl.models import (
    CURRENCY_EXPONENT,
    CallbackKind,
    CallbackOrder,
    CardBrand,
    KeyFlow,
    Outcome,
    PaymentSource,
    Region,
    currency_exponent,
    lenient_int,
    mask_pans,
    mask_url_credentials,
)
from paymobctl.sandbox_profile import SANDBOX, SandboxCredentials

AUTH_TOKEN_LIFETIME = 3600  # seconds (docs/paymob.md §3.1)
DEFAULT_KEY_EXPIRATION = 3600
# Paymob publishes no upper bound (docs/paymob.md §13.7); a year keeps every expiry a valid timestamp.
MAX_KEY_EXPIRATION = 365 * 24 * 3600
MAX_INT = 2**63 - 1
INTEGRATION_NOT_FOUND = (
    "Integration ID/Name does not exist in our system . You can find the list of Integration "
    "ID’/Names on your dashboard"
)
REQUIRED = ["This field is required."]
BILLING_REQUIRED = ("first_name", "last_name", "email", "phone_number")
BILLING_PRESENT = (
    "apartment",
    "floor",
    "street",
    "building",
    "shipping_method",
    "postal_code",
    "city",
    "country",
    "state",
)
# The hosted page's 404 when no payment waits in a state: (title, message).
NOT_WAITING = {
    "pending_3ds": (
        "Unknown authentication",
        "There is no 3-D Secure step waiting for this transaction.",
    ),
    "pending_wallet": (
        "Unknown wallet payment",
        "There is no wallet payment waiting for this transaction.",
    ),
}


class SandboxError(Exception):
    """An API error: the HTTP status and the JSON body Paymob answers with."""

    def __init__(self, status: int, body: Mapping[str, Any]) -> None:
        super().__init__(json.dumps(body))
        self.status = status
        self.body = dict(body)


class PageError(Exception):
    """An error shown as an HTML page in the hosted checkout."""

    def __init__(self, status: int, title: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.title = title
        self.message = message


# --- records ---------------------------------------------------------------------------------


@dataclass
class Integration:
    id: int
    name: str
    kind: str  # card | moto | auth | wallet | kiosk
    currency: str
    three_ds: bool
    is_auth: bool = False
    callback_url: str | None = None
    response_url: str | None = None

    @property
    def gateway_type(self) -> str:
        return {"wallet": "UIG", "kiosk": "AGGREGATOR"}.get(self.kind, "MIGS")

    @property
    def integration_type(self) -> str:
        return "moto" if self.kind == "moto" else "online"

    @property
    def source(self) -> PaymentSource:
        return {"wallet": PaymentSource.WALLET, "kiosk": PaymentSource.KIOSK}.get(
            self.kind, PaymentSource.CARD
        )

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "gateway_type": self.gateway_type,
            "integration_type": self.integration_type,
            "is_live": False,
            "currency": self.currency,
            "is_auth": self.is_auth,
            "is_standalone": True,
            "installments": [],
            "transaction_processed_callback": self.callback_url or "",
            "transaction_response_callback": self.response_url or "",
        }


@dataclass
class Order:
    id: int
    created_at: str
    amount_cents: int
    currency: str
    merchant_order_id: str | None
    delivery_needed: bool
    items: list[dict[str, Any]]
    shipping_data: dict[str, Any]
    paid_amount_cents: int = 0
    is_payment_locked: bool = False
    intention_id: str | None = None


@dataclass
class PaymentKey:
    key: str
    order_id: int
    integration_id: int
    amount_cents: int
    currency: str
    billing_data: dict[str, Any]
    lock_order_when_paid: bool
    expires_at: float
    claims: dict[str, Any]
    tokenization: Any = None
    card_token: str | None = None
    intention_id: str | None = None
    used: bool = False


@dataclass
class Transaction:
    id: int
    order_id: int
    integration_id: int
    key: str | None
    kind: str  # payment | refund | void | capture
    source: str
    obj: dict[str, Any]
    parent_id: int | None = None
    state: str = "final"  # final | pending_3ds | pending_wallet | pending_kiosk
    save_card: bool = False
    card: dict[str, Any] | None = None  # brand, last4, expiry, behaviour (never the number)
    token_created: str | None = None

    @property
    def success(self) -> bool:
        return bool(self.obj.get("success"))


@dataclass
class CardToken:
    token: str
    id: int
    masked_pan: str
    last4: str
    card_subtype: str
    email: str
    order_id: int
    created_at: str
    behaviour: str
    expiry: str


@dataclass
class Intention:
    id: str
    client_secret: str
    amount: int
    currency: str
    payment_methods: list[int]
    items: list[dict[str, Any]]
    billing_data: dict[str, Any]
    special_reference: str | None
    notification_url: str | None
    redirection_url: str | None
    card_tokens: list[str]
    extras: dict[str, Any]
    order_id: int
    keys: list[dict[str, Any]]
    created: str
    status: str = "intended"


@dataclass
class Attempt:
    number: int
    at: str
    status: int | None
    latency_ms: float
    error: str | None


@dataclass
class Delivery:
    id: int
    kind: str
    url: str
    transaction_id: int | None
    method: str
    body: str | None  # JSON text as sent
    created_at: str
    state: str = "pending"  # pending | delivered | failed
    attempts: list[Attempt] = field(default_factory=list)


@dataclass(frozen=True)
class Outbound:
    """A callback the HTTP layer must deliver."""

    delivery_id: int
    request: delivery.HttpRequest
    kind: CallbackKind
    transaction_id: int | None


@dataclass(frozen=True)
class Completion:
    """Where the payer's browser goes when a payment step ends, and what to deliver."""

    transaction: Transaction
    redirect_url: str | None  # signed response-callback URL, None → the post_pay page
    outbound: tuple[Outbound, ...] = ()


class Persistence(Protocol):
    def save(self, kind: str, key: str, value: Mapping[str, Any]) -> None: ...

    def forget(self, kind: str, keys: Sequence[str]) -> None: ...

    def load(self) -> dict[str, list[dict[str, Any]]]: ...


class MemoryPersistence:
    def save(self, kind: str, key: str, value: Mapping[str, Any]) -> None:
        del kind, key, value

    def forget(self, kind: str, keys: Sequence[str]) -> None:
        del kind, keys

    def load(self) -> dict[str, list[dict[str, Any]]]:
        return {}


Event = Callable[[str, str], None]  # (category, message)


def _as_int(value: object) -> int | None:
    """An integer as DRF's ``IntegerField`` reads one (``5``, ``5.0``, ``"5"``), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    if isinstance(value, str):
        text = value.strip()
        digits = text[1:] if text[:1] in "+-" else text
        if digits.isascii() and digits.isdigit() and len(digits) <= 20:
            return int(text)
    return None


def _digest(token: str) -> str:
    """How an auth token is remembered (never the token itself); any text, even forged."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def _hex_id(nbytes: int) -> str:
    """A random hex identifier with no run of digits that reads as a card number: card-number
    masking (stores, logs) must never alter a token or client secret (~0.3% of raw ones)."""
    while True:
        value = secrets.token_hex(nbytes)
        if not mask_pans(value)[1]:
            return value


LINK_LOCAL_REFUSED = (
    "Callbacks to link-local or metadata addresses (169.254.0.0/16, fe80::/10) are refused."
)


def link_local(host: str) -> bool:
    """Whether ``host`` is a link-local address (169.254.0.0/16 — where cloud metadata services
    answer — or fe80::/10), in any spelling ``getaddrinfo`` accepts (``2852039166``,
    ``0xa9fea9fe``, ``::ffff:169.254.169.254``). Names are not resolved here (see the notifier)."""
    text = host.strip("[]").split("%", 1)[0]
    try:
        address: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(text)
    except ValueError:
        try:
            address = ipaddress.IPv4Address(socket.inet_aton(text))
        except OSError:
            return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_link_local


def callback_url_error(value: object) -> list[str] | None:
    """Why ``value`` cannot be a callback or redirect URL (DRF's messages), or None.

    http(s) with a host only — never ``javascript:``, ``file:`` or a bare path, which would be
    put in a browser redirect or fetched by the notifier — and never a link-local address.
    """
    if not isinstance(value, str):
        return ["Not a valid string."]
    try:
        check_url(value)
    except ValueError as exc:
        return [f"Enter a valid URL ({exc})."]
    if link_local(urlsplit(value).hostname or ""):
        return [LINK_LOCAL_REFUSED]
    return None


def _json_type(value: object) -> str:
    return type(value).__name__


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


# --- the sandbox -----------------------------------------------------------------------------


class Sandbox:
    """All of the emulator's state and rules."""

    def __init__(
        self,
        *,
        credentials: SandboxCredentials = SANDBOX,
        callback_url: str | None = None,
        response_url: str | None = None,
        persistence: Persistence | None = None,
        clock: Callable[[], datetime] | None = None,
        on_event: Event | None = None,
        callback_order: CallbackOrder = CallbackOrder.TOKEN_FIRST,
        order_seed: int | None = None,
    ) -> None:
        self.creds = credentials
        self.base_url = credentials.base_url  # the real one once a request arrived (app.py)
        self.callback_order = callback_order
        self._order_rng = random.Random(order_seed)
        self.clock = clock or (lambda: datetime.now(UTC))
        self.persistence = persistence or MemoryPersistence()
        self.on_event = on_event or (lambda category, message: None)
        self.region = Region.EG
        self._jwt_key = secrets.token_bytes(32)
        c = credentials
        self.integrations: dict[int, Integration] = {
            i.id: i
            for i in (
                Integration(c.integration_id, "card", "card", c.currency, three_ds=True),
                Integration(c.moto_integration_id, "moto", "moto", c.currency, three_ds=False),
                Integration(
                    c.auth_integration_id,
                    "card-auth",
                    "auth",
                    c.currency,
                    three_ds=True,
                    is_auth=True,
                ),
                Integration(
                    c.wallet_integration_id, "wallet", "wallet", c.currency, three_ds=False
                ),
                Integration(c.kiosk_integration_id, "kiosk", "kiosk", c.currency, three_ds=False),
            )
        }
        self.iframes = {c.iframe_id}
        self._initial_urls = (callback_url, response_url)
        self.set_callback_urls(callback_url, response_url)
        # sha256(token) -> expiry: the store never holds a usable token.
        self.auth_tokens: dict[str, float] = {}
        self._auth_prune_at = 1024
        self.orders: dict[int, Order] = {}
        self.keys: dict[str, PaymentKey] = {}
        self.transactions: dict[int, Transaction] = {}
        self.tokens: dict[str, CardToken] = {}
        self.intentions: dict[str, Intention] = {}
        self.deliveries: dict[int, Delivery] = {}
        # Real Paymob ids never repeat; neither do ours across restarts of an in-memory sandbox
        # (a store or listener that outlives the sandbox would otherwise confuse two orders).
        run = secrets.randbelow(90_000_000)
        self._next = {
            "order": 300_000_000 + run,
            "transaction": 400_000_000 + run,
            "token": 9_100_000 + run % 800_000,
            "delivery": 1,
            "shipping": 108_000_001,
        }
        self._load()

    # -- persistence --------------------------------------------------------------------------

    def _load(self) -> None:
        stored = self.persistence.load()
        now = self.now().timestamp()
        expired = []
        for raw in stored.get("auth", []):
            if float(raw["expires"]) > now:
                self.auth_tokens[str(raw["sha256"])] = float(raw["expires"])
            else:
                expired.append(str(raw["sha256"]))
        if expired:
            self.persistence.forget("auth", expired)
        tables: tuple[tuple[str, type[Any], dict[Any, Any], Callable[[Any], Any]], ...] = (
            ("order", Order, self.orders, lambda o: o.id),
            ("key", PaymentKey, self.keys, lambda k: k.key),
            ("transaction", Transaction, self.transactions, lambda t: t.id),
            ("token", CardToken, self.tokens, lambda t: t.token),
            ("intention", Intention, self.intentions, lambda i: i.client_secret),
            ("delivery", Delivery, self.deliveries, lambda d: d.id),
        )
        for kind, cls, table, key_of in tables:
            for raw in stored.get(kind, []):
                if kind == "delivery":
                    raw["attempts"] = [Attempt(**a) for a in raw.get("attempts", [])]
                item = cls(**raw)
                table[key_of(item)] = item
        # A persisted sandbox continues its own numbering.
        for name, values in (
            ("order", self.orders),
            ("transaction", self.transactions),
            ("delivery", self.deliveries),
        ):
            if values:
                self._next[name] = max(values) + 1
        if self.tokens:
            self._next["token"] = max(t.id for t in self.tokens.values()) + 1

    def reset(self) -> None:
        """Forget every object (orders, keys, transactions, cards, deliveries, auth tokens) and
        restore the callback URLs the sandbox started with; ids keep counting, never reused."""
        # The keys each kind is saved under (``_save`` calls), for a persisted sandbox.
        tables: tuple[tuple[str, dict[Any, Any], Callable[[Any, Any], object]], ...] = (
            ("auth", self.auth_tokens, lambda key, _: key),
            ("order", self.orders, lambda key, _: key),
            ("key", self.keys, lambda key, _: key[-24:]),
            ("transaction", self.transactions, lambda key, _: key),
            ("token", self.tokens, lambda _, token: token.id),
            ("intention", self.intentions, lambda key, _: key),
            ("delivery", self.deliveries, lambda key, _: key),
        )
        for kind, table, saved_as in tables:
            if table:
                self.persistence.forget(kind, [str(saved_as(k, v)) for k, v in table.items()])
            table.clear()
        for integration in self.integrations.values():
            integration.callback_url = integration.response_url = None
        self.set_callback_urls(*self._initial_urls)

    def pristine(self) -> bool:
        """Nothing to reset: no object of any kind, and the callback URLs it started with."""
        tables = (self.auth_tokens, self.orders, self.keys, self.transactions, self.tokens)
        if any(tables) or self.intentions or self.deliveries:
            return False
        started = {
            name: url or None
            for name, url in zip(("callback_url", "response_url"), self._initial_urls, strict=True)
        }
        return all(
            {"callback_url": i.callback_url, "response_url": i.response_url} == started
            for i in self.integrations.values()
        )

    def _save(self, kind: str, key: object, value: Any) -> None:
        self.persistence.save(kind, str(key), asdict(value))

    def _id(self, name: str) -> int:
        value = self._next[name]
        self._next[name] = value + 1
        return value

    # -- configuration ------------------------------------------------------------------------

    def set_callback_urls(self, callback_url: str | None, response_url: str | None) -> None:
        """Per-integration callback URLs (all sandbox integrations share them); ``""`` turns
        one off. Each is validated (:func:`callback_url_error`): a 400 names what is wrong."""
        errors = {
            name: problem
            for name, value in (("callback_url", callback_url), ("response_url", response_url))
            if value not in (None, "") and (problem := callback_url_error(value))
        }
        if errors:
            raise SandboxError(400, errors)
        for integration in self.integrations.values():
            if callback_url is not None:
                integration.callback_url = callback_url or None
            if response_url is not None:
                integration.response_url = response_url or None

    def callback_urls(self) -> dict[str, str | None]:
        card = self.integrations[self.creds.integration_id]
        return {"callback_url": card.callback_url, "response_url": card.response_url}

    # -- time ---------------------------------------------------------------------------------

    def now(self) -> datetime:
        return self.clock().astimezone(UTC)

    def stamp(self) -> str:
        return callbacks.paymob_timestamp(self.now(), self.region)

    # -- auth ---------------------------------------------------------------------------------

    def _jwt(self, claims: Mapping[str, Any]) -> str:
        """Paymob tokens are base64 of an HS512 JWT (docs/paymob.md §1.2); so are these."""
        header = _b64url(b'{"alg":"HS512","typ":"JWT"}')
        payload = _b64url(json.dumps(claims, separators=(",", ":")).encode())
        signature = _b64url(
            hmac.new(self._jwt_key, f"{header}.{payload}".encode(), hashlib.sha512).digest()
        )
        return base64.b64encode(f"{header}.{payload}.{signature}".encode()).decode()

    def authenticate(self, body: Mapping[str, Any]) -> dict[str, Any]:
        api_key = body.get("api_key")
        if api_key in (None, ""):
            raise SandboxError(400, {"api_key": REQUIRED})
        if not isinstance(api_key, str) or not hmac.compare_digest(
            api_key.encode(), self.creds.api_key.encode()
        ):
            raise SandboxError(403, {"detail": "incorrect credentials"})
        expires = self.now().timestamp() + AUTH_TOKEN_LIFETIME
        token = self._jwt(
            {
                "class": "Merchant",
                "profile_pk": self.creds.profile_id,
                "phash": secrets.token_hex(16),
                "exp": int(expires),
            }
        )
        digest = _digest(token)
        self.auth_tokens[digest] = expires
        self.persistence.save("auth", digest, {"sha256": digest, "expires": expires})
        if len(self.auth_tokens) >= self._auth_prune_at:
            self._prune_auth_tokens()
        self.on_event("auth", "auth token issued (valid one hour)")
        return {
            "token": token,
            "profile": {
                "id": self.creds.profile_id,
                "user": {
                    "id": self.creds.merchant_id,
                    "username": "paymobctl-sandbox",
                    "email": "sandbox@paymobctl.local",
                },
                "company_name": "paymobctl sandbox",
                "country": "EGY",
                "state": "",
                "sector": "Software",
                "currency": self.creds.currency,
            },
        }

    def _prune_auth_tokens(self) -> None:
        """Forget expired tokens (amortised: runs when the table has doubled)."""
        now = self.now().timestamp()
        expired = [digest for digest, expires in self.auth_tokens.items() if expires < now]
        for digest in expired:
            del self.auth_tokens[digest]
        if expired:
            self.persistence.forget("auth", expired)
        self._auth_prune_at = max(1024, 2 * len(self.auth_tokens))

    def check_auth_token(self, token: str | None) -> None:
        expires = self.auth_tokens.get(_digest(token)) if token else None
        if expires is None or expires < self.now().timestamp():
            raise SandboxError(401, {"detail": "incorrect credentials"})

    def check_secret_key(self, header: str | None) -> None:
        """``Authorization: Token <secret key>`` (Bearer and lowercase ``token`` accepted, §2.1)."""
        if not header:
            raise SandboxError(401, {"detail": "Authentication credentials were not provided."})
        scheme, _, value = header.partition(" ")
        if scheme.lower() not in ("token", "bearer") or not hmac.compare_digest(
            value.strip().encode(), self.creds.secret_key.encode()
        ):
            raise SandboxError(401, {"detail": "Invalid token."})

    # -- validation helpers ---------------------------------------------------------------------

    @staticmethod
    def _url_errors(body: Mapping[str, Any]) -> dict[str, list[str]]:
        """An intention's ``notification_url`` / ``redirection_url``, checked like every
        callback URL the sandbox accepts."""
        errors = {}
        for name in ("notification_url", "redirection_url"):
            value = body.get(name)
            if value not in (None, "") and (problem := callback_url_error(value)):
                errors[name] = problem
        return errors

    @staticmethod
    def _int_error(value: object, *, minimum: int = 1, maximum: int = MAX_INT) -> list[str] | None:
        """DRF ``IntegerField`` rules: ints, integral floats and digit strings; else the message."""
        number = _as_int(value)
        if number is None:
            return ["A valid integer is required."]
        if number < minimum:
            return [f"Ensure this value is greater than or equal to {minimum}."]
        if number > maximum:
            return [f"Ensure this value is less than or equal to {maximum}."]
        return None

    @classmethod
    def _int(
        cls,
        body: Mapping[str, Any],
        name: str,
        *,
        required: bool = True,
        minimum: int = 1,
        maximum: int = MAX_INT,
    ) -> int | None:
        value = body.get(name)
        if value is None or value == "":
            if required:
                raise SandboxError(400, {name: REQUIRED})
            return None
        error = cls._int_error(value, minimum=minimum, maximum=maximum)
        if error:
            raise SandboxError(400, {name: error})
        return _as_int(value)

    @classmethod
    def _items(cls, value: object, amount_field: str) -> tuple[list[dict[str, Any]], Any]:
        """Validate an ``items`` list: (normalised items, None) or ([], the DRF error body)."""
        if value is None:
            return [], ["This field may not be null."]
        if not isinstance(value, list):
            return [], [f'Expected a list of items but got type "{_json_type(value)}".']
        items: list[dict[str, Any]] = []
        for item in value:
            if not isinstance(item, dict):
                return [], {"non_field_errors": ["Invalid data. Expected a dictionary."]}
            missing = {n: REQUIRED for n in ("name", amount_field) if item.get(n) in (None, "")}
            if missing:
                return [], missing
            if len(str(item["name"])) > 50:
                return [], {"name": ["Ensure this field has no more than 50 characters."]}
            amount_error = cls._int_error(item[amount_field], minimum=0)
            if amount_error:
                return [], {amount_field: amount_error}
            quantity = item.get("quantity", 1)
            quantity_error = None if quantity is None else cls._int_error(quantity)
            if quantity_error:
                return [], {"quantity": quantity_error}
            items.append(
                {
                    **item,
                    amount_field: _as_int(item[amount_field]),
                    "quantity": _as_int(quantity) if quantity is not None else 1,
                }
            )
        return items, None

    @staticmethod
    def _bool(body: Mapping[str, Any], name: str, default: bool | None = None) -> bool:
        value = body.get(name, default)
        if value is None:
            raise SandboxError(400, {name: REQUIRED})
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise SandboxError(400, {name: ["Must be a valid boolean."]})

    @staticmethod
    def _currency_error(value: object) -> list[str] | None:
        if value in (None, ""):
            return REQUIRED
        if not isinstance(value, str) or value.strip().upper() not in CURRENCY_EXPONENT:
            return [f'"{value}" is not a valid choice.']
        return None

    @classmethod
    def _currency(cls, body: Mapping[str, Any], name: str = "currency") -> str:
        value = body.get(name)
        error = cls._currency_error(value)
        if error:
            raise SandboxError(400, {name: error})
        return str(value).strip().upper()

    def _billing(self, body: Mapping[str, Any], *, strict_presence: bool) -> dict[str, Any]:
        billing = body.get("billing_data")
        if not isinstance(billing, dict):
            raise SandboxError(400, {"billing_data": REQUIRED})
        errors: dict[str, list[str]] = {}
        for name in BILLING_REQUIRED:
            value = billing.get(name)
            if value is None:
                errors[name] = REQUIRED
            elif not str(value).strip():
                errors[name] = ["This field may not be blank."]
        if strict_presence:
            for name in BILLING_PRESENT:
                if name not in billing:
                    errors[name] = REQUIRED
        if errors:
            raise SandboxError(400, {"billing_data": errors})
        return dict(billing)

    def _integration(self, value: object) -> Integration:
        integration: Integration | None = None
        if isinstance(value, int) and not isinstance(value, bool):
            integration = self.integrations.get(value)
        elif isinstance(value, str) and (number := lenient_int(value.strip())) is not None:
            integration = self.integrations.get(number)
        elif isinstance(value, str):
            integration = next(
                (i for i in self.integrations.values() if i.name == value.strip()), None
            )
        if integration is None:
            raise SandboxError(404, {"detail": INTEGRATION_NOT_FOUND})
        return integration

    # -- orders -----------------------------------------------------------------------------------

    def create_order(self, body: Mapping[str, Any]) -> Order:
        """``POST /api/ecommerce/orders`` (docs/paymob.md §3.2)."""
        amount = self._int(body, "amount_cents")
        assert amount is not None
        currency = self._currency(body)
        delivery_needed = self._bool(body, "delivery_needed")
        merchant_order_id = body.get("merchant_order_id")
        if merchant_order_id is not None:
            merchant_order_id = str(merchant_order_id)
            if any(o.merchant_order_id == merchant_order_id for o in self.orders.values()):
                # Community reports: 422 {"message": "duplicate"} (no official body found, §3.2).
                raise SandboxError(422, {"message": "duplicate"})
        items, items_error = self._items(body.get("items", []), "amount_cents")
        if items_error:
            raise SandboxError(400, {"items": items_error})
        shipping = body.get("shipping_data") or {}
        if delivery_needed and not shipping:
            raise SandboxError(
                400, {"shipping_data": ["This field is required when delivery_needed is true."]}
            )
        order = Order(
            id=self._id("order"),
            created_at=self.stamp(),
            amount_cents=amount,
            currency=currency,
            merchant_order_id=merchant_order_id,
            delivery_needed=delivery_needed,
            items=items,
            shipping_data=dict(shipping) if isinstance(shipping, dict) else {},
        )
        self.orders[order.id] = order
        self._save("order", order.id, order)
        self.on_event(
            "order",
            f"order {order.id} created: {self.money(amount, currency)}"
            + (f" (merchant_order_id {merchant_order_id})" if merchant_order_id else ""),
        )
        return order

    def money(self, cents: int, currency: str) -> str:
        from paymobctl.models import format_amount

        return format_amount(cents, currency)

    def order_object(self, order: Order, *, api: bool = True) -> dict[str, Any]:
        """The order as the orders API (``api``) or a callback renders it: one builder."""
        url = f"{self.base_url}/standalone/?ref=i_{order.id}"
        obj = callbacks.build_order(
            callbacks.OrderSpec(
                id=order.id,
                created_at=order.created_at,
                amount_cents=order.amount_cents,
                currency=order.currency,
                region=self.region,
                profile_id=self.creds.profile_id,
                merchant_order_id=order.merchant_order_id,
                paid_amount_cents=order.paid_amount_cents,
                is_payment_locked=order.is_payment_locked,
                delivery_needed=order.delivery_needed,
                shipping_data=order.shipping_data,
                items=order.items,
                order_url=url,
                company_name="paymobctl sandbox",
                company_emails=("sandbox@paymobctl.local",),
            ),
            shipping_id=self._next["shipping"],
        )
        if api:
            obj.update(token=f"i_{order.id}", url=url)
        return obj

    def get_order(self, order_id: int) -> Order:
        order = self.orders.get(order_id)
        if order is None:
            raise SandboxError(404, {"detail": "Not found."})
        return order

    # -- payment keys ------------------------------------------------------------------------------

    def create_payment_key(
        self, body: Mapping[str, Any], *, intention_id: str | None = None
    ) -> PaymentKey:
        """``POST /api/acceptance/payment_keys`` (docs/paymob.md §3.3)."""
        amount = self._int(body, "amount_cents")
        expiration = (
            self._int(body, "expiration", required=False, maximum=MAX_KEY_EXPIRATION)
            or DEFAULT_KEY_EXPIRATION
        )
        order_id = self._int(body, "order_id")
        assert amount is not None and order_id is not None
        billing = self._billing(body, strict_presence=intention_id is None)
        currency = self._currency(body)
        if body.get("integration_id") in (None, ""):
            raise SandboxError(400, {"integration_id": REQUIRED})
        integration = self._integration(body.get("integration_id"))
        order = self.orders.get(order_id)
        if order is None:
            raise SandboxError(
                400, {"order_id": [f'Invalid pk "{order_id}" - object does not exist.']}
            )
        if currency != integration.currency:
            raise SandboxError(400, {"detail": "Invalid currency sent"})
        if amount != order.amount_cents:
            # Paymob's docs say the key's amount "should equal the order amount" (§3.3); a
            # mismatch is always a bug in the caller, so the sandbox refuses it outright.
            raise SandboxError(
                400,
                {
                    "amount_cents": [
                        f"amount_cents {amount} does not equal order {order.id}'s "
                        f"amount_cents {order.amount_cents}."
                    ]
                },
            )
        lock = self._bool(body, "lock_order_when_paid", default=False)
        card_token = body.get("token")
        if card_token not in (None, ""):
            if not isinstance(card_token, str) or card_token not in self.tokens:
                raise SandboxError(400, {"token": ["Invalid card token."]})
        else:
            card_token = None
        now = self.now().timestamp()
        claims = callbacks.payment_key_claims(
            flow=KeyFlow.INTENTION if intention_id else KeyFlow.LEGACY,
            user_id=self.creds.merchant_id,
            amount_cents=amount,
            currency=currency,
            integration_id=integration.id,
            order_id=order.id,
            billing=billing,
            exp=int(now + expiration),
            lock_order_when_paid=lock,
            extra=body.get("extra") or {},
        )
        key = PaymentKey(
            key=self._jwt(claims),
            order_id=order.id,
            integration_id=integration.id,
            amount_cents=amount,
            currency=currency,
            billing_data=billing,
            lock_order_when_paid=lock,
            expires_at=now + expiration,
            claims=claims,
            tokenization=body.get("tokenization"),
            card_token=card_token,
            intention_id=intention_id,
        )
        self.keys[key.key] = key
        self._save("key", key.key[-24:], key)
        note = ""
        if "tokenization" in body:
            note = (
                " — 'tokenization' recorded; card saving depends on the payer ticking 'save card'"
            )
        self.on_event(
            "key",
            f"payment key for order {order.id} on integration {integration.id} "
            f"({integration.kind}), expires in {expiration} s{note}",
        )
        return key

    def usable_key(self, token: str | None) -> PaymentKey:
        """A payment key that can still pay, or the checkout error page explaining why not."""
        if not token:
            raise PageError(
                400,
                "Missing payment token",
                "This page needs ?payment_token=... from the payment key call.",
            )
        key = self.keys.get(token)
        if key is None:
            raise PageError(
                401, "Invalid payment token", "This payment token was not issued by this sandbox."
            )
        if key.expires_at < self.now().timestamp():
            raise PageError(
                410, "Payment key expired", "This payment key has expired: create a new one."
            )
        if key.used:
            raise PageError(
                410,
                "Payment key already used",
                "This payment key was already used: create a new one.",
            )
        order = self.orders[key.order_id]
        if order.is_payment_locked:
            raise PageError(409, "Order already paid", f"Order {order.id} is already paid.")
        return key

    def api_key_for_pay(self, token: object) -> PaymentKey:
        try:
            return self.usable_key(token if isinstance(token, str) else None)
        except PageError as exc:
            raise SandboxError(400 if exc.status != 401 else 401, {"detail": exc.message}) from None

    def checkout(self, iframe_id: int, token: str | None) -> tuple[PaymentKey, Order]:
        if iframe_id not in self.iframes:
            raise PageError(
                404,
                "Iframe not found",
                f"There is no iframe {iframe_id}. Check PAYMOB_IFRAME_ID: "
                f"the sandbox's iframe id is {self.creds.iframe_id}.",
            )
        key = self.usable_key(token)
        integration = self.integrations[key.integration_id]
        if integration.source is not PaymentSource.CARD:
            raise PageError(
                400,
                "Not a card integration",
                f"Integration {integration.id} is a {integration.kind} "
                "integration: the card iframe needs a card integration's payment key.",
            )
        return key, self.orders[key.order_id]

    # -- transactions -----------------------------------------------------------------------------

    def _build(
        self,
        *,
        key: PaymentKey,
        outcome: Outcome,
        source: PaymentSource,
        transaction_id: int,
        created: datetime,
        brand: CardBrand = CardBrand.MASTERCARD,
        last4: str = "2346",
        three_ds: bool = False,
        rule: cards.ExpiryRule | None = None,
        wallet_number: str = cards.WALLET_NUMBER,
        decline_code: str | None = None,
        message: str | None = None,
        api_source: str | None = None,
    ) -> dict[str, Any]:
        order = self.orders[key.order_id]
        integration = self.integrations[key.integration_id]
        billing = key.billing_data
        spec = TransactionSpec(
            outcome=outcome,
            source=source,
            amount_cents=key.amount_cents,
            currency=key.currency,
            region=self.region,
            order_id=order.id,
            merchant_order_id=order.merchant_order_id,
            transaction_id=transaction_id,
            integration_id=integration.id,
            merchant_id=self.creds.merchant_id,
            profile_id=self.creds.profile_id,
            brand=brand,
            pan_last4=last4,
            wallet_number=wallet_number,
            customer=Customer(
                first_name=str(billing.get("first_name", "NA")),
                last_name=str(billing.get("last_name", "NA")),
                email=str(billing.get("email", "NA")),
                phone=str(billing.get("phone_number", "NA")),
            ),
            is_auth=integration.is_auth and outcome is Outcome.APPROVED,
            decline_code=decline_code,
            created_at=created,
            # Last updated now, as it becomes final: no time in it is later (the browser's
            # redirect, sent right away, would contradict a later one).
            updated_at=self.now(),
        )
        obj = callbacks.build_transaction(spec).obj
        obj["order"] = self.order_object(order, api=False)
        obj["payment_key_claims"] = dict(key.claims)
        obj["is_3d_secure"] = three_ds
        obj["api_source"] = api_source or ("IFRAME" if source is PaymentSource.CARD else "OTHER")
        if source is PaymentSource.CARD and not three_ds:
            obj["data"]["acs_eci"] = ""
        if rule is not None:
            obj["success"] = False
            obj["error_occured"] = rule.error_occured
            obj["data"].update(
                txn_response_code=rule.txn_response_code,
                acq_response_code=rule.acq_response_code,
                message=rule.message,
                migs_result="FAILURE",
            )
        if message is not None:
            obj["data"]["message"] = message
        return obj

    def _store_txn(self, txn: Transaction) -> Transaction:
        self.transactions[txn.id] = txn
        self._save("transaction", txn.id, txn)
        return txn

    def _new_payment(
        self,
        key: PaymentKey,
        source: PaymentSource,
        *,
        save_card: bool = False,
        card: dict[str, Any] | None = None,
    ) -> Transaction:
        """A payment on ``key`` with the next transaction id; its Paymob object comes later."""
        return Transaction(
            self._id("transaction"),
            key.order_id,
            key.integration_id,
            key.key,
            "payment",
            source.value,
            {},
            save_card=save_card,
            card=card,
        )

    def _hold(self, txn: Transaction, obj: dict[str, Any], state: str) -> Transaction:
        """Store a payment that waits for the payer (``pending_3ds``, ``pending_wallet``…)."""
        txn.obj = obj
        txn.state = state
        return self._store_txn(txn)

    def _finish(self, txn: Transaction, obj: dict[str, Any]) -> Transaction:
        """A payment's final Paymob object: settle it."""
        txn.obj = obj
        txn.state = "final"
        return self._settle(txn)

    def _created(self, txn: Transaction) -> datetime:
        """When a held payment began: its final object keeps that time (else now)."""
        return (
            callbacks.parse_paymob_timestamp(str(txn.obj.get("created_at", "")), self.region)
            or self.now()
        )

    def waiting(self, txn_id: int, state: str) -> Transaction:
        """The transaction held in ``state`` for a hosted page, or that page's 404."""
        txn = self.transactions.get(txn_id)
        if txn is None or txn.state != state:
            raise PageError(404, *NOT_WAITING[state])
        return txn

    def _pay_card(
        self,
        key: PaymentKey,
        info: dict[str, Any],
        *,
        save_card: bool = False,
        api_source: str = "IFRAME",
    ) -> Transaction:
        """A typed or saved card: held for 3-D Secure when the card and integration want it,
        else final."""
        txn = self._new_payment(key, PaymentSource.CARD, save_card=save_card, card=info)
        created = self.now()
        integration = self.integrations[key.integration_id]
        if info["behaviour"] == Behaviour.THREE_DS.value and integration.three_ds:
            obj = self._build(
                key=key,
                outcome=Outcome.PENDING,
                source=PaymentSource.CARD,
                transaction_id=txn.id,
                created=created,
                brand=CardBrand(info["brand"]),
                last4=str(info["last4"]),
                three_ds=True,
                api_source=api_source,
            )
            return self._hold(txn, obj, "pending_3ds")
        return self._finish_card(txn, created=created, three_ds=False, api_source=api_source)

    def pay_with_card(
        self, key: PaymentKey, entry: cards.CardEntry, *, save_card: bool
    ) -> Transaction:
        """A card typed into the hosted checkout. Returns a pending_3ds or final transaction."""
        card = cards.lookup(entry.number)
        behaviour = card.behaviour if card else Behaviour.DECLINE
        info = {
            "brand": cards.brand_of(entry.number).value,
            "last4": entry.last4,
            "expiry": entry.expiry,
            "behaviour": behaviour.value,
            "known": card is not None,
        }
        txn = self._pay_card(key, info, save_card=save_card)
        if txn.state == "pending_3ds":
            self.on_event(
                "3ds", f"transaction {txn.id}: 3-D Secure OTP requested (test OTP {cards.OTP})"
            )
        return txn

    def _finish_card(
        self,
        txn: Transaction,
        *,
        created: datetime,
        three_ds: bool,
        otp_ok: bool = True,
        api_source: str = "IFRAME",
    ) -> Transaction:
        key = self.keys[txn.key or ""]
        info = txn.card or {}
        brand = CardBrand(info.get("brand", CardBrand.MASTERCARD.value))
        last4 = str(info.get("last4", "0000"))
        expiry = str(info.get("expiry", ""))
        rule = cards.EXPIRY_RULES.get(expiry)
        code: str | None
        message: str | None
        if not otp_ok:
            outcome, rule, code, message = Outcome.AUTH_FAILED, None, None, None
        elif cards.is_expired(expiry, self.now().date()):
            outcome, rule, code, message = Outcome.DECLINED, cards.EXPIRED, None, None
        elif info.get("behaviour") == Behaviour.BLOCK.value:
            outcome, rule, code, message = Outcome.BLOCKED, None, None, None
        elif info.get("behaviour") == Behaviour.DECLINE.value:
            known = info.get("known", True)
            outcome, rule = Outcome.DECLINED, None
            code = "05" if known else "14"
            message = (
                "Do not honour"
                if known
                else "Invalid card number (test mode accepts test cards only)"
            )
        else:
            # The MPGS expiry convention turns an approval into the failure it names.
            outcome, code, message = (Outcome.DECLINED if rule else Outcome.APPROVED), None, None
        obj = self._build(
            key=key,
            outcome=outcome,
            source=PaymentSource.CARD,
            transaction_id=txn.id,
            created=created,
            brand=brand,
            last4=last4,
            three_ds=three_ds,
            rule=rule,
            decline_code=code,
            message=message,
            api_source=api_source,
        )
        return self._finish(txn, obj)

    def complete_3ds(self, txn_id: int, otp: str) -> Transaction:
        txn = self.waiting(txn_id, "pending_3ds")
        ok = hmac.compare_digest(otp.strip().encode(), cards.OTP.encode())
        return self._finish_card(
            txn,
            created=self._created(txn),
            three_ds=True,
            otp_ok=ok,
            api_source=str(txn.obj.get("api_source") or "IFRAME"),
        )

    def _settle(self, txn: Transaction) -> Transaction:
        """A transaction became final: update the order, the key, card tokens."""
        key = self.keys.get(txn.key or "")
        order = self.orders[txn.order_id]
        obj = txn.obj
        if obj.get("success") and txn.kind == "payment":
            order.paid_amount_cents += int(obj["amount_cents"])
            if key is not None:
                key.used = True
                if key.lock_order_when_paid:
                    order.is_payment_locked = True
                self._save("key", key.key[-24:], key)
            obj["order"] = self.order_object(order, api=False)
            if key is not None and key.intention_id:
                intention = self.intentions.get(key.intention_id)
                if intention is not None:
                    intention.status = "paid"
                    self._save("intention", intention.client_secret, intention)
            self._save("order", order.id, order)
            if txn.save_card and txn.source == "card" and txn.token_created is None:
                txn.token_created = self._create_token(txn).token
        status = (
            "APPROVED" if obj.get("success") else ("PENDING" if obj.get("pending") else "DECLINED")
        )
        detail = obj.get("data", {}).get("message", "")
        self.on_event(
            "transaction",
            f"transaction {txn.id} {status} {txn.source} "
            f"{self.money(int(obj['amount_cents']), str(obj['currency']))} order {txn.order_id}"
            + (f" — {detail}" if detail and status != "APPROVED" else ""),
        )
        return self._store_txn(txn)

    def _create_token(self, txn: Transaction) -> CardToken:
        info = txn.card or {}
        last4 = str(info.get("last4", "0000"))
        token = CardToken(
            token=_hex_id(28),
            id=self._id("token"),
            masked_pan=f"xxxx-xxxx-xxxx-{last4}",
            last4=last4,
            card_subtype=str(info.get("brand", "MasterCard")),
            email=str(txn.obj["payment_key_claims"]["billing_data"].get("email", "")),
            order_id=txn.order_id,
            created_at=self.stamp(),
            behaviour=str(info.get("behaviour", Behaviour.APPROVE.value)),
            expiry=str(info.get("expiry", "")),
        )
        self.tokens[token.token] = token
        self._save("token", token.id, token)
        self.on_event(
            "token", f"card saved: token {token.token[:8]}… {token.card_subtype} {token.masked_pan}"
        )
        return token

    def token_callback(self, token: CardToken, intention: Intention | None) -> callbacks.Callback:
        """The TOKEN callback of a saved card, from the builder ``simulate`` uses."""
        spec = callbacks.TokenSpec(
            order_id=token.order_id,
            email=token.email,
            card_subtype=token.card_subtype,
            pan_last4=token.last4,
            merchant_id=self.creds.merchant_id,
            token=token.token,
            token_id=token.id,
            created_at=callbacks.parse_paymob_timestamp(token.created_at, self.region),
            region=self.region,
            next_payment_intention=intention.id if intention is not None else None,
            seed=token.id,  # the same TOKEN body on every retry and replay
        )
        return callbacks.build_token(spec)

    # -- completion: callbacks and the browser's redirect -------------------------------------------

    def _urls_for(self, txn: Transaction) -> tuple[str | None, str | None]:
        integration = self.integrations[txn.integration_id]
        callback_url, response_url = integration.callback_url, integration.response_url
        key = self.keys.get(txn.key or "")
        if key is not None and key.intention_id and key.intention_id in self.intentions:
            intention = self.intentions[key.intention_id]
            callback_url = intention.notification_url or callback_url
            response_url = intention.redirection_url or response_url
        return callback_url, response_url

    def _queue(
        self, kind: CallbackKind, url: str, request: delivery.HttpRequest, txn_id: int | None
    ) -> Outbound:
        item = Delivery(
            id=self._id("delivery"),
            kind=kind.value,
            url=mask_url_credentials(url),  # the request keeps them; the record never does
            transaction_id=txn_id,
            method=request.method,
            body=request.body.decode() if request.body else None,
            created_at=self.stamp(),
        )
        self.deliveries[item.id] = item
        self._save("delivery", item.id, item)
        return Outbound(item.id, request, kind, txn_id)

    def completion(self, txn: Transaction) -> Completion:
        """The signed callbacks of a final transaction and the signed redirect for the browser."""
        secret = self.creds.hmac_secret
        callback_url, response_url = self._urls_for(txn)
        digest = signing.compute(CallbackKind.TRANSACTION, txn.obj, secret)
        outbound: list[Outbound] = []
        if callback_url:
            body = callbacks.transaction_body(txn.obj)
            request = delivery.post_json(callbacks.with_query(callback_url, f"hmac={digest}"), body)
            outbound.append(self._queue(CallbackKind.TRANSACTION, callback_url, request, txn.id))
            if txn.token_created:
                key = self.keys.get(txn.key or "")
                intention = (
                    self.intentions.get(key.intention_id) if key and key.intention_id else None
                )
                token = self.token_callback(self.tokens[txn.token_created], intention)
                token_url = (
                    callback_url
                    if intention is None
                    else (self.integrations[txn.integration_id].callback_url or callback_url)
                )
                token_request = delivery.post_json(
                    callbacks.with_query(token_url, f"hmac={token.sign(secret)}"), token.body
                )
                outbound.append(self._queue(CallbackKind.TOKEN, token_url, token_request, txn.id))
                outbound = self._in_callback_order(outbound)
        redirect = None
        if response_url:
            query = callbacks.encode_params(callbacks.redirect_params(txn.obj, digest))
            redirect = callbacks.with_query(response_url, query)
        return Completion(txn, redirect, tuple(outbound))

    def _in_callback_order(self, pair: list[Outbound]) -> list[Outbound]:
        """TRANSACTION and TOKEN in ``--callback-order``: Paymob promises no order (§14)."""
        order = self.callback_order
        if order is CallbackOrder.RANDOM:
            order = self._order_rng.choice(
                [CallbackOrder.TOKEN_FIRST, CallbackOrder.TRANSACTION_FIRST]
            )
        token_first = order is CallbackOrder.TOKEN_FIRST
        return sorted(pair, key=lambda item: (item.kind is CallbackKind.TOKEN) != token_first)

    def child_completion(self, txn: Transaction) -> tuple[Outbound, ...]:
        return self.completion(txn).outbound

    # -- payments/pay ------------------------------------------------------------------------------

    def pay_api(
        self, body: Mapping[str, Any], base: str
    ) -> tuple[int, dict[str, Any], Completion | None]:
        """``POST /api/acceptance/payments/pay`` (docs/paymob.md §4)."""
        source = body.get("source")
        if not isinstance(source, dict):
            raise SandboxError(400, {"source": REQUIRED})
        subtype = str(source.get("subtype") or "").upper()
        identifier = source.get("identifier")
        if not subtype:
            raise SandboxError(400, {"source": {"subtype": REQUIRED}})
        if identifier in (None, ""):
            raise SandboxError(400, {"source": {"identifier": REQUIRED}})
        key = self.api_key_for_pay(body.get("payment_token"))
        integration = self.integrations[key.integration_id]
        if subtype == "TOKEN":
            return self._pay_token(key, integration, str(identifier), base)
        if subtype == "WALLET":
            return self._pay_wallet(key, integration, str(identifier), base)
        if subtype == "AGGREGATOR":
            return self._pay_kiosk(key, integration)
        raise SandboxError(
            400,
            {
                "detail": f"subtype {subtype} is not supported by the paymobctl sandbox "
                "(TOKEN, WALLET and AGGREGATOR are)"
            },
        )

    def _pay_token(
        self, key: PaymentKey, integration: Integration, identifier: str, base: str
    ) -> tuple[int, dict[str, Any], Completion | None]:
        if integration.source is not PaymentSource.CARD:
            raise SandboxError(
                400,
                {
                    "detail": f"integration {integration.id} is a {integration.kind} integration: "
                    "saved-card payments need a MOTO (or card) integration"
                },
            )
        token = self.tokens.get(identifier)
        if token is None:
            raise SandboxError(400, {"detail": "Invalid card token."})
        info = {
            "brand": token.card_subtype,
            "last4": token.last4,
            "expiry": token.expiry,
            "behaviour": token.behaviour,
            "known": True,
        }
        txn = self._pay_card(key, info, api_source="OTHER")
        digest = signing.compute(CallbackKind.TRANSACTION, txn.obj, self.creds.hmac_secret)
        record = callbacks.pay_response(txn.obj, digest)
        if txn.state != "pending_3ds":
            return 200, record, self.completion(txn)
        record.update(use_redirection=True, redirection_url=f"{base}/api/acceptance/acs/{txn.id}")
        self.on_event(
            "3ds",
            f"transaction {txn.id}: saved card needs 3-D Secure → {record['redirection_url']}",
        )
        return 200, record, None

    def _pay_wallet(
        self, key: PaymentKey, integration: Integration, number: str, base: str
    ) -> tuple[int, dict[str, Any], Completion | None]:
        if integration.source is not PaymentSource.WALLET:
            raise SandboxError(
                400, {"detail": f"integration {integration.id} is not a mobile wallet integration"}
            )
        txn = self._new_payment(key, PaymentSource.WALLET)
        test_number = number == cards.WALLET_NUMBER
        obj = self._build(
            key=key,
            outcome=Outcome.PENDING if test_number else Outcome.DECLINED,
            source=PaymentSource.WALLET,
            transaction_id=txn.id,
            created=self.now(),
            wallet_number=number,
            message=None
            if test_number
            else f"Test mode: use the test wallet number {cards.WALLET_NUMBER}",
        )
        if not test_number:
            txn = self._finish(txn, obj)
            return 200, dict(obj), self.completion(txn)
        page = f"{base}/api/acceptance/wallet/{txn.id}?payment_token={key.key}"
        obj["data"]["redirect_url"] = page
        self._hold(txn, obj, "pending_wallet")
        self.on_event("wallet", f"transaction {txn.id}: wallet payment awaiting MPIN/OTP → {page}")
        return 200, {**obj, "redirect_url": page, "iframe_redirection_url": page}, None

    def complete_wallet(self, txn_id: int, mpin: str, otp: str) -> Transaction:
        txn = self.waiting(txn_id, "pending_wallet")
        ok = mpin.strip() == cards.WALLET_MPIN and otp.strip() == cards.WALLET_OTP
        obj = self._build(
            key=self.keys[txn.key or ""],
            outcome=Outcome.APPROVED if ok else Outcome.DECLINED,
            source=PaymentSource.WALLET,
            transaction_id=txn.id,
            created=self._created(txn),
            message=None if ok else "Wrong MPIN or OTP",
        )
        return self._finish(txn, obj)

    def _pay_kiosk(
        self, key: PaymentKey, integration: Integration
    ) -> tuple[int, dict[str, Any], Completion | None]:
        if integration.source is not PaymentSource.KIOSK:
            raise SandboxError(
                400, {"detail": f"integration {integration.id} is not a kiosk integration"}
            )
        txn = self._new_payment(key, PaymentSource.KIOSK)
        obj = self._build(
            key=key,
            outcome=Outcome.PENDING,
            source=PaymentSource.KIOSK,
            transaction_id=txn.id,
            created=self.now(),
        )
        self._hold(txn, obj, "pending_kiosk")
        reference = obj["data"]["bill_reference"]
        self.on_event(
            "kiosk",
            f"transaction {txn.id}: kiosk reference {reference} (pay it with "
            f"POST /_sandbox/kiosk/{reference}/pay)",
        )
        flat = {
            k: ("true" if v is True else "false" if v is False else v)
            for k, v in obj.items()
            if k in ("id", "pending", "success", "amount_cents", "currency")
        }
        return 200, {**obj, **flat}, None

    def pay_kiosk_reference(self, reference: int) -> Transaction:
        txn = next(
            (
                t
                for t in self.transactions.values()
                if t.state == "pending_kiosk"
                and t.obj.get("data", {}).get("bill_reference") == reference
            ),
            None,
        )
        if txn is None:
            raise SandboxError(
                404, {"detail": f"no pending kiosk payment with reference {reference}"}
            )
        obj = self._build(
            key=self.keys[txn.key or ""],
            outcome=Outcome.APPROVED,
            source=PaymentSource.KIOSK,
            transaction_id=txn.id,
            created=self._created(txn),
        )
        obj["data"]["bill_reference"] = reference
        return self._finish(txn, obj)

    # -- retrieval and inquiry -----------------------------------------------------------------------

    def get_transaction(self, txn_id: int) -> Transaction:
        txn = self.transactions.get(txn_id)
        if txn is None:
            raise SandboxError(404, {"detail": "Not found."})
        return txn

    def inquiry(self, body: Mapping[str, Any]) -> Transaction:
        """``POST /api/ecommerce/orders/transaction_inquiry``: the order's latest transaction."""
        order_id = body.get("order_id")
        merchant_order_id = body.get("merchant_order_id")
        if order_id in (None, "") and merchant_order_id in (None, ""):
            raise SandboxError(400, {"detail": "order_id or merchant_order_id is required"})
        order: Order | None = None
        if order_id not in (None, ""):
            value = self._int(body, "order_id")
            order = self.orders.get(value or 0)
        else:
            order = next(
                (o for o in self.orders.values() if o.merchant_order_id == str(merchant_order_id)),
                None,
            )
        if order is None:
            raise SandboxError(404, {"detail": "Not found."})
        mine = [t for t in self.transactions.values() if t.order_id == order.id]
        if not mine:
            raise SandboxError(404, {"detail": f"Order {order.id} has no transactions yet."})
        return max(mine, key=lambda t: t.id)

    # -- refund, void, capture ---------------------------------------------------------------------

    def _parent(self, body: Mapping[str, Any]) -> Transaction:
        txn_id = self._int(body, "transaction_id")
        parent = self.transactions.get(txn_id or 0)
        if parent is None:
            raise SandboxError(404, {"detail": "Invalid transaction id"})
        return parent

    def _child(self, parent: Transaction, outcome: Outcome, amount: int) -> Transaction:
        key = self.keys.get(parent.key or "")
        assert key is not None
        child_key = PaymentKey(**{**asdict(key), "amount_cents": amount})
        txn_id = self._id("transaction")
        source = PaymentSource(parent.source)
        info = parent.card or {}
        obj = self._build(
            key=child_key,
            outcome=outcome,
            source=source,
            transaction_id=txn_id,
            created=self.now(),
            brand=CardBrand(info.get("brand", CardBrand.MASTERCARD.value)),
            last4=str(info.get("last4", "2346")),
        )
        obj["parent_transaction"] = parent.id
        obj["is_auth"] = False
        child = Transaction(
            txn_id,
            parent.order_id,
            parent.integration_id,
            parent.key,
            outcome.value,
            parent.source,
            obj,
            parent_id=parent.id,
            card=parent.card,
        )
        self.on_event(
            outcome.value,
            f"transaction {txn_id}: {outcome.value} of {parent.id} "
            f"{self.money(amount, str(obj['currency']))}",
        )
        return self._store_txn(child)

    def _refundable(self, parent: Transaction) -> int:
        obj = parent.obj
        base = (
            int(obj.get("captured_amount") or 0) if obj.get("is_auth") else int(obj["amount_cents"])
        )
        return base - int(obj.get("refunded_amount_cents") or 0)

    def refund(self, body: Mapping[str, Any]) -> Transaction:
        parent = self._parent(body)
        amount = self._int(body, "amount_cents")
        assert amount is not None
        obj = parent.obj
        if parent.kind != "payment" or not obj.get("success") or obj.get("pending"):
            raise SandboxError(
                400,
                {
                    "detail": "Transaction is not refundable: only successful payments can be refunded"
                },
            )
        if obj.get("is_voided"):
            raise SandboxError(400, {"detail": "Transaction is voided and cannot be refunded"})
        if parent.source == "kiosk":
            raise SandboxError(400, {"detail": "Kiosk payments cannot be refunded"})
        refundable = self._refundable(parent)
        if amount > refundable:
            major = Decimal(refundable).scaleb(-currency_exponent(str(obj["currency"])))
            text = f"{major:.1f}" if major == major.to_integral_value() else f"{major.normalize()}"
            raise SandboxError(
                400,
                {
                    "message": "Requested Refund Amount is greater than the maximum refund amount "
                    f"permissible. Maximum Refund Amount is {obj['currency']} {text}"
                },
            )
        child = self._child(parent, Outcome.REFUND, amount)
        obj["refunded_amount_cents"] = int(obj.get("refunded_amount_cents") or 0) + amount
        obj["is_refunded"] = True
        self._store_txn(parent)
        return child

    def void(self, body: Mapping[str, Any]) -> Transaction:
        parent = self._parent(body)
        obj = parent.obj
        if parent.kind != "payment" or parent.source != "card" or not obj.get("success"):
            raise SandboxError(
                400, {"detail": "Transaction can not be voided: only successful card payments can"}
            )
        if obj.get("is_voided"):
            raise SandboxError(400, {"detail": "Transaction is already voided"})
        if obj.get("is_refunded"):
            raise SandboxError(400, {"detail": "Transaction is refunded and can not be voided"})
        child = self._child(parent, Outcome.VOID, int(obj["amount_cents"]))
        obj["is_voided"] = True
        self._store_txn(parent)
        return child

    def capture(self, body: Mapping[str, Any]) -> Transaction:
        parent = self._parent(body)
        amount = self._int(body, "amount_cents")
        assert amount is not None
        obj = parent.obj
        if not obj.get("is_auth") or not obj.get("success"):
            raise SandboxError(
                400, {"detail": "Transaction is not an authorization: nothing to capture"}
            )
        if obj.get("is_voided"):
            raise SandboxError(400, {"detail": "Transaction is voided"})
        remaining = int(obj["amount_cents"]) - int(obj.get("captured_amount") or 0)
        if amount > remaining:
            raise SandboxError(400, {"detail": "Capture amount cannot exceed auth amount"})
        child = self._child(parent, Outcome.CAPTURE, amount)
        obj["captured_amount"] = int(obj.get("captured_amount") or 0) + amount
        obj["is_captured"] = True
        order = self.orders[parent.order_id]
        order.paid_amount_cents += amount
        self._save("order", order.id, order)
        self._store_txn(parent)
        return child

    # -- intentions --------------------------------------------------------------------------------

    def create_intention(self, body: Mapping[str, Any]) -> Intention:
        """``POST /v1/intention/`` (docs/paymob.md §5.1), validating like Paymob."""
        errors: dict[str, Any] = {}
        amount = body.get("amount")
        if amount in (None, ""):
            errors["amount"] = REQUIRED
        elif amount_error := self._int_error(amount):
            errors["amount"] = amount_error
        if currency_error := self._currency_error(body.get("currency")):
            errors["currency"] = currency_error
        methods = body.get("payment_methods")
        if not methods:
            errors["payment_methods"] = REQUIRED
        elif not isinstance(methods, list):
            errors["payment_methods"] = [
                f'Expected a list of items but got type "{_json_type(methods)}".'
            ]
        billing = body.get("billing_data")
        if not isinstance(billing, dict):
            errors["billing_data"] = REQUIRED
        else:
            problems = {}
            for name in BILLING_REQUIRED:
                if billing.get(name) is None:
                    problems[name] = REQUIRED
                elif not str(billing[name]).strip():
                    problems[name] = ["This field may not be blank."]
            if problems:
                errors["billing_data"] = problems
        items, items_error = self._items(body.get("items", []), "amount")
        if items_error:
            errors["items"] = items_error
        expiration = body.get("expiration")
        if expiration not in (None, "") and (
            expiration_error := self._int_error(expiration, maximum=MAX_KEY_EXPIRATION)
        ):
            errors["expiration"] = expiration_error
        tokens = body.get("card_tokens") or []
        if not isinstance(tokens, list):
            errors["card_tokens"] = [
                f'Expected a list of items but got type "{_json_type(tokens)}".'
            ]
        elif len(tokens) > 3:
            errors["card_tokens"] = ["Ensure this field has no more than 3 elements."]
        errors.update(self._url_errors(body))
        if errors:
            raise SandboxError(400, errors)
        assert isinstance(methods, list) and isinstance(billing, dict)
        total = _as_int(amount)
        assert total is not None
        currency = str(body["currency"]).strip().upper()
        integrations = [self._integration(m) for m in methods]
        for integration in integrations:
            if integration.currency != currency:
                raise SandboxError(400, {"detail": "Invalid currency sent"})
        if items and sum(i["amount"] * i["quantity"] for i in items) != total:
            raise SandboxError(
                400, {"detail": "Sum of items amounts doesn't equal the intention amount"}
            )
        special = body.get("special_reference")
        order = self.create_order(
            {
                "amount_cents": total,
                "currency": currency,
                "delivery_needed": False,
                "merchant_order_id": special,
                "items": [
                    {
                        "name": i.get("name"),
                        "amount_cents": i.get("amount"),
                        "description": i.get("description", ""),
                        "quantity": i["quantity"],
                    }
                    for i in items
                ],
            }
        )
        intention_id = f"pi_test_{_hex_id(16)}"
        client_secret = f"{self.creds.secret_key[:3]}_csk_test_{_hex_id(16)}"
        billing_full = {
            name: billing.get(name, "") for name in (*BILLING_REQUIRED, *BILLING_PRESENT)
        }
        expiration = _as_int(body.get("expiration")) or DEFAULT_KEY_EXPIRATION
        keys = []
        for integration in integrations:
            key = self.create_payment_key(
                {
                    "amount_cents": total,
                    "expiration": expiration,
                    "order_id": order.id,
                    "billing_data": billing_full,
                    "currency": currency,
                    "integration_id": integration.id,
                    "extra": body.get("extras") or {},
                },
                intention_id=client_secret,
            )
            key.claims.update(
                next_payment_intention=intention_id,
                redirect_url=f"{self.base_url}/unifiedcheckout/payment-status?payment_token={key.key[:16]}",
            )
            # An intention's own URLs are in its keys' claims too (2025 KSA, 2026 EG samples).
            for url_field in ("notification_url", "redirection_url"):
                if body.get(url_field):
                    key.claims[url_field] = body[url_field]
            key.claims = callbacks.jsonb_order(key.claims)
            keys.append(
                {
                    "integration": integration.id,
                    "key": key.key,
                    "gateway_type": integration.gateway_type,
                    "iframe_id": None,
                    "order_id": order.id,
                }
            )
        intention = Intention(
            id=intention_id,
            client_secret=client_secret,
            amount=total,
            currency=currency,
            payment_methods=[i.id for i in integrations],
            items=items,
            billing_data=billing_full,
            special_reference=str(special) if special is not None else None,
            notification_url=body.get("notification_url") or None,
            redirection_url=body.get("redirection_url") or None,
            card_tokens=[str(t) for t in tokens],
            extras=dict(body.get("extras") or {}),
            order_id=order.id,
            keys=keys,
            created=self.stamp(),
        )
        order.intention_id = client_secret
        self.intentions[client_secret] = intention
        self._save("intention", client_secret, intention)
        self._save("order", order.id, order)
        self.on_event(
            "intention",
            f"intention {intention_id} for {self.money(total, currency)} (order {order.id})",
        )
        return intention

    def intention_response(self, intention: Intention) -> dict[str, Any]:
        return {
            "payment_keys": intention.keys,
            "intention_order_id": intention.order_id,
            "id": intention.id,
            "intention_detail": {
                "amount": intention.amount,
                "items": [{**i, "image": None} for i in intention.items],
                "currency": intention.currency,
                "billing_data": intention.billing_data,
            },
            "client_secret": intention.client_secret,
            "payment_methods": [
                {
                    "integration_id": i,
                    "alias": None,
                    "name": self.integrations[i].name,
                    "method_type": self.integrations[i].integration_type,
                    "currency": intention.currency,
                    "live": False,
                    "use_cvc_with_moto": False,
                }
                for i in intention.payment_methods
            ],
            "special_reference": intention.special_reference,
            "extras": {"creation_extras": intention.extras or None, "confirmation_extras": None},
            "confirmed": intention.status == "paid",
            "status": intention.status,
            "created": intention.created,
            "card_detail": None,
            "card_tokens": [self._token_view(t) for t in intention.card_tokens if t in self.tokens],
            "object": "paymentintention",
        }

    def _token_view(self, token: str) -> dict[str, Any]:
        saved = self.tokens[token]
        return {
            "token": saved.token,
            "masked_pan": saved.masked_pan,
            "card_subtype": saved.card_subtype,
        }

    def update_intention(self, client_secret: str, body: Mapping[str, Any]) -> Intention:
        intention = self.intentions.get(client_secret)
        if intention is None:
            raise SandboxError(404, {"detail": "Not found."})
        errors = self._url_errors(body)
        order = body.get("accept_order_id")
        if order in (None, ""):
            errors["accept_order_id"] = REQUIRED
        elif problem := self._int_error(order):
            errors["accept_order_id"] = problem
        reference = body.get("special_reference")
        if reference not in (None, "") and not isinstance(reference, str | int):
            errors["special_reference"] = ["Not a valid string."]
        if errors:
            raise SandboxError(400, errors)
        for name in ("notification_url", "redirection_url", "special_reference"):
            if name in body:
                value = body[name]
                setattr(intention, name, str(value) if value not in (None, "") else None)
        self._save("intention", client_secret, intention)
        return intention

    def intention_for_checkout(
        self, public_key: str | None, client_secret: str | None
    ) -> Intention:
        if not public_key or not hmac.compare_digest(
            public_key.encode(), self.creds.public_key.encode()
        ):
            raise PageError(
                401, "Invalid public key", "publicKey does not match this sandbox's public key."
            )
        intention = self.intentions.get(client_secret or "")
        if intention is None:
            raise PageError(404, "Unknown payment", "clientSecret does not match any intention.")
        if intention.status == "paid":
            raise PageError(409, "Already paid", "This payment intention is already paid.")
        return intention

    def element(self, public_key: str, client_secret: str) -> dict[str, Any]:
        if not hmac.compare_digest(public_key.encode(), self.creds.public_key.encode()):
            raise SandboxError(401, {"detail": "Invalid public key."})
        intention = self.intentions.get(client_secret)
        if intention is None:
            raise SandboxError(404, {"detail": "Not found."})
        view = self.intention_response(intention)
        view.pop("payment_keys")
        view["paid"] = intention.status == "paid"
        return view

    def intention_key(self, intention: Intention, kind: str = "card") -> PaymentKey:
        for entry in intention.keys:
            integration = self.integrations[int(entry["integration"])]
            if integration.source.value == kind or (
                kind == "card" and integration.source is PaymentSource.CARD
            ):
                return self.usable_key(str(entry["key"]))
        raise PageError(
            400, "Method not offered", f"This intention offers no {kind} payment method."
        )

    def pay_intention_token(
        self, intention: Intention, token: str, base: str
    ) -> tuple[Transaction, Completion | None]:
        """Saved card from the unified checkout: the transaction, and its completion unless it
        still needs 3-D Secure."""
        if token not in intention.card_tokens or token not in self.tokens:
            raise PageError(
                400, "Unknown saved card", "That saved card is not offered by this payment."
            )
        key = self.intention_key(intention)
        integration = self.integrations[key.integration_id]
        _, record, done = self._pay_token(key, integration, token, base)
        return self.transactions[int(record["id"])], done

    # -- deliveries --------------------------------------------------------------------------------

    def resend(self, delivery_id: int) -> Outbound:
        """A delivered (or failed) callback again, like ``stripe events resend``: the same body,
        signed again (the same HMAC), to the same URL, recorded as a new delivery."""
        item = self.deliveries.get(delivery_id)
        if item is None:
            raise SandboxError(404, {"detail": f"No delivery {delivery_id}."})
        if item.body is None:
            raise SandboxError(400, {"detail": f"Delivery {delivery_id} has no body to resend."})
        kind = CallbackKind(item.kind)
        body = json.loads(item.body)
        digest = signing.compute(kind, body.get("obj") or {}, self.creds.hmac_secret)
        request = delivery.post_json(callbacks.with_query(item.url, f"hmac={digest}"), body)
        self.on_event("callback", f"resending delivery {delivery_id} ({item.kind} → {item.url})")
        return self._queue(kind, item.url, request, item.transaction_id)

    def record_attempt(
        self, delivery_id: int, attempt: Attempt, *, final: bool, ok: bool
    ) -> Delivery:
        item = self.deliveries[delivery_id]
        item.attempts.append(attempt)
        if ok:
            item.state = "delivered"
        elif final:
            item.state = "failed"
        self._save("delivery", item.id, item)
        return item


class StorePersistence:
    """Keeps the sandbox's objects in a paymobctl SQLite store (``paymobctl sandbox --state PATH``)."""

    def __init__(self, store: Any) -> None:
        self.store = store

    def save(self, kind: str, key: str, value: Mapping[str, Any]) -> None:
        # An auth record is a digest and a time, nothing a request wrote: masking a digit run
        # of the digest would only make the token unknown after a restart.
        self.store.save_sandbox_object(kind, key, value, mask=kind != "auth")

    def forget(self, kind: str, keys: Sequence[str]) -> None:
        self.store.delete_sandbox_objects(kind, keys)

    def load(self) -> dict[str, list[dict[str, Any]]]:
        loaded: dict[str, list[dict[str, Any]]] = self.store.load_sandbox_objects()
        return loaded
