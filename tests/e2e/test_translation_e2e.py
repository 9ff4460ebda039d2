"""Claude Code's protocol on Codex models, through a real Kleis listener to the fake Codex backend: the official
anthropic SDK streams and non-streams a turn with a tool call, sends the tool's result back, and gets Anthropic's
errors; native Codex traffic is untouched."""

from __future__ import annotations

import json

import anthropic
import pytest

from addons.server import Parts
from engine.usage_recorder import UsageRecorder
from tests.fakes.base import Reply
from tests.support.codex import CodexKleis
from tests.support.translation import CHAT_TOOLS

TOOLS = [
    {"name": "read_file", "description": "Read a file", "input_schema": {"type": "object", "properties": {"path": {"type": "string"}}}}
]
FIRST = [{"role": "user", "content": "Read the README"}]


@pytest.fixture
def kleis(live_kleis) -> CodexKleis:
    return live_kleis(Parts(usage=UsageRecorder(interval=0.05)), provider="codex")


def claude(kleis: CodexKleis) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=kleis.url, auth_token=kleis.key, max_retries=0, timeout=20)


def test_the_anthropic_sdk_streams_a_tool_call_from_a_codex_model(kleis: CodexKleis) -> None:
    kleis.codex.plan.interleaved = True
    kleis.codex.plan.empty_final_output = True
    with claude(kleis).messages.stream(model="gpt-5.4", max_tokens=2000, messages=FIRST, tools=TOOLS) as stream:
        message = stream.get_final_message()
    assert [block.type for block in message.content] == ["text", "tool_use"]
    text, call = message.content
    assert text.text == "Hi there" and (call.id, call.name, call.input) == ("call_1", "read_file", {"path": "README.md"})
    assert message.stop_reason == "tool_use" and message.model == "gpt-5.4"
    # the fake's usage: input 120 (100 cached), output 30: each counted once
    assert (message.usage.input_tokens, message.usage.cache_read_input_tokens, message.usage.output_tokens) == (20, 100, 30)
    sent = kleis.codex.last("/backend-api/codex/responses").json
    assert sent["model"] == "gpt-5.4" and sent["tools"][0]["name"] == "read_file" and sent["stream"] is True
    assert "max_tokens" not in sent and "max_output_tokens" not in sent and "system" not in sent

    second = [
        *FIRST,
        {"role": "assistant", "content": [block.model_dump(exclude_none=True) for block in message.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "# Kleis"}]},
    ]
    kleis.codex.plan.interleaved = False
    with claude(kleis).messages.stream(model="gpt-5.4", max_tokens=2000, messages=second, tools=TOOLS) as stream:
        answer = stream.get_final_message()
    assert answer.stop_reason == "end_turn" and answer.content[0].text == "Hi there"
    items = kleis.codex.last("/backend-api/codex/responses").json["input"]
    kinds = [(item.get("type"), item.get("call_id")) for item in items]
    assert ("function_call", "call_1") in kinds and kinds[-1] == ("function_call_output", "call_1")
    assert kinds.index(("function_call", "call_1")) < kinds.index(("function_call_output", "call_1"))


def test_a_non_streamed_turn_is_one_message(kleis: CodexKleis) -> None:
    kleis.codex.plan.interleaved = True
    message = claude(kleis).messages.create(model="gpt-5.4", max_tokens=2000, messages=FIRST, tools=TOOLS)
    assert [block.type for block in message.content] == ["text", "tool_use"] and message.stop_reason == "tool_use"
    assert message.content[1].input == {"path": "README.md"} and message.usage.input_tokens == 20


