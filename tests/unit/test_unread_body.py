"""The request body read in part (engine.pipeline): the bulk members — messages, input, tools — stay bytes until a
provider needs them; real Claude Code's request to Claude never has them read, every other request has them read
back into the very value, in the order sent."""

from __future__ import annotations

import asyncio
import json

from core.protocol import Protocol
from engine import pipeline
from engine.context import begin
from providers.claude import ClaudeProvider
from providers.codex import CodexProvider
from providers.routing import Resolution
from tests.support.claude import CLAUDE_CODE_BODY, CLAUDE_CODE_HEADERS


def parsed(content: bytes, headers: dict[str, str], provider, model: str, *, pooled: bool = False):
    ctx = begin("POST", "/v1/messages")
    ctx.client.headers = {name.lower(): value for name, value in headers.items()}
    asyncio.run(pipeline.parse_body(ctx, content, 64 * 1024 * 1024))
    ctx.route.provider, ctx.route.resolution, ctx.route.pooled = provider, Resolution(provider.name, model, "registry"), pooled
    return ctx


def test_claude_codes_own_request_to_claude_is_not_read_whole(config) -> None:
    content = json.dumps(CLAUDE_CODE_BODY).encode()
    ctx = parsed(content, CLAUDE_CODE_HEADERS, ClaudeProvider(config), CLAUDE_CODE_BODY["model"])
    assert ctx.client.unread is not None and set(ctx.client.unread.unread) == {"messages", "tools"} & set(CLAUDE_CODE_BODY)
    assert "messages" not in ctx.client.body and ctx.client.model == CLAUDE_CODE_BODY["model"]
    assert not pipeline.needs_unread(ctx)
    assert pipeline.needs_unread(parsed(content, CLAUDE_CODE_HEADERS, ClaudeProvider(config), "claude-opus-4-5"))  # model rewritten
    other_client = {**CLAUDE_CODE_HEADERS, "User-Agent": "opencode/1.18.33"}
    assert pipeline.needs_unread(parsed(content, other_client, ClaudeProvider(config), CLAUDE_CODE_BODY["model"]))
    assert pipeline.needs_unread(parsed(content, CLAUDE_CODE_HEADERS, CodexProvider(config), CLAUDE_CODE_BODY["model"]))


def test_a_pooled_request_without_a_session_id_is_read_for_its_first_message(config) -> None:
    headers = {name: value for name, value in CLAUDE_CODE_HEADERS.items() if name.lower() != "x-claude-code-session-id"}
    named = parsed(json.dumps(CLAUDE_CODE_BODY).encode(), headers, ClaudeProvider(config), CLAUDE_CODE_BODY["model"], pooled=True)
    assert "metadata" in CLAUDE_CODE_BODY and not pipeline.needs_unread(named)  # metadata.user_id names the session
    anonymous = {key: value for key, value in CLAUDE_CODE_BODY.items() if key != "metadata"}
    ctx = parsed(json.dumps(anonymous).encode(), headers, ClaudeProvider(config), CLAUDE_CODE_BODY["model"], pooled=True)
    assert pipeline.needs_unread(ctx)  # the conversation is named by a hash of its first user message


def test_what_is_read_back_is_the_body_in_the_order_sent(config) -> None:
    body = {"tools": [{"name": "t"}], "model": "gpt-5.1-codex", "input": [{"role": "user", "content": "hi ✓"}], "stream": True}
    content = json.dumps(body, ensure_ascii=False).encode()
    ctx = parsed(content, {"user-agent": "codex_cli_rs/0.171.0"}, CodexProvider(config), "gpt-5.1-codex")
    assert ctx.client.body == {"model": "gpt-5.1-codex", "stream": True} and ctx.client.stream
    assert pipeline.needs_unread(ctx)
    asyncio.run(pipeline.read_unread(ctx))
    assert ctx.client.body == body and list(ctx.client.body) == list(body) and ctx.client.unread is None
    assert ctx.client.protocol is Protocol.MESSAGES  # the path's protocol; the body's shape is the provider's business


def test_a_body_no_provider_can_forward_as_sent_is_read_whole_at_once(config) -> None:
    """Only real Claude Code's bytes may go to Claude as sent: any other client's body is read whole, once, not in
    part and then again."""
    providers = [ClaudeProvider(config), CodexProvider(config)]
    assert pipeline.may_stay_unread({"user-agent": "claude-cli/2.1.332 (external, cli)"}, providers)
    for agent in ("opencode/1.18.33", "codex_cli_rs/0.171.0", "Anthropic/Python 0.75.0", ""):
        assert not pipeline.may_stay_unread({"user-agent": agent}, providers)
    assert not pipeline.may_stay_unread({"user-agent": "claude-cli/2.1.332 (external, cli)"}, [CodexProvider(config)])
    ctx = begin("POST", "/v1/messages")
    content = json.dumps(CLAUDE_CODE_BODY, ensure_ascii=False).encode()
    asyncio.run(pipeline.parse_body(ctx, content, 64 * 1024 * 1024, in_part=False))
    assert ctx.client.unread is None and ctx.client.body == CLAUDE_CODE_BODY and list(ctx.client.body) == list(CLAUDE_CODE_BODY)
