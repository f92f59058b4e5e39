"""The shop over real HTTP (the sandbox's callbacks must reach it) and in-process for requests."""

import socket
import sqlite3
import threading
import time

import pytest
import uvicorn
from fastapi.testclient import TestClient
from shop.app import create_app


@pytest.fixture(scope="session")
def database(tmp_path_factory):
    return str(tmp_path_factory.mktemp("shop") / "shop.sqlite3")


@pytest.fixture(scope="session")
def live_url(database):
    """Like pytest-django's live_server: the app served from a thread on a free port."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(create_app(database), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    server.should_exit = True
    thread.join(10)
    sock.close()


@pytest.fixture
def client(database, live_url, paymob_env, paymob_sandbox):
    """A clean shop whose Paymob is the sandbox (PAYMOB_* patched by paymob_env)."""
    with sqlite3.connect(database) as connection:
        connection.executescript("delete from deposits; delete from cards;")
    paymob_sandbox.set_callback_urls(
        f"{live_url}/api/payments/webhook/", f"{live_url}/api/payments/response/"
    )
    with TestClient(create_app(database)) as test_client:
        yield test_client
