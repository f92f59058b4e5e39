#!/usr/bin/env python3
"""Receiver benchmark: signed TRANSACTION callbacks over 32 connections to `paymobctl listen` and,
in the same run, to a minimal reference app that only parses the JSON, verifies the HMAC and does
one SQLite insert (same uvicorn, same SQLite settings). Reports callbacks/s, p50, p99 and lost
events (answered 2xx but not in the database). Uses wrk when installed, else a Python generator.

Targets: listen >= 80% of the reference rate, p99 < 10 ms, zero lost. The rates come from
saturating each server; the p99 target is judged on a second, fixed-rate run per app
(``--latency-rate``, default 1000 callbacks/s over 16 connections, latency counted from when
each request was due), because at saturation every app's latency is just connections /
throughput (Little's law: 32 connections at 4,000/s is 8 ms for everyone), so the saturated p99,
still printed, measures the load generator's concurrency more than the app.

Also reported: each server's CPU time per request (user + system of the whole process, its
threads included, over the load run; Linux /proc), which a busy machine disturbs far less
than the rates: compare listen's with the reference's of the same run.

``--inspector`` adds a third app in the same rounds: `paymobctl listen` with an inspector page's
live stream (``GET /_paymobctl/stream``, server-sent events) connected and read throughout. Target:
>= 90% of listen's rate without it.

With two or more CPUs and `taskset`, each server runs pinned to CPU 0 and the load generator to
CPU 1 (`--no-pin` to turn it off): otherwise the load generator and the servers' background
threads fight over the same cores and a run measures the scheduler more than the apps. Pinned,
each app gets exactly one core for everything it does, background threads included.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from paymobctl import callbacks, signing
from paymobctl.callbacks import TransactionSpec
from paymobctl.delivery import wire_json
from paymobctl.models import CallbackKind
from paymobctl.sandbox_profile import SANDBOX

PATH = "/api/payments/webhook/"
SECRET = SANDBOX.hmac_secret

REFERENCE_APP = r"""
import hashlib, hmac, json, sqlite3, sys
from urllib.parse import parse_qsl

FIELDS = ["amount_cents", "created_at", "currency", "error_occured", "has_parent_transaction", "id",
          "integration_id", "is_3d_secure", "is_auth", "is_capture", "is_refunded", "is_standalone_payment",
          "is_voided", "order.id", "owner", "pending", "source_data.pan", "source_data.sub_type",
          "source_data.type", "success"]
KEY = sys.argv[2].encode()
conn = sqlite3.connect(sys.argv[1], isolation_level=None, check_same_thread=False)
conn.execute("PRAGMA journal_mode = WAL")
conn.execute("PRAGMA synchronous = NORMAL")
conn.execute("CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY, body BLOB, hmac TEXT, valid INTEGER)")

