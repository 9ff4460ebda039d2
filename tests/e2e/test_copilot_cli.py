"""`accounts login copilot` and `accounts import copilot` end to end: subprocesses, a temporary data dir, the fake GitHub."""

from __future__ import annotations

import json

import pytest

from tests.fakes.copilot import FakeCopilot
from tests.fakes.github import FakeGitHub
from tests.support.cli import KleisCli


@pytest.fixture
def cli(kleis_cli: KleisCli, github: FakeGitHub, copilot_api: FakeCopilot) -> KleisCli:
    """kleis.py with GitHub at the fake and its own data dir."""
    kleis_cli.settings.update(KLEIS_GITHUB_BASE=github.url, KLEIS_GITHUB_API_BASE=github.url, KLEIS_COPILOT_API_BASE="")
    return kleis_cli


def accounts(cli: KleisCli) -> list[dict]:
    listed = cli("accounts", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    return json.loads(listed.stdout)


def no_secrets(github: FakeGitHub, *texts: str) -> None:
    secrets = list(github.github_tokens) + list(github.copilot_tokens) + list(github.devices)
    for text in texts:
        for secret in secrets:
            assert secret not in text


def test_no_wait_then_poll(cli, github) -> None:
    started = cli("accounts", "login", "copilot", "--no-wait")
    assert started.returncode == 0, started.stderr
    info = json.loads(started.stdout)
    assert info["kind"] == "device" and info["user_code"] and info["verification_uri"] == f"{github.url}/login/device"
    assert info["poll_command"] == f"python kleis.py accounts login copilot --poll {info['flow_id']}"
    assert "GitHub" in info["warning"] and accounts(cli) == []

    finished = cli("accounts", "login", "copilot", "--poll", info["flow_id"])
    assert finished.returncode == 0, finished.stderr
    assert "copilot account 1 (octocat@example.test) added; Copilot token exchange" in finished.stdout
    assert github.too_fast_polls == 0 and len(github.received("/login/oauth/access_token")) == 3
    listed = accounts(cli)
    assert [(a["provider"], a["status"], a["label"], a["has_refresh_token"]) for a in listed] == [("copilot", "active", "octocat", True)]
    assert listed[0]["metadata"]["mode"] == "exchange"
    no_secrets(github, started.stdout, started.stderr, finished.stdout, finished.stderr, json.dumps(listed))


def test_interactive_login_prints_the_code_and_waits(cli, github) -> None:
    result = cli("accounts", "login", "copilot")
    assert result.returncode == 0, result.stderr
    user_code = next(iter(github.devices.values())).user_code
    assert f"Open {github.url}/login/device and enter the code {user_code}" in result.stdout
    assert "warning:" in result.stderr and "suspended" in result.stderr
    assert "added" in result.stdout and len(accounts(cli)) == 1


def test_login_times_out_cleanly(cli, github) -> None:
    github.script = ["authorization_pending"] * 100
    result = cli("accounts", "login", "copilot", "--timeout", "0.8")
    assert result.returncode == 1
    assert "kleis: error: the Copilot login was not finished within 0.8s" in result.stderr and "--poll" in result.stderr
    assert "Traceback" not in result.stderr and accounts(cli) == []


def test_poll_of_an_unknown_login(cli) -> None:
    result = cli("accounts", "login", "copilot", "--poll", "nope")
    assert result.returncode == 1 and "unknown" in result.stderr and "Traceback" not in result.stderr


def test_import_file_token_and_stdin(cli, github, tmp_path) -> None:
    apps = tmp_path / "apps.json"
    apps.write_text(json.dumps({"github.com:Iv1.b507a08c87ecfe98": {"user": "octocat", "oauth_token": github.seed_github_token()}}))
    from_file = cli("accounts", "import", "copilot", "--file", str(apps))
    assert from_file.returncode == 0, from_file.stderr
    assert "added" in from_file.stdout and "warning:" in from_file.stderr

    from_arg = cli("accounts", "import", "copilot", "--github-token", github.seed_github_token())
    assert from_arg.returncode == 0 and "updated" in from_arg.stdout  # the same GitHub user

    from tests.fakes.github import GitHubUser

    other = github.seed_github_token(user=GitHubUser(id=42, login="hubot", email=None))
    from_stdin = cli("accounts", "import", "copilot", "--github-token", "-", stdin=other + "\n")
    assert from_stdin.returncode == 0 and "(127.0.0.1" in from_stdin.stdout and "added" in from_stdin.stdout
    assert [a["label"] for a in accounts(cli)] == ["octocat", "hubot"]
    no_secrets(github, from_file.stdout + from_file.stderr, from_arg.stdout + from_arg.stderr, from_stdin.stdout + from_stdin.stderr)


IMPORT_REFUSALS = [
    ([], "needs --file PATH or --github-token TOKEN"),
    (["--github-token", "-"], "nothing was read from stdin"),
    (["--file", "/nonexistent/apps.json"], "no file at /nonexistent/apps.json"),
    (["--github-token", "gho_" + "1" * 36], "GitHub refused the stored GitHub token"),
    (["--file", "x", "--github-token", "y"], "not allowed with argument"),
]


def test_import_refusals_name_the_problem_and_store_nothing(cli) -> None:
    for args, fragment in IMPORT_REFUSALS:  # stdin is a pipe here, never a terminal
        result = cli("accounts", "import", "copilot", *args)
        assert result.returncode != 0 and fragment in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr
    assert accounts(cli) == []
