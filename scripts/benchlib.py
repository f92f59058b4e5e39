"""What the scripts share: the paymobctl command, an isolated environment, a sandbox.

Imported as `benchlib` by the scripts next to it (`python scripts/bench_x.py` puts this folder
first on sys.path)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def paymobctl_command() -> list[str]:
    """The installed `paymobctl` next to this Python, else `python -m paymobctl`."""
    exe = Path(sys.executable).with_name("paymobctl")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "paymobctl"]


def isolated_env(home: str) -> dict[str, str]:
    """This environment without PAYMOB*/NGROK* variables, with HOME and XDG dirs under `home`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PAYMOB", "NGROK"))}
    env.update(HOME=home, XDG_CONFIG_HOME=f"{home}/.config", XDG_DATA_HOME=f"{home}/.local/share")
    return env


@contextmanager
def running_sandbox(cli: list[str], env: dict[str, str], tmp: str) -> Iterator[str]:
    """`paymobctl sandbox` on a free loopback port without callbacks; yields its base URL."""
    ready = Path(tmp) / "sandbox-ready"
    no_callbacks = ["--callback-url", "", "--response-url", ""]
    process = subprocess.Popen(
        [*cli, "sandbox", "--port", "0", "--ready-file", str(ready), *no_callbacks],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while not ready.exists():
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("the sandbox did not start")
            time.sleep(0.02)
        yield ready.read_text().strip()
    finally:
        process.terminate()
        process.wait(timeout=10)
