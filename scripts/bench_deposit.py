#!/usr/bin/env python3
"""Main-job benchmark: `paymobctl demo` wall time (target < 3 s), and deposit round trips per
second against a running sandbox, next to references measured in the same run: `paymobctl --help`
for the demo, and the bare three-call legacy flow (auth, order, payment key) for deposits."""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from benchlib import isolated_env, paymobctl_command, running_sandbox

from paymobctl.client import Billing
from paymobctl.config import sandbox_settings
from paymobctl.payments import DepositRequest, client_for, create_deposit
from paymobctl.sandbox_profile import SANDBOX
from paymobctl.store import Store

DEMO_TARGET_S = 3.0
BILLING = Billing("Bench", "Mark", "bench@example.com", "+201000000000")


def wall(command: list[str], env: dict[str, str], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        done = subprocess.run(
            command, env=env, capture_output=True, check=False, stdin=subprocess.DEVNULL
        )
        times.append(time.perf_counter() - started)
        if done.returncode != 0:
            raise SystemExit(
                f"{' '.join(command)} failed: {done.stdout.decode()[-500:]} {done.stderr.decode()[-500:]}"
            )
    return times


def bare_flow(http: httpx.Client, base: str) -> None:
    token = http.post(f"{base}/api/auth/tokens", json={"api_key": SANDBOX.api_key}).json()["token"]
    order = http.post(
        f"{base}/api/ecommerce/orders",
        json={
            "auth_token": token,
            "delivery_needed": False,
            "amount_cents": 10000,
            "currency": "EGP",
        },
    ).json()
    http.post(
        f"{base}/api/acceptance/payment_keys",
        json={
            "auth_token": token,
            "amount_cents": 10000,
            "order_id": order["id"],
            "currency": "EGP",
            "integration_id": SANDBOX.integration_id,
            "billing_data": BILLING.as_dict(),
        },
    ).raise_for_status()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--demo-runs", type=int, default=7)
    parser.add_argument("--deposits", type=int, default=300)
    args = parser.parse_args()
    cli = paymobctl_command()
    with tempfile.TemporaryDirectory() as tmp:
        env = isolated_env(tmp)
        helps = wall([*cli, "--help"], env, args.demo_runs)
        demos = wall([*cli, "--db", f"{tmp}/demo.db", "demo"], env, args.demo_runs)
        with running_sandbox(cli, env, tmp) as base:
            store = Store(Path(tmp) / "deposits.db")
            settings = sandbox_settings(base)
            with httpx.Client(trust_env=False) as http:
                client = client_for(settings, http)
                for _ in range(20):
                    bare_flow(http, base)
                started = time.perf_counter()
                for _ in range(args.deposits):
                    bare_flow(http, base)
                bare = args.deposits / (time.perf_counter() - started)
                request = DepositRequest(amount_cents=10000, currency="EGP", billing=BILLING)
                started = time.perf_counter()
                for _ in range(args.deposits):
                    create_deposit(client, settings, store, request)
                ours = args.deposits / (time.perf_counter() - started)
            cli_runs = wall(
                [*cli, "--db", f"{tmp}/cli.db", "deposit", "100", "--json"],
                {**env, "PAYMOB_BASE_URL": base},
                args.demo_runs,
            )
    demo_median = statistics.median(demos)
    print(f"main-job benchmark: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    print(
        f"paymobctl demo (wall)             median {demo_median:.2f} s  min {min(demos):.2f} s  max {max(demos):.2f} s"
    )
    print(f"  reference: paymobctl --help     median {statistics.median(helps):.2f} s")
    print(f"deposit (client + store + iframe check)  {ours:7.0f} deposits/s")
    print(f"  reference: bare auth+order+key         {bare:7.0f} flows/s")
    print(
        f"paymobctl deposit (CLI process)   median {statistics.median(cli_runs) * 1000:.0f} ms per deposit"
    )
    met = demo_median < DEMO_TARGET_S
    print(f"target: demo under {DEMO_TARGET_S:.0f} s -> {'met' if met else 'MISSED'}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
