"""The runtime record of a running ``paymobctl listen``: its local and public URLs, in the state dir.

``listen`` writes the record once it is ready, rewrites it when its tunnel URL changes and
removes it on exit. Other commands (``deposit --flow intention``, ``checklist``, ``config
doctor``) read it to find the listener. A record whose process is gone (killed, crashed) is
stale: reading it removes it, so nothing ever sends Paymob a URL that no one answers.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from paymobctl.documents import loads_json
from paymobctl.models import is_local, is_tunnel_host
from paymobctl.paths import runtime_dir, write_atomically

if TYPE_CHECKING:
    from paymobctl.config import Settings

MAX_RECORD_BYTES = 64 * 1024  # a record is a few hundred bytes; anything bigger is not ours
R = TypeVar("R")


@dataclass(frozen=True)
class ListenerRecord:
    """What a running ``listen`` writes about itself so other commands can find it."""

    pid: int
    local_url: str  # http://127.0.0.1:8000
    webhook_path: str  # /api/payments/webhook/
    response_path: str  # /api/payments/response/
    started_at: str  # ISO 8601
    tunnel: str | None = None  # "ngrok" when a tunnel was asked for
    public_url: str | None = None  # the tunnel's https base URL while it is up
    tunnel_state: str = "none"  # none | up | down | failed

    @property
    def public_webhook(self) -> str | None:
        """The webhook URL to give Paymob while the tunnel is up."""
        return f"{self.public_url}{self.webhook_path}" if self.public_url else None

    @property
    def public_response(self) -> str | None:
        """The response (redirect) URL to give Paymob while the tunnel is up."""
        return f"{self.public_url}{self.response_path}" if self.public_url else None

    def with_tunnel(self, public_url: str | None, state: str) -> ListenerRecord:
        """A copy with the tunnel's new public URL and state."""
        return replace(self, public_url=public_url, tunnel_state=state)


def listener_path() -> Path:
    """Where the running listener's record lives."""
    return runtime_dir() / "listen.json"


def pid_alive(pid: int) -> bool:
    """Whether a process with this id is still running (to spot a stale record)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    except OSError:
        return False
    return True


def write_listener(record: ListenerRecord, path: Path | None = None) -> str | None:
    """Write atomically (0600 in a 0700 directory). Returns a problem instead of raising: the
    listener keeps serving either way."""
    target = path or listener_path()
    try:
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_atomically(target, json.dumps(asdict(record)), mode=0o600)
    except OSError as exc:
        return f"could not record the running listener in {target}: {exc.strerror or exc}"
    return None


def read_record(path: Path, parse: Callable[[dict[str, Any]], R | None]) -> R | None:
    """A runtime record (a small JSON object this package wrote) at ``path``, read with a size
    and nesting bound and checked by ``parse``; None when absent. A file that is not such a
    record is stale: it is removed (the one reader of the listener's and the sandboxes' files)."""
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_RECORD_BYTES + 1)
    except OSError:
        return None
    record = None
    if len(raw) <= MAX_RECORD_BYTES:
        try:
            data = loads_json(raw)
        except (ValueError, UnicodeDecodeError):  # TooDeep is a ValueError too
            data = None
        record = parse(data) if isinstance(data, dict) else None
    if record is None:
        discard(path)
    return record


def discard(path: Path) -> None:
    """Remove a stale runtime record (gone already is fine)."""
    with contextlib.suppress(OSError):
        path.unlink()


def read_listener(
    path: Path | None = None, *, alive: Callable[[int], bool] = pid_alive
) -> ListenerRecord | None:
    """The running listener, or None. A stale or unreadable record is removed and ignored."""
    target = path or listener_path()
    record = read_record(target, _parse)
    if record is None or not alive(record.pid):
        discard(target)
        return None
    return record


def remove_listener(pid: int, path: Path | None = None) -> None:
    """Remove the record if it is this process's (a newer listener may have replaced it)."""
    target = path or listener_path()
    current = read_listener(target)
    if current is not None and current.pid == pid:
        discard(target)


def stale_callback_urls(settings: Settings, listener: ListenerRecord | None) -> list[str]:
    """Warnings for configured callback URLs that point at a tunnel or this machine but not at
    the running listener's live tunnel: the dashboard and the profile still hold an old tunnel
    URL, so Paymob's callbacks go nowhere. A deployment's URL is deliberate and not warned about."""
    if listener is None or not listener.public_url or listener.tunnel_state != "up":
        return []
    expected = {
        "processed_callback_url": listener.public_webhook,
        "response_callback_url": listener.public_response,
    }
    warnings = []
    for key, want in expected.items():
        url = settings.get(key)
        if not isinstance(url, str) or not want:
            continue
        host = urlsplit(url).hostname or ""
        if not (is_tunnel_host(host) or is_local(host)):
            continue  # a deployment's URL: deliberately elsewhere
        if url.rstrip("/") != want.rstrip("/"):
            warnings.append(
                f"{key} is {url}, not the running listener's tunnel: set it (and Paymob's "
                f"dashboard) to {want}"
            )
    return warnings


def _parse(data: dict[str, Any]) -> ListenerRecord | None:
    if not isinstance(data.get("pid"), int):
        return None
    texts = ("local_url", "webhook_path", "response_path", "started_at", "tunnel_state")
    optional = ("tunnel", "public_url")
    if not all(isinstance(data.get(k), str) for k in texts) or not all(
        data.get(k) is None or isinstance(data.get(k), str) for k in optional
    ):
        return None
    try:
        return ListenerRecord(**data)
    except TypeError:  # unknown or missing keys: not a record this version wrote
        return None
