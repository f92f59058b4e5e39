#!/usr/bin/env python3
"""Startup benchmark: median wall time of `paymobctl --help` and `paymobctl hmac verify` against
`python -c "import typer"`, measured interleaved in the same run (these machines are noisy): each
round runs every command once, so load from elsewhere falls on all of them alike."""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

from benchlib import isolated_env, paymobctl_command

TARGET_RATIO = 1.3  # issue 13: `hmac verify` at most 1.3x a bare `import typer`, same run


def run_once(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU (user + system) milliseconds of one run of `command`; a failing command
    stops the benchmark. CPU time is what the load from other processes disturbs least."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(
        command, env=env, capture_output=True, check=False, stdin=subprocess.DEVNULL
    )
    elapsed = (time.perf_counter() - started) * 1000
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime) * 1000
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed: {done.stderr.decode()}")
    return elapsed, cpu


def measure(
    commands: list[list[str]], runs: int, env: dict[str, str]
) -> list[tuple[list[float], list[float]]]:
    """`runs` rounds, each running every command once (interleaved), after one warm-up round;
    per command its wall times and its CPU times."""
    for command in commands:
        run_once(command, env)
    times: list[tuple[list[float], list[float]]] = [([], []) for _ in commands]
    for _ in range(runs):
        for command, (wall, cpu) in zip(commands, times, strict=True):
            elapsed, used = run_once(command, env)
            wall.append(elapsed)
            cpu.append(used)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=21)
    args = parser.parse_args()
    cli = paymobctl_command()
    with tempfile.TemporaryDirectory() as home:
        env = isolated_env(home)
        # An installed package has its bytecode compiled (pip does it); without this, a
        # PYTHONDONTWRITEBYTECODE environment would measure compiling paymobctl on every run.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        cases = [
            ("python -c pass", [sys.executable, "-c", "pass"]),
            ('python -c "import typer" (reference)', [sys.executable, "-c", "import typer"]),
            ("paymobctl --help", [*cli, "--help"]),
            ("paymobctl hmac verify", [*cli, "hmac", "verify", "--sample", "docs-transaction"]),
        ]
        measured = measure([cmd for _, cmd in cases], args.runs, env)
        rows = [(name, *times) for (name, _), times in zip(cases, measured, strict=True)]
    reference = statistics.median(rows[1][1])
    cpu_reference = statistics.median(rows[1][2])
    print(
        f"startup benchmark: {args.runs} interleaved runs each, {os.cpu_count()} CPUs, "
        f"Python {sys.version.split()[0]}"
    )
    print(
        f"{'command':42} {'median ms':>10} {'p90 ms':>8} {'vs typer':>9} {'ratio':>6} "
        f"{'cpu ms':>7} {'cpu ratio':>9}"
    )
    failed = False
    for name, times, cpu_times in rows:
        median = statistics.median(times)
        p90 = sorted(times)[int(len(times) * 0.9) - 1]
        cpu = statistics.median(cpu_times)
        print(
            f"{name:42} {median:10.1f} {p90:8.1f} {median - reference:+8.1f} "
            f"{median / reference:5.2f}x {cpu:7.1f} {cpu / cpu_reference:8.2f}x"
        )
        if name.startswith("paymobctl hmac") and (
            median / reference > TARGET_RATIO or cpu / cpu_reference > TARGET_RATIO
        ):
            failed = True
    print(
        f"target: paymobctl hmac verify <= {TARGET_RATIO}x import typer, wall and CPU medians -> "
        f"{'MISSED' if failed else 'met'}"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
