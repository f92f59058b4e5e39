"""What every sandbox route shares: finding the sandbox and notifier, reading bodies within
Paymob's error conventions, turning refusals into answers, and the browser's redirects."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs, urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from paymobctl import redirects
from paymobctl.documents import loads_json
from paymobctl.emulator import pages
from paymobctl.emulator.notifier import Notifier
from paymobctl.emulator.records import Completion, Transaction
from paymobctl.emulator.state import Sandbox
from paymobctl.emulator.validation import PageError, SandboxError
from paymobctl.models import format_amount, lenient_int

Handler = Callable[[Request], Awaitable[Response]]


def sandbox_of(request: Request) -> Sandbox:
    """The app's sandbox, its emitted URLs pointing where this request came in."""
    sandbox: Sandbox = request.app.state.sandbox
    # URLs the sandbox emits (order_url, redirects) use the host and port it was reached on.
    sandbox.base_url = base_url_of(request)
    return sandbox


def notifier_of(request: Request) -> Notifier:
    """The app's callback notifier."""
    notifier: Notifier = request.app.state.notifier
    return notifier


def base_url_of(request: Request) -> str:
    """The sandbox's URL as this request reached it."""
    return str(request.base_url).rstrip("/")


async def json_body(request: Request) -> dict[str, Any]:
    """The request's JSON object (or form fields), else Paymob's 400 body."""
    raw = await request.body()
    if not raw.strip():
        return {}
    content_type = request.headers.get("content-type", "")
    if "application/x-www-form-urlencoded" in content_type:
        return {k: v[0] for k, v in parse_qs(raw.decode("utf-8", "replace")).items()}
    try:
        body = loads_json(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise SandboxError(400, {"detail": f"JSON parse error - {exc}"}) from None
    if not isinstance(body, dict):
        raise SandboxError(
            400, {"non_field_errors": ["Invalid data. Expected a dictionary, but got list."]}
        )
    return body


async def form_body(request: Request) -> dict[str, str]:
    """A hosted page's submitted form fields."""
    raw = (await request.body()).decode("utf-8", "replace")
    return {k: v[0] for k, v in parse_qs(raw, keep_blank_values=True).items()}


def api(handler: Handler) -> Handler:
    """Wrap a JSON API route: a refusal becomes Paymob's error body, never a 500."""

    async def wrapped(request: Request) -> Response:
        try:
            return await handler(request)
        except SandboxError as exc:
            return JSONResponse(exc.body, status_code=exc.status)
        except PageError as exc:
            return JSONResponse({"detail": exc.message}, status_code=exc.status)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            # A body shape the validators did not foresee: a client error, never a 500.
            detail = f"Invalid data: {type(exc).__name__}: {exc}"[:300]
            sandbox_of(request).on_event("error", f"{request.url.path}: {detail}")
            return JSONResponse({"detail": detail}, status_code=400)

    return wrapped


def html(handler: Handler) -> Handler:
    """Wrap a hosted page: a refusal becomes the sandbox's error page."""

    async def wrapped(request: Request) -> Response:
        try:
            return await handler(request)
        except PageError as exc:
            return HTMLResponse(pages.error_page(exc.title, exc.message), status_code=exc.status)
        except SandboxError as exc:
            return HTMLResponse(
                pages.error_page("Error", json.dumps(exc.body)), status_code=exc.status
            )

    return wrapped


def finish(request: Request, completion: Completion) -> Response:
    """Deliver the callbacks and send the browser where Paymob would."""
    notifier_of(request).submit(completion.outbound)
    if completion.redirect_url:
        return RedirectResponse(completion.redirect_url, status_code=303)
    txn = completion.transaction
    query = urlencode(redirects.redirect_params(txn.obj, None))
    return RedirectResponse(
        f"{base_url_of(request)}/api/acceptance/post_pay?{query}", status_code=303
    )


def to_acs(request: Request, txn: Transaction) -> Response:
    """Send the browser to the 3-D Secure page of a payment held for it."""
    return RedirectResponse(f"{base_url_of(request)}/api/acceptance/acs/{txn.id}", status_code=303)


def amount_text(txn_or_cents: Transaction | int, currency: str = "EGP") -> str:
    """An amount as the hosted pages show it (``150.00 EGP``)."""
    if isinstance(txn_or_cents, Transaction):
        return format_amount(
            int(txn_or_cents.obj["amount_cents"]), str(txn_or_cents.obj["currency"])
        )
    return format_amount(txn_or_cents, currency)


def int_param(value: str, what: str) -> int:
    """A path parameter that must be a number, else the page's 404."""
    number = lenient_int(value)
    if number is None:
        raise PageError(404, "Not found", f"{what} {value!r} is not a number.")
    return number
