"""The checks' registry: stable ids and titles, the shared fixes, and building a result."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from paymobctl.checklist.results import CheckResult, Severity, Status

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


def check_result(
    check_id: str,
    status: Status,
    severity: Severity,
    detail: str,
    hint: str | None = None,
    **data: Any,
) -> CheckResult:
    """The result of ``check_id``: area and title from :data:`CHECKS`, a hint only on failure."""
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


_ORDER = {check: index for index, check in enumerate(CHECKS)}


def ordered(results: Sequence[CheckResult]) -> list[CheckResult]:
    """``results`` in the order of :data:`CHECKS` (the README's order)."""
    return sorted(results, key=lambda r: _ORDER.get(r.id, 999))
