"""A small FastAPI receiver written the way FastAPI users write one: pydantic models with strict
types for the signed fields (which is what rejects the field-shift forgery), extra fields allowed,
the HMAC verified with paymobctl.signing over the body as received."""

from __future__ import annotations

import json
from typing import Any, Literal

from fastapi import FastAPI, HTTPException, Request
from pydantic import BaseModel, ConfigDict, StrictBool, StrictInt, StrictStr, ValidationError

from paymobctl import signing
from paymobctl.models import CallbackKind

SECRET = "fastapi-site-hmac-secret-00000000"


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="allow")


class Order(_Lenient):
    id: StrictInt


class Source(_Lenient):
    pan: StrictStr
    type: StrictStr
    sub_type: StrictStr


class Transaction(_Lenient):
    id: StrictInt
    amount_cents: StrictInt
    integration_id: StrictInt
    owner: StrictInt
    order: Order
    source_data: Source
    created_at: StrictStr
    currency: StrictStr
    error_occured: StrictBool
    has_parent_transaction: StrictBool
    is_3d_secure: StrictBool
    is_auth: StrictBool
    is_capture: StrictBool
    is_refunded: StrictBool
    is_standalone_payment: StrictBool
    is_voided: StrictBool
    pending: StrictBool
    success: StrictBool


class Token(_Lenient):
    id: StrictInt
    merchant_id: StrictInt
    token: StrictStr
    order_id: StrictStr


class Envelope(_Lenient):
    type: Literal["TRANSACTION", "TOKEN"]
    obj: dict[str, Any]


def _invalid() -> HTTPException:
    return HTTPException(status_code=401, detail="Invalid HMAC Signature")


def create_app() -> FastAPI:
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

    @app.post("/api/payments/webhook/")
    async def webhook(request: Request) -> dict[str, str]:
        received = request.query_params.get("hmac")
        if not received:
            raise _invalid()
        try:
            envelope = Envelope.model_validate(json.loads(await request.body()))
            model = Token if envelope.type == "TOKEN" else Transaction
            model.model_validate(envelope.obj)
        except (ValueError, ValidationError) as exc:
            raise HTTPException(status_code=400, detail="Malformed callback") from exc
        kind = CallbackKind(envelope.type)
        if not signing.verify(kind, envelope.obj, SECRET, received).valid:
            raise _invalid()
        return {"detail": "ok"}

    @app.get("/api/payments/response/")
    async def response(request: Request) -> dict[str, str]:
        params = {k: v for k, v in request.query_params.items() if k != "hmac"}
        received = request.query_params.get("hmac")
        if not signing.verify(CallbackKind.RESPONSE, params, SECRET, received).valid:
            raise _invalid()
        return {"detail": "thanks"}

    return app
