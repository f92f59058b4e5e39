"""The webhook conformance suite behind ``paymobctl webhook test``: cases, their requests, grades.

Cases are data: a stable id, a severity, the answer a correct receiver gives, one line on what it
does and why, and a fix. :func:`run` sends every case's requests to the developer's endpoint and
grades the answers; nothing here prints. Every request is harmless by construction, like the
checklist's probes: order ids at or above 999,900,000,000 that no real order has,
``merchant_order_id = paymobctl-probe-…``, and declined transactions wherever a valid delivery is
not the point of the case. Payloads come from :mod:`paymobctl.callbacks`, so they are Paymob's
shapes; the forgeries change a correctly signed callback the way an attacker would.
"""

from paymobctl.conformance.cases import CASES, CONCURRENT, Case, Expect
from paymobctl.conformance.probes import (
    BUILDERS,
    GET_CASES,
    ONE_MB,
    PROBE_ORDER_BASE,
    PROBE_TRANSACTION_BASE,
    Target,
    requests_for,
)
from paymobctl.conformance.suite import CaseResult, Report, grade, run

__all__ = [
    "BUILDERS",
    "CASES",
    "CONCURRENT",
    "GET_CASES",
    "ONE_MB",
    "PROBE_ORDER_BASE",
    "PROBE_TRANSACTION_BASE",
    "Case",
    "CaseResult",
    "Expect",
    "Report",
    "Target",
    "grade",
    "requests_for",
    "run",
]
