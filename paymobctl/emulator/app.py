"""The sandbox as an ASGI app: Paymob's legacy and Intention APIs, hosted pages, and admin routes."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, urlencode

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from paymobctl import callbacks
from paymobctl.delivery import RetryPolicy
from paymobctl.documents import loads_json
from paymobctl.emulator import cards, dashboard, pages
from paymobctl.emulator.notifier import DEFAULT_POLICY, DEFAULT_TIMEOUT, Notifier
from paymobctl.emulator.state import (
    Completion,
    Event,
    PageError,
    PaymentKey,
    Persistence,
    Sandbox,
    SandboxError,
    Transaction,
)
from paymobctl.models import CallbackOrder, format_amount, lenient_int
from paymobctl.sandbox_profile import SANDBOX, SandboxCredentials
from paymobctl.serving import BoundedBodies

Handler = Callable[[Request], Awaitable[Response]]


def _sandbox(request: Request) -> Sandbox:
    sandbox: Sandbox = request.app.state.sandbox
    # URLs the sandbox emits (order_url, redirects) use the host and port it was reached on.
    sandbox.base_url = _base(request)
    return sandbox


def _notifier(request: Request) -> Notifier:
    notifier: Notifier = request.app.state.notifier
    return notifier


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


async def _json(request: Request) -> dict[str, Any]:
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


async def _form(request: Request) -> dict[str, str]:
    raw = (await request.body()).decode("utf-8", "replace")
    return {k: v[0] for k, v in parse_qs(raw, keep_blank_values=True).items()}


def _auth_token(request: Request, body: Mapping[str, Any]) -> str | None:
    """The legacy auth token, wherever real clients put it (docs/paymob.md §2.1)."""
    if body.get("auth_token"):
        return str(body["auth_token"])
    header = request.headers.get("authorization", "")
    if header:
        scheme, _, value = header.partition(" ")
        return value.strip() if scheme.lower() in ("bearer", "token") and value else header.strip()
    return request.query_params.get("token")


def _authorised(request: Request, body: Mapping[str, Any] | None = None) -> Sandbox:
    """The sandbox, once the request's legacy auth token checks out."""
    sandbox = _sandbox(request)
    sandbox.check_auth_token(_auth_token(request, body or {}))
    return sandbox


def _legacy_or_secret(request: Request, body: Mapping[str, Any]) -> None:
    """Refund/void/capture: legacy auth token, or ``Authorization: Token <secret key>``."""
    sandbox = _sandbox(request)
    header = request.headers.get("authorization", "")
    if header.lower().startswith("token ") and "_sk_" in header:
        sandbox.check_secret_key(header)
        return
    sandbox.check_auth_token(_auth_token(request, body))


def api(handler: Handler) -> Handler:
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
            _sandbox(request).on_event("error", f"{request.url.path}: {detail}")
            return JSONResponse({"detail": detail}, status_code=400)

    return wrapped


def html(handler: Handler) -> Handler:
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


def _finish(request: Request, completion: Completion) -> Response:
    """Deliver the callbacks and send the browser where Paymob would."""
    _notifier(request).submit(completion.outbound)
    if completion.redirect_url:
        return RedirectResponse(completion.redirect_url, status_code=303)
    txn = completion.transaction
    query = urlencode(callbacks.redirect_params(txn.obj, None))
    return RedirectResponse(f"{_base(request)}/api/acceptance/post_pay?{query}", status_code=303)


def _to_acs(request: Request, txn: Transaction) -> Response:
    """Send the browser to the 3-D Secure page of a payment held for it."""
    return RedirectResponse(f"{_base(request)}/api/acceptance/acs/{txn.id}", status_code=303)


def _card_entry(form: Mapping[str, str]) -> cards.CardEntry | str:
    """The card a checkout form typed, or the message to show next to the form."""
    return cards.check_entry(
        form.get("card_number", ""),
        form.get("card_holder", ""),
        form.get("expiry_month", ""),
        form.get("expiry_year", ""),
        form.get("cvv", ""),
    )


def _pay_card(
    request: Request, key: PaymentKey, entry: cards.CardEntry, form: Mapping[str, str]
) -> Response:
    """Pay with a typed card: on to 3-D Secure, or finish."""
    sandbox = _sandbox(request)
    txn = sandbox.pay_with_card(key, entry, save_card=form.get("save_card") == "true")
    if txn.state == "pending_3ds":
        return _to_acs(request, txn)
    return _finish(request, sandbox.completion(txn))


