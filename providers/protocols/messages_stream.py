"""Anthropic Messages streams: the writer (neutral events → Anthropic SSE, or one Message object for a client that
did not ask for a stream) and the reader (Claude's SSE → neutral events). The request side is `messages`."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterable
from typing import Any

from core.jsonshape import mapping
from core.sse import format_event
from providers.protocols import carry
from providers.protocols import events as ev


# -- stream writer ---------------------------------------------------------------------------------------------
def usage_object(usage: ev.Usage) -> dict[str, int]:
    return {
        "input_tokens": usage.input,
        "cache_creation_input_tokens": usage.cache_write,
        "cache_read_input_tokens": usage.cache_read,
        "output_tokens": usage.output,
    }


def empty_block(start: ev.BlockStart) -> dict[str, Any]:
    """The content block a BlockStart opens, as `content_block_start` and a non-streamed Message hold it."""
    if start.kind == "text":
        return {"type": "text", "text": ""}
    if start.kind == "thinking":
        return {"type": "thinking", "thinking": "", "signature": ""}
    return {"type": "tool_use", "id": start.id, "name": start.name, "input": {}}


class StreamWriter:
    """Neutral events → Anthropic SSE bytes, event by event. `model` is the name the client asked for;
    `input_estimate` goes into `message_start` (the upstream reports input only at the end; never 0)."""

    def __init__(self, model: str, input_estimate: int) -> None:
        self.model = model
        self.input_estimate = max(1, input_estimate)
        self.started = False
        self.finished = False
        self._indexes: dict[int, int] = {}  # reader's block index → ours (0, 1, 2… in the order blocks start)
        self._kinds: dict[int, str] = {}  # reader's block index → its kind
        self._open: set[int] = set()
        self._current: int | None = None  # the reader's block being written
        self._waiting: list[ev.Event] = []  # events of other blocks, until it stops

    def write(self, events: Iterable[ev.Event]) -> bytes:
        return b"".join(self._ordered(event) for event in events)

    def _ordered(self, event: ev.Event) -> bytes:
        """Anthropic blocks run one after another; an upstream may interleave two items (text and a call's
        arguments). A block's events wait while another block is being written, and follow once it stops."""
        index = event.index if isinstance(event, (ev.BlockStart, ev.BlockDelta, ev.BlockStop)) else None
        if index is not None and self._current is not None and index != self._current:
            self._waiting.append(event)
            return b""
        if isinstance(event, (ev.Stop, ev.Error)) and self._waiting:
            waiting, self._waiting, self._current = self._waiting, [], None
            return b"".join(self._ordered(e) for e in waiting) + self._ordered(event)
        if isinstance(event, ev.BlockStart):
            self._current = event.index
        out = self._one(event)
        if isinstance(event, ev.BlockStop) and index == self._current:
            self._current = None
            waiting, self._waiting = self._waiting, []
            out += b"".join(self._ordered(e) for e in waiting)
        return out

    def _one(self, event: ev.Event) -> bytes:
        if self.finished:
            return b""
        out = b""
        if not self.started and not isinstance(event, ev.Error):
            out += self._start(event.id if isinstance(event, ev.Start) else "")
        if isinstance(event, ev.Start):
            return out
        if isinstance(event, ev.BlockStart):
            index = self._indexes[event.index] = len(self._indexes)
            self._kinds[event.index] = event.kind
            self._open.add(index)
            block = empty_block(event)
            return out + format_event({"type": "content_block_start", "index": index, "content_block": block}, "content_block_start")
        if isinstance(event, ev.BlockDelta):
            index = self._indexes[event.index]
            kind = self._kinds.get(event.index)
            delta = (
                {"type": "input_json_delta", "partial_json": event.text}
                if kind == "tool"
                else {"type": "thinking_delta", "thinking": event.text}
                if kind == "thinking"
                else {"type": "text_delta", "text": event.text}
            )
            return out + format_event({"type": "content_block_delta", "index": index, "delta": delta}, "content_block_delta")
        if isinstance(event, ev.BlockStop):
            index = self._indexes[event.index]
            self._open.discard(index)
            if event.signature and self._kinds.get(event.index) == "thinking":  # whole, once, just before the stop
                signed = {"type": "content_block_delta", "index": index, "delta": {"type": "signature_delta", "signature": event.signature}}
                out += format_event(signed, "content_block_delta")
            return out + format_event({"type": "content_block_stop", "index": index}, "content_block_stop")
        if isinstance(event, ev.Stop):
            self.finished = True
            out += self._close_open()
            ending: dict[str, Any] = {
                "type": "message_delta",
                "delta": {"stop_reason": event.reason, "stop_sequence": None},
                "usage": usage_object(event.usage),
            }
            return out + format_event(ending, "message_delta") + format_event({"type": "message_stop"}, "message_stop")
        self.finished = True  # an error ends the stream
        error: dict[str, Any] = {"type": "error", "error": {"type": event.kind, "message": event.message}}
        return out + self._close_open() + format_event(error, "error")

    def _start(self, upstream_id: str) -> bytes:
        self.started = True
        message: dict[str, Any] = {
            "id": "msg_" + (upstream_id.removeprefix("resp_") or secrets.token_hex(12)),
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": usage_object(ev.Usage(input=self.input_estimate, output=1)),
        }
        return format_event({"type": "message_start", "message": message}, "message_start")

    def _close_open(self) -> bytes:
        out = b"".join(format_event({"type": "content_block_stop", "index": i}, "content_block_stop") for i in sorted(self._open))
        self._open.clear()
        return out


