"""The guide's payments API in FastAPI: deposit, saved card, webhook, response redirect, status."""

import json
import sqlite3
from decimal import Decimal, InvalidOperation
from typing import Annotated

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from shop.paymob import Paymob, PaymobError, PaymobSettings

SCHEMA = """
create table if not exists deposits (
    id integer primary key, amount_cents integer not null, email text not null,
    order_id integer unique, transaction_id integer, status text not null default 'pending');
create table if not exists cards (
    id integer primary key, email text not null, token text unique not null,
    masked_pan text not null, card_subtype text not null, order_id integer);
"""


class DepositIn(BaseModel):
    amount: str
    email: str = "client@example.com"


class SavedCardIn(BaseModel):
    card_id: int
    amount: str


def _cents(amount):
    try:
        value = Decimal(amount)
    except InvalidOperation:
        return None
    if not value.is_finite() or value <= 0 or value != value.quantize(Decimal("0.01")):
        return None
    return int(value * 100)


def _error(message, status=400):
    return JSONResponse({"detail": message}, status_code=status)


def create_app(database):
    app = FastAPI(title="shop")

    def db():
        connection = sqlite3.connect(
            database, isolation_level=None, timeout=10, check_same_thread=False
        )
        connection.row_factory = sqlite3.Row
        try:
            yield connection
        finally:
            connection.close()

    def paymob():
        return Paymob(PaymobSettings.from_env())

    Connection = Annotated[sqlite3.Connection, Depends(db)]
    Api = Annotated[Paymob, Depends(paymob)]

    with sqlite3.connect(database) as connection:
        connection.executescript(SCHEMA)

    def _start(connection, amount_cents, email):
        cursor = connection.execute(
            "insert into deposits (amount_cents, email) values (?, ?)", (amount_cents, email)
        )
        return cursor.lastrowid

    @app.post("/api/payments/deposit/", status_code=201)
    def deposit(body: DepositIn, connection: Connection, api: Api):
        amount_cents = _cents(body.amount)
        if amount_cents is None:
            return _error("Invalid Amount")
        deposit_id = _start(connection, amount_cents, body.email)
        try:
            order_id, key = api.payment_key(
                amount_cents, body.email, merchant_order_id=f"deposit-{deposit_id}"
            )
        except PaymobError:
            return _error("Failed to initiate deposit", 502)
        connection.execute("update deposits set order_id = ? where id = ?", (order_id, deposit_id))
        return {"deposit_id": deposit_id, "iframe_url": api.iframe_url(key)}

    @app.post("/api/payments/saved-card/", status_code=201)
    def saved_card(body: SavedCardIn, connection: Connection, api: Api):
        amount_cents = _cents(body.amount)
        card = connection.execute("select * from cards where id = ?", (body.card_id,)).fetchone()
        if amount_cents is None:
            return _error("Invalid Amount")
        if card is None:
            return _error("This card cannot be used; add it again")
        deposit_id = _start(connection, amount_cents, card["email"])
        try:
            order_id, key = api.payment_key(
                amount_cents, card["email"], merchant_order_id=f"deposit-{deposit_id}", moto=True
            )
            connection.execute(
                "update deposits set order_id = ? where id = ?", (order_id, deposit_id)
            )
            api.pay_with_token(key, card["token"])
        except PaymobError:
            return _error("Payment failed", 502)
        return {"deposit_id": deposit_id}  # the webhook marks it paid

    @app.post("/api/payments/webhook/")
    async def webhook(request: Request, connection: Connection, api: Api):
        try:
            body = json.loads(await request.body())
        except ValueError:
            return _error("Invalid payload")
        obj = body.get("obj") if isinstance(body, dict) else None
        if not isinstance(obj, dict):
            return _error("Invalid payload")
        kind = body.get("type")
        if not api.callback_ok(kind, obj, request.query_params.get("hmac")):
            return _error("Invalid HMAC Signature", 401)
        if kind == "TOKEN":
            connection.execute(
                "insert or ignore into cards (email, token, masked_pan, card_subtype, order_id) "
                "values (?, ?, ?, ?, ?)",
                (obj.get("email") or "", obj["token"], obj.get("masked_pan") or "",
                 obj.get("card_subtype") or "", int(obj.get("order_id") or 0) or None),
            )  # fmt: skip
            return {"detail": "card saved"}
        if kind != "TRANSACTION":
            return {"detail": "ignored"}
        order_id = (obj.get("order") or {}).get("id")
        row = connection.execute(
            "select * from deposits where order_id = ?", (order_id,)
        ).fetchone()
        if row is None:
            return _error("Unknown order", 404)
        if row["status"] == "pending" and not obj.get("pending"):
            paid = obj.get("success") is True and obj.get("amount_cents") == row["amount_cents"]
            connection.execute(
                "update deposits set status = ?, transaction_id = ? where id = ? and status = 'pending'",
                ("paid" if paid else "failed", obj.get("id"), row["id"]),
            )
        return {"detail": "ok"}

    @app.get("/api/payments/response/")
    def response(request: Request, api: Api):
        params = dict(request.query_params)
        if not api.redirect_ok(params, params.get("hmac")):
            return _error("Invalid HMAC Signature", 401)
        paid = params.get("success") == "true"
        return {"detail": "Payment successful" if paid else "Payment failed"}

    @app.get("/api/payments/status/{deposit_id}/")
    def status(deposit_id: int, connection: Connection):
        row = connection.execute("select * from deposits where id = ?", (deposit_id,)).fetchone()
        if row is None:
            return _error("Not found", 404)
        return {"status": row["status"], "transaction_id": row["transaction_id"]}

    return app
