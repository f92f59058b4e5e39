#!/usr/bin/env python3
"""The testing API's costs, each against a reference measured in the same run (noisy machines):

- a test using ``paymob_sandbox`` vs an empty test (target: <= 20 ms more), from one pytest run
  of a throwaway project, per-test durations (setup + call + teardown) as pytest reports them;
- building and signing a callback with ``paymobctl.testing.callback`` (target: <= 100 µs), with
  the same arguments each call and with a new order id and amount each call (as a real suite
  does; the target is judged on this one), next to bare ``hmac.new(...).hexdigest()`` of the
  same size as the reference;
- ``pytest --co`` of an empty project with the plugin vs ``-p no:paymobctl`` (target: not slower).
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
from pathlib import Path

OVERHEAD_TARGET_MS = 20.0
CALLBACK_TARGET_US = 100.0

RECORDER = """
import json, os

def pytest_runtest_logreport(report):
    path = os.environ["BENCH_DURATIONS"]
    with open(path, "a") as out:
        out.write(json.dumps([report.nodeid, report.when, report.duration]) + "\\n")
"""

TESTS = """
import pytest

@pytest.mark.parametrize("n", range({n}))
def test_empty(n):
    pass

@pytest.mark.parametrize("n", range({n}))
def test_with_sandbox(paymob_sandbox, n):
    pass

@pytest.mark.parametrize("n", range({n}))
def test_changing_sandbox(paymob_sandbox, n):
    paymob_sandbox.set_callback_urls(f"http://127.0.0.1:9/hook/{{n}}")