class Collector:
    """Neutral events → one Message object, for a client that did not ask for a stream; `error` is set instead when
    the stream ended with one."""

    def __init__(self, model: str) -> None:
        self.model = model
        self.id = ""
        self.blocks: dict[int, dict[str, Any]] = {}
        self.arguments: dict[int, str] = {}
        self.stop: ev.Stop | None = None
        self.error: ev.Error | None = None

    def add(self, events: Iterable[ev.Event]) -> None:
        for event in events:
            if isinstance(event, ev.Start):
                self.id = event.id
            elif isinstance(event, ev.BlockStart):
                self.blocks[event.index] = empty_block(event)
            elif isinstance(event, ev.BlockDelta):
                block = self.blocks[event.index]
                if block["type"] in ("text", "thinking"):
                    block[block["type"]] += event.text
                else:
                    self.arguments[event.index] = self.arguments.get(event.index, "") + event.text
            elif isinstance(event, ev.BlockStop) and event.signature and self.blocks.get(event.index, {}).get("type") == "thinking":
                self.blocks[event.index]["signature"] = event.signature
            elif isinstance(event, ev.Stop):
                self.stop = event
            elif isinstance(event, ev.Error):
                self.error = event

    def message(self) -> dict[str, Any]:
        content = []
        for index, block in sorted(self.blocks.items()):
            if block["type"] == "tool_use":
                text = self.arguments.get(index, "")
                block = dict(block, input=json.loads(text) if text.strip() else {})
            content.append(block)
        stop = self.stop or ev.Stop("end_turn", ev.Usage())
        return {
            "id": "msg_" + (self.id.removeprefix("resp_") or secrets.token_hex(12)),
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": content,
            "stop_reason": stop.reason,
            "stop_sequence": None,
            "usage": usage_object(stop.usage),
        }


# -- stream reader (Anthropic SSE data → neutral events) ---------------------------------------------------------------
STOP_REASONS: dict[str, ev.StopReason] = {
    "tool_use": "tool_use",
    "max_tokens": "max_tokens",
    "refusal": "refusal",
    "model_context_window_exceeded": "max_tokens",
}


