"""Which conversation a request belongs to (providers.conversation): each client's own session id, first match wins,
else a hash of the key, the model and the first user message."""

from __future__ import annotations

import json

import pytest

from providers.conversation import conversation_id

CLAUDE_USER_ID = json.dumps({"device_id": "ab" * 32, "account_uuid": "", "session_id": "2b0c6f2e-8a51-4d0e-9a57-3f7f0c9d1e11"})
MESSAGES = [{"role": "user", "content": "fix the bug"}]


@pytest.mark.parametrize(
    ("headers", "body", "expected"),
    [
        ({"x-claude-code-session-id": "cc-header"}, {"metadata": {"user_id": CLAUDE_USER_ID}}, "cc-header"),
        ({}, {"metadata": {"user_id": CLAUDE_USER_ID}}, "2b0c6f2e-8a51-4d0e-9a57-3f7f0c9d1e11"),
        ({}, {"metadata": {"user_id": "user_abc_account_123_session_5d1e0f3a-4b5c"}}, "5d1e0f3a-4b5c"),  # Claude Code < 2.1.78
        ({"session-id": "codex-hyphen"}, {"prompt_cache_key": "cache"}, "codex-hyphen"),
        ({"session_id": "codex-underscore"}, {}, "codex-underscore"),
        ({}, {"prompt_cache_key": "cache-key"}, "cache-key"),
        ({"x-session-affinity": "ses_opencode", "x-session-id": "other"}, {}, "ses_opencode"),
        ({"x-session-id": "ses_2"}, {}, "ses_2"),
        ({"x-opencode-session": "ses_zen"}, {}, "ses_zen"),
    ],
)
def test_each_clients_session_id(headers: dict, body: dict, expected: str) -> None:
    assert conversation_id(headers, {**body, "messages": MESSAGES}, 7, "m") == f"k7:{expected}"


def test_without_a_session_id_the_first_user_message_names_the_conversation() -> None:
    first = conversation_id({}, {"messages": MESSAGES}, 7, "claude-sonnet-5")
    later_turn = conversation_id({}, {"messages": [*MESSAGES, {"role": "assistant", "content": "done"}]}, 7, "claude-sonnet-5")
    assert first == later_turn and first.startswith("k7:h:")
    assert conversation_id({}, {"messages": [{"role": "user", "content": "another task"}]}, 7, "claude-sonnet-5") != first
    assert conversation_id({}, {"messages": MESSAGES}, 8, "claude-sonnet-5") != first  # another key: another conversation
    assert conversation_id({}, {"input": "fix the bug"}, 7, "gpt-5.4") == conversation_id({}, {"input": "fix the bug"}, 7, "gpt-5.4")


def test_a_malformed_claude_user_id_falls_through() -> None:
    body = {"metadata": {"user_id": "{not json"}, "messages": MESSAGES}
    assert conversation_id({}, body, 1, "m").startswith("k1:h:")


def test_the_hash_reads_text_parts_only_and_a_bounded_prefix() -> None:
    parts = [{"type": "text", "text": "describe this"}, {"type": "image", "source": {"type": "base64", "data": "AAAA"}}]
    with_image = conversation_id({}, {"messages": [{"role": "user", "content": parts}]}, 1, "m")
    assert with_image == conversation_id({}, {"messages": [{"role": "user", "content": "describe this"}]}, 1, "m")
    long = "x" * 100_000
    assert conversation_id({}, {"input": long}, 1, "m") == conversation_id({}, {"input": long + "tail"}, 1, "m")
