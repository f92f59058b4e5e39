"""The webhook path's checks: reachability, CSRF, HMAC enforcement, the field-shift forgery.

Signed probes are declined test transactions for an order that cannot exist (see
:func:`paymobctl.diagnosis.make_probe`); when a correctly signed one is rejected like a tampered
one, :func:`paymobctl.diagnosis.diagnose` names the verification mistake.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from paymobctl import delivery, diagnosis
from paymobctl.checklist.probes import (
    FIX_LOOP,
    Answer,
    describe,
    is_csrf,
    loop_text,
    redirect_loop,
    send,
)
from paymobctl.checklist.registry import FIX_CSRF, FIX_HMAC, FIX_PENDING, check_result
from paymobctl.checklist.results import CheckResult, Severity, Status
from paymobctl.diagnosis import Probe, probe_callback
from paymobctl.models import CallbackKind

if TYPE_CHECKING:
    import httpx

    from paymobctl.config import Settings

HMAC_PROBES = ("PMB-HMAC-001", "PMB-HMAC-002", "PMB-HMAC-003", "PMB-HMAC-004", "PMB-HMAC-005")
FIX_FIELD_SHIFT = (
    "check the shape of every signed field (obj.order must be an object with an integer id; "
    "id, amount_cents, owner and integration_id integers; booleans true/false) before "
    "computing the HMAC, and answer 400 otherwise: Paymob's HMAC concatenates values with no "
    "separator, so moving digits between adjacent fields keeps a valid signature"
)


def webhook_checks(
    http: httpx.Client,
    webhook: str,
    settings: Settings,
    probe: Probe,
    timeout: float,
    secret: str | None,
) -> list[CheckResult]:
    """PMB-NET-002, PMB-CSRF-001 and PMB-HMAC-001..005: unsigned, tampered, signed and forged
    probes POSTed to the webhook path (without ``secret``, only the unsigned one)."""
    callback = probe_callback(probe, settings)
    body = delivery.wire_json(callback.body)
    unsigned = send(http, "POST", webhook, body, timeout)
    results: list[CheckResult] = []

    if unsigned.status is None:
        results.append(
            check_result(
                "PMB-NET-002",
                Status.FAIL,
                Severity.CRITICAL,
                f"POST {webhook}: {describe(unsigned)}",
                FIX_PENDING,
                ms=round(unsigned.ms, 1),
            )
        )
        return results
    loop = redirect_loop(http, "POST", webhook, body, timeout, unsigned)
    if loop is not None:
        results.append(
            check_result(
                "PMB-NET-002",
                Status.FAIL,
                Severity.CRITICAL,
                f"POST {webhook} is a redirect loop (HTTP {unsigned.status}): {loop_text(loop)}",
                FIX_LOOP + ": Paymob gets no answer, so the callback is never processed",
                ms=round(unsigned.ms, 1),
            )
        )
        for check in ("PMB-CSRF-001", *HMAC_PROBES):
            results.append(
                check_result(
                    check, Status.SKIP, Severity.CRITICAL, "the webhook path is a redirect loop"
                )
            )
        return results
    if unsigned.status in (404, 405):
        results.append(
            check_result(
                "PMB-NET-002",
                Status.FAIL,
                Severity.ERROR,
                f"POST {webhook} answered {describe(unsigned)} in {unsigned.ms:.0f} ms",
                "route the webhook path for POST (Paymob POSTs to it) — " + FIX_PENDING,
                ms=round(unsigned.ms, 1),
            )
        )
        return results
    if is_csrf(unsigned):
        results.append(
            check_result(
                "PMB-NET-002",
                Status.PASS,
                Severity.ERROR,
                f"POST answered HTTP {unsigned.status} in {unsigned.ms:.0f} ms",
                ms=round(unsigned.ms, 1),
            )
        )
        results.append(
            check_result(
                "PMB-CSRF-001",
                Status.FAIL,
                Severity.CRITICAL,
                f"the POST was rejected by CSRF protection ({describe(unsigned)})",
                FIX_CSRF,
            )
        )
        for check in HMAC_PROBES:
            results.append(
                check_result(
                    check, Status.SKIP, Severity.CRITICAL, "blocked by CSRF before the HMAC check"
                )
            )
        return results
    results.append(
        check_result(
            "PMB-CSRF-001", Status.PASS, Severity.CRITICAL, "not blocked by CSRF protection"
        )
    )

    if unsigned.status >= 500:
        results.append(
            check_result(
                "PMB-HMAC-004",
                Status.FAIL,
                Severity.ERROR,
                f"a callback without hmac crashed the server ({describe(unsigned)})",
                "treat a missing hmac as invalid: answer 4xx (e.g. 401 'Invalid HMAC Signature')",
            )
        )
    else:
        results.append(
            check_result(
                "PMB-HMAC-004", Status.PASS, Severity.ERROR, f"no crash (HTTP {unsigned.status})"
            )
        )

    if secret is None:
        results.append(
            check_result(
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
                check_result(
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
    tampered = send(
        http, "POST", f"{webhook}?hmac={digest}", delivery.wire_json(tampered_body), timeout
    )
    signed = send(http, "POST", f"{webhook}?hmac={digest}", body, timeout)
    forged = send(
        http,
        "POST",
        f"{webhook}?hmac={digest}",
        delivery.wire_json(field_shift_forgery(callback.body, forged_order_id(probe))),
        timeout,
    )

    if accepted(unsigned) and accepted(tampered):
        results.append(
            check_result(
                "PMB-HMAC-001",
                Status.FAIL,
                Severity.CRITICAL,
                f"an unsigned callback was accepted (HTTP {unsigned.status}): HMAC is not enforced",
                "verify the hmac query parameter on every callback and answer 401 when it is "
                "missing or wrong; anyone can otherwise fake a paid order",
            )
        )
        results.append(
            check_result(
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
            check_result(
                "PMB-NET-002",
                Status.FAIL,
                Severity.ERROR,
                f"every probe got a server error (last: {describe(signed)})",
                "check the application's logs: the webhook view fails on every callback",
                ms=round(signed.ms, 1),
            ),
        )
    else:
        results.insert(
            0,
            check_result(
                "PMB-NET-002",
                Status.PASS,
                Severity.ERROR,
                f"POST answered in {signed.ms:.0f} ms (HTTP {signed.status})",
                ms=round(signed.ms, 1),
            ),
        )
    if signed.status is None:
        results.append(
            check_result(
                "PMB-HMAC-003",
                Status.FAIL,
                Severity.ERROR,
                f"signed → {describe(signed)}",
                FIX_PENDING,
            )
        )
    elif signed.status >= 500:
        results.append(
            check_result(
                "PMB-HMAC-003",
                Status.FAIL,
                Severity.ERROR,
                f"a correctly signed callback crashed the server ({describe(signed)})",
                "handle callbacks for unknown orders gracefully (the probe's order does not exist)",
            )
        )
    elif signed.status == tampered.status and not accepted(signed):
        results.append(_diagnosed(http, webhook, settings, probe, timeout, secret, signed))
    elif accepted(signed):
        results.append(
            check_result(
                "PMB-HMAC-003",
                Status.PASS,
                Severity.ERROR,
                f"signed → HTTP {signed.status} in {signed.ms:.0f} ms: the secrets match",
            )
        )
    else:
        results.append(
            check_result(
                "PMB-HMAC-003",
                Status.PASS,
                Severity.ERROR,
                f"signed → HTTP {signed.status} (tampered → {tampered.status}): the signature is "
                "checked before the unknown probe order is rejected",
            )
        )
    results.append(_field_shift_result(signed, forged))
    return results


def accepted(answer: Answer) -> bool:
    """Whether the probe was accepted (a 2xx)."""
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
        return check_result(
            "PMB-HMAC-005",
            Status.FAIL,
            Severity.CRITICAL,
            f"a field-shift forgery was accepted (HTTP {forged.status}): obj.order sent as a "
            "bare integer, its digits moved into owner, the signature unchanged — anyone holding "
            "one genuine callback can mark another order paid",
            FIX_FIELD_SHIFT,
        )
    if forged.status is None or forged.status >= 500:
        return check_result(
            "PMB-HMAC-005",
            Status.FAIL,
            Severity.ERROR,
            f"field-shift forgery → {describe(forged)}: not a clean 4xx rejection",
            FIX_FIELD_SHIFT,
        )
    if not accepted(signed):
        return check_result(
            "PMB-HMAC-005",
            Status.SKIP,
            Severity.CRITICAL,
            f"inconclusive: forgery → HTTP {forged.status}, but the correctly signed probe was "
            f"not accepted either (HTTP {signed.status})",
        )
    return check_result(
        "PMB-HMAC-005",
        Status.PASS,
        Severity.CRITICAL,
        f"field-shift forgery → {describe(forged)} (the same probe, well-formed → "
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
    return check_result(
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


def secret_known_right(results: list[CheckResult]) -> None:
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
        return check_result(check, Status.PASS, Severity.CRITICAL, f"{what} → {describe(answer)}")
    if answer.status is not None and 200 <= answer.status < 300:
        return check_result(
            check, Status.FAIL, Severity.CRITICAL, f"{what} → {describe(answer)}: accepted", fix
        )
    return check_result(
        check,
        Status.FAIL,
        Severity.ERROR,
        f"{what} → {describe(answer)}: not a clean 4xx rejection",
        fix + " (a 4xx, not a server error)",
    )
