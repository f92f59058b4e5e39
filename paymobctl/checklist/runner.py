"""Running the checklist: the target parsed, the checks run concurrently, the report assembled.

The webhook probes, the debug probe, the response redirect and the API checks run in a thread
pool; the TLS handshakes first, since a broken certificate decides how the others connect.
"""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from paymobctl.checklist.account import api_checks, config_checks
from paymobctl.checklist.probes import debug_checks, join, response_checks, send
from paymobctl.checklist.registry import FIX_PENDING, check_result, ordered
from paymobctl.checklist.results import CheckResult, Options, Report, Severity, Status
from paymobctl.checklist.tls import redirect_checks, tls_checks
from paymobctl.checklist.webhook import secret_known_right, webhook_checks
from paymobctl.diagnosis import make_probe
from paymobctl.errors import UsageError
from paymobctl.models import is_local

if TYPE_CHECKING:
    import httpx

    from paymobctl.client import PaymobClient
    from paymobctl.config import Settings


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
            ordered(results),
            reachable=reachable,
        )

    tcp = _tcp(host, port, options.timeout)
    if tcp is not None:
        results.append(
            check_result(
                "PMB-NET-001",
                Status.FAIL,
                Severity.CRITICAL,
                f"cannot connect to {host}:{port} ({tcp})",
                FIX_PENDING,
            )
        )
        return finish(options.response_path, reachable=False)
    results.append(
        check_result(
            "PMB-NET-001", Status.PASS, Severity.CRITICAL, f"{host}:{port} accepts connections"
        )
    )
    if scheme == "https":
        results.append(check_result("PMB-TLS-001", Status.PASS, Severity.ERROR, "https"))
    else:
        results.append(
            check_result(
                "PMB-TLS-001",
                Status.FAIL,
                Severity.ERROR if not local else Severity.WARNING,
                f"{options.url} is plain http",
                "SSL validated: Paymob's webhooks require a valid HTTPS URL (e.g. Let's Encrypt)",
            )
        )

    secret_value = settings.secret("hmac_secret")
    secret = secret_value.reveal() if secret_value else None
    webhook = join(base, options.webhook_path)
    response_path = options.response_path or _response_path_from_profile(settings, host)
    response_url = join(base, response_path) if response_path else None
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
        home = pool.submit(send, http, "GET", join(base, ""), None, options.timeout)
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
                    check_result(
                        check,
                        Status.SKIP,
                        Severity.ERROR,
                        "--no-api" if options.api is False else "no API key in the profile",
                    )
                )
    secret_known_right(results)
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
