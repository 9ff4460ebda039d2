"""OpenAI Chat Completions streams: the writer (neutral events → `chat.completion.chunk`s, or one `chat.completion` for
a client that did not ask for a stream) and the reader (an upstream's chunks → neutral events). The request side is
`chat`."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterable
from typing import Any

from core.jsonshape import mapping
from core.sse import format_event
from providers.protocols import events as ev
from providers.protocols.responses_stream import CHAT_USAGE, usage_from

FINISH_REASONS = {"end_turn": "stop", "tool_use": "tool_calls", "max_tokens": "length", "refusal": "content_filter"}


# -- stream writer ---------------------------------------------------------------------------------------------------
def usage_object(usage: ev.Usage) -> dict[str, Any]:
    """Neutral usage → Chat: `prompt_tokens` includes the cached (and written) ones."""
    prompt = usage.input + usage.cache_read + usage.cache_write
    return {
        "prompt_tokens": prompt,
        "completion_tokens": usage.output,
        "total_tokens": prompt + usage.output,
        "prompt_tokens_details": {"cached_tokens": usage.cache_read},
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning},
    }


class StreamWriter:
    """Neutral events → `chat.completion.chunk`s (data-only SSE, then `data: [DONE]`): the role once, content pieces,
    each tool call's index, id, type and name on its first chunk and its arguments after, the finish reason, and —
    when the client asked (`stream_options.include_usage`) — one usage chunk with no choices."""

    def __init__(self, model: str, include_usage: bool = False) -> None:
        self.model = model
        self.include_usage = include_usage
        self.id = "chatcmpl-" + secrets.token_hex(12)
        self._hidden: set[int] = set()  # thinking blocks: this protocol's client has no place for them
        self.created = int(time.time())
        self.started = False
        self.finished = False
        self._calls: dict[int, int] = {}  # neutral block → tool call index (0, 1, … in the order calls start)
        self._kinds: dict[int, str] = {}
        self.text = ""
        self.tool_calls: list[dict[str, Any]] = []
        self.finish_reason: str | None = None
        self.usage: dict[str, Any] | None = None
        self.error: dict[str, Any] | None = None

    def write(self, events: Iterable[ev.Event]) -> bytes:
        return b"".join(self._one(event) for event in ev.without_thinking(events, self._hidden))

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> bytes:
        chunk: dict[str, Any] = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
        if self.include_usage:
            chunk["usage"] = None
        return format_event(chunk)

    def _one(self, event: ev.Event) -> bytes:
        if self.finished:
            return b""
        out = b""
        if not self.started and not isinstance(event, ev.Error):
            self.started = True
            if isinstance(event, ev.Start) and event.id:
                self.id = "chatcmpl-" + event.id.removeprefix("msg_").removeprefix("resp_")
            out += self._chunk({"role": "assistant", "content": ""})
        if isinstance(event, ev.BlockStart):
            self._kinds[event.index] = event.kind
            if event.kind == "tool":
                index = self._calls[event.index] = len(self._calls)
                self.tool_calls.append({"id": event.id, "type": "function", "function": {"name": event.name, "arguments": ""}})
                call = {"index": index, "id": event.id, "type": "function", "function": {"name": event.name, "arguments": ""}}
                out += self._chunk({"tool_calls": [call]})
        elif isinstance(event, ev.BlockDelta) and event.text:
            if self._kinds.get(event.index) == "tool":
                index = self._calls[event.index]
                self.tool_calls[index]["function"]["arguments"] += event.text
                out += self._chunk({"tool_calls": [{"index": index, "function": {"arguments": event.text}}]})
            else:
                self.text += event.text
                out += self._chunk({"content": event.text})
        elif isinstance(event, ev.BlockStop) and self._kinds.get(event.index) == "tool":
            function: dict[str, Any] = self.tool_calls[self._calls[event.index]]["function"]
            if not function["arguments"]:  # a call with no arguments at all: `{}`, which clients parse
                function["arguments"] = "{}"
                out += self._chunk({"tool_calls": [{"index": self._calls[event.index], "function": {"arguments": "{}"}}]})
        elif isinstance(event, ev.Stop):
            self.finished = True
            self.finish_reason = "tool_calls" if self.tool_calls else FINISH_REASONS.get(event.reason, "stop")
            self.usage = usage_object(event.usage)
            out += self._chunk({}, self.finish_reason)
            if self.include_usage:
                out += format_event(
                    {
                        "id": self.id,
                        "object": "chat.completion.chunk",
                        "created": self.created,
                        "model": self.model,
                        "choices": [],
                        "usage": self.usage,
                    }
                )
            out += format_event("[DONE]")
        elif isinstance(event, ev.Error):
            self.finished = True
            self.error = {"message": event.message, "type": event.kind, "param": None, "code": event.code or event.kind}
            out += format_event({"error": self.error}) + format_event("[DONE]")
        return out

    def completion(self) -> dict[str, Any]:
        """One `chat.completion` from everything written (for a client that did not stream)."""
        message: dict[str, Any] = {"role": "assistant", "content": self.text or None}
        if self.tool_calls:
            message["tool_calls"] = [
                dict(call, function=dict(call["function"], arguments=call["function"]["arguments"] or "{}")) for call in self.tool_calls
            ]
        return {
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "message": message, "finish_reason": self.finish_reason or "stop", "logprobs": None}],
            "usage": self.usage,
        }


# -- stream reader (Chat chunks → neutral events) -------------------------------------------------------------------
STOP_REASONS: dict[str, ev.StopReason] = {
    "stop": "end_turn",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "length": "max_tokens",
    "content_filter": "refusal",
}


class StreamReader:
    """`chat.completion.chunk`s → neutral events: text pieces as one text block, each tool call (by its `index`) as a
    tool block, the finish reason and usage as the Stop. Usage may come in the finishing chunk, in a usage-only chunk
    after it, or not at all: the Stop waits for it until `[DONE]`. Reasoning deltas are skipped: never text."""

    def __init__(self) -> None:
        self.started = False
        self.ended = False
        self._blocks = 0
        self._open: int | None = None  # the neutral block being written
        self._text: int | None = None  # the text block, while it is the open one
        self._calls: dict[int, int] = {}  # the chunk's tool call index → neutral block
        self._reason: str | None = None
        self._usage: ev.Usage | None = None

    def read(self, data: Any) -> list[ev.Event]:
        if self.ended:
            return []
        if data == "[DONE]":
            return self._stop()
        chunk = mapping(data)
        if isinstance(chunk.get("error"), dict):
            self.ended = True
            error = chunk["error"]
            code = str(error.get("code") or error.get("type") or "")
            return self._close() + [ev.Error("api_error", str(error.get("message") or "the upstream reported an error"), code)]
        out: list[ev.Event] = []
        if not self.started:
            self.started = True
            out.append(ev.Start(str(chunk.get("id") or ""), str(chunk.get("model") or "")))
        for choice in chunk.get("choices") or []:
            choice = mapping(choice)
            delta = mapping(choice.get("delta"))
            if isinstance(delta.get("content"), str) and delta["content"]:
                out += self._text_piece(delta["content"])
            for call in delta.get("tool_calls") or []:
                out += self._call_piece(mapping(call))
            if isinstance(choice.get("finish_reason"), str):
                self._reason = choice["finish_reason"]
        if isinstance(chunk.get("usage"), dict):
            self._usage = usage_from(chunk["usage"], CHAT_USAGE)
            if self._reason is not None:
                out += self._stop()
        return out

    def _text_piece(self, text: str) -> list[ev.Event]:
        out: list[ev.Event] = []
        if self._text is None:
            out += self._close()
            self._text = self._open = self._blocks
            self._blocks += 1
            out.append(ev.BlockStart(self._text, "text"))
        return out + [ev.BlockDelta(self._text, text)]

    def _call_piece(self, call: dict[str, Any]) -> list[ev.Event]:
        given = call.get("index")
        # without an index: a chunk with an id starts the next call, one without continues the last
        index: int = given if isinstance(given, int) else len(self._calls) - (1 if call.get("id") is None else 0)
        function = mapping(call.get("function"))
        out: list[ev.Event] = []
        block = self._calls.get(index)
        if block is None:
            out += self._close()
            block = self._calls[index] = self._open = self._blocks
            self._blocks += 1
            out.append(ev.BlockStart(block, "tool", str(call.get("id") or ""), str(function.get("name") or "")))
        arguments = function.get("arguments")
        if isinstance(arguments, str) and arguments:
            out.append(ev.BlockDelta(block, arguments))
        return out

    def _close(self) -> list[ev.Event]:
        if self._open is None:
            return []
        closed, self._open, self._text = self._open, None, None
        return [ev.BlockStop(closed)]

    def _stop(self) -> list[ev.Event]:
        self.ended = True
        reason = STOP_REASONS.get(self._reason or "stop", "end_turn")
        if self._calls and reason == "end_turn":
            reason = "tool_use"  # some upstreams say stop after a call
        return self._close() + [ev.Stop(reason, self._usage or ev.Usage())]
