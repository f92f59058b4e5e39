"""The guide's payment flows against paymobctl's sandbox, through the pytest plugin only."""

from payments.models import Deposit, PaymentMethod

DECLINED_CARD = "0000000000001111"  # the integration guide's "Failure" card


def _deposit(client, amount="150.00"):
    answer = client.post(
        "/api/payments/deposit/", {"amount": amount, "email": "mona@example.com"},
        content_type="application/json",
    )  # fmt: skip
    assert answer.status_code == 201, answer.content
    return Deposit.objects.get(id=answer.json()["deposit_id"]), answer.json()["iframe_url"]


def test_deposit_paid_and_card_saved(client, paymob):
    deposit, iframe_url = _deposit(client)

    result = paymob.pay(iframe_url, save_card=True)

    assert result.approved and result.three_ds
    assert [(c.kind, c.status) for c in result.callbacks] == [("TRANSACTION", 200), ("TOKEN", 200)]
    assert result.landed_status == 200  # the response view accepted the signed redirect
    deposit.refresh_from_db()
    assert deposit.status == "paid" and deposit.transaction_id == result.transaction_id
    card = PaymentMethod.objects.get()
    assert card.masked_pan.endswith("2346") and card.paymob_order_id == deposit.paymob_order_id
    polled = client.get(f"/api/payments/status/{deposit.id}/").json()
    assert polled == {"status": "paid", "transaction_id": result.transaction_id}


def test_declined_card(client, paymob):
    deposit, iframe_url = _deposit(client)

    result = paymob.pay(iframe_url, card=DECLINED_CARD, save_card=True)

    assert result.outcome == "declined"
    assert paymob.wait_for_delivery("TRANSACTION").status == 200
    deposit.refresh_from_db()
    assert deposit.status == "failed"
    assert not PaymentMethod.objects.exists()


def test_tampered_callback_is_rejected(client, paymob_callback):
    deposit, _ = _deposit(client, "150.00")
    declined = paymob_callback(outcome="declined", order_id=deposit.paymob_order_id,
                               amount_cents=15000)  # fmt: skip
    declined.json["obj"]["success"] = True  # an attacker turning a decline into a payment

    assert declined.send(client).status_code == 401
    deposit.refresh_from_db()
    assert deposit.status == "pending"

    genuine = paymob_callback(order_id=deposit.paymob_order_id, amount_cents=15000)
    assert genuine.send(client).status_code == 200
    deposit.refresh_from_db()
    assert deposit.status == "paid"


def test_wrong_amount_is_not_paid(client, paymob_callback):
    deposit, _ = _deposit(client, "150.00")
    assert (
        paymob_callback(order_id=deposit.paymob_order_id, amount_cents=100).send(client).status_code
        == 200
    )
    deposit.refresh_from_db()
    assert deposit.status == "failed"


def test_pay_again_with_the_saved_card(client, paymob):
    _, iframe_url = _deposit(client)
    paymob.pay(iframe_url, save_card=True)
    card = PaymentMethod.objects.get()

    answer = client.post(
        "/api/payments/saved-card/", {"card_id": card.id, "amount": "50.00"},
        content_type="application/json",
    )  # fmt: skip

    assert answer.status_code == 201, answer.content
    again = Deposit.objects.get(id=answer.json()["deposit_id"])
    delivered = paymob.wait_for_delivery("TRANSACTION", order_id=again.paymob_order_id)
    assert delivered.status == 200 and delivered.obj["success"] is True
    again.refresh_from_db()
    assert again.status == "paid" and again.amount_cents == 5000
