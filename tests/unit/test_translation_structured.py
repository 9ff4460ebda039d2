"""Structured output through translation, every direction: Chat's `response_format` json_schema, Responses'
`text.format` and Anthropic's `output_config.format` carry the same schema to any upstream; a format with no
equivalent is a 400 naming the field."""

from __future__ import annotations

from typing import Any

import pytest

from providers.protocols import chat, messages, responses
from providers.protocols.turn import Untranslatable

SCHEMA = {"type": "object", "properties": {"title": {"type": "string"}}, "required": ["title"], "additionalProperties": False}
ASK = [{"role": "user", "content": "name this session"}]
BODIES: dict[str, dict[str, Any]] = {
    "messages": {"model": "m", "max_tokens": 100, "messages": ASK, "output_config": {"format": {"type": "json_schema", "schema": SCHEMA}}},
    "responses": {
        "model": "m",
        "input": ASK,
        "text": {"format": {"type": "json_schema", "name": "title", "schema": SCHEMA, "strict": True}},
    },
    "chat": {"model": "m", "messages": ASK, "response_format": {"type": "json_schema", "json_schema": {"name": "title", "schema": SCHEMA}}},
}
READ = {"messages": messages.read_request, "responses": responses.read_request, "chat": chat.read_request}
WRITE = {"messages": messages.write_request, "responses": responses.write_request, "chat": chat.write_request}
DIRECTIONS = [(client, target) for client in READ for target in WRITE if client != target]


def schema_sent(target: str, body: dict[str, Any]) -> Any:
    if target == "messages":
        return body["output_config"]["format"]["schema"]
    if target == "responses":
        return body["text"]["format"]["schema"]
    return body["response_format"]["json_schema"]["schema"]


@pytest.mark.parametrize(("client", "target"), DIRECTIONS, ids=[f"{c}-to-{t}" for c, t in DIRECTIONS])
def test_a_json_schema_reaches_every_upstream(client: str, target: str) -> None:
    written = WRITE[target](READ[client](BODIES[client]))
    assert schema_sent(target, written) == SCHEMA


def test_chats_json_object_mode_has_no_schema_to_carry_and_is_a_400_naming_it() -> None:
    with pytest.raises(Untranslatable) as refused:
        chat.read_request({"model": "m", "messages": ASK, "response_format": {"type": "json_object"}})
    assert refused.value.field.startswith("response_format")
