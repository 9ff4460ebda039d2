"""Reasoning carried across turns (providers.protocols.carry): Claude Code and the anthropic SDK on a Codex model get
the model's reasoning as thinking blocks whose signature carries Codex's encrypted reasoning, tagged as Kleis's;
sent back, it reaches the same account as a reasoning item again, and nothing else of the kind ever goes upstream
(another account's blob, Anthropic's own signature, thinking text)."""

from __future__ import annotations

import json

import anthropic
import pytest

from addons.server import Parts
from addons.usage_recorder import UsageRecorder
from core.sse import SSEParser
from providers.protocols import carry, chat_stream, messages, messages_stream, responses, responses_stream
from providers.protocols import events as ev
from store.accounts import load_views
from tests.fakes.codex import FakeCodex
from tests.test_codex_e2e import Setup, fakes, start  # noqa: F401 (fakes is a fixture)

SUMMARY = ("Looking at the README first.", "Then the tests.")
THINKING = {"type": "enabled", "budget_tokens": 8192}
FIRST = [{"role": "user", "content": "Read the README"}]
ENDPOINT = "/backend-api/codex/responses"


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


@pytest.mark.parametrize("writer", [lambda: chat_stream.StreamWriter("gpt-5.4"), lambda: responses_stream.StreamWriter("gpt-5.4")])
def test_writers_without_a_place_for_thinking_leave_it_out(writer) -> None:
    _, events = codex_stream()
    neutral = read_all(responses_stream.StreamReader(carry.signer("codex", 7)), events)
    out = writer().write(neutral).decode()
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
@pytest.fixture
def kleis(store, config, run_proxy, fakes) -> Setup:  # noqa: F811
    return start(store, config, run_proxy, fakes, parts=Parts(usage=UsageRecorder(interval=0.05)))


def claude(kleis: Setup) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=kleis.url, auth_token=kleis.key, max_retries=0, timeout=20)


TOOLS = [
    {"name": "read_file", "description": "Read a file", "input_schema": {"type": "object", "properties": {"path": {"type": "string"}}}}
]


def test_claude_codes_protocol_on_codex_keeps_the_models_reasoning_across_turns(kleis: Setup) -> None:
    kleis.codex.plan.reasoning = SUMMARY
    with claude(kleis).messages.stream(model="gpt-5.4", max_tokens=2000, messages=FIRST, tools=TOOLS, thinking=THINKING) as stream:
        message = stream.get_final_message()
    assert [block.type for block in message.content] == ["thinking", "text"]
    thinking = message.content[0]
    assert thinking.thinking == "\n\n".join(SUMMARY) and thinking.signature.startswith("kleis1.codex.")
    account = load_views(kleis.store.cipher)[0]
    assert carry.untag(thinking.signature)[:2] == ("codex", account.id)  # type: ignore[index]

    second = [
        *FIRST,
        {"role": "assistant", "content": [block.model_dump(exclude_none=True) for block in message.content]},
        {"role": "user", "content": "Now the tests."},
    ]
    with claude(kleis).messages.stream(model="gpt-5.4", max_tokens=2000, messages=second, tools=TOOLS, thinking=THINKING) as stream:
        answer = stream.get_final_message()
    assert answer.content[-1].text == "Hi there"  # the backend verified the blob: same account
    items = kleis.codex.last(ENDPOINT).json["input"]
    reasoning = [item for item in items if item["type"] == "reasoning"]
    assert len(reasoning) == 1 and reasoning[0]["encrypted_content"] == carry.untag(thinking.signature)[2]  # type: ignore[index]
    assert [item["type"] for item in items].index("reasoning") == 1  # before the assistant's own output


def test_reasoning_another_account_made_is_dropped_so_the_backend_never_refuses_the_turn(kleis: Setup) -> None:
    kleis.codex.plan.reasoning = SUMMARY
    first = claude(kleis).messages.create(model="gpt-5.4", max_tokens=2000, messages=FIRST, thinking=THINKING)
    thinking = first.content[0]
    assert thinking.type == "thinking" and thinking.signature.startswith("kleis1.codex.")  # non-streamed: the same block
    _, account, blob = carry.untag(thinking.signature)  # type: ignore[misc]
    moved = dict(thinking.model_dump(), signature=carry.tag("codex", account + 1, blob))  # as if made on another account
    turn = [*FIRST, {"role": "assistant", "content": [moved, {"type": "text", "text": "Hi there"}]}, {"role": "user", "content": "Go on"}]
    answer = claude(kleis).messages.create(model="gpt-5.4", max_tokens=2000, messages=turn, thinking=THINKING)
    assert answer.content[-1].text == "Hi there"
    sent = kleis.codex.last(ENDPOINT).json
    assert all(item["type"] != "reasoning" for item in sent["input"]) and blob not in json.dumps(sent)


def test_a_forged_blob_in_kleiss_tag_reaches_the_backend_and_its_refusal_reaches_the_client(kleis: Setup) -> None:
    account = load_views(kleis.store.cipher)[0]
    forged = {"type": "thinking", "thinking": "", "signature": carry.tag("codex", account.id, "gAAAAB-made-up")}
    turn = [*FIRST, {"role": "assistant", "content": [forged, {"type": "text", "text": "Hi"}]}, {"role": "user", "content": "Go on"}]
    with pytest.raises(anthropic.BadRequestError) as refused:
        claude(kleis).messages.create(model="gpt-5.4", max_tokens=2000, messages=turn, thinking=THINKING)
    assert "could not be verified" in refused.value.message


def test_without_thinking_asked_no_thinking_block_is_sent(kleis: Setup) -> None:
    kleis.codex.plan.reasoning = SUMMARY
    message = claude(kleis).messages.create(model="gpt-5.4", max_tokens=2000, messages=FIRST)
    assert [block.type for block in message.content] == ["text"]
