"""A real Django backend in the shape of the integration guide's, with the classic mistakes.

Every variant lives under its own prefix: ``good/`` (csrf_exempt, HMAC enforced), ``nocsrf/``
(the guide's missing @csrf_exempt), ``nohmac/`` (accepts anything), ``crash/`` (a KeyError on a
missing hmac → 500), ``debug/`` (like good/, with DEBUG = True for the request),
``fieldshift/`` (verifies the HMAC with a lenient dotted lookup and no shape check: accepts the
field-shift forgery of issue 10), ``loop/`` (the webhook path redirects to itself, via the
path without its slash).

At the root, ``api/payments/...`` is the guide's whole backend (``GUIDE``): a deposit view that
calls Paymob (auth → order → payment key with ``tokenization``) at ``PAYMOB_BASE_URL`` with the
guide's four ``PAYMOB_*`` variables and returns the ``iframe_url``; a webhook that verifies the
HMAC with its own code (not paymobctl's), marks deposits paid and saves cards; the response
redirect; and the status view the frontend polls. ``GUIDE.boolean_bug`` switches on the classic
``str(True)`` mistake in that verification code.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import django
import httpx
from django.conf import settings

SECRET = "django-site-hmac-secret-000000000"

if not settings.configured:
    settings.configure(
        DEBUG=False,
        SECRET_KEY="paymobctl-tests-django-secret-key-0000000000000000",
        ALLOWED_HOSTS=["*"],
        ROOT_URLCONF=__name__,
        MIDDLEWARE=[f"{__name__}.DebugPerPrefix", "django.middleware.csrf.CsrfViewMiddleware"],
        INSTALLED_APPS=[],
        USE_TZ=True,
        LOGGING_CONFIG=None,
    )
    django.setup()

from django.http import (  # noqa: E402
    HttpRequest,
    HttpResponse,
    HttpResponseRedirect,
    JsonResponse,
)
from django.urls import path, re_path  # noqa: E402
from django.views.decorators.csrf import csrf_exempt  # noqa: E402

from paymobctl import signing  # noqa: E402
from paymobctl.models import CallbackKind  # noqa: E402


class DebugPerPrefix:
    """DEBUG = True for requests under /debug/ only (Django reads it per request for error pages)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        settings.DEBUG = request.path.startswith("/debug/")
        return self.get_response(request)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


_FLAGS = (
    "error_occured", "has_parent_transaction", "is_3d_secure", "is_auth", "is_capture",
    "is_refunded", "is_standalone_payment", "is_voided", "pending", "success",
)  # fmt: skip


def _shape_ok(kind: CallbackKind, obj: Any) -> bool:
    """What a careful view checks before trusting the HMAC: the signed string has no separators,
    so a reshaped payload (obj.order an integer, a float id, "false") can keep it (docs/paymob.md §14)."""
    if not isinstance(obj, dict):
        return False
    if kind is CallbackKind.TOKEN:
        return _is_int(obj.get("id")) and _is_int(obj.get("merchant_id"))
    order = obj.get("order")
    return (
        isinstance(order, dict)
        and _is_int(order.get("id"))
        and all(_is_int(obj.get(n)) for n in ("id", "amount_cents", "owner", "integration_id"))
        and all(isinstance(obj.get(n), bool) for n in _FLAGS)
        and isinstance(obj.get("source_data"), dict)
    )


def _verify(request: HttpRequest) -> HttpResponse:
    """What the guide's payments/views.py does: verify, then act; errors as {"detail": ...}.
    It also checks the signed fields' shapes first, as a correct receiver must."""
    received = request.GET.get("hmac")
    if not received:
        return JsonResponse({"detail": "Invalid HMAC Signature"}, status=401)
    try:
        document = json.loads(request.body)
    except ValueError:
        return JsonResponse({"detail": "Invalid payload"}, status=400)
    kind = CallbackKind(document.get("type", "TRANSACTION"))
    if not _shape_ok(kind, document.get("obj")):
        return JsonResponse({"detail": "Malformed signed fields"}, status=400)
    if not signing.verify(kind, document.get("obj", {}), SECRET, received).valid:
        return JsonResponse({"detail": "Invalid HMAC Signature"}, status=401)
    return JsonResponse({"detail": "ok"})


def good(request: HttpRequest) -> HttpResponse:
    return _verify(request)


def response(request: HttpRequest) -> HttpResponse:
    params = {k: v for k, v in request.GET.items() if k != "hmac"}
    valid = signing.verify(CallbackKind.RESPONSE, params, SECRET, request.GET.get("hmac")).valid
    return HttpResponse("thanks" if valid else "invalid", status=200 if valid else 401)


