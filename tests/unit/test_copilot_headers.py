"""Copilot's pure request rules: X-Initiator (a table), vision in three shapes, editor profile, bodies, model filter."""

from __future__ import annotations

import pytest

from core.protocol import Protocol
from core.sse import parse_event
from providers.copilot import body as bodies
from providers.copilot import headers

CHAT, RESPONSES, MESSAGES = Protocol.CHAT, Protocol.RESPONSES, Protocol.MESSAGES
TOOL_RESULT = {"type": "tool_result", "tool_use_id": "toolu_1", "content": "file contents"}
SYNTHETIC = "Attached image(s) from tool result:"
PNG = {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}


@pytest.mark.parametrize(
    ("case", "protocol", "body", "expected"),
    [
        ("chat: user typed last", CHAT, {"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "hi"}]}, "user"),
        ("chat: user parts", CHAT, {"messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]}, "user"),
        (
            "chat: tool result last",
            CHAT,
            {
                "messages": [
                    {"role": "user", "content": "hi"},
                    {"role": "assistant", "tool_calls": []},
                    {"role": "tool", "tool_call_id": "c", "content": "ok"},
                ]
            },
            "agent",
        ),
        (
            "chat: assistant last (prefill)",
            CHAT,
            {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "Sure"}]},
            "agent",
        ),
        (
            "chat: earlier assistant, user last",
            CHAT,
            {"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}, {"role": "user", "content": "c"}]},
            "user",
        ),
        (
            "chat: synthetic image message",
            CHAT,
            {
                "messages": [
                    {"role": "tool", "content": "x"},
                    {
                        "role": "user",
                        "content": [{"type": "text", "text": SYNTHETIC}, {"type": "image_url", "image_url": {"url": "data:,"}}],
                    },
                ]
            },
            "agent",
        ),
        ("chat: no messages", CHAT, {"messages": []}, "agent"),
        ("chat: messages not a list", CHAT, {"messages": "hi"}, "agent"),
        ("responses: string input", RESPONSES, {"input": "hi"}, "user"),
        (
            "responses: user message item",
            RESPONSES,
            {"input": [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}]},
            "user",
        ),
        ("responses: easy input message", RESPONSES, {"input": [{"role": "user", "content": "hi"}]}, "user"),
        (
            "responses: function_call_output last",
            RESPONSES,
            {
                "input": [
                    {"role": "user", "content": "hi"},
                    {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"},
                    {"type": "function_call_output", "call_id": "c", "output": "ok"},
                ]
            },
            "agent",
        ),
        (
            "responses: assistant last",
            RESPONSES,
            {"input": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]},
            "agent",
        ),
        (
            "responses: reasoning item last",
            RESPONSES,
            {"input": [{"role": "user", "content": "hi"}, {"type": "reasoning", "summary": []}]},
            "agent",
        ),
        (
            "responses: synthetic media message",
            RESPONSES,
            {"input": [{"role": "user", "content": [{"type": "input_text", "text": "Attached media from tool result:"}]}]},
            "agent",
        ),
        ("responses: empty input", RESPONSES, {"input": []}, "agent"),
        ("messages: user text", MESSAGES, {"messages": [{"role": "user", "content": "hi"}]}, "user"),
        ("messages: user text part", MESSAGES, {"messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]}, "user"),
        (
            "messages: only tool_result",
            MESSAGES,
            {
                "messages": [
                    {"role": "user", "content": "hi"},
                    {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}}]},
                    {"role": "user", "content": [TOOL_RESULT]},
                ]
            },
            "agent",
        ),
        (
            "messages: several tool_results",
            MESSAGES,
            {"messages": [{"role": "user", "content": [TOOL_RESULT, dict(TOOL_RESULT, tool_use_id="toolu_2")]}]},
            "agent",
        ),
        (
            "messages: tool_result plus typed text",
            MESSAGES,
            {"messages": [{"role": "user", "content": [TOOL_RESULT, {"type": "text", "text": "also do X"}]}]},
            "user",
        ),
        (
            "messages: assistant last",
            MESSAGES,
            {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "prefill"}]},
            "agent",
        ),
        ("messages: user image", MESSAGES, {"messages": [{"role": "user", "content": [{"type": "image", "source": PNG}]}]}, "user"),
        (
            "messages: synthetic attachment",
            MESSAGES,
            {"messages": [{"role": "user", "content": [{"type": "text", "text": SYNTHETIC}, {"type": "image", "source": PNG}]}]},
            "agent",
        ),
        ("messages: empty list", MESSAGES, {"messages": []}, "agent"),
        # a trailing reminder (Aider's, Claude Code's) does not hide who wrote the turn
        (
            "chat: user then system reminder",
            CHAT,
            {"messages": [{"role": "user", "content": "fix it"}, {"role": "system", "content": "Reply with a diff."}]},
            "user",
        ),
        (
            "chat: tool result then developer reminder",
            CHAT,
            {"messages": [{"role": "tool", "tool_call_id": "c1", "content": "ok"}, {"role": "developer", "content": "go on"}]},
            "agent",
        ),
        ("chat: only system", CHAT, {"messages": [{"role": "system", "content": "be brief"}]}, "agent"),
        (
            "responses: user then developer item",
            RESPONSES,
            {
                "input": [
                    {"type": "message", "role": "user", "content": "hi"},
                    {"type": "message", "role": "developer", "content": "be brief"},
                ]
            },
            "user",
        ),
        (
            "messages: user then system",
            MESSAGES,
            {"messages": [{"role": "user", "content": "hi"}, {"role": "system", "content": "reminder"}]},
            "user",
        ),
    ],
)
def test_x_initiator(case: str, protocol: Protocol, body: dict, expected: str) -> None:
    assert headers.initiator(protocol, body) == expected, case


