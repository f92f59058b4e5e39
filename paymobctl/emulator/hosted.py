"""The hosted pages a payer sees: the card iframe, 3-D Secure, the mobile wallet page, the
result page, and the unified checkout of an intention."""

from __future__ import annotations

from collections.abc import Mapping

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from paymobctl.emulator import cards, pages
from paymobctl.emulator.records import PaymentKey, Transaction
from paymobctl.emulator.routing import (
    amount_text,
    base_url_of,
    finish,
    form_body,
    html,
    int_param,
    sandbox_of,
    to_acs,
)
from paymobctl.emulator.state import Sandbox
from paymobctl.models import lenient_int


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
    sandbox = sandbox_of(request)
    txn = sandbox.pay_with_card(key, entry, save_card=form.get("save_card") == "true")
    if txn.state == "pending_3ds":
        return to_acs(request, txn)
    return finish(request, sandbox.completion(txn))


def _waiting(request: Request, state: str) -> Transaction:
    """The path's transaction, held in ``state`` for this page."""
    txn_id = int_param(request.path_params["txn_id"], "transaction")
    return sandbox_of(request).waiting(txn_id, state)


def _checkout_page(
    request: Request,
    sandbox: Sandbox,
    token: str,
    *,
    error: str | None = None,
    values: Mapping[str, str] | None = None,
    status: int = 200,
) -> Response:
    iframe_id = int_param(request.path_params["iframe_id"], "iframe")
    key, order = sandbox.checkout(iframe_id, token)
    saved_card = sandbox.saved_card(key)
    saved = None
    if saved_card is not None:
        saved = {"card_subtype": saved_card.card_subtype, "masked_pan": saved_card.masked_pan}
    body = pages.checkout(
        action=request.url.path,
        payment_token=key.key,
        amount=amount_text(key.amount_cents, key.currency),
        order_id=order.id,
        merchant_order_id=order.merchant_order_id,
        saved_card=saved,
        error=error,
        values=values,
    )
    return HTMLResponse(body, status_code=status)


@html
async def iframe(request: Request) -> Response:
    """The card iframe: the form (GET), a typed card paid (POST)."""
    sandbox = sandbox_of(request)
    if request.method == "GET":
        return _checkout_page(request, sandbox, request.query_params.get("payment_token", ""))
    form = await form_body(request)
    token = form.get("payment_token", "")
    key, _ = sandbox.checkout(int_param(request.path_params["iframe_id"], "iframe"), token)
    entry = _card_entry(form)
    if isinstance(entry, str):
        return _checkout_page(request, sandbox, token, error=entry, values=form, status=400)
    return _pay_card(request, key, entry, form)


@html
async def acs(request: Request) -> Response:
    """The 3-D Secure page: the OTP form (GET), the OTP checked (POST)."""
    txn = _waiting(request, "pending_3ds")
    if request.method == "GET":
        last4 = str((txn.card or {}).get("last4", ""))
        return HTMLResponse(
            pages.acs(action=request.url.path, amount=amount_text(txn), last4=last4)
        )
    form = await form_body(request)
    sandbox = sandbox_of(request)
    done = sandbox.complete_3ds(txn.id, form.get("otp", ""))
    return finish(request, sandbox.completion(done))


@html
async def wallet_page(request: Request) -> Response:
    """The mobile wallet page: the MPIN/OTP form (GET), checked (POST)."""
    txn = _waiting(request, "pending_wallet")
    if request.method == "GET":
        number = str(txn.obj.get("source_data", {}).get("pan", ""))
        return HTMLResponse(
            pages.wallet(action=request.url.path, amount=amount_text(txn), number=number)
        )
    form = await form_body(request)
    sandbox = sandbox_of(request)
    done = sandbox.complete_wallet(txn.id, form.get("mpin", ""), form.get("otp", ""))
    return finish(request, sandbox.completion(done))


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
        amount = amount_text(numbers["amount_cents"], currency)
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


@html
async def unified(request: Request) -> Response:
    """The unified checkout of an intention: the form (GET), a card or saved card paid (POST)."""
    sandbox = sandbox_of(request)
    if request.method == "GET":
        params: Mapping[str, str] = request.query_params
    else:
        params = await form_body(request)
    public_key, client_secret = params.get("publicKey", ""), params.get("clientSecret", "")
    intention = sandbox.intention_for_checkout(public_key, client_secret)

    def render(
        error: str | None = None, status: int = 200, values: Mapping[str, str] | None = None
    ) -> Response:
        saved = sandbox.saved_cards(intention)
        return HTMLResponse(
            pages.unified_checkout(
                action=request.url.path,
                client_secret=client_secret,
                public_key=public_key,
                amount=amount_text(intention.amount, intention.currency),
                reference=intention.special_reference,
                saved_cards=[
                    {"token": s.token, "card_subtype": s.card_subtype, "masked_pan": s.masked_pan}
                    for s in saved
                ],
                wallet_offered=sandbox.offers_wallet(intention),
                error=error,
                values=values,
            ),
            status_code=status,
        )

    if request.method == "GET":
        return render()
    assert isinstance(params, dict)
    if params.get("card_token"):
        txn, done = sandbox.pay_intention_token(
            intention, params["card_token"], base_url_of(request)
        )
        return to_acs(request, txn) if done is None else finish(request, done)
    entry = _card_entry(params)
    if isinstance(entry, str):
        return render(entry, 400, params)
    return _pay_card(request, sandbox.intention_key(intention), entry, params)


def routes() -> list[Route]:
    """The hosted pages' routes."""
    return [
        Route("/api/acceptance/iframes/{iframe_id}", iframe, methods=["GET", "POST"]),
        Route("/api/acceptance/acs/{txn_id}", acs, methods=["GET", "POST"]),
        Route("/api/acceptance/wallet/{txn_id}", wallet_page, methods=["GET", "POST"]),
        Route("/api/acceptance/post_pay", post_pay),
        Route("/unifiedcheckout/", unified, methods=["GET", "POST"]),
    ]
