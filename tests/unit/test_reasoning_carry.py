"""Reasoning carried across turns (providers.protocols.carry): Claude Code and the anthropic SDK on a Codex model get
the model's reasoning as thinking blocks whose signature carries Codex's encrypted reasoning, tagged as Kleis's;
sent back, it reaches the same account as a reasoning item again, and nothing else of the kind ever goes upstream
(another account's blob, Anthropic's own signature, thinking text).
Here the parts that need no socket; through listeners: tests/e2e/test_reasoning_carry.py."""

from __future__ import annotations

import json

import pytest

from core.sse import SSEParser
from providers.codex.body import normalise_body
from providers.protocols import carry, chat_stream, messages, messages_stream, responses, responses_stream
from providers.protocols import events as ev
from tests.fakes.anthropic import FakeAnthropic
from tests.fakes.base import Recorded, Stream
from tests.fakes.codex import FakeCodex

SUMMARY = ("Looking at the README first.", "Then the tests.")
THINKING = {"type": "enabled", "budget_tokens": 8192}
FIRST = [{"role": "user", "content": "Read the README"}]


def codex_stream(plan_reasoning: tuple[str, ...] = SUMMARY, account: str = "acct-1") -> tuple[FakeCodex, list[dict]]:
    fake = FakeCodex()
    fake.plan.reasoning = plan_reasoning
    raw = b"".join(fake.events({"model": "gpt-5.4", "reasoning": {"effort": "medium"}}, account))
    return fake, [event.json() for event in SSEParser().feed(raw)]


def read_all(reader: responses_stream.StreamReader, events: list[dict]) -> list[ev.Event]:
    return [out for data in events for out in reader.read(data)]


# -- the tag ------------------------------------------------------------------------------------------------------
def test_a_tag_names_the_provider_and_account_and_only_kleiss_own_are_read_back() -> None:
    signature = carry.tag("codex", 7, "gAAAAB.x_y-z==")
    assert carry.untag(signature) == ("codex", 7, "gAAAAB.x_y-z==")
    own = carry.own_blobs("codex", 7)
    assert own(signature) == "gAAAAB.x_y-z=="
    assert carry.own_blobs("codex", 8)(signature) is None  # another account's: bound to the one that made it
    assert carry.own_blobs("copilot", 7)(signature) is None
    for foreign in ("ErUBCkYIBxgCIkB", "", "kleis1.codex.x.blob", "kleis1.codex.7.", "kleis1.codex", "gAAAA-opaque"):
        assert own(foreign) is None and carry.untag(foreign) is None


# -- the stream: reasoning → a thinking block -------------------------------------------------------------------
def test_a_reasoning_item_becomes_a_thinking_block_as_it_streams_signed_at_its_end() -> None:
    fake, events = codex_stream()
    out = read_all(responses_stream.StreamReader(carry.signer("codex", 7)), events)
    thinking = [e for e in out if getattr(e, "index", None) == 0]
    assert thinking[0] == ev.BlockStart(0, "thinking")
    deltas = [e.text for e in thinking if isinstance(e, ev.BlockDelta)]
    assert len(deltas) == 4 and "".join(deltas) == "\n\n".join(SUMMARY)  # streamed piece by piece, parts a blank line apart
    stop = thinking[-1]
    assert isinstance(stop, ev.BlockStop) and carry.untag(stop.signature) is not None
    provider, account, blob = carry.untag(stop.signature)  # type: ignore[misc]
    assert (provider, account) == ("codex", 7) and fake.issued[blob] == "acct-1"
    assert [type(e).__name__ for e in out if getattr(e, "index", None) == 1][0] == "BlockStart"  # the text comes next
    assert isinstance(out[-1], ev.Stop) and out[-1].reason == "end_turn"


def test_without_a_signer_reasoning_is_skipped_as_before() -> None:
    _, events = codex_stream()
    out = read_all(responses_stream.StreamReader(), events)
    assert all(not (isinstance(e, ev.BlockStart) and e.kind == "thinking") for e in out)
    assert [e.text for e in out if isinstance(e, ev.BlockDelta)] == ["Hi", " there"]  # never as text


