"""The client protocols Kleis speaks (Anthropic Messages, OpenAI Chat, OpenAI Responses) and the paths that carry them."""

from __future__ import annotations

import enum


class Protocol(enum.StrEnum):
    MESSAGES = "messages"  # Anthropic Messages: /v1/messages, /v1/messages/count_tokens
    CHAT = "chat"  # OpenAI Chat Completions: /v1/chat/completions
    RESPONSES = "responses"  # OpenAI Responses: /v1/responses


PROXIED_PATHS: dict[str, Protocol] = {
    "/v1/messages": Protocol.MESSAGES,
    "/v1/messages/count_tokens": Protocol.MESSAGES,
    "/v1/chat/completions": Protocol.CHAT,
    "/v1/responses": Protocol.RESPONSES,
}


def split_path(path: str) -> tuple[str, str]:
    """('/v1/messages', 'beta=true') from '/v1/messages?beta=true'; trailing slashes ignored."""
    base, _, query = path.partition("?")
    return (base.rstrip("/") or "/"), query


def protocol_for_path(path: str) -> Protocol | None:
    return PROXIED_PATHS.get(split_path(path)[0])


def error_protocol_for_path(path: str) -> Protocol:
    """Which error shape a caller of `path` expects: Anthropic on /v1/messages*, OpenAI elsewhere."""
    return Protocol.MESSAGES if split_path(path)[0].startswith("/v1/messages") else Protocol.CHAT


PROTOCOL_PATHS = {Protocol.MESSAGES: "/v1/messages", Protocol.CHAT: "/v1/chat/completions", Protocol.RESPONSES: "/v1/responses"}
