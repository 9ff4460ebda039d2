"""`kleis.py serve` itself, as a user runs it: the start line, the first answers, clean exits, clear start-up errors."""

from __future__ import annotations

import signal
import socket
from pathlib import Path

import httpx
import pytest

from tests.support.cli import START_LINE, start_serve, stop
from tests.support.cli import run_kleis as run


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_serve_answers_and_stops_cleanly(tmp_path: Path, sig: int) -> None:
    data_dir = tmp_path / "data"
    created = run(data_dir, "keys", "create", "--name", "laptop")  # another command creates the store first
    key = created.stdout.splitlines()[0]
    process, lines = start_serve(data_dir)
    try:
        secret = (data_dir / "admin.secret").read_text().strip()
        assert any(secret in line for line in lines[:-1])  # the first start says the admin secret, whoever made it
        proxy, admin = START_LINE.match(lines[-1]).groups()
        health = httpx.get(f"{proxy}/healthz", timeout=5)
        assert health.status_code == 200 and health.json()["status"] == "ok"
        body = {"model": "claude-sonnet-4-5", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
        refused = httpx.post(f"{proxy}/v1/messages", json=body, timeout=5)
        assert refused.status_code == 401 and refused.json()["type"] == "error"
        no_account = httpx.post(f"{proxy}/v1/messages", json=body, headers={"x-api-key": key}, timeout=5)
        assert no_account.status_code == 503 and "claude" in no_account.json()["error"]["message"].lower()
        assert httpx.get(f"{admin}/admin/login", timeout=5).status_code == 200
    finally:
        code = stop(process, sig)
    assert code == 0, process.stderr.read()
    assert key not in process.stderr.read()

    again, lines = start_serve(data_dir)
    try:
        assert not any(secret in line for line in lines)  # shown once only
    finally:
        assert stop(again, signal.SIGTERM) == 0

    (data_dir / "admin.secret").unlink()  # rotating it: the new one is shown at the next start
    rotated, lines = start_serve(data_dir)
    try:
        new_secret = (data_dir / "admin.secret").read_text().strip()
        assert new_secret != secret and any(new_secret in line for line in lines)
    finally:
        assert stop(rotated, signal.SIGTERM) == 0


def test_a_busy_port_is_one_clear_line(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = str(busy.getsockname()[1])
        for env, names in (
            ({"KLEIS_PORT": port}, "KLEIS_HOST/KLEIS_PORT"),
            ({"KLEIS_PORT": "0", "KLEIS_ADMIN_PORT": port}, "KLEIS_ADMIN_HOST/KLEIS_ADMIN_PORT"),
        ):
            result = run(tmp_path / "data", "serve", env=env)
            assert result.returncode == 1
            assert result.stderr.strip().splitlines()[-1] == f"kleis: error: {names}: " + (
                f"cannot listen on 127.0.0.1:{port}: Address already in use"
                if names.startswith("KLEIS_HOST")
                else f"the admin cannot listen on 127.0.0.1:{port}: Address already in use"
            )
            assert "Traceback" not in result.stderr


def test_bad_listen_hosts_are_refused_before_start(tmp_path: Path) -> None:
    for name in ("KLEIS_HOST", "KLEIS_ADMIN_HOST"):
        result = run(tmp_path / "data", "serve", env={name: "not a host"})
        assert (
            result.returncode != 0
            and result.stderr.strip() == f"kleis: error: {name}: must be an IP address or a host name, got 'not a host'"
        )
    assert not (tmp_path / "data").exists()


def test_a_missing_key_file_is_named_and_not_replaced(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    assert run(data_dir, "keys", "create", "--name", "laptop").returncode == 0
    (data_dir / "secret.key").unlink()
    result = run(data_dir, "keys", "list")
    assert result.returncode != 0 and "secret.key is missing" in result.stderr and "KLEIS_SECRET_KEY" in result.stderr
    assert not (data_dir / "secret.key").exists()  # no useless new key written