def test_upstream_errors_reach_the_client_in_anthropics_shape(kleis: CodexKleis) -> None:
    kleis.codex.enqueue("POST", "/backend-api/codex/responses", Reply(400, {"detail": "Unsupported parameter: foo"}))
    with pytest.raises(anthropic.BadRequestError) as refused:
        claude(kleis).messages.create(model="gpt-5.4", max_tokens=100, messages=FIRST)
    assert "Unsupported parameter: foo" in refused.value.message
    with pytest.raises(anthropic.BadRequestError) as untranslatable:
        claude(kleis).messages.create(model="gpt-5.4", max_tokens=100, messages=FIRST, stop_sequences=["END"])
    assert "stop_sequences" in untranslatable.value.message
    kleis.codex.plan.failed = {"code": "server_error", "message": "the model broke"}
    with pytest.raises(anthropic.APIStatusError) as failed:
        with claude(kleis).messages.stream(model="gpt-5.4", max_tokens=100, messages=FIRST) as stream:
            stream.get_final_message()
    assert "the model broke" in str(failed.value)


def test_translation_off_keeps_the_404(live_kleis) -> None:
    setup = live_kleis(Parts(), provider="codex", translation=False)
    with pytest.raises(anthropic.NotFoundError) as missing:
        claude(setup).messages.create(model="gpt-5.4", max_tokens=100, messages=FIRST)
    assert "served on /v1/responses (codex)" in missing.value.message and setup.codex.received() == []


def test_count_tokens_for_a_translated_model_is_an_estimate_that_says_so(kleis: CodexKleis) -> None:
    import httpx

    answer = httpx.post(
        f"{kleis.url}/v1/messages/count_tokens",
        json={"model": "gpt-5.4", "messages": FIRST, "tools": TOOLS},
        headers={"authorization": f"Bearer {kleis.key}", "anthropic-version": "2023-06-01"},
        timeout=10,
    )
    assert answer.status_code == 200 and answer.headers["x-kleis-token-count"] == "estimate"
    assert answer.json()["input_tokens"] > 10 and kleis.codex.received() == []
    assert claude(kleis).messages.count_tokens(model="gpt-5.4", messages=FIRST).input_tokens > 0


def test_the_model_map_points_claude_codes_models_at_codex(live_kleis) -> None:
    setup = live_kleis(Parts(), provider="codex", model_map="claude-haiku-*=gpt-5.4-mini, claude-*=gpt-5.4")
    for asked, served in (("claude-haiku-4-5-20251001", "gpt-5.4-mini"), ("claude-sonnet-4-5", "gpt-5.4")):
        message = claude(setup).messages.create(model=asked, max_tokens=100, messages=FIRST)
        assert message.model == asked and message.content[0].text == "Hi there"  # the client's own name comes back
        assert setup.codex.last("/backend-api/codex/responses").json["model"] == served


def test_usage_records_the_translation_with_exact_tokens(kleis: CodexKleis) -> None:
    import time

    from store import usage as usage_store
    from store.models import UsageEvent

    claude(kleis).messages.create(model="gpt-5.4", max_tokens=100, messages=FIRST)
    with claude(kleis).messages.stream(model="gpt-5.4", max_tokens=100, messages=FIRST) as stream:
        stream.get_final_message()
    deadline = time.time() + 10
    while UsageEvent.select().count() < 2:
        assert time.time() < deadline, "usage was not recorded"
        time.sleep(0.05)
    for event in UsageEvent.select():
        assert (event.translation, event.protocol, event.provider, event.status) == ("messages→responses", "messages", "codex", 200)
        # the fake's usage: input 120 of which 100 cached, output 30 of which 12 reasoning
        assert (event.input_tokens, event.cache_read_tokens, event.output_tokens, event.reasoning_tokens) == (20, 100, 30, 12)
    [by_translation] = usage_store.totals(time.time() - 60, "translation")
    assert by_translation["group"] == "messages→responses" and by_translation["requests"] == 2
    assert usage_store.totals(time.time() - 60, translation="")[0]["requests"] == 0  # the views filter by it