def _waiting(request: Request, state: str) -> Transaction:
    """The path's transaction, held in ``state`` for this page."""
    txn_id = _int_param(request.path_params["txn_id"], "transaction")
    return _sandbox(request).waiting(txn_id, state)


def _amount(txn_or_cents: Transaction | int, currency: str = "EGP") -> str:
    if isinstance(txn_or_cents, Transaction):
        return format_amount(
            int(txn_or_cents.obj["amount_cents"]), str(txn_or_cents.obj["currency"])
        )
    return format_amount(txn_or_cents, currency)


def _int_param(value: str, what: str) -> int:
    number = lenient_int(value)
    if number is None:
        raise PageError(404, "Not found", f"{what} {value!r} is not a number.")
    return number


# --- legacy API ---------------------------------------------------------------------------------


@api
async def auth_tokens(request: Request) -> Response:
    return JSONResponse(_sandbox(request).authenticate(await _json(request)), status_code=201)


@api
async def orders(request: Request) -> Response:
    body = await _json(request)
    sandbox = _authorised(request, body)
    order = sandbox.create_order(body)
    return JSONResponse(sandbox.order_object(order), status_code=201)


@api
async def order_detail(request: Request) -> Response:
    sandbox = _authorised(request)
    order = sandbox.get_order(_int_param(request.path_params["order_id"], "order"))
    return JSONResponse(sandbox.order_object(order))


@api
async def payment_keys(request: Request) -> Response:
    body = await _json(request)
    sandbox = _authorised(request, body)
    key = sandbox.create_payment_key(body)
    return JSONResponse({"token": key.key}, status_code=201)


@api
async def pay(request: Request) -> Response:
    status, record, completion = _sandbox(request).pay_api(await _json(request), _base(request))
    if completion is not None:
        _notifier(request).submit(completion.outbound)
    return JSONResponse(record, status_code=status)


@api
async def transaction_detail(request: Request) -> Response:
    sandbox = _authorised(request)
    txn = sandbox.get_transaction(_int_param(request.path_params["txn_id"], "transaction"))
    return JSONResponse(txn.obj)


@api
async def inquiry(request: Request) -> Response:
    body = await _json(request)
    sandbox = _authorised(request, body)
    return JSONResponse(sandbox.inquiry(body).obj)


def _management(operation: str) -> Handler:
    @api
    async def handler(request: Request) -> Response:
        body = await _json(request)
        _legacy_or_secret(request, body)
        sandbox = _sandbox(request)
        child = getattr(sandbox, operation)(body)
        _notifier(request).submit(sandbox.child_completion(child))
        return JSONResponse(child.obj, status_code=201 if operation != "void" else 200)

    return handler


@api
async def hmac_secret(request: Request) -> Response:
    sandbox = _authorised(request)
    return JSONResponse({"hmac_secret": sandbox.creds.hmac_secret})


@api
async def integrations(request: Request) -> Response:
    sandbox = _authorised(request)
    results = [i.public() for i in sandbox.integrations.values()]
    return JSONResponse({"count": len(results), "next": None, "previous": None, "results": results})


# --- hosted card checkout -------------------------------------------------------------------------


def _checkout_page(
    request: Request,
    sandbox: Sandbox,
    token: str,
    *,
    error: str | None = None,
    values: Mapping[str, str] | None = None,
    status: int = 200,
) -> Response:
    iframe_id = _int_param(request.path_params["iframe_id"], "iframe")
    key, order = sandbox.checkout(iframe_id, token)
    saved = None
    if key.card_token and key.card_token in sandbox.tokens:
        saved_card = sandbox.tokens[key.card_token]
        saved = {"card_subtype": saved_card.card_subtype, "masked_pan": saved_card.masked_pan}
    body = pages.checkout(
        action=request.url.path,
        payment_token=key.key,
        amount=_amount(key.amount_cents, key.currency),
        order_id=order.id,
        merchant_order_id=order.merchant_order_id,
        saved_card=saved,
        error=error,
        values=values,
    )
    return HTMLResponse(body, status_code=status)


@html
async def iframe(request: Request) -> Response:
    sandbox = _sandbox(request)
    if request.method == "GET":
        return _checkout_page(request, sandbox, request.query_params.get("payment_token", ""))
    form = await _form(request)
    token = form.get("payment_token", "")
    key, _ = sandbox.checkout(_int_param(request.path_params["iframe_id"], "iframe"), token)
    entry = _card_entry(form)
    if isinstance(entry, str):
        return _checkout_page(request, sandbox, token, error=entry, values=form, status=400)
    return _pay_card(request, key, entry, form)


