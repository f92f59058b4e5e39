"""Public tunnels for ``listen --tunnel ngrok``: the only module that touches pyngrok.

Opening: the ngrok agent is looked for where pyngrok installs it and on PATH; when there is
none, pyngrok's installer downloads it (saying from where and to where), unless installing is
refused (``--no-install`` / ``ngrok_install = false``). The authtoken is paymobctl's
(``ngrok_authtoken`` / ``NGROK_AUTHTOKEN``), else the one in the machine's ngrok config.

Supervision: :class:`Supervisor` checks the listener through its public URL every few seconds
(``GET /healthz``, answered with this listener's id), says at once when the tunnel drops,
reopens it with backoff and reports the new URL. Tests run pyngrok for real against a fake
``ngrok`` executable (tests/fake_ngrok.py); nothing here is faked in-process.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from paymobctl.errors import TunnelError, UsageError
from paymobctl.models import is_local
from paymobctl.paths import runtime_dir, write_atomically

if TYPE_CHECKING:
    import httpx

Say = Callable[[str], None]

# ngrok's regions (https://ngrok.com/docs/network-edge/#points-of-presence); the agent picks the
# closest one when none is given.
NGROK_REGIONS = ("us", "us-cal-1", "eu", "ap", "au", "sa", "jp", "in")
_HOSTNAME = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_PYNGROK_SCRIPT = re.compile(rb"^\s*(from|import)\s+pyngrok\b", re.MULTILINE)
_AUTHTOKEN_LINE = re.compile(r"^\s*authtoken:\s*['\"]?([^'\"\s#]+)", re.MULTILINE)
PROBE_HEADERS = {
    # ngrok's free plan puts a warning page in front of browser traffic; this header skips it.
    "ngrok-skip-browser-warning": "1",
    "user-agent": "paymobctl-tunnel-check",
}
MAX_PROBE_BYTES = 64 * 1024

NGROK_BROWSER_WARNING = (
    "ngrok's free plan shows a browser warning page before forwarding browser traffic: the "
    "GET redirect (transaction response callback) stops there until the payer clicks 'Visit "
    "Site'. Webhooks (POST) are not affected. A paid plan or a custom domain avoids it."
)


@dataclass(frozen=True)
class TunnelOptions:
    """How to open an ngrok tunnel: authtoken, static domain, region and agent."""

    authtoken: str | None = None
    domain: str | None = None  # an ngrok static domain, e.g. your-name.ngrok-free.app
    region: str | None = None
    install: bool = True  # download the agent through pyngrok when none is found
    ngrok_path: str | None = None  # a specific agent binary


class Tunnel(Protocol):
    """A way to expose the local listener on a public HTTPS URL (ngrok, cloudflared)."""

    def open(self, port: int) -> str:
        """Expose 127.0.0.1:port; return the public base URL (no trailing slash)."""

    def close(self) -> None:
        """Take the public URL down and stop whatever serves it."""


def settle_seconds(tunnel: Tunnel) -> float:
    """How long a new public URL may take to become reachable (0: at once, as with ngrok)."""
    value = getattr(tunnel, "settle_seconds", 0.0)
    return float(value) if isinstance(value, int | float) else 0.0


def check_domain(text: str) -> str:
    """``your-name.ngrok-free.app`` (an ``https://`` prefix and a trailing slash are dropped)."""
    value = text.strip().lower().removeprefix("https://").removeprefix("http://").rstrip("/")
    if not _HOSTNAME.match(value):
        raise UsageError(
            f"--tunnel-domain {text!r}: expected a host name such as your-name.ngrok-free.app",
            hint="your free static domain is at https://dashboard.ngrok.com/domains",
        )
    return value


def check_region(text: str) -> str:
    """Normalise an ``--tunnel-region`` value; a usage error when ngrok has no such region."""
    value = text.strip().lower()
    if value not in NGROK_REGIONS:
        raise UsageError(
            f"--tunnel-region {text!r}: not an ngrok region",
            hint="use one of "
            + ", ".join(NGROK_REGIONS)
            + " (or leave it out: ngrok picks the closest)",
        )
    return value


def one_line(text: str, limit: int = 200) -> str:
    """Text from another program, safe for a terminal: one line, printable, bounded."""
    first = text.strip().splitlines()[0] if text.strip() else ""
    cleaned = "".join(ch if ch.isprintable() else "?" for ch in first)
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1] + "…"


