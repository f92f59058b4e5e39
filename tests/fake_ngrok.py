#!/usr/bin/env python3
"""A fake ngrok agent (v3) for tests: the real pyngrok code starts it, offline.

It does what the real agent does as far as the pyngrok client sees it:

- ``ngrok start --none --log stdout [--config P] [--authtoken T] [--region R]`` prints the
  startup log lines the client waits for (``starting web service ... addr=``, ``tunnel session
  started``, ``client session established``) and serves the agent's local API on that address:
  ``GET/POST /api/endpoints`` (v3) and ``/api/tunnels`` (v2), ``DELETE`` of either.
- Each endpoint is a forwarder on a free loopback port that relays every request to the
  upstream (the listener) and its answer back: the "public URL". A static domain is reported as
  ``https://DOMAIN``; the forwarder's real address is written to ``$FAKE_NGROK_DIR/routes.json``
  so a test can reach it.
- Without an authtoken (flag or config file), or with the token ``bad-token``, or when
  ``$FAKE_NGROK_DIR/refuse`` exists, it fails to start the way ngrok does: an ``lvl=eror`` line
  with ``err=...``, then exit 1. A domain starting with ``not-mine.`` is refused by the API.
- Every start is appended to ``$FAKE_NGROK_DIR/starts.jsonl`` (argv, pid) and every endpoint
  created to ``endpoints.jsonl``; killing the process is how a test makes the tunnel drop.

Installed under the name ``cloudflared``, ``cloudflared tunnel --no-autoupdate --url URL`` is a
Cloudflare quick tunnel instead: the relay's URL in cloudflared's box on stderr. With
``$FAKE_CLOUDFLARED_DELAY`` seconds set, the relay only starts answering after that long (a
quick tunnel's DNS is not instant); ``refuse`` makes it fail like cloudflared does offline.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

STATE = Path(os.environ.get("FAKE_NGROK_DIR", "."))
LOCK = threading.Lock()


def log(msg: str, **fields: str) -> None:
    extra = " ".join(f"{k}={v}" for k, v in fields.items())
    sys.stdout.write(f't=2026-12-02T10:00:00+0000 lvl=info msg="{msg}" {extra}\n')
    sys.stdout.flush()


def fail(err: str) -> None:
    sys.stdout.write(f't=2026-12-02T10:00:00+0000 lvl=eror msg="failed to start" err="{err}"\n')
    sys.stdout.flush()
    sys.exit(1)


def append(name: str, record: dict[str, Any]) -> None:
    with LOCK, (STATE / name).open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")


def option(args: list[str], name: str) -> str | None:
    return args[args.index(name) + 1] if name in args else None


class Forwarder(BaseHTTPRequestHandler):
    upstream = ""

    def relay(self) -> None:
        target = urlsplit(self.upstream)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
        conn = http.client.HTTPConnection(target.hostname, target.port or 80, timeout=10)
        try:
            conn.request(self.command, self.path, body=body, headers=headers)
            answer = conn.getresponse()
            data = answer.read()
        except OSError:
            self.send_error(502, "upstream unreachable")
            return
        finally:
            conn.close()
        self.send_response(answer.status)
        for key, value in answer.getheaders():
            if key.lower() not in (
                "transfer-encoding",
                "connection",
                "content-length",
                "date",
                "server",
            ):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        log("join connections", obj="join", path=json.dumps(self.path))

    do_GET = do_POST = do_PUT = do_DELETE = relay

    def log_message(self, format: str, *args: Any) -> None:
        del format, args


ENDPOINTS: dict[str, dict[str, Any]] = {}
SERVERS: dict[str, ThreadingHTTPServer] = {}


def open_endpoint(body: dict[str, Any], v3: bool) -> dict[str, Any]:
    name = body.get("name") or f"ep-{uuid.uuid4().hex[:8]}"
    upstream = (body.get("upstream") or {}).get("url") or body.get("addr") or "80"
    if not str(upstream).startswith("http"):
        upstream = f"http://localhost:{upstream}"
    handler = type("Bound", (Forwarder,), {"upstream": str(upstream)})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    local = f"http://127.0.0.1:{server.server_address[1]}"
    domain = body.get("domain") or (body.get("url") or "").removeprefix("https://") or None
    public = f"https://{domain}" if domain else local
    routes_file = STATE / "routes.json"
    with LOCK:
        routes = json.loads(routes_file.read_text()) if routes_file.exists() else {}
        routes[public] = local
        routes_file.write_text(json.dumps(routes))
    append("endpoints.jsonl", {"pid": os.getpid(), "request": body, "public_url": public})
    segment = "endpoints" if v3 else "tunnels"
    data = {
        "id": f"ep_{uuid.uuid4().hex[:12]}",
        "name": name,
        "uri": f"/api/{segment}/{name}",
        "proto": "https",
        "upstream": {"url": upstream, "protocol": "http1"},
    }
    data.update({"url": public} if v3 else {"public_url": public, "config": {"addr": upstream}})
    ENDPOINTS[name] = data
    SERVERS[name] = server
    return data


class Api(BaseHTTPRequestHandler):
    def answer(self, status: int, data: Any = None) -> None:
        payload = b"" if data is None else json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def do_GET(self) -> None:
        if self.path.rstrip("/") == "/api/endpoints":
            self.answer(200, {"endpoints": list(ENDPOINTS.values()), "uri": "/api/endpoints"})
        elif self.path.rstrip("/") == "/api/tunnels":
            self.answer(200, {"tunnels": list(ENDPOINTS.values()), "uri": "/api/tunnels"})
        else:
            self.answer(404, {"error_code": 100, "msg": "not found"})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        v3 = self.path.rstrip("/") == "/api/endpoints"
        if not v3 and self.path.rstrip("/") != "/api/tunnels":
            self.answer(404, {"error_code": 100, "msg": "not found"})
            return
        wanted = str(body.get("domain") or body.get("url") or "")
        if "not-mine." in wanted:
            self.answer(
                400,
                {
                    "error_code": 102,
                    "status_code": 400,
                    "msg": "failed to start tunnel",
                    "details": {"err": "The domain is not reserved on your account. ERR_NGROK_319"},
                },
            )
            return
        self.answer(201, open_endpoint(body, v3))

    def do_DELETE(self) -> None:
        name = self.path.rstrip("/").rsplit("/", 1)[-1]
        ENDPOINTS.pop(name, None)
        server = SERVERS.pop(name, None)
        if server is not None:
            threading.Thread(target=server.shutdown, daemon=True).start()
        self.answer(204)

    def log_message(self, format: str, *args: Any) -> None:
        del format, args


def quick_tunnel(args: list[str]) -> None:
    append("starts.jsonl", {"pid": os.getpid(), "argv": args})
    if (STATE / "refuse").exists():
        sys.stderr.write(
            'failed to request quick Tunnel: Post "https://api.trycloudflare.com/tunnel": dial '
            "tcp: lookup api.trycloudflare.com: no such host\n"
        )
        sys.exit(1)
    upstream = option(args, "--url") or "http://localhost:8080"
    handler = type("Bound", (Forwarder,), {"upstream": upstream})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler, bind_and_activate=False)
    server.server_bind()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    border = "INF +" + "-" * 92 + "+"
    for line in (
        "INF Requesting new quick Tunnel on trycloudflare.com...",
        border,
        "INF |  Your quick Tunnel has been created! Visit it at (it may take some time to be reachable):  |",
        f"INF |  {url:<88}|",
        border,
    ):
        sys.stderr.write(f"2026-12-02T10:00:00Z {line}\n")
    sys.stderr.flush()
    time.sleep(float(os.environ.get("FAKE_CLOUDFLARED_DELAY") or 0))
    server.server_activate()
    server.serve_forever()


def main(args: list[str]) -> None:
    if Path(sys.argv[0]).name == "cloudflared":
        quick_tunnel(args)
        return
    if args[:1] in (["--version"], ["version"]):
        print("ngrok version 3.99.0-fake")
        return
    if args[:2] == ["config", "add-authtoken"]:
        print("Authtoken saved to configuration file: fake")
        return
    if args[:1] != ["start"]:
        sys.exit(f"fake ngrok: unsupported arguments {args}")
    append("starts.jsonl", {"pid": os.getpid(), "argv": args})
    token = option(args, "--authtoken")
    config = option(args, "--config")
    if token is None and config and Path(config).is_file():
        match = re.search(r"authtoken:\s*['\"]?([^'\"\s#]+)", Path(config).read_text())
        token = match.group(1) if match else None
    if (STATE / "refuse").exists():
        fail("failed to connect session: dial tcp: lookup connect.ngrok-agent.com: no such host")
    if not token or token == "bad-token":
        fail(
            "authentication failed: Usage of ngrok requires a verified account and authtoken. "
            "ERR_NGROK_4018"
        )
    api = ThreadingHTTPServer(("127.0.0.1", 0), Api)
    log("no configuration paths supplied", obj="config")
    log("starting web service", obj="web", addr=f"127.0.0.1:{api.server_address[1]}")
    log("tunnel session started", obj="tunnels.session")
    log("client session established", obj="csess", id=uuid.uuid4().hex[:12])
    api.serve_forever()


if __name__ == "__main__":
    main(sys.argv[1:])
