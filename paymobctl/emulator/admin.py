"""The sandbox's own routes: health, the home page with its credentials, and the
``/_sandbox/*`` controls (callback URLs, deliveries, kiosk payments, drain, reset)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from paymobctl.emulator import pages
from paymobctl.emulator.routing import (
    amount_text,
    api,
    base_url_of,
    int_param,
    json_body,
    notifier_of,
    sandbox_of,
)
from paymobctl.emulator.validation import SandboxError
from paymobctl.models import lenient_int
from paymobctl.sandbox_profile import SandboxCredentials


async def healthz(request: Request) -> Response:
    """``GET /healthz``: the sandbox answers."""
    del request
    return JSONResponse({"status": "ok"})


def _control(request: Request) -> None:
    """Guard the ``/_sandbox/*`` control routes against web pages: a page the developer visits
    could otherwise POST a form (no CORS preflight for form or text bodies) that points the
    sandbox's callbacks elsewhere. Cross-origin requests (``Origin`` not this sandbox, or
    ``Sec-Fetch-Site`` other than same-origin/none) are a 403; a body must be JSON (415)."""
    origin = request.headers.get("origin")
    site = request.headers.get("sec-fetch-site")
    if (origin is not None and origin != base_url_of(request)) or site not in (
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
    """``/_sandbox/callbacks``: show (GET) or change (POST) the callback URLs."""
    sandbox = sandbox_of(request)
    _control(request)
    if request.method == "POST":
        body = await json_body(request)
        sandbox.set_callback_urls(body.get("callback_url"), body.get("response_url"))
        sandbox.on_event("config", f"callback URLs now {sandbox.callback_urls()}")
    return JSONResponse(sandbox.callback_urls())


@api
async def admin_deliveries(request: Request) -> Response:
    """``GET /_sandbox/deliveries``: the newest deliveries and their attempts."""
    sandbox = sandbox_of(request)
    _control(request)
    raw_limit = request.query_params.get("limit", "100") or "100"
    limit = lenient_int(raw_limit, max_digits=18)
    if limit is None or not 1 <= limit <= 10_000:
        return JSONResponse(
            {"limit": ["Ensure this value is a whole number from 1 to 10000."]}, status_code=400
        )
    return JSONResponse([d.public() for d in sandbox.recent_deliveries(limit)])


@api
async def admin_resend(request: Request) -> Response:
    """``POST /_sandbox/deliveries/{id}/resend``: a delivery again."""
    sandbox = sandbox_of(request)
    outbound = sandbox.resend(int_param(request.path_params["delivery_id"], "delivery id"))
    notifier_of(request).submit([outbound])
    return JSONResponse({"id": outbound.delivery_id, "resent": request.path_params["delivery_id"]})


@api
async def admin_kiosk(request: Request) -> Response:
    """``POST /_sandbox/kiosk/{reference}/pay``: the payer paid cash at a kiosk."""
    sandbox = sandbox_of(request)
    _control(request)
    txn = sandbox.pay_kiosk_reference(int_param(request.path_params["reference"], "reference"))
    notifier_of(request).submit(sandbox.completion(txn).outbound)
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
    await notifier_of(request).drain(timeout)
    return JSONResponse({"pending": notifier_of(request).pending})


@api
async def admin_reset(request: Request) -> Response:
    """Stop pending deliveries and forget every object (``paymobctl.testing``, between tests)."""
    await notifier_of(request).close()
    sandbox = sandbox_of(request)
    sandbox.reset()
    return JSONResponse(sandbox.callback_urls())


async def index(request: Request) -> Response:
    """``GET /``: the credentials, callback URLs and recent transactions."""
    sandbox = sandbox_of(request)
    c = sandbox.creds
    return HTMLResponse(
        pages.index(
            credentials=credentials_table(c, base_url_of(request)),
            urls=sandbox.callback_urls(),
            transactions=[
                {
                    "id": t.id,
                    "status": "approved"
                    if t.success
                    else ("pending" if t.obj.get("pending") else "declined"),
                    "amount": amount_text(t),
                    "order": t.order_id,
                }
                for t in sandbox.recent_transactions(20)
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


def routes() -> list[Route]:
    """The home page's, health check's and control routes."""
    return [
        Route("/", index),
        Route("/healthz", healthz),
        Route("/_sandbox/callbacks", admin_callbacks, methods=["GET", "POST"]),
        Route("/_sandbox/deliveries", admin_deliveries),
        Route("/_sandbox/deliveries/{delivery_id}/resend", admin_resend, methods=["POST"]),
        Route("/_sandbox/kiosk/{reference}/pay", admin_kiosk, methods=["POST"]),
        Route("/_sandbox/drain", admin_drain, methods=["POST"]),
        Route("/_sandbox/reset", admin_reset, methods=["POST"]),
    ]
