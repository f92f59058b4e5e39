"""A real Django backend in the shape of the integration guide's, with the classic mistakes.

Every variant lives under its own prefix: ``good/`` (csrf_exempt, HMAC enforced), ``nocsrf/``
(the guide's missing @csrf_exempt), ``nohmac/`` (accepts anything), ``crash/`` (a KeyError on a
missing hmac → 500), ``debug/`` (like good/, with DEBUG = True for the request).
"""

from __future__ import annotations

import json
from collections.abc import Callable
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

from django.http import HttpRequest, HttpResponse, JsonResponse  # noqa: E402
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


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


_FLAGS = (
    "error_occured", "has_parent_transaction", "is_3d_secure", "is_auth", "is_capture",
    "is_refunded", "is_standalone_payment", "is_voided", "pending", "success",
)  # fmt: skip


def _shape_ok(kind: CallbackKind, obj: Any) -> bool:
    """What a careful view checks before trusting the HMAC: the signed string has no separators,
    so a reshaped payload (obj.order an integer, a float id, "false") can keep it (reference §14)."""
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
]


def application() -> Any:
    from django.core.asgi import get_asgi_application

    return get_asgi_application()