# --- finding (or installing) the ngrok agent -----------------------------------------------------


def _agent(path: str | None) -> str | None:
    """An ngrok agent at ``path``: an executable file that is not pyngrok's own ``ngrok`` console
    script (that wrapper would start a download behind our back)."""
    if not path or not Path(path).is_file() or not os.access(path, os.X_OK):
        return None
    try:
        with Path(path).open("rb") as handle:
            head = handle.read(4096)
    except OSError:
        return None
    if head.startswith(b"#!") and _PYNGROK_SCRIPT.search(head):
        return None
    return path


def default_agent_path() -> str:
    """Where pyngrok keeps the agent (``PYNGROK_NGROK_PATH``, else ngrok's config directory),
    computed now rather than at pyngrok's import time."""
    from pyngrok import installer

    configured = os.environ.get("PYNGROK_NGROK_PATH")
    if configured:
        return configured
    return str(Path(installer.get_default_ngrok_dir()) / installer.get_ngrok_bin())


def find_agent(explicit: str | None = None) -> str | None:
    """The ngrok agent executable to run, or ``None`` when none is installed."""
    if explicit:
        return _agent(explicit)
    return _agent(default_agent_path()) or _agent(shutil.which("ngrok"))


def install_agent(path: str, say: Say) -> str:
    """Download the agent with pyngrok's installer; its progress line goes to stderr."""
    from pyngrok import installer
    from pyngrok.exception import PyngrokError

    try:
        url = installer.get_ngrok_cdn_url("3")
    except PyngrokError as exc:
        raise TunnelError(
            f"pyngrok cannot install ngrok on this machine ({one_line(str(exc))})",
            hint="install the agent from https://ngrok.com/download and put it on PATH",
        ) from None
    say(f"ngrok agent not found: downloading it once from {url} to {path} (pyngrok's installer)")
    try:
        with contextlib.redirect_stdout(sys.stderr):
            installer.install_ngrok(path, ngrok_version="3")
    except (PyngrokError, OSError) as exc:
        raise TunnelError(
            f"could not download the ngrok agent ({one_line(str(exc))})",
            hint="check this machine's network, or install it from https://ngrok.com/download",
        ) from None
    found = _agent(path)
    if found is None:
        raise TunnelError(f"the ngrok agent was downloaded but {path} is not executable")
    say(f"ngrok agent installed at {path}")
    return found


# --- the machine's ngrok configuration ----------------------------------------------------------


def machine_configs() -> list[Path]:
    """ngrok's default config files, newest layout first (``ngrok config check`` prints the same)."""
    from pyngrok import installer

    return [
        Path(installer.get_default_ngrok_dir()) / "ngrok.yml",
        Path.home() / ".ngrok2" / "ngrok.yml",  # ngrok v2's location, still read by v3
    ]


def config_authtoken(path: Path) -> str | None:
    """The ``authtoken`` of an ngrok config (v2: top level; v3: under ``agent:``)."""
    try:
        with path.open(encoding="utf-8") as handle:
            text = handle.read(MAX_PROBE_BYTES)
    except (OSError, UnicodeDecodeError):
        return None
    match = _AUTHTOKEN_LINE.search(text)
    return match.group(1) if match else None


@dataclass(frozen=True)
class AgentConfig:
    """The ngrok config file the agent runs with and where its authtoken comes from."""

    path: str  # the ngrok config file the agent is started with
    token_origin: str  # where the authtoken comes from, for the user


