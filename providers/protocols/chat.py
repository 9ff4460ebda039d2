"""OpenAI Chat Completions requests: the reader (a chat client's body → Turn) and the writer (Turn → a Chat body, for
an upstream that serves a model on Chat only: Copilot's chat-only models). The stream side is `chat_stream`."""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from core.jsonshape import mapping
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
    all_text,
    append_message,
    checked_image,
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
    listed = body.get("messages")
    messages = _read_messages(listed if isinstance(listed, list) else [], system)
    limit = body.get("max_completion_tokens") if body.get("max_completion_tokens") is not None else body.get("max_tokens")
    stop = body.get("stop")
    temperature = body.get("temperature")
    return Turn(
        model=str(body.get("model") or ""),
        system="\n\n".join(part for part in system if part),
        messages=messages,
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


# A well-formed conversation as `msgspec.convert` reads it, in C (unknown fields ignored, as the step-by-step reader
# ignores them); anything it refuses is read again message by message (`_read_step_by_step`), which names what it
# cannot read.
class _ImageURL(msgspec.Struct, gc=False):
    url: str


class _ImagePart(msgspec.Struct, tag_field="type", tag="image_url", gc=False):
    image_url: _ImageURL


class _RefusalPart(msgspec.Struct, tag_field="type", tag="refusal", gc=False):
    refusal: str = ""


_Content = str | list[Text | _ImagePart | _RefusalPart] | None


class _System(msgspec.Struct, tag_field="role", tag="system", gc=False):
    content: _Content = None


class _Developer(msgspec.Struct, tag_field="role", tag="developer", gc=False):
    content: _Content = None


class _User(msgspec.Struct, tag_field="role", tag="user", gc=False):
    content: _Content = None


class _Function(msgspec.Struct, gc=False):
    name: str
    arguments: str = ""


class _Call(msgspec.Struct, gc=False):
    id: str
    function: _Function
    type: Literal["function"] = "function"


class _Assistant(msgspec.Struct, tag_field="role", tag="assistant", gc=False):
    content: _Content = None
    tool_calls: list[_Call] | None = None


class _ToolMessage(msgspec.Struct, tag_field="role", tag="tool", gc=False):
    tool_call_id: str
    content: _Content = None


_CONVERSATION = list[_System | _Developer | _User | _Assistant | _ToolMessage]


def _read_messages(listed: list[Any], system: list[str]) -> tuple[Message, ...]:
    """The conversation as the turn's messages; instructions before it added to `system`. A well-formed one is read
    by `msgspec.convert`; anything it refuses is read again message by message."""
    try:
        converted = msgspec.convert(listed, _CONVERSATION)
    except msgspec.ValidationError:
        return _read_step_by_step(listed, system)
    messages: list[Message] = []
    calls: set[str] = set()
    instructions: list[str] = []
    for message in converted:
        if type(message) is _User:
            append_message(messages, "user", _converted_parts(message.content))
        elif type(message) is _Assistant:
            parts: list[Any] = list(_converted_parts(message.content))
            for call in message.tool_calls or ():
                calls.add(call.id)
                parts.append(ToolCall(call.id, call.function.name, call.function.arguments or "{}"))
            append_message(messages, "assistant", tuple(parts))
        elif type(message) is _ToolMessage:
            if message.tool_call_id not in calls:  # read again step by step, to name it
                return _read_step_by_step(listed, system)
            append_message(messages, "user", (ToolResult(message.tool_call_id, _converted_parts(message.content)),))
        elif type(message) is _System or type(message) is _Developer:
            text = "".join(p.text for p in _converted_parts(message.content) if isinstance(p, Text))
            if messages:  # after the conversation began: an instruction in its place (chat agents end with one)
                append_message(messages, "system", (Text(text),))
            else:
                instructions.append(text)
    system += instructions
    return tuple(messages)


def _converted_parts(content: _Content) -> tuple[Text | Image, ...]:
    if content is None:
        return ()
    if isinstance(content, str):
        return (Text(content),) if content else ()
    parts: list[Text | Image] = []
    for part in content:
        if type(part) is Text:
            parts.append(part)
        elif type(part) is _ImagePart:
            parts.append(Image(part.image_url.url))
        elif type(part) is _RefusalPart:
            parts.append(Text(part.refusal))
    return tuple(parts)


def _read_step_by_step(listed: list[Any], system: list[str]) -> tuple[Message, ...]:
    messages: list[Message] = []
    calls: set[str] = set()
    for index, message in enumerate(listed):
        message = mapping(message)
        role = message.get("role")
        if role in ("system", "developer"):
            text = "".join(p.text for p in _parts(index, message.get("content")) if isinstance(p, Text))
            if messages:  # after the conversation began: an instruction in its place (chat agents end with one)
                append_message(messages, "system", (Text(text),))
            else:
                system.append(text)
        elif role == "user":
            append_message(messages, "user", _parts(index, message.get("content")))
        elif role == "assistant":
            parts: list[Any] = list(_parts(index, message.get("content")))
            listed_calls = message.get("tool_calls") or []
            if not isinstance(listed_calls, list):
                raise Untranslatable(f"messages.{index}.tool_calls", "must be a list")
            for n, call in enumerate(listed_calls):
                call = mapping(call)
                function = mapping(call.get("function"))
                if call.get("type", "function") != "function":
                    raise Untranslatable(f"messages.{index}.tool_calls.{n}.type", f"{call.get('type')!r} calls cannot be translated")
                calls.add(str(call.get("id") or ""))
                parts.append(ToolCall(str(call.get("id") or ""), str(function.get("name") or ""), str(function.get("arguments") or "{}")))
            append_message(messages, "assistant", tuple(parts))
        elif role == "tool":
            call_id = str(message.get("tool_call_id") or "")
            if call_id not in calls:
                why = f"no assistant tool call with id {call_id!r} comes before this tool message"
                raise Untranslatable(f"messages.{index}.tool_call_id", why)
            append_message(messages, "user", (ToolResult(call_id, _parts(index, message.get("content"))),))
        else:
            raise Untranslatable(f"messages.{index}.role", f"{role!r} cannot be translated")
    return tuple(messages)


def _parts(index: int, content: Any) -> tuple[Text | Image, ...]:
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
                raise Untranslatable(f"messages.{index}.content.{n}.image_url", "needs a url")
            parts.append(Image(url))
        elif kind == "refusal":
            parts.append(Text(str(part.get("refusal") or "")))
        else:
            raise Untranslatable(f"messages.{index}.content.{n}.type", f"a {kind!r} part has no equivalent upstream")
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
        texts: list[str] = []
        calls: list[dict[str, Any]] = []
        for part in message.parts:
            if type(part) is Text:  # `is` on the exact class: the cheapest test, hundreds of parts a request
                texts.append(part.text)
            elif isinstance(part, ToolCall):
                calls.append({"id": part.id, "type": "function", "function": {"name": part.name, "arguments": part.arguments or "{}"}})
        text = "".join(texts)
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
            output = all_text(part.content)
            if output is None:  # a tool message holds text only: its images follow as user content
                output = "".join(p.text for p in part.content if isinstance(p, Text))
                content += [_image_part(p) for p in part.content if isinstance(p, Image)]
            results.append({"role": "tool", "tool_call_id": part.call_id, "content": prefix + output})
        elif type(part) is Text:
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
    return {"type": "image_url", "image_url": {"url": checked_image(image).url}}
