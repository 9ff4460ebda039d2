"""`kleis.py accounts login|import codex` end to end: subprocesses, a temporary data dir, the fake auth host."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import LOOPBACK_ENV
from tests.fakes.codex_auth import FakeCodexAuth

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def auth() -> Iterator[FakeCodexAuth]:
    fake = FakeCodexAuth().start()
    yield fake
    fake.stop()


@pytest.fixture
def kleis(tmp_path: Path, auth: FakeCodexAuth):  # type: ignore[no-untyped-def]
    def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith("KLEIS_")}
        env.update(LOOPBACK_ENV, KLEIS_DATA_DIR=str(tmp_path / "data"), KLEIS_CODEX_AUTH_BASE=auth.url)
        return subprocess.run(
            [sys.executable, str(ROOT / "kleis.py"), *args], capture_output=True, text=True, env=env, input=stdin, timeout=60
        )

    return run


def accounts(kleis) -> list[dict]:  # type: ignore[no-untyped-def]
    listed = kleis("accounts", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    return json.loads(listed.stdout)


def test_browser_login_prints_the_url_then_completes_with_callback_url(kleis, auth) -> None:
    first = kleis("accounts", "login", "codex")  # stdin is not a TTY: print the URL, then name the missing flag
    assert first.returncode == 1
    assert first.stderr.startswith("kleis: error: --callback-url is required")
    url = re.search(r"^(http://\S+/oauth/authorize\?\S+)$", first.stdout, re.M)
    assert url is not None and "OpenAI's terms" in first.stdout
    landed = auth.consent(url.group(1))
    done = kleis("accounts", "login", "codex", "--callback-url", landed, "--label", "laptop")
    assert done.returncode == 0, done.stderr
    assert "codex account 1 (alice@example.test) added" in done.stdout
    [row] = accounts(kleis)
    assert (row["provider"], row["label"], row["status"], row["metadata"]["account_id"]) == ("codex", "laptop", "active", "acc-1111-aaaa")
    every_output = first.stdout + first.stderr + done.stdout + done.stderr + json.dumps(row)
    assert not any(token in every_output for token in auth.issued_access | auth.live_refresh)


def test_callback_url_without_a_login_in_progress(kleis) -> None:
    result = kleis("accounts", "login", "codex", "--callback-url", "http://localhost:1455/auth/callback?code=abc")
    assert result.returncode == 1 and "no Codex login is in progress" in result.stderr


def test_bad_flag_combinations_and_values(kleis) -> None:
    both = kleis("accounts", "login", "codex", "--device", "--callback-url", "x")
    assert both.returncode == 1 and "do not go together" in both.stderr
    assert kleis("accounts", "login", "codex", "--device", "--timeout", "-1").returncode == 2


def test_device_login_end_to_end(kleis, auth) -> None:
    began = time.monotonic()
    result = kleis("accounts", "login", "codex", "--device", "--timeout", "30")
    assert result.returncode == 0, result.stderr
    assert f"{auth.url}/codex/device" in result.stdout and re.search(r"code [0-9A-F]{4}-[0-9A-F]{6}", result.stdout)
    assert "added" in result.stdout and time.monotonic() - began < 15
    assert len(auth.received("/api/accounts/deviceauth/token")) == 2  # pending once, then approved
    assert accounts(kleis)[0]["identity"] == "acc-1111-aaaa:user-alice"


def test_device_login_timeout(kleis, auth) -> None:
    auth.approve_after = None
    result = kleis("accounts", "login", "codex", "--device", "--timeout", "1.5")
    assert result.returncode == 1 and "timed out after 1.5s" in result.stderr
    assert accounts(kleis) == []


def test_import_both_formats_and_refusals(kleis, auth, tmp_path: Path) -> None:
    missing_flag = kleis("accounts", "import", "codex")
    assert missing_flag.returncode == 1 and "--file PATH is required" in missing_flag.stderr
    bad = tmp_path / "bad.json"
    bad.write_text('{"tokens": {"access_token": "SECRET-at"}}')
    refused = kleis("accounts", "import", "codex", "--file", str(bad))
    assert refused.returncode == 1 and "tokens.refresh_token" in refused.stderr and "SECRET" not in refused.stderr
    assert accounts(kleis) == []
    good = tmp_path / "auth.json"
    good.write_text(json.dumps(auth.codex_cli_auth_json()))
    imported = kleis("accounts", "import", "codex", "--file", str(good))
    assert imported.returncode == 0 and "added" in imported.stdout, imported.stderr
    opencode = tmp_path / "opencode.json"
    access, refresh = auth.seed()
    opencode.write_text(
        json.dumps({"openai": {"type": "oauth", "access": access, "refresh": refresh, "expires": int(time.time() * 1000) + 60000}})
    )
    again = kleis("accounts", "import", "codex", "--file", str(opencode))
    assert again.returncode == 0 and "updated" in again.stdout, again.stderr
    [row] = accounts(kleis)
    assert row["metadata"]["imported_from"] == "opencode" and row["has_refresh_token"]


def test_interactive_paste_with_a_retry_after_a_wrong_address(tmp_path: Path, auth) -> None:
    """On a terminal: the URL is printed, a wrong paste is explained, the right one completes the login."""
    import pty

    env = {k: v for k, v in os.environ.items() if not k.startswith("KLEIS_")}
    env.update(LOOPBACK_ENV, KLEIS_DATA_DIR=str(tmp_path / "data"), KLEIS_CODEX_AUTH_BASE=auth.url)
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "kleis.py"), "accounts", "login", "codex", "--no-listen", "--timeout", "30"],
        stdin=terminal,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )
    os.close(terminal)
    try:
        assert process.stdout is not None
        lines = []
        while not lines or "/oauth/authorize?" not in lines[-1]:
            lines.append(process.stdout.readline())
            assert lines[-1], "kleis ended before printing the URL"
        url = lines[-1].strip()
        os.write(controller, (auth.consent(url, state="not-this-login") + "\n").encode())
        os.write(controller, (auth.consent(url) + "\n").encode())
        out, err = process.communicate(timeout=30)
    finally:
        os.close(controller)
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    assert "does not match" in out and "Paste the address again" in out and "added" in out
