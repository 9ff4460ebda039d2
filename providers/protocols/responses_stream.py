"""OpenAI Responses streams: the reader (Responses events → neutral events, as they arrive) and the writer (neutral
events → Responses SSE, ending with the whole response). The request side is `responses`."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterable
from typing import Any

from core.jsonshape import json_or_none, mapping
from core.sse import format_event
from providers.protocols import events as ev

# -- stream reader ---------------------------------------------------------------------------------------------
FINAL = frozenset({"response.completed", "response.done", "response.incomplete"})  # response.done: Codex's name


# The usage fields of OpenAI's two protocols: input total, output total, input details, output details.
RESPONSES_USAGE = ("input_tokens", "output_tokens", "input_tokens_details", "output_tokens_details")
CHAT_USAGE = ("prompt_tokens", "completion_tokens", "prompt_tokens_details", "completion_tokens_details")


def usage_from(value: Any, names: tuple[str, str, str, str] = RESPONSES_USAGE) -> ev.Usage:
    """OpenAI usage → neutral: the input total includes the cached (and written) tokens, which are counted once, as
    cache reads (and writes)."""
    input_field, output_field, input_details, output_details = names
    usage = mapping(value)
    total_input = _int(usage.get(input_field))
    cached = _int(mapping(usage.get(input_details)).get("cached_tokens"))
    written = _int(mapping(usage.get(input_details)).get("cache_write_tokens"))
    return ev.Usage(
        input=max(0, total_input - cached - written),
        output=_int(usage.get(output_field)),
        cache_read=cached,
        cache_write=written,
        reasoning=_int(mapping(usage.get(output_details)).get("reasoning_tokens")),
    )


def summary_text(summary: Any) -> str:
    """A reasoning item's summary parts as one text, a blank line between them (as they stream)."""
    parts = [mapping(part).get("text") for part in summary] if isinstance(summary, list) else []
    return "\n\n".join(part for part in parts if isinstance(part, str) and part)


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


class StreamReader:
    """Responses events (their parsed data) → neutral events. Blocks come from the item events, never from the final
    `response.completed` (the Codex backend sends its `output` empty). A tool call's arguments are emitted once:
    the deltas, else the `.done` arguments, else the finished item's. Reasoning items are skipped, unless `sign` is
    given (a client that carries reasoning back, providers.protocols.carry): then each is a thinking block — its
    summary as it streams, its encrypted content signed at its end."""

    def __init__(self, sign: Callable[[str], str] | None = None) -> None:
        self.sign = sign
        self._thinking: dict[str, tuple[int, int]] = {}  # reasoning item id → (block, summary part being streamed)
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
            elif item.get("type") == "reasoning":
                out += self._open_thinking(str(item.get("id") or ""))
        elif kind == "response.reasoning_summary_text.delta":
            out += self._summary(str(event.get("item_id") or ""), _int(event.get("summary_index")), event.get("delta"))
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

    def _open_thinking(self, item_id: str) -> list[ev.Event]:
        if self.sign is None or item_id in self._thinking:
            return []
        self._thinking[item_id] = (self._next(), -1)
        return [ev.BlockStart(self._thinking[item_id][0], "thinking")]

    def _summary(self, item_id: str, part: int, text: Any) -> list[ev.Event]:
        """A piece of a reasoning summary; its parts are separated by a blank line."""
        if item_id not in self._thinking or not isinstance(text, str) or not text:
            return []
        block, streamed = self._thinking[item_id]
        if block in self._closed:
            return []
        self._thinking[item_id] = (block, part)
        return [ev.BlockDelta(block, ("\n\n" if streamed not in (-1, part) else "") + text)]

    def _reasoning_done(self, item: dict[str, Any]) -> list[ev.Event]:
        """The finished reasoning item: its summary when none streamed, then its encrypted content as the signature."""
        item_id = str(item.get("id") or "")
        out = self._open_thinking(item_id)
        if item_id not in self._thinking or self.sign is None:
            return out
        block, streamed = self._thinking[item_id]
        if streamed == -1:
            text = summary_text(item.get("summary"))
            out += [ev.BlockDelta(block, text)] if text and block not in self._closed else []
        blob = item.get("encrypted_content")
        return out + self._close(block, self.sign(blob) if isinstance(blob, str) and blob else "")

    def _item_done(self, item: dict[str, Any]) -> list[ev.Event]:
        out: list[ev.Event] = []
        if item.get("type") == "reasoning":
            return self._reasoning_done(item)
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

    def _close(self, block: int, signature: str = "") -> list[ev.Event]:
        if block in self._closed:
            return []
        self._closed.add(block)
        return [ev.BlockStop(block, signature)]

    def _close_all(self) -> list[ev.Event]:
        out: list[ev.Event] = [start for item_id in list(self._pending) for start in self._started(item_id)]
        blocks = {*self._text.values(), *(b for b, _ in self._calls.values()), *(b for b, _ in self._thinking.values())}
        for block in sorted(blocks):
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


