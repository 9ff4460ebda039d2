"""The tiers hold by construction: a test in tests/unit or tests/addons cannot open a socket or start a process
(tests/conftest.py)."""

from __future__ import annotations

import ast
import asyncio
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import OutsideFastTier


def test_binding_or_connecting_a_socket_fails_here() -> None:
    with socket.socket() as sock:
        with pytest.raises(OutsideFastTier, match="belongs in tests/e2e/"):
            sock.bind(("127.0.0.1", 0))
        with pytest.raises(OutsideFastTier):
            sock.connect(("127.0.0.1", 9))
        with pytest.raises(OutsideFastTier):
            sock.connect_ex(("127.0.0.1", 9))


def test_a_client_library_cannot_reach_a_loopback_server_either() -> None:
    with pytest.raises(OutsideFastTier):
        httpx.get("http://127.0.0.1:9/", timeout=1)


def test_starting_a_process_fails_here() -> None:
    with pytest.raises(OutsideFastTier, match="start a process"):
        subprocess.run([sys.executable, "-c", "pass"], check=False)


def test_an_event_loop_still_runs() -> None:
    async def answer() -> int:
        await asyncio.sleep(0)
        return 42

    assert asyncio.run(answer()) == 42


def test_nothing_outside_the_e2e_tier_imports_from_it() -> None:
    """e2e test modules may import helpers from their fast-tier siblings, never the other way (nor support or fakes)."""
    tests = Path(__file__).resolve().parents[1]
    found = [
        f"{path.relative_to(tests)}:{node.lineno}"
        for folder in ("unit", "addons", "support", "fakes")
        for path in sorted((tests / folder).rglob("*.py"))
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("tests.e2e")
    ]
    assert found == []
