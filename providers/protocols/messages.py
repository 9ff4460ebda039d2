"""Anthropic Messages requests: the reader (a client's body → Turn) and the writer (Turn → a body for Claude).
The stream side is `messages_stream`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from core import fastjson
from core.jsonshape import mapping
from providers.protocols import carry
from providers.protocols.turn import (
    EFFORT_BUDGETS,
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
    checked_image,
    effort_for_budget,
)

BILLING_BLOCK = "x-anthropic-billing-header:"  # Claude Code's attestation for Anthropic: never sent to another provider
DEFAULT_TEMPERATURE = 1.0  # what Claude Code sends on every request: dropped, the target's default is the same
OUTPUT_EFFORTS = {"low": "low", "medium": "medium", "high": "high", "xhigh": "xhigh", "max": "xhigh"}


# -- request reader ------------------------------------------------------------------------------------------
def read_request(body: dict[str, Any]) -> Turn:
    """A Messages request as a Turn; Untranslatable for what has no equivalent and would change the answer."""
    stops = body.get("stop_sequences")
    if stops:
        raise Untranslatable("stop_sequences", "the upstream has no stop sequences")
    for name in ("temperature", "top_p", "top_k"):
        value = body.get(name)
        if value is not None and not (name == "temperature" and value == DEFAULT_TEMPERATURE):
            raise Untranslatable(name, f"the upstream does not take {name}; only the default ({DEFAULT_TEMPERATURE:g}) can be translated")
    turns = _messages(_list(body.get("messages"), "messages"))
    _check_results(turns)
    return Turn(
        model=str(body.get("model") or ""),
        system=_system(body.get("system")),
        messages=turns,
        tools=tuple(_tool(i, t) for i, t in enumerate(_list(body.get("tools"), "tools"))),
        tool_choice=_tool_choice(body.get("tool_choice")),
        max_tokens=body["max_tokens"] if isinstance(body.get("max_tokens"), int) else None,
        reasoning_effort=_effort(body),
        output_format=_output_format(body),
        stream=body.get("stream") is True,
    )


def _check_results(turns: tuple[Message, ...]) -> None:
    """A tool_result answers a tool_use that comes before it: the other protocols refuse an output with no call
    ("No tool call found for function call output"), so an orphan is a 400 here, naming it."""
    calls: set[str] = set()
    for message in turns:
        for part in message.parts:
            if type(part) is ToolCall:
                calls.add(part.id)
            elif type(part) is ToolResult and part.call_id not in calls:
                index = next(i for i, m in enumerate(turns) if m is message)
                n = next(i for i, p in enumerate(message.parts) if p is part)
                raise Untranslatable(
                    f"messages.{index}.content.{n}.tool_use_id", f"no tool_use with id {part.call_id!r} comes before this tool_result"
                )


def _list(value: Any, field: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise Untranslatable(field, "must be a list")
    return value


def _system(value: Any) -> str:
    if value is None or isinstance(value, str):
        return value or ""
    texts = []
    for index, block in enumerate(_list(value, "system")):
        block = mapping(block)
        if block.get("type") != "text" or not isinstance(block.get("text"), str):
            raise Untranslatable(f"system.{index}", "only text blocks can be translated")
        if not block["text"].startswith(BILLING_BLOCK):
            texts.append(block["text"])
    return "\n\n".join(texts)


ROLES = ("user", "assistant", "system")  # system: Claude Code's mid-conversation reminders


def _messages(listed: list[Any]) -> tuple[Message, ...]:
    """The conversation as messages. Well-formed messages are read on a short path (hundreds of blocks a request);
    anything odd (a KeyError, a TypeError, a refused image) sends that message down `_message`, which reads it again
    step by step to name what is wrong."""
    turns: list[Message] = []
    for index, message in enumerate(listed):
        try:
            role, content = message["role"], message["content"]
            if role not in ROLES:
                raise KeyError(role)
            parts = (Text(content),) if type(content) is str else tuple([_READERS[block["type"]](block) for block in content])
            turns.append(Message(role, parts))
        except (KeyError, TypeError, AttributeError, Untranslatable):
            turns.append(_message(index, message))
    return tuple(turns)


def _message(index: int, message: Any) -> Message:
    message = mapping(message)
    role = message.get("role")
    if role not in ROLES:
        raise Untranslatable(f"messages.{index}.role", f"{role!r} cannot be translated (user, assistant or system)")
    content = message.get("content")
    blocks = [{"type": "text", "text": content}] if isinstance(content, str) else _list(content, f"messages.{index}.content")
    return Message(role, tuple(_part(f"messages.{index}.content.{n}", mapping(block)) for n, block in enumerate(blocks)))


def _part(where: str, block: dict[str, Any]) -> Part:
    """One content block, or a 400 naming `where` (the slow path: `_READERS` reads well-formed blocks)."""
    kind = block.get("type")
    if kind == "image":
        return _image(where, mapping(block.get("source")))
    if kind == "tool_result":
        content = block.get("content")
        parts: list[Text | Image] = []
        for n, inner in enumerate([{"type": "text", "text": content}] if isinstance(content, str) else _list(content, where)):
            part = _part(f"{where}.content.{n}", mapping(inner))
            if not isinstance(part, (Text, Image)):
                raise Untranslatable(f"{where}.content.{n}", "a tool result holds text and images only")
            parts.append(part)
        return ToolResult(str(block.get("tool_use_id") or ""), tuple(parts), block.get("is_error") is True)
    reader = _READERS.get(kind) if isinstance(kind, str) else None
    if reader is None:
        raise Untranslatable(f"{where}.type", f"a {kind!r} block has no equivalent upstream")
    return reader(block)


def _text(block: dict[str, Any]) -> Text:
    return Text(str(block.get("text") or ""))


def _tool_use(block: dict[str, Any]) -> ToolCall:
    arguments = fastjson.dumps(block.get("input") or {}).decode()  # UTF-8, compact: as the other protocols write it
    return ToolCall(str(block.get("id") or ""), str(block.get("name") or ""), arguments)


def _tool_result(block: dict[str, Any]) -> ToolResult:
    content = block.get("content")
    if isinstance(content, str):
        parts: tuple[Text | Image, ...] = (Text(content),)
    else:
        parts = tuple([_RESULT_READERS[inner["type"]](inner) for inner in content or ()])
    return ToolResult(str(block.get("tool_use_id") or ""), parts, block.get("is_error") is True)


def _thinking(block: dict[str, Any]) -> Reasoning:
    return Reasoning(str(block.get("thinking") or ""), str(block.get("signature") or ""))


def _redacted_thinking(block: dict[str, Any]) -> Reasoning:
    return Reasoning("", str(block.get("data") or ""))


def _image_block(block: dict[str, Any]) -> Image:
    return _image("", block["source"])


# Each block type's reader, for well-formed blocks (see `_messages`).
_RESULT_READERS: dict[str, Callable[[dict[str, Any]], Text | Image]] = {"text": _text, "image": _image_block}
_READERS: dict[str, Callable[[dict[str, Any]], Part]] = {
    **_RESULT_READERS,
    "tool_use": _tool_use,
    "tool_result": _tool_result,
    "thinking": _thinking,
    "redacted_thinking": _redacted_thinking,
}


def _image(where: str, source: dict[str, Any]) -> Image:
    if source.get("type") == "base64":
        media_type = str(source.get("media_type") or "image/png")
        return Image(f"data:{media_type};base64,{source.get('data') or ''}", media_type)
    if source.get("type") == "url" and isinstance(source.get("url"), str):
        return Image(source["url"])
    raise Untranslatable(f"{where}.source", "only base64 and URL images can be translated")


def _tool(index: int, tool: Any) -> Tool:
    tool = mapping(tool)
    if tool.get("type") not in (None, "custom"):
        raise Untranslatable(f"tools.{index}", f"the server tool {tool.get('type')!r} has no equivalent upstream")
    schema = tool.get("input_schema")
    return Tool(str(tool.get("name") or ""), str(tool.get("description") or ""), schema if isinstance(schema, dict) else {"type": "object"})


def _tool_choice(value: Any) -> ToolChoice | None:
    if value is None:
        return None
    choice = mapping(value)
    kind = choice.get("type")
    if kind not in ("auto", "any", "none", "tool"):
        raise Untranslatable("tool_choice.type", f"{kind!r} cannot be translated")
    return ToolChoice(kind, str(choice.get("name") or ""), choice.get("disable_parallel_tool_use") is not True)


def _effort(body: dict[str, Any]) -> str | None:
    effort = mapping(body.get("output_config")).get("effort")
    if isinstance(effort, str) and effort in OUTPUT_EFFORTS:
        return OUTPUT_EFFORTS[effort]
    thinking = mapping(body.get("thinking"))
    if thinking.get("type") == "enabled" and isinstance(thinking.get("budget_tokens"), int):
        return effort_for_budget(thinking["budget_tokens"])
    if thinking.get("type") == "adaptive":
        return "medium"
    return None


def _output_format(body: dict[str, Any]) -> OutputFormat | None:
    fmt = mapping(mapping(body.get("output_config")).get("format"))
    if not fmt:
        return None
    if fmt.get("type") != "json_schema" or not isinstance(fmt.get("schema"), dict):
        raise Untranslatable("output_config.format", "only a json_schema format can be translated")
    return OutputFormat(fmt["schema"])


# -- request writer (Turn → a Messages body) ------------------------------------------------------------------------
DEFAULT_MAX_TOKENS = 32000  # Anthropic requires max_tokens; a client that sends none gets this (CLIProxyAPI's choice too)
MIN_THINKING_BUDGET = 1024  # Anthropic's floor: an effort below it (none, minimal) sends no thinking


def write_request(turn: Turn, own: carry.Own | None = None) -> dict[str, Any]:
    """A Messages body for the turn, streamed. The provider (Claude) adds its own presentation on top, as for any
    other client: identity block, headers, tool-name rules. `own` tells which reasoning parts carry this upstream's
    thinking blocks (providers.protocols.carry): they go back as they came, first in their turn."""
    max_tokens = turn.max_tokens or DEFAULT_MAX_TOKENS
    body: dict[str, Any] = {
        "model": turn.model,
        "max_tokens": max_tokens,
        "messages": _merged([message for m in turn.messages if (message := _write_message(m, own)) is not None]),
        "stream": True,
    }
    if turn.system:
        body["system"] = turn.system
    if turn.tools:
        body["tools"] = [{"name": t.name, "description": t.description, "input_schema": t.parameters} for t in turn.tools]
    choice = turn.tool_choice
    if choice is not None and turn.tools:
        written: dict[str, Any] = {"type": choice.kind} if choice.kind != "tool" else {"type": "tool", "name": choice.name}
        if not choice.parallel and choice.kind != "none":
            written["disable_parallel_tool_use"] = True
        body["tool_choice"] = written
    budget = dict(EFFORT_BUDGETS).get(turn.reasoning_effort or "", 0)
    if budget >= MIN_THINKING_BUDGET and thinking_allowed(body["messages"]):
        body["thinking"] = {"type": "enabled", "budget_tokens": min(budget, max_tokens - 1)}
    if turn.output_format is not None:
        body["output_config"] = {"format": {"type": "json_schema", "schema": turn.output_format.schema}}
    if turn.temperature is not None and "thinking" not in body:  # Anthropic refuses a temperature with thinking on
        body["temperature"] = turn.temperature
    if turn.top_p is not None:
        if "temperature" in body or "thinking" in body:
            raise Untranslatable("top_p", "Claude takes top_p only without temperature and thinking")
        body["top_p"] = turn.top_p
    if turn.stop:
        body["stop_sequences"] = list(turn.stop)
    return body


def thinking_allowed(messages: list[dict[str, Any]]) -> bool:
    """With thinking on, Anthropic refuses a conversation whose last assistant turn calls a tool without starting
    with a thinking block ("a final `assistant` message must start with a thinking block"): one whose thinking was
    not carried (made by another provider or account, or with thinking off) is sent with thinking off instead."""
    last = next((m for m in reversed(messages) if isinstance(m, dict) and m.get("role") == "assistant"), None)
    content = last.get("content") if last is not None else None
    if not isinstance(content, list) or not any(isinstance(b, dict) and b.get("type") == "tool_use" for b in content):
        return True
    return isinstance(content[0], dict) and content[0].get("type") in ("thinking", "redacted_thinking")


def _write_message(message: Message, own: carry.Own | None = None) -> dict[str, Any] | None:
    """Anthropic's order: a user turn's tool results first (they answer the turn before), then its text and images;
    an assistant turn's thinking (this upstream's own, `own`), then its text, then its calls. Reasoning from another
    provider or account is dropped."""
    thinking: list[dict[str, Any]] = []
    results: list[dict[str, Any]] = []
    content: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []
    for part in message.parts:
        if type(part) is Text:  # `is` on the exact class: the cheapest test, hundreds of parts a request
            if part.text:
                content.append({"type": "text", "text": part.text})
        elif isinstance(part, ToolCall):
            calls.append({"type": "tool_use", "id": part.id, "name": part.name, "input": _arguments(part)})
        elif isinstance(part, ToolResult):
            results.append(_result(part))
        elif isinstance(part, Image):
            content.append({"type": "image", "source": _image_source(part)})
        elif isinstance(part, Reasoning) and own is not None and message.role == "assistant":
            blob = own(part.signature)
            block = carry.unpack_thinking(blob) if blob is not None else None
            if block is not None:
                thinking.append(block)
    blocks = results + thinking + content + calls
    if not blocks:
        return None
    role = "user" if message.role in ("user", "system") else "assistant"
    return {"role": role, "content": blocks}


def _result(part: ToolResult) -> dict[str, Any]:
    text = all_text(part.content)
    written: Any = text if text is not None else [_text_or_image(p) for p in part.content]
    result: dict[str, Any] = {"type": "tool_result", "tool_use_id": part.call_id, "content": written}
    if part.is_error:
        result["is_error"] = True
    return result


def _text_or_image(part: Text | Image) -> dict[str, Any]:
    return {"type": "text", "text": part.text} if isinstance(part, Text) else {"type": "image", "source": _image_source(part)}


def _merged(written: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Neighbours of one role as one message (a mid-conversation system message becomes user text after the turn)."""
    out: list[dict[str, Any]] = []
    for message in written:
        if out and out[-1]["role"] == message["role"]:
            out[-1] = {"role": message["role"], "content": out[-1]["content"] + message["content"]}
        else:
            out.append(message)
    return out


def _image_source(image: Image) -> dict[str, Any]:
    checked_image(image)
    if image.url.startswith("data:"):
        head, _, data = image.url.partition(",")
        return {"type": "base64", "media_type": head[5:].split(";")[0] or "image/png", "data": data}
    return {"type": "url", "url": image.url}


def _arguments(call: ToolCall) -> Any:
    try:
        value = fastjson.loads(call.arguments or "{}")
    except ValueError:
        raise Untranslatable("arguments", f"the arguments of call {call.id!r} are not JSON") from None
    return value if isinstance(value, dict) else {"input": value}
