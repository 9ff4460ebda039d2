"""The admin's WSGI server under load: slow and idle connections do not take it offline."""

from __future__ import annotations

import socket
import time

import httpx
import pytest

from admin import create_app
from admin.serving import AdminServer


@pytest.fixture
def admin_server(store, config, test_providers):
    server = AdminServer(create_app(store, config), "127.0.0.1", 0, channel_timeout=3).start()
    yield server
    server.stop()


def slow_connections(port: int, count: int) -> list[socket.socket]:
    """Connections that send half a request head and then nothing (no login needed for that)."""
    held = []
    for _ in range(count):
        conn = socket.create_connection(("127.0.0.1", port), timeout=5)
        conn.sendall(b"GET /admin/login HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        held.append(conn)
    return held


def test_the_admin_answers_a_probe_while_200_slow_connections_are_held(admin_server) -> None:
    held = slow_connections(admin_server.port, 200)
    try:
        started = time.monotonic()
        probe = httpx.get(f"{admin_server.url}/admin/login", timeout=5)
        assert probe.status_code == 200
        assert time.monotonic() - started < 3
    finally:
        for conn in held:
            conn.close()


def test_idle_connections_are_closed_after_the_channel_timeout(admin_server) -> None:
    (conn,) = slow_connections(admin_server.port, 1)
    with conn:
        conn.settimeout(15)  # timeout 3 s, checked every 3 s: closed within about 6 s
        started = time.monotonic()
        assert conn.recv(1024) == b""  # the server hung up
        assert time.monotonic() - started < 12
