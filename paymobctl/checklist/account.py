"""The profile and the Paymob account: the values go-live needs, the callback URLs configured,
and what the API says (authentication, the integration, the iframe, the HMAC secret it holds).

The API checks only authenticate and read; the secrets are compared in constant time and never
shown.
"""

from __future__ import annotations

import hmac as _hmac
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from paymobctl import outbound
from paymobctl.checklist.registry import FIX_DEPOSIT, FIX_HMAC, FIX_IFRAME, check_result
from paymobctl.checklist.results import CheckResult, Severity, Status
from paymobctl.errors import PaymobctlError
from paymobctl.models import is_local, is_tunnel_host, lenient_int

if TYPE_CHECKING:
    from paymobctl.client import PaymobClient
    from paymobctl.config import Settings


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
    """PMB-CFG-001..004: the profile's values, its mode, and its callback URLs against the target."""
    results = []
    missing = [
        k
        for k in ("api_key", "hmac_secret", "integration_id", "iframe_id")
        if settings.get(k) is None
    ]
    intention = [k for k in ("secret_key", "public_key") if settings.get(k) is None]
    if missing:
        results.append(
            check_result(
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
            check_result(
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
        results.append(check_result("PMB-CFG-001", Status.PASS, Severity.ERROR, detail))
    if settings.is_live:
        results.append(
            check_result(
                "PMB-CFG-002",
                Status.PASS,
                Severity.WARNING,
                f"profile {settings.profile!r} is live",
            )
        )
    elif local:
        results.append(
            check_result(
                "PMB-CFG-002",
                Status.INFO,
                Severity.INFO,
                f"profile {settings.profile!r} is in test mode (fine for a local target)",
            )
        )
    else:
        results.append(
            check_result(
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
    """PMB-CFG-003/004: the profile's callback URL ``key`` points at this deployment's ``path``."""
    value = settings.get(key)
    severity = Severity.ERROR if check == "PMB-CFG-003" else Severity.WARNING
    if not isinstance(value, str):
        return check_result(
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
            return check_result(
                check,
                Status.INFO,
                Severity.INFO,
                f"{key} = {value}: " + ", ".join(problems) + " (informational for a local target)",
            )
        return check_result(
            check,
            Status.FAIL,
            severity,
            f"{key} = {value}: " + ", ".join(problems),
            f"Webhook configured: set it to https://{netloc}{expected_path or '/your/callback/path/'} in "
            "Paymob's dashboard and the profile (production https URLs, never a tunnel)",
        )
    return check_result(check, Status.PASS, severity, f"{key} = {value}")


def api_checks(client: PaymobClient, settings: Settings) -> list[CheckResult]:
    """PMB-API-001..004: authentication, the integration, the iframe, the HMAC secret held."""
    results = []
    try:
        client.auth_token()
    except PaymobctlError as exc:
        results.append(
            check_result(
                "PMB-API-001", Status.FAIL, Severity.CRITICAL, exc.message, exc.hint or FIX_DEPOSIT
            )
        )
        for check in ("PMB-API-002", "PMB-API-003", "PMB-API-004"):
            results.append(
                check_result(check, Status.SKIP, Severity.ERROR, "authentication failed")
            )
        return results
    results.append(
        check_result(
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
            check_result(
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
                check_result(
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
                    check_result(
                        "PMB-API-002",
                        Status.FAIL,
                        Severity.ERROR,
                        f"integration {integration}: " + "; ".join(problems),
                        "use an integration of this mode and currency",
                    )
                )
            else:
                results.append(
                    check_result(
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
            check_result(
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
                check_result(
                    "PMB-API-004",
                    Status.FAIL,
                    Severity.ERROR,
                    "no HMAC secret in the profile",
                    FIX_HMAC,
                )
            )
        elif _hmac.compare_digest(held.encode(), configured.reveal().encode()):
            results.append(
                check_result(
                    "PMB-API-004",
                    Status.PASS,
                    Severity.ERROR,
                    "equal (compared in constant time; neither is printed)",
                )
            )
        else:
            results.append(
                check_result(
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
        return check_result(
            "PMB-API-003", Status.FAIL, Severity.ERROR, "no iframe_id in the profile", FIX_IFRAME
        )
    url = f"{client.base_url}/api/acceptance/iframes/{iframe}"
    try:
        response = outbound.request(client.http, "GET", url, timeout=client.timeout)
    except httpx.HTTPError as exc:
        return check_result(
            "PMB-API-003", Status.FAIL, Severity.ERROR, f"cannot load {url}: {exc}", FIX_IFRAME
        )
    if response.status_code == 404:
        return check_result(
            "PMB-API-003",
            Status.FAIL,
            Severity.ERROR,
            f"iframe {iframe} does not exist (HTTP 404)",
            FIX_IFRAME,
        )
    return check_result(
        "PMB-API-003",
        Status.PASS,
        Severity.ERROR,
        f"iframe {iframe} exists (HTTP {response.status_code})",
    )
