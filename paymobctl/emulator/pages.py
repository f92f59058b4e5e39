"""HTML of the sandbox's hosted pages: card checkout, 3-D Secure, wallet, unified checkout, errors."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date
from html import escape
from typing import Any

from paymobctl.emulator import cards

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;background:#f4f6fa;margin:0;color:#1c2430}
main{max-width:560px;margin:32px auto;background:#fff;border-radius:10px;box-shadow:0 2px 12px #0001;padding:28px}
h1{font-size:20px;margin:0 0 4px}.muted{color:#6b7685;font-size:13px}
.amount{font-size:28px;font-weight:600;margin:12px 0}
label{display:block;font-size:13px;margin:12px 0 4px;color:#34404f}
input[type=text],input[type=password]{width:100%;box-sizing:border-box;padding:10px;border:1px solid #c9d1dc;border-radius:6px;font-size:15px}
.row{display:flex;gap:10px}.row>div{flex:1}
button{margin-top:18px;width:100%;padding:12px;border:0;border-radius:6px;background:#1f6feb;color:#fff;font-size:16px;cursor:pointer}
input.invalid{border-color:#c81e1e;background:#fff5f5}
.error{background:#fde8e8;color:#9b1c1c;padding:10px;border-radius:6px;margin:12px 0}
.ok{background:#e6f6ec;color:#1e6b3a;padding:10px;border-radius:6px;margin:12px 0}
table{border-collapse:collapse;width:100%;font-size:12px;margin-top:8px}td,th{border-bottom:1px solid #eef1f5;padding:4px;text-align:left}
.badge{display:inline-block;background:#fff4d6;color:#7a5a00;border-radius:4px;padding:2px 6px;font-size:11px}
code{background:#f0f2f6;padding:1px 4px;border-radius:3px}
"""


def page(title: str, body: str) -> str:
    """A whole sandbox page around ``body`` (already HTML)."""
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width,initial-scale=1">'
        f"<title>{escape(title)} — paymobctl sandbox</title><style>{_STYLE}</style></head>"
        f"<body><main><div class=muted><span class=badge>TEST</span> paymobctl sandbox · Paymob emulator</div>"
        f"{body}</main></body></html>"
    )


def error_page(title: str, message: str) -> str:
    """The page a hosted checkout shows when it cannot go on."""
    return page(title, f"<h1>{escape(title)}</h1><div class=error>{escape(message)}</div>")


def _cards_table() -> str:
    today = date.today()
    rows = "".join(
        f"<tr><td><code>{escape(c.grouped)}</code></td><td>{escape(c.brand.value)}</td>"
        f"<td>{escape(c.expiry_shown(today))}</td>"
        f"<td>{escape(c.note)}</td><td class=muted>{escape(c.source)}</td></tr>"
        for c in cards.TEST_CARDS
    )
    rules = ", ".join(f"{r.expiry} → {r.message.lower()}" for r in cards.EXPIRY_RULES.values())
    return (
        "<details><summary class=muted>Test cards</summary><table><tr><th>number</th><th>brand</th>"
        f"<th>expiry</th><th>result</th><th>from</th></tr>{rows}</table>"
        f"<p class=muted>Any name and any 3-digit CVV. OTP <code>{cards.OTP}</code>. Expiry on 3-D Secure "
        f"cards picks the result (Mastercard gateway convention): 01/39 approved, {escape(rules)}; "
        "a past expiry is declined as an expired card.</p></details>"
    )


def _card_fields(
    error: str | None, values: Mapping[str, str], *, save_default: bool = False
) -> str:
    """The card form. A validation error marks its field (``aria-invalid``, red border) and is
    shown below the fields, so no field moves: the CVV stays where the payer's eyes are."""

    def value(name: str) -> str:
        return escape(values.get(name, ""), quote=True)

    bad = cards.error_field(error) if error else None

    def mark(name: str) -> str:
        return " class=invalid aria-invalid=true aria-describedby=form-error" if name == bad else ""

    checked = " checked" if values.get("save_card") or save_default else ""
    return (
        f"<label for=card_number>Card number</label><input type=text id=card_number name=card_number "
        f'autocomplete=cc-number inputmode=numeric value="{value("card_number")}"{mark("card_number")}>'
        f"<label for=card_holder>Name on card</label><input type=text id=card_holder name=card_holder "
        f'value="{value("card_holder")}"{mark("card_holder")}>'
        "<div class=row><div><label for=expiry_month>Month</label><input type=text id=expiry_month "
        f'name=expiry_month placeholder=MM value="{value("expiry_month")}"{mark("expiry_month")}></div>'
        "<div><label for=expiry_year>Year</label><input type=text id=expiry_year name=expiry_year "
        f'placeholder=YY value="{value("expiry_year")}"{mark("expiry_month")}></div>'
        f"<div><label for=cvv>CVV</label><input type=password id=cvv name=cvv "
        f"inputmode=numeric{mark('cvv')}></div></div>"
        + (f"<div class=error id=form-error role=alert>{escape(error)}</div>" if error else "")
        + f"<label><input type=checkbox name=save_card value=true{checked}> Save this card for faster payments</label>"
    )


def checkout(
    *,
    action: str,
    payment_token: str,
    amount: str,
    order_id: int,
    merchant_order_id: str | None,
    saved_card: Mapping[str, str] | None = None,
    error: str | None = None,
    values: Mapping[str, str] | None = None,
) -> str:
    """The card iframe's checkout form."""
    saved = ""
    if saved_card:
        saved = (
            f"<div class=ok>Saved card {escape(saved_card['card_subtype'])} {escape(saved_card['masked_pan'])} "
            "was attached to this payment key (<code>token</code>).</div>"
        )
    reference = f" · your reference {escape(merchant_order_id)}" if merchant_order_id else ""
    return page(
        "Pay with card",
        f"<h1>Pay with card</h1><div class=muted>Order {order_id}{reference}</div>"
        f"<div class=amount>{escape(amount)}</div>{saved}"
        f'<form method=post action="{escape(action, quote=True)}">'
        f'<input type=hidden name=payment_token value="{escape(payment_token, quote=True)}">'
        + _card_fields(error, values or {})
        + "<button type=submit id=pay>Pay</button></form>"
        + _cards_table(),
    )