def agent_config(authtoken: str | None) -> AgentConfig:
    """paymobctl's own ngrok config holding its authtoken (0600, in its state directory: on the
    agent's command line the token would show in ``ps``), else the machine's ngrok config."""
    if authtoken:
        path = runtime_dir() / "ngrok.yml"
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            # JSON strings are YAML strings: the token is quoted whatever it holds.
            text = f'version: "3"\nagent:\n  authtoken: {json.dumps(authtoken)}\n'
            write_atomically(path, text, mode=0o600)
        except OSError as exc:
            raise TunnelError(
                f"cannot write paymobctl's ngrok config {path} ({exc.strerror or exc})"
            ) from None
        return AgentConfig(str(path), "paymobctl's ngrok_authtoken")
    existing = next((p for p in machine_configs() if p.is_file()), None)
    if existing is not None and config_authtoken(existing):
        return AgentConfig(str(existing), f"the ngrok config {existing}")
    raise TunnelError(
        "no ngrok authtoken",
        hint="set NGROK_AUTHTOKEN, `paymobctl config set ngrok_authtoken -`, or run `ngrok config "
        "add-authtoken TOKEN` (token: https://dashboard.ngrok.com/get-started/your-authtoken)",
    )


# --- the ngrok tunnel ----------------------------------------------------------------------------


def _quiet(text: str) -> None:
    del text


@dataclass
class NgrokTunnel:
    """A tunnel through the ngrok agent, driven by pyngrok."""

    options: TunnelOptions = field(default_factory=TunnelOptions)
    say: Say = _quiet
    _config: Any = field(default=None, init=False)

    def open(self, port: int) -> str:
        """Start the agent (installing it when allowed) and return the tunnel's public URL."""
        from pyngrok import conf, ngrok
        from pyngrok.exception import PyngrokError, PyngrokNgrokError

        # pyngrok logs ngrok's own lines; they are not for the user's terminal.
        logging.getLogger("pyngrok").addHandler(logging.NullHandler())
        logging.getLogger("pyngrok").propagate = False
        settings = agent_config(self.options.authtoken)
        binary = find_agent(self.options.ngrok_path)
        if binary is None:
            if self.options.ngrok_path:
                raise TunnelError(f"{self.options.ngrok_path} is not an ngrok agent executable")
            if not self.options.install:
                raise TunnelError(
                    f"the ngrok agent is not installed (looked at {default_agent_path()} and PATH)",
                    hint="let paymobctl download it (drop --no-install / ngrok_install = false), or "
                    "install it from https://ngrok.com/download",
                )
            binary = install_agent(default_agent_path(), self.say)
        if not self.options.authtoken:
            self.say(f"ngrok authtoken: from {settings.token_origin}")
        self._config = conf.PyngrokConfig(
            ngrok_path=binary,
            config_path=settings.path,
            region=self.options.region,
            # The monitor thread keeps reading ngrok's log: an unread pipe would fill and stall it.
            monitor_thread=True,
            startup_timeout=15,
        )
        self._config.auth_token = None  # in the config file, never on the command line
        extra: dict[str, Any] = {}
        if self.options.domain:
            # pyngrok >= 9 creates v3 endpoints (a ``url``); older ones v2 tunnels (a ``domain``).
            if getattr(self._config, "config_version", "2") == "3":
                extra["url"] = f"https://{self.options.domain}"
            else:
                extra["domain"] = self.options.domain
        try:
            opened = ngrok.connect(str(port), "http", pyngrok_config=self._config, **extra)
        except PyngrokNgrokError as exc:
            self.close()
            raise _ngrok_failure(exc.ngrok_error or str(exc)) from None
        except (PyngrokError, OSError) as exc:
            self.close()
            raise _ngrok_failure(str(exc)) from None
        return public_base(str(opened.public_url or ""))

    def close(self) -> None:
        """Stop the agent, best effort; nothing to do when it never started."""
        if self._config is None:
            return
        from pyngrok import ngrok

        with contextlib.suppress(Exception):  # best effort on the way out
            ngrok.kill(pyngrok_config=self._config)


