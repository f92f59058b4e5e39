"""The go-live checklist, run against a real deployment: checks that return results, never print.

Every probe is harmless by construction: signed probes are *declined* test transactions for an
order id that cannot exist (``merchant_order_id`` says ``paymobctl-probe-…``), so even an
application that wrongly accepted one would record a failed payment of an unknown order. The
API checks only authenticate and read (integrations, the HMAC secret, the iframe page).
"""

from __future__ import annotations

import hmac as _hmac
import re
import secrets
import socket
import ssl
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import IntEnum, StrEnum
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit, urlunsplit

from paymobctl import callbacks, delivery, diagnosis, outbound
from paymobctl.diagnosis import Probe, make_probe, probe_callback
from paymobctl.errors import PaymobctlError, UsageError
from paymobctl.models import CallbackKind, is_local, is_tunnel_host, lenient_int

if TYPE_CHECKING:
    import httpx

    from paymobctl.client import PaymobClient
    from paymobctl.config import Settings


class Severity(IntEnum):
    INFO = 0
    WARNING = 1
    ERROR = 2
    CRITICAL = 3

    @property
    def label(self) -> str:
        return self.name.lower()


class Status(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    SKIP = "skip"
    INFO = "info"


@dataclass(frozen=True)
class CheckResult:
    id: str
    area: str
    title: str
    severity: Severity
    status: Status
    detail: str
    hint: str | None = None
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return self.status is Status.FAIL


# Stable ids and what each check means (the README lists them; a test keeps both in sync).
CHECKS: dict[str, tuple[str, str]] = {
    "PMB-TLS-001": ("TLS", "the URL is https"),
    "PMB-TLS-002": ("TLS", "the certificate chain is trusted"),
    "PMB-TLS-003": ("TLS", "the certificate matches the hostname"),
    "PMB-TLS-004": ("TLS", "the certificate is within its validity dates"),
    "PMB-TLS-005": ("TLS", "days until the certificate expires"),
    "PMB-TLS-006": ("TLS", "TLS 1.2 or newer"),
    "PMB-TLS-007": ("TLS", "plain http redirects to https"),
    "PMB-TLS-008": ("TLS", "HSTS header present"),
    "PMB-NET-001": ("Reachability", "TCP connects from here (firewall open)"),
    "PMB-NET-002": ("Reachability", "the webhook path answers a POST"),
    "PMB-CSRF-001": ("CSRF", "a POST to the webhook is not blocked by CSRF protection"),
    "PMB-HMAC-001": ("HMAC", "an unsigned callback is rejected"),
    "PMB-HMAC-002": ("HMAC", "a tampered callback is rejected"),
    "PMB-HMAC-003": ("HMAC", "a correctly signed callback is accepted (the secret matches)"),
    "PMB-HMAC-004": ("HMAC", "a missing hmac does not crash the server"),
    "PMB-HMAC-005": ("HMAC", "a field-shift forgery (obj.order not an object) is rejected"),
    "PMB-DBG-001": ("Debug", "no framework debug page"),
    "PMB-DBG-002": ("Debug", "no version leak in Server / X-Powered-By"),
    "PMB-RESP-001": ("Response callback", "the GET redirect path answers a signed redirect"),
    "PMB-CFG-001": ("Configuration", "the profile has every value go-live needs"),
    "PMB-CFG-002": ("Configuration", "the profile is in live mode"),
    "PMB-CFG-003": (
        "Configuration",
        "the processed callback URL points at this deployment over https",
    ),
    "PMB-CFG-004": (
        "Configuration",
        "the response callback URL points at this deployment over https",
    ),
    "PMB-API-001": ("Paymob API", "authentication works"),
    "PMB-API-002": ("Paymob API", "the integration exists in this mode, in the profile's currency"),
    "PMB-API-003": ("Paymob API", "the iframe id resolves"),
    "PMB-API-004": ("Paymob API", "the HMAC secret Paymob holds equals the configured one"),
}

# The integration guide's troubleshooting table, where it applies.
FIX_CSRF = (
    "Status 403 on Webhook → CSRF protection: put @csrf_exempt on the webhook view (payments/views.py); "
    "Laravel: add the path to VerifyCsrfToken::$except"
)
FIX_HMAC = (
    '"Invalid HMAC Signature" → ensure PAYMOB_HMAC_SECRET matches the HMAC secret in Paymob\'s dashboard '
    "EXACTLY (test and live differ)"
)
FIX_PENDING = (
    "Transaction stuck in pending → the webhook is not reaching the server: open port 443 to the internet "
    "and check the callback URL in Paymob's dashboard (https)"
)
FIX_IFRAME = (
    "Iframe refuses to load → ensure PAYMOB_IFRAME_ID matches a valid iframe in Paymob's dashboard"
)
FIX_DEPOSIT = (
    "Failed to initiate deposit → usually PAYMOB_API_KEY is invalid or PAYMOB_IFRAME_ID is wrong"
)

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


@dataclass(frozen=True)
class Options:
    url: str
    webhook_path: str = "/api/payments/webhook/"
    response_path: str | None = None
    ca_bundle: str | None = None
    timeout: float = 10.0
    api: bool | None = None  # None: on when the profile has credentials
    http_port: int = 80


class Graded:
    """What a graded run (the checklist, ``webhook test``) answers about its results, which have
    ``failed``, ``severity`` and ``status``: failures at a level, the exit code, the counts."""

    results: Sequence[Any]
    reachable: bool

    def failures(self, level: Severity) -> list[Any]:
        return [r for r in self.results if r.failed and r.severity >= level]

    def exit_code(self, level: Severity) -> int:
        if not self.reachable:
            return 3
        return 1 if self.failures(level) else 0

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(("pass", "fail", "skip", "info", "critical", "error", "warning"), 0)
        for result in self.results:
            counts[result.status.value] += 1
            if result.failed:
                counts[result.severity.label] += 1
        return counts


@dataclass
class Report(Graded):
    url: str
    profile: str
    mode: str
    started_at: str
    duration_ms: float
    probe: Probe
    results: list[CheckResult]
    reachable: bool


def _result(
    check_id: str,
    status: Status,
    severity: Severity,
    detail: str,
    hint: str | None = None,
    **data: Any,
) -> CheckResult:
    area, title = CHECKS[check_id]
    return CheckResult(
        check_id,
        area,
        title,
        severity,
        status,
        detail,
        hint if status is Status.FAIL else None,
        data,
    )


def parse_target(url: str) -> tuple[str, str, int, str]:
    """(scheme, host, port, base path) of the deployment's base URL, or a usage error."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise UsageError(
            f"invalid URL {url!r} ({exc})",
            hint="give the deployment's base URL, e.g. https://shop.example",
        ) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(
            f"invalid URL {url!r}", hint="give the deployment's base URL, e.g. https://shop.example"
        )
    default = 443 if parts.scheme == "https" else 80
    return parts.scheme, parts.hostname, port or default, parts.path.rstrip("/")


def _join(url: str, path: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(
        (parts.scheme, parts.netloc, parts.path.rstrip("/") + "/" + path.lstrip("/"), "", "")
    )


# --- TLS -----------------------------------------------------------------------------------------

_NO_CHECK_TIME = 0x200000  # OpenSSL X509_V_FLAG_NO_CHECK_TIME: verify the chain, ignore the dates


@dataclass
class TlsFacts:
    trusted: bool | None = None
    hostname_ok: bool | None = None
    dates_ok: bool | None = None
    verify_message: str = ""
    not_after: datetime | None = None
    version: str | None = None
    error: str | None = None


def _handshake(
    host: str,
    port: int,
    timeout: float,
    ca_bundle: str | None,
    *,
    check_hostname: bool,
    ignore_time: bool,
) -> tuple[str, dict[str, Any]]:
    context = (
        ssl.create_default_context(cafile=ca_bundle) if ca_bundle else ssl.create_default_context()
    )
    context.check_hostname = check_hostname
    if ignore_time:
        context.verify_flags |= _NO_CHECK_TIME
    with (
        socket.create_connection((host, port), timeout=timeout) as raw,
        context.wrap_socket(raw, server_hostname=host) as tls,
    ):
        return tls.version() or "", dict(tls.getpeercert() or {})


def inspect_tls(host: str, port: int, timeout: float, ca_bundle: str | None) -> TlsFacts:
    """Three handshakes isolate the failure: full verification; chain and name ignoring dates;
    chain alone. An untrusted chain leaves the dates unknown (nothing trustworthy to read)."""
    facts = TlsFacts()
    try:
        facts.version, cert = _handshake(
            host, port, timeout, ca_bundle, check_hostname=True, ignore_time=False
        )
        facts.trusted = facts.hostname_ok = facts.dates_ok = True
    except ssl.SSLCertVerificationError as exc:
        facts.verify_message = exc.verify_message or str(exc)
        cert = {}
        try:
            facts.version, cert = _handshake(
                host, port, timeout, ca_bundle, check_hostname=True, ignore_time=True
            )
            facts.trusted = facts.hostname_ok = True
            facts.dates_ok = False
        except ssl.SSLCertVerificationError:
            try:
                facts.version, cert = _handshake(
                    host, port, timeout, ca_bundle, check_hostname=False, ignore_time=True
                )
                facts.trusted, facts.hostname_ok = True, False
                facts.dates_ok = exc.verify_code != 10
            except ssl.SSLCertVerificationError as inner:
                facts.trusted = False
                facts.verify_message = inner.verify_message or facts.verify_message
                facts.version = _unverified_version(host, port, timeout)
    except (OSError, ssl.SSLError) as exc:
        facts.error = str(exc) or type(exc).__name__
        return facts
    if cert.get("notAfter"):
        facts.not_after = datetime.fromtimestamp(
            ssl.cert_time_to_seconds(str(cert["notAfter"])), UTC
        )
    return facts


def _unverified_version(host: str, port: int, timeout: float) -> str | None:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with (
            socket.create_connection((host, port), timeout=timeout) as raw,
            context.wrap_socket(raw, server_hostname=host) as tls,
        ):
            return tls.version()
    except (OSError, ssl.SSLError):
        return None


def tls_checks(host: str, port: int, options: Options, now: datetime) -> list[CheckResult]:
    facts = inspect_tls(host, port, options.timeout, options.ca_bundle)
    if facts.error:
        return [
            _result(
                i,
                Status.FAIL,
                Severity.CRITICAL if i == "PMB-TLS-002" else Severity.ERROR,
                f"no TLS handshake with {host}:{port} ({facts.error})",
                "serve HTTPS with a valid certificate (e.g. Let's Encrypt) on this port",
            )
            for i in ("PMB-TLS-002", "PMB-TLS-006")
        ]
    results: list[CheckResult] = []
    if facts.trusted:
        results.append(_result("PMB-TLS-002", Status.PASS, Severity.CRITICAL, "trusted chain"))
    else:
        results.append(
            _result(
                "PMB-TLS-002",
                Status.FAIL,
                Severity.CRITICAL,
                f"untrusted certificate: {facts.verify_message}",
                "Paymob only delivers to a valid HTTPS URL: install a certificate from a public CA "
                "(e.g. Let's Encrypt) with its full chain; pass --ca-bundle for a private CA",
            )
        )
    if facts.hostname_ok is None:
        results.append(
            _result("PMB-TLS-003", Status.SKIP, Severity.ERROR, "unknown: the chain is not trusted")
        )
    elif facts.hostname_ok:
        results.append(_result("PMB-TLS-003", Status.PASS, Severity.ERROR, f"valid for {host}"))
    else:
        results.append(
            _result(
                "PMB-TLS-003",
                Status.FAIL,
                Severity.ERROR,
                f"the certificate is not valid for {host}",
                f"issue the certificate for {host} (or use the hostname it was issued for)",
            )
        )
    if facts.not_after is None:
        results.append(
            _result(
                "PMB-TLS-004", Status.SKIP, Severity.CRITICAL, "unknown: the chain is not trusted"
            )
        )
        results.append(
            _result(
                "PMB-TLS-005", Status.SKIP, Severity.WARNING, "unknown: the chain is not trusted"
            )
        )
    else:
        days = (facts.not_after - now).total_seconds() / 86400
        if facts.dates_ok is False or days < 0:
            results.append(
                _result(
                    "PMB-TLS-004",
                    Status.FAIL,
                    Severity.CRITICAL,
                    f"the certificate expired on {facts.not_after:%Y-%m-%d}"
                    if days < 0
                    else f"the certificate is not valid yet ({facts.verify_message})",
                    "renew the certificate now: Paymob cannot deliver webhooks to this URL",
                )
            )
        else:
            results.append(
                _result("PMB-TLS-004", Status.PASS, Severity.CRITICAL, "within its validity dates")
            )
        whole = int(days)
        if days < 7:
            severity, status = Severity.ERROR, Status.FAIL
        elif days < 21:
            severity, status = Severity.WARNING, Status.FAIL
        else:
            severity, status = Severity.WARNING, Status.PASS
        results.append(
            _result(
                "PMB-TLS-005",
                status,
                severity,
                f"expires in {whole} days ({facts.not_after:%Y-%m-%d})"
                if days >= 0
                else f"expired {-whole} days ago",
                "renew the certificate (automate it: certbot renew)",
                days=whole,
            )
        )
    version = facts.version or ""
    if version in ("TLSv1.2", "TLSv1.3"):
        results.append(_result("PMB-TLS-006", Status.PASS, Severity.ERROR, f"negotiated {version}"))
    else:
        results.append(
            _result(
                "PMB-TLS-006",
                Status.FAIL,
                Severity.ERROR,
                f"negotiated {version or 'nothing'}",
                "enable TLS 1.2 or 1.3 and disable older versions",
            )
        )
    return results


# --- probes --------------------------------------------------------------------------------------


@dataclass
class Answer:
    status: int | None
    ms: float
    text: str
    headers: dict[str, str]
    error: str | None = None


def _send(http: httpx.Client, method: str, url: str, body: bytes | None, timeout: float) -> Answer:
    import httpx

    started = time.perf_counter()
    try:
        response = outbound.request(
            http,
            method,
            url,
            content=body,
            timeout=timeout,
            follow_redirects=False,
            headers={"Content-Type": "application/json"} if body is not None else None,
        )
    except httpx.TimeoutException:
        return Answer(
            None, (time.perf_counter() - started) * 1000, "", {}, f"no answer within {timeout:g} s"
        )
    except httpx.HTTPError as exc:
        return Answer(
            None, (time.perf_counter() - started) * 1000, "", {}, str(exc) or type(exc).__name__
        )
    text = response.content[:20_000].decode("utf-8", "replace")  # the probe reads ≤ 1 MiB
    return Answer(
        response.status_code,
        (time.perf_counter() - started) * 1000,
        text,
        {k.lower(): v for k, v in response.headers.items()},
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
        answer = _send(http, method if keep else "GET", target, body if keep else None, timeout)
    return None


def _loop_text(urls: list[str]) -> str:
    shown = [urlsplit(u).path or "/" for u in urls]
    if len({urlsplit(u).scheme for u in urls}) > 1 or len(set(shown)) < len(set(urls)):
        shown = urls  # the paths alone would hide an http↔https or host loop
    return " → ".join(shown[:6]) + (" → …" if len(shown) > 6 else "")


def _is_csrf(answer: Answer) -> bool:
    return diagnosis.csrf_blocked(answer.status, answer.text)


def _text(html: str) -> str:
    """Readable text of a page: no style or script, no tags, collapsed whitespace."""
    html = re.sub(r"(?is)<(style|script|head)\b.*?</\1>", " ", html)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip()


def _describe(answer: Answer) -> str:
    if answer.status is None:
        return answer.error or "no answer"
    text = _text(answer.text)
    csrf = re.search(r"[^.]*CSRF[^.]*\.", text, re.I)
    excerpt = (csrf.group(0).strip() if csrf else text)[:90]
    return f"HTTP {answer.status}" + (f" ({excerpt})" if excerpt else "")


def webhook_checks(
    http: httpx.Client,
    webhook: str,
    settings: Settings,
    probe: Probe,
    timeout: float,
    secret: str | None,
) -> list[CheckResult]:
    callback = probe_callback(probe, settings)
    body = delivery.wire_json(callback.body)
    unsigned = _send(http, "POST", webhook, body, timeout)
    results: list[CheckResult] = []

    if unsigned.status is None:
        results.append(
            _result(
                "PMB-NET-002",
                Status.FAIL,
                Severity.CRITICAL,
                f"POST {webhook}: {_describe(unsigned)}",
                FIX_PENDING,
                ms=round(unsigned.ms, 1),
            )
        )
        return results
    loop = redirect_loop(http, "POST", webhook, body, timeout, unsigned)
    if loop is not None:
        results.append(
            _result(
                "PMB-NET-002",
                Status.FAIL,
                Severity.CRITICAL,
                f"POST {webhook} is a redirect loop (HTTP {unsigned.status}): {_loop_text(loop)}",
                FIX_LOOP + ": Paymob gets no answer, so the callback is never processed",
                ms=round(unsigned.ms, 1),
            )
        )
        for check in ("PMB-CSRF-001", *HMAC_PROBES):
            results.append(
                _result(
                    check, Status.SKIP, Severity.CRITICAL, "the webhook path is a redirect loop"
                )
            )
        return results
    if unsigned.status in (404, 405):
        results.append(
            _result(
                "PMB-NET-002",
                Status.FAIL,
                Severity.ERROR,
                f"POST {webhook} answered {_describe(unsigned)} in {unsigned.ms:.0f} ms",
                "route the webhook path for POST (Paymob POSTs to it) — " + FIX_PENDING,
                ms=round(unsigned.ms, 1),
            )
        )
        return results
    if _is_csrf(unsigned):
        results.append(
            _result(
                "PMB-NET-002",
                Status.PASS,
                Severity.ERROR,
                f"POST answered HTTP {unsigned.status} in {unsigned.ms:.0f} ms",
                ms=round(unsigned.ms, 1),
            )
        )
        results.append(
            _result(
                "PMB-CSRF-001",
                Status.FAIL,
                Severity.CRITICAL,
                f"the POST was rejected by CSRF protection ({_describe(unsigned)})",
                FIX_CSRF,
            )
        )
        for check in HMAC_PROBES:
            results.append(
                _result(
                    check, Status.SKIP, Severity.CRITICAL, "blocked by CSRF before the HMAC check"
                )
            )
        return results
    results.append(
        _result("PMB-CSRF-001", Status.PASS, Severity.CRITICAL, "not blocked by CSRF protection")
    )

    if unsigned.status >= 500:
        results.append(
            _result(
                "PMB-HMAC-004",
                Status.FAIL,
                Severity.ERROR,
                f"a callback without hmac crashed the server ({_describe(unsigned)})",
                "treat a missing hmac as invalid: answer 4xx (e.g. 401 'Invalid HMAC Signature')",
            )
        )
    else:
        results.append(
            _result(
                "PMB-HMAC-004", Status.PASS, Severity.ERROR, f"no crash (HTTP {unsigned.status})"
            )
        )

    if secret is None:
        results.append(
            _result(
                "PMB-NET-002",
                Status.PASS if unsigned.status < 500 else Status.FAIL,
                Severity.ERROR,
                f"POST answered HTTP {unsigned.status} in {unsigned.ms:.0f} ms",
                "check the application's logs",
                ms=round(unsigned.ms, 1),
            )
        )
        for check in ("PMB-HMAC-001", "PMB-HMAC-002", "PMB-HMAC-003", "PMB-HMAC-005"):
            results.append(
                _result(
                    check,
                    Status.SKIP,
                    Severity.CRITICAL,
                    "no HMAC secret in the profile: cannot sign probes",
                )
            )
        return results
    digest = callback.sign(secret)
    tampered_body = dict(callback.body)
    tampered_body["obj"] = {**callback.obj, "amount_cents": callback.obj["amount_cents"] + 100_000}
    tampered = _send(
        http, "POST", f"{webhook}?hmac={digest}", delivery.wire_json(tampered_body), timeout
    )
    signed = _send(http, "POST", f"{webhook}?hmac={digest}", body, timeout)
    forged = _send(
        http,
        "POST",
        f"{webhook}?hmac={digest}",
        delivery.wire_json(field_shift_forgery(callback.body, forged_order_id(probe))),
        timeout,
    )

    if accepted(unsigned) and accepted(tampered):
        results.append(
            _result(
                "PMB-HMAC-001",
                Status.FAIL,
                Severity.CRITICAL,
                f"an unsigned callback was accepted (HTTP {unsigned.status}): HMAC is not enforced",
                "verify the hmac query parameter on every callback and answer 401 when it is "
                "missing or wrong; anyone can otherwise fake a paid order",
            )
        )
        results.append(
            _result(
                "PMB-HMAC-002",
                Status.FAIL,
                Severity.CRITICAL,
                f"a tampered callback was accepted (HTTP {tampered.status}): HMAC is not enforced",
                "compare the computed HMAC with the received one (constant time) before acting",
            )
        )
    else:
        results.append(
            _rejection(
                "PMB-HMAC-001", "unsigned", unsigned, "reject callbacks without hmac with 401"
            )
        )
        results.append(
            _rejection(
                "PMB-HMAC-002",
                "tampered",
                tampered,
                "verify the HMAC over the received values; a changed amount must fail",
            )
        )
    answered = [a for a in (unsigned, tampered, signed) if a.status is not None]
    if answered and all(a.status is not None and a.status >= 500 for a in answered):
        results.insert(
            0,
            _result(
                "PMB-NET-002",
                Status.FAIL,
                Severity.ERROR,
                f"every probe got a server error (last: {_describe(signed)})",
                "check the application's logs: the webhook view fails on every callback",
                ms=round(signed.ms, 1),
            ),
        )
    else:
        results.insert(
            0,
            _result(
                "PMB-NET-002",
                Status.PASS,
                Severity.ERROR,
                f"POST answered in {signed.ms:.0f} ms (HTTP {signed.status})",
                ms=round(signed.ms, 1),
            ),
        )
    if signed.status is None:
        results.append(
            _result(
                "PMB-HMAC-003",
                Status.FAIL,
                Severity.ERROR,
                f"signed → {_describe(signed)}",
                FIX_PENDING,
            )
        )
    elif signed.status >= 500:
        results.append(
            _result(
                "PMB-HMAC-003",
                Status.FAIL,
                Severity.ERROR,
                f"a correctly signed callback crashed the server ({_describe(signed)})",
                "handle callbacks for unknown orders gracefully (the probe's order does not exist)",
            )
        )
    elif signed.status == tampered.status and not accepted(signed):
        results.append(_diagnosed(http, webhook, settings, probe, timeout, secret, signed))
    elif accepted(signed):
        results.append(
            _result(
                "PMB-HMAC-003",
                Status.PASS,
                Severity.ERROR,
                f"signed → HTTP {signed.status} in {signed.ms:.0f} ms: the secrets match",
            )
        )
    else:
        results.append(
            _result(
                "PMB-HMAC-003",
                Status.PASS,
                Severity.ERROR,
                f"signed → HTTP {signed.status} (tampered → {tampered.status}): the signature is "
                "checked before the unknown probe order is rejected",
            )
        )
    results.append(_field_shift_result(signed, forged))
    return results


HMAC_PROBES = ("PMB-HMAC-001", "PMB-HMAC-002", "PMB-HMAC-003", "PMB-HMAC-004", "PMB-HMAC-005")
FIX_FIELD_SHIFT = (
    "check the shape of every signed field (obj.order must be an object with an integer id; "
    "id, amount_cents, owner and integration_id integers; booleans true/false) before "
    "computing the HMAC, and answer 400 otherwise: Paymob's HMAC concatenates values with no "
    "separator, so moving digits between adjacent fields keeps a valid signature"
)


def accepted(answer: Answer) -> bool:
    return answer.status is not None and 200 <= answer.status < 300


def forged_order_id(probe: Probe) -> int:
    """The order the field-shift forgery names (PMB-HMAC-005): another order that cannot
    exist, still ≥ 999,900,000,000."""
    return probe.order_id + 100_000


def field_shift_forgery(body: Mapping[str, Any], other_order: int) -> dict[str, Any]:
    """A signed TRANSACTION body re-shaped so the HMAC still verifies but names another order.

    ``obj.order`` becomes the bare integer ``other_order`` (so the signed ``order.id`` renders
    as "" in implementations that look it up leniently), and the real order id's digits move
    to the front of ``owner``, the next signed field: the concatenated string is unchanged
    (docs/paymob.md §8: no separators). Issue 10; ``listen`` refuses it by its shape.
    """
    obj = dict(body["obj"])
    order = obj["order"]
    order_id = order["id"] if isinstance(order, Mapping) else order
    obj["order"] = other_order
    obj["owner"] = int(f"{order_id}{obj['owner']}")
    return {**body, "obj": obj}


def _field_shift_result(signed: Answer, forged: Answer) -> CheckResult:
    """PMB-HMAC-005: the forged probe must be refused (4xx); conclusive only when the same
    probe, correctly shaped, was accepted."""
    if accepted(forged):
        return _result(
            "PMB-HMAC-005",
            Status.FAIL,
            Severity.CRITICAL,
            f"a field-shift forgery was accepted (HTTP {forged.status}): obj.order sent as a "
            "bare integer, its digits moved into owner, the signature unchanged — anyone holding "
            "one genuine callback can mark another order paid",
            FIX_FIELD_SHIFT,
        )
    if forged.status is None or forged.status >= 500:
        return _result(
            "PMB-HMAC-005",
            Status.FAIL,
            Severity.ERROR,
            f"field-shift forgery → {_describe(forged)}: not a clean 4xx rejection",
            FIX_FIELD_SHIFT,
        )
    if not accepted(signed):
        return _result(
            "PMB-HMAC-005",
            Status.SKIP,
            Severity.CRITICAL,
            f"inconclusive: forgery → HTTP {forged.status}, but the correctly signed probe was "
            f"not accepted either (HTTP {signed.status})",
        )
    return _result(
        "PMB-HMAC-005",
        Status.PASS,
        Severity.CRITICAL,
        f"field-shift forgery → {_describe(forged)} (the same probe, well-formed → "
        f"HTTP {signed.status})",
    )


def _diagnosed(
    http: httpx.Client,
    webhook: str,
    settings: Settings,
    probe: Probe,
    timeout: float,
    secret: str,
    signed: Answer,
) -> CheckResult:
    """PMB-HMAC-003 failed: find which common verification mistake the endpoint makes."""
    found = diagnosis.diagnose(
        http,
        webhook,
        CallbackKind.TRANSACTION,
        secret,
        settings=settings,
        timeout=timeout,
        probe=probe,
    )
    matched = [d.mistake.value for d in found.matched]
    detail = f"signed and tampered callbacks were both rejected with HTTP {signed.status}: "
    return _result(
        "PMB-HMAC-003",
        Status.FAIL,
        Severity.ERROR,
        detail + found.finding(),
        found.fix or FIX_HMAC,
        diagnosis={
            "matched": matched,
            "tried": {t.label: t.status for t in found.tried},
            # used when PMB-API-004 shows the secret is right (see run()); then dropped
            "_secret_matches": detail + found.finding(secret_matches=True),
        },
    )


def _secret_known_right(results: list[CheckResult]) -> None:
    """When Paymob holds the profile's secret (PMB-API-004), a rejected signature is the
    endpoint's code, not the secret: reword PMB-HMAC-003 accordingly."""
    api = next((r for r in results if r.id == "PMB-API-004"), None)
    for index, result in enumerate(results):
        found = result.data.get("diagnosis") if result.id == "PMB-HMAC-003" else None
        if not isinstance(found, dict):
            continue
        reworded = found.pop("_secret_matches", None)
        if api is not None and api.status is Status.PASS and isinstance(reworded, str):
            results[index] = replace(result, detail=reworded)


def _rejection(check: str, what: str, answer: Answer, fix: str) -> CheckResult:
    """A probe that must be rejected with a 4xx: 2xx is critical, a server error an error."""
    if answer.status is not None and 400 <= answer.status < 500:
        return _result(check, Status.PASS, Severity.CRITICAL, f"{what} → {_describe(answer)}")
    if answer.status is not None and 200 <= answer.status < 300:
        return _result(
            check, Status.FAIL, Severity.CRITICAL, f"{what} → {_describe(answer)}: accepted", fix
        )
    return _result(
        check,
        Status.FAIL,
        Severity.ERROR,
        f"{what} → {_describe(answer)}: not a clean 4xx rejection",
        fix + " (a 4xx, not a server error)",
    )


def debug_checks(http: httpx.Client, base: str, timeout: float) -> list[CheckResult]:
    missing = _join(base, f"paymobctl-probe-{secrets.token_hex(6)}/")
    answer = _send(http, "GET", missing, None, timeout)
    results = []
    if answer.status is None:
        results.append(
            _result("PMB-DBG-001", Status.SKIP, Severity.ERROR, f"no answer: {_describe(answer)}")
        )
    else:
        found = next(
            (name for name, pattern in _DEBUG_SIGNATURES if pattern.search(answer.text)), None
        )
        if found:
            results.append(
                _result(
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
                _result(
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
            _result(
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
            _result(
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
    if url is None:
        return [
            _result(
                "PMB-RESP-001",
                Status.SKIP,
                Severity.ERROR,
                "no response path: pass --response-path (or set the profile's response_callback_url)",
            )
        ]
    callback = probe_callback(probe, settings)
    digest = callback.sign(secret) if secret else None
    query = callbacks.encode_params(callbacks.redirect_params(callback.obj, digest))
    answer = _send(http, "GET", f"{url}?{query}", None, timeout)
    loop = redirect_loop(http, "GET", f"{url}?{query}", None, timeout, answer)
    if loop is not None:
        return [
            _result(
                "PMB-RESP-001",
                Status.FAIL,
                Severity.ERROR,
                f"GET {url} is a redirect loop (HTTP {answer.status}): {_loop_text(loop)}",
                FIX_LOOP + ": the payer's browser stops at 'too many redirects'",
            )
        ]
    if answer.status is None or answer.status >= 500:
        return [
            _result(
                "PMB-RESP-001",
                Status.FAIL,
                Severity.ERROR,
                f"GET {url}: {_describe(answer)}",
                "the browser lands here after paying: handle the signed redirect (verify the hmac, show "
                "the result) without a server error",
            )
        ]
    if answer.status == 404:
        return [
            _result(
                "PMB-RESP-001",
                Status.FAIL,
                Severity.WARNING,
                f"GET {url}: HTTP 404",
                "route the transaction response callback path, or pass the right --response-path",
            )
        ]
    return [
        _result(
            "PMB-RESP-001",
            Status.PASS,
            Severity.ERROR,
            f"HTTP {answer.status} in {answer.ms:.0f} ms",
        )
    ]


def redirect_checks(
    http: httpx.Client, scheme: str, host: str, options: Options, headers: dict[str, str] | None
) -> list[CheckResult]:
    results = []
    if scheme != "https":
        return [
            _result("PMB-TLS-007", Status.SKIP, Severity.WARNING, "the target is not https"),
            _result("PMB-TLS-008", Status.SKIP, Severity.WARNING, "the target is not https"),
        ]
    plain = f"http://{host}" + ("" if options.http_port == 80 else f":{options.http_port}") + "/"
    answer = _send(http, "GET", plain, None, options.timeout)
    location = answer.headers.get("location", "")
    if answer.status in (301, 302, 307, 308) and location.startswith("https://"):
        results.append(
            _result(
                "PMB-TLS-007", Status.PASS, Severity.WARNING, f"HTTP {answer.status} → {location}"
            )
        )
    elif answer.status is None:
        results.append(
            _result(
                "PMB-TLS-007",
                Status.PASS,
                Severity.WARNING,
                f"nothing listens on plain http (port {options.http_port})",
            )
        )
    else:
        results.append(
            _result(
                "PMB-TLS-007",
                Status.FAIL,
                Severity.WARNING,
                f"plain http answered {_describe(answer)} without redirecting to https",
                "redirect http to https (301), so no one posts secrets in clear text",
            )
        )
    hsts = (headers or {}).get("strict-transport-security")
    if hsts:
        results.append(
            _result(
                "PMB-TLS-008", Status.PASS, Severity.WARNING, f"Strict-Transport-Security: {hsts}"
            )
        )
    else:
        results.append(
            _result(
                "PMB-TLS-008",
                Status.FAIL,
                Severity.WARNING,
                "no Strict-Transport-Security header",
                "send Strict-Transport-Security: max-age=31536000 (SECURE_HSTS_SECONDS in Django)",
            )
        )
    return results


# --- configuration and the API ---------------------------------------------------------------------


def config_checks(
    settings: Settings,
    scheme: str,
    host: str,
    webhook_path: str,
    response_path: str | None,
    local: bool,
    port: int | None = None,
    base_path: str = "",
) -> list[CheckResult]:
    results = []
    missing = [
        k
        for k in ("api_key", "hmac_secret", "integration_id", "iframe_id")
        if settings.get(k) is None
    ]
    intention = [k for k in ("secret_key", "public_key") if settings.get(k) is None]
    if missing:
        results.append(
            _result(
                "PMB-CFG-001",
                Status.FAIL,
                Severity.ERROR,
                f"profile {settings.profile!r} lacks {', '.join(missing)}",
                "IDs updated / HMAC secret updated: `paymobctl --profile NAME config set KEY VALUE` "
                "with the live dashboard's values",
            )
        )
    elif settings.is_sandbox and not local:
        results.append(
            _result(
                "PMB-CFG-001",
                Status.FAIL,
                Severity.ERROR,
                "the built-in sandbox profile's demo credentials are not a real account's",
                "create a live profile: `paymobctl config import-env /path/to/production/.env`",
            )
        )
    else:
        detail = "api key, HMAC secret, integration and iframe ids present"
        if intention:
            detail += f" (no {', '.join(intention)}: the Intention API will not work)"
        results.append(_result("PMB-CFG-001", Status.PASS, Severity.ERROR, detail))
    if settings.is_live:
        results.append(
            _result(
                "PMB-CFG-002",
                Status.PASS,
                Severity.WARNING,
                f"profile {settings.profile!r} is live",
            )
        )
    elif local:
        results.append(
            _result(
                "PMB-CFG-002",
                Status.INFO,
                Severity.INFO,
                f"profile {settings.profile!r} is in test mode (fine for a local target)",
            )
        )
    else:
        results.append(
            _result(
                "PMB-CFG-002",
                Status.FAIL,
                Severity.WARNING,
                f"profile {settings.profile!r} is in test mode",
                "go-live uses the live API key, integration and iframe ids and HMAC secret: check "
                'with a live profile (mode = "live")',
            )
        )
    for check, key, path in (
        ("PMB-CFG-003", "processed_callback_url", webhook_path),
        ("PMB-CFG-004", "response_callback_url", response_path),
    ):
        results.append(
            _callback_url_check(check, settings, key, scheme, host, path, local, port, base_path)
        )
    return results


def _callback_url_check(
    check: str,
    settings: Settings,
    key: str,
    scheme: str,
    host: str,
    path: str | None,
    local: bool,
    port: int | None,
    base_path: str = "",
) -> CheckResult:
    value = settings.get(key)
    severity = Severity.ERROR if check == "PMB-CFG-003" else Severity.WARNING
    if not isinstance(value, str):
        return _result(
            check,
            Status.FAIL if not local else Status.INFO,
            severity if not local else Severity.INFO,
            f"{key} is not set in the profile",
            f"set it to the URL configured in Paymob's dashboard: `paymobctl config set {key} URL`",
        )
    parts = urlsplit(value)
    problems = []
    if parts.scheme != "https" and not local:
        problems.append("not https")
    tunnel_host = parts.hostname or ""
    if is_tunnel_host(tunnel_host):
        problems.append(f"a tunnel ({tunnel_host})")
    elif is_local(tunnel_host) and not local:
        problems.append("localhost")
    elif tunnel_host != host:
        problems.append(f"another host ({tunnel_host})")
    elif port is not None and (parts.port or (443 if parts.scheme == "https" else 80)) != port:
        problems.append(f"another port ({parts.port or 'default'})")
    expected_path = (base_path.rstrip("/") + "/" + path.lstrip("/")) if path else None
    if expected_path and parts.path.rstrip("/") != expected_path.rstrip("/"):
        problems.append(f"another path ({parts.path})")
    if problems:
        default_port = 443 if scheme == "https" else 80
        netloc = host if port in (None, default_port) else f"{host}:{port}"
        if local:  # a local target is usually not what the dashboard points at: say so, don't fail
            return _result(
                check,
                Status.INFO,
                Severity.INFO,
                f"{key} = {value}: " + ", ".join(problems) + " (informational for a local target)",
            )
        return _result(
            check,
            Status.FAIL,
            severity,
            f"{key} = {value}: " + ", ".join(problems),
            f"Webhook configured: set it to https://{netloc}{expected_path or '/your/callback/path/'} in "
            "Paymob's dashboard and the profile (production https URLs, never a tunnel)",
        )
    return _result(check, Status.PASS, severity, f"{key} = {value}")


def api_checks(client: PaymobClient, settings: Settings) -> list[CheckResult]:
    results = []
    try:
        client.auth_token()
    except PaymobctlError as exc:
        results.append(
            _result(
                "PMB-API-001", Status.FAIL, Severity.CRITICAL, exc.message, exc.hint or FIX_DEPOSIT
            )
        )
        for check in ("PMB-API-002", "PMB-API-003", "PMB-API-004"):
            results.append(_result(check, Status.SKIP, Severity.ERROR, "authentication failed"))
        return results
    results.append(
        _result(
            "PMB-API-001", Status.PASS, Severity.CRITICAL, f"authenticated at {client.base_url}"
        )
    )
    integration = settings.get("integration_id")
    try:
        listed = {
            number: i
            for i in client.integrations()
            if (number := lenient_int(i.get("id"), minimum=0)) is not None
        }
    except PaymobctlError as exc:
        listed = {}
        results.append(
            _result(
                "PMB-API-002",
                Status.FAIL,
                Severity.ERROR,
                f"cannot list integrations: {exc.message}",
                exc.hint,
            )
        )
    else:
        found = listed.get(integration) if isinstance(integration, int) else None
        if found is None:
            results.append(
                _result(
                    "PMB-API-002",
                    Status.FAIL,
                    Severity.ERROR,
                    f"integration {integration} is not in this account",
                    "IDs updated: use the integration id of this mode (test and live differ) from "
                    "Developers → Payment Integrations",
                )
            )
        else:
            problems = []
            if bool(found.get("is_live")) != settings.is_live:
                problems.append(
                    f"it is a {'live' if found.get('is_live') else 'test'} integration but the profile "
                    f"is in {settings.mode.value} mode"
                )
            if str(found.get("currency", "")).upper() != settings.currency:
                problems.append(
                    f"its currency is {found.get('currency')}, the profile's {settings.currency}"
                )
            if problems:
                results.append(
                    _result(
                        "PMB-API-002",
                        Status.FAIL,
                        Severity.ERROR,
                        f"integration {integration}: " + "; ".join(problems),
                        "use an integration of this mode and currency",
                    )
                )
            else:
                results.append(
                    _result(
                        "PMB-API-002",
                        Status.PASS,
                        Severity.ERROR,
                        f"integration {integration}: {found.get('integration_type', 'online')}, "
                        f"{found.get('currency')}, {'live' if found.get('is_live') else 'test'}",
                    )
                )
    results.append(_iframe_check(client, settings))
    try:
        held = client.hmac_secret()
    except PaymobctlError as exc:
        results.append(
            _result(
                "PMB-API-004",
                Status.FAIL,
                Severity.ERROR,
                f"cannot read it: {exc.message}",
                exc.hint,
            )
        )
    else:
        configured = settings.secret("hmac_secret")
        if configured is None:
            results.append(
                _result(
                    "PMB-API-004",
                    Status.FAIL,
                    Severity.ERROR,
                    "no HMAC secret in the profile",
                    FIX_HMAC,
                )
            )
        elif _hmac.compare_digest(held.encode(), configured.reveal().encode()):
            results.append(
                _result(
                    "PMB-API-004",
                    Status.PASS,
                    Severity.ERROR,
                    "equal (compared in constant time; neither is printed)",
                )
            )
        else:
            results.append(
                _result(
                    "PMB-API-004",
                    Status.FAIL,
                    Severity.CRITICAL,
                    "the HMAC secret Paymob holds differs from the profile's",
                    FIX_HMAC,
                )
            )
    return results


def _iframe_check(client: PaymobClient, settings: Settings) -> CheckResult:
    import httpx

    iframe = settings.get("iframe_id")
    if not isinstance(iframe, int):
        return _result(
            "PMB-API-003", Status.FAIL, Severity.ERROR, "no iframe_id in the profile", FIX_IFRAME
        )
    url = f"{client.base_url}/api/acceptance/iframes/{iframe}"
    try:
        response = outbound.request(client.http, "GET", url, timeout=client.timeout)
    except httpx.HTTPError as exc:
        return _result(
            "PMB-API-003", Status.FAIL, Severity.ERROR, f"cannot load {url}: {exc}", FIX_IFRAME
        )
    if response.status_code == 404:
        return _result(
            "PMB-API-003",
            Status.FAIL,
            Severity.ERROR,
            f"iframe {iframe} does not exist (HTTP 404)",
            FIX_IFRAME,
        )
    return _result(
        "PMB-API-003",
        Status.PASS,
        Severity.ERROR,
        f"iframe {iframe} exists (HTTP {response.status_code})",
    )


# --- running it all --------------------------------------------------------------------------------


def run(
    options: Options,
    settings: Settings,
    *,
    http_factory: Callable[[bool | ssl.SSLContext], httpx.Client],
    client_factory: Callable[[httpx.Client], PaymobClient] | None,
    now: datetime | None = None,
) -> Report:
    """Run every check, concurrently where they are independent."""
    scheme, host, port, base_path = parse_target(options.url)
    base = (
        f"{scheme}://{host}"
        + ("" if port == (443 if scheme == "https" else 80) else f":{port}")
        + base_path
    )
    local = is_local(host)
    started = time.perf_counter()
    moment = now or datetime.now(UTC)
    probe = make_probe()
    results: list[CheckResult] = []

    def finish(response_path: str | None, *, reachable: bool) -> Report:
        """The configuration checks (they need no connection), then the report."""
        results.extend(
            config_checks(
                settings, scheme, host, options.webhook_path, response_path, local, port, base_path
            )
        )
        return Report(
            options.url,
            settings.profile,
            settings.mode.value,
            moment.isoformat(timespec="seconds"),
            (time.perf_counter() - started) * 1000,
            probe,
            _ordered(results),
            reachable=reachable,
        )

    tcp = _tcp(host, port, options.timeout)
    if tcp is not None:
        results.append(
            _result(
                "PMB-NET-001",
                Status.FAIL,
                Severity.CRITICAL,
                f"cannot connect to {host}:{port} ({tcp})",
                FIX_PENDING,
            )
        )
        return finish(options.response_path, reachable=False)
    results.append(
        _result("PMB-NET-001", Status.PASS, Severity.CRITICAL, f"{host}:{port} accepts connections")
    )
    if scheme == "https":
        results.append(_result("PMB-TLS-001", Status.PASS, Severity.ERROR, "https"))
    else:
        results.append(
            _result(
                "PMB-TLS-001",
                Status.FAIL,
                Severity.ERROR if not local else Severity.WARNING,
                f"{options.url} is plain http",
                "SSL validated: Paymob's webhooks require a valid HTTPS URL (e.g. Let's Encrypt)",
            )
        )

    secret_value = settings.secret("hmac_secret")
    secret = secret_value.reveal() if secret_value else None
    webhook = _join(base, options.webhook_path)
    response_path = options.response_path or _response_path_from_profile(settings, host)
    response_url = _join(base, response_path) if response_path else None
    use_api = options.api if options.api is not None else settings.get("api_key") is not None

    verify: bool | ssl.SSLContext = True
    if scheme == "https":
        tls = tls_checks(host, port, options, moment)
        results.extend(tls)
        broken = any(
            r.failed and r.id in ("PMB-TLS-002", "PMB-TLS-003", "PMB-TLS-004") for r in tls
        )
        if broken:
            verify = False  # keep checking the application; the TLS findings above stand
        elif options.ca_bundle:
            verify = ssl.create_default_context(cafile=options.ca_bundle)

    with http_factory(verify) as http, ThreadPoolExecutor(max_workers=5) as pool:
        home = pool.submit(_send, http, "GET", _join(base, ""), None, options.timeout)
        jobs = [
            pool.submit(webhook_checks, http, webhook, settings, probe, options.timeout, secret),
            pool.submit(debug_checks, http, base, options.timeout),
            pool.submit(
                response_checks, http, response_url, settings, probe, options.timeout, secret
            ),
        ]
        api_job = None
        if use_api and client_factory is not None:
            api_job = pool.submit(_api_with_own_client, http_factory, client_factory, settings)
        for job in jobs:
            results.extend(job.result())
        results.extend(redirect_checks(http, scheme, host, options, home.result().headers))
        if api_job is not None:
            results.extend(api_job.result())
        else:
            for check in ("PMB-API-001", "PMB-API-002", "PMB-API-003", "PMB-API-004"):
                results.append(
                    _result(
                        check,
                        Status.SKIP,
                        Severity.ERROR,
                        "--no-api" if options.api is False else "no API key in the profile",
                    )
                )
    _secret_known_right(results)
    return finish(response_path, reachable=True)


def _api_with_own_client(
    http_factory: Callable[[bool | ssl.SSLContext], httpx.Client],
    client_factory: Callable[[httpx.Client], PaymobClient],
    settings: Settings,
) -> list[CheckResult]:
    with http_factory(True) as http:
        return api_checks(client_factory(http), settings)


def _response_path_from_profile(settings: Settings, host: str) -> str | None:
    value = settings.get("response_callback_url")
    if isinstance(value, str) and urlsplit(value).hostname == host:
        return urlsplit(value).path or None
    return None


def _tcp(host: str, port: int, timeout: float) -> str | None:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except OSError as exc:
        return exc.strerror or str(exc) or type(exc).__name__


_ORDER = {check: index for index, check in enumerate(CHECKS)}


def _ordered(results: Sequence[CheckResult]) -> list[CheckResult]:
    return sorted(results, key=lambda r: _ORDER.get(r.id, 999))
