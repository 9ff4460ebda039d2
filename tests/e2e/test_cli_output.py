"""CLI output never passes control characters from client-chosen or provider text to the operator's terminal."""

from __future__ import annotations

import io
import json
import time

from cli.output import EscapingStream, printable
from core.config import Config
from store import usage as usage_store
from store.accounts import TokenSet, set_status, upsert_account
from store.db import Store
from tests.support.cli import run_kleis
from tests.support.env import ADMIN_SECRET

HOSTILE = "\x1b]0;owned\x07\x1b[2J\x9b31m\u202eevil\r\x08"


def test_printable_escapes_every_control_character() -> None:
    assert printable(HOSTILE) == "\\x1b]0;owned\\x07\\x1b[2J\\x9b31m\\u202eevil\\x0d\\x08"
    assert printable("claude-sonnet-4-5 · ünïcode") == "claude-sonnet-4-5 · ünïcode"
    stream = io.StringIO()
    EscapingStream(stream).write("line one\n\tline two \x1b[31m\n")  # newlines and tabs stay, escapes do not
    assert stream.getvalue() == "line one\n\tline two \\x1b[31m\n"


def test_usage_and_accounts_output_escape_control_characters(store: Store, config: Config) -> None:
    usage_store.insert_events(
        [{"request_id": "req_hostile", "created_at": time.time(), "provider": "claude", "model": HOSTILE, "status": 200}]
    )
    row, _ = upsert_account("claude", "id\x1b[1m", TokenSet("a", "r", time.time() + 3600), store.cipher, email="x\x1b]0;t\x07@e.test")
    set_status(row.id, "needs_reauth", "provider said: \x1b[8mhidden")
    env = {"KLEIS_SECRET_KEY": config.secret_key, "KLEIS_ADMIN_SECRET": ADMIN_SECRET}
    outputs = []
    for args in (
        ["usage", "--recent", "5", "--by", "model"],
        ["accounts", "list"],
        ["accounts", "show", str(row.id)],
        ["usage", "--recent", "5", "--json"],
    ):
        result = run_kleis(config.data_dir, *args, env=env)
        assert result.returncode == 0, result.stderr
        outputs.append(result.stdout)
        for text in (result.stdout, result.stderr):
            assert not any(ch in text for ch in "\x1b\x07\x9b\u202e\r\x08"), (args, text)
    assert "\\x1b]0;owned" in outputs[0] and "\\x1b[8mhidden" in outputs[2]
    assert json.loads(outputs[3])["recent"][0]["model"] == HOSTILE  # JSON keeps the value exactly, escaped by JSON itself
