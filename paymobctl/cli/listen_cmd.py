"""``paymobctl listen``: the local webhook receiver, with forwarding and an optional ngrok tunnel."""

from __future__ import annotations

import asyncio
import json
import queue
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING, Annotated, Any

import typer

from paymobctl.cli.options import command, runtime
from paymobctl.cli.output import local_time
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


def _amount(cents: int | None, currency: str | None) -> str:
    if cents is None or not currency:
        return ""
    from paymobctl.models import format_amount

    try:
        return format_amount(cents, currency)
    except (ValueError, ArithmeticError):
        return f"{cents} {currency}"


def format_received(item: Received, *, color: bool) -> str:
    def paint(text: str, code: str) -> str:
        return f"{code}{text}{_RESET}" if color else text

    parts = [local_time(item.time, clock_only=True), f"#{item.id}", f"{item.method:<4}", item.kind]
    if item.transaction_id is not None and item.kind in ("TRANSACTION", "RESPONSE"):
        parts.append(f"txn {item.transaction_id}")
    if item.order_id is not None:
        parts.append(f"order {item.order_id}")
    amount = _amount(item.amount_cents, item.currency)
    if amount:
        parts.append(amount)
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
    status = str(item.status)
    parts.append(paint(status, _GREEN if item.status < 300 else _RED))
    if item.duplicate:
        parts.append(paint("duplicate (stored once)", _YELLOW))
    if item.problem:
        parts.append(item.problem)
    if item.pan_masked:
        parts.append(paint("full card number masked before storage", _YELLOW))
    if item.effect:
        parts.append(f"→ {item.effect}")
    return "  ".join(parts)


def format_forwarded(item: Forwarded, *, color: bool) -> str:
    outcome = (
        f"{item.status}"
        if item.status is not None
        else {"refused": "refused", "timeout": "timed out"}.get(
            item.error or "", item.error or "failed"
        )
    )
    good = item.status is not None and 200 <= item.status < 300
    text = f"      ↳ #{item.event_id} → {item.target}  {outcome}  {item.latency_ms:.1f} ms"
    if not good and not item.final:
        text += f"  (attempt {item.attempt}, retrying)"
    elif not good:
        text += f"  (gave up after {item.attempt} attempt(s))"
    excerpt = item.excerpt.replace("\n", " ")[:120]
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
        typer.Option("--tunnel", help="Expose the listener publicly: ngrok.", show_default=False),
    ] = None,
    require_tunnel: Annotated[
        bool,
        typer.Option(
            "--require-tunnel", help="Exit 3 if the tunnel cannot open (default: serve locally)."
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
    if tunnel is not None:
        from paymobctl.tunnel import FACTORIES

        if tunnel not in FACTORIES:
            raise UsageError(
                f"unknown --tunnel {tunnel!r}",
                hint="use --tunnel " + " or ".join(sorted(FACTORIES)),
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

    def render(item: Any) -> str:
        from paymobctl.forwarding import Forwarded
        from paymobctl.receiver import Received

        if isinstance(item, Received | Forwarded):
            if rt.json:
                kind = "received" if isinstance(item, Received) else "forwarded"
                return json.dumps({"event": kind, **to_jsonable(item)}, ensure_ascii=False)
            if isinstance(item, Received):
                return format_received(item, color=out.color)
            return format_forwarded(item, color=out.color)
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
    application = create_app(
        store=store, secret=secret, config=config, forwarder=forwarder, sink=log_received
    )
    sock = serving.bind(host, port, what="the listener")
    local = serving.base_url(sock)
    try:
        public, opened = _open_tunnel(
            tunnel, sock.getsockname()[1], settings, require=require_tunnel
        )
    except TunnelError:
        sock.close()
        writer.close()
        raise

    def ready(url: str) -> None:
        lines = [
            f"paymobctl listen — HMAC secret {mask_secret(secret)} ({secret_origin}); store {rt.db_path}"
        ]
        lines.append(f"Processed callback: {url}{config.webhook_path}")
        lines.append(f"Response callback:  {url}{config.response_path}")
        for kind, target in routes.items():
            lines.append(f"Forwarding {kind} → {target}")
        if targets:
            others = "every other type" if routes else "every request"
            lines.append(f"Forwarding {others} → {', '.join(targets)}")
        if public:
            from paymobctl.tunnel import NGROK_BROWSER_WARNING

            lines.append(f"Tunnel: {public} → {url}")
            lines.append(
                "Paste these into Paymob's dashboard (Developers → Payment Integrations → your integration):"
            )
            lines.append(f"  Transaction processed callback: {public}{config.webhook_path}")
            lines.append(f"  Transaction response callback:  {public}{config.response_path}")
            lines.append(f"Note: {NGROK_BROWSER_WARNING}")
        if rt.json:
            record = {
                "event": "ready",
                "url": url,
                "webhook": f"{url}{config.webhook_path}",
                "response": f"{url}{config.response_path}",
                "public_url": public,
                "forward_to": targets,
                "routes": routes,
            }
            writer.put(json.dumps(record))
        else:
            for line in lines:
                writer.put(line)
            writer.put(f"Ready: listening on {url} (Ctrl-C to stop)")
        if ready_file is not None:
            problem = serving.write_ready_file(ready_file, url)
            if problem:
                out.warn(problem)

    import gc

    gc.freeze()  # everything imported so far is permanent: keep it out of every GC pass
    try:
        serving.run(application, sock, on_ready=ready, header_timeout=read_timeout)
    finally:
        if opened is not None:
            opened.close()
        writer.close()
        sock.close()
    if not rt.json:
        out.line(f"listener stopped ({local}); {store.count_events()} events in {rt.db_path}")


def _open_tunnel(
    kind: str | None, port: int, settings: Any, *, require: bool
) -> tuple[str | None, Any]:
    if kind is None:
        return None, None
    from paymobctl import tunnel as tunnels

    token = settings.secret("ngrok_authtoken")
    try:
        opened = tunnels.create(kind, token.reveal() if token else None)
        return opened.open(port), opened
    except TunnelError as exc:
        if require:
            raise
        runtime().out.warn(
            f"{exc} — still listening locally only (pass --require-tunnel to exit instead)"
        )
        return None, None
