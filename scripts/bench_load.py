#!/usr/bin/env python3
"""Load-engine benchmark: `simulate … --count`'s engine (paymobctl.load) against `wrk`, in the same
run, against the same loopback no-op receiver (an asyncio protocol on uvloop with the httptools
parser that reads each request and answers 200, keep-alive).

paymobctl sends distinct callbacks, each with its own ids and its own HMAC; wrk replays one
pre-signed request of the same size, so wrk's rate is the ceiling of what the receiver answers.

Targets: >= 3,000 signed deliveries/s, and >= 0.5x wrk's rate. Without wrk (apt-get install wrk)
the comparison is skipped and the script says so. Servers are pinned to CPU 0 and the load
generators to CPU 1 when there are two CPUs and taskset (as scripts/bench_listen.py does).
"""

from __future__ import annotations

import argparse
import resource
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench_listen import SERVER_CPU, free_port, pin, run_wrk, wait_port

from paymobctl import callbacks, load
from paymobctl.callbacks import TransactionSpec

PATH = "/api/payments/webhook/"
SECRET = "bench-load-hmac-secret"

# The cheapest correct HTTP/1.1 receiver Python offers: an asyncio protocol on uvloop with the
# httptools parser (what uvicorn uses underneath), keep-alive, a fixed 200 for every request. A
# uvicorn ASGI no-op costs several times more per request, and then both generators measure it.
NOOP_SERVER = r"""
import asyncio, sys, httptools, uvloop

OK = b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 15\r\n\r\n{"detail":"ok"}'

class NoOp(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport
        self.parser = httptools.HttpRequestParser(self)

    def data_received(self, data):
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.transport.close()

    def on_message_complete(self):
        self.transport.write(OK)

async def main():
    server = await asyncio.get_running_loop().create_server(NoOp, "127.0.0.1", int(sys.argv[1]))
    await server.serve_forever()

uvloop.run(main())
"""


def start_noop(tmp: Path, port: int) -> subprocess.Popen[bytes]:
    script = tmp / "noop_server.py"
    script.write_text(NOOP_SERVER)
    return subprocess.Popen(
        [*SERVER_CPU, sys.executable, str(script), str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )


def _cpu(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def paymobctl_rate(url: str, seconds: float, connections: int) -> tuple[load.Report, float]:
    """The run, and the CPU seconds this process spent per answered delivery."""
    template = callbacks.build_transaction(TransactionSpec(seed=1))
    plan = load.Plan(
        url=url, secret=SECRET, template=template, duration=seconds, concurrency=connections
    )
    before = _cpu(resource.RUSAGE_SELF)
    report = load.run(plan)
    return report, (_cpu(resource.RUSAGE_SELF) - before) / max(1, report.answered)


def wrk_rate(port: int, tmp: Path, seconds: int, connections: int) -> tuple[float, float]:
    """wrk's rate, and the CPU seconds wrk spent per request."""
    # One signed request of the same size as paymobctl's, in bench_listen's file format.
    signer = load.Signer(callbacks.build_transaction(TransactionSpec(seed=1)), SECRET)
    body, digest = signer.wire(0)
    file = tmp / "wrk-requests.txt"
    file.write_bytes(f"{PATH}?hmac={digest}\t".encode() + body + b"\n")
    before = _cpu(resource.RUSAGE_CHILDREN)
    result = run_wrk(port, file, 0, seconds, connections)
    spent = _cpu(resource.RUSAGE_CHILDREN) - before
    return result["rate"], spent / max(1.0, result["total"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=4, help="seconds per measurement")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--runs", type=int, default=2, help="alternating wrk / paymobctl rounds")
    parser.add_argument("--no-pin", action="store_true")
    args = parser.parse_args()
    pinned = pin(not args.no_pin)
    has_wrk = shutil.which("wrk") is not None
    ours: list[float] = []
    theirs: list[float] = []
    our_cpu: list[float] = []
    their_cpu: list[float] = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        port = free_port()
        server = start_noop(tmp, port)
        try:
            wait_port(port, server)
            url = f"http://127.0.0.1:{port}{PATH}"
            paymobctl_rate(url, 0.5, args.connections)  # warm-up
            for _ in range(args.runs):
                if has_wrk:
                    rate, cpu = wrk_rate(port, tmp, args.duration, args.connections)
                    theirs.append(rate)
                    their_cpu.append(cpu)
                report, cpu = paymobctl_rate(url, args.duration, args.connections)
                if report.ok != report.sent:
                    print(f"warning: {report.sent - report.ok} deliveries were not answered 2xx")
                ours.append(report.throughput)
                our_cpu.append(cpu)
                p = report.summary()["latency_ms"]
                print(
                    f"  paymobctl {report.throughput:8,.0f}/s  {cpu * 1e6:5.1f} µs CPU each  "
                    f"p50 {p['p50']} ms  p99 {p['p99']} ms"
                    + (
                        f"   wrk {theirs[-1]:8,.0f}/s  {their_cpu[-1] * 1e6:5.1f} µs CPU each"
                        if has_wrk
                        else ""
                    )
                )
        finally:
            server.terminate()
            server.wait(timeout=10)
    best = max(ours)
    print(
        f"load benchmark: {args.connections} connections, {args.duration} s x {args.runs}, {pinned}"
    )
    print(
        f"paymobctl (distinct signed callbacks): best {best:,.0f}/s (target >= 3,000/s), "
        f"{min(our_cpu) * 1e6:.1f} µs of CPU per delivery"
    )
    met = best >= 3000
    if has_wrk:
        reference = max(theirs)
        ratio = best / reference
        print(
            f"wrk (one pre-signed request):         best {reference:,.0f}/s, "
            f"{min(their_cpu) * 1e6:.1f} µs of CPU per request"
        )
        print(f"ratio paymobctl / wrk: {ratio:.2f} (target >= 0.50)")
        met = met and ratio >= 0.5
    else:
        print("wrk is not installed: the comparison with wrk was SKIPPED (apt-get install wrk)")
    # CPU per delivery does not depend on how busy the machine is; the rates do (a load
    # generator that waits for a CPU answers less per second).
    print("targets met" if met else "targets MISSED (the machine may be busy: run it again)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
