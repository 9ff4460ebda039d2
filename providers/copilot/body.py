"""Copilot request bodies and endpoints: the URL per protocol, usage forced on streamed chat, Chat compatibility."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from core.jsonshape import mapping
from core.protocol import Protocol
from core.sse import SSEEvent

# Client path -> Copilot path (the API base has no /v1 for OpenAI shapes; Messages live under /v1).
UPSTREAM_PATHS = {
    "/v1/chat/completions": "/chat/completions",
    "/v1/responses": "/responses",
    "/v1/messages": "/v1/messages",
    "/v1/messages/count_tokens": "/v1/messages/count_tokens",
}

# Tool-definition fields Copilot's /v1/messages refuses ("Extra inputs are not permitted"; VS Code does not send them).
REFUSED_TOOL_FIELDS = ("eager_input_streaming",)

# The supported_endpoints value a model lists for each protocol (GET /models).
ENDPOINT_OF = {Protocol.CHAT: "/chat/completions", Protocol.RESPONSES: "/responses", Protocol.MESSAGES: "/v1/messages"}


def upstream_url(api_base: str, client_path: str) -> str:
    return api_base.rstrip("/") + UPSTREAM_PATHS.get(client_path, client_path)


def client_wants_usage(body: dict[str, Any]) -> bool:
    options = body.get("stream_options")
    return isinstance(options, dict) and options.get("include_usage") is True


def shape_body(protocol: Protocol, body: dict[str, Any], model: str) -> tuple[dict[str, Any], bool]:
    """(body for Copilot, whether Kleis added include_usage the client did not ask for)."""
    shaped = dict(body, model=model)
    forced = False
    if protocol is Protocol.CHAT:
        if shaped.get("stream") is True and not client_wants_usage(shaped):
            options = shaped.get("stream_options")
            shaped["stream_options"] = {**(options if isinstance(options, dict) else {}), "include_usage": True}
            forced = True
        shaped.pop("store", None)  # Copilot's Chat Completions has no stored completions (pi-mono compat table)
        messages = shaped.get("messages")
        if isinstance(messages, list):  # nor the developer role: it is a system message there
            shaped["messages"] = [dict(m, role="system") if isinstance(m, dict) and m.get("role") == "developer" else m for m in messages]
    if protocol is Protocol.MESSAGES and isinstance(shaped.get("tools"), list):
        shaped["tools"] = [without_refused_fields(tool) for tool in shaped["tools"]]
    return shaped, forced


def without_refused_fields(tool: Any) -> Any:
    if not isinstance(tool, dict) or not any(field in tool for field in REFUSED_TOOL_FIELDS):
        return tool
    return {k: v for k, v in tool.items() if k not in REFUSED_TOOL_FIELDS}


def is_usage_only_chunk(event: SSEEvent) -> bool:
    data = event.json()
    return isinstance(data, dict) and data.get("choices") == [] and isinstance(data.get("usage"), dict)


def usage_chunk_remover() -> Callable[[SSEEvent], bytes | None]:
    """For streams where Kleis forced include_usage: the usage-only chunk is read by Kleis, not sent to the client.

    Pure and synchronous: it runs on mitmproxy's event loop. Returning b"" drops the event."""

    def transform(event: SSEEvent) -> bytes | None:
        return b"" if is_usage_only_chunk(event) else None

    return transform


def usable_model(item: Any) -> bool:
    """A /models item Kleis offers: not disabled by policy, with tool calls and both token limits."""
    if not isinstance(item, dict) or not isinstance(item.get("id"), str):
        return False
    policy, capabilities = mapping(item.get("policy")), mapping(item.get("capabilities"))
    limits, supports = mapping(capabilities.get("limits")), mapping(capabilities.get("supports"))
    return (
        policy.get("state") != "disabled"
        and supports.get("tool_calls") is True
        and isinstance(limits.get("max_output_tokens"), int)
        and isinstance(limits.get("max_prompt_tokens"), int)
    )
