"""OpenAI Responses: the request writer (Turn → a Responses body) and the stream reader (Responses events → neutral
events, as they arrive)."""

from __future__ import annotations

import json
from typing import Any

from core.jsonshape import mapping
from providers.protocols import events as ev
from providers.protocols.turn import Image, Message, Reasoning, Text, ToolCall, ToolResult, Turn

TOOL_ERROR_PREFIX = "Error: "  # Responses has no is_error: a failed tool's output says so in its text


# -- request writer --------------------------------------------------------------------------------------------
def write_request(turn: Turn) -> dict[str, Any]:
    """A Responses body for the turn. Fields the Codex backend refuses are left to its own normalising (the provider's
    prepare); `max_tokens` has no field the backend takes, so the upstream's own limit applies."""
    body: dict[str, Any] = {
        "model": turn.model,
        "instructions": turn.system,
        "input": [item for message in turn.messages for item in _items(message)],
        "stream": True,
        "store": False,
    }
    if turn.tools:
        body["tools"] = [
            {"type": "function", "name": t.name, "description": t.description, "parameters": t.parameters, "strict": False}
            for t in turn.tools
        ]
    if turn.tool_choice is not None:
        choice = turn.tool_choice
        body["tool_choice"] = (
            {"type": "function", "name": choice.name} if choice.kind == "tool" else {"any": "required"}.get(choice.kind, choice.kind)
        )
        if turn.tools:
            body["parallel_tool_calls"] = choice.parallel
    if turn.reasoning_effort:
        body["reasoning"] = {"effort": turn.reasoning_effort}
    if turn.output_format is not None:
        body["text"] = {
            "format": {"type": "json_schema", "name": turn.output_format.name, "schema": turn.output_format.schema, "strict": False}
        }
    return body


def _items(message: Message) -> list[dict[str, Any]]:
    """One message's parts as Responses input items, in an order the upstream pairs: a user turn's tool outputs
    first (they answer the calls of the turn before), then its text and images; an assistant turn's text, then
    its calls. Reasoning from another provider is never sent (not as text, not with a foreign signature)."""
    items: list[dict[str, Any]] = []
    content: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []
    assistant = message.role == "assistant"
    for part in message.parts:
        if isinstance(part, Text):
            if part.text:
                content.append({"type": "output_text" if assistant else "input_text", "text": part.text})
        elif isinstance(part, Image):
            content.append({"type": "input_image", "image_url": part.url, "detail": "auto"})
        elif isinstance(part, ToolCall):
            calls.append({"type": "function_call", "call_id": part.id, "name": part.name, "arguments": part.arguments})
        elif isinstance(part, ToolResult):
            items.append({"type": "function_call_output", "call_id": part.call_id, "output": _output(part)})
        elif isinstance(part, Reasoning):
            continue
    if content:  # a mid-conversation system message is a developer message (the Codex backend refuses "system")
        items.append({"type": "message", "role": "developer" if message.role == "system" else message.role, "content": content})
    return items + calls


def _output(result: ToolResult) -> str | list[dict[str, Any]]:
    prefix = TOOL_ERROR_PREFIX if result.is_error else ""
    if all(isinstance(part, Text) for part in result.content):
        return prefix + "".join(part.text for part in result.content if isinstance(part, Text))
    parts: list[dict[str, Any]] = [{"type": "input_text", "text": prefix}] if prefix else []
    for part in result.content:
        parts.append(
            {"type": "input_text", "text": part.text}
            if isinstance(part, Text)
            else {"type": "input_image", "image_url": part.url, "detail": "auto"}
        )
    return parts


# -- stream reader ---------------------------------------------------------------------------------------------
FINAL = frozenset({"response.completed", "response.done", "response.incomplete"})  # response.done: Codex's name


def usage_from(value: Any) -> ev.Usage:
    """Responses usage → neutral: `input_tokens` includes the cached ones, which are counted once, as cache reads."""
    usage = mapping(value)
    total_input = _int(usage.get("input_tokens"))
    cached = _int(mapping(usage.get("input_tokens_details")).get("cached_tokens"))
    written = _int(mapping(usage.get("input_tokens_details")).get("cache_write_tokens"))
    return ev.Usage(
        input=max(0, total_input - cached - written),
        output=_int(usage.get("output_tokens")),
        cache_read=cached,
        cache_write=written,
        reasoning=_int(mapping(usage.get("output_tokens_details")).get("reasoning_tokens")),
    )


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


