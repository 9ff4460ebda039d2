"""OpenAI Chat Completions: the request reader (a chat client's body → Turn) and the stream writer (neutral events →
`chat.completion.chunk`s, or one `chat.completion` for a client that did not ask for a stream); the request writer
and the stream reader for an upstream that serves a model on Chat only (Copilot's chat-only models)."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterable
from typing import Any

from core.jsonshape import mapping
from core.sse import format_event
from providers.protocols import events as ev
from providers.protocols.turn import (
    TOOL_ERROR_PREFIX,
    Image,
    Message,
    OutputFormat,
    Text,
    Tool,
    ToolCall,
    ToolChoice,
    ToolResult,
    Turn,
    Untranslatable,
    append_message,
)

# Fields with no equivalent upstream: refused by name unless they hold their default (which changes nothing).
REFUSED_UNLESS_DEFAULT: dict[str, Any] = {
    "logprobs": False,
    "top_logprobs": None,
    "logit_bias": None,
    "seed": None,
    "prediction": None,
    "audio": None,
    "frequency_penalty": 0,
    "presence_penalty": 0,
    "n": 1,
}
FINISH_REASONS = {"end_turn": "stop", "tool_use": "tool_calls", "max_tokens": "length", "refusal": "content_filter"}


# -- request reader ------------------------------------------------------------------------------------------------
def read_request(body: dict[str, Any]) -> Turn:
    """A Chat request as a Turn; Untranslatable (a 400 in OpenAI's shape naming the field) for what has no equivalent."""
    for name, default in REFUSED_UNLESS_DEFAULT.items():
        if name in body and body[name] is not None and body[name] != default:
            raise Untranslatable(name, "has no equivalent upstream")
    modalities = body.get("modalities")
    if modalities is not None and modalities != ["text"]:
        raise Untranslatable("modalities", "only text can be translated")
    system: list[str] = []
    messages: list[Message] = []
    calls: set[str] = set()
    listed = body.get("messages")
    for index, message in enumerate(listed if isinstance(listed, list) else []):
        message = mapping(message)
        role, where = message.get("role"), f"messages.{index}"
        if role in ("system", "developer"):
            text = "".join(p.text for p in _parts(where, message.get("content")) if isinstance(p, Text))
            if messages:  # after the conversation began: an instruction in its place (chat agents end with one)
                append_message(messages, "system", (Text(text),))
            else:
                system.append(text)
        elif role == "user":
            append_message(messages, "user", _parts(where, message.get("content")))
        elif role == "assistant":
            parts: list[Any] = list(_parts(where, message.get("content")))
            for n, call in enumerate(message.get("tool_calls") or []):
                call = mapping(call)
                function = mapping(call.get("function"))
                if call.get("type", "function") != "function":
                    raise Untranslatable(f"{where}.tool_calls.{n}.type", f"{call.get('type')!r} calls cannot be translated")
                calls.add(str(call.get("id") or ""))
                parts.append(ToolCall(str(call.get("id") or ""), str(function.get("name") or ""), str(function.get("arguments") or "{}")))
            append_message(messages, "assistant", tuple(parts))
        elif role == "tool":
            call_id = str(message.get("tool_call_id") or "")
            if call_id not in calls:
                raise Untranslatable(f"{where}.tool_call_id", f"no assistant tool call with id {call_id!r} comes before this tool message")
            append_message(messages, "user", (ToolResult(call_id, _parts(where, message.get("content"))),))
        else:
            raise Untranslatable(f"{where}.role", f"{role!r} cannot be translated")
    limit = body.get("max_completion_tokens") if body.get("max_completion_tokens") is not None else body.get("max_tokens")
    stop = body.get("stop")
    temperature = body.get("temperature")
    return Turn(
        model=str(body.get("model") or ""),
        system="\n\n".join(part for part in system if part),
        messages=tuple(messages),
        tools=tuple(_tool(i, t) for i, t in enumerate(body.get("tools") or [])),
        tool_choice=_choice(body.get("tool_choice"), body.get("parallel_tool_calls")),
        max_tokens=limit if isinstance(limit, int) and not isinstance(limit, bool) else None,
        reasoning_effort=body["reasoning_effort"] if isinstance(body.get("reasoning_effort"), str) else None,
        output_format=_format(body.get("response_format")),
        temperature=float(temperature) if isinstance(temperature, (int, float)) and not isinstance(temperature, bool) else None,
        top_p=float(body["top_p"]) if isinstance(body.get("top_p"), (int, float)) and not isinstance(body.get("top_p"), bool) else None,
        stop=(stop,) if isinstance(stop, str) else tuple(s for s in stop if isinstance(s, str)) if isinstance(stop, list) else (),
        stream=body.get("stream") is True,
    )


def _parts(where: str, content: Any) -> tuple[Text | Image, ...]:
    if content is None:
        return ()
    if isinstance(content, str):
        return (Text(content),) if content else ()
    parts: list[Text | Image] = []
    for n, part in enumerate(content if isinstance(content, list) else []):
        part = mapping(part)
        kind = part.get("type")
        if kind == "text":
            parts.append(Text(str(part.get("text") or "")))
        elif kind == "image_url":
            url = mapping(part.get("image_url")).get("url")
            if not isinstance(url, str):
                raise Untranslatable(f"{where}.content.{n}.image_url", "needs a url")
            parts.append(Image(url))
        elif kind == "refusal":
            parts.append(Text(str(part.get("refusal") or "")))
        else:
            raise Untranslatable(f"{where}.content.{n}.type", f"a {kind!r} part has no equivalent upstream")
    return tuple(parts)


def _tool(index: int, tool: Any) -> Tool:
    tool = mapping(tool)
    if tool.get("type") != "function":
        raise Untranslatable(f"tools.{index}.type", f"a {tool.get('type')!r} tool has no equivalent upstream")
    function = mapping(tool.get("function"))
    parameters = function.get("parameters")
    return Tool(
        str(function.get("name") or ""),
        str(function.get("description") or ""),
        parameters if isinstance(parameters, dict) else {"type": "object"},
    )


def _choice(value: Any, parallel: Any) -> ToolChoice | None:
    if value is None and parallel is None:
        return None
    if value in (None, "auto"):
        return ToolChoice("auto", "", parallel is not False)
    if value in ("none", "required"):
        return ToolChoice("none" if value == "none" else "any", "", parallel is not False)
    name = mapping(mapping(value).get("function")).get("name")
    if mapping(value).get("type") == "function" and isinstance(name, str):
        return ToolChoice("tool", name, parallel is not False)
    raise Untranslatable("tool_choice", f"{value!r} cannot be translated")


def _format(value: Any) -> OutputFormat | None:
    fmt = mapping(value)
    if not fmt or fmt.get("type") == "text":
        return None
    schema = mapping(fmt.get("json_schema"))
    if fmt.get("type") == "json_schema" and isinstance(schema.get("schema"), dict):
        return OutputFormat(schema["schema"], str(schema.get("name") or "output"))
    raise Untranslatable("response_format", f"{fmt.get('type')!r} cannot be translated (json_schema can)")


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
        return b"".join(self._one(event) for event in events)

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


# -- request writer (Turn → a Chat body, for an upstream that serves the model on Chat only) ------------------------
def write_request(turn: Turn) -> dict[str, Any]:
    """A Chat body for the turn, streamed with usage: the system prompt first, then each message in Chat's order
    (an assistant turn's text and calls in one message, each tool result its own `tool` message right after)."""
    messages: list[dict[str, Any]] = [{"role": "system", "content": turn.system}] if turn.system else []
    for message in turn.messages:
        messages += _write_message(message)
    body: dict[str, Any] = {"model": turn.model, "messages": messages, "stream": True, "stream_options": {"include_usage": True}}
    if turn.tools:
        body["tools"] = [
            {"type": "function", "function": {"name": t.name, "description": t.description, "parameters": t.parameters}} for t in turn.tools
        ]
    choice = turn.tool_choice
    if choice is not None and turn.tools:
        body["tool_choice"] = (
            {"type": "function", "function": {"name": choice.name}}
            if choice.kind == "tool"
            else {"any": "required"}.get(choice.kind, choice.kind)
        )
        if choice.kind != "none":
            body["parallel_tool_calls"] = choice.parallel
    if turn.max_tokens is not None:
        body["max_tokens"] = turn.max_tokens
    if turn.reasoning_effort:
        body["reasoning_effort"] = turn.reasoning_effort
    if turn.output_format is not None:
        schema = {"name": turn.output_format.name, "schema": turn.output_format.schema, "strict": False}
        body["response_format"] = {"type": "json_schema", "json_schema": schema}
    for name in ("temperature", "top_p"):
        if getattr(turn, name) is not None:
            body[name] = getattr(turn, name)
    if turn.stop:
        body["stop"] = list(turn.stop)
    return body


def _write_message(message: Message) -> list[dict[str, Any]]:
    """One message as Chat messages. Reasoning from another provider is dropped (never sent as text)."""
    if message.role == "assistant":
        text = "".join(part.text for part in message.parts if isinstance(part, Text))
        calls = [
            {"id": part.id, "type": "function", "function": {"name": part.name, "arguments": part.arguments or "{}"}}
            for part in message.parts
            if isinstance(part, ToolCall)
        ]
        if not text and not calls:
            return []
        written: dict[str, Any] = {"role": "assistant", "content": text or None}
        if calls:
            written["tool_calls"] = calls
        return [written]
    results: list[dict[str, Any]] = []
    content: list[dict[str, Any]] = []
    for part in message.parts:
        if isinstance(part, ToolResult):
            prefix = TOOL_ERROR_PREFIX if part.is_error else ""
            text = prefix + "".join(p.text for p in part.content if isinstance(p, Text))
            results.append({"role": "tool", "tool_call_id": part.call_id, "content": text})
            content += [_image_part(p) for p in part.content if isinstance(p, Image)]  # a tool message holds text only
        elif isinstance(part, Text):
            if part.text:
                content.append({"type": "text", "text": part.text})
        elif isinstance(part, Image):
            content.append(_image_part(part))
    if not content:
        return results
    role = "system" if message.role == "system" else "user"
    if role == "system" or all(part["type"] == "text" for part in content):
        return [*results, {"role": role, "content": "".join(part.get("text", "") for part in content)}]
    return [*results, {"role": role, "content": content}]


def _image_part(image: Image) -> dict[str, Any]:
    return {"type": "image_url", "image_url": {"url": image.url}}


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
            self._usage = read_usage(chunk["usage"])
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


def read_usage(usage: dict[str, Any]) -> ev.Usage:
    """Chat usage → neutral: `prompt_tokens` includes the cached ones, which the neutral form counts apart."""

    def count(value: Any) -> int:
        return value if isinstance(value, int) and not isinstance(value, bool) else 0

    cached = count(mapping(usage.get("prompt_tokens_details")).get("cached_tokens"))
    return ev.Usage(
        input=max(0, count(usage.get("prompt_tokens")) - cached),
        output=count(usage.get("completion_tokens")),
        cache_read=cached,
        reasoning=count(mapping(usage.get("completion_tokens_details")).get("reasoning_tokens")),
    )
