"""Forwarding received callbacks to the developer's own app, byte for byte, with bounded retries."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from paymobctl import delivery, outbound
from paymobctl.delivery import HttpRequest, Result, RetryPolicy
from paymobctl.redirects import with_query
from paymobctl.tasks import TaskSet

if TYPE_CHECKING:
    import httpx

    from paymobctl.store import Event, Store

# Refused, timed out and 5xx answers are retried: 4 attempts, 0.25, 0.5, 1 s apart (bounded).
FORWARD_POLICY = RetryPolicy(attempts=4, first_delay=0.25, factor=2.0, max_delay=2.0)
FORWARD_KINDS = ("TRANSACTION", "TOKEN", "DELIVERY_STATUS", "RESPONSE")


@dataclass(frozen=True)
class Incoming:
    """A received request, as it must be re-sent."""

    event_id: int
    kind: str
    method: str
    query: str
    body: bytes
    content_type: str | None
    duplicate: bool = False


@dataclass(frozen=True)
class Forwarded:
    """One forward attempt's outcome, for the log."""

    event_id: int
    target: str
    attempt: int
    status: int | None
    latency_ms: float
    error: str | None
    excerpt: str
    final: bool


def request_for(incoming: Incoming, target: str) -> HttpRequest:
    """The same method, raw body, query (with its hmac) and content type, at ``target``."""
    url = with_query(target, incoming.query) if incoming.query else target
    headers: tuple[tuple[str, str], ...] = (
        (("Content-Type", incoming.content_type),) if incoming.content_type else ()
    )
    headers += (
        ("User-Agent", delivery.USER_AGENT),
        ("X-Paymobctl-Forwarded-Event", str(incoming.event_id)),
    )
    body = incoming.body if incoming.method != "GET" else None
    return HttpRequest(incoming.method, url, body, headers)


def replay_request(event: Event, target: str) -> HttpRequest:
    """A stored request re-sent to ``target`` byte for byte (``events replay``, the inspector)."""
    content_type = next((v for k, v in event.headers if k.lower() == "content-type"), None)
    incoming = Incoming(event.id, event.kind, event.method, event.query, event.body, content_type)
    return request_for(incoming, target)


class Forwarder:
    """Sends each received callback on to the local app(s) in the background, retrying and
    recording every attempt in the store.
    """

    def __init__(
        self,
        store: Store,
        *,
        targets: Sequence[str] = (),
        routes: Mapping[str, str] | None = None,
        policy: RetryPolicy = FORWARD_POLICY,
        timeout: float = 10.0,
        sink: Callable[[Forwarded], None] | None = None,
        client_factory: Callable[[], httpx.AsyncClient] | None = None,
    ) -> None:
        self.store = store
        self.targets = list(targets)
        self.routes = dict(routes or {})
        self.policy = policy
        self.timeout = timeout
        self.sink = sink
        self._client_factory = client_factory or (lambda: outbound.async_client(verify=True))
        self._client: httpx.AsyncClient | None = None
        self._tasks = TaskSet()

    def targets_for(self, kind: str) -> list[str]:
        """A per-type route replaces the --forward-to targets for that type."""
        if kind in self.routes:
            return [self.routes[kind]]
        return list(self.targets)

    def submit(self, incoming: Incoming) -> int:
        """Start forwarding one received request to its targets; returns how many there are."""
        targets = self.targets_for(incoming.kind)
        for target in targets:
            self._tasks.spawn(self._forward(incoming, target))
        return len(targets)

    async def _forward(self, incoming: Incoming, target: str) -> None:
        if self._client is None:
            self._client = self._client_factory()
        client, request = self._client, request_for(incoming, target)

        async def send(number: int) -> Result:
            return await delivery.attempt_async(
                client, request, timeout=self.timeout, attempt_no=number
            )

        def record(result: Result, number: int, final: bool) -> None:
            error = result.error_message if result.error else None
            self.store.record_forward_attempt(
                event_id=incoming.event_id,
                target=target,
                attempt=number,
                status=result.status,
                latency_ms=round(result.latency_ms, 2),
                error=error,
                excerpt=result.excerpt[:300] or None,
            )
            if self.sink is not None:
                self.sink(
                    Forwarded(
                        incoming.event_id,
                        target,
                        number,
                        result.status,
                        result.latency_ms,
                        result.error,
                        result.excerpt,
                        final,
                    )
                )

        await delivery.retry_async(send, self.policy, record, final=self.policy.is_final)

    async def drain(self, timeout: float = 30.0) -> None:
        """Wait up to ``timeout`` seconds for the forwards under way to finish."""
        await self._tasks.drain(timeout)

    async def close(self) -> None:
        """Finish (briefly) or cancel the forwards under way and close the HTTP client."""
        await self.drain(timeout=5.0)
        await self._tasks.cancel()
        if self._client is not None:
            await self._client.aclose()
            self._client = None
