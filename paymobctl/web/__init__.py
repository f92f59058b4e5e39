"""The local web pages' shared shell: loopback-only guard, per-process action token, layout, assets.

Used by the listener's inspector (``/_paymobctl/``) and the sandbox dashboard (``/_sandbox/``).
Pages are rendered on the server (readable without JavaScript); ``static/ui.js`` only adds live
updates and copy buttons. Every value that came from a request goes through :func:`html.escape`.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from html import escape
from importlib import resources
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from paymobctl.models import lenient_int

ASSETS = {"ui.css": "text/css; charset=utf-8", "ui.js": "text/javascript; charset=utf-8"}
LOOPBACK_NAMES = frozenset({"localhost", "localhost."})
# A tunnel or proxy adds these; a browser on this machine never sends them (ngrok adds
# X-Forwarded-For/-Proto, and X-Forwarded-Host when it rewrites the Host header).
FORWARDING_HEADERS = frozenset(
    {b"forwarded", b"x-forwarded-for", b"x-forwarded-host", b"x-forwarded-proto", b"x-real-ip"}
)
TOKEN_HEADER = "x-paymobctl-token"


def _loopback_address(text: str) -> bool:
    try:
        return ipaddress.ip_address(text.strip("[]")).is_loopback
    except ValueError:
        return False


def split_host(host: str) -> tuple[str, int | None]:
    """``127.0.0.1:8000`` → ("127.0.0.1", 8000); ``[::1]:80`` → ("::1", 80); no port → None."""
    name, port = host, None
    if host.startswith("["):
        end = host.find("]")
        name, rest = host[1:end], host[end + 1 :]
        if rest.startswith(":"):
            port = lenient_int(rest[1:])
    elif host.count(":") == 1:
        name, _, text = host.partition(":")
        number = lenient_int(text)
        port = -1 if number is None else number
    return name.lower(), port


def is_local(scope: Scope) -> bool:
    """True only for a request made on this machine to a loopback address of this server.

    The peer must be a loopback address, the Host header a loopback name (which also defeats
    DNS rebinding) with this server's port, and no proxy/tunnel forwarding header may be
    present: the ngrok agent connects from 127.0.0.1 too, so the peer alone proves nothing.
    """
    client = scope.get("client")
    if not client or not _loopback_address(str(client[0])):
        return False
    host = ""
    for key, value in scope.get("headers", ()):
        if key in FORWARDING_HEADERS:
            return False
        if key == b"host":
            host = value.decode("latin-1")
    name, port = split_host(host)
    if name not in LOOPBACK_NAMES and not _loopback_address(name):
        return False
    server = scope.get("server")
    if not server or server[1] is None:
        return False
    return (80 if port is None else port) == int(server[1])  # no port in Host: http's 80


class LocalOnly:
    """ASGI wrapper: ``app`` for local requests, ``fallback`` (a 404) for everything else."""

    def __init__(self, app: ASGIApp, fallback: ASGIApp | None = None) -> None:
        self.app = app
        self.fallback = fallback or PlainTextResponse("Not Found", status_code=404)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not is_local(scope):
            await self.fallback(scope, receive, send)
            return
        await self.app(scope, receive, send)


class ActionToken:
    """A per-process secret every state-changing POST must carry, from a same-origin page.

    Another web page can make the browser POST here, but cannot read our pages, so it cannot
    know the token; the Origin check (when the browser sends one) is a second fence.
    """

    def __init__(self, value: str | None = None) -> None:
        self.value = value or secrets.token_urlsafe(24)

    def accepts(self, request: Request, supplied: object) -> bool:
        """Whether a state-changing request comes from our own page and carries the token."""
        origin = request.headers.get("origin")
        if origin is not None and origin != _origin(request):
            return False
        if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
            return False
        return isinstance(supplied, str) and hmac.compare_digest(
            supplied.encode(), self.value.encode()
        )


MAX_FORM = 65_536


async def small_form(request: Request) -> dict[str, str]:
    """A bounded ``application/x-www-form-urlencoded`` body (the pages' forms are tiny)."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_FORM:
            return {}
        chunks.append(chunk)
    text = b"".join(chunks).decode("utf-8", "replace")
    return {k: v[0] for k, v in parse_qs(text, keep_blank_values=True).items()}


def _origin(request: Request) -> str:
    return f"{request.url.scheme}://{request.headers.get('host', '')}"


def asset(name: str) -> Response:
    """One of the hand-written assets in ``static/`` (package data; nothing downloaded)."""
    if name not in ASSETS:
        return PlainTextResponse("Not Found", status_code=404)
    data = resources.files("paymobctl.web").joinpath("static", name).read_bytes()
    return Response(data, media_type=ASSETS[name], headers={"cache-control": "no-cache"})


SECURITY_HEADERS = {
    # Our own scripts and styles only: an injected <script> would not run even if it got through.
    "content-security-policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; "
    "script-src 'self'; connect-src 'self'; frame-ancestors 'none'; form-action 'self'",
    "x-content-type-options": "nosniff",
    # not no-referrer: with it a browser sends "Origin: null" on form POSTs, failing our check
    "referrer-policy": "same-origin",
    "cache-control": "no-store",
}


def layout(
    *,
    title: str,
    product: str,
    base: str,
    nav: list[tuple[str, str]],
    current: str,
    body: str,
    token: ActionToken,
    live: str | None = None,
) -> str:
    """The page shell. ``base`` is the mount path (``/_paymobctl``); ``live`` an SSE/poll URL."""
    links = "".join(
        f'<a href="{escape(href)}"{" aria-current=page" if href == current else ""}>{escape(label)}</a>'
        for label, href in nav
    )
    live_attr = f' data-live="{escape(live)}"' if live else ""
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width,initial-scale=1">'
        f'<meta name=paymobctl-token content="{escape(token.value)}">'
        f'<title>{escape(title)} — {escape(product)}</title><link rel=icon href="data:,">'
        f'<link rel=stylesheet href="{escape(base)}/static/ui.css">'
        f'<script defer src="{escape(base)}/static/ui.js"></script></head>'
        f"<body{live_attr}><header><strong>{escape(product)}</strong>"
        f'<span class="badge">local only</span><nav>{links}</nav></header>'
        f"<main>{body}</main></body></html>"
    )