def field_shift(request: HttpRequest) -> HttpResponse:
    """Verifies the HMAC correctly over the concatenation, but never checks the shapes."""
    received = request.GET.get("hmac", "")
    obj = json.loads(request.body).get("obj", {})
    if not hmac.compare_digest(lenient_digest(obj, SECRET), received):
        return JsonResponse({"detail": "Invalid HMAC Signature"}, status=401)
    return JsonResponse({"detail": "ok"})


def loop(request: HttpRequest) -> HttpResponse:
    """/loop/api/payments/webhook/ → …/webhook → …/webhook/ → …: a rewrite rule fighting
    APPEND_SLASH (307 keeps the POST, as a proxy rule would)."""
    target = request.path[:-1] if request.path.endswith("/") else request.path + "/"
    response = HttpResponseRedirect(target)
    response.status_code = 307
    return response


def no_hmac(request: HttpRequest) -> HttpResponse:
    del request
    return JsonResponse({"detail": "ok"})


def crash(request: HttpRequest) -> HttpResponse:
    received = request.GET["hmac"]  # KeyError → 500 when Paymob's hmac is missing
    del received
    return _verify(request)


def _routes(prefix: str, webhook: Callable[..., Any]) -> list[Any]:
    return [
        path(f"{prefix}api/payments/webhook/", webhook),
        path(f"{prefix}api/payments/response/", response),
    ]


# --- the integration guide's backend (payments/views.py and srvana/paymob_utils.py, reduced) -------


@dataclass
class Guide:
    boolean_bug: bool = False  # render booleans with str(): "True" where Paymob signs "true"
    deposits: dict[int, dict[str, Any]] = field(default_factory=dict)  # by Paymob order id
    cards: list[dict[str, Any]] = field(default_factory=list)  # PaymentMethod rows
    webhooks: list[tuple[str, int]] = field(default_factory=list)  # (type, status answered)

    def reset(self, *, boolean_bug: bool = False) -> None:
        self.boolean_bug = boolean_bug
        self.deposits.clear()
        self.cards.clear()
        self.webhooks.clear()


GUIDE = Guide()

# The signed fields, as the guide's views.py lists them (Paymob's docs).
_TXN_KEYS = (
    "amount_cents", "created_at", "currency", "error_occured", "has_parent_transaction", "id",
    "integration_id", "is_3d_secure", "is_auth", "is_capture", "is_refunded",
    "is_standalone_payment", "is_voided", "order.id", "owner", "pending", "source_data.pan",
    "source_data.sub_type", "source_data.type", "success",
)  # fmt: skip
_TOKEN_KEYS = (
    "card_subtype", "created_at", "email", "id", "masked_pan", "merchant_id", "order_id", "token",
)  # fmt: skip


def _paymob(path_: str, body: dict[str, Any]) -> Any:
    response = httpx.post(f"{os.environ['PAYMOB_BASE_URL']}{path_}", json=body, timeout=10)
    response.raise_for_status()
    return response.json()


def guide_deposit(request: HttpRequest) -> HttpResponse:
    """POST /api/payments/deposit/ {"amount": 150}: the iframe URL for the frontend's new tab."""
    try:
        amount_cents = round(float(json.loads(request.body)["amount"]) * 100)
    except (ValueError, KeyError, TypeError):
        return JsonResponse({"detail": "Invalid Amount"}, status=400)
    try:
        token = _paymob("/api/auth/tokens", {"api_key": os.environ["PAYMOB_API_KEY"]})["token"]
        order = _paymob(
            "/api/ecommerce/orders",
            {"auth_token": token, "delivery_needed": "false", "amount_cents": amount_cents,
             "currency": "EGP", "items": []},
        )  # fmt: skip
        billing = dict.fromkeys(
            ("apartment", "floor", "street", "building", "shipping_method", "postal_code",
             "city", "country", "state"),
            "NA",
        )  # fmt: skip
        billing.update(first_name="Mona", last_name="Adel", email="mona@example.com",
                       phone_number="+201234567890")  # fmt: skip
        key = _paymob(
            "/api/acceptance/payment_keys",
            {"auth_token": token, "amount_cents": amount_cents, "expiration": 3600,
             "order_id": order["id"], "billing_data": billing, "currency": "EGP",
             "integration_id": int(os.environ["PAYMOB_INTEGRATION_ID"]),
             "tokenization": "true"},
        )  # fmt: skip
    except (httpx.HTTPError, KeyError, ValueError):
        return JsonResponse({"detail": "Failed to initiate deposit"}, status=502)
    GUIDE.deposits[order["id"]] = {"amount_cents": amount_cents, "status": "pending"}
    iframe = os.environ["PAYMOB_IFRAME_ID"]
    return JsonResponse(
        {
            "iframe_url": f"{os.environ['PAYMOB_BASE_URL']}/api/acceptance/iframes/{iframe}"
            f"?payment_token={key['token']}",
            "order_id": order["id"],
        }
    )


