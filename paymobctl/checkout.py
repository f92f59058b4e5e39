"""Completing a hosted checkout the way a payer's browser does: the sandbox's card iframe or its
unified checkout, the 3-D Secure OTP, then the redirect to the merchant's response URL.

Used by ``paymobctl demo`` and ``paymobctl sandbox pay`` (and a future testing API's ``pay()``).
It talks to the sandbox only over HTTP, like a browser: pages, forms, redirects, and the
sandbox's admin routes to learn which callbacks the payment sent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html import unescape
from html.parser import HTMLParser
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

from paymobctl.errors import NetworkError, UsageError, VerificationFailed
from paymobctl.models import lenient_int
from paymobctl.signing import parse_query

if TYPE_CHECKING:
    import httpx

MAX_PAGE_BYTES = 1_000_000  # a checkout page is a few kB; anything bigger is not one
MAX_HOPS = 10
DEFAULT_OTP = "1234"  # the sandbox's 3-D Secure OTP (emulator/cards.py), Paymob's test OTP


# --- a browser, as far as the hosted checkout needs one ---------------------------------------------


@dataclass
class Form:
    """A form found on a checkout page: where it posts, and the values it already carries."""

    action: str
    method: str
    fields: dict[str, str] = field(default_factory=dict)  # hidden and pre-filled inputs
    inputs: list[str] = field(default_factory=list)  # every named input, in page order


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[Form] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append(
                Form(attributes.get("action", ""), attributes.get("method", "get").upper())
            )
        elif tag == "input" and self.forms and attributes.get("name"):
            form = self.forms[-1]
            name = attributes["name"]
            form.inputs.append(name)
            kind = attributes.get("type", "text")
            if kind in ("hidden", "text", "password") and attributes.get("value"):
                form.fields[name] = attributes["value"]
            elif kind in ("checkbox", "radio") and "checked" in attributes:
                form.fields[name] = attributes.get("value", "on")


@dataclass
class Page:
    """A page the browser landed on, with the redirects that led there."""

    url: str
    status: int
    text: str
    redirects: list[str] = field(default_factory=list)  # every Location followed to get here
    failure: str | None = None  # why the last redirect's page could not be loaded

    def form(self) -> Form:
        """The page's first form, to fill in and submit; fails when the page has none."""
        parser = _FormParser()
        parser.feed(self.text)
        if not parser.forms:
            raise VerificationFailed(f"no form on {_bare(self.url)} (HTTP {self.status})")
        return parser.forms[0]

    def error(self) -> str | None:
        """The message a checkout page shows next to its form (``<div class=error>``)."""
        found = re.search(r"<div class=error>(.*?)</div>", self.text, re.S)
        return unescape(re.sub(r"<[^>]+>", "", found.group(1))).strip() if found else None


class Browser:
    """Loads pages and submits forms, following redirects (and remembering them) like a browser."""

    def __init__(self, http: httpx.Client, *, timeout: float = 10.0) -> None:
        self.http = http
        self.timeout = timeout

    def open(self, url: str) -> Page:
        """Load a page with GET, following its redirects."""
        return self._go("GET", url, None)

    def submit(self, page: Page, values: dict[str, str]) -> Page:
        """Submit the page's form with ``values`` added; fails on a field the form lacks."""
        form = page.form()
        missing = [name for name in values if name not in form.inputs]
        if missing:
            raise VerificationFailed(f"the page's form has no {', '.join(missing)} field")
        target = urljoin(page.url, form.action or page.url)
        return self._go(form.method, target, {**form.fields, **values})

    def _go(self, method: str, url: str, data: dict[str, str] | None) -> Page:
        redirects: list[str] = []
        for _ in range(MAX_HOPS):
            try:
                status, location, text = self._fetch(method, url, data)
            except _Unreachable as exc:
                if not redirects:
                    raise NetworkError(
                        f"cannot load {_bare(url)} ({exc.reason})",
                        hint="is the sandbox that created this checkout still running?",
                    ) from None
                # A browser sent on to an app that is not running shows an error page: the
                # payment happened anyway, so this is a finding, not a failure.
                return Page(url, 0, "", redirects, failure=exc.reason)
            if location is None or not 300 <= status < 400:
                return Page(url, status, text, redirects)
            url = urljoin(url, location)
            redirects.append(url)
            method, data = "GET", None  # 303 (and 301/302 after a POST): the browser GETs
        raise VerificationFailed(f"more than {MAX_HOPS} redirects from {_bare(url)}")

    def _fetch(
        self, method: str, url: str, data: dict[str, str] | None
    ) -> tuple[int, str | None, str]:
        import httpx

        from paymobctl import outbound

        try:
            reply = outbound.request(
                self.http,
                method,
                url,
                data=data,
                timeout=self.timeout,
                follow_redirects=False,
                max_bytes=MAX_PAGE_BYTES,
            )
        except httpx.HTTPError as exc:
            raise _Unreachable(str(exc) or type(exc).__name__) from None
        if reply.truncated:
            # Exit 3 like any other server problem: 1 means the payment was declined.
            raise NetworkError(
                f"{_bare(url)} answered more than {MAX_PAGE_BYTES} bytes: not a checkout page",
                hint="pass the checkout URL your backend returned (iframe or unified checkout)",
            )
        return reply.status_code, reply.headers.get("location"), reply.text