@pytest.mark.parametrize(
    ("case", "protocol", "body", "expected"),
    [
        (
            "chat: image_url in user",
            CHAT,
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "text", "text": "see"},
                            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA"}},
                        ],
                    }
                ]
            },
            True,
        ),
        (
            "chat: image in an earlier message",
            CHAT,
            {
                "messages": [
                    {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/i.png"}}]},
                    {"role": "assistant", "content": "ok"},
                    {"role": "user", "content": "and?"},
                ]
            },
            True,
        ),
        ("chat: text only", CHAT, {"messages": [{"role": "user", "content": "image_url"}]}, False),
        (
            "responses: input_image",
            RESPONSES,
            {"input": [{"role": "user", "content": [{"type": "input_image", "image_url": "data:image/png;base64,AA"}]}]},
            True,
        ),
        (
            "responses: image in function_call_output",
            RESPONSES,
            {"input": [{"type": "function_call_output", "call_id": "c", "output": [{"type": "input_image", "image_url": "data:,"}]}]},
            True,
        ),
        ("responses: string input", RESPONSES, {"input": "input_image"}, False),
        ("responses: text only", RESPONSES, {"input": [{"role": "user", "content": [{"type": "input_text", "text": "hi"}]}]}, False),
        ("messages: image part", MESSAGES, {"messages": [{"role": "user", "content": [{"type": "image", "source": PNG}]}]}, True),
        (
            "messages: image inside tool_result",
            MESSAGES,
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "tool_result",
                                "tool_use_id": "t",
                                "content": [{"type": "text", "text": "shot"}, {"type": "image", "source": PNG}],
                            }
                        ],
                    }
                ]
            },
            True,
        ),
        ("messages: tool_result text", MESSAGES, {"messages": [{"role": "user", "content": [TOOL_RESULT]}]}, False),
        ("messages: string content", MESSAGES, {"messages": [{"role": "user", "content": "image"}]}, False),
    ],
)
def test_vision_detection(case: str, protocol: Protocol, body: dict, expected: bool) -> None:
    assert headers.has_image(protocol, body) is expected, case


