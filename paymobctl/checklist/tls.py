"""TLS checks: three handshakes that isolate the failure, the http → https redirect and HSTS.

The handshakes are full verification; chain and name ignoring dates (OpenSSL's NO_CHECK_TIME);
chain alone. So an expired certificate still shows its dates and a wrong hostname is not
reported as an untrusted chain.
"""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from paymobctl.checklist.probes import describe, send
from paymobctl.checklist.registry import check_result
from paymobctl.checklist.results import CheckResult, Options, Severity, Status

if TYPE_CHECKING:
    import httpx

_NO_CHECK_TIME = 0x200000  # OpenSSL X509_V_FLAG_NO_CHECK_TIME: verify the chain, ignore the dates


@dataclass
class TlsFacts:
    """What the handshakes found (None: unknown); ``error`` when none completed."""

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
    """PMB-TLS-002..006: trusted chain, hostname, validity dates, days left, protocol version."""
    facts = inspect_tls(host, port, options.timeout, options.ca_bundle)
    if facts.error:
        return [
            check_result(
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
        results.append(check_result("PMB-TLS-002", Status.PASS, Severity.CRITICAL, "trusted chain"))
    else:
        results.append(
            check_result(
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
            check_result(
                "PMB-TLS-003", Status.SKIP, Severity.ERROR, "unknown: the chain is not trusted"
            )
        )
    elif facts.hostname_ok:
        results.append(
            check_result("PMB-TLS-003", Status.PASS, Severity.ERROR, f"valid for {host}")
        )
    else:
        results.append(
            check_result(
                "PMB-TLS-003",
                Status.FAIL,
                Severity.ERROR,
                f"the certificate is not valid for {host}",
                f"issue the certificate for {host} (or use the hostname it was issued for)",
            )
        )
    if facts.not_after is None:
        results.append(
            check_result(
                "PMB-TLS-004", Status.SKIP, Severity.CRITICAL, "unknown: the chain is not trusted"
            )
        )
        results.append(
            check_result(
                "PMB-TLS-005", Status.SKIP, Severity.WARNING, "unknown: the chain is not trusted"
            )
        )
    else:
        days = (facts.not_after - now).total_seconds() / 86400
        if facts.dates_ok is False or days < 0:
            results.append(
                check_result(
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
                check_result(
                    "PMB-TLS-004", Status.PASS, Severity.CRITICAL, "within its validity dates"
                )
            )
        whole = int(days)
        if days < 7:
            severity, status = Severity.ERROR, Status.FAIL
        elif days < 21:
            severity, status = Severity.WARNING, Status.FAIL
        else:
            severity, status = Severity.WARNING, Status.PASS
        results.append(
            check_result(
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
        results.append(
            check_result("PMB-TLS-006", Status.PASS, Severity.ERROR, f"negotiated {version}")
        )
    else:
        results.append(
            check_result(
                "PMB-TLS-006",
                Status.FAIL,
                Severity.ERROR,
                f"negotiated {version or 'nothing'}",
                "enable TLS 1.2 or 1.3 and disable older versions",
            )
        )
    return results


def redirect_checks(
    http: httpx.Client, scheme: str, host: str, options: Options, headers: dict[str, str] | None
) -> list[CheckResult]:
    """PMB-TLS-007/008: plain http redirects to https; the home page sends HSTS (``headers``)."""
    results = []
    if scheme != "https":
        return [
            check_result("PMB-TLS-007", Status.SKIP, Severity.WARNING, "the target is not https"),
            check_result("PMB-TLS-008", Status.SKIP, Severity.WARNING, "the target is not https"),
        ]
    plain = f"http://{host}" + ("" if options.http_port == 80 else f":{options.http_port}") + "/"
    answer = send(http, "GET", plain, None, options.timeout)
    location = answer.headers.get("location", "")
    if answer.status in (301, 302, 307, 308) and location.startswith("https://"):
        results.append(
            check_result(
                "PMB-TLS-007", Status.PASS, Severity.WARNING, f"HTTP {answer.status} → {location}"
            )
        )
    elif answer.status is None:
        results.append(
            check_result(
                "PMB-TLS-007",
                Status.PASS,
                Severity.WARNING,
                f"nothing listens on plain http (port {options.http_port})",
            )
        )
    else:
        results.append(
            check_result(
                "PMB-TLS-007",
                Status.FAIL,
                Severity.WARNING,
                f"plain http answered {describe(answer)} without redirecting to https",
                "redirect http to https (301), so no one posts secrets in clear text",
            )
        )
    hsts = (headers or {}).get("strict-transport-security")
    if hsts:
        results.append(
            check_result(
                "PMB-TLS-008", Status.PASS, Severity.WARNING, f"Strict-Transport-Security: {hsts}"
            )
        )
    else:
        results.append(
            check_result(
                "PMB-TLS-008",
                Status.FAIL,
                Severity.WARNING,
                "no Strict-Transport-Security header",
                "send Strict-Transport-Security: max-age=31536000 (SECURE_HSTS_SECONDS in Django)",
            )
        )
    return results
