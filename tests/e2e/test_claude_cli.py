"""`kleis.py accounts login|import claude` end to end: subprocesses, a temporary data dir, fake Claude OAuth."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.fakes.claude import ACCOUNT, FakeClaudeAPI
from tests.fakes.oauth import FakeOAuth
from tests.support.cli import run_kleis as run
from tests.support.env import LOOPBACK_ENV, ROOT

URL_LINE = re.compile(r"^\s*(\S+/oauth/authorize\?\S+)\s*$", re.MULTILINE)


@pytest.fixture
def env(claude_auth: FakeOAuth) -> Iterator[dict[str, str]]:
    api = FakeClaudeAPI(valid_tokens=claude_auth.issued_access).start()
    yield {"KLEIS_CLAUDE_AUTH_BASE": claude_auth.url, "KLEIS_CLAUDE_API_BASE": api.url}
    api.stop()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


def consent(fake: FakeOAuth, output: str) -> tuple[str, str]:
    """(code, state) for the authorize URL the CLI printed, as a browser consent would give them."""
    match = URL_LINE.search(output)
    assert match, output
    query = {k: v[0] for k, v in parse_qs(urlsplit(match.group(1)).query).items()}
    code = fake.authorize(challenge=query["code_challenge"], redirect_uri=query["redirect_uri"], client_id=query["client_id"])
    return code, query["state"]


def claude_accounts(data_dir: Path, env: dict[str, str]) -> list[dict]:
    listed = run(data_dir, "accounts", "list", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    return [a for a in json.loads(listed.stdout) if a["provider"] == "claude"]


def test_login_without_a_terminal_prints_the_url_then_finishes_with_code_input(
    data_dir: Path, env: dict[str, str], claude_auth: FakeOAuth
) -> None:
    started = run(data_dir, "accounts", "login", "claude", env=env)
    assert started.returncode == 1
    assert "--code-input" in started.stderr and "Traceback" not in started.stderr
    assert "warning:" in started.stderr and "terms" in started.stderr
    code, state = consent(claude_auth, started.stdout)

    forged = run(data_dir, "accounts", "login", "claude", "--code-input", f"{code}#{'0' * 32}", env=env)
    assert forged.returncode == 1 and "does not match one Kleis issued" in forged.stderr
    assert claude_accounts(data_dir, env) == []

    finished = run(data_dir, "accounts", "login", "claude", "--code-input", f"{code}#{state}", env=env)
    assert finished.returncode == 0, finished.stderr
    assert "added" in finished.stdout and ACCOUNT["email_address"] in finished.stdout
    assert "sk-ant-" not in finished.stdout + finished.stderr
    [account] = claude_accounts(data_dir, env)
    assert account["identity"] == ACCOUNT["uuid"] and account["status"] == "active" and account["has_refresh_token"]

    again = run(data_dir, "accounts", "login", "claude", env=env)
    bare_code, _ = consent(claude_auth, again.stdout)
    updated = run(data_dir, "accounts", "login", "claude", "--code-input", bare_code, env=env)  # a bare code: the only login
    assert updated.returncode == 0 and "updated" in updated.stdout, updated.stderr
    assert len(claude_accounts(data_dir, env)) == 1

    run(data_dir, "accounts", "login", "claude", env=env)
    second_code, second_state = consent(claude_auth, run(data_dir, "accounts", "login", "claude", env=env).stdout)
    ambiguous = run(data_dir, "accounts", "login", "claude", "--code-input", second_code, env=env)
    assert ambiguous.returncode == 1 and "several claude logins are in progress" in ambiguous.stderr
    assert run(data_dir, "accounts", "login", "claude", "--code-input", f"{second_code}#{second_state}", env=env).returncode == 0


def test_code_input_with_no_login_started(data_dir: Path, env: dict[str, str]) -> None:
    result = run(data_dir, "accounts", "login", "claude", "--code-input", "somecode", env=env)
    assert result.returncode == 1 and "accounts login claude` first" in result.stderr


def test_interactive_login_reads_the_pasted_code_from_the_terminal(data_dir: Path, env: dict[str, str], claude_auth: FakeOAuth) -> None:
    primary, secondary = os.openpty()
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("KLEIS_")}
    child_env.update(LOOPBACK_ENV, KLEIS_DATA_DIR=str(data_dir), **env)
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "kleis.py"), "accounts", "login", "claude"],
        stdin=secondary,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=child_env,
        text=True,
    )
    os.close(secondary)
    try:
        printed = ""
        deadline = time.time() + 30
        while not URL_LINE.search(printed) and time.time() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            printed += line
        code, state = consent(claude_auth, printed)
        os.write(primary, f"{code}#{state}\n".encode())
        out, err = process.communicate(timeout=30)
    finally:
        os.close(primary)
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    assert "Paste the code" in err and "added" in out
    assert len(claude_accounts(data_dir, env)) == 1


def test_import_both_formats_and_refuse_bad_files(data_dir: Path, env: dict[str, str], claude_auth: FakeOAuth, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"claudeAiOauth": {"accessToken": "sk-ant-oat01-partial"}}))
    refused = run(data_dir, "accounts", "import", "claude", "--file", str(bad), env=env)
    assert refused.returncode == 1 and "claudeAiOauth.refreshToken is missing" in refused.stderr
    assert "Traceback" not in refused.stderr and "sk-ant-oat01-partial" not in refused.stderr
    assert claude_accounts(data_dir, env) == []

    access, refresh = claude_auth.seed()
    claude_code = tmp_path / ".credentials.json"
    claude_code.write_text(
        json.dumps({"claudeAiOauth": {"accessToken": access, "refreshToken": refresh, "expiresAt": int(time.time() * 1000) + 3_600_000}})
    )
    imported = run(data_dir, "accounts", "import", "claude", "--file", str(claude_code), env=env)
    assert imported.returncode == 0, imported.stderr
    assert "added" in imported.stdout and "warning:" in imported.stderr

    access, refresh = claude_auth.seed()
    opencode = tmp_path / "auth.json"
    opencode.write_text(
        json.dumps({"anthropic": {"type": "oauth", "access": access, "refresh": refresh, "expires": int(time.time() * 1000) + 3_600_000}})
    )
    again = run(data_dir, "accounts", "import", "claude", "--file", str(opencode), env=env)
    assert again.returncode == 0 and "updated" in again.stdout, again.stderr
    [account] = claude_accounts(data_dir, env)
    assert account["metadata"]["imported_from"] == "OpenCode"

    missing_flag = run(data_dir, "accounts", "import", "claude", env=env)
    assert missing_flag.returncode != 0 and "--file" in missing_flag.stderr