class _Unreachable(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# --- paying a checkout ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Card:
    """What the payer types. The default is Paymob's documented test Mastercard (docs/paymob.md §9)."""

    number: str = "5123456789012346"
    expiry: str = "01/39"  # MM/YY
    cvv: str = "123"
    holder: str = "Test Account"

    def month_year(self) -> tuple[str, str]:
        """``(MM, YY)``. A month that is over is the sandbox's to decline ("Expired card")."""
        found = re.fullmatch(r"\s*(\d{1,2})\s*/\s*(\d{2}|\d{4})\s*", self.expiry)
        if found is None or not 1 <= int(found.group(1)) <= 12:
            raise UsageError(
                f"--expiry {self.expiry!r}: expected MM/YY", hint="for example --expiry 01/39"
            )
        return found.group(1).zfill(2), found.group(2)[-2:]


@dataclass(frozen=True)
class CallbackSent:
    """One callback the payment made the sandbox deliver, and how its target answered."""

    kind: str
    url: str
    state: str  # delivered | failed | pending (the sandbox's delivery state)
    status: int | None  # the last attempt's HTTP status
    attempts: int
    error: str | None = None


@dataclass(frozen=True)
class CheckoutResult:
    """How a checkout ended: the transaction, its outcome, and where the payer was sent."""

    checkout_url: str
    flow: str  # iframe | unified
    three_ds: bool  # an OTP page was answered
    transaction_id: int | None
    outcome: str  # approved | declined | pending
    message: str  # data.message of the redirect (e.g. "Approved")
    txn_response_code: str
    redirect_url: str  # where the sandbox sent the browser: the response URL with the signed query
    landed_status: int | None  # how the page at redirect_url answered (None: it could not load)
    landed_error: str | None
    callbacks: tuple[CallbackSent, ...]

    @property
    def approved(self) -> bool:
        """Whether the sandbox's redirect reported the payment approved."""
        return self.outcome == "approved"


def checkout_flow(url: str) -> str:
    """``iframe`` or ``unified`` for a checkout URL the sandbox (or Paymob) hands out."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UsageError(
            f"{url!r} is not a checkout URL",
            hint="pass the full http(s) URL your app (or `paymobctl deposit`) printed",
        )
    if parts.path.startswith("/api/acceptance/iframes/") and "payment_token=" in parts.query:
        return "iframe"
    if parts.path.rstrip("/") == "/unifiedcheckout" and "clientSecret=" in parts.query:
        return "unified"
    raise UsageError(
        f"{parts.path or '/'} is neither the card iframe nor the unified checkout",
        hint="expected …/api/acceptance/iframes/ID?payment_token=… or "
        "…/unifiedcheckout/?publicKey=…&clientSecret=…",
    )


def pay(
    http: httpx.Client,
    checkout_url: str,
    *,
    card: Card | None = None,
    save_card: bool = False,
    otp: str = DEFAULT_OTP,
    timeout: float = 10.0,
    wait_callbacks: float = 30.0,
) -> CheckoutResult:
    """Pay a checkout with a typed card as a payer would, and report what happened.

    The browser follows the sandbox's redirect to the response URL (the merchant's app) as a real
    browser does; a response page that cannot be loaded is reported, not an error. Callbacks are
    read from the sandbox after it delivered them (``/_sandbox/drain``, at most ``wait_callbacks``
    seconds), so the result says how the merchant's webhook answered.
    """
    card = card or Card()
    flow = checkout_flow(checkout_url)
    month, year = card.month_year()
    browser = Browser(http, timeout=timeout)
    page = browser.open(checkout_url)
    if page.status >= 400:
        raise UsageError(
            f"the checkout page answered HTTP {page.status}: {page.error() or 'no checkout'}",
            hint="create a new checkout (payment keys expire; a paid key cannot pay again)",
        )
    values = {
        "card_number": card.number,
        "card_holder": card.holder,
        "expiry_month": month,
        "expiry_year": year,
        "cvv": card.cvv,
    }
    form = page.form()
    if save_card:
        values["save_card"] = "true"
    elif "save_card" in form.fields:
        values["save_card"] = ""  # untick a box the page ticked
    if "card_token" in form.inputs:
        values["card_token"] = ""  # unified checkout with saved cards: "use a new card"
    page = browser.submit(page, values)
    three_ds = False
    if "/api/acceptance/acs/" in urlsplit(page.url).path and page.status == 200:
        three_ds = True
        page = browser.submit(page, {"otp": otp})
    if not page.redirects:
        raise UsageError(
            f"the checkout refused the payment: {page.error() or f'HTTP {page.status}'}",
            hint="see `paymobctl sandbox cards` for the test cards, expiries and the OTP",
        )
    return _result(http, checkout_url, flow, three_ds, page, timeout, wait_callbacks)


def _signed_redirect(redirects: list[str]) -> str:
    """The sandbox's redirect carrying the transaction: the first with the flattened query."""
    for url in redirects:
        if "success=" in url and "id=" in url:
            return url
    return redirects[-1]


