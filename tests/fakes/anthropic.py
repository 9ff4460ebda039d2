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
        self.thinking: tuple[str, ...] = ()  # a request with thinking on gets a thinking block of these pieces first
        self.check_thinking = False  # refuse thinking blocks it did not sign, and a tool turn without thinking
        self.signatures: set[str] = set()
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
        return self._thinking_rules(body) if self.check_thinking else None

    def _thinking_rules(self, body: dict[str, Any]) -> Reply | None:
        """Anthropic's: a thinking block goes back with the signature it came with (decolua/9router#2227), and with
        thinking on, the last assistant turn that calls a tool starts with its thinking (lbjlaq/Antigravity-Manager#139)."""
        messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
        for i, message in enumerate(messages):
            for j, block in enumerate(message.get("content") if isinstance(message.get("content"), list) else []):
                if isinstance(block, dict) and block.get("type") == "thinking" and block.get("signature") not in self.signatures:
                    return anthropic_error(
                        400, "invalid_request_error", f"messages.{i}.content.{j}: Invalid `signature` in `thinking` block"
                    )
        if (body.get("thinking") or {}).get("type") not in ("enabled", "adaptive"):
            return None
        last = next(((i, m) for i, m in reversed(list(enumerate(messages))) if m.get("role") == "assistant"), None)
        content = last[1].get("content") if last is not None else None
        if last is None or not isinstance(content, list) or not any(b.get("type") == "tool_use" for b in content if isinstance(b, dict)):
            return None
        if content[0].get("type") not in ("thinking", "redacted_thinking"):
            found = content[0].get("type")
            return anthropic_error(
                400,
                "invalid_request_error",
                f"messages.{last[0]}.content.0.type: Expected `thinking` or `redacted_thinking`, but found `{found}`. When `thinking` "
                "is enabled, a final `assistant` message must start with a thinking block.",
            )
        return None

    def _thinking_block(self, body: dict[str, Any]) -> dict[str, Any] | None:
        if not self.thinking or (body.get("thinking") or {}).get("type") not in ("enabled", "adaptive"):
            return None
        signature = f"ErUBfake{next(_ids)}"
        self.signatures.add(signature)
        return {"type": "thinking", "thinking": "".join(self.thinking), "signature": signature}

    def thinking_events(self, signature: str) -> list[bytes]:
        """The thinking block as block 0 of a stream: its pieces, then its whole signature just before its stop."""
        block = {"type": "thinking", "thinking": "", "signature": ""}
        events = [sse("content_block_start", {"type": "content_block_start", "index": 0, "content_block": block})]
        events += [
            sse("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": piece}})
            for piece in self.thinking
        ]
        signed = {"type": "signature_delta", "signature": signature}
        events.append(sse("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": signed}))
        return events + [sse("content_block_stop", {"type": "content_block_stop", "index": 0})]

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
        thinking = self._thinking_block(body)
        if not body.get("stream"):
            content: list[dict[str, Any]] = [thinking] if thinking else []
            content.append({"type": "text", "text": "".join(self.text_chunks)})
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
        ]
        first = 0
        if thinking is not None:
            first = 1
            events += self.thinking_events(thinking["signature"])
        text_start = {"type": "content_block_start", "index": first, "content_block": {"type": "text", "text": ""}}
        events += [sse("content_block_start", text_start), sse("ping", {"type": "ping"})]
        events += [
            sse("content_block_delta", {"type": "content_block_delta", "index": first, "delta": {"type": "text_delta", "text": piece}})
            for piece in self.text_chunks
        ]
        events.append(sse("content_block_stop", {"type": "content_block_stop", "index": first}))
        if tool is not None:
            events += [
                sse(
                    "content_block_start",
                    {
                        "type": "content_block_start",
                        "index": first + 1,
                        "content_block": {"type": "tool_use", "id": "toolu_fake_1", "name": tool["name"], "input": {}},
                    },
                ),
                sse(
                    "content_block_delta",
                    {"type": "content_block_delta", "index": first + 1, "delta": {"type": "input_json_delta", "partial_json": '{"path": '}},
                ),
                sse(
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": first + 1,
                        "delta": {"type": "input_json_delta", "partial_json": '"README.md"}'},
                    },
                ),
                sse("content_block_stop", {"type": "content_block_stop", "index": first + 1}),
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
