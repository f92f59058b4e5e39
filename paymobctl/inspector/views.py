"""The inspector's HTML, rendered on the server: every value from a request is escaped here."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from html import escape
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode

from paymobctl import signing
from paymobctl.models import CallbackKind, show_amount

if TYPE_CHECKING:
    from paymobctl.store import Deposit, Event, ForwardAttempt, PaymentMethod

BASE = "/_paymobctl"
KINDS = ("TRANSACTION", "TOKEN", "DELIVERY_STATUS", "RESPONSE", "UNKNOWN")
VERDICTS = ("valid", "invalid", "missing", "n/a")


def e(value: object) -> str:
    """Escape any value (``None`` as empty) for HTML text or a quoted attribute."""
    return escape("" if value is None else str(value))


@dataclass(frozen=True)
class EventFilter:
    """The list's filters: type, HMAC verdict, a deposit's order, and an id search."""

    kind: str = ""
    verdict: str = ""
    order_id: int | None = None  # from ?deposit=ID
    deposit: str = ""
    q: str = ""

    def matches(self, event: Event) -> bool:
        """Whether the event passes every filter the user set."""
        if self.kind and event.kind != self.kind:
            return False
        if self.verdict and event.verdict != self.verdict:
            return False
        if self.deposit and event.order_id != self.order_id:
            return False
        if self.q:
            ids = (event.order_id, event.transaction_id, event.merchant_order_id, event.object_id)
            return any(self.q == str(value) for value in ids if value is not None)
        return True

    def query(self) -> str:
        """The filter as a URL query string (set filters only), for links and the stream."""
        values = {"type": self.kind, "verdict": self.verdict, "deposit": self.deposit, "q": self.q}
        return urlencode({k: v for k, v in values.items() if v})


amount = show_amount


def verdict_badge(verdict: str) -> str:
    """A colored badge saying whether the event's HMAC was valid, invalid or missing."""
    css = {"valid": "ok", "invalid": "bad", "missing": "bad"}.get(verdict, "")
    label = {"valid": "HMAC valid", "invalid": "HMAC invalid", "missing": "no HMAC"}.get(
        verdict, "not a callback"
    )
    return f'<span class="badge {css}">{e(label)}</span>'


def _state(event: Event) -> str:
    if event.kind not in ("TRANSACTION", "RESPONSE") or event.success is None:
        return ""
    if event.success:
        return '<span class="badge ok">success</span>'
    if event.pending:
        return '<span class="badge warn">pending</span>'
    return '<span class="badge bad">declined</span>'


def event_row(event: Event) -> str:
    """One ``<tr>`` of the list; also the payload of a live (server-sent) update."""
    status_css = "ok" if event.status < 300 else "bad"
    dup = f' <span class="badge warn">×{event.duplicates + 1}</span>' if event.duplicates else ""
    return (
        f'<tr id="event-{event.id}"><td class=num><a href="{BASE}/events/{event.id}">#{event.id}</a></td>'
        f'<td class="hide-narrow small muted">{e(event.received_at[11:23])}</td>'
        f"<td>{e(event.method)} {e(event.kind)}{dup}</td>"
        f'<td class="num hide-narrow">{e(event.transaction_id)}</td><td class=num>{e(event.order_id)}</td>'
        f'<td class="num hide-narrow">{e(amount(event.amount_cents, event.currency))}</td>'
        f"<td>{_state(event)} {verdict_badge(event.verdict)}</td>"
        f'<td><span class="badge {status_css}">{event.status}</span></td></tr>'
    )


def _options(values: Iterable[str], chosen: str, label: str) -> str:
    items = [f'<option value="">{e(label)}</option>']
    items += [
        f'<option value="{e(v)}"{" selected" if v == chosen else ""}>{e(v)}</option>'
        for v in values
    ]
    return "".join(items)


