"""Images through translation, every direction: base64 and URL images in a user's message and in a tool's result
reach the upstream in its own shape, bytes unchanged; an image no upstream takes is a 400 naming it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from providers.protocols import chat, messages, responses
from providers.protocols.turn import Untranslatable

PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
JPEG = "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAEBAQ=="
URL = "https://example.test/screenshot.png"


def messages_body(media_type: str = "image/png") -> dict[str, Any]:
    return {
        "model": "m",
        "max_tokens": 100,
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "what is this"},
                    {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": PNG}},
                    {"type": "image", "source": {"type": "url", "url": URL}},
                ],
            },
            {"role": "assistant", "content": [{"type": "tool_use", "id": "call_1", "name": "shot", "input": {}}]},
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "call_1",
                        "content": [
                            {"type": "text", "text": "taken"},
                            {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": JPEG}},
                        ],
                    }
                ],
            },
        ],
    }


def responses_body(media_type: str = "image/png") -> dict[str, Any]:
    return {
        "model": "m",
        "input": [
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "what is this"},
                    {"type": "input_image", "image_url": f"data:{media_type};base64,{PNG}"},
                    {"type": "input_image", "image_url": URL},
                ],
            },
            {"type": "function_call", "call_id": "call_1", "name": "shot", "arguments": "{}"},
            {
                "type": "function_call_output",
                "call_id": "call_1",
                "output": [{"type": "input_text", "text": "taken"}, {"type": "input_image", "image_url": f"data:image/jpeg;base64,{JPEG}"}],
            },
        ],
    }


def chat_body(media_type: str = "image/png") -> dict[str, Any]:
    return {
        "model": "m",
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "what is this"},
                    {"type": "image_url", "image_url": {"url": f"data:{media_type};base64,{PNG}"}},
                    {"type": "image_url", "image_url": {"url": URL}},
                ],
            },
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "shot", "arguments": "{}"}}],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "taken"},
            {"role": "user", "content": [{"type": "image_url", "image_url": {"url": f"data:image/jpeg;base64,{JPEG}"}}]},
        ],
    }


READERS = {
    "messages": (messages.read_request, messages_body),
    "responses": (responses.read_request, responses_body),
    "chat": (chat.read_request, chat_body),
}
WRITERS = {"messages": messages.write_request, "responses": responses.write_request, "chat": chat.write_request}
DIRECTIONS = [(client, target) for client in READERS for target in WRITERS if client != target]


def images_in(target: str, body: dict[str, Any]) -> list[str]:
    """Every image the target body carries, as a URL or data: URL, in order."""
    found: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            if value.get("type") == "image" and isinstance(value.get("source"), dict):
                source = value["source"]
                found.append(source["url"] if source["type"] == "url" else f"data:{source['media_type']};base64,{source['data']}")
            elif value.get("type") == "input_image":
                found.append(value["image_url"])
            elif value.get("type") == "image_url":
                found.append(value["image_url"]["url"])
            else:
                for inner in value.values():
                    walk(inner)
        elif isinstance(value, list):
            for inner in value:
                walk(inner)

    walk(body.get("messages") if target != "responses" else body.get("input"))
    return found


@pytest.mark.parametrize(("client", "target"), DIRECTIONS, ids=[f"{c}-to-{t}" for c, t in DIRECTIONS])
def test_images_reach_every_upstream_in_its_shape_bytes_unchanged(client: str, target: str) -> None:
    read, body = READERS[client]
    written = WRITERS[target](read(body()))
    assert images_in(target, written) == [f"data:image/png;base64,{PNG}", URL, f"data:image/jpeg;base64,{JPEG}"]
    assert "taken" in json.dumps(written)


@pytest.mark.parametrize(("client", "target"), DIRECTIONS, ids=[f"{c}-to-{t}" for c, t in DIRECTIONS])
@pytest.mark.parametrize("media_type", ["image/bmp", "image/svg+xml", "image/tiff"])
def test_an_image_format_no_upstream_takes_is_a_400_naming_it(client: str, target: str, media_type: str) -> None:
    read, body = READERS[client]
    with pytest.raises(Untranslatable) as refused:
        WRITERS[target](read(body(media_type)))
    assert refused.value.field == "image" and media_type in refused.value.message


def test_a_data_url_that_is_not_base64_is_a_400() -> None:
    body = chat_body()
    body["messages"][0]["content"][1]["image_url"]["url"] = "data:image/svg+xml;utf8,<svg/>"
    with pytest.raises(Untranslatable) as refused:
        messages.write_request(chat.read_request(body))
    assert refused.value.field == "image" and "base64" in refused.value.message
