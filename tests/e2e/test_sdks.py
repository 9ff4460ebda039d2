"""The official anthropic and openai SDKs streaming through Kleis to the fakes."""

from __future__ import annotations

import anthropic
import openai


def test_anthropic_sdk_streams_with_tools_and_bearer_key(kleis) -> None:
    kleis.add_account()
    client = anthropic.Anthropic(base_url=kleis.url, auth_token=kleis.key, api_key=None, max_retries=0)
    with client.messages.stream(
        model="loop/claude-test",
        max_tokens=64,
        messages=[{"role": "user", "content": "read the readme"}],
        tools=[
            {"name": "read_file", "description": "read", "input_schema": {"type": "object", "properties": {"path": {"type": "string"}}}}
        ],
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "Hello from fake Claude"
    tool_uses = [block for block in final.content if block.type == "tool_use"]
    assert [(t.name, t.input) for t in tool_uses] == [("read_file", {"path": "README.md"})]
    assert final.usage.input_tokens == 12 and final.usage.cache_read_input_tokens == 100 and final.usage.output_tokens == 7
    seen = kleis.anthropic.last("/v1/messages")
    assert seen.json["tools"][0]["name"] == "up_read_file"
    assert "x-api-key" not in seen.headers and kleis.key not in str(seen.headers)


def test_anthropic_sdk_with_x_api_key_and_errors(kleis) -> None:
    kleis.add_account()
    client = anthropic.Anthropic(base_url=kleis.url, api_key=kleis.key, max_retries=0)
    message = client.messages.create(model="loop/claude-test", max_tokens=8, messages=[{"role": "user", "content": "hi"}])
    assert message.content[0].text == "Hello from fake Claude"
    bad = anthropic.Anthropic(base_url=kleis.url, api_key="kl_wrong", max_retries=0)
    try:
        bad.messages.create(model="loop/claude-test", max_tokens=8, messages=[{"role": "user", "content": "hi"}])
    except anthropic.AuthenticationError as exc:
        assert "unknown Kleis key" in str(exc)
    else:
        raise AssertionError("expected a 401")


def test_openai_sdk_streams_chat_and_responses(kleis) -> None:
    kleis.add_account()
    client = openai.OpenAI(base_url=f"{kleis.url}/v1", api_key=kleis.key, max_retries=0)
    chunks = list(
        client.chat.completions.create(
            model="loop/gpt-test",
            messages=[{"role": "user", "content": "hi"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hi there"
    assert chunks[-1].usage.prompt_tokens == 50 and chunks[-1].usage.prompt_tokens_details.cached_tokens == 30
    events = list(client.responses.create(model="loop/gpt-test", input="hi", stream=True))
    assert events[-1].type == "response.completed"
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == "Hi there"
    assert events[-1].response.usage.input_tokens == 80


def test_both_sdks_list_models(kleis) -> None:
    kleis.add_account()
    ids_openai = [m.id for m in openai.OpenAI(base_url=f"{kleis.url}/v1", api_key=kleis.key).models.list()]
    ids_anthropic = [m.id for m in anthropic.Anthropic(base_url=kleis.url, auth_token=kleis.key, api_key=None).models.list()]
    assert ids_openai == ids_anthropic and "loop/loop-small" in ids_openai
