"""Anthropic Messages requests: the reader (a client's body → Turn) and the writer (Turn → a body for Claude).
The stream side is `messages_stream`."""

from __future__ import annotations

from typing import Any, Literal

import msgspec

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


# A well-formed conversation as `msgspec.convert` reads it, in C, into the turn's own parts where the block is one
# (text, thinking) and into these where it needs a step more (providers.protocols.turn). Unknown fields are ignored,
# as the step-by-step reader ignores them.
class _ToolUse(msgspec.Struct, tag_field="type", tag="tool_use", gc=False):
    id: str
    name: str
    input: Any = None


class _Image(msgspec.Struct, tag_field="type", tag="image", gc=False):
    source: dict[str, Any]


class _ToolResult(msgspec.Struct, tag_field="type", tag="tool_result", gc=False):
    tool_use_id: str
    content: str | list[Text | _Image] | None = None
    is_error: bool = False


class _RedactedThinking(msgspec.Struct, tag_field="type", tag="redacted_thinking", gc=False):
    data: str = ""


class _Message(msgspec.Struct, gc=False):
    role: Literal["user", "assistant", "system"]
    content: str | list[Text | Reasoning | _ToolUse | _ToolResult | _RedactedThinking | _Image]


_CONVERSATION = list[_Message]


def _messages(listed: list[Any]) -> tuple[Message, ...]:
    """The conversation as messages. A well-formed one is read by `msgspec.convert` (hundreds of blocks a request,
    0.06 ms for 400); anything it refuses (a missing or mistyped field, an unknown block, a refused image, a
    tool_result with no tool_use before it) is read again message by message (`_message`), which reads what it can
    and names what it cannot."""
    try:
        return _converted(msgspec.convert(listed, _CONVERSATION))
    except (msgspec.ValidationError, Untranslatable):
        turns = tuple([_message(index, message) for index, message in enumerate(listed)])
        _check_results(turns)
        return turns


def _converted(conversation: list[_Message]) -> tuple[Message, ...]:
    """The turn's messages; Untranslatable for a tool_result with no tool_use before it (`_messages` reads the
    conversation again step by step, to name it). One loop, no call per message or block: hundreds a request."""
    turns: list[Message] = []
    calls: set[str] = set()
    for message in conversation:
        content = message.content
        if type(content) is str:
            turns.append(Message(message.role, (Text(content),)))
            continue
        parts: list[Part] = []
        for block in content:  # `type(...) is`: the cheapest test
            if type(block) is Text or type(block) is Reasoning:  # read as they are
                parts.append(block)
            elif type(block) is _ToolUse:
                arguments = fastjson.dumps(block.input or {}).decode()  # UTF-8, compact: as the other protocols write it
                parts.append(ToolCall(block.id, block.name, arguments))
                calls.add(block.id)
            elif type(block) is _ToolResult:
                if block.tool_use_id not in calls:
                    raise Untranslatable("tool_use_id", "an orphan tool_result")
                inner = block.content
                results = (Text(inner),) if isinstance(inner, str) else _result_parts(inner)
                parts.append(ToolResult(block.tool_use_id, results, block.is_error))
            elif type(block) is _RedactedThinking:
                parts.append(Reasoning("", block.data))
            elif type(block) is _Image:
                parts.append(_image("", block.source))
        turns.append(Message(message.role, tuple(parts)))
    return tuple(turns)


def _result_parts(content: list[Text | _Image] | None) -> tuple[Text | Image, ...]:
    return tuple([part if isinstance(part, Text) else _image("", part.source) for part in content or ()])


def _message(index: int, message: Any) -> Message:
    message = mapping(message)
    role = message.get("role")
    if role not in ROLES:
        raise Untranslatable(f"messages.{index}.role", f"{role!r} cannot be translated (user, assistant or system)")
    content = message.get("content")
    blocks = [{"type": "text", "text": content}] if isinstance(content, str) else _list(content, f"messages.{index}.content")
    return Message(role, tuple(_part(f"messages.{index}.content.{n}", mapping(block)) for n, block in enumerate(blocks)))


