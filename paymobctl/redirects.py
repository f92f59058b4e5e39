"""Callbacks flattened into text: the GET redirect's query parameters (Paymob's order and
quoting), the string-typed record ``payments/pay`` returns, and the URL helpers that attach a
query or an ``hmac=`` parameter to a receiver's URL. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from paymobctl import signing
from paymobctl.prototypes import shared


def redirect_params(obj: Mapping[str, Any], hmac: str | None) -> list[tuple[str, str]]:
    """The GET response-callback parameters, as text, in Paymob's order (docs/paymob.md §7.2)."""
    params: list[tuple[str, str]] = []
    for name, path in shared("redirect.json")["params"]:
        value = signing.lookup_path(obj, path)
        if value is None:
            continue  # merchant_order_id unless sent; acq_response_code of wallets, BLOCKED (§14)
        params.append((name, signing.render_value(value)))
    if hmac is not None:
        params.append(("hmac", hmac))
    return params


def encode_params(params: Sequence[tuple[str, str]]) -> str:
    """A query string of ``params``, percent-encoded as Paymob's redirect is (dots kept)."""
    return "&".join(f"{quote(k, safe='._')}={quote(v, safe='')}" for k, v in params)


def with_query(url: str, query: str) -> str:
    """Append ``query`` to ``url``, keeping any query it already has."""
    if _plain_path(url):
        return f"{url}?{query}" if query else url  # what urlunsplit(urlsplit(url)) gives
    parts = urlsplit(url)
    joined = f"{parts.query}&{query}" if parts.query else query
    return urlunsplit((parts.scheme, parts.netloc, parts.path, joined, parts.fragment))


def without_param(url: str, name: str) -> str:
    """``url`` minus every ``name=`` query parameter (the rest kept byte for byte)."""
    if "?" not in url:
        return url
    parts = urlsplit(url)
    if not parts.query:
        return url
    kept = [p for p in parts.query.split("&") if p.split("=", 1)[0] != name]
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "&".join(kept), parts.fragment))


def _plain_path(url: str) -> bool:
    """An absolute path with no query, fragment or characters urlsplit would drop (a receiver
    path such as the testing API's): splitting and joining it changes nothing."""
    return url[:1] == "/" and url[1:2] != "/" and not any(mark in url for mark in "?#\t\r\n")


def pay_response(obj: Mapping[str, Any], hmac: str) -> dict[str, Any]:
    """The flattened string-typed record ``payments/pay`` returns for a TOKEN payment."""
    record: dict[str, Any] = {}
    for name, path in shared("pay_response.json")["params"]:
        value = signing.lookup_path(obj, path)
        record[name] = None if value is None else signing.render_value(value)
    record["hmac"] = hmac
    record["use_redirection"] = False
    record["redirection_url"] = ""
    record["merchant_response"] = None
    record["bypass_step_six"] = False
    return record
