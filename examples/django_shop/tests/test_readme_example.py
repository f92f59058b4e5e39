from payments.models import Deposit, PaymentMethod


def test_deposit_is_paid_and_card_saved(client, paymob_sandbox, live_server, settings):
    settings.PAYMOB_BASE_URL = paymob_sandbox.base_url  # the other PAYMOB_* are the sandbox's
    paymob_sandbox.set_callback_urls(f"{live_server.url}/api/payments/webhook/")

    answer = client.post("/api/payments/deposit/", {"amount": "150.00"}, "application/json")
    result = paymob_sandbox.pay(answer.json()["iframe_url"], save_card=True)

    assert result.approved
    assert [(c.kind, c.status) for c in result.callbacks] == [("TRANSACTION", 200), ("TOKEN", 200)]
    assert Deposit.objects.get().status == "paid"
    assert PaymentMethod.objects.get().masked_pan.endswith("2346")
