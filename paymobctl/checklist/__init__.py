"""The go-live checklist, run against a real deployment: checks that return results, never print.

Every probe is harmless by construction: signed probes are *declined* test transactions for an
order id that cannot exist (``merchant_order_id`` says ``paymobctl-probe-…``), so even an
application that wrongly accepted one would record a failed payment of an unknown order. The
API checks only authenticate and read (integrations, the HMAC secret, the iframe page).

- :mod:`.results`: options, :class:`CheckResult`, the graded :class:`Report`
- :mod:`.registry`: the checks' stable ids and titles (:data:`CHECKS`), the shared fixes
- :mod:`.tls`: the three handshakes, the http → https redirect, HSTS
- :mod:`.probes`: sending probes (through :mod:`paymobctl.delivery`), debug and response pages
- :mod:`.webhook`: reachability, CSRF, HMAC enforcement, the field-shift forgery
- :mod:`.account`: the profile's values and callback URLs, the Paymob API
- :mod:`.runner`: :func:`run`, everything concurrently where independent
- :mod:`.history`: stored runs and what changed between the last two (``history --diff``)
"""

from paymobctl.checklist.account import api_checks, config_checks
from paymobctl.checklist.registry import (
    CHECKS,
    FIX_CSRF,
    FIX_DEPOSIT,
    FIX_HMAC,
    FIX_IFRAME,
    FIX_PENDING,
)
from paymobctl.checklist.results import CheckResult, Graded, Options, Report, Severity, Status
from paymobctl.checklist.runner import parse_target, run
from paymobctl.checklist.tls import inspect_tls, tls_checks
from paymobctl.checklist.webhook import (
    HMAC_PROBES,
    field_shift_forgery,
    forged_order_id,
    webhook_checks,
)
from paymobctl.diagnosis import Probe, make_probe, probe_callback

__all__ = [
    "CHECKS",
    "FIX_CSRF",
    "FIX_DEPOSIT",
    "FIX_HMAC",
    "FIX_IFRAME",
    "FIX_PENDING",
    "HMAC_PROBES",
    "CheckResult",
    "Graded",
    "Options",
    "Probe",
    "Report",
    "Severity",
    "Status",
    "api_checks",
    "config_checks",
    "field_shift_forgery",
    "forged_order_id",
    "inspect_tls",
    "make_probe",
    "parse_target",
    "probe_callback",
    "run",
    "tls_checks",
    "webhook_checks",
]
