"""The sandbox as an ASGI app: a :class:`~paymobctl.emulator.state.Sandbox` and its
:class:`~paymobctl.emulator.notifier.Notifier`, served through Paymob's APIs (``api``), the hosted
pages (``hosted``), the sandbox's own routes (``admin``) and the dashboard."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import datetime

from starlette.applications import Starlette
from starlette.middleware import Middleware

from paymobctl.delivery import RetryPolicy
from paymobctl.emulator import admin, api, dashboard, hosted
from paymobctl.emulator.notifier import DEFAULT_POLICY, DEFAULT_TIMEOUT, Notifier
from paymobctl.emulator.state import Event, Persistence, Sandbox
from paymobctl.models import CallbackOrder
from paymobctl.sandbox_profile import SANDBOX, SandboxCredentials
from paymobctl.serving import BoundedBodies


def create_app(
    *,
    credentials: SandboxCredentials = SANDBOX,
    callback_url: str | None = None,
    response_url: str | None = None,
    persistence: Persistence | None = None,
    clock: Callable[[], datetime] | None = None,
    on_event: Event | None = None,
    policy: RetryPolicy = DEFAULT_POLICY,
    timeout: float = DEFAULT_TIMEOUT,
    callback_order: CallbackOrder = CallbackOrder.TOKEN_FIRST,
) -> Starlette:
    """The sandbox app. Everything it needs is injected; it never imports the receiver or client."""
    sandbox = Sandbox(
        credentials=credentials,
        callback_url=callback_url,
        response_url=response_url,
        persistence=persistence,
        clock=clock,
        on_event=on_event,
        callback_order=callback_order,
    )
    notifier = Notifier(sandbox, policy=policy, timeout=timeout)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        del app
        try:
            yield
        finally:
            await notifier.close()

    routes = [*admin.routes(), *api.routes(), *hosted.routes(), *dashboard.routes()]
    # Every body is read within bounds (1 MiB, 10 s) before a route sees it: 413 / 408.
    app = Starlette(routes=routes, lifespan=lifespan, middleware=[Middleware(BoundedBodies)])
    app.state.sandbox = sandbox
    app.state.notifier = notifier
    return app
