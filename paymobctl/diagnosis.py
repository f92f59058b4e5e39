"""Diagnosing a receiver that rejects correctly signed callbacks: probe it with the same harmless
callback signed under each common implementation mistake (paymobctl.dialects) and report the
one it accepts.

Every probe is a *declined* test transaction (or a TOKEN) for an order id that cannot exist,
marked ``merchant_order_id = paymobctl-probe-…``: nothing an application could fulfil, no money.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from paymobctl import callbacks, delivery, dialects, redirects
from paymobctl.callbacks import TransactionSpec
from paymobctl.dialects import Dialect
from paymobctl.models import CallbackKind, Outcome, Region

if TYPE_CHECKING:
    import httpx

    from paymobctl.config import Settings


@dataclass(frozen=True)
class Probe:
    """What a probe claims; none of it can move money."""

    order_id: int
    merchant_order_id: str
    transaction_id: int


def make_probe() -> Probe:
    """A probe with random ids in the ranges no real order or transaction uses."""
    suffix = secrets.token_hex(4)
    return Probe(
        order_id=999_900_000_000 + secrets.randbelow(99_999),
        merchant_order_id=f"paymobctl-probe-{suffix}",
        transaction_id=999_800_000_000 + secrets.randbelow(99_999),
    )


def probe_callback(probe: Probe, settings: Settings) -> callbacks.Callback:
    """A declined test transaction for an order that cannot exist: nothing to fulfil, no money."""
    integration = settings.get("integration_id")
    return callbacks.build_transaction(
        TransactionSpec(
            outcome=Outcome.DECLINED,
            amount_cents=100,
            currency=settings.currency,
            region=settings.region,
            order_id=probe.order_id,
            transaction_id=probe.transaction_id,
            merchant_order_id=probe.merchant_order_id,
            integration_id=integration if isinstance(integration, int) else 1,
            is_live=False,
            decline_code="05",
        )
    )


@dataclass(frozen=True)
class Tried:
    """One probe and how the endpoint answered it."""

    label: str  # "canonical", "wrong hmac", or the dialect's mistake
    dialect: Dialect | None
    status: int | None
    error: str | None = None

    @property
    def accepted(self) -> bool:
        """Whether the endpoint answered the probe with a 2xx."""
        return self.status is not None and 200 <= self.status < 300


@dataclass(frozen=True)
class Diagnosis:
    """Every probe sent to one endpoint and how it answered; the properties draw the conclusion."""

    kind: CallbackKind
    url: str
    tried: tuple[Tried, ...]

    def _get(self, label: str) -> Tried | None:
        return next((t for t in self.tried if t.label == label), None)

    def passed(self, tried: Tried) -> bool:
        """The probe got past the signature check: a 2xx, or a 4xx other than the one a wrong
        signature gets (an app may verify first, then answer 404 for the unknown probe order)."""
        if tried.accepted:
            return True
        wrong = self._get("wrong hmac")
        return (
            tried.status is not None
            and tried.status < 500
            and wrong is not None
            and wrong.status is not None
            and not wrong.accepted
            and tried.status != wrong.status
        )

    @property
    def canonical_accepted(self) -> bool:
        """Whether the correctly signed probe got past the signature check."""
        found = self._get("canonical")
        return found is not None and self.passed(found)

    @property
    def unverified(self) -> bool:
        """A wrong signature is accepted: the endpoint does not check HMACs at all."""
        found = self._get("wrong hmac")
        return found is not None and found.accepted

    @property
    def matched(self) -> tuple[Dialect, ...]:
        """The implementation mistakes whose probes got past the signature check."""
        return tuple(t.dialect for t in self.tried if t.dialect is not None and self.passed(t))

    @property
    def unreachable(self) -> bool:
        """Whether no probe got any answer at all (the endpoint is down or unreachable)."""
        return all(t.status is None for t in self.tried)

    @property
    def no_endpoint(self) -> int | None:
        """The 404/405 every probe got, signed or not: nothing verifies at this path/method."""
        return _no_endpoint(self.tried)

    def finding(self, *, secret_matches: bool | None = None) -> str:
        """One sentence: what the endpoint gets wrong (or that no common mistake explains it)."""
        if self.unreachable:
            return "the diagnosis probes got no answer"
        if (status := self.no_endpoint) is not None:
            method = "GET" if self.kind is CallbackKind.RESPONSE else "POST"
            return (
                f"no endpoint at this path/method: every probe, correctly signed or not, got "
                f"HTTP {status}, so the verification code never ran; check the URL (a typo, the "
                f"trailing slash) and that the view accepts {method}"
            )
        if self.unverified:
            return (
                "the endpoint accepts a wrong signature too: it does not verify the HMAC, and "
                "rejected the callback for another reason"
            )
        mistakes = "; ".join(d.finding for d in self.matched)
        if self.canonical_accepted:
            return (
                "a correctly signed declined probe is accepted: the signature is fine; the "
                "endpoint rejected the callback for its content (an unknown order, an amount…)"
                + (f"; but also: {mistakes}" if mistakes else "")
            )
        if mistakes:
            return mistakes
        if secret_matches:
            return (
                "no common mistake is accepted and the secret matches the account: the "
                "endpoint's verification code disagrees with Paymob's rules (compare it with "
                "`paymobctl hmac fields`), unless the deployment runs with another secret than "
                "the profile's"
            )
        return (
            "no common implementation mistake is accepted either: the deployment's HMAC secret "
            "probably differs from the profile's"
        )

    @property
    def fix(self) -> str | None:
        """What to change in the receiver, when a known mistake matched."""
        return "; ".join(d.fix for d in self.matched) or None


def diagnose(
    http: httpx.Client,
    url: str,
    kind: CallbackKind,
    secret: str,
    *,
    settings: Settings,
    timeout: float = 10.0,
    probe: Probe | None = None,
) -> Diagnosis:
    """Send the canonical probe, a wrongly signed one, and one per applicable dialect to ``url``."""
    probe = probe or make_probe()
    transaction = probe_callback(probe, settings)
    data, envelope = _payload(kind, transaction, settings.region)
    canonical = _signed_for(kind, data, secret)
    wrong = canonical[:-1] + ("0" if canonical[-1] != "0" else "1")
    attempts: list[tuple[str, Dialect | None, dict[str, Any], str]] = [
        ("canonical", None, data, canonical),
        ("wrong hmac", None, data, wrong),
    ]
    for candidate in dialects.applicable(kind):
        signed = dialects.sign(candidate, kind, data, secret)
        if signed is not None:
            attempts.append((candidate.mistake.value, candidate, signed.data, signed.hmac))
    target = redirects.without_param(url, "hmac")
    tried: list[Tried] = []
    for label, dialect, payload, digest in attempts:
        if len(tried) == 2 and _no_endpoint(tried) is not None:
            break  # the same 404/405 signed or not: the mistake probes would tell nothing
        request = _request(kind, target, payload, envelope, digest)
        result = delivery.attempt(http, request, timeout=timeout)
        tried.append(Tried(label, dialect, result.status, result.error_message))
    return Diagnosis(kind, target, tuple(tried))


NO_ENDPOINT_STATUSES = frozenset({404, 405})


def _no_endpoint(tried: Sequence[Tried]) -> int | None:
    statuses = {t.status for t in tried}
    if len(statuses) == 1 and (status := statuses.pop()) in NO_ENDPOINT_STATUSES:
        return status
    return None


def _payload(
    kind: CallbackKind, transaction: callbacks.Callback, region: Region
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The data that is signed (obj, or the redirect's flat parameters) and the POST envelope."""
    if kind is CallbackKind.TOKEN:
        token = callbacks.build_token(callbacks.token_spec_for(transaction.obj, region=region))
        return dict(token.obj), dict(token.body)
    if kind is CallbackKind.RESPONSE:
        return dict(redirects.redirect_params(transaction.obj, None)), {}
    return dict(transaction.obj), dict(transaction.body)