def test_request_headers_carry_the_editor_profile(config) -> None:
    config = config.replace(copilot_editor_version="vscode/1.200.0", copilot_plugin_version="copilot-chat/0.40.1")
    body = {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:,"}}]}]}
    sent = headers.request_headers(config, CHAT, body, "kleis-secret-ref-abc", {"x-api-key": "kl_x"})
    assert sent == {
        "Authorization": "Bearer kleis-secret-ref-abc",
        "Editor-Version": "vscode/1.200.0",
        "Editor-Plugin-Version": "copilot-chat/0.40.1",
        "Copilot-Integration-Id": "vscode-chat",
        "User-Agent": "GitHubCopilotChat/0.40.1",
        "X-GitHub-Api-Version": "2026-08-01",
        "Openai-Intent": "conversation-agent",
        "X-Initiator": "user",
        "Copilot-Vision-Request": "true",
    }
    plain = headers.request_headers(config, CHAT, {"messages": [{"role": "tool", "content": "x"}]}, "ref", {})
    assert plain["X-Initiator"] == "agent" and "Copilot-Vision-Request" not in plain


def test_a_direct_mode_token_carries_its_own_apps_profile_and_no_editor_headers(config) -> None:
    config = config.replace(copilot_direct_user_agent="opencode/1.20.0", copilot_api_version="2026-09-01")
    sent = headers.request_headers(config, CHAT, {"messages": [{"role": "user", "content": "hi"}]}, "ref", {}, direct=True)
    assert sent == {
        "Authorization": "Bearer ref",
        "User-Agent": "opencode/1.20.0",
        "X-GitHub-Api-Version": "2026-09-01",
        "Openai-Intent": "conversation-edits",
        "X-Initiator": "user",
    }


def test_a_messages_tools_eager_input_streaming_is_removed() -> None:
    from providers.copilot.body import shape_body

    tools = [{"name": "read", "input_schema": {}, "eager_input_streaming": True}, {"name": "bash", "input_schema": {}}]
    shaped, _ = shape_body(MESSAGES, {"messages": [], "tools": tools}, "claude-sonnet-4.5")
    assert shaped["tools"] == [{"name": "read", "input_schema": {}}, {"name": "bash", "input_schema": {}}]
    assert tools[0]["eager_input_streaming"] is True  # the client's body is not changed in place
    chat, _ = shape_body(CHAT, {"messages": [], "tools": [{"type": "function", "eager_input_streaming": 1}]}, "gpt-4.1")
    assert chat["tools"] == [{"type": "function", "eager_input_streaming": 1}]  # only Messages refuses it


@pytest.mark.parametrize(
    ("client", "expected"),
    [
        ("interleaved-thinking-2025-05-14", "interleaved-thinking-2025-05-14"),
        (
            "claude-code-20250219,oauth-2025-04-20, interleaved-thinking-2025-05-14,fine-grained-tool-streaming-2025-05-14",
            "interleaved-thinking-2025-05-14",
        ),
        (  # what VS Code sends to Copilot's /v1/messages in 2026
            "interleaved-thinking-2025-05-14,context-management-2025-06-27,advanced-tool-use-2025-11-20,oauth-2025-04-20",
            "interleaved-thinking-2025-05-14,context-management-2025-06-27,advanced-tool-use-2025-11-20",
        ),
        ("oauth-2025-04-20", None),
        (None, None),
    ],
)
def test_only_betas_copilot_accepts_are_kept(config, client: str | None, expected: str | None) -> None:
    sent = headers.request_headers(config, MESSAGES, {"messages": []}, "ref", {"Anthropic-Beta": client} if client else {})
    assert sent.get("anthropic-beta") == expected


def test_client_credentials_and_sdk_fingerprints_are_dropped() -> None:
    client = [
        "Authorization",
        "X-Api-Key",
        "X-Stainless-Lang",
        "x-stainless-os",
        "X-Initiator",
        "Copilot-Vision-Request",
        "anthropic-beta",
        "OpenAI-Organization",
        "User-Agent",
        "anthropic-version",
        "content-type",
        "x-request-id",
    ]
    dropped = headers.dropped_headers(client)
    assert set(dropped) == {
        "authorization",
        "x-api-key",
        "x-stainless-lang",
        "x-stainless-os",
        "x-initiator",
        "copilot-vision-request",
        "anthropic-beta",
        "openai-organization",
        "user-agent",
    }
    assert "anthropic-version" not in dropped and "content-type" not in dropped


def test_streamed_chat_gets_include_usage_and_compat_fixes() -> None:
    body = {
        "model": "copilot/gpt-4.1",
        "stream": True,
        "store": False,
        "messages": [{"role": "developer", "content": "be brief"}, {"role": "user", "content": "hi"}],
    }
    shaped, forced = bodies.shape_body(CHAT, body, "gpt-4.1")
    assert forced and shaped["stream_options"] == {"include_usage": True}
    assert shaped["model"] == "gpt-4.1" and "store" not in shaped
    assert [m["role"] for m in shaped["messages"]] == ["system", "user"]
    asked, forced = bodies.shape_body(CHAT, dict(body, stream_options={"include_usage": True}), "gpt-4.1")
    assert not forced and asked["stream_options"] == {"include_usage": True}
    unstreamed, forced = bodies.shape_body(CHAT, dict(body, stream=False), "gpt-4.1")
    assert not forced and "stream_options" not in unstreamed
    responses, forced = bodies.shape_body(RESPONSES, {"model": "x", "input": "hi", "stream": True, "store": False}, "gpt-5-mini")
    assert not forced and responses == {"model": "gpt-5-mini", "input": "hi", "stream": True, "store": False}


def test_usage_chunk_remover_drops_only_the_usage_chunk() -> None:
    remove = bodies.usage_chunk_remover()
    usage = parse_event(b'data: {"id":"c","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":1}}\n\n')
    delta = parse_event(b'data: {"id":"c","choices":[{"index":0,"delta":{"content":"hi"}}]}\n\n')
    done = parse_event(b"data: [DONE]\n\n")
    assert remove(usage) == b""
    assert remove(delta) is None and remove(done) is None


def test_upstream_urls() -> None:
    assert (
        bodies.upstream_url("https://api.x.githubcopilot.com/", "/v1/chat/completions")
        == "https://api.x.githubcopilot.com/chat/completions"
    )
    assert bodies.upstream_url("https://api.x", "/v1/responses") == "https://api.x/responses"
    assert bodies.upstream_url("https://api.x", "/v1/messages") == "https://api.x/v1/messages"
    assert bodies.upstream_url("https://api.x", "/v1/messages/count_tokens") == "https://api.x/v1/messages/count_tokens"


def test_model_filter() -> None:
    from tests.fakes.copilot import DEFAULT_MODELS

    kept = [item["id"] for item in DEFAULT_MODELS if bodies.usable_model(item)]
    assert kept == ["gpt-4.1", "gpt-5-mini", "gpt-5.1-codex", "claude-sonnet-4.5"]


def test_a_466_is_about_the_profile_not_the_account(config) -> None:
    from providers.base import Upstream
    from providers.copilot import CopilotProvider

    provider = CopilotProvider(config)
    body = {"error": {"message": "bad request: the specified API version is no longer supported.", "type": "error"}}
    signal = provider.classify(466, {}, body)
    assert (signal.kind, signal.account_wide) == ("version", False)
    sent = headers.request_headers(config, CHAT, {"messages": []}, "ref", {})
    upstream = Upstream("https://copilot.example.test/chat/completions", sent, {}, state={"profile": "Editor-Version: vscode/1.0.0"})
    drift = provider.after_error(upstream, signal, body).drift
    assert drift is not None and "KLEIS_COPILOT_EDITOR_VERSION" in drift.setting and "vscode/1.0.0" in drift.hint and not drift.retry
