"""Sending the checklist's probes and reading their answers; the debug-page and response checks.

Every probe goes through :func:`paymobctl.delivery.attempt`, so outbound's bounds hold: at most
``outbound.MAX_RESPONSE`` bytes read, a total deadline, and no redirect followed (a redirect is
an answer; :func:`redirect_loop` follows one on the same host, hop by hop, to find a loop).
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urljoin, urlsplit, urlunsplit

from paymobctl import delivery, diagnosis, redirects
from paymobctl.checklist.registry import check_result
from paymobctl.checklist.results import CheckResult, Severity, Status
from paymobctl.diagnosis import Probe, probe_callback

if TYPE_CHECKING:
    import httpx

    from paymobctl.config import Settings

PAGE_BYTES = 20_000  # of an answer's body the checks read (CSRF and debug pages by their text)


@dataclass(frozen=True)
class Answer:
    """An answer as the checks read it: status, time, page text, lowercase headers, or why none."""

    status: int | None
    ms: float
    text: str
    headers: dict[str, str]
    error: str | None = None


def send(http: httpx.Client, method: str, url: str, body: bytes | None, timeout: float) -> Answer:
    """One probe, sent as is (a JSON ``body`` when given) and never retried."""
    headers = (("Content-Type", "application/json"),) if body is not None else ()
    request = delivery.HttpRequest(method, url, body, headers)
    result = delivery.attempt(http, request, timeout=timeout, keep_body=PAGE_BYTES)
    if result.status is None:
        timed_out = result.error == "timeout"
        error = f"no answer within {timeout:g} s" if timed_out else result.error_message
        return Answer(None, result.latency_ms, "", {}, error or result.error)
    text = result.body.decode("utf-8", "replace")
    return Answer(result.status, result.latency_ms, text, dict(result.headers))


def join(url: str, path: str) -> str:
    """``path`` under the base ``url`` (its query and fragment dropped)."""
    parts = urlsplit(url)
    return urlunsplit(
        (parts.scheme, parts.netloc, parts.path.rstrip("/") + "/" + path.lstrip("/"), "", "")
    )


REDIRECTS = (301, 302, 303, 307, 308)
MAX_HOPS = 10
FIX_LOOP = (
    "fix the redirect rules for this path (a trailing-slash rule fighting APPEND_SLASH, or an "
    "http↔https redirect behind a proxy that does not pass X-Forwarded-Proto)"
)


def redirect_loop(
    http: httpx.Client, method: str, url: str, body: bytes | None, timeout: float, first: Answer
) -> list[str] | None:
    """The URLs of a redirect loop starting with ``first`` (an answer from ``url``), or None.

    Hops are followed one by one, only on the same host (a probe is never sent elsewhere),
    at most :data:`MAX_HOPS`; 307/308 keep the method and body, the others become a GET, as
    clients do. A chain that revisits a URL or runs past the limit is a loop.
    """
    host = urlsplit(url).hostname
    visited = [url]
    answer = first
    while answer.status in REDIRECTS and answer.headers.get("location"):
        target = urljoin(visited[-1], answer.headers["location"])
        if target in visited or len(visited) > MAX_HOPS:
            return [*visited, target]
        if urlsplit(target).hostname != host:
            return None
        visited.append(target)
        keep = answer.status in (307, 308)
        answer = send(http, method if keep else "GET", target, body if keep else None, timeout)
    return None


def loop_text(urls: list[str]) -> str:
    """A redirect loop as a short line: the paths, or the full URLs when paths would hide it."""
    shown = [urlsplit(u).path or "/" for u in urls]
    if len({urlsplit(u).scheme for u in urls}) > 1 or len(set(shown)) < len(set(urls)):
        shown = urls  # the paths alone would hide an http↔https or host loop
    return " → ".join(shown[:6]) + (" → …" if len(shown) > 6 else "")


def is_csrf(answer: Answer) -> bool:
    """Whether CSRF protection answered (Django's 403 page, Laravel's 419): no view ran."""
    return diagnosis.csrf_blocked(answer.status, answer.text)


def _text(html: str) -> str:
    """Readable text of a page: no style or script, no tags, collapsed whitespace."""
    html = re.sub(r"(?is)<(style|script|head)\b.*?</\1>", " ", html)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip()


def describe(answer: Answer) -> str:
    """``HTTP 403 (CSRF verification failed.)``: the status and a short excerpt, or the error."""
    if answer.status is None:
        return answer.error or "no answer"
    text = _text(answer.text)
    csrf = re.search(r"[^.]*CSRF[^.]*\.", text, re.I)
    excerpt = (csrf.group(0).strip() if csrf else text)[:90]
    return f"HTTP {answer.status}" + (f" ({excerpt})" if excerpt else "")


_DEBUG_SIGNATURES: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "Django DEBUG page",
        re.compile(
            r"You(?:'|&#x27;|&#39;)re seeing this error because you have <code>DEBUG = True", re.I
        ),
    ),
    ("Django DEBUG page", re.compile(r"Using the URLconf defined in <code>", re.I)),
    ("Werkzeug debugger", re.compile(r"Werkzeug Debugger|werkzeug\.debug|__debugger__", re.I)),
    (
        "Laravel Ignition",
        re.compile(r"ignition|Whoops, looks like something went wrong|laravel-exceptions", re.I),
    ),
    (
        "Rails exception page",
        re.compile(
            r"Action Controller: Exception caught|Routing Error|rails-default-error-page", re.I
        ),
    ),
    (
        "Express stack trace",
        re.compile(r"at (?:Layer\.handle|Function\.process_params|next) \(.*node_modules", re.I),
    ),
    ("stack trace", re.compile(r"Traceback \(most recent call last\)", re.I)),
)
_VERSION = re.compile(r"\d+\.\d+")


def debug_checks(http: httpx.Client, base: str, timeout: float) -> list[CheckResult]:
    """PMB-DBG-001/002: a missing page shows no framework debug page; no version in headers."""
    missing = join(base, f"paymobctl-probe-{secrets.token_hex(6)}/")
    answer = send(http, "GET", missing, None, timeout)
    results = []
    if answer.status is None:
        results.append(
            check_result(
                "PMB-DBG-001", Status.SKIP, Severity.ERROR, f"no answer: {describe(answer)}"
            )
        )
    else:
        found = next(
            (name for name, pattern in _DEBUG_SIGNATURES if pattern.search(answer.text)), None
        )
        if found:
            results.append(
                check_result(
                    "PMB-DBG-001",
                    Status.FAIL,
                    Severity.ERROR,
                    f"a missing page shows a {found} (HTTP {answer.status})",
                    "Debug mode off: DEBUG=False in Django settings (DJANGO_PRODUCTION=True), "
                    "APP_DEBUG=false in Laravel, FLASK_DEBUG=0, NODE_ENV=production",
                )
            )
        else:
            results.append(
                check_result(
                    "PMB-DBG-001",
                    Status.PASS,
                    Severity.ERROR,
                    f"HTTP {answer.status} for a missing page, no debug page",
                )
            )
    leaks = []
    for header in ("server", "x-powered-by"):
        value = answer.headers.get(header)
        if value and (header == "x-powered-by" or _VERSION.search(value)):
            leaks.append(f"{header}: {value}")
    if leaks:
        results.append(
            check_result(
                "PMB-DBG-002",
                Status.FAIL,
                Severity.WARNING,
                "; ".join(leaks),
                "hide versions: server_tokens off (nginx), ServerTokens Prod (Apache), drop "
                "X-Powered-By",
            )
        )
    elif answer.status is not None:
        results.append(
            check_result(
                "PMB-DBG-002", Status.PASS, Severity.WARNING, "no version in Server / X-Powered-By"
            )
        )
    return results


def response_checks(
    http: httpx.Client,
    url: str | None,
    settings: Settings,
    probe: Probe,
    timeout: float,
    secret: str | None,
) -> list[CheckResult]:
    """PMB-RESP-001: the GET redirect path answers a signed redirect without an error."""
    if url is None:
        return [
            check_result(
                "PMB-RESP-001",
                Status.SKIP,
                Severity.ERROR,
                "no response path: pass --response-path (or set the profile's response_callback_url)",
            )
        ]
    callback = probe_callback(probe, settings)
    digest = callback.sign(secret) if secret else None
    query = redirects.encode_params(redirects.redirect_params(callback.obj, digest))
    answer = send(http, "GET", f"{url}?{query}", None, timeout)
    loop = redirect_loop(http, "GET", f"{url}?{query}", None, timeout, answer)
    if loop is not None:
        return [
            check_result(
                "PMB-RESP-001",
                Status.FAIL,
                Severity.ERROR,
                f"GET {url} is a redirect loop (HTTP {answer.status}): {loop_text(loop)}",
                FIX_LOOP + ": the payer's browser stops at 'too many redirects'",
            )
        ]
    if answer.status is None or answer.status >= 500:
        return [
            check_result(
                "PMB-RESP-001",
                Status.FAIL,
                Severity.ERROR,
                f"GET {url}: {describe(answer)}",
                "the browser lands here after paying: handle the signed redirect (verify the hmac, show "
                "the result) without a server error",
            )
        ]
    if answer.status == 404:
        return [
            check_result(
                "PMB-RESP-001",
                Status.FAIL,
                Severity.WARNING,
                f"GET {url}: HTTP 404",
                "route the transaction response callback path, or pass the right --response-path",
            )
        ]
    return [
        check_result(
            "PMB-RESP-001",
            Status.PASS,
            Severity.ERROR,
            f"HTTP {answer.status} in {answer.ms:.0f} ms",
        )
    ]