# -- stream writer (neutral events → Responses SSE) --------------------------------------------------------------
def usage_object(usage: ev.Usage) -> dict[str, Any]:
    """Neutral usage → Responses: `input_tokens` includes the cached (and written) ones."""
    total_input = usage.input + usage.cache_read + usage.cache_write
    return {
        "input_tokens": total_input,
        "input_tokens_details": {"cached_tokens": usage.cache_read},
        "output_tokens": usage.output,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning},
        "total_tokens": total_input + usage.output,
    }


class StreamWriter:
    """Neutral events → Responses events, as they come. Every item is added, filled and done in order; the final
    `response.completed` (or `.incomplete`) carries the whole `output` and the usage, which Codex CLI and the
    openai SDK build their result from. `custom` names the free-form tools: their calls become `custom_tool_call`
    items with the string input."""

    def __init__(self, model: str, custom: frozenset[str] = frozenset()) -> None:
        self.model = model
        self.custom = custom
        self.id = "resp_" + secrets.token_hex(12)
        self.created = int(time.time())
        self.sequence = 0
        self.started = False
        self.finished = False
        self.output: list[dict[str, Any]] = []
        self.final: dict[str, Any] | None = None  # the last response object (completed, incomplete or failed)
        self._items: dict[int, tuple[int, dict[str, Any]]] = {}  # reader's block → (output index, item)
        self._arguments: dict[int, str] = {}

    def write(self, events: Iterable[ev.Event]) -> bytes:
        return b"".join(self._one(event) for event in events)

    def _event(self, kind: str, **fields: Any) -> bytes:
        data = {"type": kind, "sequence_number": self.sequence, **fields}
        self.sequence += 1
        return format_event(data, kind)

    def _response(self, status: str, **fields: Any) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "response",
            "created_at": self.created,
            "status": status,
            "model": self.model,
            "output": list(self.output) if status != "in_progress" else [],
            "usage": None,
            "error": None,
            "incomplete_details": None,
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": [],
            **fields,
        }

    def _one(self, event: ev.Event) -> bytes:
        if self.finished:
            return b""
        out = b""
        if not self.started:
            self.started = True
            if isinstance(event, ev.Start) and event.id:
                self.id = "resp_" + event.id.removeprefix("msg_")  # item ids follow: the same answer, the same ids
            created = self._response("in_progress")
            out += self._event("response.created", response=created) + self._event("response.in_progress", response=created)
        if isinstance(event, ev.Start):
            return out
        if isinstance(event, ev.BlockStart):
            return out + self._start(event)
        if isinstance(event, ev.BlockDelta):
            return out + self._delta(event)
        if isinstance(event, ev.BlockStop):
            return out + self._stop(event.index, event.signature)
        out += b"".join(self._stop(index) for index in list(self._items))
        self.finished = True
        if isinstance(event, ev.Stop):
            incomplete = event.reason in ("max_tokens", "refusal")
            details = {"reason": "max_output_tokens" if event.reason == "max_tokens" else "content_filter"} if incomplete else None
            self.final = self._response(
                "incomplete" if incomplete else "completed", usage=usage_object(event.usage), incomplete_details=details
            )
            kind = "response.incomplete" if incomplete else "response.completed"
            return out + self._event(kind, response=self.final)
        code = {"rate_limit_error": "rate_limit_exceeded", "overloaded_error": "server_is_overloaded"}.get(event.kind, "server_error")
        self.final = self._response("failed", error={"code": code, "message": event.message})
        error = {"type": event.kind, "code": code, "message": event.message}  # an `error` object: the openai SDKs raise on it
        failed = self._event("response.failed", response=self.final)
        return out + self._event("error", code=code, message=event.message, param=None, error=error) + failed

    def _start(self, event: ev.BlockStart) -> bytes:
        index = len(self.output) + len(self._items)
        if event.kind == "thinking":  # a reasoning item: its summary is the thinking text, its blob the signed block
            item: dict[str, Any] = {"type": "reasoning", "id": self._item_id("rs", index), "summary": []}
            self._items[event.index] = (index, item)
            self._arguments[event.index] = ""
            part: dict[str, Any] = {"type": "summary_text", "text": ""}
            return self._event("response.output_item.added", output_index=index, item=dict(item)) + self._event(
                "response.reasoning_summary_part.added", item_id=item["id"], output_index=index, summary_index=0, part=part
            )
        if event.kind == "text":
            item = {
                "type": "message",
                "id": self._item_id("msg", index),
                "status": "in_progress",
                "role": "assistant",
                "content": [],
            }
            self._items[event.index] = (index, item)
            part = {"type": "output_text", "text": "", "annotations": []}
            return self._event("response.output_item.added", output_index=index, item=item) + self._event(
                "response.content_part.added", item_id=item["id"], output_index=index, content_index=0, part=part
            )
        if event.name in self.custom:
            item = {
                "type": "custom_tool_call",
                "id": self._item_id("ctc", index),
                "call_id": event.id,
                "name": event.name,
                "input": "",
                "status": "in_progress",
            }
        else:
            item = {
                "type": "function_call",
                "id": self._item_id("fc", index),
                "call_id": event.id,
                "name": event.name,
                "arguments": "",
                "status": "in_progress",
            }
        self._items[event.index] = (index, item)
        self._arguments[event.index] = ""
        return self._event("response.output_item.added", output_index=index, item=dict(item))

    def _item_id(self, prefix: str, index: int) -> str:
        return f"{prefix}_{self.id.removeprefix('resp_')}_{index}"

    def _delta(self, event: ev.BlockDelta) -> bytes:
        if event.index not in self._items or not event.text:
            return b""
        index, item = self._items[event.index]
        if item["type"] == "reasoning":
            self._arguments[event.index] += event.text
            return self._event(
                "response.reasoning_summary_text.delta", item_id=item["id"], output_index=index, summary_index=0, delta=event.text
            )
        if item["type"] == "message":
            self._arguments[event.index] = self._arguments.get(event.index, "") + event.text
            return self._event(
                "response.output_text.delta", item_id=item["id"], output_index=index, content_index=0, delta=event.text, logprobs=[]
            )
        self._arguments[event.index] += event.text
        if item["type"] == "custom_tool_call":
            return b""  # its input is a string inside the JSON arguments: sent whole when the call is done
        return self._event("response.function_call_arguments.delta", item_id=item["id"], output_index=index, delta=event.text)

    def _stop(self, block: int, signature: str = "") -> bytes:
        if block not in self._items:
            return b""
        index, item = self._items.pop(block)
        text = self._arguments.pop(block, "")
        if item["type"] == "reasoning":
            part: dict[str, Any] = {"type": "summary_text", "text": text}
            done = {**item, "summary": [part], **({"encrypted_content": signature} if signature else {})}
            self.output.append(done)
            where = {"item_id": item["id"], "output_index": index, "summary_index": 0}
            return (
                self._event("response.reasoning_summary_text.done", **where, text=text)
                + self._event("response.reasoning_summary_part.done", **where, part=part)
                + self._event("response.output_item.done", output_index=index, item=done)
            )
        if item["type"] == "message":
            part = {"type": "output_text", "text": text, "annotations": []}
            done = {**item, "status": "completed", "content": [part]}
            self.output.append(done)
            return (
                self._event("response.output_text.done", item_id=item["id"], output_index=index, content_index=0, text=text, logprobs=[])
                + self._event("response.content_part.done", item_id=item["id"], output_index=index, content_index=0, part=part)
                + self._event("response.output_item.done", output_index=index, item=done)
            )
        if item["type"] == "custom_tool_call":
            value = mapping(json_or_none(text.encode())).get("input")
            done = {**item, "status": "completed", "input": value if isinstance(value, str) else text}
            self.output.append(done)
            return self._event(
                "response.custom_tool_call_input.done", item_id=item["id"], output_index=index, input=done["input"]
            ) + self._event("response.output_item.done", output_index=index, item=done)
        arguments = text or "{}"
        done = {**item, "status": "completed", "arguments": arguments}
        self.output.append(done)
        return self._event(
            "response.function_call_arguments.done", item_id=item["id"], output_index=index, arguments=arguments
        ) + self._event("response.output_item.done", output_index=index, item=done)
