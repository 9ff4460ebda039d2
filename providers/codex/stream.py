"""Codex streams for streaming clients: events pass untouched, except the few a Responses client would misread."""

from __future__ import annotations

import dataclasses
import secrets
import time
from collections.abc import Callable
from typing import Any

from core.jsonshape import mapping
from core.sse import SSEEvent, format_event
from providers.base import Signal
from providers.codex.errors import classify, code_of, error_object

# Events that pass without even a look at their data (the hot path): every response.* event but these.
_INSPECTED = frozenset({"response.failed", "response.done", "response.created"})


@dataclasses.dataclass
class CodexState:
    """Per-request state (Upstream.state): the session, and what the stream said about errors."""

    session_id: str
    client_stream: bool
    model: str = ""
    client_version: str = ""  # the Codex CLI version the backend saw (the caller's own, or the one Kleis presented)
    from_codex_cli: bool = False  # the caller is Codex CLI: its own identity headers went upstream
    response_id: str = ""
    events: int = 0
    error: dict[str, Any] | None = None  # the upstream's error object, when one arrived inside a 200 stream

    @property
    def error_label(self) -> str:
        """For the usage record: `upstream_stream_error:<code>`, or "" when the stream carried no error."""
        if self.error is None:
            return ""
        return f"upstream_stream_error:{code_of(self.error) or 'error'}"

    @property
    def signal(self) -> Signal | None:
        """What the in-stream error says about the account (a limit, an overload), as classify would for a status."""
        return classify(200, {}, {"error": self.error}) if self.error is not None else None

    def note_error(self, error: dict[str, Any]) -> None:
        if self.error is None:
            self.error = error


def error_events(error: dict[str, Any], state: CodexState) -> bytes:
    """An upstream error object as events clients understand.

    - `error`: a Responses error event (type/code/message/param). It also carries an `error` object, which
      makes the OpenAI SDKs raise an APIError with the upstream's message instead of ending quietly.
    - `response.failed`: what Codex CLI and other Responses clients wait for to end a turn with its error.
    """
    code = code_of(error) or "upstream_error"
    message = str(error.get("message") or "the Codex backend reported an error inside its stream")
    inner = {
        key: value
        for key, value in error.items()
        if key in ("type", "code", "message", "param", "plan_type", "resets_at", "resets_in_seconds")
    }
    inner.setdefault("message", message)
    failed = {
        "id": state.response_id or "resp_kleis_" + secrets.token_hex(12),
        "object": "response",
        "created_at": int(time.time()),
        "status": "failed",
        "model": state.model,
        "output": [],
        "error": {"code": code, "message": message},
        "incomplete_details": None,
    }
    return format_event(
        {"type": "error", "sequence_number": state.events, "code": code, "message": message, "param": error.get("param"), "error": inner},
        "error",
    ) + format_event({"type": "response.failed", "sequence_number": state.events + 1, "response": failed}, "response.failed")


def make_transformer(state: CodexState) -> Callable[[SSEEvent], bytes | None]:
    """Per event, synchronously on the proxy's loop: None (send unchanged) for all but errors and response.done."""

    def transform(event: SSEEvent) -> bytes | None:
        state.events += 1
        name = event.event
        if name is not None and name.startswith("response.") and name not in _INSPECTED:
            return None
        data = event.json()
        if not isinstance(data, dict):
            return None  # comments, keep-alives, [DONE]
        kind = name or data.get("type")
        if kind == "response.created":
            response = mapping(data.get("response"))
            state.response_id = str(response.get("id") or state.response_id)
            state.model = str(response.get("model") or state.model)
            return None
        if kind == "response.done":  # Codex's name for the end; Responses clients wait for response.completed
            return format_event(dict(data, type="response.completed"), "response.completed")
        if kind == "response.failed":  # already a Responses event clients handle: pass it, remember the error
            state.note_error(error_object(data) or {"code": "response_failed"})
            return None
        if kind == "error" or (not str(kind or "").startswith("response.") and data.get("error")):
            error = error_object(data)
            if error is not None:
                state.note_error(error)
                return error_events(error, state)
        return None

    return transform