def _signed_for(kind: CallbackKind, data: dict[str, Any], secret: str) -> str:
    from paymobctl import signing

    return signing.compute(kind, data, secret)


def _request(
    kind: CallbackKind, url: str, data: dict[str, Any], envelope: dict[str, Any], digest: str
) -> delivery.HttpRequest:
    if kind is CallbackKind.RESPONSE:
        params = [(k, str(v)) for k, v in data.items()] + [("hmac", digest)]
        return delivery.get(redirects.with_query(url, redirects.encode_params(params)))
    return delivery.post_json(
        redirects.with_query(url, f"hmac={digest}"), {**envelope, "obj": data}
    )


def csrf_blocked(status: int | None, text: str) -> bool:
    """Django's 403 "CSRF verification failed" or Laravel's 419: the HMAC was never looked at."""
    return status == 419 or (status == 403 and "csrf" in text.lower())


def secret_matches_account(settings: Settings, http: httpx.Client, secret: str) -> bool | None:
    """Whether the HMAC secret Paymob (or the sandbox) holds for this profile's account equals
    ``secret``, compared in constant time; None when it cannot be read (no API key, offline)."""
    import hmac

    from paymobctl.errors import PaymobctlError
    from paymobctl.payments import client_for

    if settings.get("api_key") is None:
        return None
    from paymobctl.config import Source
    from paymobctl.sandbox_runtime import find

    resolved = settings.values.get("base_url")
    if (
        settings.is_sandbox
        and (resolved is None or resolved.source is Source.BUILTIN)
        and find() is None
    ):
        return None  # the sandbox profile, and no sandbox announced itself: nobody to ask
    try:
        held = client_for(settings, http).hmac_secret()
    except PaymobctlError:
        return None
    return hmac.compare_digest(held.encode("utf-8"), secret.encode("utf-8"))


@dataclass(frozen=True)
class Verdict:
    """Why an endpoint rejected a correctly signed callback, in one line, and the fix."""

    text: str
    fix: str | None
    matched: tuple[str, ...] = ()
    tried: tuple[tuple[str, int | None], ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """The verdict as plain JSON-ready data for ``--json`` output."""
        return {
            "finding": self.text,
            "fix": self.fix,
            "matched": list(self.matched),
            "tried": dict(self.tried),
        }


def explain_rejection(
    http: httpx.Client,
    url: str,
    kind: CallbackKind,
    secret: str,
    *,
    settings: Settings,
    status: int | None,
    answer_text: str,
    timeout: float = 10.0,
) -> Verdict | None:
    """For a correctly signed callback the endpoint at ``url`` (no query) answered ``status``:
    None unless it was a 4xx; else what the endpoint gets wrong, probing it as :func:`diagnose`."""
    if status is None or not 400 <= status < 500:
        return None
    if csrf_blocked(status, answer_text):
        return Verdict(
            "blocked by CSRF protection before the HMAC was looked at",
            "exempt the webhook view from CSRF (Django: @csrf_exempt; the guide's troubleshooting "
            "table)",
        )
    found = diagnose(http, url, kind, secret, settings=settings, timeout=timeout)
    secret_ok = None
    if not (
        found.matched
        or found.canonical_accepted
        or found.unverified
        or found.unreachable
        or found.no_endpoint
    ):
        secret_ok = secret_matches_account(settings, http, secret)
    return Verdict(
        found.finding(secret_matches=secret_ok),
        found.fix,
        tuple(d.mistake.value for d in found.matched),
        tuple((t.label, t.status) for t in found.tried),
    )
