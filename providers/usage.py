"""Token usage normalised to one meaning, read from each protocol's JSON bodies and stream events.

`input_tokens` is uncached input. Anthropic reports it that way; OpenAI Chat and Responses count cached
tokens inside their input, so the cached part moves to `cache_read_tokens`.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from core.jsonshape import mapping
from core.protocol import Protocol
from core.sse import SSEEvent


@dataclasses.dataclass
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    raw: dict[str, Any] | None = None
    seen: bool = False  # any usage was reported at all
    complete: bool = False  # the final usage (end of message) was seen

    def raw_json(self) -> str:
        return json.dumps(self.raw, separators=(",", ":")) if self.raw else ""


def _int(value: Any) -> int:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0


def from_anthropic(usage: dict[str, Any], into: Usage | None = None) -> Usage:
    """Anthropic: input excludes cache reads and writes. Fields that are null or absent keep earlier values."""
    result = into or Usage()
    for field, attr in (
        ("input_tokens", "input_tokens"),
        ("output_tokens", "output_tokens"),
        ("cache_read_input_tokens", "cache_read_tokens"),
        ("cache_creation_input_tokens", "cache_write_tokens"),
    ):
        if isinstance(usage.get(field), (int, float)):
            setattr(result, attr, _int(usage[field]))
    result.raw = {**(result.raw or {}), **{k: v for k, v in usage.items() if v is not None}}
    result.seen = True
    return result


def _from_openai(usage: dict[str, Any], names: tuple[str, str, str, str]) -> Usage:
    """OpenAI counts cached input inside its input total: Kleis keeps the two apart, as Anthropic reports them."""
    input_field, output_field, input_details, output_details = names
    inputs, outputs = mapping(usage.get(input_details)), mapping(usage.get(output_details))
    cached = _int(inputs.get("cached_tokens"))
    return Usage(
        input_tokens=max(0, _int(usage.get(input_field)) - cached),
        output_tokens=_int(usage.get(output_field)),
        cache_read_tokens=cached,
        cache_write_tokens=_int(inputs.get("cache_write_tokens")),
        reasoning_tokens=_int(outputs.get("reasoning_tokens")),
        raw=usage,
        seen=True,
        complete=True,
    )


def from_openai_chat(usage: dict[str, Any]) -> Usage:
    return _from_openai(usage, ("prompt_tokens", "completion_tokens", "prompt_tokens_details", "completion_tokens_details"))


def from_openai_responses(usage: dict[str, Any]) -> Usage:
    return _from_openai(usage, ("input_tokens", "output_tokens", "input_tokens_details", "output_tokens_details"))


class UsageReader:
    """Collects usage from a response: `body()` for JSON, `event()` for each streamed event."""

    def __init__(self) -> None:
        self.usage = Usage()
        self.ended = False  # the stream's own end marker passed (message_stop, [DONE], response.completed…)

    def body(self, body: Any) -> Usage:
        return self.usage

    def event(self, event: SSEEvent) -> None:
        pass


class MessagesUsageReader(UsageReader):
    def body(self, body: Any) -> Usage:
        if isinstance(body, dict) and isinstance(body.get("usage"), dict):
            from_anthropic(body["usage"], self.usage)
            self.usage.complete = True
        elif isinstance(body, dict) and isinstance(body.get("input_tokens"), int):  # count_tokens: counts, consumes nothing
            self.usage = Usage(raw=body, seen=True, complete=True)
        return self.usage

    def event(self, event: SSEEvent) -> None:
        kind = event.event
        if kind == "message_stop":
            self.ended = True
            return
        if kind not in ("message_start", "message_delta"):
            return
        data = event.json()
        if not isinstance(data, dict):
            return
        if kind == "message_start":
            usage = (data.get("message") or {}).get("usage")
        else:
            usage = data.get("usage")  # cumulative
        if isinstance(usage, dict):
            from_anthropic(usage, self.usage)
        if kind == "message_delta":
            self.usage.complete = True


class OpenAIUsageReader(UsageReader):
    """OpenAI shapes carry one whole usage object (`usage`, in the body or the final event), read by `parse`."""

    @staticmethod
    def parse(usage: dict[str, Any]) -> Usage:
        raise NotImplementedError

    def body(self, body: Any) -> Usage:
        if isinstance(body, dict) and isinstance(body.get("usage"), dict):
            self.usage = self.parse(body["usage"])
        return self.usage


class ChatUsageReader(OpenAIUsageReader):
    parse = staticmethod(from_openai_chat)

    def event(self, event: SSEEvent) -> None:
        if event.data is None or '"usage"' not in event.data:  # only the final chunk carries usage: skip the parse
            if event.data is not None and event.data.strip() == "[DONE]":
                self.ended = True
            return
        data = event.json()
        if isinstance(data, dict) and isinstance(data.get("usage"), dict):
            self.usage = from_openai_chat(data["usage"])


FINAL_RESPONSE_EVENTS = ("response.completed", "response.done", "response.incomplete", "response.failed")


class ResponsesUsageReader(OpenAIUsageReader):
    parse = staticmethod(from_openai_responses)

    def event(self, event: SSEEvent) -> None:
        if event.event is not None and event.event not in FINAL_RESPONSE_EVENTS:
            return  # named events other than the final ones carry no usage: skip the parse
        data = event.json()
        if not isinstance(data, dict):
            return
        kind = event.event or data.get("type")
        if kind in FINAL_RESPONSE_EVENTS:
            self.ended = True
            usage = (data.get("response") or {}).get("usage")
            if isinstance(usage, dict):
                self.usage = from_openai_responses(usage)


def reader_for(protocol: Protocol) -> UsageReader:
    return {
        Protocol.MESSAGES: MessagesUsageReader,
        Protocol.CHAT: ChatUsageReader,
        Protocol.RESPONSES: ResponsesUsageReader,
    }[protocol]()
