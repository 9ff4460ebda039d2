"""A streamed answer in a form no protocol owns: what a stream reader yields and a stream writer turns into bytes.

Blocks are numbered by the reader in the order they start; a writer may renumber them for its own protocol."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from typing import Literal

BlockKind = Literal["text", "tool", "thinking"]  # thinking: a provider's reasoning, for a client that carries it back
StopReason = Literal["end_turn", "tool_use", "max_tokens", "refusal"]


@dataclasses.dataclass(frozen=True)
class Start:
    id: str
    model: str


@dataclasses.dataclass(frozen=True)
class BlockStart:
    index: int
    kind: BlockKind
    id: str = ""  # tool: the call id
    name: str = ""  # tool: its name


@dataclasses.dataclass(frozen=True)
class BlockDelta:
    index: int
    text: str  # text: a piece of the answer; tool: a fragment of the arguments' JSON; thinking: of its summary


@dataclasses.dataclass(frozen=True)
class BlockStop:
    index: int
    signature: str = ""  # thinking: what the client sends back for the reasoning to be carried (providers.protocols.carry)


@dataclasses.dataclass(frozen=True)
class Usage:
    """Token counts, each counted once: `input` excludes cache reads and writes (Anthropic's convention)."""

    input: int = 0
    output: int = 0
    cache_read: int = 0
    cache_write: int = 0
    reasoning: int = 0  # part of `output`


@dataclasses.dataclass(frozen=True)
class Stop:
    reason: StopReason
    usage: Usage


@dataclasses.dataclass(frozen=True)
class Error:
    kind: str  # Anthropic's error type: api_error, overloaded_error, rate_limit_error, invalid_request_error…
    message: str
    code: str = ""


Event = Start | BlockStart | BlockDelta | BlockStop | Stop | Error


def without_thinking(events: Iterable[Event], hidden: set[int]) -> Iterator[Event]:
    """`events` less the thinking blocks', for a writer whose client protocol has no place for them; `hidden` keeps
    the blocks seen so far (the writer's own set)."""
    for event in events:
        if isinstance(event, BlockStart) and event.kind == "thinking":
            hidden.add(event.index)
        elif not (isinstance(event, (BlockDelta, BlockStop)) and event.index in hidden):
            yield event