"""


def per_test(n: int) -> tuple[float, float, float, float]:
    """Median ms per empty test, per test using the untouched sandbox (the first, which starts
    it, excluded), per test changing it (so its successor's reset() is a full one; the change
    itself, one admin request, is counted too), and the first test."""
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "conftest.py").write_text(RECORDER)
        Path(tmp, "test_bench.py").write_text(TESTS.format(n=n))
        durations = Path(tmp, "durations.jsonl")
        env = {**os.environ, "BENCH_DURATIONS": str(durations)}
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly"],
            cwd=tmp,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise SystemExit(done.stdout + done.stderr)
        totals: dict[str, float] = {}
        for line in durations.read_text().splitlines():
            nodeid, _, seconds = json.loads(line)
            totals[nodeid] = totals.get(nodeid, 0.0) + seconds * 1000
    empty = [ms for node, ms in totals.items() if "test_empty" in node]
    sandbox = [ms for node, ms in totals.items() if "test_with_sandbox" in node]
    changing = [ms for node, ms in totals.items() if "test_changing_sandbox" in node]
    return (
        statistics.median(empty),
        statistics.median(sandbox[1:]),
        statistics.median(changing[1:]),
        sandbox[0],
    )


def build_cost(number: int, repeat: int) -> dict[str, float]:
    """Median µs of CPU time per call: ``callback()`` (build + sign), the same with a distinct
    order id and amount per call, one with a ``set=`` override, the signing alone, and a bare
    HMAC-SHA512 of the same signing string (the machine's reference). The statements take turns
    in every round, so load hits them alike."""
    from paymobctl import signing
    from paymobctl.models import CallbackKind
    from paymobctl.testing import callback

    sample = callback()
    fields = signing.collect_fields(CallbackKind.TRANSACTION, sample.obj)
    message = signing.signing_string(fields).encode()
    key = b"5ANDB0X0HMAC0SECRET0000PAYMOBCTL"
    ids = itertools.count(5_000_000)

    def varying() -> object:
        order_id = next(ids)
        return callback(order_id=order_id, amount_cents=1000 + order_id % 99_991)

    statements = {
        "callback()": callback,
        "callback(order_id=new, amount_cents=new)": varying,
        "callback(set=…)": lambda: callback(set={"obj.source_data.pan": "1111"}),
        "signing.compute": lambda: signing.compute(CallbackKind.TRANSACTION, sample.obj, "secret"),
        "bare hmac-sha512": lambda: hmac.new(key, message, hashlib.sha512).hexdigest(),
    }
    timers = {
        name: timeit.Timer(statement, timer=time.process_time)
        for name, statement in statements.items()
    }
    runs: dict[str, list[float]] = {name: [] for name in statements}
    for _ in range(repeat):
        for name, timer in timers.items():
            runs[name].append(timer.timeit(number) / number * 1e6)
    return {name: statistics.median(values) for name, values in runs.items()}


def collect_cost(runs: int) -> tuple[float, float]:
    """Median ms of ``pytest --co`` in an empty project: default (plugin loaded), -p no:paymobctl."""
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "test_nothing.py").write_text("def test_nothing():\n    pass\n")
        base = [sys.executable, "-m", "pytest", "--co", "-q", "-p", "no:cacheprovider"]
        commands = {"with": base, "without": [*base, "-p", "no:paymobctl"]}
        times: dict[str, list[float]] = {"with": [], "without": []}
        for name in ("with", "without"):  # warm both
            subprocess.run(commands[name], cwd=tmp, capture_output=True, check=True)
        for _ in range(runs):  # interleaved, so load changes hit both alike
            for name, command in commands.items():
                started = time.perf_counter()
                subprocess.run(command, cwd=tmp, capture_output=True, check=True)
                times[name].append((time.perf_counter() - started) * 1000)
    return statistics.median(times["with"]), statistics.median(times["without"])


def import_cost(runs: int) -> tuple[float, float]:
    """Median ms (``-X importtime``, cumulative) of importing the plugin module, and pytest."""
    plugin: list[float] = []
    pytest_: list[float] = []
    for _ in range(runs):
        done = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", "import pytest, paymobctl.pytest_plugin"],
            capture_output=True,
            text=True,
            check=True,
        )
        for line in done.stderr.splitlines():
            parts = [part.strip() for part in line.split("|")]
            if len(parts) == 3 and parts[2] in ("paymobctl.pytest_plugin", "pytest"):
                target = plugin if parts[2] == "paymobctl.pytest_plugin" else pytest_
                target.append(int(parts[1]) / 1000)
    return statistics.median(plugin), statistics.median(pytest_)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tests", type=int, default=60, help="tests of each kind")
    parser.add_argument("--number", type=int, default=200, help="callbacks per timing")
    parser.add_argument("--runs", type=int, default=9, help="pytest --co runs of each kind")
    args = parser.parse_args()

    empty, untouched, changing, first = per_test(args.tests)
    print(
        f"per test (median of {args.tests}): empty {empty:.2f} ms · paymob_sandbox untouched "
        f"{untouched:.2f} ms · paymob_sandbox changed (full reset) {changing:.2f} ms"
    )
    for name, value in (("untouched", untouched), ("changed", changing)):
        extra = value - empty
        verdict = "ok" if extra <= OVERHEAD_TARGET_MS else "OVER"
        print(
            f"  paymob_sandbox ({name}) adds {extra:.2f} ms (target <= {OVERHEAD_TARGET_MS:g} ms): {verdict}"
        )
    print(f"  the first test starts the server: {first:.0f} ms (once per session or xdist worker)")

    costs = build_cost(args.number, 9)
    print(
        "callback build+sign: "
        + " · ".join(f"{name} {value:.1f} µs" for name, value in costs.items())
    )
    reference = costs["bare hmac-sha512"]
    for name, judged in (
        ("callback(order_id=new, amount_cents=new)", True),
        ("callback()", False),
    ):
        built = costs[name]
        verdict = "ok" if built <= CALLBACK_TARGET_US else "OVER"
        print(
            f"  {name} {built:.1f} µs (target <= {CALLBACK_TARGET_US:g} µs"
            f"{', judged here' if judged else ''}): {verdict}; "
            f"{built / reference:.0f}x a bare HMAC on this machine"
        )

    with_plugin, without = collect_cost(args.runs)
    print(
        f"pytest --co, empty project (median of {args.runs}): with the plugin {with_plugin:.0f} ms · "
        f"-p no:paymobctl {without:.0f} ms · difference {with_plugin - without:+.0f} ms"
    )
    plugin_ms, pytest_ms = import_cost(args.runs)
    print(
        f"importing the plugin module: {plugin_ms:.1f} ms (pytest itself: {pytest_ms:.0f} ms, "
        "both cumulative, median)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
