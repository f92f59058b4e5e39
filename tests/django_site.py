"""A real Django backend in the shape of the integration guide's, with the classic mistakes.

Every variant lives under its own prefix: ``good/`` (csrf_exempt, HMAC enforced), ``nocsrf/``
(the guide's missing @csrf_exempt), ``nohmac/`` (accepts anything), ``crash/`` (a KeyError on a
missing hmac → 500), ``debug/`` (like good/, with DEBUG = True for the request),
``fieldshift/`` (verifies the HMAC with a lenient dotted lookup and no shape check: accepts the
field-shift forgery of issue 10), ``loop/`` (the webhook path redirects to itself, via the
path without its slash).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Mapping
from typing import Any

import django
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
from django.urls import path  # noqa: E402
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


# Paymob's signed TRANSACTION fields, in order (ARCHITECTURE.md "HMAC rules", reference §8).
TRANSACTION_FIELDS = (
    "amount_cents", "created_at", "currency", "error_occured", "has_parent_transaction", "id",
    "integration_id", "is_3d_secure", "is_auth", "is_capture", "is_refunded",
    "is_standalone_payment", "is_voided", "order.id", "owner", "pending", "source_data.pan",
    "source_data.sub_type", "source_data.type", "success",
)  # fmt: skip
SIGNED_INTEGERS = ("id", "amount_cents", "owner", "integration_id")


def shape_problem(obj: Mapping[str, Any]) -> str | None:
    """What a careful receiver checks before the HMAC: every signed field has its type."""
    order = obj.get("order")
    if not isinstance(order, dict) or type(order.get("id")) is not int:
        return "obj.order must be an object with an integer id"
    for name in SIGNED_INTEGERS:
        if type(obj.get(name)) is not int:
            return f"obj.{name} must be an integer"
    if not isinstance(obj.get("source_data"), dict):
        return "obj.source_data must be an object"
    return None


def _verify(request: HttpRequest) -> HttpResponse:
    """What the guide's payments/views.py does, plus a shape check of the signed fields:
    verify, then act; errors as {"detail": ...}."""
    received = request.GET.get("hmac")
    if not received:
        return JsonResponse({"detail": "Invalid HMAC Signature"}, status=401)
    try:
        document = json.loads(request.body)
    except ValueError:
        return JsonResponse({"detail": "Invalid payload"}, status=400)
    kind = CallbackKind(document.get("type", "TRANSACTION"))
    obj = document.get("obj", {})
    problem = shape_problem(obj) if kind is CallbackKind.TRANSACTION else None
    if problem:
        return JsonResponse({"detail": problem}, status=400)
    if not signing.verify(kind, document.get("obj", {}), SECRET, received).valid:
        return JsonResponse({"detail": "Invalid HMAC Signature"}, status=401)
    return JsonResponse({"detail": "ok"})


def good(request: HttpRequest) -> HttpResponse:
    return _verify(request)


def response(request: HttpRequest) -> HttpResponse:
    params = {k: v for k, v in request.GET.items() if k != "hmac"}
    valid = signing.verify(CallbackKind.RESPONSE, params, SECRET, request.GET.get("hmac")).valid
    return HttpResponse("thanks" if valid else "invalid", status=200 if valid else 401)


def lenient(obj: Any, dotted: str) -> str:
    """A dotted lookup many hand-written receivers use: anything that is not there is ""."""
    value = obj
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def field_shift(request: HttpRequest) -> HttpResponse:
    """Verifies the HMAC correctly over the concatenation, but never checks the shapes."""
    received = request.GET.get("hmac", "")
    obj = json.loads(request.body).get("obj", {})
    message = "".join(lenient(obj, name) for name in TRANSACTION_FIELDS)
    digest = hmac.new(SECRET.encode(), message.encode(), hashlib.sha512).hexdigest()
    if not hmac.compare_digest(digest, received):
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


urlpatterns = [
    *_routes("good/", csrf_exempt(good)),
    *_routes("nocsrf/", good),
    *_routes("nohmac/", csrf_exempt(no_hmac)),
    *_routes("crash/", csrf_exempt(crash)),
    *_routes("debug/", csrf_exempt(good)),
    *_routes("fieldshift/", csrf_exempt(field_shift)),
    path("loop/api/payments/webhook/", csrf_exempt(loop)),
    path("loop/api/payments/webhook", csrf_exempt(loop)),
]


def application() -> Any:
    from django.core.asgi import get_asgi_application

    return get_asgi_application()
