"""`kleis.py accounts login|import codex` end to end: subprocesses, a temporary data dir, the fake auth host."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.fakes.codex_auth import FakeCodexAuth
from tests.support.cli import KleisCli, kleis_env
from tests.support.env import ROOT


@pytest.fixture
def cli(kleis_cli: KleisCli, codex_auth: FakeCodexAuth) -> KleisCli:
    kleis_cli.settings["KLEIS_CODEX_AUTH_BASE"] = codex_auth.url
    return kleis_cli


def accounts(cli: KleisCli) -> list[dict]:
    listed = cli("accounts", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    return json.loads(listed.stdout)


def test_browser_login_prints_the_url_then_completes_with_callback_url(cli, codex_auth) -> None:
    first = cli("accounts", "login", "codex")  # stdin is not a TTY: print the URL, then name the missing flag
    assert first.returncode == 1
    assert first.stderr.startswith("kleis: error: --callback-url is required")
    url = re.search(r"^(http://\S+/oauth/authorize\?\S+)$", first.stdout, re.M)
    assert url is not None and "OpenAI's terms" in first.stdout
    landed = codex_auth.consent(url.group(1))
    done = cli("accounts", "login", "codex", "--callback-url", landed, "--label", "laptop")
    assert done.returncode == 0, done.stderr
    assert "codex account 1 (alice@example.test) added" in done.stdout
    [row] = accounts(cli)
    assert (row["provider"], row["label"], row["status"], row["metadata"]["account_id"]) == ("codex", "laptop", "active", "acc-1111-aaaa")
    every_output = first.stdout + first.stderr + done.stdout + done.stderr + json.dumps(row)
    assert not any(token in every_output for token in codex_auth.issued_access | codex_auth.live_refresh)


def test_callback_url_without_a_login_in_progress(cli) -> None:
    result = cli("accounts", "login", "codex", "--callback-url", "http://localhost:1455/auth/callback?code=abc")
    assert result.returncode == 1 and "no Codex login is in progress" in result.stderr


def test_bad_flag_combinations_and_values(cli) -> None:
    both = cli("accounts", "login", "codex", "--device", "--callback-url", "x")
    assert both.returncode == 1 and "do not go together" in both.stderr
    assert cli("accounts", "login", "codex", "--device", "--timeout", "-1").returncode == 2


def test_device_login_end_to_end(cli, codex_auth) -> None:
    began = time.monotonic()
    result = cli("accounts", "login", "codex", "--device", "--timeout", "30")
    assert result.returncode == 0, result.stderr
    assert f"{codex_auth.url}/codex/device" in result.stdout and re.search(r"code [0-9A-F]{4}-[0-9A-F]{6}", result.stdout)
    assert "added" in result.stdout and time.monotonic() - began < 15
    assert len(codex_auth.received("/api/accounts/deviceauth/token")) == 2  # pending once, then approved
    assert accounts(cli)[0]["identity"] == "acc-1111-aaaa:user-alice"


def test_device_login_timeout(cli, codex_auth) -> None:
    codex_auth.approve_after = None
    result = cli("accounts", "login", "codex", "--device", "--timeout", "1.5")
    assert result.returncode == 1 and "timed out after 1.5s" in result.stderr
    assert accounts(cli) == []


def test_import_both_formats_and_refusals(cli, codex_auth, tmp_path: Path) -> None:
    missing_flag = cli("accounts", "import", "codex")
    assert missing_flag.returncode == 1 and "--file PATH is required" in missing_flag.stderr
    bad = tmp_path / "bad.json"
    bad.write_text('{"tokens": {"access_token": "SECRET-at"}}')
    refused = cli("accounts", "import", "codex", "--file", str(bad))
    assert refused.returncode == 1 and "tokens.refresh_token" in refused.stderr and "SECRET" not in refused.stderr
    assert accounts(cli) == []
    good = tmp_path / "auth.json"
    good.write_text(json.dumps(codex_auth.codex_cli_auth_json()))
    imported = cli("accounts", "import", "codex", "--file", str(good))
    assert imported.returncode == 0 and "added" in imported.stdout, imported.stderr
    opencode = tmp_path / "opencode.json"
    access, refresh = codex_auth.seed()
    opencode.write_text(
        json.dumps({"openai": {"type": "oauth", "access": access, "refresh": refresh, "expires": int(time.time() * 1000) + 60000}})
    )
    again = cli("accounts", "import", "codex", "--file", str(opencode))
    assert again.returncode == 0 and "updated" in again.stdout, again.stderr
    [row] = accounts(cli)
    assert row["metadata"]["imported_from"] == "opencode" and row["has_refresh_token"]


def test_interactive_paste_with_a_retry_after_a_wrong_address(tmp_path: Path, codex_auth) -> None:
    """On a terminal: the URL is printed, a wrong paste is explained, the right one completes the login."""
    import pty

    env = kleis_env(tmp_path / "data", KLEIS_CODEX_AUTH_BASE=codex_auth.url)
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
        os.write(controller, (codex_auth.consent(url, state="not-this-login") + "\n").encode())
        os.write(controller, (codex_auth.consent(url) + "\n").encode())
        out, err = process.communicate(timeout=30)
    finally:
        os.close(controller)
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    assert "does not match" in out and "Paste the address again" in out and "added" in out
