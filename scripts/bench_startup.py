#!/usr/bin/env python3
"""Startup benchmark: median wall time of `paymobctl --help` and `paymobctl hmac verify` against
`python -c "import typer"`, measured in the same run (these machines are noisy)."""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

from benchlib import isolated_env, paymobctl_command

TARGET_MS = 100.0


def measure(command: list[str], runs: int, env: dict[str, str]) -> list[float]:
    subprocess.run(
        command, env=env, capture_output=True, check=False, stdin=subprocess.DEVNULL
    )  # warm
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        done = subprocess.run(
            command, env=env, capture_output=True, check=False, stdin=subprocess.DEVNULL
        )
        times.append((time.perf_counter() - started) * 1000)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(command)} failed: {done.stderr.decode()}")
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=21)
    args = parser.parse_args()
    cli = paymobctl_command()
    with tempfile.TemporaryDirectory() as home:
        env = isolated_env(home)
        cases = [
            ("python -c pass", [sys.executable, "-c", "pass"]),
            ('python -c "import typer" (reference)', [sys.executable, "-c", "import typer"]),
            ("paymobctl --help", [*cli, "--help"]),
            ("paymobctl hmac verify", [*cli, "hmac", "verify", "--sample", "docs-transaction"]),
        ]
        rows = [(name, measure(cmd, args.runs, env)) for name, cmd in cases]
    reference = statistics.median(rows[1][1])
    print(
        f"startup benchmark: {args.runs} runs each, {os.cpu_count()} CPUs, Python {sys.version.split()[0]}"
    )
    print(f"{'command':42} {'median ms':>10} {'p90 ms':>8} {'vs typer':>9}")
    failed = False
    for name, times in rows:
        median = statistics.median(times)
        p90 = sorted(times)[int(len(times) * 0.9) - 1]
        print(f"{name:42} {median:10.1f} {p90:8.1f} {median - reference:+8.1f}")
        if name.startswith("paymobctl") and median > TARGET_MS:
            failed = True
    print(
        f"target: paymobctl commands under {TARGET_MS:.0f} ms median -> {'MISSED' if failed else 'met'}"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
