"""``paymobctl listen``: the local webhook receiver, with forwarding and an optional ngrok tunnel."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import queue
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Annotated, Any

import typer

from paymobctl import runfile
from paymobctl.cli.options import command, runtime
from paymobctl.cli.output import json_terminal_safe, local_time, terminal_safe
from paymobctl.errors import TunnelError, UsageError

if TYPE_CHECKING:
    from paymobctl.forwarding import Forwarded
    from paymobctl.receiver import Received

app = typer.Typer(
    add_completion=False,
    rich_markup_mode=None,
    help="Receive Paymob webhooks on localhost: verify, store, forward, tunnel.",
)

_GREEN, _RED, _YELLOW, _DIM, _RESET = "\x1b[32m", "\x1b[31m", "\x1b[33m", "\x1b[2m", "\x1b[0m"


class LineWriter:
    """The listener's log, built so that a burst of callbacks is never slowed down by output.

    The receiver only appends objects to a list (event-loop thread). Every ``BATCH_SECONDS`` the
    loop formats what accumulated and hands one string to a writer thread, which does the only
    blocking part, the ``write`` to a terminal or pipe (it releases the GIL while writing). A
    writer thread that also formatted would hold the GIL in long stretches and stall the loop:
    measured, that cost 16% of listen's throughput (scripts/bench_listen.py).
    """

    BATCH_SECONDS = 0.05

    def __init__(self, stream: IO[str], render: Callable[[Any], str] = str) -> None:
        self.stream = stream
        self.render = render
        self._pending: list[Any] = []
        self._scheduled = False
        self._queue: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._write_loop, name="paymobctl-log", daemon=True)
        self._thread.start()

    def put(self, item: Any) -> None:
        """Called on the event loop; outside one (before serving) the line goes out at once."""
        self._pending.append(item)
        if self._scheduled:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.flush()
            return
        self._scheduled = True
        loop.call_later(self.BATCH_SECONDS, self.flush)

    def flush(self) -> None:
        self._scheduled = False
        pending, self._pending = self._pending, []
        if pending:
            self._queue.put("\n".join(self.render(item) for item in pending) + "\n")

    def _write_loop(self) -> None:
        while True:
            text = self._queue.get()
            if text is None:
                return
            try:
                self.stream.write(text)
                self.stream.flush()
            except (OSError, ValueError):
                pass

    def close(self) -> None:
        self.flush()
        self._queue.put(None)
        self._thread.join(timeout=5)


@functools.lru_cache(maxsize=256, typed=True)
def _amount(cents: int | None, currency: str | None) -> str:
    from paymobctl.models import show_amount

    return show_amount(cents, currency)  # pure: kept for the amounts a burst repeats


def format_received(item: Received, *, color: bool) -> str:
    """One log line. Every part a request can influence goes through ``terminal_safe`` (no
    control character, bidi override or newline reaches the terminal raw); colours are added
    after escaping."""

    def paint(text: str, code: str) -> str:
        return f"{code}{text}{_RESET}" if color else text

    parts = [local_time(item.time, clock_only=True), f"#{item.id}" if item.id else "#-"]
    parts.append(terminal_safe(f"{item.method:<4}", one_line=True))
    parts.append(terminal_safe(item.kind, one_line=True))
    if item.transaction_id is not None and item.kind in ("TRANSACTION", "RESPONSE"):
        parts.append(f"txn {item.transaction_id}")
    if item.order_id is not None:
        parts.append(f"order {item.order_id}")
    amount = _amount(item.amount_cents, item.currency)
    if amount:
        parts.append(terminal_safe(amount, one_line=True))
    if item.success is not None and item.kind in ("TRANSACTION", "RESPONSE"):
        state = "success" if item.success else ("pending" if item.pending else "declined")
        parts.append(paint(state, _GREEN if item.success else (_YELLOW if item.pending else _RED)))
    if item.verdict in ("valid", "invalid", "missing"):
        verdict = {"valid": "HMAC valid", "invalid": "HMAC INVALID", "missing": "no HMAC"}[
            item.verdict
        ]
        if item.convention and item.convention != "empty":
            verdict += f" (null as {item.convention!r})"
        parts.append(paint(verdict, _GREEN if item.verdict == "valid" else _RED))
    elif item.verdict == "malformed-signed-fields":
        parts.append(paint("signed fields MALFORMED", _RED))
    status = str(item.status)
    parts.append(paint(status, _GREEN if item.status < 300 else _RED))
    if item.duplicate:
        parts.append(paint("duplicate (stored once)", _YELLOW))
    if item.problem:
        parts.append(terminal_safe(item.problem, one_line=True))
    if item.pan_masked:
        parts.append(paint("full card number masked before storage", _YELLOW))
    if item.effect:
        effect = terminal_safe(item.effect, one_line=True)
        mismatch = effect.startswith("amount mismatch")
        parts.append(paint(f"→ {effect}", _RED) if mismatch else f"→ {effect}")
    return "  ".join(parts)


def format_forwarded(item: Forwarded, *, color: bool) -> str:
    """One log line for a forward to the developer's app: its status or why it failed."""
    outcome = (
        f"{item.status}"
        if item.status is not None
        else {"refused": "refused", "timeout": "timed out"}.get(
            item.error or "", item.error or "failed"
        )
    )
    good = item.status is not None and 200 <= item.status < 300
    text = f"      ↳ #{item.event_id} → {item.target}  {outcome}  {item.latency_ms:.1f} ms"
    text = terminal_safe(text, one_line=True)
    if not good and not item.final:
        text += f"  (attempt {item.attempt}, retrying)"
    elif not good:
        text += f"  (gave up after {item.attempt} attempt(s))"
    excerpt = terminal_safe(item.excerpt.replace("\n", " ")[:120], one_line=True)
    if excerpt:
        text += f"  {excerpt}"
    if color:
        return f"{_GREEN if good else (_YELLOW if not item.final else _RED)}{text}{_RESET}"
    return text