@html
async def acs(request: Request) -> Response:
    txn = _waiting(request, "pending_3ds")
    if request.method == "GET":
        last4 = str((txn.card or {}).get("last4", ""))
        return HTMLResponse(pages.acs(action=request.url.path, amount=_amount(txn), last4=last4))
    form = await _form(request)
    sandbox = _sandbox(request)
    done = sandbox.complete_3ds(txn.id, form.get("otp", ""))
    return _finish(request, sandbox.completion(done))


@html
async def wallet_page(request: Request) -> Response:
    txn = _waiting(request, "pending_wallet")
    if request.method == "GET":
        number = str(txn.obj.get("source_data", {}).get("pan", ""))
        return HTMLResponse(
            pages.wallet(action=request.url.path, amount=_amount(txn), number=number)
        )
    form = await _form(request)
    sandbox = _sandbox(request)
    done = sandbox.complete_wallet(txn.id, form.get("mpin", ""), form.get("otp", ""))
    return _finish(request, sandbox.completion(done))


@html
async def post_pay(request: Request) -> Response:
    """The sandbox's own result page (no response URL configured), from the redirect query:
    nothing in it is trusted, and a malformed number is a DRF-style 400, never a 500."""
    params = request.query_params
    success = params.get("success") == "true"
    pending = params.get("pending") == "true"
    numbers: dict[str, int] = {}
    errors: dict[str, list[str]] = {}
    for name in ("amount_cents", "id"):
        raw = params.get(name, "0") or "0"
        number = lenient_int(raw, max_digits=18)
        if number is not None:
            numbers[name] = number
        else:
            errors[name] = ["A valid integer is required."]
    if errors:
        return JSONResponse(errors, status_code=400)
    currency = params.get("currency", "EGP")
    try:
        amount = _amount(numbers["amount_cents"], currency)
    except (ValueError, ArithmeticError):
        return JSONResponse({"currency": ["Not a known currency."]}, status_code=400)
    return HTMLResponse(
        pages.result(
            success=success,
            pending=pending,
            transaction_id=numbers["id"],
            amount=amount,
            message=params.get("data.message", ""),
            note="No transaction response callback URL is configured, so the sandbox shows its own page "
            "(as Paymob does). Start it with --response-url to be redirected to your app.",
        )
    )


# --- Intention API and unified checkout -----------------------------------------------------------


@api
async def intention_create(request: Request) -> Response:
    sandbox = _sandbox(request)
    sandbox.check_secret_key(request.headers.get("authorization"))
    intention = sandbox.create_intention(await _json(request))
    return JSONResponse(sandbox.intention_response(intention), status_code=201)


@api
async def intention_update(request: Request) -> Response:
    sandbox = _sandbox(request)
    sandbox.check_secret_key(request.headers.get("authorization"))
    intention = sandbox.update_intention(request.path_params["client_secret"], await _json(request))
    return JSONResponse(sandbox.intention_response(intention))


@api
async def intention_element(request: Request) -> Response:
    sandbox = _sandbox(request)
    return JSONResponse(
        sandbox.element(request.path_params["public_key"], request.path_params["client_secret"])
    )


@html
async def unified(request: Request) -> Response:
    sandbox = _sandbox(request)
    if request.method == "GET":
        params: Mapping[str, str] = request.query_params
    else:
        params = await _form(request)
    public_key, client_secret = params.get("publicKey", ""), params.get("clientSecret", "")
    intention = sandbox.intention_for_checkout(public_key, client_secret)

    def render(
        error: str | None = None, status: int = 200, values: Mapping[str, str] | None = None
    ) -> Response:
        saved = [sandbox.tokens[t] for t in intention.card_tokens if t in sandbox.tokens]
        return HTMLResponse(
            pages.unified_checkout(
                action=request.url.path,
                client_secret=client_secret,
                public_key=public_key,
                amount=_amount(intention.amount, intention.currency),
                reference=intention.special_reference,
                saved_cards=[
                    {"token": s.token, "card_subtype": s.card_subtype, "masked_pan": s.masked_pan}
                    for s in saved
                ],
                wallet_offered=any(
                    sandbox.integrations[i].kind == "wallet" for i in intention.payment_methods
                ),
                error=error,
                values=values,
            ),
            status_code=status,
        )

    if request.method == "GET":
        return render()
    assert isinstance(params, dict)
    if params.get("card_token"):
        txn, done = sandbox.pay_intention_token(intention, params["card_token"], _base(request))
        return _to_acs(request, txn) if done is None else _finish(request, done)
    entry = _card_entry(params)
    if isinstance(entry, str):
        return render(entry, 400, params)
    return _pay_card(request, sandbox.intention_key(intention), entry, params)


