"""Checking request fields like Paymob's Django REST framework does, with its error bodies.

Every refusal is a :class:`SandboxError` carrying DRF's message shape (``{"field": ["This field
is required."]}``), or a :class:`PageError` on the hosted pages. Callback and redirect URLs are
checked here too: http(s) only, never a link-local (cloud metadata) address.
"""

from __future__ import annotations

import ipaddress
import json
import socket
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from paymobctl.config import check_url
from paymobctl.emulator.records import Integration
from paymobctl.models import CURRENCY_EXPONENT, lenient_int

MAX_INT = 2**63 - 1
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
INTEGRATION_NOT_FOUND = (
    "Integration ID/Name does not exist in our system . You can find the list of Integration "
    "ID’/Names on your dashboard"
)
LINK_LOCAL_REFUSED = (
    "Callbacks to link-local or metadata addresses (169.254.0.0/16, fe80::/10) are refused."
)


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


# --- numbers, booleans, currencies, lists ------------------------------------------------------


def as_int(value: object) -> int | None:
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


def int_error(value: object, *, minimum: int = 1, maximum: int = MAX_INT) -> list[str] | None:
    """DRF ``IntegerField`` rules: ints, integral floats and digit strings; else the message."""
    number = as_int(value)
    if number is None:
        return ["A valid integer is required."]
    if number < minimum:
        return [f"Ensure this value is greater than or equal to {minimum}."]
    if number > maximum:
        return [f"Ensure this value is less than or equal to {maximum}."]
    return None


def int_field(
    body: Mapping[str, Any],
    name: str,
    *,
    required: bool = True,
    minimum: int = 1,
    maximum: int = MAX_INT,
) -> int | None:
    """``body[name]`` as an integer in range (None when absent and optional), else a 400."""
    value = body.get(name)
    if value is None or value == "":
        if required:
            raise SandboxError(400, {name: REQUIRED})
        return None
    error = int_error(value, minimum=minimum, maximum=maximum)
    if error:
        raise SandboxError(400, {name: error})
    return as_int(value)


def required_int(body: Mapping[str, Any], name: str) -> int:
    """``body[name]`` as a required integer of at least 1, else a 400."""
    value = int_field(body, name)
    assert value is not None
    return value


def bool_field(body: Mapping[str, Any], name: str, default: bool | None = None) -> bool:
    """``body[name]`` as DRF's ``BooleanField`` reads it (``true``/``"true"``), else a 400."""
    value = body.get(name, default)
    if value is None:
        raise SandboxError(400, {name: REQUIRED})
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise SandboxError(400, {name: ["Must be a valid boolean."]})


def currency_error(value: object) -> list[str] | None:
    """Why ``value`` is not a currency code Paymob knows, or None."""
    if value in (None, ""):
        return REQUIRED
    if not isinstance(value, str) or value.strip().upper() not in CURRENCY_EXPONENT:
        return [f'"{value}" is not a valid choice.']
    return None


def currency_field(body: Mapping[str, Any], name: str = "currency") -> str:
    """``body[name]`` as an upper-case currency code, else a 400."""
    value = body.get(name)
    error = currency_error(value)
    if error:
        raise SandboxError(400, {name: error})
    return str(value).strip().upper()


def json_type(value: object) -> str:
    """The Python type name DRF puts in its "got type" messages."""
    return type(value).__name__


def list_error(value: object) -> list[str]:
    """DRF's message for a value that should have been a list."""
    return [f'Expected a list of items but got type "{json_type(value)}".']


def items(value: object, amount_field: str) -> tuple[list[dict[str, Any]], Any]:
    """Validate an ``items`` list: (normalised items, None) or ([], the DRF error body)."""
    if value is None:
        return [], ["This field may not be null."]
    if not isinstance(value, list):
        return [], list_error(value)
    found: list[dict[str, Any]] = []
    for item in value:
        if not isinstance(item, dict):
            return [], {"non_field_errors": ["Invalid data. Expected a dictionary."]}
        missing = {n: REQUIRED for n in ("name", amount_field) if item.get(n) in (None, "")}
        if missing:
            return [], missing
        if len(str(item["name"])) > 50:
            return [], {"name": ["Ensure this field has no more than 50 characters."]}
        amount_error = int_error(item[amount_field], minimum=0)
        if amount_error:
            return [], {amount_field: amount_error}
        quantity = item.get("quantity", 1)
        quantity_error = None if quantity is None else int_error(quantity)
        if quantity_error:
            return [], {"quantity": quantity_error}
        found.append(
            {
                **item,
                amount_field: as_int(item[amount_field]),
                "quantity": as_int(quantity) if quantity is not None else 1,
            }
        )
    return found, None


# --- billing data (payment keys and intentions) -------------------------------------------------


def billing_error(billing: object, *, strict_presence: bool) -> Any:
    """Why ``billing_data`` is refused (DRF's body under ``billing_data``), or None.

    Names, email and phone must be non-blank; a payment key (``strict_presence``) must also
    carry every address field, even as ``"NA"`` (docs/paymob.md §3.3); an intention need not.
    """
    if not isinstance(billing, dict):
        return REQUIRED
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
    return errors or None


# --- integrations --------------------------------------------------------------------------------


def find_integration(integrations: Mapping[int, Integration], value: object) -> Integration:
    """The integration an id or name refers to, else Paymob's 404."""
    integration: Integration | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        integration = integrations.get(value)
    elif isinstance(value, str) and (number := lenient_int(value.strip())) is not None:
        integration = integrations.get(number)
    elif isinstance(value, str):
        integration = next((i for i in integrations.values() if i.name == value.strip()), None)
    if integration is None:
        raise SandboxError(404, {"detail": INTEGRATION_NOT_FOUND})
    return integration


# --- callback and redirect URLs ------------------------------------------------------------------


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


def url_errors(body: Mapping[str, Any], names: tuple[str, ...]) -> dict[str, list[str]]:
    """The URL fields of ``body`` that are set and refused, with why."""
    errors = {}
    for name in names:
        value = body.get(name)
        if value not in (None, "") and (problem := callback_url_error(value)):
            errors[name] = problem
    return errors
