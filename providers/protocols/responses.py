"""OpenAI Responses requests: the writer (Turn → a Responses body for Codex) and the reader (a Responses client's
body → Turn). The stream side is `responses_stream`."""

from __future__ import annotations

import json
from typing import Any, Literal

import msgspec

from core.jsonshape import mapping
from providers.protocols import carry
from providers.protocols.responses_stream import summary_text
from providers.protocols.turn import (
    CUSTOM_INPUT_SCHEMA,
    TOOL_ERROR_PREFIX,
    Image,
    Message,
    OutputFormat,
    Part,
    Reasoning,
    Text,
    Tool,
    ToolCall,
    ToolChoice,
    ToolResult,
    Turn,
    Untranslatable,
    all_text,
    append_message,
    checked_image,
)


# -- request writer --------------------------------------------------------------------------------------------
def write_request(turn: Turn, own: carry.Own | None = None) -> dict[str, Any]:
    """A Responses body for the turn. Fields the Codex backend refuses are left to its own normalising (the provider's
    prepare); `max_tokens` has no field the backend takes, so the upstream's own limit applies. `own` tells which
    reasoning parts this upstream made (providers.protocols.carry): they go back as reasoning items, the rest not."""
    body: dict[str, Any] = {
        "model": turn.model,
        "instructions": turn.system,
        "input": _input(turn.messages, own),
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
    if turn.stop:
        raise Untranslatable("stop", "the upstream has no stop sequences")
    for name in ("temperature", "top_p"):
        if getattr(turn, name) is not None:
            body[name] = getattr(turn, name)  # the provider's body rules keep or drop them (Codex drops both)
    return body


def _input(messages: tuple[Message, ...], own: carry.Own | None) -> list[dict[str, Any]]:
    written: list[dict[str, Any]] = []
    for message in messages:
        _items(message, own, written)
    return written


def _items(message: Message, own: carry.Own | None, written: list[dict[str, Any]]) -> None:
    """One message's parts as Responses input items, added to `written`, in an order the upstream pairs: a user
    turn's tool outputs first (they answer the calls of the turn before), then its text and images; an assistant
    turn's reasoning (the upstream's own, `own`), then its text, then its calls. Reasoning from another provider or
    account is never sent (not as text, not with a foreign signature)."""
    content: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []
    assistant = message.role == "assistant"
    for part in message.parts:
        if type(part) is Text:  # `is` on the exact class: the cheapest test, hundreds of parts a request
            if part.text:
                content.append({"type": "output_text" if assistant else "input_text", "text": part.text})
        elif type(part) is ToolCall:
            calls.append({"type": "function_call", "call_id": part.id, "name": part.name, "arguments": part.arguments})
        elif type(part) is ToolResult:  # a user turn's: before its message
            written.append({"type": "function_call_output", "call_id": part.call_id, "output": _output(part)})
        elif type(part) is Image:
            content.append({"type": "input_image", "image_url": checked_image(part).url, "detail": "auto"})
        elif type(part) is Reasoning:  # an assistant turn's: before its message and calls
            blob = own(part.signature) if own is not None and assistant else None
            if blob is not None and not carry.is_tagged(blob):  # a tag inside a tag is no blob the upstream made
                summary = [{"type": "summary_text", "text": part.text}] if part.text else []
                written.append({"type": "reasoning", "summary": summary, "encrypted_content": blob})
    if content:  # a mid-conversation system message is a developer message (the Codex backend refuses "system")
        written.append({"type": "message", "role": "developer" if message.role == "system" else message.role, "content": content})
    if calls:
        written += calls


def _output(result: ToolResult) -> str | list[dict[str, Any]]:
    prefix = TOOL_ERROR_PREFIX if result.is_error else ""
    text = all_text(result.content)
    if text is not None:
        return prefix + text
    parts: list[dict[str, Any]] = [{"type": "input_text", "text": prefix}] if prefix else []
    for part in result.content:
        parts.append(
            {"type": "input_text", "text": part.text}
            if isinstance(part, Text)
            else {"type": "input_image", "image_url": checked_image(part).url, "detail": "auto"}
        )
    return parts


# -- request reader (a Responses client's body → Turn) -----------------------------------------------------------
HOSTED_TOOLS = frozenset(
    {
        "web_search",
        "web_search_preview",
        "file_search",
        "code_interpreter",
        "image_generation",
        "computer_use_preview",
        "mcp",
        "tool_search",
    }
)
# Codex CLI's `namespace` tools group functions (its MCP servers' tools) under one name; how a model calls one of
# them back is Codex's own convention, so they are not offered to another provider yet (docs/translation.md).
DROPPED_TOOLS = frozenset({"namespace", "local_shell"})


def read_request(body: dict[str, Any]) -> Turn:
    """A Responses request as a Turn; Untranslatable (a 400 in OpenAI's shape naming the field) for what has no
    equivalent. Hosted tools (web search and the like) are dropped: the upstream has none of OpenAI's."""
    if body.get("previous_response_id"):
        raise Untranslatable("previous_response_id", "Kleis keeps no server-side conversation: send the whole input")
    if body.get("top_p") is not None:
        raise Untranslatable("top_p", "the upstream does not take top_p")
    system = [str(body["instructions"])] if isinstance(body.get("instructions"), str) and body["instructions"] else []
    raw = body.get("input")
    items = [{"type": "message", "role": "user", "content": raw}] if isinstance(raw, str) else raw if isinstance(raw, list) else []
    messages = _read_input(items, system)
    tools = tuple(tool for index, t in enumerate(body.get("tools") or []) if (tool := _read_tool(index, mapping(t))) is not None)
    text_format = mapping(mapping(body.get("text")).get("format"))
    temperature = body.get("temperature")
    return Turn(
        model=str(body.get("model") or ""),
        system="\n\n".join(part for part in system if part),
        messages=messages,
        tools=tools,
        tool_choice=_read_choice(body.get("tool_choice"), body.get("parallel_tool_calls")),
        max_tokens=body["max_output_tokens"] if isinstance(body.get("max_output_tokens"), int) else None,
        reasoning_effort=str(mapping(body.get("reasoning")).get("effort") or "") or None,
        output_format=OutputFormat(text_format["schema"], str(text_format.get("name") or "output"))
        if text_format.get("type") == "json_schema" and isinstance(text_format.get("schema"), dict)
        else None,
        temperature=float(temperature) if isinstance(temperature, (int, float)) and not isinstance(temperature, bool) else None,
        stream=body.get("stream") is True,
    )


# A well-formed input as `msgspec.convert` reads it, in C (unknown fields ignored, as the step-by-step reader ignores
# them); anything it refuses is read again item by item (`_input_step_by_step`), which names what it cannot read.
class _InputText(msgspec.Struct, tag_field="type", tag="input_text", gc=False):
    text: str


class _OutputText(msgspec.Struct, tag_field="type", tag="output_text", gc=False):
    text: str


class _InputImage(msgspec.Struct, tag_field="type", tag="input_image", gc=False):
    image_url: str


class _Refusal(msgspec.Struct, tag_field="type", tag="refusal", gc=False):
    refusal: str = ""


_Content = list[_InputText | _OutputText | Text | _InputImage | _Refusal]


class _MessageItem(msgspec.Struct, tag_field="type", tag="message", gc=False):
    role: Literal["user", "assistant", "system", "developer"]
    content: str | _Content


class _FunctionCall(msgspec.Struct, tag_field="type", tag="function_call", gc=False):
    call_id: str
    name: str
    arguments: str = ""


class _CustomToolCall(msgspec.Struct, tag_field="type", tag="custom_tool_call", gc=False):
    call_id: str
    name: str
    input: str = ""


class _FunctionCallOutput(msgspec.Struct, tag_field="type", tag="function_call_output", gc=False):
    call_id: str
    output: str | _Content | None = None


class _CustomToolCallOutput(msgspec.Struct, tag_field="type", tag="custom_tool_call_output", gc=False):
    call_id: str
    output: str | _Content | None = None


class _ReasoningItem(msgspec.Struct, tag_field="type", tag="reasoning", gc=False):
    summary: Any = None
    encrypted_content: str | None = None


_INPUT = list[_MessageItem | _FunctionCall | _CustomToolCall | _FunctionCallOutput | _CustomToolCallOutput | _ReasoningItem]


def _read_input(items: list[Any], system: list[str]) -> tuple[Message, ...]:
    """The input items as the turn's messages; system and developer messages' text added to `system`. A
    well-formed input is read by `msgspec.convert`; anything it refuses is read again item by item."""
    try:
        converted = msgspec.convert(items, _INPUT)
    except msgspec.ValidationError:
        return _input_step_by_step(items, system)
    messages: list[Message] = []
    calls: set[str] = set()
    instructions: list[str] = []
    # The message being gathered: consecutive items of one role are one message — `append_message` inlined, as a call
    # per item costs 14 µs of this loop's 124 for 300 items.
    last = Message("user", ())
    for item in converted:
        parts: tuple[Part, ...]
        if type(item) is _MessageItem:
            content = item.content
            if isinstance(content, str):
                parts = (Text(content),)
            elif len(content) == 1 and (type(content[0]) is _InputText or type(content[0]) is _OutputText):
                parts = (Text(content[0].text),)  # the usual message: one text
            else:
                parts = _parts(content)
            if item.role == "system" or item.role == "developer":
                instructions.append("".join(p.text for p in parts if isinstance(p, Text)))
                continue
            role = item.role
        elif type(item) is _FunctionCall:
            calls.add(item.call_id)
            role, parts = "assistant", (ToolCall(item.call_id, item.name, item.arguments or "{}"),)
        elif type(item) is _FunctionCallOutput or type(item) is _CustomToolCallOutput:
            if item.call_id not in calls:  # read again step by step, to name it
                return _input_step_by_step(items, system)
            output = item.output
            result = (Text(output or ""),) if output is None or isinstance(output, str) else _parts(output)
            role, parts = "user", (ToolResult(item.call_id, result),)
        elif type(item) is _CustomToolCall:
            calls.add(item.call_id)
            role, parts = "assistant", (ToolCall(item.call_id, item.name, json.dumps({"input": item.input})),)
        elif type(item) is _ReasoningItem:  # kept with its blob: the writer sends it on only where it came from (carry)
            role, parts = "assistant", (Reasoning(summary_text(item.summary), item.encrypted_content or ""),)
        if messages and last.role == role:
            last.parts += parts
        else:
            last = Message(role, parts)
            messages.append(last)
    system += instructions
    return tuple(messages)


def _parts(content: _Content) -> tuple[Text | Image, ...]:
    parts: list[Text | Image] = []
    for part in content:
        if type(part) is _InputText or type(part) is _OutputText:
            parts.append(Text(part.text))
        elif type(part) is Text:
            parts.append(part)
        elif type(part) is _InputImage:
            parts.append(Image(part.image_url))
        elif type(part) is _Refusal:
            parts.append(Text(part.refusal))
    return tuple(parts)


def _input_step_by_step(items: list[Any], system: list[str]) -> tuple[Message, ...]:
    messages: list[Message] = []
    calls: set[str] = set()
    for index, item in enumerate(items):
        item = mapping(item)
        kind = item.get("type") or ("message" if "role" in item else "")
        if kind == "message":
            role = item.get("role")
            parts = _content_parts(item.get("content"), index, "content")
            if role in ("system", "developer"):
                system.append("".join(p.text for p in parts if isinstance(p, Text)))
            elif role in ("user", "assistant"):
                append_message(messages, role, parts)
            else:
                raise Untranslatable(f"input.{index}.role", f"{role!r} cannot be translated")
        elif kind in ("function_call", "custom_tool_call"):
            call_id = str(item.get("call_id") or "")
            arguments = item.get("arguments") if kind == "function_call" else json.dumps({"input": item.get("input") or ""})
            calls.add(call_id)
            append_message(messages, "assistant", (ToolCall(call_id, str(item.get("name") or ""), str(arguments or "{}")),))
        elif kind in ("function_call_output", "custom_tool_call_output"):
            call_id = str(item.get("call_id") or "")
            if call_id not in calls:
                raise Untranslatable(f"input.{index}.call_id", f"no function_call with call_id {call_id!r} comes before this output")
            output = item.get("output")
            parts = (Text(output or ""),) if isinstance(output, str) or output is None else _content_parts(output, index, "output")
            append_message(messages, "user", (ToolResult(call_id, parts),))
        elif kind == "reasoning":  # kept with its blob: the writer sends it on only where it came from (carry)
            reasoning = Reasoning(summary_text(item.get("summary")), str(item.get("encrypted_content") or ""))
            append_message(messages, "assistant", (reasoning,))
        else:
            raise Untranslatable(f"input.{index}.type", f"an input item of type {kind!r} has no equivalent upstream")
    return tuple(messages)


def _content_parts(content: Any, index: int, field: str) -> tuple[Text | Image, ...]:
    """A message's content (or a tool output's parts) as parts; a 400 names `input.<index>.<field>.<n>`."""
    if isinstance(content, str):
        return (Text(content),)
    parts: list[Text | Image] = []
    for n, part in enumerate(content if isinstance(content, list) else ()):
        part = mapping(part)
        kind = part.get("type")
        if kind in ("input_text", "output_text", "text"):
            parts.append(Text(str(part.get("text") or "")))
        elif kind == "input_image" and isinstance(part.get("image_url"), str):
            parts.append(Image(part["image_url"]))
        elif kind == "refusal":
            parts.append(Text(str(part.get("refusal") or "")))
        else:
            raise Untranslatable(f"input.{index}.{field}.{n}.type", f"a {kind!r} part has no equivalent upstream")
    return tuple(parts)


def _read_tool(index: int, tool: dict[str, Any]) -> Tool | None:
    kind = tool.get("type")
    if kind == "function":
        parameters = tool.get("parameters")
        return Tool(
            str(tool.get("name") or ""),
            str(tool.get("description") or ""),
            parameters if isinstance(parameters, dict) else {"type": "object"},
        )
    if kind == "custom":
        return Tool(str(tool.get("name") or ""), str(tool.get("description") or ""), CUSTOM_INPUT_SCHEMA, "custom")
    if kind in HOSTED_TOOLS or kind in DROPPED_TOOLS:
        return None
    raise Untranslatable(f"tools.{index}.type", f"a {kind!r} tool has no equivalent upstream")


def _read_choice(value: Any, parallel: Any) -> ToolChoice | None:
    if value is None and parallel is None:
        return None
    choice = mapping(value)
    if value in (None, "auto"):
        kind, name = "auto", ""
    elif value == "required":
        kind, name = "any", ""
    elif value == "none":
        kind, name = "none", ""
    elif choice.get("type") in ("function", "custom") and choice.get("name"):
        kind, name = "tool", str(choice["name"])
    else:
        raise Untranslatable("tool_choice", f"{value!r} cannot be translated")
    return ToolChoice(kind, name, parallel is not False)  # type: ignore[arg-type]
