"""Copilot end to end: the official SDKs through a real Kleis listener to the fake Copilot API and fake GitHub."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from typing import Any

import anthropic
import httpx
import openai
import pytest

from addons.services import Parts
from core.config import Config
from providers.copilot import CopilotProvider, login
from store import keys
from store.models import Account
from tests.fakes.copilot import MISSING_EDITOR_VERSION, FakeCopilot
from tests.fakes.github import OPENCODE_CLIENT_ID, FakeGitHub
from tests.support.accounts import account_view

PNG = {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}


class UsageSpy:
    """Stands in for the usage recorder: keeps what Kleis read from each finished request."""

    def __init__(self) -> None:
        self.records: list[tuple[int, Any]] = []
        self.translations: list[str] = []

    def record(self, ctx, now: float) -> None:
        self.translations.append(ctx.route.translation)
        self.records.append((ctx.outcome.status, ctx.upstream.usage.usage if ctx.upstream.usage is not None else None))

    def wait(self, count: int, timeout: float = 3.0) -> list[tuple[int, Any]]:
        deadline = time.time() + timeout
        while len(self.records) < count and time.time() < deadline:
            time.sleep(0.02)
        return self.records


@dataclasses.dataclass
class Live:
    url: str
    key: str
    provider: CopilotProvider
    usage: UsageSpy
    account_id: int

    def openai(self) -> openai.OpenAI:
        return openai.OpenAI(base_url=f"{self.url}/v1", api_key=self.key, max_retries=0)

    def anthropic(self) -> anthropic.Anthropic:
        return anthropic.Anthropic(base_url=self.url, auth_token=self.key, api_key=None, max_retries=0)


@pytest.fixture
def start(store, run_proxy, github: FakeGitHub):
    """Import an account (token exchange against the fake GitHub), then start Kleis with the Copilot provider."""

    def launch(config: Config, client_id: str | None = None) -> Live:
        config = config.replace(copilot_client_id=client_id) if client_id else config
        token = github.seed_github_token(client_id=client_id) if client_id else github.seed_github_token()
        account_id = login.import_credentials(store, config, github_token=token).account_id
        _, key = keys.create_key("copilot-tests")
        provider, usage = CopilotProvider(config), UsageSpy()
        proxy = run_proxy(config, {"copilot": provider}, Parts(usage=usage))
        return Live(proxy.url, key, provider, usage, account_id)

    return launch


def test_the_fake_refuses_what_copilot_refuses(store, copilot_config, github, copilot_api: FakeCopilot) -> None:
    """The rules the end-to-end tests lean on: no Editor-Version, or a stale Copilot token, is refused."""
    account = account_view(store, login.import_credentials(store, copilot_config, github_token=github.seed_github_token()).account_id)
    body = {"model": "gpt-4.1", "messages": [{"role": "user", "content": "hi"}]}
    bare = httpx.post(f"{copilot_api.url}/chat/completions", json=body, headers={"authorization": f"Bearer {account.access_token}"})
    assert bare.status_code == 400 and bare.json()["error"]["message"] == MISSING_EDITOR_VERSION
    good = httpx.post(
        f"{copilot_api.url}/chat/completions",
        json=body,
        headers={"authorization": f"Bearer {account.access_token}", "editor-version": "vscode/1.107.0"},
    )
    assert good.status_code == 200
    github.expire_copilot_tokens()
    stale = httpx.post(
        f"{copilot_api.url}/chat/completions",
        json=body,
        headers={"authorization": f"Bearer {account.access_token}", "editor-version": "vscode/1.107.0"},
    )
    assert stale.status_code == 401 and "token expired" in stale.text


def test_openai_sdk_streams_chat_through_kleis(start, store, copilot_config, github, copilot_api) -> None:
    live = start(copilot_config)
    account = account_view(store, live.account_id)
    chunks = list(
        live.openai().chat.completions.create(
            model="copilot/gpt-4.1",
            messages=[{"role": "user", "content": "hi"}],
            stream=True,
        )
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hi there"
    assert all(c.choices for c in chunks)  # Kleis asked for usage, so the usage-only chunk stays with Kleis

    seen = copilot_api.last("/chat/completions")
    assert seen.headers["authorization"] == f"Bearer {account.access_token}"
    assert seen.headers["editor-version"] == "vscode/1.126.0" and seen.headers["editor-plugin-version"] == "copilot-chat/0.54.0"
    assert seen.headers["copilot-integration-id"] == "vscode-chat" and seen.headers["user-agent"] == "GitHubCopilotChat/0.54.0"
    assert seen.headers["x-github-api-version"] == "2026-08-01"
    assert seen.headers["openai-intent"] == "conversation-agent" and seen.headers["x-initiator"] == "user"
    assert "copilot-vision-request" not in seen.headers and not any(h.startswith("x-stainless") for h in seen.headers)
    assert live.key not in str(seen.headers) and "kleis-secret-ref" not in str(seen.headers)
    assert seen.json["model"] == "gpt-4.1" and seen.json["stream_options"] == {"include_usage": True}

    status, usage = live.usage.wait(1)[0]
    assert status == 200 and (usage.input_tokens, usage.cache_read_tokens, usage.output_tokens) == (20, 30, 9)


def test_usage_chunk_reaches_a_client_that_asked_for_it(start, copilot_config, copilot_api) -> None:
    live = start(copilot_config)
    chunks = list(
        live.openai().chat.completions.create(
            model="copilot/gpt-4.1",
            stream=True,
            stream_options={"include_usage": True},
            messages=[
                {"role": "user", "content": "hi"},
                {
                    "role": "assistant",
                    "content": "",
                    "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "read", "arguments": "{}"}}],
                },
                {"role": "tool", "tool_call_id": "c1", "content": "ok"},
            ],
        )
    )
    assert chunks[-1].choices == [] and chunks[-1].usage.prompt_tokens == 50
    assert copilot_api.last("/chat/completions").headers["x-initiator"] == "agent"


def test_a_stale_copilot_token_is_renewed_after_the_401(start, store, copilot_config, github, copilot_api) -> None:
    live = start(copilot_config)
    before = account_view(store, live.account_id)
    github.expire_copilot_tokens()  # Copilot now refuses the token, though its expires_at is far away
    client = live.openai()
    answer = client.chat.completions.create(model="copilot/gpt-4.1", messages=[{"role": "user", "content": "hi"}])
    assert answer.choices[0].message.content == "Hi there"  # the 401 was answered by a renewal and a retry
    assert len(copilot_api.received("/chat/completions")) == 2
    after = account_view(store, live.account_id)
    assert after.access_token != before.access_token and after.refresh_token == before.refresh_token
    assert copilot_api.last("/chat/completions").headers["authorization"] == f"Bearer {after.access_token}"
    assert Account.get_by_id(live.account_id).status == "active"


def test_a_token_due_for_renewal_is_renewed_before_the_request(start, store, copilot_config, github, copilot_api) -> None:
    github.refresh_in = 1  # the exchange asks to be renewed after a second
    live = start(copilot_config)
    time.sleep(1.1)
    github.expire_copilot_tokens()
    chunks = list(live.openai().chat.completions.create(model="copilot/gpt-4.1", messages=[{"role": "user", "content": "hi"}], stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hi there"
    assert github.exchanges == 2 and len(copilot_api.received("/chat/completions")) == 1


def test_anthropic_sdk_messages_with_a_copilot_claude_model(start, copilot_config, copilot_api) -> None:
    live = start(copilot_config)
    client = live.anthropic()
    with client.messages.stream(
        model="copilot/claude-sonnet-4.5",
        max_tokens=64,
        messages=[{"role": "user", "content": "hi"}],
        extra_headers={"anthropic-beta": "interleaved-thinking-2025-05-14,fine-grained-tool-streaming-2025-05-14"},
    ) as stream:
        text = "".join(stream.text_stream)
    assert text == "Hello from fake Claude"
    seen = copilot_api.last("/v1/messages")
    assert seen.json["model"] == "claude-sonnet-4.5" and seen.headers["x-initiator"] == "user"
    assert seen.headers["anthropic-beta"] == "interleaved-thinking-2025-05-14" and seen.headers["editor-version"]
    status, usage = live.usage.wait(1)[0]
    assert status == 200 and (usage.input_tokens, usage.cache_read_tokens, usage.output_tokens) == (12, 100, 7)

    message = client.messages.create(
        model="copilot/claude-sonnet-4.5",
        max_tokens=64,
        messages=[
            {"role": "user", "content": "take a screenshot"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "screenshot", "input": {}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "image", "source": PNG}]}]},
        ],
    )
    assert message.content[0].text == "Hello from fake Claude"
    seen = copilot_api.last("/v1/messages")
    assert seen.headers["x-initiator"] == "agent" and seen.headers["copilot-vision-request"] == "true"
    assert "anthropic-beta" not in seen.headers


def test_openai_sdk_responses_stream(start, copilot_config, copilot_api) -> None:
    live = start(copilot_config)
    events = list(live.openai().responses.create(model="copilot/gpt-5-mini", input="hi", stream=True))
    assert events[-1].type == "response.completed"
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == "Hi there"
    seen = copilot_api.last("/responses")
    assert seen.json["model"] == "gpt-5-mini" and seen.headers["x-initiator"] == "user"


def test_a_configured_api_base_wins_over_endpoints_api(start, copilot_config, github, copilot_api) -> None:
    github.api_url = None  # the exchange now names a path the fake does not serve
    live = start(copilot_config.replace(copilot_api_base=copilot_api.url))
    answer = live.openai().chat.completions.create(model="copilot/gpt-4.1", messages=[{"role": "user", "content": "hi"}])
    assert answer.choices[0].message.content == "Hi there" and copilot_api.received("/chat/completions")


def test_direct_mode_end_to_end(start, store, copilot_config, github, copilot_api) -> None:
    live = start(copilot_config.replace(copilot_api_base=copilot_api.url), client_id=OPENCODE_CLIENT_ID)
    account = account_view(store, live.account_id)
    answer = live.openai().chat.completions.create(model="copilot/gpt-4.1", messages=[{"role": "user", "content": "hi"}])
    assert answer.choices[0].message.content == "Hi there"
    seen = copilot_api.last("/chat/completions").headers
    assert seen["authorization"] == f"Bearer {account.refresh_token}"
    # OpenCode's own app token travels with OpenCode's profile: no VS Code editor headers mixed in
    assert seen["user-agent"] == "opencode/1.18.33" and seen["x-github-api-version"] == "2026-08-01"
    assert seen["openai-intent"] == "conversation-edits" and not {
        "editor-version",
        "editor-plugin-version",
        "copilot-integration-id",
    } & set(seen)


def test_a_dead_github_token_turns_into_needs_reauth(start, store, copilot_config, github, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    live = start(copilot_config)
    account = account_view(store, live.account_id)
    github.revoke(account.refresh_token)  # also kills the Copilot token made from it
    client = live.openai()
    with pytest.raises(openai.AuthenticationError):
        client.chat.completions.create(model="copilot/gpt-4.1", messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.create(model="copilot/gpt-4.1", messages=[{"role": "user", "content": "hi"}])
    assert info.value.status_code == 503 and "needs a new login" in str(info.value)
    row = Account.get_by_id(live.account_id)
    assert row.status == "needs_reauth" and "401" in row.status_reason
    logged = caplog.text
    assert "refresh" in logged  # the lifecycle did log about it ...
    for secret in [account.refresh_token, account.access_token, live.key]:
        assert secret not in logged and secret not in row.status_reason  # ... but never a token


def load_models(live: Live, store) -> list[str]:
    """Copilot's model list for the account, as the catalog refresher loads it (each model's supported_endpoints)."""

    async def load() -> list:
        async with httpx.AsyncClient() as http:
            return await live.provider.list_models(account_view(store, live.account_id), http)

    return [m["id"] for m in asyncio.run(load())]


def test_a_model_on_another_endpoint_is_translated_once_models_are_known(start, store, copilot_config, copilot_api) -> None:
    live = start(copilot_config)
    assert "gpt-5.1-codex" in load_models(live, store)  # /responses only
    answer = live.openai().chat.completions.create(model="copilot/gpt-5.1-codex", messages=[{"role": "user", "content": "hi"}])
    assert answer.choices[0].message.content == "Hi there" and answer.model == "copilot/gpt-5.1-codex"
    assert copilot_api.received("/chat/completions") == [] and len(copilot_api.received("/responses")) == 1
    status, usage = live.usage.wait(1)[0]
    assert status == 200 and (usage.input_tokens, usage.cache_read_tokens, usage.output_tokens) == (16, 64, 15)
    assert live.usage.translations == ["chat→responses"]


def test_without_translation_a_model_on_another_endpoint_is_refused(start, store, copilot_config, copilot_api) -> None:
    live = start(copilot_config.replace(translation=False))
    load_models(live, store)
    with pytest.raises(openai.BadRequestError, match="on /responses, not on /chat/completions"):
        live.openai().chat.completions.create(model="copilot/gpt-5.1-codex", messages=[{"role": "user", "content": "hi"}])
    assert copilot_api.received("/chat/completions") == [] and copilot_api.received("/responses") == []


READ_TOOL = {
    "name": "read_file",
    "description": "Read a file",
    "input_schema": {"type": "object", "properties": {"path": {"type": "string"}}},
}


def test_the_anthropic_sdk_reaches_a_chat_only_model_with_tool_calls_and_exact_usage(start, store, copilot_config, copilot_api) -> None:
    live = start(copilot_config)
    load_models(live, store)
    copilot_api.chat_calls = True
    client = live.anthropic()
    with client.messages.stream(
        model="copilot/gpt-4.1", max_tokens=300, messages=[{"role": "user", "content": "open app.py"}], tools=[READ_TOOL]
    ) as stream:
        message = stream.get_final_message()
    text, call = message.content
    assert text.text == "Hi there" and (call.name, call.input) == ("read_file", {"path": "src/app.py", "line": 3})
    assert message.stop_reason == "tool_use" and message.model == "copilot/gpt-4.1"
    assert (message.usage.input_tokens, message.usage.cache_read_input_tokens, message.usage.output_tokens) == (20, 30, 9)
    (seen,) = copilot_api.received("/chat/completions")
    assert seen.json["tools"][0]["function"]["name"] == "read_file" and seen.json["stream_options"] == {"include_usage": True}
    assert seen.headers["x-initiator"] == "user"
    followup = client.messages.create(  # the call's result goes back as a tool message; the answer is plain text
        model="copilot/gpt-4.1",
        max_tokens=300,
        tools=[READ_TOOL],
        messages=[
            {"role": "user", "content": "open app.py"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": call.id, "name": "read_file", "input": call.input}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "x = 1"}]},
        ],
    )
    assert [b.text for b in followup.content] == ["Hi there"] and followup.stop_reason == "end_turn"
    sent = copilot_api.received("/chat/completions")[1]
    assert sent.json["messages"][-1] == {"role": "tool", "tool_call_id": call.id, "content": "x = 1"}
    assert sent.headers["x-initiator"] == "agent"  # a tool result is the agent's turn
    records = live.usage.wait(2)
    assert [(s, u.input_tokens, u.cache_read_tokens, u.output_tokens) for s, u in records] == [(200, 20, 30, 9)] * 2
    assert live.usage.translations == ["messages→chat"] * 2


def test_the_responses_api_reaches_a_chat_only_model_streamed_with_exact_usage(start, store, copilot_config, copilot_api) -> None:
    live = start(copilot_config)
    load_models(live, store)
    copilot_api.text_chunks = ["Chat", "-only ", "answer"]
    events = list(live.openai().responses.create(model="copilot/gpt-4.1", input="hi", stream=True))
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == "Chat-only answer"
    final = events[-1].response
    assert events[-1].type == "response.completed" and final.output_text == "Chat-only answer"
    assert (final.usage.input_tokens, final.usage.input_tokens_details.cached_tokens, final.usage.output_tokens) == (50, 30, 9)
    assert copilot_api.received("/responses") == [] and len(copilot_api.received("/chat/completions")) == 1
    status, usage = live.usage.wait(1)[0]
    assert status == 200 and (usage.input_tokens, usage.cache_read_tokens, usage.output_tokens) == (20, 30, 9)
    assert live.usage.translations == ["responses→chat"]


def test_a_model_on_the_clients_own_endpoint_stays_native(start, store, copilot_config, copilot_api) -> None:
    live = start(copilot_config)
    load_models(live, store)
    live.openai().responses.create(model="copilot/gpt-5-mini", input="hi")  # /chat/completions and /responses
    live.anthropic().messages.create(model="copilot/claude-sonnet-4.5", max_tokens=5, messages=[{"role": "user", "content": "hi"}])
    assert len(copilot_api.received("/responses")) == 1 and len(copilot_api.received("/v1/messages")) == 1
    live.usage.wait(2)
    assert live.usage.translations == ["", ""]


def test_a_retired_editor_profile_gets_a_clear_466_for_that_request_only(
    start, store, run_proxy, copilot_config, copilot_api, caplog, monkeypatch
) -> None:
    from providers import drift

    monkeypatch.setattr(drift, "_logged", set())
    old = copilot_config.replace(copilot_editor_version="vscode/1.107.0", copilot_plugin_version="copilot-chat/0.35.0")
    live = start(old)  # the pair Kleis sent until 2026: Copilot retired it
    for _ in range(2):
        with caplog.at_level(logging.WARNING), pytest.raises(openai.APIStatusError) as caught:
            live.openai().chat.completions.create(model="copilot/gpt-4.1", messages=[{"role": "user", "content": "hi"}])
    assert caught.value.status_code == 466 and caught.value.response.headers["x-should-retry"] == "false"
    message = caught.value.message
    assert "the specified API version is no longer supported" in message and "copilot-chat/0.35.0" in message
    assert "KLEIS_COPILOT_EDITOR_VERSION" in message and "KLEIS_COPILOT_PLUGIN_VERSION" in message
    assert len([r for r in caplog.records if r.getMessage().startswith("drift:")]) == 1  # once per profile
    assert Account.get_by_id(live.account_id).status == "active"  # about the profile, not the account
    current = run_proxy(copilot_config, {"copilot": CopilotProvider(copilot_config)})  # the current default pair
    client = openai.OpenAI(base_url=f"{current.url}/v1", api_key=live.key, max_retries=0)
    assert client.chat.completions.create(model="copilot/gpt-4.1", messages=[{"role": "user", "content": "hi"}]).choices


def test_messages_keep_vs_codes_betas_and_lose_eager_input_streaming(start, copilot_config, copilot_api) -> None:
    live = start(copilot_config)
    tool = {"name": "read", "description": "read", "input_schema": {"type": "object"}, "eager_input_streaming": True}
    betas = "interleaved-thinking-2025-05-14,context-management-2025-06-27,advanced-tool-use-2025-11-20,oauth-2025-04-20"
    message = live.anthropic().messages.create(
        model="copilot/claude-sonnet-4.5",
        max_tokens=64,
        messages=[{"role": "user", "content": "hi"}],
        tools=[tool],
        extra_headers={"anthropic-beta": betas},
    )
    assert message.content[0].type == "text"
    seen = copilot_api.last("/v1/messages")
    assert seen.headers["anthropic-beta"] == betas.rsplit(",", 1)[0] and "eager_input_streaming" not in seen.json["tools"][0]


def test_the_fake_retires_old_profiles_and_refuses_eager_input_streaming(store, copilot_config, github, copilot_api) -> None:
    account = account_view(store, login.import_credentials(store, copilot_config, github_token=github.seed_github_token()).account_id)
    auth = {"authorization": f"Bearer {account.access_token}", "editor-version": "vscode/1.126.0"}
    chat = {"model": "gpt-4.1", "messages": [{"role": "user", "content": "hi"}]}
    retired = httpx.post(f"{copilot_api.url}/chat/completions", json=chat, headers={**auth, "editor-plugin-version": "copilot-chat/0.37.4"})
    assert retired.status_code == 466 and "no longer supported" in retired.json()["error"]["message"]
    old_api = httpx.post(f"{copilot_api.url}/chat/completions", json=chat, headers={**auth, "x-github-api-version": "2025-04-01"})
    assert old_api.status_code == 466
    tools = [{"name": "read", "input_schema": {"type": "object"}, "eager_input_streaming": True}]
    body = {"model": "claude-sonnet-4.5", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}], "tools": tools}
    refused = httpx.post(f"{copilot_api.url}/v1/messages", json=body, headers=auth)
    assert refused.status_code == 400 and "Extra inputs are not permitted" in refused.json()["error"]["message"]


def test_the_model_list_says_which_provider_serves_each_model_on_each_path(start, store, copilot_config, copilot_api) -> None:
    live = start(copilot_config)
    load_models(live, store)
    listing = httpx.get(f"{live.url}/v1/models", headers={"authorization": f"Bearer {live.key}"}).json()
    by_id = {entry["id"]: entry["kleis"]["served_on"] for entry in listing["data"]}
    chat_only = by_id["copilot/gpt-4.1"]
    assert chat_only["/v1/chat/completions"]["why"] == "copilot: asked for by its provider prefix; native"
    assert chat_only["/v1/messages"]["translation"] == "messages→chat" and chat_only["/v1/responses"]["translation"] == "responses→chat"
    assert by_id["copilot/claude-sonnet-4.5"]["/v1/messages"]["translation"] == ""  # Copilot lists /v1/messages for it


def test_copilot_errors_and_cut_streams_reach_a_translated_client_in_its_own_shape(start, store, copilot_config, copilot_api) -> None:
    from tests.fakes.base import Reply, Stream, sse

    live = start(copilot_config)
    load_models(live, store)
    copilot_api.enqueue("POST", "/chat/completions", Reply(429, {"error": {"message": "rate limited by the fake", "code": "rate_limited"}}))
    with pytest.raises(anthropic.RateLimitError) as limited:
        live.anthropic().messages.create(model="copilot/gpt-4.1", max_tokens=5, messages=[{"role": "user", "content": "hi"}])
    assert "rate limited by the fake" in limited.value.message and limited.value.body["type"] == "error"
    chunk = {"id": "c1", "object": "chat.completion.chunk", "model": "gpt-4.1", "choices": [{"index": 0, "delta": {"content": "Hal"}}]}
    copilot_api.enqueue("POST", "/chat/completions", Stream([sse(None, chunk)] * 3, cut_after=2))
    with pytest.raises(anthropic.APIStatusError, match="ended before its end"):
        with live.anthropic().messages.stream(
            model="copilot/gpt-4.1", max_tokens=5, messages=[{"role": "user", "content": "hi"}]
        ) as stream:
            list(stream.text_stream)
    assert [status for status, _ in live.usage.wait(2)] == [429, 200]  # the cut one: its status was sent, then the error event
