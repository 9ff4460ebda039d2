"""One turn of a conversation in a form no protocol owns: what the client asked for, read by a protocol's reader
and written by another's writer."""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Literal

import msgspec

from core.client_errors import Refusal


class Untranslatable(Refusal):
    """A field the target protocol has no place for, whose loss would change the answer: a 400 naming the field,
    in the caller's protocol shape."""

    def __init__(self, field: str, why: str) -> None:
        super().__init__(400, f"{field}: {why} (Kleis translates this request for its upstream)", code="unsupported_field")
        self.field = field


# The parts and messages of a turn are built by the hundred for each translated request: msgspec Structs, built in
# C (0.09 µs against a frozen dataclass's 0.53), left out of the garbage collector's walks (gc=False: they never form
# a cycle), and read straight from a client's body by `msgspec.convert` where the shapes match (Messages' text and
# thinking blocks, Chat's text parts). The tags and renamed fields are those block names; nothing else sees them.
# Nothing changes a part once a reader built it; a reader extends only the message it is still gathering.
class Text(msgspec.Struct, tag_field="type", tag="text", gc=False):
    text: str


class Image(msgspec.Struct, gc=False):
    url: str  # an http(s) URL or a data: URL (base64)
    media_type: str = ""


# What every upstream takes: Anthropic's four image formats, which OpenAI's protocols take too.
IMAGE_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")


def checked_image(image: Image) -> Image:
    """The image, when every upstream can take it: an http(s) URL, or a base64 data URL of a JPEG, PNG, GIF or WebP;
    else a 400 naming what it is (the upstream would refuse it less clearly, after the request went out)."""
    if image.url.startswith(("https://", "http://")):
        return image
    head, comma, _ = image.url.partition(",")
    media_type = head.removeprefix("data:").split(";")[0].lower()
    if not image.url.startswith("data:") or not comma or ";base64" not in head:
        raise Untranslatable("image", f"an image is an http(s) URL or a base64 data: URL, not {image.url[:30]!r}")
    if media_type not in IMAGE_TYPES:
        raise Untranslatable("image", f"the upstream takes {', '.join(IMAGE_TYPES)} images, not {media_type or 'an untyped one'!r}")
    return image


class ToolCall(msgspec.Struct, gc=False):
    id: str  # the id the client sees and names again in the tool's result (the upstream's call_id)
    name: str
    arguments: str  # JSON text of the arguments object


class ToolResult(msgspec.Struct, gc=False):
    call_id: str
    content: tuple[Text | Image, ...]
    is_error: bool = False


class Reasoning(msgspec.Struct, tag_field="type", tag="thinking", gc=False):
    """A provider's reasoning: kept in the turn so a writer can decide (today: never sent to another provider)."""

    text: str = msgspec.field(name="thinking")
    signature: str = ""  # Anthropic's signature, or an opaque blob of the provider that made it


Part = Text | Image | ToolCall | ToolResult | Reasoning


def all_text(parts: tuple[Text | Image, ...]) -> str | None:
    """The parts' text joined, when they are all text (a tool result's usual content: one text); else None."""
    first = parts[0] if len(parts) == 1 else None
    if type(first) is Text:
        return first.text
    if all(type(part) is Text for part in parts):
        return "".join(part.text for part in parts if isinstance(part, Text))
    return None


class Message(msgspec.Struct, gc=False):
    role: Literal["user", "assistant", "system"]  # system: an instruction in the middle of the conversation
    parts: tuple[Part, ...]


def append_message(messages: list[Message], role: Any, parts: tuple[Part, ...]) -> None:
    """Consecutive parts of one role make one message (a call and its text are one assistant turn): the readers of
    protocols that list items one by one (Chat, Responses) build their turns with this."""
    if messages and messages[-1].role == role:
        messages[-1].parts += parts  # the reader's own message, not yet shared
    else:
        messages.append(Message(role, parts))


@dataclasses.dataclass(frozen=True)
class Tool:
    name: str
    description: str
    parameters: dict[str, Any]
    kind: Literal["function", "custom"] = "function"  # custom: one free-form string input (Responses' custom tools)


TOOL_ERROR_PREFIX = "Error: "  # OpenAI's protocols have no is_error: a failed tool's output says so in its text
CUSTOM_INPUT_SCHEMA: dict[str, Any] = {"type": "object", "properties": {"input": {"type": "string"}}, "required": ["input"]}


@dataclasses.dataclass(frozen=True)
class ToolChoice:
    kind: Literal["auto", "any", "none", "tool"] = "auto"
    name: str = ""
    parallel: bool = True


@dataclasses.dataclass(frozen=True)
class OutputFormat:
    """Structured output: a JSON schema the answer must follow."""

    schema: dict[str, Any]
    name: str = "output"


@dataclasses.dataclass(frozen=True)
class Turn:
    model: str
    system: str
    messages: tuple[Message, ...]
    tools: tuple[Tool, ...] = ()
    tool_choice: ToolChoice | None = None
    max_tokens: int | None = None
    reasoning_effort: str | None = None  # none, minimal, low, medium, high, xhigh
    output_format: OutputFormat | None = None
    temperature: float | None = None
    top_p: float | None = None
    stop: tuple[str, ...] = ()  # stop sequences
    stream: bool = False


# Thinking budget ⇄ reasoning effort: the peer convention (CLIProxyAPI internal/thinking/convert.go), each effort the
# smallest budget that reaches it.
EFFORT_BUDGETS = (("minimal", 512), ("low", 1024), ("medium", 8192), ("high", 24576), ("xhigh", 32768))


def effort_for_budget(budget: int) -> str:
    effort = "minimal"
    for name, threshold in EFFORT_BUDGETS:
        if budget >= threshold:
            effort = name
    return effort


def estimate_tokens(body: Any, size: int = 0) -> int:
    """A rough count of a request's input tokens (4 bytes a token) for `message_start`, which must not say 0: from
    the body's size as received when it is known (re-encoding a 65 KB body to measure it costs 0.4 ms)."""
    return max(1, (size or len(json.dumps(body, ensure_ascii=False, separators=(",", ":")))) // 4)