def events_page(events: Sequence[Event], chosen: EventFilter, deposits: Sequence[Deposit]) -> str:
    """The event list's HTML: the filter form and one row per event."""
    deposit_ids = [str(d.id) for d in deposits]
    form = (
        f'<form class=filters method=get action="{BASE}/">'
        f"<label>type<select name=type>{_options(KINDS, chosen.kind, 'any')}</select></label>"
        f"<label>HMAC<select name=verdict>{_options(VERDICTS, chosen.verdict, 'any')}</select></label>"
        f"<label>deposit<select name=deposit>{_options(deposit_ids, chosen.deposit, 'any')}</select></label>"
        f'<label>order / transaction id<input type=text name=q value="{e(chosen.q)}" '
        'inputmode=numeric placeholder="e.g. 301234567"></label>'
        "<button type=submit>Filter</button>"
        f'<a class=small href="{BASE}/">clear</a></form>'
    )
    rows = "".join(event_row(event) for event in events) or (
        "<tr class=empty><td colspan=8 class=muted>No events yet. Point Paymob (or "
        "<code>paymobctl simulate</code>) at this listener; new requests appear here live.</td></tr>"
    )
    return (
        f"<h1>Events</h1>{form}<div id=skipped class=warn hidden></div><div class=scroll><table><thead><tr><th>#</th>"
        "<th class=hide-narrow>time</th><th>request</th><th class=hide-narrow>transaction</th><th>order</th>"
        "<th class=hide-narrow>amount</th><th>verdict</th><th>answer</th></tr></thead>"
        f"<tbody id=rows>{rows}</tbody></table></div>"
        '<p class="small muted">Newest first; the latest 1000 requests are searched. Values are '
        "shown as stored: full card numbers were masked before storage.</p>"
    )


def _json_html(value: Any, path: str, signed: frozenset[str], indent: int = 0) -> str:
    """Pretty JSON with the signed fields (dotted paths from the body's root) marked."""
    pad = "  " * indent
    if isinstance(value, dict):
        if not value:
            return "{}"
        items = []
        for key, item in value.items():
            child = f"{path}.{key}" if path else str(key)
            text = f"{pad}  {e(json.dumps(key, ensure_ascii=False))}: " + _json_html(
                item, child, signed, indent + 1
            )
            if child in signed:
                text = f"<mark title=signed>{text}</mark>"
            items.append(text)
        return "{\n" + ",\n".join(items) + f"\n{pad}}}"
    if isinstance(value, list):
        if not value:
            return "[]"
        inner = [
            f"{pad}  " + _json_html(item, f"{path}[{i}]", signed, indent + 1)
            for i, item in enumerate(value)
        ]
        return "[\n" + ",\n".join(inner) + f"\n{pad}]"
    return e(json.dumps(value, ensure_ascii=False))


def body_html(event: Event) -> str:
    """A request's body (or signed query) as HTML, with the signed fields highlighted."""
    if event.kind == "RESPONSE" or (event.method == "GET" and event.query):
        keys = {f.get_key for f in signing.fields_for(CallbackKind.RESPONSE)}
        keys |= {a for f in signing.fields_for(CallbackKind.RESPONSE) for a in f.get_aliases}
        pairs = parse_qsl(event.query, keep_blank_values=True)
        rows = "".join(
            f"<tr><td>{'<mark title=signed>' + e(k) + '</mark>' if k in keys else e(k)}</td>"
            f"<td><code>{e(v)}</code></td></tr>"
            for k, v in pairs
        )
        return f"<h2>Query parameters</h2><div class=scroll><table>{rows}</table></div>"
    if not event.body:
        return "<h2>Body</h2><p class=muted>(empty)</p>"
    try:
        document = json.loads(event.body)
    except (ValueError, UnicodeDecodeError):
        text = event.body.decode("utf-8", "replace")
        return f"<h2>Body</h2><pre>{e(text[:200_000])}</pre>"
    signed: frozenset[str] = frozenset()
    if event.kind in ("TRANSACTION", "TOKEN", "DELIVERY_STATUS"):
        signed = frozenset(
            f"obj.{f.post_path}" for f in signing.fields_for(CallbackKind(event.kind))
        )
    legend = (
        ' <span class="badge"><mark>highlighted</mark> = signed by the HMAC</span>'
        if signed
        else ""
    )
    return f"<h2>Body{legend}</h2><pre>{_json_html(document, '', signed)}</pre>"


