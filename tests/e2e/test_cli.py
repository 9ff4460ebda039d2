"""The CLI end to end in a temporary data dir (subprocesses), including every bad-input row of #2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.cli import run_kleis as run
from tests.support.env import LOOPBACK_ENV, ROOT


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


def test_help_lists_commands_and_settings(data_dir: Path) -> None:
    result = run(data_dir, "--help")
    assert result.returncode == 0
    for word in ("serve", "debug", "keys", "accounts", "doctor", "KLEIS_DATABASE_URL", "KLEIS_SECRET_KEY"):
        assert word in result.stdout
    for sub in (["keys", "create", "--help"], ["accounts", "list", "--help"], ["doctor", "--help"]):
        assert run(data_dir, *sub).returncode == 0
    assert not data_dir.exists()  # --help touches nothing


def test_keys_lifecycle(data_dir: Path) -> None:
    created = run(
        data_dir, "keys", "create", "--name", "laptop", "--providers", "claude", "--models", "claude-*", "--expires-days", "30", "--json"
    )
    assert created.returncode == 0, created.stderr
    info = json.loads(created.stdout)
    assert info["key"].startswith("kl_") and info["providers"] == ["claude"] and info["models"] == ["claude-*"]
    assert info["expires_at"] is not None and info["translation"] is True
    native = json.loads(run(data_dir, "keys", "create", "--name", "native", "--no-translation", "--json").stdout)
    assert native["translation"] is False
    run(data_dir, "keys", "revoke", str(native["id"]))

    plain = run(data_dir, "keys", "create", "--name", "second")
    key_line = plain.stdout.splitlines()[0]
    assert key_line.startswith("kl_") and len(key_line) == 46

    listed = json.loads(run(data_dir, "keys", "list", "--json").stdout)
    assert [k["name"] for k in listed] == ["laptop", "native", "second"]
    assert all("key" not in k for k in listed)
    table = run(data_dir, "keys", "list").stdout
    assert info["key"] not in table and info["public_id"] in table

    revoked = run(data_dir, "keys", "revoke", info["public_id"])
    assert revoked.returncode == 0 and "revoked" in revoked.stdout
    assert json.loads(run(data_dir, "keys", "list", "--json").stdout)[0]["revoked_at"] is not None


def test_created_key_verifies_against_the_store(data_dir: Path) -> None:
    key = run(data_dir, "keys", "create", "--name", "t").stdout.splitlines()[0]
    check = (
        f"import sys; sys.path.insert(0, {str(ROOT)!r})\n"
        "from core.config import load_config; from store.db import open_store; from store import keys\n"
        f"open_store(load_config()); r = keys.verify({key!r}, keys.load_records()); print(r.name, r.refusal())\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("KLEIS_")}
    env.update(LOOPBACK_ENV, KLEIS_DATA_DIR=str(data_dir))
    result = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, env=env, timeout=60)
    assert result.stdout.strip() == "t None", result.stderr


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["keys", "create", "--name", "x", "--bogus"], "unrecognized arguments: --bogus"),
        (["keys", "create", "--name", "x", "--expires-days", "soon"], "must be a number of days"),
        (["keys", "create", "--name", "x", "--expires-days", "-1"], "between 0 and 36500"),
        (["keys", "create"], "the following arguments are required: --name"),
        (["keys", "create", "--name", "x", "--providers", "bard"], "unknown provider: bard"),
        (["keys", "revoke", "kl_nothere"], "no key with id 'kl_nothere'"),
        (["accounts", "remove", "7", "--yes"], "no account with id '7'"),
    ],
)
def test_bad_input_is_one_clear_message_and_changes_nothing(data_dir: Path, args: list[str], fragment: str) -> None:
    run(data_dir, "keys", "create", "--name", "existing")
    before = run(data_dir, "keys", "list", "--json").stdout
    result = run(data_dir, *args)
    assert result.returncode != 0
    assert fragment in result.stderr
    assert "Traceback" not in result.stderr
    assert run(data_dir, "keys", "list", "--json").stdout == before


def test_invalid_setting_fails_with_one_line(data_dir: Path) -> None:
    result = run(data_dir, "keys", "list", env={"KLEIS_PORT": "http"})
    assert result.returncode != 0
    assert result.stderr.strip() == "kleis: error: KLEIS_PORT: must be a port number, got 'http'"


def test_foreign_database_url_is_refused(data_dir: Path, tmp_path: Path) -> None:
    foreign = tmp_path / "foreign.db"
    import sqlite3

    con = sqlite3.connect(foreign)
    con.execute("CREATE TABLE orders (id INTEGER)")
    con.commit()
    con.close()
    result = run(data_dir, "keys", "create", "--name", "x", env={"KLEIS_DATABASE_URL": f"sqlite:///{foreign}"})
    assert result.returncode != 0 and "not a Kleis store" in result.stderr
    unknown = run(data_dir, "keys", "list", env={"KLEIS_DATABASE_URL": "mysql://db/kleis"})
    assert unknown.returncode != 0 and "KLEIS_DATABASE_URL" in unknown.stderr
    for malformed in ("sqlite:kleis.db", "sqlite://kleis.db", "sqlite:///", "sqlite:///:memory:"):
        refused = run(data_dir, "keys", "create", "--name", "x", env={"KLEIS_DATABASE_URL": malformed})
        assert refused.returncode != 0 and refused.stderr.startswith("kleis: error: KLEIS_DATABASE_URL:"), (malformed, refused.stderr)
        assert "kl_" not in refused.stdout  # no key shown that was never stored


def test_unusable_data_dir(tmp_path: Path) -> None:
    """A data dir that cannot be created or entered (as root only a pseudo filesystem refuses)."""
    if os.geteuid() == 0:
        target = Path("/proc/self/kleis-data")
    else:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o000)
        target = locked / "data"
    result = run(target, "keys", "list")
    assert result.returncode != 0
    assert "KLEIS_DATA_DIR" in result.stderr and "Traceback" not in result.stderr


def test_unreadable_data_dir_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from core.exceptions import ConfigError
    from store import db

    (tmp_path / "data").mkdir()
    monkeypatch.setattr(db.os, "access", lambda path, mode: False)
    with pytest.raises(ConfigError) as info:
        db.ensure_data_dir(tmp_path / "data")
    assert str(info.value).startswith("KLEIS_DATA_DIR:") and "not readable and writable" in str(info.value)


def test_data_dir_that_is_a_file(tmp_path: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    result = run(blocker / "data", "keys", "list")
    assert result.returncode != 0 and "KLEIS_DATA_DIR" in result.stderr


def test_doctor_reports_each_check(data_dir: Path) -> None:
    result = run(data_dir, "doctor")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert any(line.startswith("[  ok] data dir") for line in lines)
    assert any(line.startswith("[  ok] store") for line in lines)
    assert any(line.startswith("[  ok] secret key") for line in lines)
    assert "[  ok] routing: translation on: every client path reaches every model" in lines
    wrong = run(data_dir, "doctor", env={"KLEIS_SECRET_KEY": "q" * 43 + "="})
    assert wrong.returncode == 1 and "[FAIL] store" in wrong.stdout and "does not match" in wrong.stdout


def add_claude_account(data_dir: Path) -> None:
    """A Claude account (`u1`) in the store at `data_dir`, written by another process as the CLI would find it."""
    code = (
        f"import sys; sys.path.insert(0, {str(ROOT)!r})\n"
        "from core.config import load_config; from store.db import open_store; from store.accounts import upsert_account, TokenSet\n"
        "s = open_store(load_config()); upsert_account('claude', 'u1', TokenSet('a', 'r', None), s.cipher)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("KLEIS_")}
    env.update(LOOPBACK_ENV, KLEIS_DATA_DIR=str(data_dir))
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=60)


def test_doctor_says_which_provider_serves_a_model_on_each_path(data_dir: Path) -> None:
    add_claude_account(data_dir)
    lines = run(data_dir, "doctor").stdout.splitlines()
    (line,) = [line for line in lines if line.startswith("[  ok] routing claude-")]
    assert ": claude: listed by the provider's model list or models.dev — " in line
    assert "/v1/messages native" in line and "/v1/responses responses→messages" in line and "chat→messages" in line
    off = run(data_dir, "doctor", env={"KLEIS_TRANSLATION": "off"}).stdout
    assert "translation off" in off and "/v1/messages native; not on /v1/chat/completions, /v1/responses" in off


def test_remove_needs_yes_when_not_interactive(data_dir: Path) -> None:
    add_claude_account(data_dir)
    for action, status in (("disable", "disabled"), ("enable", "active"), ("primary", "active")):
        done = run(data_dir, "accounts", action, "1")
        assert done.returncode == 0, done.stderr
        assert json.loads(run(data_dir, "accounts", "list", "--json").stdout)[0]["status"] == status
    table = run(data_dir, "accounts", "list").stdout
    assert "SINCE" in table.splitlines()[0] and "* u1" in table
    shown = run(data_dir, "accounts", "show", "1")
    assert shown.returncode == 0 and "status: active since" in shown.stdout and "disabled" in shown.stdout  # the history
    history = json.loads(run(data_dir, "accounts", "show", "1", "--json").stdout)["events"]
    assert "disabled" in [e["status"] for e in history] and history[0]["status"] == "active"
    refused = run(data_dir, "accounts", "remove", "1")
    assert refused.returncode != 0 and "needs --yes" in refused.stderr
    assert json.loads(run(data_dir, "accounts", "list", "--json").stdout)[0]["id"] == 1
    assert run(data_dir, "accounts", "remove", "1", "--yes").returncode == 0
    assert json.loads(run(data_dir, "accounts", "list", "--json").stdout) == []