class StreamReader:
    """Anthropic events → neutral events. Thinking blocks (and server-tool blocks) are skipped: never text — unless
    `sign` is given (a client that carries reasoning back, providers.protocols.carry): then a thinking block is one,
    its text as it streams, the whole block signed at its end. Usage is taken from `message_start` and overwritten
    by `message_delta`'s non-null counts (as the anthropic SDK does)."""

    def __init__(self, sign: Callable[[str], str] | None = None) -> None:
        self.sign = sign
        self._thinking: dict[int, dict[str, str]] = {}  # Anthropic index → the thinking block as it accumulates
        self.started = False
        self.ended = False
        self._blocks: dict[int, int] = {}  # Anthropic index → neutral block
        self._usage: dict[str, int] = {}
        self._reason: ev.StopReason = "end_turn"

    def read(self, data: Any) -> list[ev.Event]:
        event = mapping(data)
        kind = event.get("type")
        if self.ended:
            return []
        if kind == "message_start":
            message = mapping(event.get("message"))
            self._take_usage(message.get("usage"))
            self.started = True
            return [ev.Start(str(message.get("id") or ""), str(message.get("model") or ""))]
        if kind == "content_block_start":
            block = mapping(event.get("content_block"))
            index = event.get("index")
            if isinstance(index, int) and self.sign is not None and block.get("type") in ("thinking", "redacted_thinking"):
                return self._open_thinking(index, block)
            if not isinstance(index, int) or block.get("type") not in ("text", "tool_use"):
                return []
            neutral = self._blocks[index] = len(self._blocks)
            if block["type"] == "text":
                out: list[ev.Event] = [ev.BlockStart(neutral, "text")]
                return out + ([ev.BlockDelta(neutral, block["text"])] if block.get("text") else [])
            return [ev.BlockStart(neutral, "tool", str(block.get("id") or ""), str(block.get("name") or ""))]
        if kind == "content_block_delta":
            neutral_index = self._blocks.get(event.get("index"))  # type: ignore[arg-type]
            delta = mapping(event.get("delta"))
            if event.get("index") in self._thinking:
                return self._thinking_delta(event["index"], delta)
            text = (
                delta.get("text")
                if delta.get("type") == "text_delta"
                else delta.get("partial_json")
                if delta.get("type") == "input_json_delta"
                else None
            )
            return [ev.BlockDelta(neutral_index, text)] if neutral_index is not None and isinstance(text, str) and text else []
        if kind == "content_block_stop":
            neutral_index = self._blocks.get(event.get("index"))  # type: ignore[arg-type]
            if event.get("index") in self._thinking and neutral_index is not None and self.sign is not None:
                return [ev.BlockStop(neutral_index, self.sign(carry.pack_thinking(self._thinking.pop(event["index"]))))]
            return [ev.BlockStop(neutral_index)] if neutral_index is not None else []
        if kind == "message_delta":
            self._take_usage(event.get("usage"))
            reason = mapping(event.get("delta")).get("stop_reason")
            self._reason = STOP_REASONS.get(str(reason), "end_turn")
            return []
        if kind == "message_stop":
            self.ended = True
            return [ev.Stop(self._reason, self.usage())]
        if kind == "error":
            self.ended = True
            error = mapping(event.get("error"))
            return [ev.Error(str(error.get("type") or "api_error"), str(error.get("message") or "the upstream reported an error"))]
        return []

    def _open_thinking(self, index: int, block: dict[str, Any]) -> list[ev.Event]:
        neutral = self._blocks[index] = len(self._blocks)
        if block.get("type") == "redacted_thinking":
            self._thinking[index] = {"type": "redacted_thinking", "data": str(block.get("data") or "")}
            return [ev.BlockStart(neutral, "thinking")]
        text = str(block.get("thinking") or "")
        self._thinking[index] = {"type": "thinking", "thinking": text, "signature": str(block.get("signature") or "")}
        out: list[ev.Event] = [ev.BlockStart(neutral, "thinking")]
        return out + ([ev.BlockDelta(neutral, text)] if text else [])

    def _thinking_delta(self, index: int, delta: dict[str, Any]) -> list[ev.Event]:
        block = self._thinking[index]
        if delta.get("type") == "thinking_delta" and isinstance(delta.get("thinking"), str) and block["type"] == "thinking":
            block["thinking"] += delta["thinking"]
            return [ev.BlockDelta(self._blocks[index], delta["thinking"])] if delta["thinking"] else []
        if delta.get("type") == "signature_delta" and isinstance(delta.get("signature"), str) and block["type"] == "thinking":
            block["signature"] = delta["signature"]  # the whole signature (the anthropic SDK: the last one wins)
        return []

    def _take_usage(self, value: Any) -> None:
        for name, count in mapping(value).items():
            if isinstance(count, int) and not isinstance(count, bool):
                self._usage[name] = count

    def usage(self) -> ev.Usage:
        u = self._usage
        return ev.Usage(
            input=u.get("input_tokens", 0),
            output=u.get("output_tokens", 0),
            cache_read=u.get("cache_read_input_tokens", 0),
            cache_write=u.get("cache_creation_input_tokens", 0),
        )