def render(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    return "" if v is None else str(v)

def value(obj, path):
    for part in path.split("."):
        obj = obj[part]
    return obj

async def app(scope, receive, send):
    if scope["type"] != "http":
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    received = dict(parse_qsl(scope["query_string"].decode())).get("hmac", "")
    obj = json.loads(body)["obj"]
    digest = hmac.new(KEY, "".join(render(value(obj, f)) for f in FIELDS).encode(), hashlib.sha512).hexdigest()
    valid = hmac.compare_digest(digest, received)
    conn.execute("INSERT INTO events (body, hmac, valid) VALUES (?, ?, ?)", (body, received, int(valid)))
    await send({"type": "http.response.start", "status": 200 if valid else 401,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": b'{"detail":"ok"}'})
"""

LUA = r"""
local requests = {}
local index = 0
function init(args)
  local file = io.open(args[1], "r")
  for line in file:lines() do
    local tab = line:find("\t")
    table.insert(requests, wrk.format("POST", line:sub(1, tab - 1),
      {["Content-Type"] = "application/json"}, line:sub(tab + 1)))
  end
  file:close()
  index = tonumber(args[2]) or 0
end
function request()
  index = index + 1
  if index > #requests then index = 1 end
  return requests[index]
end
"""


def build_requests(count: int, start: int = 0) -> list[tuple[str, bytes]]:
    """``count`` distinct signed callbacks (distinct transaction ids, so none is a duplicate)."""
    base = callbacks.build_transaction(
        TransactionSpec(seed=1, integration_id=SANDBOX.integration_id)
    ).body
    out = []
    for number in range(start, start + count):
        base["obj"]["id"] = 500_000_000 + number
        base["obj"]["order"]["id"] = 600_000_000 + number
        digest = signing.compute(CallbackKind.TRANSACTION, base["obj"], SECRET)
        out.append((f"{PATH}?hmac={digest}", wire_json(base)))
    return out


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit("server exited early")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("server did not start")


SERVER_CPU: list[str] = []  # ["taskset", "-c", "0"] when pinning


def pin(enabled: bool) -> str:
    """Pin servers and load generator to different CPUs when possible; says what was done."""
    if not enabled:
        return "not pinned (--no-pin)"
    if (
        (os.cpu_count() or 1) < 2
        or shutil.which("taskset") is None
        or not hasattr(os, "sched_setaffinity")
    ):
        return "not pinned (needs 2 CPUs and taskset)"
    os.sched_setaffinity(0, {1})  # this process and the load generator it starts
    SERVER_CPU[:] = ["taskset", "-c", "0"]
    return "servers pinned to CPU 0, load generator to CPU 1"


def start_listen(tmp: Path, port: int, db: Path) -> subprocess.Popen[bytes]:
    log = (tmp / f"listen-{port}.log").open("wb")
    return subprocess.Popen(
        [
            *SERVER_CPU,
            sys.executable,
            "-m",
            "paymobctl",
            "listen",
            "--port",
            str(port),
            "--db",
            str(db),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "HOME": str(tmp), "XDG_CONFIG_HOME": str(tmp / "cfg")},
    )


def start_reference(tmp: Path, port: int, db: Path) -> subprocess.Popen[bytes]:
    script = tmp / "reference_app.py"
    script.write_text(REFERENCE_APP)
    runner = (
        "import sys, uvicorn, runpy; "
        f"module = runpy.run_path({str(script)!r}); "
        "uvicorn.run(module['app'], host='127.0.0.1', port=int(sys.argv[3]), log_level='warning', access_log=False)"
    )
    return subprocess.Popen(
        [*SERVER_CPU, sys.executable, "-c", runner, str(db), SECRET, str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )


class SseClient:
    """An inspector page's live connection: reads ``/_paymobctl/stream`` until closed."""

    def __init__(self, port: int) -> None:
        import threading

        self.rows = 0
        self.status = b""
        self._sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self._sock.sendall(
            f"GET /_paymobctl/stream?after=0 HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            "Accept: text/event-stream\r\n\r\n".encode()
        )
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while True:
            try:
                data = self._sock.recv(65536)
            except OSError:
                return
            if not data:
                return
            if not self.status:
                self.status = data.split(b"\r\n", 1)[0]
            self.rows += data.count(b"event: row")

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()
        self._thread.join(timeout=5)


def count_rows(db: Path, table: str) -> int:
    conn = sqlite3.connect(db)
    try:
        return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])  # noqa: S608 - fixed names
    finally:
        conn.close()


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process so far (all its threads), or None off Linux."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_wrk(
    port: int, file: Path, offset: int, duration: int, connections: int
) -> dict[str, float]:
    script = file.with_suffix(".lua")
    script.write_text(LUA)
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{duration}s",
            "--latency",
            "-s",
            str(script),
            f"http://127.0.0.1:{port}",
            "--",
            str(file),
            str(offset),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout

    def ms(label: str) -> float:
        match = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if not match:
            return float("nan")
        value, unit = float(match.group(1)), match.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    failed = (int(non2xx.group(1)) if non2xx else 0) + (
        sum(int(g) for g in errors.groups()) if errors else 0
    )
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    return {"rate": rate, "p50": ms("50"), "p99": ms("99"), "ok": total - failed, "total": total}


def _post(path: str, body: bytes) -> bytes:
    """A signed callback as the Python load generators send it: one keep-alive POST."""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def _read_response(reader: asyncio.StreamReader) -> int:
    """One HTTP/1.1 response off a keep-alive connection (Content-Length or chunked, as uvicorn
    sends an app's answer without a length); its status code."""
    status_line = await reader.readline()
    parts = status_line.split()
    if len(parts) < 2 or not parts[1].isdigit():
        raise RuntimeError(f"not an HTTP response: {status_line!r}")
    length, chunked = 0, False
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b""):
            break
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    if not chunked:
        await reader.readexactly(length)
        return int(parts[1])
    while True:
        size = int((await reader.readline()).split(b";")[0], 16)
        await reader.readexactly(size + 2)  # the chunk and its CRLF
        if size == 0:
            return int(parts[1])