def acs(*, action: str, amount: str, last4: str) -> str:
    """The 3-D Secure page asking for the OTP."""
    return page(
        "3-D Secure",
        "<h1>3-D Secure authentication</h1>"
        f"<div class=muted>Your bank asks you to confirm a payment of {escape(amount)} with the card ending "
        f"{escape(last4)}.</div>"
        f'<form method=post action="{escape(action, quote=True)}"><label for=otp>One-time password</label>'
        "<input type=text id=otp name=otp inputmode=numeric autocomplete=one-time-code>"
        f"<p class=muted>Sandbox OTP: <code>{cards.OTP}</code>. Anything else fails authentication.</p>"
        "<button type=submit id=confirm>Confirm</button></form>",
    )


def wallet(*, action: str, amount: str, number: str) -> str:
    """The mobile wallet page asking for the MPIN and OTP."""
    return page(
        "Mobile wallet",
        f"<h1>Mobile wallet payment</h1><div class=muted>{escape(amount)} from wallet {escape(number)}</div>"
        f'<form method=post action="{escape(action, quote=True)}">'
        "<label for=mpin>MPIN</label><input type=password id=mpin name=mpin inputmode=numeric>"
        "<label for=otp>OTP</label><input type=text id=otp name=otp inputmode=numeric>"
        f"<p class=muted>Sandbox MPIN <code>{cards.WALLET_MPIN}</code>, OTP <code>{cards.WALLET_OTP}</code>.</p>"
        "<button type=submit id=confirm>Confirm</button></form>",
    )


def result(
    *, success: bool, pending: bool, transaction_id: int, amount: str, message: str, note: str
) -> str:
    """The sandbox's own result page (no response callback URL configured)."""
    title = (
        "Payment successful" if success else ("Payment pending" if pending else "Payment failed")
    )
    box = "ok" if success else "error"
    return page(
        title,
        f"<h1>{title}</h1><div class=amount>{escape(amount)}</div>"
        f"<div class={box}>Transaction {transaction_id}: {escape(message)}</div>"
        f"<p class=muted>{escape(note)}</p>",
    )


def unified_checkout(
    *,
    action: str,
    client_secret: str,
    public_key: str,
    amount: str,
    reference: str | None,
    saved_cards: Iterable[Mapping[str, str]],
    wallet_offered: bool,
    error: str | None = None,
    values: Mapping[str, str] | None = None,
) -> str:
    """The unified checkout of an intention: saved cards, a new card, a wallet."""
    saved = list(saved_cards)
    choices = "".join(
        f'<label><input type=radio name=card_token value="{escape(c["token"], quote=True)}"'
        f"{' checked' if i == 0 else ''}> {escape(c['card_subtype'])} {escape(c['masked_pan'])}</label>"
        for i, c in enumerate(saved)
    )
    saved_block = ""
    if saved:
        saved_block = (
            f"<h2 style='font-size:15px'>Saved cards</h2>{choices}"
            '<label><input type=radio name=card_token value=""> Use a new card</label>'
        )
    wallet_block = (
        "<p class=muted>Mobile wallet: this payment also accepts wallets "
        f"(test number <code>{cards.WALLET_NUMBER}</code>) through <code>payments/pay</code>.</p>"
        if wallet_offered
        else ""
    )
    ref = f"<div class=muted>Reference {escape(reference)}</div>" if reference else ""
    return page(
        "Checkout",
        f"<h1>Checkout</h1>{ref}<div class=amount>{escape(amount)}</div>"
        f'<form method=post action="{escape(action, quote=True)}">'
        f'<input type=hidden name=clientSecret value="{escape(client_secret, quote=True)}">'
        f'<input type=hidden name=publicKey value="{escape(public_key, quote=True)}">'
        + saved_block
        + _card_fields(error, values or {})
        + "<button type=submit id=pay>Pay</button></form>"
        + wallet_block
        + _cards_table(),
    )


def index(
    *,
    credentials: Mapping[str, Any],
    urls: Mapping[str, Any],
    transactions: Iterable[Mapping[str, Any]],
) -> str:
    """The sandbox's home page: credentials, callback URLs, recent transactions."""
    creds = "".join(
        f"<tr><td>{escape(k)}</td><td><code>{escape(str(v))}</code></td></tr>"
        for k, v in credentials.items()
    )
    links = "".join(
        f"<tr><td>{escape(k)}</td><td><code>{escape(str(v or '—'))}</code></td></tr>"
        for k, v in urls.items()
    )
    rows = "".join(
        f"<tr><td>{t['id']}</td><td>{escape(str(t['status']))}</td><td>{escape(str(t['amount']))}</td>"
        f"<td>{t['order']}</td></tr>"
        for t in transactions
    )
    return page(
        "Sandbox",
        "<h1>paymobctl sandbox</h1><div class=muted>A local emulator of Paymob's API and hosted checkout.</div>"
        f"<h2 style='font-size:15px'>Credentials</h2><table>{creds}</table>"
        f"<h2 style='font-size:15px'>Callbacks</h2><table>{links}</table>"
        f"<h2 style='font-size:15px'>Recent transactions</h2><table><tr><th>id</th><th>status</th><th>amount</th>"
        f"<th>order</th></tr>{rows}</table>" + _cards_table(),
    )
