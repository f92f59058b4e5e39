"""The Locust user class: one headless master and one worker on loopback, a few seconds, against
`listen`. Locust runs in subprocesses only: importing it patches the process with gevent."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from paymobctl.load import LOAD_TRANSACTION_BASE
from paymobctl.receiver import create_app
from paymobctl.store import Store

from .servers import free_port, serve

SECRET = "locust-test-secret"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("locust") is None,
        reason="locust is not installed (pip install 'paymobctl[load]')",
    ),
]


def _locust(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PAYMOB", "LOCUST"))}
    env.update(PAYMOB_HMAC_SECRET=SECRET, HOME=str(tmp_path), PYTHONUNBUFFERED="1")
    return subprocess.Popen(
        [sys.executable, "-m", "locust", "-f", str(tmp_path / "locustfile.py"), *args],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
    )


def test_master_and_worker_send_distinct_valid_callbacks(tmp_path: Path) -> None:
    # The README's one-line locustfile.
    (tmp_path / "locustfile.py").write_text("from paymobctl.locustfile import *\n")
    store = Store(tmp_path / "listen.db")
    port = free_port()
    try:
        with serve(create_app(store=store, secret=SECRET)) as base:
            master = _locust(
                tmp_path,
                "--master", "--headless", "--expect-workers", "1", "-u", "4", "-r", "4",
                "-t", "3s", "--host", base, "--master-bind-host", "127.0.0.1",
                "--master-bind-port", str(port), "--only-summary", "--csv", str(tmp_path / "run"),
            )  # fmt: skip
            time.sleep(0.3)
            worker = _locust(
                tmp_path, "--worker", "--master-host", "127.0.0.1", "--master-port", str(port)
            )
            try:
                master_out, _ = master.communicate(timeout=90)
                worker_out, _ = worker.communicate(timeout=30)
            finally:
                for process in (master, worker):
                    if process.poll() is None:
                        process.kill()
                        process.communicate()
        assert master.returncode == 0, master_out
        assert worker.returncode == 0, worker_out
        events = store.events(limit=None)
    finally:
        store.close()
    assert len(events) > 10, master_out
    assert all(e.verdict == "valid" and e.status == 200 for e in events)
    ids = [e.transaction_id for e in events]
    assert len(set(ids)) == len(ids)  # every delivery a new callback
    assert all(i is not None and i >= LOAD_TRANSACTION_BASE for i in ids)
    stats = (tmp_path / "run_stats.csv").read_text()
    assert "POST TRANSACTION callback" in stats
