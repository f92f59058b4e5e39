"""The guide's payments API: deposit, saved-card payment, webhook, response redirect, status."""

import json
import logging

from django.conf import settings
from django.db import transaction
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from payments import paymob
from payments.models import Deposit, PaymentMethod

log = logging.getLogger(__name__)


def _error(message, status=400):
    return JsonResponse({"detail": message}, status=status)


def _body(request):
    try:
        body = json.loads(request.body or b"{}")
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _payment_key(record, integration_id, tokenization):
    """auth → order (remembered on the deposit) → payment key."""
    token = paymob.get_auth_token()
    record.paymob_order_id = paymob.create_order(token, record.amount_cents, f"deposit-{record.id}")
    record.save(update_fields=["paymob_order_id"])
    return paymob.get_payment_key(
        token, record.paymob_order_id, record.amount_cents, record.email, integration_id,
        tokenization,
    )  # fmt: skip


@csrf_exempt
@require_POST
def deposit(request):
    """New card payment: auth → order → payment key (tokenization) → the iframe URL."""
    body = _body(request)
    amount_cents = paymob.to_cents((body or {}).get("amount"))
    if amount_cents is None:
        return _error("Invalid Amount")
    email = str(body.get("email") or "client@example.com")
    record = Deposit.objects.create(amount_cents=amount_cents, email=email)
    try:
        key = _payment_key(record, settings.PAYMOB_INTEGRATION_ID, tokenization=True)
    except paymob.PaymobError as exc:
        log.warning("deposit %s: %s", record.id, exc)
        return _error("Failed to initiate deposit", status=502)
    return JsonResponse({"deposit_id": record.id, "iframe_url": paymob.iframe_url(key)}, status=201)


@csrf_exempt
@require_POST
def pay_with_saved_card(request):
    """Saved card: a payment key on the MOTO integration paid with the card's token."""
    body = _body(request) or {}
    amount_cents = paymob.to_cents(body.get("amount"))
    card = PaymentMethod.objects.filter(id=body.get("card_id")).first()
    if amount_cents is None:
        return _error("Invalid Amount")
    if card is None or not card.token:
        return _error("This card cannot be used; add it again")
    record = Deposit.objects.create(amount_cents=amount_cents, email=card.email)
    try:
        key = _payment_key(record, settings.PAYMOB_MOTO_INTEGRATION_ID, tokenization=False)
        paymob.pay_with_token(key, card.token)
    except paymob.PaymobError as exc:
        log.warning("saved-card deposit %s: %s", record.id, exc)
        return _error("Payment failed", status=502)
    # The webhook decides: the pay answer is not trusted to mark anything paid.
    return JsonResponse({"deposit_id": record.id}, status=201)


@csrf_exempt
@require_POST
def webhook(request):
    body = _body(request)
    if body is None or not isinstance(body.get("obj"), dict):
        return _error("Invalid payload")
    kind, obj = body.get("type"), body["obj"]
    if not paymob.is_valid_callback(kind, obj, request.GET.get("hmac")):
        log.warning("Invalid HMAC Signature on a %s callback", kind)
        return _error("Invalid HMAC Signature", status=401)
    if kind == "TOKEN":
        order_id = int(obj.get("order_id") or 0) or None
        PaymentMethod.objects.update_or_create(
            token=obj["token"],
            defaults={
                "email": obj.get("email") or "",
                "masked_pan": obj.get("masked_pan") or "",
                "card_subtype": obj.get("card_subtype") or "",
                "paymob_order_id": order_id,
            },
        )
        return JsonResponse({"detail": "card saved"})
    if kind == "TRANSACTION":
        with transaction.atomic():
            record = (
                Deposit.objects.select_for_update()
                .filter(paymob_order_id=(obj.get("order") or {}).get("id"))
                .first()
            )
            if record is None:
                return _error("Unknown order", status=404)
            if record.status == Deposit.Status.PENDING and not obj.get("pending"):
                paid = obj.get("success") is True and obj.get("amount_cents") == record.amount_cents
                record.status = Deposit.Status.PAID if paid else Deposit.Status.FAILED
                record.transaction_id = obj.get("id")
                record.save(update_fields=["status", "transaction_id"])
        return JsonResponse({"detail": "ok"})
    return JsonResponse({"detail": "ignored"})


@require_GET
def response(request):
    """Where Paymob sends the payer's browser: show the result (the webhook updates balances)."""
    if not paymob.is_valid_redirect(request.GET, request.GET.get("hmac")):
        return _error("Invalid HMAC Signature", status=401)
    paid = request.GET.get("success") == "true"
    return JsonResponse({"detail": "Payment successful" if paid else "Payment failed"})


@require_GET
def status(request, deposit_id):
    """What the dashboard polls every 5 seconds."""
    record = Deposit.objects.filter(id=deposit_id).first()
    if record is None:
        return _error("Not found", status=404)
    return JsonResponse({"status": record.status, "transaction_id": record.transaction_id})