# --- admin and health -----------------------------------------------------------------------------


async def healthz(request: Request) -> Response:
    del request
    return JSONResponse({"status": "ok"})


def _control(request: Request) -> None:
    """Guard the ``/_sandbox/*`` control routes against web pages: a page the developer visits
    could otherwise POST a form (no CORS preflight for form or text bodies) that points the
    sandbox's callbacks elsewhere. Cross-origin requests (``Origin`` not this sandbox, or
    ``Sec-Fetch-Site`` other than same-origin/none) are a 403; a body must be JSON (415)."""
    origin = request.headers.get("origin")
    site = request.headers.get("sec-fetch-site")
    if (origin is not None and origin != _base(request)) or site not in (
        None,
        "same-origin",
        "none",
    ):
        raise SandboxError(
            403,
            {"detail": "Cross-origin requests to the sandbox's control routes are refused."},
        )
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if request.method == "POST" and media and media != "application/json":
        raise SandboxError(415, {"detail": f'Unsupported media type "{media}" in request.'})


@api
async def admin_callbacks(request: Request) -> Response:
    sandbox = _sandbox(request)
    _control(request)
    if request.method == "POST":
        body = await _json(request)
        sandbox.set_callback_urls(body.get("callback_url"), body.get("response_url"))
        sandbox.on_event("config", f"callback URLs now {sandbox.callback_urls()}")
    return JSONResponse(sandbox.callback_urls())


@api
async def admin_deliveries(request: Request) -> Response:
    sandbox = _sandbox(request)
    _control(request)
    raw_limit = request.query_params.get("limit", "100") or "100"
    limit = lenient_int(raw_limit, max_digits=18)
    if limit is None or not 1 <= limit <= 10_000:
        return JSONResponse(
            {"limit": ["Ensure this value is a whole number from 1 to 10000."]}, status_code=400
        )
    items = sorted(sandbox.deliveries.values(), key=lambda d: d.id, reverse=True)[:limit]
    return JSONResponse(
        [
            {
                "id": d.id,
                "type": d.kind,
                "url": d.url,
                "transaction_id": d.transaction_id,
                "state": d.state,
                "created_at": d.created_at,
                "attempts": [
                    {
                        "number": a.number,
                        "at": a.at,
                        "status": a.status,
                        "latency_ms": a.latency_ms,
                        "error": a.error,
                    }
                    for a in d.attempts
                ],
            }
            for d in items
        ]
    )


@api
async def admin_resend(request: Request) -> Response:
    sandbox = _sandbox(request)
    outbound = sandbox.resend(_int_param(request.path_params["delivery_id"], "delivery id"))
    _notifier(request).submit([outbound])
    return JSONResponse({"id": outbound.delivery_id, "resent": request.path_params["delivery_id"]})


@api
async def admin_kiosk(request: Request) -> Response:
    sandbox = _sandbox(request)
    _control(request)
    txn = sandbox.pay_kiosk_reference(_int_param(request.path_params["reference"], "reference"))
    _notifier(request).submit(sandbox.completion(txn).outbound)
    return JSONResponse(txn.obj)


@api
async def admin_drain(request: Request) -> Response:
    """Wait until queued callbacks are delivered (used by tests and the demo)."""
    _control(request)
    raw = request.query_params.get("timeout", "30")
    try:
        timeout = float(raw)
    except ValueError:
        timeout = -1.0
    if not 0 <= timeout <= 300:  # also NaN
        raise SandboxError(400, {"timeout": ["Ensure this value is a number from 0 to 300."]})
    await _notifier(request).drain(timeout)
    return JSONResponse({"pending": _notifier(request).pending})


@api
async def admin_reset(request: Request) -> Response:
    """Stop pending deliveries and forget every object (``paymobctl.testing``, between tests)."""
    await _notifier(request).close()
    sandbox = _sandbox(request)
    sandbox.reset()
    return JSONResponse(sandbox.callback_urls())


async def index(request: Request) -> Response:
    sandbox = _sandbox(request)
    c = sandbox.creds
    recent = sorted(sandbox.transactions.values(), key=lambda t: t.id, reverse=True)[:20]
    return HTMLResponse(
        pages.index(
            credentials=credentials_table(c, _base(request)),
            urls=sandbox.callback_urls(),
            transactions=[
                {
                    "id": t.id,
                    "status": "approved"
                    if t.success
                    else ("pending" if t.obj.get("pending") else "declined"),
                    "amount": _amount(t),
                    "order": t.order_id,
                }
                for t in recent
            ],
        )
    )


