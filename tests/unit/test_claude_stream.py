"""Claude's responses: tool names restored in JSON and in SSE (split at every byte), usage read, errors labelled."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from core.protocol import Protocol
from engine.streaming import StreamRewriter
from providers.base import ForwardRequest, Upstream
from providers.claude import ClaudeProvider
from tests.fakes.base import sse
from tests.support.claude import TOKEN_REF, account, tool


def prepared(config, tools: list[dict[str, Any]]) -> Upstream:
    body = {"model": "claude-sonnet-5", "max_tokens": 10, "stream": True, "tools": tools, "messages": [{"role": "user", "content": "go"}]}
    request = ForwardRequest(Protocol.MESSAGES, "/v1/messages", "", {}, body, "claude-sonnet-5", account(), TOKEN_REF, True)
    return ClaudeProvider(config).prepare(request)


def block_start(index: int, block: dict[str, Any]) -> dict[str, Any]:
    return {"type": "content_block_start", "index": index, "content_block": block}


def tool_use(name: str, index: int) -> dict[str, Any]:
    return block_start(index, {"type": "tool_use", "id": f"toolu_{index}", "name": name, "input": {}})


USAGE_START = {"input_tokens": 12, "cache_creation_input_tokens": 20, "cache_read_input_tokens": 100, "output_tokens": 1}


def stream_events(first_tool: str, second_tool: str) -> list[bytes]:
    return [
        sse(
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "id": "msg_1",
                    "type": "message",
                    "role": "assistant",
                    "model": "claude-sonnet-5",
                    "content": [],
                    "usage": USAGE_START,
                },
            },
        ),
        b': keep-alive comment\r\nevent: ping\r\ndata:{"type": "ping"}\r\n\r\n',
        sse("content_block_start", block_start(0, {"type": "text", "text": ""})),
        sse(
            "content_block_delta",
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "I will call mcp_Read_file ✓"}},
        ),
        sse("content_block_stop", {"type": "content_block_stop", "index": 0}),
        sse("content_block_start", tool_use(first_tool, 1)),
        sse(
            "content_block_delta",
            {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": '{"name": "mcp_Read_file"}'}},
        ),
        sse("content_block_stop", {"type": "content_block_stop", "index": 1}),
        b'event: content_block_start\ndata: {"type": "content_block_start", "index": 2, '
        b'"content_block": {"type": "tool_use", "id": "t", "name": "Bash", "input": {}}}\n\n',
        sse("content_block_start", tool_use(second_tool, 3)),
        sse("content_block_stop", {"type": "content_block_stop", "index": 3}),
        sse("message_delta", {"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 57}}),
        sse("message_stop", {"type": "message_stop"}),
    ]


def test_sse_names_are_restored_with_the_event_split_at_every_byte(config) -> None:
    upstream = prepared(config, [tool("read_file"), tool("read"), tool("Bash")])
    sent = [t["name"] for t in upstream.body["tools"]]
    assert sent == ["mcp_Read_file", "Read", "Bash"]
    wire = b"".join(stream_events("mcp_Read_file", "Read"))
    expected_events = stream_events("read_file", "read")
    expected = b"".join(expected_events)
    assert expected != wire
    provider = ClaudeProvider(config)
    for offset in range(len(wire) + 1):
        rewriter = StreamRewriter(provider.stream_transformer(upstream, Protocol.MESSAGES))
        pieces = rewriter(wire[:offset]) + rewriter(wire[offset:]) + rewriter(b"")
        assert all(piece for piece in pieces), "an empty piece would end the client's response"
        assert b"".join(pieces) == expected, f"split at byte {offset}"
    whole = StreamRewriter(provider.stream_transformer(upstream, Protocol.MESSAGES))(wire)
    assert whole == expected_events  # one piece per event; untouched events keep their exact bytes (CRLF, comment, spacing)


def test_sse_fed_byte_by_byte(config) -> None:
    upstream = prepared(config, [tool("read_file"), tool("read")])
    wire = b"".join(stream_events("mcp_Read_file", "Read"))
    rewriter = StreamRewriter(ClaudeProvider(config).stream_transformer(upstream, Protocol.MESSAGES))
    out = [piece for i in range(len(wire)) for piece in rewriter(wire[i : i + 1])] + rewriter(b"")
    assert b"".join(out) == b"".join(stream_events("read_file", "read"))


def test_no_transformer_when_no_name_changed(config) -> None:
    upstream = prepared(config, [tool("Read"), tool("mcp_x")])
    assert ClaudeProvider(config).stream_transformer(upstream, Protocol.MESSAGES) is None


def test_tool_reference_in_a_streamed_server_tool_result_is_restored(config) -> None:
    upstream = prepared(config, [tool("deploy")])
    transform = ClaudeProvider(config).stream_transformer(upstream, Protocol.MESSAGES)
    result = {
        "type": "tool_search_tool_result",
        "tool_use_id": "s1",
        "content": {"type": "tool_search_tool_search_result", "tool_references": [{"type": "tool_reference", "tool_name": "mcp_Deploy"}]},
    }
    out = StreamRewriter(transform)(sse("content_block_start", block_start(0, result)))
    assert json.loads(out[0].split(b"data: ", 1)[1])["content_block"]["content"]["tool_references"][0]["tool_name"] == "deploy"


def test_usage_is_read_from_the_stream(config) -> None:
    upstream = prepared(config, [tool("read_file")])
    provider = ClaudeProvider(config)
    reader = provider.usage_reader(Protocol.MESSAGES)
    rewriter = StreamRewriter(provider.stream_transformer(upstream, Protocol.MESSAGES), [reader.event])
    rewriter(b"".join(stream_events("mcp_Read_file", "x")))
    usage = reader.usage
    assert (usage.input_tokens, usage.output_tokens, usage.cache_read_tokens, usage.cache_write_tokens) == (12, 57, 100, 20)
    assert usage.complete


def test_json_answer_names_are_restored(config) -> None:
    upstream = prepared(config, [tool("read_file"), tool("read")])
    body = {
        "id": "msg",
        "type": "message",
        "content": [
            {"type": "text", "text": "calling mcp_Read_file"},
            {"type": "tool_use", "id": "a", "name": "mcp_Read_file", "input": {"name": "Read"}},
            {"type": "tool_use", "id": "b", "name": "Read", "input": {}},
            {"type": "tool_use", "id": "c", "name": "Unknown", "input": {}},
        ],
    }
    restored = ClaudeProvider(config).rewrite_response(upstream, Protocol.MESSAGES, 200, json.loads(json.dumps(body)))
    assert [block.get("name") for block in restored["content"]] == [None, "read_file", "read", "Unknown"]
    assert restored["content"][0] == body["content"][0] and restored["content"][1]["input"] == {"name": "Read"}


def test_json_answer_without_renamed_names_is_left_alone(config) -> None:
    provider = ClaudeProvider(config)
    upstream = prepared(config, [tool("read_file")])
    assert provider.rewrite_response(upstream, Protocol.MESSAGES, 200, {"content": [{"type": "text", "text": "hi"}]}) is None
    assert provider.rewrite_response(upstream, Protocol.MESSAGES, 200, {"input_tokens": 5}) is None  # count_tokens


# -- error signals --------------------------------------------------------------------------------------


def error(kind: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"type": "error", "error": {"type": kind, "message": message, **extra}}


def test_credential_only_for_claude_code_is_request_scoped(config) -> None:
    signal = ClaudeProvider(config).classify(
        400,
        {},
        error(
            "invalid_request_error",
            "This credential is only authorized for use with Claude Code and cannot be used for other API requests.",
        ),
    )
    assert (signal.kind, signal.account_wide) == ("request", False) and "Claude Code" in signal.label


@pytest.mark.parametrize(
    "body",
    [
        error("invalid_request_error", "Claude Code 2.1.259 does not support this model; version 2.1.280 or newer is required"),
        error("claude_code_version_too_old", "This model needs a newer Claude Code (2.1.280 or newer)"),
        {
            "type": "error",
            "error": {"type": "invalid_request_error", "message": "upgrade", "details": {"error_code": "claude_code_version_too_old"}},
        },
    ],
)
def test_version_too_old_is_not_account_wide(config, body: dict) -> None:
    signal = ClaudeProvider(config).classify(400, {}, body)
    assert (signal.kind, signal.account_wide) == ("version", False) and "claude_code_version_too_old" in signal.label


def test_version_floor_is_named_when_the_message_gives_it(config) -> None:
    body = error("invalid_request_error", "Claude Code 2.1.259 does not support this model; version 2.1.280 or newer is required")
    assert "2.1.280" in ClaudeProvider(config).classify(400, {}, body).label


@pytest.mark.parametrize(
    ("status", "message", "noted"),
    [
        (400, "Third-party apps now draw from your extra usage, not your plan limits. Add more at claude.ai/settings/usage.", True),
        (400, "Third-party apps now draw from extra usage, not plan limits. We've added a credit to your organization.", True),
        (429, "Extra usage is required for long context requests.", False),
        (400, "You're out of extra usage. Add more at claude.ai/settings/usage and keep going.", True),
    ],
)
def test_billing_lane_refusals_never_cool_the_account(config, status: int, message: str, noted: bool) -> None:
    headers = {"anthropic-ratelimit-unified-reset": str(int(time.time()) + 3600)}  # a 429 with a window reset is still not a limit
    signal = ClaudeProvider(config).classify(
        status, headers, error("rate_limit_error" if status == 429 else "invalid_request_error", message)
    )
    assert (signal.kind, signal.account_wide, bool(signal.account_note)) == ("request", False, noted)
    assert "extra_usage" in signal.label


def test_401_is_auth(config) -> None:
    signal = ClaudeProvider(config).classify(401, {}, error("authentication_error", "Invalid bearer token"))
    assert signal.kind == "auth" and signal.account_wide


def test_429_with_unified_reset_cools_until_then(config) -> None:
    reset = int(time.time()) + 3600
    headers = {"anthropic-ratelimit-unified-reset": str(reset), "anthropic-ratelimit-unified-status": "rejected"}
    signal = ClaudeProvider(config).classify(429, headers, error("rate_limit_error", "Rate limited"))
    assert (signal.kind, signal.reset_at, signal.account_wide) == ("rate_limit", float(reset), True)


def test_429_for_fast_mode_credits_is_not_account_wide(config) -> None:
    signal = ClaudeProvider(config).classify(
        429, {"anthropic-ratelimit-unified-reset": "1"}, error("rate_limit_error", "Usage credits are required for fast mode.")
    )
    assert (signal.kind, signal.account_wide) == ("rate_limit", False)


def test_other_statuses_fall_back_to_the_status_rules(config) -> None:
    provider = ClaudeProvider(config)
    assert provider.classify(529, {}, error("overloaded_error", "Overloaded")).kind == "overloaded"
    assert provider.classify(200, {}, None).kind == "ok"
    plain = provider.classify(429, {"retry-after": "30"}, error("rate_limit_error", "slow down"))
    assert plain.kind == "rate_limit" and plain.reset_at is not None and plain.reset_at > time.time() + 20
