#!/usr/bin/env python3
"""Sandbox benchmark: the three-call legacy flow (auth token, order, payment key) against a running
`paymobctl sandbox`, flows per second and latency percentiles. Reference, in the same run: three
`GET /healthz` calls per flow against the same server (HTTP + uvicorn + starlette alone)."""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

import httpx
from benchlib import isolated_env, paymobctl_command, running_sandbox

from paymobctl.sandbox_profile import SANDBOX

TARGET_P50_MS = 20.0
BILLING = {
    "first_name": "B",
    "last_name": "M",
    "email": "b@example.com",
    "phone_number": "+20100",
    "apartment": "NA",
    "floor": "NA",
    "street": "NA",
    "building": "NA",
    "shipping_method": "NA",
    "postal_code": "NA",
    "city": "NA",
    "country": "EG",
    "state": "NA",
}


def flow(http: httpx.Client) -> None:
    token = http.post("/api/auth/tokens", json={"api_key": SANDBOX.api_key}).json()["token"]
    order = http.post(
        "/api/ecommerce/orders",
        json={
            "auth_token": token,
            "delivery_needed": False,
            "amount_cents": 10000,
            "currency": "EGP",
            "items": [],
        },
    ).json()
    key = http.post(
        "/api/acceptance/payment_keys",
        json={
            "auth_token": token,
            "amount_cents": 10000,
            "expiration": 3600,
            "order_id": order["id"],
            "billing_data": BILLING,
            "currency": "EGP",
            "integration_id": SANDBOX.integration_id,
        },
    )
    assert key.status_code == 201, key.text


def reference(http: httpx.Client) -> None:
    for _ in range(3):
        http.get("/healthz").raise_for_status()


def measure(http: httpx.Client, fn: object, runs: int) -> list[float]:
    assert callable(fn)
    for _ in range(20):
        fn(http)
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn(http)
        times.append((time.perf_counter() - started) * 1000)
    return times


def report(name: str, times: list[float]) -> float:
    ordered = sorted(times)
    p50 = statistics.median(ordered)
    p95 = ordered[int(len(ordered) * 0.95) - 1]
    rate = len(times) / (sum(times) / 1000)
    print(f"{name:44} {rate:9.0f}/s  p50 {p50:6.2f} ms  p95 {p95:6.2f} ms")
    return p50


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=500)
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as tmp,
        running_sandbox(paymobctl_command(), isolated_env(tmp), tmp) as url,
        httpx.Client(base_url=url, trust_env=False) as http,
    ):
        print(f"sandbox benchmark: {args.runs} sequential flows, keep-alive, {os.cpu_count()} CPUs")
        ref = report("reference: 3 x GET /healthz", measure(http, reference, args.runs))
        p50 = report("legacy flow: auth + order + payment key", measure(http, flow, args.runs))
    print(f"flow overhead over the reference: {p50 - ref:+.2f} ms at p50")
    print(
        f"target: flow p50 under {TARGET_P50_MS:.0f} ms -> {'met' if p50 < TARGET_P50_MS else 'MISSED'}"
    )
    return 0 if p50 < TARGET_P50_MS else 1


if __name__ == "__main__":
    sys.exit(main())