def explanation_html(exp: signing.Explanation | None, event: Event) -> str:
    """The same explanation as ``paymobctl hmac verify --explain`` (``signing.explain``)."""
    if exp is None:
        return "<h2>HMAC</h2><p class=muted>Not a callback: no signature to explain.</p>"
    rows = []
    for index, f in enumerate(exp.fields, start=1):
        rows.append(
            f"<tr><td class=num>{index}</td><td>{e(f.label)}</td><td><code>{e(f.shown)}</code></td></tr>"
        )
    if exp.valid:
        convention = exp.convention.value if exp.convention else "empty"
        result = f'<div class="ok">VALID (null rendering: {e(convention)})</div>'
    else:
        result = '<div class="bad">INVALID: the received HMAC is not the one computed with this listener\'s secret</div>'
    diagnoses = "".join(
        f"<li>{e(d.message)} <span class=badge>{e(d.code)}</span></li>" for d in exp.diagnoses
    )
    return (
        f"<h2>HMAC {verdict_badge(event.verdict)}</h2>{result}"
        f'<ul class="diagnoses">{diagnoses}</ul>'
        f"<details{' open' if not exp.valid else ''}><summary>{len(exp.fields)} signed fields, in signing order</summary>"
        f"<div class=scroll><table><tr><th>#</th><th>field</th><th>value</th></tr>{''.join(rows)}</table></div>"
        f"<dl class=facts><dt>signed string</dt><dd><code>{e(exp.message)}</code></dd>"
        f"<dt>computed</dt><dd><code>{e(exp.computed)}</code></dd>"
        f"<dt>received</dt><dd><code>{e(exp.received if exp.received is not None else '<none>')}</code></dd></dl>"
        "</details>"
    )


def _facts(pairs: Iterable[tuple[str, str]]) -> str:
    return "<dl class=facts>" + "".join(f"<dt>{e(k)}</dt><dd>{v}</dd>" for k, v in pairs) + "</dl>"


def event_page(
    event: Event,
    *,
    explanation: signing.Explanation | None,
    forwards: Sequence[ForwardAttempt],
    effects: Sequence[str],
    replay_target: str,
    message: str | None = None,
    message_ok: bool = True,
    token: str,
) -> str:
    """One event's HTML: request facts, HMAC explanation, body, effects, forwards and actions."""
    url = event.path + (f"?{event.query}" if event.query else "")
    facts = [
        ("received", e(event.received_at)),
        ("request", f"<code>{e(event.method)} {e(url)}</code>"),
        ("from", e(event.remote)),
        ("type", e(event.kind)),
        ("answered", f"{event.status}" + (f" — {e(event.problem)}" if event.problem else "")),
        ("transaction", e(event.transaction_id)),
        (
            "order",
            e(event.order_id)
            + (f" ({e(event.merchant_order_id)})" if event.merchant_order_id else ""),
        ),
        ("amount", e(amount(event.amount_cents, event.currency))),
        ("state", _state(event) or "—"),
        (
            "duplicates",
            f"received {event.duplicates + 1} times, stored once (last {e(event.last_seen_at)})"
            if event.duplicates
            else "none",
        ),
        ("effect", e("; ".join(effects)) if effects else "none"),
    ]
    if event.pan_masked:
        facts.append(
            (
                "card number",
                '<span class="badge warn">a full card number was masked before storage</span>',
            )
        )
    headers = "".join(
        f"<tr><td>{e(k)}</td><td><code>{e(v)}</code></td></tr>" for k, v in event.headers
    )
    forward_rows = "".join(
        f"<tr><td>{e(f.at[11:23])}</td><td><code>{e(f.target)}</code></td><td class=num>{f.attempt}</td>"
        f"<td>{e(f.status if f.status is not None else f.error)}</td>"
        f"<td class=num>{e(f.latency_ms)} ms</td><td><code>{e(f.excerpt or '')}</code></td></tr>"
        for f in forwards
    )
    forwards_html = (
        "<div class=scroll><table><tr><th>at</th><th>target</th><th>attempt</th><th>status</th>"
        f"<th>latency</th><th>response</th></tr>{forward_rows}</table></div>"
        if forwards
        else "<p class=muted>Not forwarded (start listen with <code>--forward-to URL</code>).</p>"
    )
    notice = ""
    if message:
        notice = f'<div class="{"ok" if message_ok else "bad"}" id=action-result>{e(message)}</div>'
    actions = ""
    if event.kind != "UNKNOWN":
        actions = (
            "<h2>Actions</h2><div class=panel>"
            f'<form class=inline method=post action="{BASE}/events/{event.id}/replay">'
            f'<input type=hidden name=token value="{e(token)}">'
            f'<label>replay to <input type=url name=to required value="{e(replay_target)}" '
            'placeholder="http://127.0.0.1:8001/api/payments/webhook/"></label>'
            "<button type=submit>Replay</button></form>"
            f'<form class=inline method=post data-copy action="{BASE}/events/{event.id}/copy">'
            f'<input type=hidden name=token value="{e(token)}"><input type=hidden name=what value=curl>'
            "<button class=secondary type=submit>Copy as curl</button></form>"
            f'<form class=inline method=post data-copy action="{BASE}/events/{event.id}/copy">'
            f'<input type=hidden name=token value="{e(token)}"><input type=hidden name=what value=simulate>'
            "<button class=secondary type=submit>Copy simulate command</button></form>"
            "</div>"
        )
    return (
        f'<h1>Event #{event.id} <span class="badge">{e(event.kind)}</span></h1>{notice}'
        f"<div class=panel>{_facts(facts)}</div>{actions}"
        f"{explanation_html(explanation, event) if event.kind != 'UNKNOWN' else ''}"
        f"{body_html(event)}"
        f"<h2>Headers</h2><div class=scroll><table>{headers}</table></div>"
        f"<h2>Forwarding</h2>{forwards_html}"
    )