def _value(data: Mapping[str, Any], dotted: str) -> Any:
    current: Any = data
    for part in dotted.split("."):
        current = current.get(part) if isinstance(current, Mapping) else None
    return current


def _plain(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def _text(value: Any) -> str:
    if GUIDE.boolean_bug:
        return str(value)  # the bug: "True"/"False"
    return _plain(value)


def lenient_digest(obj: Mapping[str, Any], secret: str) -> str:
    """The TRANSACTION HMAC as a lenient verifier computes it (``_value``: whatever is not an
    object along a dotted path is ""), so a bare-integer ``obj.order`` signs as an empty
    ``order.id`` — what the field-shift forgery relies on."""
    message = "".join(_plain(_value(obj, name)) for name in _TXN_KEYS)
    return hmac.new(secret.encode(), message.encode(), hashlib.sha512).hexdigest()


def _guide_hmac(keys: tuple[str, ...], data: Mapping[str, Any], flat: bool = False) -> str:
    message = "".join(_text(data.get(k) if flat else _value(data, k)) for k in keys)
    key = os.environ["PAYMOB_HMAC_SECRET"].encode()
    return hmac.new(key, message.encode(), hashlib.sha512).hexdigest()


def guide_webhook(request: HttpRequest) -> HttpResponse:
    received = request.GET.get("hmac", "")
    try:
        body = json.loads(request.body)
        kind, obj = body["type"], body["obj"]
    except (ValueError, KeyError, TypeError):
        return JsonResponse({"detail": "Invalid payload"}, status=400)
    keys = _TOKEN_KEYS if kind == "TOKEN" else _TXN_KEYS
    if not hmac.compare_digest(_guide_hmac(keys, obj), received):
        GUIDE.webhooks.append((kind, 401))
        return JsonResponse({"detail": "Invalid HMAC Signature"}, status=401)
    if kind == "TRANSACTION":
        deposit = GUIDE.deposits.get(_value(obj, "order.id"))
        if deposit is not None:  # an unknown order is acknowledged, never acted on
            deposit["status"] = "paid" if obj.get("success") is True else "failed"
    elif kind == "TOKEN":
        GUIDE.cards.append(
            {
                "token": obj["token"],
                "masked_pan": obj["masked_pan"],
                "card_type": obj["card_subtype"],
            }
        )
    GUIDE.webhooks.append((kind, 200))
    return JsonResponse({"detail": "ok"})


def guide_response(request: HttpRequest) -> HttpResponse:
    params = {k: v for k, v in request.GET.items() if k != "hmac"}
    keys = tuple("order" if k == "order.id" else k for k in _TXN_KEYS)
    if not hmac.compare_digest(_guide_hmac(keys, params, flat=True), request.GET.get("hmac", "")):
        return HttpResponse("invalid", status=401)
    return HttpResponse(
        "Payment successful" if params.get("success") == "true" else "Payment failed"
    )


def guide_status(request: HttpRequest, order_id: str) -> HttpResponse:
    deposit = GUIDE.deposits.get(int(order_id))
    if deposit is None:
        return JsonResponse({"detail": "Not found"}, status=404)
    return JsonResponse(deposit)


urlpatterns = [
    *_routes("good/", csrf_exempt(good)),
    *_routes("nocsrf/", good),
    *_routes("nohmac/", csrf_exempt(no_hmac)),
    *_routes("crash/", csrf_exempt(crash)),
    *_routes("debug/", csrf_exempt(good)),
    *_routes("fieldshift/", csrf_exempt(field_shift)),
    path("loop/api/payments/webhook/", csrf_exempt(loop)),
    path("loop/api/payments/webhook", csrf_exempt(loop)),
    path("api/payments/deposit/", csrf_exempt(guide_deposit)),
    path("api/payments/webhook/", csrf_exempt(guide_webhook)),
    path("api/payments/response/", guide_response),
    re_path(r"^api/payments/status/(?P<order_id>[0-9]{1,18})/$", guide_status),
]


def application() -> Any:
    from django.core.asgi import get_asgi_application

    return get_asgi_application()
