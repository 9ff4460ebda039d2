"""Which conversation a request belongs to, so that every turn of it goes to the same account (prompt cache and
thinking signatures live on the account that made them).

First match wins: Claude Code's `x-claude-code-session-id` header or the `session_id` in `metadata.user_id` (a JSON
string in current Claude Code, `user_…_session_<uuid>` in older ones); Codex CLI's `session-id` / `session_id`
header or the body's `prompt_cache_key`; OpenCode's `x-session-affinity` / `x-session-id` (1.18, for custom providers)
or `x-opencode-session`; else a hash of the client key, the model and the first user message.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from typing import Any

_LEGACY_USER_ID = re.compile(r"_session_([0-9A-Za-z-]{8,})$")


def claude_session(body: Mapping[str, Any]) -> str | None:
    """The session id Claude Code puts in `metadata.user_id`."""
    metadata = body.get("metadata")
    user_id = metadata.get("user_id") if isinstance(metadata, dict) else None
    if not isinstance(user_id, str) or not user_id:
        return None
    if user_id.startswith("{"):
        try:
            parsed = json.loads(user_id)
        except ValueError:
            return None
        session = parsed.get("session_id") if isinstance(parsed, dict) else None
        return session if isinstance(session, str) and session else None
    legacy = _LEGACY_USER_ID.search(user_id)
    return legacy.group(1) if legacy else None


HASHED_CHARS = 4096  # enough to tell conversations apart; a huge first message is not hashed whole on every turn


def _texts(content: Any) -> str:
    """The text of a message's content: a string, or the text parts of a list (images and files left out)."""
    if isinstance(content, str):
        return content[:HASHED_CHARS]
    parts = [part.get("text") for part in content if isinstance(part, dict)] if isinstance(content, list) else []
    return "\n".join(text for text in parts if isinstance(text, str))[:HASHED_CHARS]


def first_user_text(body: Mapping[str, Any]) -> str:
    """The first user turn's text (Messages and Chat `messages`, Responses `input`), for the fallback hash."""
    items = body.get("messages") if isinstance(body.get("messages"), list) else body.get("input")
    if isinstance(items, str):
        return items[:HASHED_CHARS]
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict) and item.get("role") == "user":
            return _texts(item.get("content"))
    return ""


Source = Callable[[Mapping[str, str], Mapping[str, Any]], str | None]


def _text(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def _header(*names: str) -> Source:
    return lambda headers, body: next((found for name in names if (found := _text(headers.get(name)))), None)


# In order; the first that names the conversation wins.
SOURCES: tuple[Source, ...] = (
    _header("x-claude-code-session-id"),
    lambda headers, body: claude_session(body),
    _header("session-id", "session_id"),
    lambda headers, body: _text(body.get("prompt_cache_key")),
    _header("x-session-affinity", "x-session-id", "x-opencode-session", "conversation_id", "conversation-id"),
)


def conversation_id(headers: Mapping[str, str], body: Mapping[str, Any], key_id: int | None, model: str) -> str:
    """A stable id for the conversation (lower-case header names), scoped to the client key."""
    scope = f"k{key_id}"
    found = named_conversation(headers, body)
    if found is not None:
        return f"{scope}:{found[:200]}"
    digest = hashlib.sha256(f"{model}\0{first_user_text(body)}".encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return f"{scope}:h:{digest}"


def named_conversation(headers: Mapping[str, str], body: Mapping[str, Any]) -> str | None:
    """The conversation's id as the client names it (SOURCES), if it does."""
    return next((value for source in SOURCES if (value := source(headers, body))), None)