def test_anthropic_writer_sends_thinking_deltas_and_one_whole_signature_before_the_stop() -> None:
    _, events = codex_stream()
    neutral = read_all(responses_stream.StreamReader(carry.signer("codex", 7)), events)
    written = [e.json() for e in SSEParser().feed(messages_stream.StreamWriter("gpt-5.4", 10).write(neutral))]
    block = [e for e in written if e.get("index") == 0]
    assert block[0]["content_block"] == {"type": "thinking", "thinking": "", "signature": ""}
    assert [e["delta"]["type"] for e in block[1:-1]] == ["thinking_delta"] * 4 + ["signature_delta"]
    assert block[-2]["delta"]["signature"].startswith("kleis1.codex.7.gAAAAB") and block[-1]["type"] == "content_block_stop"
    collector = messages_stream.Collector("gpt-5.4")
    collector.add(neutral)
    first = collector.message()["content"][0]
    assert first["type"] == "thinking" and first["thinking"] == "\n\n".join(SUMMARY) and first["signature"].startswith("kleis1.")


def test_chat_has_no_place_for_thinking_and_leaves_it_out() -> None:
    _, events = codex_stream()
    neutral = read_all(responses_stream.StreamReader(carry.signer("codex", 7)), events)
    out = chat_stream.StreamWriter("gpt-5.4").write(neutral).decode()
    assert "Looking at the README" not in out and "kleis1." not in out and "Hi" in out


# -- the request: thinking → reasoning, for its own account only --------------------------------------------------
def history(signature: str, text: str = "Looking at the README first.") -> dict:
    return {
        "model": "gpt-5.4",
        "max_tokens": 2000,
        "thinking": THINKING,
        "messages": [
            *FIRST,
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": text, "signature": signature},
                    {"type": "text", "text": "Reading it."},
                    {"type": "tool_use", "id": "call_1", "name": "read_file", "input": {"path": "README.md"}},
                ],
            },
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call_1", "content": "# Kleis"}]},
        ],
    }


def test_thinking_kleis_signed_for_this_account_goes_back_as_a_reasoning_item_before_the_turns_output() -> None:
    turn = messages.read_request(history(carry.tag("codex", 7, "gAAAAB-blob")))
    items = responses.write_request(turn, carry.own_blobs("codex", 7))["input"]
    assert [item["type"] for item in items] == ["message", "reasoning", "message", "function_call", "function_call_output"]
    assert items[1] == {
        "type": "reasoning",
        "summary": [{"type": "summary_text", "text": "Looking at the README first."}],
        "encrypted_content": "gAAAAB-blob",
    }


@pytest.mark.parametrize(
    "signature",
    [
        carry.tag("codex", 8, "gAAAAB-blob"),  # another account's
        carry.tag("copilot", 7, "gAAAAB-blob"),  # another provider's
        "ErUBCkYIBxgCIkBsignature",  # Anthropic's own
        "",
    ],
)
def test_any_other_thinking_is_dropped_never_sent_as_text(signature: str) -> None:
    turn = messages.read_request(history(signature, text="secret chain of thought"))
    body = responses.write_request(turn, carry.own_blobs("codex", 7))
    assert [item["type"] for item in body["input"]] == ["message", "message", "function_call", "function_call_output"]
    assert "secret chain of thought" not in json.dumps(body) and "gAAAAB-blob" not in json.dumps(body)


# -- live: the anthropic SDK's stream helper, two turns, the fake backend checking the blob -------------------------


# -- the other way: Claude's thinking to a Responses client (Codex CLI, the openai SDK) and back ---------------------
CLAUDE_THINKING = ("Let me look", " at the README.")


def claude_stream(sign) -> list[ev.Event]:
    fake = FakeAnthropic()
    fake.thinking = CLAUDE_THINKING
    body = {"model": "claude-sonnet-4-5", "stream": True, "thinking": {"type": "enabled", "budget_tokens": 8192}, "messages": FIRST}
    reply = fake.messages(Recorded("POST", "/v1/messages", {}, json.dumps(body).encode(), 0.0))
    reader = messages_stream.StreamReader(sign)
    assert isinstance(reply, Stream)
    return [out for event in SSEParser().feed(b"".join(reply.events)) for out in reader.read(event.json())]