def _part(where: str, block: dict[str, Any]) -> Part:
    kind = block.get("type")
    if kind == "text":
        return Text(str(block.get("text") or ""))
    if kind == "image":
        return _image(where, mapping(block.get("source")))
    if kind == "tool_use":
        arguments = fastjson.dumps(block.get("input") or {}).decode()
        return ToolCall(str(block.get("id") or ""), str(block.get("name") or ""), arguments)
    if kind == "tool_result":
        content = block.get("content")
        parts: list[Text | Image] = []
        for n, inner in enumerate([{"type": "text", "text": content}] if isinstance(content, str) else _list(content, where)):
            part = _part(f"{where}.content.{n}", mapping(inner))
            if not isinstance(part, (Text, Image)):
                raise Untranslatable(f"{where}.content.{n}", "a tool result holds text and images only")
            parts.append(part)
        return ToolResult(str(block.get("tool_use_id") or ""), tuple(parts), block.get("is_error") is True)
    if kind == "thinking":
        return Reasoning(str(block.get("thinking") or ""), str(block.get("signature") or ""))
    if kind == "redacted_thinking":
        return Reasoning("", str(block.get("data") or ""))
    raise Untranslatable(f"{where}.type", f"a {kind!r} block has no equivalent upstream")


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
        "messages": _write_messages(turn.messages, own),
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


def _write_messages(messages: tuple[Message, ...], own: carry.Own | None) -> list[dict[str, Any]]:
    """The messages in Anthropic's order: a user turn's tool results first (they answer the turn before), then its
    text and images; an assistant turn's thinking (this upstream's own, `own`), then its text, then its calls.
    Reasoning from another provider or account is dropped. Neighbours of one role are one message (a
    mid-conversation system message becomes user text after the turn). One loop, no call per message or part:
    hundreds of each a request."""
    written: list[dict[str, Any]] = []
    last = ""
    for message in messages:
        blocks: list[dict[str, Any]] = []
        rank = 0  # the order so far: 0 results and thinking, 1 text and images, 2 calls (parts come in it, nearly always)
        ordered = True
        for part in message.parts:
            if type(part) is Text:  # `is` on the exact class: the cheapest test
                if not part.text:
                    continue
                blocks.append({"type": "text", "text": part.text})
                ordered, rank = ordered and rank <= 1, 1
            elif type(part) is ToolCall:
                try:
                    arguments = _decode(part.arguments or "{}")
                except msgspec.DecodeError:
                    arguments = _arguments(part)
                if not isinstance(arguments, dict):
                    arguments = {"input": arguments}
                blocks.append({"type": "tool_use", "id": part.id, "name": part.name, "input": arguments})
                rank = 2
            elif type(part) is ToolResult:
                inner = part.content
                if len(inner) == 1 and type(inner[0]) is Text and not part.is_error:  # the usual result: one text
                    blocks.append({"type": "tool_result", "tool_use_id": part.call_id, "content": inner[0].text})
                else:
                    blocks.append(_result(part))
                ordered = ordered and rank == 0
            elif type(part) is Image:
                blocks.append({"type": "image", "source": _image_source(part)})
                ordered, rank = ordered and rank <= 1, 1
            elif type(part) is Reasoning and own is not None and message.role == "assistant":
                blob = own(part.signature)
                block = carry.unpack_thinking(blob) if blob is not None else None
                if block is not None:
                    blocks.append(block)
                    ordered = ordered and rank == 0
        if not blocks:
            continue
        if not ordered:
            blocks.sort(key=_block_rank)  # stable: each kind keeps its order
        role = "assistant" if message.role == "assistant" else "user"
        if role == last:
            written[-1]["content"] += blocks  # a list this writer made for this message alone
        else:
            written.append({"role": role, "content": blocks})
            last = role
    return written


def _block_rank(block: dict[str, Any]) -> int:
    kind = block["type"]
    return 0 if kind in ("tool_result", "thinking", "redacted_thinking") else 2 if kind == "tool_use" else 1


_decode = msgspec.json.Decoder().decode  # a call's arguments, as fastjson.loads reads them first


def _arguments(call: ToolCall) -> Any:
    """Arguments msgspec refused, as fastjson reads them (the standard module says why, or reads a lone surrogate)."""
    try:
        return fastjson.loads(call.arguments)
    except ValueError:
        raise Untranslatable("arguments", f"the arguments of call {call.id!r} are not JSON") from None


def _result(part: ToolResult) -> dict[str, Any]:
    text = all_text(part.content)
    written: Any = text if text is not None else [_text_or_image(p) for p in part.content]
    result: dict[str, Any] = {"type": "tool_result", "tool_use_id": part.call_id, "content": written}
    if part.is_error:
        result["is_error"] = True
    return result


def _text_or_image(part: Text | Image) -> dict[str, Any]:
    return {"type": "text", "text": part.text} if isinstance(part, Text) else {"type": "image", "source": _image_source(part)}


def _image_source(image: Image) -> dict[str, Any]:
    checked_image(image)
    if image.url.startswith("data:"):
        head, _, data = image.url.partition(",")
        return {"type": "base64", "media_type": head[5:].split(";")[0] or "image/png", "data": data}
    return {"type": "url", "url": image.url}