def _routes(values: list[str]) -> dict[str, str]:
    from paymobctl.config import check_url
    from paymobctl.forwarding import FORWARD_KINDS

    routes: dict[str, str] = {}
    for text in values:
        kind, sep, url = text.partition("=")
        kind = kind.strip().upper()
        if not sep or kind not in FORWARD_KINDS:
            raise UsageError(
                f"--forward {text!r}: expected TYPE=URL with TYPE one of {', '.join(FORWARD_KINDS)}",
                hint="e.g. --forward TOKEN=http://127.0.0.1:8001/api/payments/token/",
            )
        try:
            routes[kind] = check_url(url.strip())
        except ValueError as exc:
            raise UsageError(f"--forward {text!r}: {exc}") from None
    return routes


def _targets(values: list[str]) -> list[str]:
    from paymobctl.config import check_url

    targets = []
    for url in values:
        try:
            targets.append(check_url(url.strip()))
        except ValueError as exc:
            raise UsageError(
                f"--forward-to: {exc}",
                hint="e.g. --forward-to http://127.0.0.1:8001/api/payments/webhook/",
            ) from None
    return targets


def _path(value: str, option: str) -> str:
    if not value.startswith("/") or "?" in value or " " in value:
        raise UsageError(
            f"{option} {value!r}: expected an absolute path such as /api/payments/webhook/"
        )
    return value