def test_a_claude_thinking_block_becomes_a_reasoning_item_carrying_the_whole_block() -> None:
    neutral = claude_stream(carry.signer("claude", 3))
    assert neutral[1] == ev.BlockStart(0, "thinking") and [e.text for e in neutral[2:4]] == list(CLAUDE_THINKING)
    stop = neutral[4]
    assert isinstance(stop, ev.BlockStop) and stop.index == 0
    provider, account, blob = carry.untag(stop.signature)  # type: ignore[misc]
    block = carry.unpack_thinking(blob)
    assert (provider, account) == ("claude", 3) and block is not None
    assert block["thinking"] == "".join(CLAUDE_THINKING) and block["signature"].startswith("ErUBfake")
    writer = responses_stream.StreamWriter("claude-sonnet-4-5")
    written = [e.json() for e in SSEParser().feed(writer.write(neutral))]
    kinds = [e["type"] for e in written]
    assert "response.reasoning_summary_text.delta" in kinds and kinds.index("response.reasoning_summary_text.delta") < kinds.index(
        "response.output_text.delta"
    )
    reasoning = writer.final["output"][0]  # type: ignore[index]
    assert reasoning["type"] == "reasoning" and reasoning["summary"] == [{"type": "summary_text", "text": "Let me look at the README."}]
    assert reasoning["encrypted_content"] == stop.signature
    assert [e for e in claude_stream(None) if isinstance(e, ev.BlockStart)] == [ev.BlockStart(0, "text")]  # no signer: skipped


def responses_turn(encrypted: str) -> dict:
    return {
        "model": "claude-sonnet-4-5",
        "reasoning": {"effort": "medium"},
        "input": [
            {"role": "user", "content": [{"type": "input_text", "text": "Read the README"}]},
            {
                "type": "reasoning",
                "id": "rs_1",
                "summary": [{"type": "summary_text", "text": "Let me look"}],
                "encrypted_content": encrypted,
            },
            {"type": "function_call", "call_id": "toolu_1", "name": "read_file", "arguments": '{"path":"README.md"}'},
            {"type": "function_call_output", "call_id": "toolu_1", "output": "# Kleis"},
        ],
    }


def test_a_reasoning_item_kleis_made_goes_back_to_claude_as_the_very_thinking_block() -> None:
    block = {"type": "thinking", "thinking": "Let me look at the README.", "signature": "ErUBsig"}
    turn = responses.read_request(responses_turn(carry.tag("claude", 3, carry.pack_thinking(block))))
    body = messages.write_request(turn, carry.own_blobs("claude", 3))
    assistant = body["messages"][1]
    assert assistant["role"] == "assistant" and assistant["content"][0] == block and assistant["content"][1]["type"] == "tool_use"
    assert body["thinking"]["type"] == "enabled"


@pytest.mark.parametrize(
    "encrypted", [carry.tag("claude", 4, carry.pack_thinking({"type": "redacted_thinking", "data": "x"})), "gAAAA-openai"]
)
def test_reasoning_that_cannot_go_back_turns_thinking_off_rather_than_break_the_tool_turn(encrypted: str) -> None:
    body = messages.write_request(responses.read_request(responses_turn(encrypted)), carry.own_blobs("claude", 3))
    assert [block["type"] for block in body["messages"][1]["content"]] == ["tool_use"]
    assert "thinking" not in body and "gAAAA" not in json.dumps(body)  # Anthropic would refuse the turn with thinking on


def test_codex_cli_moving_from_claude_to_codex_drops_claudes_reasoning_items() -> None:
    block = {"type": "thinking", "thinking": "t", "signature": "ErUBsig"}
    items = [
        {"role": "user", "content": "hi"},
        {"type": "reasoning", "summary": [], "encrypted_content": carry.tag("claude", 3, carry.pack_thinking(block))},
        {"type": "reasoning", "summary": [], "encrypted_content": "gAAAAB-codexs-own"},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "hello"}]},
    ]
    kept = normalise_body({"model": "gpt-5.4", "input": items}, "gpt-5.4")["input"]
    assert [item.get("encrypted_content") for item in kept if item.get("type") == "reasoning"] == ["gAAAAB-codexs-own"]