def _result(
    http: httpx.Client,
    checkout_url: str,
    flow: str,
    three_ds: bool,
    page: Page,
    timeout: float,
    wait_callbacks: float,
) -> CheckoutResult:
    redirect = _signed_redirect(page.redirects)
    params = parse_query(redirect).data if "?" in redirect else {}
    success, pending = params.get("success") == "true", params.get("pending") == "true"
    outcome = "approved" if success else ("pending" if pending else "declined")
    raw_id = str(params.get("id", ""))
    transaction_id = lenient_int(raw_id)
    parts = urlsplit(checkout_url)
    sandbox = f"{parts.scheme}://{parts.netloc}"
    sent = (
        _callbacks_of(http, sandbox, transaction_id, timeout, wait_callbacks)
        if transaction_id is not None
        else ()
    )
    return CheckoutResult(
        checkout_url=checkout_url,
        flow=flow,
        three_ds=three_ds,
        transaction_id=transaction_id,
        outcome=outcome,
        message=str(params.get("data.message", "")),
        txn_response_code=str(params.get("txn_response_code", "")),
        redirect_url=redirect,
        landed_status=None if page.failure else page.status,
        landed_error=page.failure,
        callbacks=sent,
    )


def _callbacks_of(
    http: httpx.Client, sandbox: str, transaction_id: int, timeout: float, wait: float
) -> tuple[CallbackSent, ...]:
    import httpx

    from paymobctl import outbound

    try:
        drain = f"{sandbox}/_sandbox/drain"
        outbound.request(http, "POST", drain, params={"timeout": f"{wait:g}"}, timeout=wait + 5)
        deliveries = f"{sandbox}/_sandbox/deliveries"
        reply = outbound.request(http, "GET", deliveries, params={"limit": 50}, timeout=timeout)
        items: Any = reply.json() if reply.status_code == 200 else []
    except (httpx.HTTPError, ValueError):
        return ()  # not a paymobctl sandbox (or gone): the payment itself is still reported
    sent = []
    for item in reversed(items if isinstance(items, list) else []):
        if not isinstance(item, dict) or item.get("transaction_id") != transaction_id:
            continue
        attempts = item.get("attempts") or []
        last = attempts[-1] if attempts else {}
        sent.append(
            CallbackSent(
                kind=str(item.get("type", "")),
                url=str(item.get("url", "")),
                state=str(item.get("state", "")),
                status=last.get("status") if isinstance(last.get("status"), int) else None,
                attempts=len(attempts),
                error=last.get("error") if isinstance(last.get("error"), str) else None,
            )
        )
    return tuple(sent)


def _bare(url: str) -> str:
    """A URL without its query (payment tokens and signed values stay out of messages)."""
    return url.split("?", 1)[0]
