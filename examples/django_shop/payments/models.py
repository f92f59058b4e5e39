from django.db import models


class Deposit(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending"
        PAID = "paid"
        FAILED = "failed"

    amount_cents = models.PositiveBigIntegerField()
    currency = models.CharField(max_length=3, default="EGP")
    email = models.EmailField()
    paymob_order_id = models.BigIntegerField(unique=True, null=True)
    transaction_id = models.BigIntegerField(null=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    created_at = models.DateTimeField(auto_now_add=True)


class PaymentMethod(models.Model):
    """A saved card: Paymob's token and what may be shown. Never the card number or CVV."""

    email = models.EmailField()
    token = models.CharField(max_length=128, unique=True)
    masked_pan = models.CharField(max_length=32)
    card_subtype = models.CharField(max_length=32)
    paymob_order_id = models.BigIntegerField(null=True)
    created_at = models.DateTimeField(auto_now_add=True)