def _ngrok_failure(text: str) -> TunnelError:
    detail = one_line(text) or "no detail"
    lowered = detail.lower()
    if "authtoken" in lowered or "authentication" in lowered or "4018" in lowered:
        hint = "check the ngrok authtoken (https://dashboard.ngrok.com/get-started/your-authtoken)"
    elif "already online" in lowered or "err_ngrok_334" in lowered:
        hint = "another ngrok agent already serves this URL: stop it (another `paymobctl listen`?)"
    elif "domain" in lowered or "hostname" in lowered:
        hint = (
            "use the static domain reserved on your account (https://dashboard.ngrok.com/domains)"
        )
    else:
        hint = "check that this machine can reach ngrok's servers"
    return TunnelError(f"ngrok could not open a tunnel ({detail})", hint=hint)


def public_base(url: str) -> str:
    """ngrok serves https on every http endpoint: prefer it (a loopback URL stays as given)."""
    url = url.rstrip("/")
    parts = urlsplit(url)
    if parts.scheme == "http" and not is_local(parts.hostname or ""):
        return "https://" + url.removeprefix("http://")
    return url


def _ngrok(options: TunnelOptions, say: Say) -> Tunnel:
    return NgrokTunnel(options, say)


# --- cloudflared quick tunnels -------------------------------------------------------------------

# cloudflared prints the quick tunnel's URL in a box on stderr:
#   INF |  Your quick Tunnel has been created! Visit it at (it may take some time to be reachable):  |
#   INF |  https://four-dashed-word-url.trycloudflare.com                                     |
_BOXED_URL = re.compile(r"\|\s+(https?://[^\s|]+)\s+\|")
CLOUDFLARED_DOWNLOAD = (
    "https://developers.cloudflare.com/cloudflare-one/connections/connect-networks/downloads/"
)


class CloudflaredTunnel:
    """A Cloudflare quick tunnel (``cloudflared tunnel --url``): no account, a random
    ``*.trycloudflare.com`` URL each time, which may take a few seconds to become reachable."""

    settle_seconds = 30.0

    def __init__(self, options: TunnelOptions, say: Say = _quiet, *, timeout: float = 30.0) -> None:
        self.options = options
        self.say = say
        self.timeout = timeout
        self._process: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None

    def open(self, port: int) -> str:
        """Start a cloudflared quick tunnel and return its public URL from its log."""
        binary = shutil.which("cloudflared")
        if binary is None:
            raise TunnelError(
                "cloudflared is not installed (looked on PATH)",
                hint=f"install it from {CLOUDFLARED_DOWNLOAD} (quick tunnels need no account)",
            )
        command = [binary, "tunnel", "--no-autoupdate", "--url", f"http://127.0.0.1:{port}"]
        self._process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
            start_new_session=True,  # Ctrl-C is the listener's to handle; close() stops it
        )
        found: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        started = threading.Event()
        self._reader = threading.Thread(
            target=_read_log,
            args=(self._process, found, started),
            name="cloudflared-log",
            daemon=True,
        )
        self._reader.start()
        deadline = time.monotonic() + self.timeout
        last = ""
        while time.monotonic() < deadline:
            try:
                line = found.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if line is None:  # cloudflared exited
                break
            match = _BOXED_URL.search(line)
            if match:
                started.set()
                return match.group(1).rstrip("/")
            if " ERR " in line or line.startswith("failed"):
                last = line
        self.close()
        detail = one_line(last) or f"no tunnel URL within {self.timeout:g} s"
        raise TunnelError(
            f"cloudflared could not open a quick tunnel ({detail})",
            hint="check that this machine can reach Cloudflare (api.trycloudflare.com)",
        )

    def close(self) -> None:
        """Stop cloudflared, killing it if it does not exit in time."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
        if self._reader is not None:
            self._reader.join(timeout=5)  # it reads to the end of the log, then stops
        if process.stderr is not None:
            process.stderr.close()


def _read_log(
    process: subprocess.Popen[str], lines: queue.SimpleQueue[str | None], started: threading.Event
) -> None:
    """Read cloudflared's log to the end (an unread pipe would stall it), bounded per line;
    once the URL is known the lines are dropped."""
    stream = process.stderr
    if stream is None:
        return
    for line in iter(lambda: stream.readline(4096), ""):
        if not started.is_set():
            lines.put(line)
    lines.put(None)


def _cloudflared(options: TunnelOptions, say: Say) -> Tunnel:
    return CloudflaredTunnel(options, say)


FACTORIES: dict[str, Callable[[TunnelOptions, Say], Tunnel]] = {
    "ngrok": _ngrok,
    "cloudflared": _cloudflared,
}


def create(kind: str, options: TunnelOptions, say: Say = _quiet) -> Tunnel:
    """The tunnel named by ``--tunnel``; a usage error for an unknown name."""
    factory = FACTORIES.get(kind)
    if factory is None:
        raise UsageError(
            f"unknown --tunnel {kind!r}", hint="use --tunnel " + " or ".join(sorted(FACTORIES))
        )
    return factory(options, say)


# --- supervision ---------------------------------------------------------------------------------


class TunnelState(StrEnum):
    """Whether the supervised tunnel is up, reconnecting, or gave up."""

    UP = "up"
    DOWN = "down"  # a check failed; reconnecting
    FAILED = "failed"  # reconnecting gave up (for now, or for good with --require-tunnel)


@dataclass(frozen=True)
class TunnelEvent:
    """A change in the tunnel's state, reported once to the terminal and the run file."""

    state: TunnelState
    public_url: str | None
    message: str  # one line for the terminal
    changed: bool = False  # the public URL is not the one printed before