def test_a_key_scope_can_forbid_translation(kleis: CodexKleis) -> None:
    from store import keys

    _, native_only = keys.create_key("native only", translation=False)
    client = anthropic.Anthropic(base_url=kleis.url, auth_token=native_only, max_retries=0, timeout=20)
    with pytest.raises(anthropic.PermissionDeniedError) as refused:
        client.messages.create(model="gpt-5.4", max_tokens=100, messages=FIRST)
    assert "may not use translated models" in refused.value.message and kleis.codex.received() == []
    assert keys.key_to_dict(keys.find_key(native_only[:11]))["translation"] is False


def test_a_stream_cut_midway_ends_with_an_anthropic_error_and_an_incomplete_usage_row(kleis: CodexKleis) -> None:
    import time

    from store.models import UsageEvent
    from tests.fakes.base import Stream

    events = kleis.codex.events({"model": "gpt-5.4"})
    kleis.codex.enqueue("POST", "/backend-api/codex/responses", Stream(events, cut_after=4))
    seen: list[str] = []
    with pytest.raises(anthropic.APIError) as cut:
        with claude(kleis).messages.stream(model="gpt-5.4", max_tokens=100, messages=FIRST) as stream:
            for event in stream:
                seen.append(event.type)
    assert seen[0] == "message_start" and "message_stop" not in seen
    assert "ended before" in str(cut.value)
    deadline = time.time() + 10
    while not UsageEvent.select().count():
        assert time.time() < deadline
        time.sleep(0.05)
    assert UsageEvent.get().incomplete and UsageEvent.get().translation == "messages→responses"


def test_the_openai_chat_sdk_streams_a_tool_call_from_a_codex_model(kleis: CodexKleis) -> None:
    import openai

    kleis.codex.plan.interleaved = True
    chat = openai.OpenAI(base_url=f"{kleis.url}/v1", api_key=kleis.key, max_retries=0, timeout=20)
    messages = [{"role": "user", "content": "Read the README"}]
    with chat.chat.completions.stream(
        model="gpt-5.4", messages=messages, tools=CHAT_TOOLS, stream_options={"include_usage": True}
    ) as stream:
        completion = stream.get_final_completion()
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content == "Hi there"
    [call] = choice.message.tool_calls
    assert (call.id, call.function.name, json.loads(call.function.arguments)) == ("call_1", "read_file", {"path": "README.md"})
    usage = completion.usage  # the fake: 120 in, 100 of them cached, 30 out (12 reasoning)
    assert (usage.prompt_tokens, usage.prompt_tokens_details.cached_tokens, usage.completion_tokens) == (120, 100, 30)
    assert usage.completion_tokens_details.reasoning_tokens == 12
    second = [*messages, choice.message.model_dump(exclude_none=True), {"role": "tool", "tool_call_id": "call_1", "content": "# Kleis"}]
    kleis.codex.plan.interleaved = False
    answer = chat.chat.completions.create(model="gpt-5.4", messages=second, tools=CHAT_TOOLS)
    assert answer.choices[0].message.content == "Hi there" and answer.choices[0].finish_reason == "stop"
    items = kleis.codex.last("/backend-api/codex/responses").json["input"]
    assert items[-1] == {"type": "function_call_output", "call_id": "call_1", "output": "# Kleis"}
    with pytest.raises(openai.BadRequestError) as refused:
        chat.chat.completions.create(model="gpt-5.4", messages=messages, n=2)
    assert refused.value.message.startswith("n:") or "n: has no equivalent" in refused.value.message


def test_a_cut_chat_stream_ends_with_an_error_chunk(kleis: CodexKleis) -> None:
    import openai

    from tests.fakes.base import Stream

    kleis.codex.enqueue("POST", "/backend-api/codex/responses", Stream(kleis.codex.events({"model": "gpt-5.4"}), cut_after=4))
    chat = openai.OpenAI(base_url=f"{kleis.url}/v1", api_key=kleis.key, max_retries=0, timeout=20)
    with pytest.raises(openai.APIError) as cut:
        for _ in chat.chat.completions.create(model="gpt-5.4", messages=[{"role": "user", "content": "hi"}], stream=True):
            pass
    assert "ended before" in str(cut.value)
