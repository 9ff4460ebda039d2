"""A fake Anthropic Messages API: JSON and SSE answers, tool_use blocks, usage with cache fields, errors."""

from __future__ import annotations

import itertools
from typing import Any

from tests.fakes.base import FakeServer, Recorded, Reply, Stream, sse

_ids = itertools.count(1)


def anthropic_error(status: int, kind: str, message: str) -> Reply:
    return Reply(status, {"type": "error", "error": {"type": kind, "message": message}})


class FakeAnthropic(FakeServer):
    """Answers /v1/messages as Claude would. A request with tools gets a tool_use of the first tool,
    named exactly as the request named it (so a proxy's renaming is visible to the test)."""

    def __init__(self, valid_tokens: set[str] | None = None, prefix: str = "") -> None:
        super().__init__()
        self.valid_tokens = valid_tokens  # None: any bearer token is accepted
        self.usage = {"input_tokens": 12, "cache_creation_input_tokens": 20, "cache_read_input_tokens": 100, "output_tokens": 7}
        self.text_chunks = ["Hello", " from", " fake", " Claude"]
        self.stream_delay = 0.0
        self.stream_split = 0
        self.stream_stamp = False
        self.validators: list[Any] = []  # callables(Recorded) -> Reply | None, e.g. Claude Code identity checks
        self.route("POST", f"{prefix}/v1/messages", self.messages)
        self.route("POST", f"{prefix}/v1/messages/count_tokens", self.count_tokens)

    def _auth(self, request: Recorded) -> Reply | None:
        if self.valid_tokens is None:
            return None
        token = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        if token not in self.valid_tokens:
            return anthropic_error(401, "authentication_error", "invalid bearer token")
        return None

    def _check(self, request: Recorded) -> Reply | None:
        refusal = self._auth(request)
        if refusal is not None:
            return refusal
        body = request.json
        if not isinstance(body, dict) or "model" not in body:
            return anthropic_error(400, "invalid_request_error", "model: field required")
        for validate in self.validators:
            refusal = validate(request)
            if refusal is not None:
                return refusal
        return None

    def count_tokens(self, request: Recorded) -> Reply:
        return self._check(request) or Reply(200, {"input_tokens": 42})

    def messages(self, request: Recorded) -> Reply | Stream:
        refusal = self._check(request)
        if refusal is not None:
            return refusal
        body = request.json
        message_id = f"msg_fake_{next(_ids)}"
        tools = body.get("tools") or []
        tool = next((t for t in tools if "name" in t and "type" not in t), None)
        if not body.get("stream"):
            content: list[dict[str, Any]] = [{"type": "text", "text": "".join(self.text_chunks)}]
            if tool is not None:
                content.append({"type": "tool_use", "id": "toolu_fake_1", "name": tool["name"], "input": {"path": "README.md"}})
            return Reply(
                200,
                {
                    "id": message_id,
                    "type": "message",
                    "role": "assistant",
                    "model": body["model"],
                    "content": content,
                    "stop_reason": "tool_use" if tool else "end_turn",
                    "stop_sequence": None,
                    "usage": dict(self.usage),
                },
            )
        start_usage = {k: self.usage[k] for k in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")}
        events = [
            sse(
                "message_start",
                {
                    "type": "message_start",
                    "message": {
                        "id": message_id,
                        "type": "message",
                        "role": "assistant",
                        "model": body["model"],
                        "content": [],
                        "stop_reason": None,
                        "stop_sequence": None,
                        "usage": {**start_usage, "output_tokens": 1},
                    },
                },
            ),
            sse("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
            sse("ping", {"type": "ping"}),
        ]
        events += [
            sse("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}})
            for piece in self.text_chunks
        ]
        events.append(sse("content_block_stop", {"type": "content_block_stop", "index": 0}))
        if tool is not None:
            events += [
                sse(
                    "content_block_start",
                    {
                        "type": "content_block_start",
                        "index": 1,
                        "content_block": {"type": "tool_use", "id": "toolu_fake_1", "name": tool["name"], "input": {}},
                    },
                ),
                sse(
                    "content_block_delta",
                    {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": '{"path": '}},
                ),
                sse(
                    "content_block_delta",
                    {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": '"README.md"}'}},
                ),
                sse("content_block_stop", {"type": "content_block_stop", "index": 1}),
            ]
        events += [
            sse(
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": "tool_use" if tool else "end_turn", "stop_sequence": None},
                    "usage": {"output_tokens": self.usage["output_tokens"]},
                },
            ),
            sse("message_stop", {"type": "message_stop"}),
        ]
        return Stream(events, delay=self.stream_delay, split=self.stream_split, stamp=self.stream_stamp)