def probe(
    public_url: str, listener_id: str, *, timeout: float, client: httpx.Client | None = None
) -> str | None:
    """GET ``/healthz`` through the public URL (bounded: ``timeout`` in all, a size cap). None
    when this very listener answered, else what went wrong (never text from the answer)."""
    import httpx

    from paymobctl import outbound

    http = client or outbound.client()
    try:
        reply = outbound.request(
            http,
            "GET",
            f"{public_url}/healthz",
            timeout=timeout,
            max_bytes=MAX_PROBE_BYTES,
            headers=PROBE_HEADERS,
        )
    except httpx.TimeoutException:
        return f"no answer through the public URL within {timeout:g} s"
    except httpx.HTTPError as exc:
        return f"the public URL is unreachable ({type(exc).__name__})"
    finally:
        if client is None:
            http.close()
    if reply.status_code != 200:
        return f"the public URL answered {reply.status_code}"
    try:
        answered = reply.json().get("listener")
    except (ValueError, AttributeError):
        answered = None
    if answered != listener_id:
        return "the public URL is answered by something other than this listener"
    return None


BACKOFF = (1.0, 2.0, 4.0, 8.0, 16.0, 30.0)  # seconds before each reconnect attempt of a round


class Supervisor:
    """Checks the tunnel every ``interval`` seconds from a thread; reopens it when it drops.

    Every state change is reported once through ``on_event`` (called from the supervisor's
    thread). With ``require``, giving up sets :attr:`gave_up`, which the server watches to exit.
    """

    def __init__(
        self,
        tunnel: Tunnel,
        port: int,
        public_url: str,
        listener_id: str,
        *,
        on_event: Callable[[TunnelEvent], None],
        require: bool = False,
        interval: float = 5.0,
        timeout: float = 5.0,
        backoff: Sequence[float] | None = None,
        checker: Callable[[str], str | None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.tunnel = tunnel
        self.port = port
        self.listener_id = listener_id
        self.on_event = on_event
        self.require = require
        self.interval = interval
        self.backoff = tuple(BACKOFF if backoff is None else backoff)
        self.check = checker or (lambda url: probe(url, listener_id, timeout=timeout))
        self.clock = clock
        self.gave_up = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.public_url: str | None = public_url
        self.state = TunnelState.UP
        self.problem: str | None = None
        self.checked_at: float | None = None
        self.reconnects = 0
        self.settle = settle_seconds(tunnel)
        self._settled_at = time.monotonic() + self.settle  # failures before: not yet a drop

    def snapshot(self) -> Mapping[str, Any]:
        """The tunnel's state for ``/healthz``."""
        with self._lock:
            return {
                "tunnel": {
                    "state": self.state.value,
                    "public_url": self.public_url,
                    "problem": self.problem,
                    "checked_at": self.checked_at,
                    "reconnects": self.reconnects,
                }
            }

    def start(self) -> None:
        """Start watching the tunnel from a daemon thread."""
        self._thread = threading.Thread(target=self._run, name="paymobctl-tunnel", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop watching; waits up to 10 s for the thread to end."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _set(self, state: TunnelState, url: str | None, problem: str | None) -> None:
        with self._lock:
            self.state, self.public_url, self.problem = state, url, problem
            self.checked_at = self.clock()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            url = self.public_url
            problem = self.check(url) if url else "the tunnel is closed"
            if problem is None:
                self._set(TunnelState.UP, url, None)
                self._settled_at = 0.0
                continue
            if time.monotonic() < self._settled_at:
                continue  # a new URL still propagating (cloudflared quick tunnels)
            self._set(TunnelState.DOWN, url, problem)
            self.on_event(
                TunnelEvent(TunnelState.DOWN, url, f"tunnel DOWN: {problem} — reconnecting")
            )
            if not self._recover(url) and self.require:
                self.gave_up.set()
                return

    def _confirm(self, url: str) -> str | None:
        """Check a just-opened URL, for up to ``settle`` seconds if it is not reachable yet."""
        deadline = time.monotonic() + self.settle
        while True:
            problem = self.check(url)
            if problem is None or time.monotonic() >= deadline:
                return problem
            if self._stop.wait(min(1.0, self.interval)):
                return problem

    def _recover(self, previous: str | None) -> bool:
        """Reopen with backoff. False when every attempt of one round failed."""
        while not self._stop.is_set():
            problem = "not retried"
            for delay in self.backoff:
                if self._stop.wait(delay):
                    return True
                self.tunnel.close()
                try:
                    url = self.tunnel.open(self.port)
                except TunnelError as exc:
                    problem = exc.message
                    continue
                problem = self._confirm(url) or ""
                if problem:
                    continue
                with self._lock:
                    self.reconnects += 1
                self._set(TunnelState.UP, url, None)
                changed = url != previous
                message = f"tunnel UP again: {url}"
                if changed:
                    message += " (NEW URL: the old one no longer reaches this listener)"
                self.on_event(TunnelEvent(TunnelState.UP, url, message, changed=changed))
                return True
            self._set(TunnelState.FAILED, None, problem)
            tries = len(self.backoff)
            if self.require:
                self.on_event(
                    TunnelEvent(
                        TunnelState.FAILED,
                        None,
                        f"tunnel could not be restored after {tries} attempts ({problem}); "
                        "stopping (--require-tunnel)",
                    )
                )
                return False
            self.on_event(
                TunnelEvent(
                    TunnelState.FAILED,
                    None,
                    f"tunnel still down after {tries} attempts ({problem}); serving locally "
                    "only, still retrying",
                )
            )
        return True


# --- readiness (`paymobctl config doctor`) --------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    """One line of ``config doctor``'s tunnel readiness: good or not, and what was found."""

    ok: bool
    text: str


def readiness(authtoken_origin: str | None, *, install: bool) -> list[Finding]:
    """Whether ``listen --tunnel ngrok`` can start here: the agent and the authtoken."""
    findings = []
    agent = find_agent()
    if agent:
        findings.append(Finding(True, f"ngrok agent: {agent}"))
    elif install:
        findings.append(
            Finding(
                True,
                f"ngrok agent: not installed; `listen --tunnel ngrok` downloads it once to "
                f"{default_agent_path()}",
            )
        )
    else:
        findings.append(
            Finding(
                False,
                "ngrok agent: not installed and ngrok_install = false: install it from "
                "https://ngrok.com/download",
            )
        )
    if authtoken_origin:
        findings.append(Finding(True, f"ngrok authtoken: {authtoken_origin}"))
    else:
        machine = next((p for p in machine_configs() if config_authtoken(p)), None)
        findings.append(
            Finding(True, f"ngrok authtoken: from the ngrok config {machine}")
            if machine
            else Finding(
                False,
                "ngrok authtoken: none (set NGROK_AUTHTOKEN or `paymobctl config set "
                "ngrok_authtoken -`)",
            )
        )
    return findings
