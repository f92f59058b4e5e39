"""The guide's payment flows in FastAPI, against paymobctl's sandbox through the pytest plugin."""

DECLINED_CARD = "0000000000001111"  # the integration guide's "Failure" card


def _deposit(client, amount="150.00"):
    answer = client.post("/api/payments/deposit/", json={"amount": amount})
    assert answer.status_code == 201, answer.text
    return answer.json()["deposit_id"], answer.json()["iframe_url"]


def _status(client, deposit_id):
    return client.get(f"/api/payments/status/{deposit_id}/").json()


def _order_of(paymob_sandbox, deposit_id):
    merchant_order_id = f"deposit-{deposit_id}"
    for transaction in paymob_sandbox.transactions:
        if transaction["order"]["merchant_order_id"] == merchant_order_id:
            return transaction["order"]["id"]
    raise AssertionError(f"no transaction for {merchant_order_id}")


def test_deposit_paid_and_card_saved(client, paymob_sandbox):
    deposit_id, iframe_url = _deposit(client)

    result = paymob_sandbox.pay(iframe_url, save_card=True)

    assert result.approved
    assert [(c.kind, c.status) for c in result.callbacks] == [("TRANSACTION", 200), ("TOKEN", 200)]
    assert result.landed_status == 200
    assert _status(client, deposit_id) == {
        "status": "paid",
        "transaction_id": result.transaction_id,
    }


def test_declined_card(client, paymob_sandbox):
    deposit_id, iframe_url = _deposit(client)

    result = paymob_sandbox.pay(iframe_url, card=DECLINED_CARD)

    assert result.outcome == "declined"
    assert paymob_sandbox.wait_for_delivery("TRANSACTION").status == 200
    assert _status(client, deposit_id)["status"] == "failed"


def test_tampered_callback_is_rejected(client, paymob_sandbox, paymob_callback):
    deposit_id, iframe_url = _deposit(client)
    paymob_sandbox.pay(iframe_url, card=DECLINED_CARD)
    order_id = _order_of(paymob_sandbox, deposit_id)
    assert _status(client, deposit_id)["status"] == "failed"

    forged = paymob_callback(outcome="declined", order_id=order_id, amount_cents=15000)
    forged.json["obj"]["success"] = True
    assert forged.send(client).status_code == 401
    assert paymob_callback.response(order_id=order_id).send(client).status_code == 200
    tampered = paymob_callback.response(order_id=order_id, outcome="declined")
    assert (
        client.get(
            tampered.url("/api/payments/response/").replace("success=false", "success=true")
        ).status_code
        == 401
    )


def test_pay_again_with_the_saved_card(client, paymob_sandbox):
    _, iframe_url = _deposit(client)
    paymob_sandbox.pay(iframe_url, save_card=True)
    card_id = 1  # the first card of a clean shop

    answer = client.post("/api/payments/saved-card/", json={"card_id": card_id, "amount": "50.00"})

    assert answer.status_code == 201, answer.text
    deposit_id = answer.json()["deposit_id"]
    delivered = paymob_sandbox.wait_for_delivery(
        "TRANSACTION", order_id=_order_of(paymob_sandbox, deposit_id)
    )
    assert delivered.status == 200
    assert _status(client, deposit_id)["status"] == "paid"
