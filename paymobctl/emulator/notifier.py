"""Delivering the sandbox's callbacks: in the background, retried with backoff, every attempt recorded.

Paymob publishes no retry policy (docs/paymob.md §7.1, §11: only evidence of stored attempts). Ours,
an assumption: a non-2xx answer or no answer is retried up to 5 attempts in all, waiting 0.5, 1,
2 and 4 s between them; each attempt times out after 10 s. A TOKEN callback is sent after the
first attempt of its payment's TRANSACTION callback, as Paymob sends them in that order.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from paymobctl import delivery, outbound
from paymobctl.delivery import Result, RetryPolicy
from paymobctl.emulator.records import Attempt, Outbound
from paymobctl.emulator.state import Sandbox
from paymobctl.emulator.validation import LINK_LOCAL_REFUSED, link_local
from paymobctl.models import FailureKind
from paymobctl.tasks import TaskSet

if TYPE_CHECKING:
    import httpx

DEFAULT_POLICY = RetryPolicy(
    attempts=5, first_delay=0.5, factor=2.0, max_delay=8.0, retry_on=frozenset({"non-2xx"})
)
DEFAULT_TIMEOUT = 10.0

_ERRORS = {
    "refused": "nothing is listening",
    "dns": "cannot resolve the host",
    "timeout": "no answer in time",
    "tls": "TLS handshake failed",
    "invalid-url": "invalid URL",
}


class Notifier:
    """Delivers the sandbox's callbacks in the background, with retries, recording each attempt."""

    def __init__(
        self,
        sandbox: Sandbox,
        *,
        policy: RetryPolicy = DEFAULT_POLICY,
        timeout: float = DEFAULT_TIMEOUT,
        client_factory: Callable[[], httpx.AsyncClient] | None = None,
    ) -> None:
        self.sandbox = sandbox
        self.policy = policy
        self.timeout = timeout
        self._client_factory = client_factory or (lambda: outbound.async_client(verify=False))
        self._client: httpx.AsyncClient | None = None
        self._tasks = TaskSet()

    async def close(self) -> None:
        """Cancel pending deliveries and close the HTTP client."""
        await self._tasks.cancel()
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def submit(self, outbound: Sequence[Outbound]) -> None:
        """Deliver a payment's callbacks in the background, in order."""
        if outbound:
            self._tasks.spawn(self._deliver(outbound[0], list(outbound[1:])))

    @property
    def pending(self) -> int:
        """Deliveries still running (including ones waiting to retry)."""
        return len(self._tasks)

    async def drain(self, timeout: float = 30.0) -> None:
        """Wait until every queued delivery has finished (tests, the demo)."""
        await self._tasks.drain(timeout)

    async def _deliver(self, item: Outbound, followers: list[Outbound]) -> None:
        """Deliver ``item`` with retries; ``followers`` start after its first attempt."""
        if self._client is None:
            self._client = self._client_factory()
        client, short = self._client, item.request.url.split("?", 1)[0]

        async def send(number: int) -> Result:
            refused = await _resolves_link_local(item.request.url)
            if refused:
                return Result(
                    item.request.url,
                    error=FailureKind.BLOCKED,
                    error_message=refused,
                    attempt=number,
                )
            return await delivery.attempt_async(
                client, item.request, timeout=self.timeout, attempt_no=number
            )

        def record(result: Result, number: int, final: bool) -> None:
            nonlocal followers
            if followers:
                self.submit(followers)
                followers = []
            self.sandbox.record_attempt(
                item.delivery_id,
                Attempt(
                    number,
                    self.sandbox.stamp(),
                    result.status,
                    round(result.latency_ms, 2),
                    result.error_message if result.error else None,
                ),
                final=final,
                ok=result.ok,
            )
            what = (
                f"{result.status} {result.reason}".strip()
                if result.status is not None
                else _ERRORS.get(result.error or "", result.error_message or "failed")
            )
            if result.ok:
                self.sandbox.on_event(
                    "callback", f"{item.kind.value} → {short}: {what} ({result.latency_ms:.0f} ms)"
                )
            elif final:
                self.sandbox.on_event(
                    "callback-failed",
                    f"{item.kind.value} → {short}: {what}; gave up after {number} attempt(s) — "
                    "check the URL, or run `paymobctl listen`",
                )
            else:
                wait = self.policy.delay(number)
                self.sandbox.on_event(
                    "callback-retry",
                    f"{item.kind.value} → {short}: {what} (attempt {number}/{self.policy.attempts}, retrying in {wait:g} s)",
                )

        def final(result: Result, number: int) -> bool:
            return result.error == FailureKind.BLOCKED or self.policy.is_final(result, number)

        await delivery.retry_async(send, self.policy, record, final=final)


async def _resolves_link_local(url: str) -> str | None:
    """Why a callback must not be sent to ``url``: its host resolves to a link-local address
    (a name checked when set can point anywhere later). Resolution failures are left to the
    attempt, which reports them as usual."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if link_local(host):
        return LINK_LOCAL_REFUSED
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            host, parts.port or (443 if parts.scheme == "https" else 80), type=socket.SOCK_STREAM
        )
    except (OSError, UnicodeError, ValueError):
        return None
    if any(link_local(str(info[4][0])) for info in infos):
        return LINK_LOCAL_REFUSED
    return None
