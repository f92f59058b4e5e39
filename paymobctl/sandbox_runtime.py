"""Finding the running sandbox: ``paymobctl sandbox`` leaves a runtime file with its base URL and
pid while it serves (removed on exit); other commands read it when no base URL is configured.

A file whose process is gone, or whose sandbox no longer answers ``/healthz``, is stale: it is
removed and ignored (a killed sandbox cannot clean up after itself).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from paymobctl.paths import runtime_dir, write_atomically
from paymobctl.runfile import discard, pid_alive, read_record

if TYPE_CHECKING:
    from paymobctl.config import Settings

PREFIX = "sandbox-"
SUFFIX = ".json"


@dataclass(frozen=True)
class RunningSandbox:
    """A running sandbox as its runtime file records it."""

    url: str
    pid: int
    started_at: str
    path: Path


def _file(pid: int, environ: Mapping[str, str] | None) -> Path:
    return runtime_dir(environ) / f"{PREFIX}{pid}{SUFFIX}"


def announce(url: str, *, environ: Mapping[str, str] | None = None) -> tuple[Path, str | None]:
    """Record that this process serves the sandbox at ``url``; the file and any problem."""
    path = _file(os.getpid(), environ)
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        return path, f"could not create {path.parent}: {exc.strerror or exc}"
    text = json.dumps(
        {
            "url": url,
            "pid": os.getpid(),
            "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
    )
    try:
        write_atomically(path, text + "\n", mode=0o644)  # only an address, nothing secret
    except OSError as exc:
        return path, f"could not write {path}: {exc.strerror or exc}"
    return path, None


def withdraw(path: Path) -> None:
    """Remove this sandbox's runtime file (on exit)."""
    discard(path)


def answers(url: str, timeout: float = 1.0) -> bool:
    """The sandbox at ``url`` answers its health check."""
    import httpx

    from paymobctl import outbound

    try:
        with outbound.client() as http:
            response = outbound.request(http, "GET", f"{url}/healthz", timeout=timeout)
    except httpx.HTTPError:
        return False
    return response.status_code == 200


def _read(path: Path) -> RunningSandbox | None:
    def parse(data: dict[str, Any]) -> RunningSandbox | None:
        url, pid, started_at = data.get("url"), data.get("pid"), data.get("started_at")
        if not isinstance(url, str) or type(pid) is not int or not isinstance(started_at, str):
            return None
        return RunningSandbox(url, pid, started_at, path)

    return read_record(path, parse)


def find(
    environ: Mapping[str, str] | None = None,
    *,
    alive: Callable[[int], bool] = pid_alive,
    healthy: Callable[[str], bool] = answers,
) -> RunningSandbox | None:
    """The most recently started sandbox that is still running and answering; stale files are
    removed on the way."""
    folder = runtime_dir(environ)
    try:
        paths = sorted(folder.glob(f"{PREFIX}*{SUFFIX}"))
    except OSError:
        return None
    found = [entry for entry in map(_read, paths) if entry is not None]
    for entry in sorted(found, key=lambda e: e.started_at, reverse=True):
        if alive(entry.pid) and healthy(entry.url):
            return entry
        withdraw(entry.path)
    return None


def locate(settings: Settings, environ: Mapping[str, str] | None = None) -> RunningSandbox | None:
    """The running sandbox to use instead of the built-in base URL: only for the sandbox profile
    with no base URL configured (flag, environment, .env or profile), and only when it differs."""
    from paymobctl.config import Source

    resolved = settings.values.get("base_url")
    if not settings.is_sandbox or (resolved is not None and resolved.source is not Source.BUILTIN):
        return None
    running = find(environ)
    if running is None or running.url.rstrip("/") == settings.base_url:
        return None
    return running