def deposits_page(deposits: Sequence[Deposit]) -> str:
    """The deposits page's HTML: one row per deposit, linking to its events."""
    rows = (
        "".join(
            f'<tr><td class=num>{d.id}</td><td class="small hide-narrow">{e(d.created_at[:19])}</td>'
            f"<td class=num>{d.order_id}</td><td class=num>{e(amount(d.amount_cents, d.currency))}</td>"
            f'<td><span class="badge {"ok" if d.status == "paid" else ("bad" if d.status == "declined" else "")}">{e(d.status)}</span>'
            f"{' ' + e(d.decline_reason) if d.decline_reason else ''}</td>"
            f"<td class=num>{e(d.transaction_id)}</td>"
            f'<td><a href="{BASE}/?deposit={d.id}">events</a></td></tr>'
            for d in deposits
        )
        or "<tr><td colspan=7 class=muted>No deposits yet (<code>paymobctl deposit</code>).</td></tr>"
    )
    return (
        "<h1>Deposits</h1><div class=scroll><table><tr><th>#</th><th class=hide-narrow>created</th>"
        "<th>order</th><th>amount</th><th>status</th><th>transaction</th><th></th></tr>"
        f"{rows}</table></div>"
    )


def cards_page(methods: Sequence[PaymentMethod]) -> str:
    """The saved cards page's HTML: masked card numbers and where each came from."""
    rows = (
        "".join(
            f"<tr><td class=num>{m.id}</td><td><code>{e(m.masked_pan)}</code></td><td>{e(m.card_subtype)}</td>"
            f"<td class=hide-narrow>{e(m.email)}</td><td class=num>{e(m.order_id)}</td>"
            f"<td>{f'<a href={chr(34)}{BASE}/events/{m.event_id}{chr(34)}>#{m.event_id}</a>' if m.event_id else ''}</td>"
            f"<td>{'removed' if m.removed else 'saved'}</td></tr>"
            for m in methods
        )
        or "<tr><td colspan=7 class=muted>No saved cards yet (TOKEN callbacks save them).</td></tr>"
    )
    return (
        "<h1>Saved cards</h1><div class=scroll><table><tr><th>#</th><th>card</th><th>type</th>"
        "<th class=hide-narrow>email</th><th>order</th><th>from event</th><th>state</th></tr>"
        f"{rows}</table></div><p class='small muted'>Tokens are not shown here; card numbers are "
        "masked as Paymob sends them.</p>"
    )