@command(app, None, callback=True)
def listen(
    host: Annotated[str, typer.Option("--host", help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port (0 picks a free one).")] = 8000,
    path: Annotated[
        str, typer.Option("--path", help="Processed callback (webhook) path.")
    ] = "/api/payments/webhook/",
    response_path: Annotated[
        str, typer.Option("--response-path", help="Transaction response (GET redirect) path.")
    ] = "/api/payments/response/",
    forward_to: Annotated[
        list[str] | None,
        typer.Option(
            "--forward-to",
            metavar="URL",
            help="Re-send every request to your app (repeatable).",
            show_default=False,
        ),
    ] = None,
    forward: Annotated[
        list[str] | None,
        typer.Option(
            "--forward",
            metavar="TYPE=URL",
            help="Per-type route, e.g. TOKEN=http://localhost:8001/api/payments/token/ (replaces "
            "--forward-to for that type; TYPE: TRANSACTION, TOKEN, DELIVERY_STATUS, RESPONSE).",
            show_default=False,
        ),
    ] = None,
    forward_timeout: Annotated[
        float, typer.Option("--forward-timeout", help="Seconds per forward attempt.", min=0.1)
    ] = 10.0,
    max_body: Annotated[
        int,
        typer.Option(
            "--max-body",
            min=1024,
            help="Largest request body in bytes; a bigger one is answered 413 and only its first "
            "64 KiB are stored (flagged truncated).",
        ),
    ] = 1_048_576,
    read_timeout: Annotated[
        float,
        typer.Option(
            "--read-timeout",
            min=0.1,
            help="Seconds a client has to send its request headers, and again its body "
            "(408 after that).",
        ),
    ] = 10.0,
    tunnel: Annotated[
        str | None,
        typer.Option(
            "--tunnel",
            help="Expose the listener publicly: ngrok, or cloudflared (a quick tunnel, no account).",
            show_default=False,
        ),
    ] = None,
    tunnel_domain: Annotated[
        str | None,
        typer.Option(
            "--tunnel-domain",
            metavar="NAME",
            help="Your ngrok static domain (e.g. your-name.ngrok-free.app): the same URL every run.",
            show_default=False,
        ),
    ] = None,
    tunnel_region: Annotated[
        str | None,
        typer.Option(
            "--tunnel-region",
            help="ngrok region: us, us-cal-1, eu, ap, au, sa, jp, in (default: the closest).",
            show_default=False,
        ),
    ] = None,
    tunnel_check: Annotated[
        float,
        typer.Option(
            "--tunnel-check",
            metavar="SECONDS",
            help="Check the listener through the public URL this often.",
            min=0.2,
        ),
    ] = 5.0,
    no_install: Annotated[
        bool,
        typer.Option(
            "--no-install",
            help="Never download the ngrok agent (also: ngrok_install = false in the profile).",
        ),
    ] = False,
    require_tunnel: Annotated[
        bool,
        typer.Option(
            "--require-tunnel",
            help="Exit 3 if the tunnel cannot open or cannot be restored (default: serve locally).",
        ),
    ] = False,
    ready_file: Annotated[
        Path | None,
        typer.Option(
            "--ready-file", help="Write the base URL here once listening.", show_default=False
        ),
    ] = None,
    secret_file: Annotated[
        Path | None,
        typer.Option(
            "--secret-file", help="Read the HMAC secret from this file.", show_default=False
        ),
    ] = None,
    no_inspector: Annotated[
        bool,
        typer.Option(
            "--no-inspector",
            help="Do not serve the web inspector at /_paymobctl/ (loopback only).",
        ),
    ] = False,
) -> None:
    """Run the webhook receiver until Ctrl-C: verify every HMAC, store every request before
    answering, forward to your app, show one line per event."""
    from paymobctl import serving
    from paymobctl.cli.output import to_jsonable
    from paymobctl.forwarding import Forwarder
    from paymobctl.models import mask_secret
    from paymobctl.receiver import ReceiverConfig, create_app

    rt = runtime()
    out = rt.out
    settings = rt.settings()
    rt.announce_mode(settings)
    secret, secret_origin = rt.hmac_secret(secret_file, purpose="verifying webhooks")
    if ready_file is not None:
        serving.check_ready_file(ready_file)
    tunnel_options = _tunnel_options(
        tunnel, tunnel_domain, tunnel_region, install=not no_install, settings=settings
    )
    config = ReceiverConfig(
        webhook_path=_path(path, "--path"),
        response_path=_path(response_path, "--response-path"),
        max_body=max_body,
        read_timeout=read_timeout,
    )
    targets, routes = _targets(forward_to or []), _routes(forward or [])
    store = rt.store()
    store.checkpoint_in_background()

    from paymobctl.forwarding import Forwarded
    from paymobctl.receiver import Received

    json_lines, color = rt.json, out.color

    def render(item: Any) -> str:  # one call per logged request: nothing imported here
        received = type(item) is Received
        if received or type(item) is Forwarded:
            if json_lines:
                kind = "received" if received else "forwarded"
                record = {"event": kind, **to_jsonable(item)}
                return json_terminal_safe(json.dumps(record, ensure_ascii=False))
            if received:
                return format_received(item, color=color)
            return format_forwarded(item, color=color)
        return str(item)

    writer = LineWriter(out.stdout, render)
    log_received: Callable[[Received], None] = writer.put
    log_forwarded: Callable[[Forwarded], None] = writer.put

    forwarder = (
        Forwarder(
            store, targets=targets, routes=routes, timeout=forward_timeout, sink=log_forwarded
        )
        if (targets or routes)
        else None
    )
    inspector = None
    if not no_inspector:
        from paymobctl.inspector import create_inspector

        def inspector(fallback: Any) -> Any:
            return create_inspector(
                store=store,
                secret=secret,
                fallback=fallback,
                replay_targets=forwarder.targets_for if forwarder else None,
            )

    sock = serving.bind(host, port, what="the listener")
    local = serving.base_url(sock)
    try:
        public, opened = _open_tunnel(
            tunnel, tunnel_options, sock.getsockname()[1], require=require_tunnel
        )
    except BaseException:  # a refused tunnel, or anything else: never leave the socket open
        sock.close()
        writer.close()
        raise
    listener = runfile.ListenerRecord(
        pid=os.getpid(),
        local_url=local,
        webhook_path=config.webhook_path,
        response_path=config.response_path,
        started_at=datetime.now(UTC).isoformat(timespec="seconds"),
        tunnel=tunnel,
        public_url=public,
        tunnel_state="up" if public else "none",
    )
    supervisor = (
        _Supervised(
            opened,
            listener,
            sock.getsockname()[1],
            writer,
            require=require_tunnel,
            interval=tunnel_check,
        )
        if opened is not None and public
        else None
    )
    application = create_app(
        store=store,
        secret=secret,
        config=config,
        forwarder=forwarder,
        sink=log_received,
        health=supervisor.health if supervisor else None,
        inspector=inspector,
    )

    def ready(url: str) -> None:
        lines = [
            f"paymobctl listen — HMAC secret {mask_secret(secret)} ({secret_origin}); store {rt.db_path}"
        ]
        lines.append(f"Processed callback: {url}{config.webhook_path}")
        lines.append(f"Response callback:  {url}{config.response_path}")
        if not no_inspector:
            from paymobctl.inspector import PATH

            lines.append(f"Inspector:          {url}{PATH} (this machine only)")
        for kind, target in routes.items():
            lines.append(f"Forwarding {kind} → {target}")
        if targets:
            others = "every other type" if routes else "every request"
            lines.append(f"Forwarding {others} → {', '.join(targets)}")
        if public:
            from paymobctl.tunnel import NGROK_BROWSER_WARNING

            lines.append(
                f"Tunnel: {public} → {url} (checked through the public URL every {tunnel_check:g} s)"
            )
            lines.extend(_dashboard_lines(public, config))
            lines.append(
                "`paymobctl deposit --flow intention` sends these URLs as notification_url and "
                "redirection_url while this listener runs."
            )
            if tunnel == "ngrok":
                lines.append(f"Note: {NGROK_BROWSER_WARNING}")
        if rt.json:
            record = {
                "event": "ready",
                "url": url,
                "webhook": f"{url}{config.webhook_path}",
                "response": f"{url}{config.response_path}",
                "public_url": public,
                "inspector": None if no_inspector else f"{url}/_paymobctl/",
                "forward_to": targets,
                "routes": routes,
            }
            writer.put(json.dumps(record))
        else:
            for line in lines:
                writer.put(line)
            writer.put(f"Ready: listening on {url} (Ctrl-C to stop)")
        # The runtime record first: whoever waits on the ready file (a script, then `deposit`)
        # must find the listener's URLs once it appears.
        problem = runfile.write_listener(listener)
        if problem:
            out.warn(problem)
        if ready_file is not None:
            problem = serving.write_ready_file(ready_file, url)
            if problem:
                out.warn(problem)
        if supervisor is not None:
            try:
                supervisor.start(asyncio.get_running_loop())
            except RuntimeError:  # not serving on an event loop (tests): write lines directly
                supervisor.start(None)

    import gc

    gc.freeze()  # everything imported so far is permanent: keep it out of every GC pass
    try:
        serving.run(
            application,
            sock,
            on_ready=ready,
            stop=supervisor.supervisor.gave_up if supervisor else None,
            header_timeout=read_timeout,
        )
    finally:
        if supervisor is not None:
            supervisor.supervisor.stop()
        if opened is not None:
            opened.close()
        runfile.remove_listener(os.getpid())
        writer.close()
        sock.close()
    if not rt.json:
        out.line(f"listener stopped ({local}); {store.count_events()} events in {rt.db_path}")
    if supervisor is not None and supervisor.supervisor.gave_up.is_set():
        raise TunnelError(
            "the tunnel dropped and could not be restored (--require-tunnel)",
            hint="check this machine's network and https://status.ngrok.com, then start listen again",
        )


def _tunnel_options(
    kind: str | None, domain: str | None, region: str | None, *, install: bool, settings: Any
) -> Any:
    from paymobctl import tunnel as tunnels

    if kind is None:
        if domain or region:
            raise UsageError(
                "--tunnel-domain and --tunnel-region need a tunnel", hint="add --tunnel ngrok"
            )
        return None
    if kind not in tunnels.FACTORIES:
        raise UsageError(
            f"unknown --tunnel {kind!r}",
            hint="use --tunnel " + " or ".join(sorted(tunnels.FACTORIES)),
        )
    if kind != "ngrok" and (domain or region):
        raise UsageError(
            "--tunnel-domain and --tunnel-region are ngrok options",
            hint=f"a {kind} quick tunnel gets a random URL; use --tunnel ngrok for a static domain",
        )
    token = settings.secret("ngrok_authtoken")
    return tunnels.TunnelOptions(
        authtoken=token.reveal() if token else None,
        domain=tunnels.check_domain(domain) if domain else None,
        region=tunnels.check_region(region) if region else None,
        install=install and settings.get("ngrok_install") is not False,
    )


def _open_tunnel(
    kind: str | None, options: Any, port: int, *, require: bool
) -> tuple[str | None, Any]:
    if kind is None:
        return None, None
    from paymobctl import tunnel as tunnels

    out = runtime().out
    opened = tunnels.create(kind, options, say=out.info)
    try:
        return opened.open(port), opened
    except TunnelError as exc:
        if require:
            raise
        out.warn(f"{exc} — still listening locally only (pass --require-tunnel to exit instead)")
        return None, None


def _dashboard_lines(public: str, config: Any) -> list[str]:
    return [
        "Paste these into Paymob's dashboard (Developers → Payment Integrations → your integration):",
        f"  Transaction processed callback: {public}{config.webhook_path}",
        f"  Transaction response callback:  {public}{config.response_path}",
    ]


class _Supervised:
    """Glue between the tunnel's supervisor thread and the listener: each tunnel event updates
    the runtime record and becomes a log line, handed to the event loop (the log's owner)."""

    def __init__(
        self,
        opened: Any,
        record: runfile.ListenerRecord,
        port: int,
        writer: LineWriter,
        *,
        require: bool,
        interval: float,
    ) -> None:
        import secrets

        from paymobctl.tunnel import Supervisor

        self.record = record
        self.writer = writer
        self.json_mode = runtime().json
        self.loop: asyncio.AbstractEventLoop | None = None
        self.supervisor = Supervisor(
            opened,
            port,
            record.public_url or "",
            secrets.token_hex(8),  # /healthz names this listener: the check knows it reached us
            on_event=self.on_event,
            require=require,
            interval=interval,
        )

    def health(self) -> dict[str, Any]:
        return {"listener": self.supervisor.listener_id, **self.supervisor.snapshot()}

    def start(self, loop: asyncio.AbstractEventLoop | None) -> None:
        self.loop = loop
        self.supervisor.start()

    def on_event(self, event: Any) -> None:
        self.record = self.record.with_tunnel(event.public_url, event.state.value)
        problem = runfile.write_listener(self.record)
        if self.json_mode:
            item = {"event": "tunnel", "state": event.state.value, "public_url": event.public_url}
            lines = [json.dumps({**item, "message": event.message})]
        else:
            lines = [event.message]
            if event.changed and event.public_url:
                lines.extend(_dashboard_lines(event.public_url, self.record))
        if problem:
            lines.append(f"warning: {problem}")
        for line in lines:
            if self.loop is None:
                self.writer.put(line)
                continue
            with contextlib.suppress(RuntimeError):  # the loop already closed: shutting down
                self.loop.call_soon_threadsafe(self.writer.put, line)
