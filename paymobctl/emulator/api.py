"""Paymob's APIs as the sandbox serves them: the legacy API (auth, orders, payment keys,
payments/pay, transactions, refund / void / capture) and the Intention API."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from paymobctl.emulator.routing import (
    Handler,
    api,
    base_url_of,
    int_param,
    json_body,
    notifier_of,
    sandbox_of,
)
from paymobctl.emulator.state import Sandbox


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
    sandbox = sandbox_of(request)
    sandbox.check_auth_token(_auth_token(request, body or {}))
    return sandbox


def _legacy_or_secret(request: Request, body: Mapping[str, Any]) -> Sandbox:
    """The sandbox, once refund/void/capture's credential (auth token or secret key) checks out."""
    sandbox = sandbox_of(request)
    sandbox.check_token_or_secret_key(
        request.headers.get("authorization"), _auth_token(request, body)
    )
    return sandbox


@api
async def auth_tokens(request: Request) -> Response:
    """``POST /api/auth/tokens``."""
    return JSONResponse(sandbox_of(request).authenticate(await json_body(request)), status_code=201)


@api
async def orders(request: Request) -> Response:
    """``POST /api/ecommerce/orders``."""
    body = await json_body(request)
    sandbox = _authorised(request, body)
    order = sandbox.create_order(body)
    return JSONResponse(sandbox.order_object(order), status_code=201)


@api
async def order_detail(request: Request) -> Response:
    """``GET /api/ecommerce/orders/{order_id}``."""
    sandbox = _authorised(request)
    order = sandbox.get_order(int_param(request.path_params["order_id"], "order"))
    return JSONResponse(sandbox.order_object(order))


@api
async def payment_keys(request: Request) -> Response:
    """``POST /api/acceptance/payment_keys``."""
    body = await json_body(request)
    sandbox = _authorised(request, body)
    key = sandbox.create_payment_key(body)
    return JSONResponse({"token": key.key}, status_code=201)


@api
async def pay(request: Request) -> Response:
    """``POST /api/acceptance/payments/pay`` (saved card, wallet, kiosk)."""
    status, record, completion = sandbox_of(request).pay_api(
        await json_body(request), base_url_of(request)
    )
    if completion is not None:
        notifier_of(request).submit(completion.outbound)
    return JSONResponse(record, status_code=status)


@api
async def transaction_detail(request: Request) -> Response:
    """``GET /api/acceptance/transactions/{txn_id}``."""
    sandbox = _authorised(request)
    txn = sandbox.get_transaction(int_param(request.path_params["txn_id"], "transaction"))
    return JSONResponse(txn.obj)


@api
async def inquiry(request: Request) -> Response:
    """``POST /api/ecommerce/orders/transaction_inquiry``."""
    body = await json_body(request)
    sandbox = _authorised(request, body)
    return JSONResponse(sandbox.inquiry(body).obj)


def _management(operation: str) -> Handler:
    @api
    async def handler(request: Request) -> Response:
        body = await json_body(request)
        sandbox = _legacy_or_secret(request, body)
        child = sandbox.manage(operation, body)
        notifier_of(request).submit(sandbox.child_completion(child))
        return JSONResponse(child.obj, status_code=201 if operation != "void" else 200)

    return handler


@api
async def hmac_secret(request: Request) -> Response:
    """``GET /api/auth/hmac_secret/get_hmac``: the sandbox's HMAC secret."""
    sandbox = _authorised(request)
    return JSONResponse({"hmac_secret": sandbox.creds.hmac_secret})


@api
async def integrations(request: Request) -> Response:
    """``GET /api/ecommerce/integrations``."""
    sandbox = _authorised(request)
    results = [i.public() for i in sandbox.integrations.values()]
    return JSONResponse({"count": len(results), "next": None, "previous": None, "results": results})


# --- Intention API -------------------------------------------------------------------------------


@api
async def intention_create(request: Request) -> Response:
    """``POST /v1/intention/``."""
    sandbox = sandbox_of(request)
    sandbox.check_secret_key(request.headers.get("authorization"))
    intention = sandbox.create_intention(await json_body(request))
    return JSONResponse(sandbox.intention_response(intention), status_code=201)


@api
async def intention_update(request: Request) -> Response:
    """``PUT /v1/intention/{client_secret}``."""
    sandbox = sandbox_of(request)
    sandbox.check_secret_key(request.headers.get("authorization"))
    intention = sandbox.update_intention(
        request.path_params["client_secret"], await json_body(request)
    )
    return JSONResponse(sandbox.intention_response(intention))


@api
async def intention_element(request: Request) -> Response:
    """``GET /v1/intention/element/{public_key}/{client_secret}/``."""
    sandbox = sandbox_of(request)
    return JSONResponse(
        sandbox.element(request.path_params["public_key"], request.path_params["client_secret"])
    )


def routes() -> list[Route]:
    """The API's routes."""
    return [
        Route("/api/auth/tokens", auth_tokens, methods=["POST"]),
        Route("/api/auth/hmac_secret/get_hmac", hmac_secret),
        Route("/api/ecommerce/orders", orders, methods=["POST"]),
        Route("/api/ecommerce/orders/transaction_inquiry", inquiry, methods=["POST"]),
        Route("/api/ecommerce/orders/{order_id}", order_detail),
        Route("/api/ecommerce/integrations", integrations),
        Route("/api/acceptance/payment_keys", payment_keys, methods=["POST"]),
        Route("/api/acceptance/payments/pay", pay, methods=["POST"]),
        Route("/api/acceptance/transactions/{txn_id}", transaction_detail),
        Route("/api/acceptance/void_refund/refund", _management("refund"), methods=["POST"]),
        Route("/api/acceptance/void_refund/void", _management("void"), methods=["POST"]),
        Route("/api/acceptance/capture", _management("capture"), methods=["POST"]),
        Route("/v1/intention/", intention_create, methods=["POST"]),
        Route("/v1/intention/element/{public_key}/{client_secret}/", intention_element),
        Route("/v1/intention/{client_secret}", intention_update, methods=["PUT"]),
    ]