class StreamReader:
    """Responses events (their parsed data) → neutral events. Blocks come from the item events, never from the final
    `response.completed` (the Codex backend sends its `output` empty). A tool call's arguments are emitted once:
    the deltas, else the `.done` arguments, else the finished item's; reasoning items are skipped."""

    def __init__(self) -> None:
        self.started = False
        self.ended = False
        self._blocks = 0
        self._text: dict[tuple[str, int], int] = {}  # (item id, content index) → open text block
        self._calls: dict[str, tuple[int, str]] = {}  # item id → (block, arguments emitted so far)
        self._pending: dict[str, tuple[str, str]] = {}  # item id → (call id, name) of a call whose block has not started
        self._closed: set[int] = set()
        self.tool_calls = 0

    def read(self, data: Any) -> list[ev.Event]:
        event = mapping(data)
        kind = str(event.get("type") or "")
        out: list[ev.Event] = []
        if self.ended:
            return out
        if not self.started and kind == "response.created":
            response = mapping(event.get("response"))
            self.started = True
            return [ev.Start(str(response.get("id") or ""), str(response.get("model") or ""))]
        if kind == "response.output_item.added":
            item = mapping(event.get("item"))
            if item.get("type") == "function_call":
                out += self._open_call(item)
        elif kind in ("response.content_part.added", "response.output_text.delta", "response.refusal.delta"):
            key = (str(event.get("item_id") or ""), _int(event.get("content_index")))
            if key not in self._text:
                self._text[key] = self._next()
                out.append(ev.BlockStart(self._text[key], "text"))
            delta = event.get("delta")
            if kind != "response.content_part.added" and isinstance(delta, str) and delta:
                out.append(ev.BlockDelta(self._text[key], delta))
        elif kind == "response.content_part.done":
            block = self._text.get((str(event.get("item_id") or ""), _int(event.get("content_index"))))
            if block is not None:
                out += self._close(block)
        elif kind == "response.function_call_arguments.delta":
            out += self._arguments(str(event.get("item_id") or ""), event.get("delta"), final=False)
        elif kind == "response.function_call_arguments.done":
            out += self._arguments(str(event.get("item_id") or ""), event.get("arguments"), final=True)
        elif kind == "response.output_item.done":
            out += self._item_done(mapping(event.get("item")))
        elif kind in FINAL:
            out += self._finish(kind, mapping(event.get("response")))
        elif kind in ("response.failed", "error") or (not kind.startswith("response.") and event.get("error")):
            out += self._fail(event)  # (a bare `data: {"error": {…}}` too: the Codex backend sends that shape)
        return out

    def _next(self) -> int:
        self._blocks += 1
        return self._blocks - 1

    def _open_call(self, item: dict[str, Any]) -> list[ev.Event]:
        """A call's block starts with its first arguments (or its end), so text the upstream sends meanwhile comes
        first, as Anthropic orders a message's blocks."""
        item_id = str(item.get("id") or item.get("call_id") or "")
        if item_id not in self._pending and item_id not in self._calls:
            self._pending[item_id] = (str(item.get("call_id") or item_id), str(item.get("name") or ""))
        return []

    def _started(self, item_id: str) -> list[ev.Event]:
        if item_id in self._calls or item_id not in self._pending:
            return []
        call_id, name = self._pending.pop(item_id)
        block = self._next()
        self._calls[item_id] = (block, "")
        self.tool_calls += 1
        return [ev.BlockStart(block, "tool", call_id, name)]

    def _arguments(self, item_id: str, text: Any, final: bool) -> list[ev.Event]:
        if not isinstance(text, str) or (item_id not in self._calls and not text):
            return []
        out = self._started(item_id)
        if item_id not in self._calls:
            return out
        block, emitted = self._calls[item_id]
        if block in self._closed:
            return out
        if final:
            if emitted and text.startswith(emitted):
                text = text[len(emitted) :]  # only what the deltas did not carry
            elif emitted:
                return []  # the deltas already said it (differently spelled): never twice
        if not text:
            return out
        self._calls[item_id] = (block, emitted + text)
        return out + [ev.BlockDelta(block, text)]

    def _item_done(self, item: dict[str, Any]) -> list[ev.Event]:
        out: list[ev.Event] = []
        if item.get("type") == "function_call":
            item_id = str(item.get("id") or item.get("call_id") or "")
            self._open_call(item)
            out += self._arguments(item_id, item.get("arguments"), final=True)
            out += self._started(item_id)  # a call with no arguments at all: its block opens and closes here
            if item_id in self._calls:
                out += self._close(self._calls[item_id][0])
        elif item.get("type") == "message":
            item_id = str(item.get("id") or "")
            for (owner, _), block in list(self._text.items()):
                if owner == item_id:
                    out += self._close(block)
        return out

    def _close(self, block: int) -> list[ev.Event]:
        if block in self._closed:
            return []
        self._closed.add(block)
        return [ev.BlockStop(block)]

    def _close_all(self) -> list[ev.Event]:
        out: list[ev.Event] = [start for item_id in list(self._pending) for start in self._started(item_id)]
        for block in sorted({*self._text.values(), *(b for b, _ in self._calls.values())}):
            out += self._close(block)
        return out

    def _finish(self, kind: str, response: dict[str, Any]) -> list[ev.Event]:
        self.ended = True
        out = self._close_all()
        reason: ev.StopReason = "tool_use" if self.tool_calls else "end_turn"
        incomplete = mapping(response.get("incomplete_details")).get("reason")
        if kind == "response.incomplete" or response.get("status") == "incomplete":
            reason = "refusal" if incomplete == "content_filter" else "max_tokens"
        return out + [ev.Stop(reason, usage_from(response.get("usage")))]

    def _fail(self, event: dict[str, Any]) -> list[ev.Event]:
        self.ended = True
        error = mapping(mapping(event.get("response")).get("error")) or mapping(event.get("error")) or event
        code = str(error.get("code") or error.get("type") or "")
        message = str(error.get("message") or "the upstream reported an error in its stream")
        kind = {
            "rate_limit_exceeded": "rate_limit_error",
            "usage_limit_reached": "rate_limit_error",
            "server_is_overloaded": "overloaded_error",
        }
        return self._close_all() + [ev.Error(kind.get(code, "api_error"), message, code)]


def estimate_tokens(body: Any) -> int:
    """A rough count of a request's input tokens (4 characters a token) for `message_start`, which must not say 0."""
    return max(1, len(json.dumps(body, ensure_ascii=False, separators=(",", ":"))) // 4)
