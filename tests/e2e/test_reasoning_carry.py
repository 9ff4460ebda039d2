"""Reasoning carried across turns (providers.protocols.carry): Claude Code and the anthropic SDK on a Codex model get
the model's reasoning as thinking blocks whose signature carries Codex's encrypted reasoning, tagged as Kleis's;
sent back, it reaches the same account as a reasoning item again, and nothing else of the kind ever goes upstream
(another account's blob, Anthropic's own signature, thinking text).
Here the parts that need a listener; the rest: tests/unit/test_reasoning_carry.py."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator

import anthropic
import openai
import pytest

from addons.server import Parts
from engine.usage_recorder import UsageRecorder
from providers.claude import ClaudeProvider
from providers.codex import CodexProvider
from providers.protocols import carry
from store import keys
from store.accounts import load_views
from tests.fakes.claude import FakeClaudeAPI
from tests.fakes.codex import FakeCodex
from tests.support.claude import CLAUDE_CODE_BODY, CLAUDE_CODE_HEADERS, ClaudeLive
from tests.support.codex import CodexKleis
from tests.support.plans import claude_and_codex
from tests.unit.test_reasoning_carry import CLAUDE_THINKING, FIRST, SUMMARY, THINKING

ENDPOINT = "/backend-api/codex/responses"


# -- the request: thinking → reasoning, for its own account only --------------------------------------------------


# -- live: the anthropic SDK's stream helper, two turns, the fake backend checking the blob -------------------------
@pytest.fixture
def kleis(live_kleis) -> CodexKleis:
    return live_kleis(Parts(usage=UsageRecorder(interval=0.05)), provider="codex")


def claude(kleis: CodexKleis) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=kleis.url, auth_token=kleis.key, max_retries=0, timeout=20)


TOOLS = [
    {"name": "read_file", "description": "Read a file", "input_schema": {"type": "object", "properties": {"path": {"type": "string"}}}}
]


def test_claude_codes_protocol_on_codex_keeps_the_models_reasoning_across_turns(kleis: CodexKleis) -> None:
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


def test_reasoning_another_account_made_is_dropped_so_the_backend_never_refuses_the_turn(kleis: CodexKleis) -> None:
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


def test_a_forged_blob_in_kleiss_tag_reaches_the_backend_and_its_refusal_reaches_the_client(kleis: CodexKleis) -> None:
    account = load_views(kleis.store.cipher)[0]
    forged = {"type": "thinking", "thinking": "", "signature": carry.tag("codex", account.id, "gAAAAB-made-up")}
    turn = [*FIRST, {"role": "assistant", "content": [forged, {"type": "text", "text": "Hi"}]}, {"role": "user", "content": "Go on"}]
    with pytest.raises(anthropic.BadRequestError) as refused:
        claude(kleis).messages.create(model="gpt-5.4", max_tokens=2000, messages=turn, thinking=THINKING)
    assert "could not be verified" in refused.value.message


def test_without_thinking_asked_no_thinking_block_is_sent(kleis: CodexKleis) -> None:
    kleis.codex.plan.reasoning = SUMMARY
    message = claude(kleis).messages.create(model="gpt-5.4", max_tokens=2000, messages=FIRST)
    assert [block.type for block in message.content] == ["text"]


# -- the other way: Claude's thinking to a Responses client (Codex CLI, the openai SDK) and back ---------------------


@pytest.fixture
def claude_kleis(live_kleis) -> ClaudeLive:
    return live_kleis(Parts(health=True), provider="claude", signals=True)


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


def test_codex_clis_protocol_on_claude_keeps_thinking_across_a_tool_turn(claude_kleis: ClaudeLive) -> None:
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
