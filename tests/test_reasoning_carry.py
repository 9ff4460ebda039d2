"""Reasoning carried across turns (providers.protocols.carry): Claude Code and the anthropic SDK on a Codex model get
the model's reasoning as thinking blocks whose signature carries Codex's encrypted reasoning, tagged as Kleis's;
sent back, it reaches the same account as a reasoning item again, and nothing else of the kind ever goes upstream
(another account's blob, Anthropic's own signature, thinking text)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator

import anthropic
import openai
import pytest

from addons.server import Parts
from core.sse import SSEParser
from engine.usage_recorder import UsageRecorder
from providers.claude import ClaudeProvider
from providers.codex import CodexProvider
from providers.codex.body import normalise_body
from providers.protocols import carry, chat_stream, messages, messages_stream, responses, responses_stream
from providers.protocols import events as ev
from store import keys
from store.accounts import load_views
from tests.fakes.anthropic import FakeAnthropic
from tests.fakes.base import Recorded, Stream
from tests.fakes.claude import FakeClaudeAPI
from tests.fakes.codex import FakeCodex
from tests.support.claude import CLAUDE_CODE_BODY, CLAUDE_CODE_HEADERS
from tests.support.plans import claude_and_codex
from tests.test_claude_e2e import ClaudeKleis
from tests.test_claude_e2e import start as start_claude
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


@pytest.fixture
def claude_kleis(store, config, run_proxy) -> Iterator[ClaudeKleis]:
    yield from start_claude(store, config, run_proxy)


RESPONSES_TOOLS = [
    {
        "type": "function",
        "name": "read_file",
        "description": "Read a file",
        "parameters": {"type": "object", "properties": {}},
        "strict": False,
    }
]
RESPONSES_FIRST = [{"role": "user", "content": [{"type": "input_text", "text": "Read the README"}]}]


def test_codex_clis_protocol_on_claude_keeps_thinking_across_a_tool_turn(claude_kleis: ClaudeKleis) -> None:
    api = claude_kleis.api
    api.thinking, api.check_thinking = CLAUDE_THINKING, True
    client = openai.OpenAI(base_url=f"{claude_kleis.proxy.url}/v1", api_key=claude_kleis.key, max_retries=0, timeout=20)
    with client.responses.stream(
        model="claude-sonnet-4-5", input=RESPONSES_FIRST, tools=RESPONSES_TOOLS, reasoning={"effort": "medium"}
    ) as stream:
        response = stream.get_final_response()
    assert [item.type for item in response.output] == ["reasoning", "message", "function_call"]
    reasoning, _, call = response.output
    assert reasoning.summary[0].text == "Let me look at the README." and reasoning.encrypted_content.startswith(
        f"kleis1.claude.{claude_kleis.account_id}."
    )
    second = [
        *RESPONSES_FIRST,
        reasoning.model_dump(exclude_none=True),
        {"type": "function_call", "call_id": call.call_id, "name": call.name, "arguments": call.arguments},
        {"type": "function_call_output", "call_id": call.call_id, "output": "# Kleis"},
    ]
    with client.responses.stream(model="claude-sonnet-4-5", input=second, tools=RESPONSES_TOOLS, reasoning={"effort": "medium"}) as stream:
        answer = stream.get_final_response()
    assert answer.output[-1].type == "function_call"  # the fake accepted the turn: its own signature, thinking first
    sent = api.last("/v1/messages").json
    assistant = next(m for m in sent["messages"] if m["role"] == "assistant")
    assert assistant["content"][0]["type"] == "thinking" and assistant["content"][0]["signature"] in api.signatures
    assert sent["thinking"]["type"] == "enabled"

    without = [item for item in second if item.get("type") != "reasoning"]  # a client that dropped it
    with client.responses.stream(model="claude-sonnet-4-5", input=without, tools=RESPONSES_TOOLS, reasoning={"effort": "medium"}) as stream:
        assert stream.get_final_response().status == "completed"  # thinking off for this turn, not a 400
    assert "thinking" not in api.last("/v1/messages").json


# -- a conversation that moves between providers --------------------------------------------------------------------
@dataclasses.dataclass
class Both:
    url: str
    key: str
    claude: FakeClaudeAPI
    codex: FakeCodex


@pytest.fixture
def both(store, config, run_proxy) -> Iterator[Both]:
    with claude_and_codex(store, config) as (cfg, claude_api, codex):
        proxy = run_proxy(cfg, {"claude": ClaudeProvider(cfg), "codex": CodexProvider(cfg)}, Parts(usage=UsageRecorder(interval=0.05)))
        _, key = keys.create_key("switch")
        yield Both(proxy.url, key, claude_api, codex)


def claude_code(both: Both) -> anthropic.Anthropic:
    headers = {name: value for name, value in CLAUDE_CODE_HEADERS.items() if not name.lower().startswith("x-stainless")}
    return anthropic.Anthropic(base_url=both.url, auth_token=both.key, max_retries=0, timeout=20, default_headers=headers)


def test_claude_code_moving_from_claude_to_codex_and_back_keeps_a_history_each_accepts(both: Both) -> None:
    both.claude.thinking, both.claude.check_thinking = ("Reading", " the README."), True
    both.codex.plan.reasoning = SUMMARY
    system = CLAUDE_CODE_BODY["system"]
    ask = {"max_tokens": 2000, "tools": TOOLS, "thinking": THINKING, "system": system}

    with claude_code(both).messages.stream(model="claude-sonnet-4-5", messages=FIRST, **ask) as stream:  # on Claude
        first = stream.get_final_message()
    assert [b.type for b in first.content] == ["thinking", "text", "tool_use"] and first.content[0].signature in both.claude.signatures
    history = [
        *FIRST,
        {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": first.content[2].id, "content": "# Kleis"}]},
    ]

    with claude_code(both).messages.stream(model="gpt-5.4", messages=history, **ask) as stream:  # /model gpt-5.4
        second = stream.get_final_message()
    assert [b.type for b in second.content] == ["thinking", "text"] and second.content[0].signature.startswith("kleis1.codex.")
    sent = both.codex.last(ENDPOINT).json
    assert all(item["type"] != "reasoning" for item in sent["input"])  # Claude's thinking never went to Codex
    assert "Reading the README." not in json.dumps(sent)

    history += [
        {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in second.content]},
        {"role": "user", "content": "Now the tests."},
    ]
    with claude_code(both).messages.stream(model="claude-sonnet-4-5", messages=history, **ask) as stream:  # and back
        third = stream.get_final_message()
    assert third.content[0].type == "thinking"  # the fake API checked every thinking signature it was sent
    sent = both.claude.last("/v1/messages").json
    assert "kleis1." not in json.dumps(sent) and sent["messages"][1]["content"][0]["signature"] == first.content[0].signature
    assert sent["thinking"] == THINKING


def test_back_on_claude_after_a_codex_tool_turn_thinking_is_off_for_that_turn_not_refused(both: Both) -> None:
    both.claude.check_thinking = True
    both.codex.plan.interleaved = True  # reasoning, text and a tool call
    context = {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]}
    ask = {"max_tokens": 2000, "tools": TOOLS, "thinking": THINKING, "system": CLAUDE_CODE_BODY["system"]}
    with claude_code(both).messages.stream(model="gpt-5.4", messages=FIRST, **ask) as stream:
        first = stream.get_final_message()
    assert [b.type for b in first.content] == ["thinking", "text", "tool_use"]
    history = [
        *FIRST,
        {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": first.content[2].id, "content": "# Kleis"}]},
    ]
    with claude_code(both).messages.stream(
        model="claude-sonnet-4-5", messages=history, extra_body={"context_management": context}, **ask
    ) as stream:
        answer = stream.get_final_message()
    assert answer.stop_reason == "tool_use"
    sent = both.claude.last("/v1/messages").json
    assert "kleis1." not in json.dumps(sent) and "thinking" not in sent and "context_management" not in sent
    assert [b["type"] for b in sent["messages"][1]["content"]] == ["text", "tool_use"]


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