async def _python_load(
    port: int, requests: list[tuple[str, bytes]], duration: float, connections: int
) -> dict[str, float]:
    latencies: list[float] = []
    ok = total = 0
    stop = time.monotonic() + duration
    counter = iter(range(len(requests) * 100))

    async def worker() -> None:
        nonlocal ok, total
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while time.monotonic() < stop:
            path, body = requests[next(counter) % len(requests)]
            request = _post(path, body)
            started = time.perf_counter()
            writer.write(request)
            status = await _read_response(reader)
            latencies.append((time.perf_counter() - started) * 1000)
            total += 1
            ok += 200 <= status < 300
        writer.close()

    began = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(connections)))
    elapsed = time.monotonic() - began
    ordered = sorted(latencies)
    return {
        "rate": total / elapsed,
        "p50": statistics.median(ordered),
        "p99": ordered[int(len(ordered) * 0.99) - 1],
        "ok": ok,
        "total": total,
    }


async def _fixed_rate_load(
    port: int, requests: list[tuple[str, bytes]], rate: float, duration: float, connections: int
) -> dict[str, float]:
    """Latency at a fixed offered load below saturation (``rate`` callbacks/s spread over
    ``connections`` keep-alive connections): request ``i`` is due at ``start + i / rate`` and its
    latency is counted from when it was due, so a server that falls behind is charged for the
    queue it built (no coordinated omission). At saturation every latency is just
    connections / throughput (Little's law), whatever the app: this is the p99 that says how
    fast a callback is answered. The first half second is a warm-up, not counted."""
    warm = int(rate * 0.5)  # the first half second warms both ends up and is not counted
    count = warm + int(rate * duration)
    latencies: list[float] = []
    failed = 0
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.2

    async def worker(first: int) -> None:
        nonlocal failed
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for index in range(first, count, connections):
            path, body = requests[index % len(requests)]
            due = start + index / rate
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            writer.write(_post(path, body))
            status = await _read_response(reader)
            if index >= warm:
                latencies.append((loop.time() - due) * 1000)
                failed += not 200 <= status < 300
        writer.close()

    await asyncio.gather(*(worker(k) for k in range(connections)))
    ordered = sorted(latencies)
    return {
        "p50": statistics.median(ordered),
        "p99": ordered[max(0, int(len(ordered) * 0.99) - 1)],
        "max": ordered[-1],
        "failed": failed,
        "total": len(ordered),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=int, default=4, help="seconds per run")
    parser.add_argument(
        "--rounds", type=int, default=4, help="runs per app, alternating; medians reported"
    )
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument(
        "--requests",
        type=int,
        default=0,
        help="distinct signed callbacks per app (default: enough for 15000/s, so none repeats)",
    )
    parser.add_argument(
        "--python-load", action="store_true", help="use the Python generator even if wrk exists"
    )
    parser.add_argument(
        "--no-pin", action="store_true", help="do not pin servers and load generator to CPUs"
    )
    parser.add_argument(
        "--latency-rate",
        type=float,
        default=1000,
        help="callbacks/s of the fixed-rate latency run per app (the p99 target; 0 skips it)",
    )
    parser.add_argument(
        "--inspector",
        action="store_true",
        help="also run listen with an inspector live stream connected (target >= 90%% of listen)",
    )
    args = parser.parse_args()
    pinning = pin(not args.no_pin)
    use_wrk = shutil.which("wrk") is not None and not args.python_load
    per_app = args.requests or args.duration * 15000
    names = ("reference", "listen", "inspector") if args.inspector else ("reference", "listen")
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in names}
    starters = {"reference": start_reference, "listen": start_listen, "inspector": start_listen}
    streamed: list[int] = []
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        block = 0
        for round_no in range(args.rounds):
            # Alternate the order each round, so drift on a noisy machine hits both alike.
            order = names if round_no % 2 == 0 else names[::-1]
            for name in order:
                requests = build_requests(per_app, start=block * per_app)  # disjoint: no duplicates
                block += 1
                file = tmp / f"{name}.tsv"
                with file.open("w") as handle:
                    for path, body in requests:
                        handle.write(path + "\t" + body.decode() + "\n")
                port, db = free_port(), tmp / f"{name}-{round_no}.db"
                process = starters[name](tmp, port, db)
                sse: SseClient | None = None
                try:
                    wait_port(port, process)
                    if name == "inspector":
                        sse = SseClient(port)
                    cpu_before = cpu_seconds(process.pid)
                    if use_wrk:
                        result = run_wrk(port, file, 0, args.duration, args.connections)
                    else:
                        result = asyncio.run(
                            _python_load(port, requests, args.duration, args.connections)
                        )
                    cpu_after = cpu_seconds(process.pid)
                    if cpu_before is not None and cpu_after is not None and result["total"]:
                        result["cpu_us"] = (cpu_after - cpu_before) / result["total"] * 1e6
                finally:
                    if sse is not None:
                        sse.close()
                        if not sse.status.endswith(b"200 OK"):
                            raise SystemExit(f"inspector stream answered {sse.status!r}")
                        streamed.append(sse.rows)
                    process.terminate()
                    process.wait(timeout=20)
                file.unlink()
                stored = count_rows(db, "events")
                answered = int(result["ok"])
                result["stored"] = stored
                result["lost"] = max(0, min(answered, per_app) - stored)
                runs[name].append(result)
        latency: dict[str, dict[str, float]] = {}
        for name in names if args.latency_rate > 0 else ():
            requests = build_requests(int(args.latency_rate * args.duration), start=block * per_app)
            block += 1
            port, db = free_port(), tmp / f"{name}-latency.db"
            process = starters[name](tmp, port, db)
            try:
                wait_port(port, process)
                latency[name] = asyncio.run(
                    _fixed_rate_load(port, requests, args.latency_rate, args.duration, 16)
                )
            finally:
                process.terminate()
                process.wait(timeout=20)
    results = {
        name: {
            "rate": statistics.median(r["rate"] for r in rs),
            "p50": statistics.median(r["p50"] for r in rs),
            "p99": statistics.median(r["p99"] for r in rs),
            "ok": sum(r["ok"] for r in rs),
            "stored": sum(r["stored"] for r in rs),
            "lost": sum(r["lost"] for r in rs),
            **(
                {"cpu_us": statistics.median(r["cpu_us"] for r in rs)}
                if all("cpu_us" in r for r in rs)
                else {}
            ),
        }
        for name, rs in runs.items()
    }
    print(
        f"listen benchmark: {'wrk' if use_wrk else 'python'} load, {args.connections} connections, "
        f"{args.rounds} alternating rounds of {args.duration} s per app (medians), {os.cpu_count()} CPUs"
    )
    print(f"  {pinning}")
    for name, rs in runs.items():
        print(
            f"  {name:9} rounds: "
            + ", ".join(f"{r['rate']:.0f}/s p99 {r['p99']:.1f} ms" for r in rs)
        )
    print(
        f"{'app':10} {'callbacks/s':>12} {'p50 ms':>8} {'p99 ms':>8} {'answered 2xx':>13} {'stored':>8} {'lost':>6}"
    )
    for name, r in results.items():
        print(
            f"{name:10} {r['rate']:12.0f} {r['p50']:8.2f} {r['p99']:8.2f} {int(r['ok']):13d} {int(r['stored']):8d} "
            f"{int(r['lost']):6d}"
        )
    if all("cpu_us" in r for r in results.values()):
        print(
            "server CPU per request (median of rounds): "
            + ", ".join(f"{name} {r['cpu_us']:.0f} µs" for name, r in results.items())
            + f"; listen / reference: {results['listen']['cpu_us'] / results['reference']['cpu_us']:.2f}"
        )
    for name, r in latency.items():
        print(
            f"fixed rate {args.latency_rate:.0f}/s over 16 connections, {name:9}: p50 "
            f"{r['p50']:.2f} ms, p99 {r['p99']:.2f} ms, max {r['max']:.1f} ms, "
            f"{int(r['failed'])} of {int(r['total'])} not 2xx"
        )
        results[name]["fixed_p99"] = r["p99"]
    ratio = results["listen"]["rate"] / results["reference"]["rate"]
    p99 = latency["listen"]["p99"] if "listen" in latency else float("nan")
    met = (
        ratio >= 0.8
        and p99 < 10
        and results["listen"]["lost"] == 0
        and latency["listen"]["failed"] == 0
    )
    print(
        f"listen / reference rate: {ratio:.0%}; listen p99 at {args.latency_rate:.0f}/s: "
        f"{p99:.2f} ms; targets (>= 80%, p99 < 10 ms at the fixed rate, 0 lost): "
        f"{'met' if met else 'MISSED'}"
    )
    if args.inspector:
        with_page = results["inspector"]["rate"] / results["listen"]["rate"]
        page_met = with_page >= 0.9 and results["inspector"]["lost"] == 0
        met = met and page_met
        print(
            f"listen with an inspector stream / without: {with_page:.0%} (rows streamed per round: "
            f"{', '.join(map(str, streamed))}); target >= 90%: {'met' if page_met else 'MISSED'}"
        )
    print(json.dumps({k: {m: round(v, 2) for m, v in r.items()} for k, r in results.items()}))
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