def credentials_table(c: SandboxCredentials, base: str) -> dict[str, Any]:
    """The credentials ``paymobctl sandbox`` prints, one per line as ``Label: value``."""
    return {
        "API key": c.api_key,
        "Secret key": c.secret_key,
        "Public key": c.public_key,
        "HMAC secret": c.hmac_secret,
        "Integration ID": c.integration_id,
        "MOTO integration ID": c.moto_integration_id,
        "Iframe ID": c.iframe_id,
        "Auth/capture integration ID": c.auth_integration_id,
        "Wallet integration ID": c.wallet_integration_id,
        "Kiosk integration ID": c.kiosk_integration_id,
        "Base URL": base,
    }


def create_app(
    *,
    credentials: SandboxCredentials = SANDBOX,
    callback_url: str | None = None,
    response_url: str | None = None,
    persistence: Persistence | None = None,
    clock: Callable[[], datetime] | None = None,
    on_event: Event | None = None,
    policy: RetryPolicy = DEFAULT_POLICY,
    timeout: float = DEFAULT_TIMEOUT,
    callback_order: CallbackOrder = CallbackOrder.TOKEN_FIRST,
) -> Starlette:
    """The sandbox app. Everything it needs is injected; it never imports the receiver or client."""
    sandbox = Sandbox(
        credentials=credentials,
        callback_url=callback_url,
        response_url=response_url,
        persistence=persistence,
        clock=clock,
        on_event=on_event,
        callback_order=callback_order,
    )
    notifier = Notifier(sandbox, policy=policy, timeout=timeout)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        del app
        try:
            yield
        finally:
            await notifier.close()

    routes = [
        Route("/", index),
        Route("/healthz", healthz),
        Route("/api/auth/tokens", auth_tokens, methods=["POST"]),
        Route("/api/auth/hmac_secret/get_hmac", hmac_secret),
        Route("/api/ecommerce/orders", orders, methods=["POST"]),
        Route("/api/ecommerce/orders/transaction_inquiry", inquiry, methods=["POST"]),
        Route("/api/ecommerce/orders/{order_id}", order_detail),
        Route("/api/ecommerce/integrations", integrations),
        Route("/api/acceptance/payment_keys", payment_keys, methods=["POST"]),
        Route("/api/acceptance/iframes/{iframe_id}", iframe, methods=["GET", "POST"]),
        Route("/api/acceptance/acs/{txn_id}", acs, methods=["GET", "POST"]),
        Route("/api/acceptance/wallet/{txn_id}", wallet_page, methods=["GET", "POST"]),
        Route("/api/acceptance/post_pay", post_pay),
        Route("/api/acceptance/payments/pay", pay, methods=["POST"]),
        Route("/api/acceptance/transactions/{txn_id}", transaction_detail),
        Route("/api/acceptance/void_refund/refund", _management("refund"), methods=["POST"]),
        Route("/api/acceptance/void_refund/void", _management("void"), methods=["POST"]),
        Route("/api/acceptance/capture", _management("capture"), methods=["POST"]),
        Route("/v1/intention/", intention_create, methods=["POST"]),
        Route("/v1/intention/element/{public_key}/{client_secret}/", intention_element),
        Route("/v1/intention/{client_secret}", intention_update, methods=["PUT"]),
        Route("/unifiedcheckout/", unified, methods=["GET", "POST"]),
        Route("/_sandbox/callbacks", admin_callbacks, methods=["GET", "POST"]),
        Route("/_sandbox/deliveries", admin_deliveries),
        Route("/_sandbox/deliveries/{delivery_id}/resend", admin_resend, methods=["POST"]),
        Route("/_sandbox/kiosk/{reference}/pay", admin_kiosk, methods=["POST"]),
        Route("/_sandbox/drain", admin_drain, methods=["POST"]),
        Route("/_sandbox/reset", admin_reset, methods=["POST"]),
        *dashboard.routes(),
    ]
    # Every body is read within bounds (1 MiB, 10 s) before a route sees it: 413 / 408.
    app = Starlette(routes=routes, lifespan=lifespan, middleware=[Middleware(BoundedBodies)])
    app.state.sandbox = sandbox
    app.state.notifier = notifier
    return app
