"""Fake OpenAI-style upstreams: Chat Completions and Responses (JSON and SSE, usage with cached tokens)."""

from __future__ import annotations

import itertools
import time
from typing import Any

from tests.fakes.base import FakeServer, Recorded, Reply, Stream, sse

_ids = itertools.count(1)


def openai_error(status: int, message: str, kind: str = "invalid_request_error", code: str | None = None) -> Reply:
    return Reply(status, {"error": {"message": message, "type": kind, "param": None, "code": code}})


class FakeOpenAI(FakeServer):
    """`{prefix}/chat/completions` and `{prefix}/responses`, each checking a bearer token."""

    def __init__(self, valid_tokens: set[str] | None = None, prefix: str = "/v1") -> None:
        super().__init__()
        self.valid_tokens = valid_tokens  # None: any bearer token is accepted
        self.chat_usage = {
            "prompt_tokens": 50,
            "completion_tokens": 9,
            "total_tokens": 59,
            "prompt_tokens_details": {"cached_tokens": 30},
            "completion_tokens_details": {"reasoning_tokens": 4},
        }
        self.responses_usage = {
            "input_tokens": 80,
            "input_tokens_details": {"cached_tokens": 64},
            "output_tokens": 15,
            "output_tokens_details": {"reasoning_tokens": 5},
            "total_tokens": 95,
        }
        self.text_chunks = ["Hi", " there"]
        self.chat_calls = False  # True: a chat request with tools whose last message is the user's gets a call to its first tool
        self.stream_delay = 0.0
        self.stream_split = 0
        self.validators: list[Any] = []
        self.route("POST", f"{prefix}/chat/completions", self.chat)
        self.route("POST", f"{prefix}/responses", self.responses)

    def _check(self, request: Recorded) -> Reply | None:
        if self.valid_tokens is not None:
            token = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
            if token not in self.valid_tokens:
                return openai_error(401, "invalid bearer token", "invalid_request_error", "invalid_api_key")
        if not isinstance(request.json, dict):
            return openai_error(400, "body must be a JSON object")
        for validate in self.validators:
            refusal = validate(request)
            if refusal is not None:
                return refusal
        return None

    # -- chat -------------------------------------------------------------------------------
    def chat(self, request: Recorded) -> Reply | Stream:
        refusal = self._check(request)
        if refusal is not None:
            return refusal
        body = request.json
        chat_id = f"chatcmpl-fake{next(_ids)}"
        created = int(time.time())
        text = "".join(self.text_chunks)
        call = self.chat_call(body)
        if not body.get("stream"):
            message: dict[str, Any] = {"role": "assistant", "content": text}
            if call is not None:
                message["tool_calls"] = [
                    {"id": call["id"], "type": "function", "function": {"name": call["name"], "arguments": call["arguments"]}}
                ]
            return Reply(
                200,
                {
                    "id": chat_id,
                    "object": "chat.completion",
                    "created": created,
                    "model": body["model"],
                    "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls" if call else "stop"}],
                    "usage": dict(self.chat_usage),
                },
            )

        def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
            return sse(
                None,
                {
                    "id": chat_id,
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": body["model"],
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
                },
            )

        events = [chunk({"role": "assistant", "content": ""})]
        events += [chunk({"content": piece}) for piece in self.text_chunks]
        if call is not None:  # the id, type and name first, then the arguments in two pieces
            first = {"index": 0, "id": call["id"], "type": "function", "function": {"name": call["name"], "arguments": ""}}
            events.append(chunk({"tool_calls": [first]}))
            half = len(call["arguments"]) // 2
            for piece in (call["arguments"][:half], call["arguments"][half:]):
                events.append(chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}))
        events.append(chunk({}, "tool_calls" if call else "stop"))
        if (body.get("stream_options") or {}).get("include_usage"):
            events.append(
                sse(
                    None,
                    {
                        "id": chat_id,
                        "object": "chat.completion.chunk",
                        "created": created,
                        "model": body["model"],
                        "choices": [],
                        "usage": dict(self.chat_usage),
                    },
                )
            )
        events.append(b"data: [DONE]\n\n")
        return Stream(events, delay=self.stream_delay, split=self.stream_split)

    def chat_call(self, body: dict[str, Any]) -> dict[str, str] | None:
        """The call a chat answer makes (chat_calls on): to the request's first tool, when the user spoke last."""
        tools, listed = body.get("tools") or [], body.get("messages") or []
        if not (self.chat_calls and tools and listed and listed[-1].get("role") == "user"):
            return None
        return {"id": f"call_fake{next(_ids)}", "name": tools[0]["function"]["name"], "arguments": '{"path": "src/app.py", "line": 3}'}

    # -- responses ----------------------------------------------------------------------------
    def response_object(self, body: dict[str, Any], response_id: str, status: str, output: list[Any], usage: Any) -> dict[str, Any]:
        return {
            "id": response_id,
            "object": "response",
            "created_at": int(time.time()),
            "status": status,
            "model": body.get("model"),
            "output": output,
            "usage": usage,
            "error": None,
            "incomplete_details": None,
            "instructions": body.get("instructions"),
            "tools": body.get("tools", []),
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "temperature": None,
            "top_p": None,
            "metadata": {},
            "text": {"format": {"type": "text"}},
        }

    def responses_events(self, body: dict[str, Any], empty_final_output: bool = False) -> list[bytes]:
        response_id = f"resp_fake{next(_ids)}"
        item_id = f"msg_fake{next(_ids)}"
        text = "".join(self.text_chunks)
        item = {
            "type": "message",
            "id": item_id,
            "status": "completed",
            "role": "assistant",
            "content": [{"type": "output_text", "text": text, "annotations": []}],
        }
        seq = itertools.count()
        events = [
            sse(
                "response.created",
                {
                    "type": "response.created",
                    "sequence_number": next(seq),
                    "response": self.response_object(body, response_id, "in_progress", [], None),
                },
            ),
            sse(
                "response.output_item.added",
                {
                    "type": "response.output_item.added",
                    "sequence_number": next(seq),
                    "output_index": 0,
                    "item": {**item, "status": "in_progress", "content": []},
                },
            ),
        ]
        events += [
            sse(
                "response.output_text.delta",
                {
                    "type": "response.output_text.delta",
                    "sequence_number": next(seq),
                    "item_id": item_id,
                    "output_index": 0,
                    "content_index": 0,
                    "delta": piece,
                },
            )
            for piece in self.text_chunks
        ]
        events.append(
            sse(
                "response.output_item.done",
                {"type": "response.output_item.done", "sequence_number": next(seq), "output_index": 0, "item": item},
            )
        )
        final_output = [] if empty_final_output else [item]
        events.append(
            sse(
                "response.completed",
                {
                    "type": "response.completed",
                    "sequence_number": next(seq),
                    "response": self.response_object(body, response_id, "completed", final_output, dict(self.responses_usage)),
                },
            )
        )
        return events

    def responses(self, request: Recorded) -> Reply | Stream:
        refusal = self._check(request)
        if refusal is not None:
            return refusal
        body = request.json
        if not body.get("stream"):
            text = "".join(self.text_chunks)
            item = {
                "type": "message",
                "id": f"msg_fake{next(_ids)}",
                "status": "completed",
                "role": "assistant",
                "content": [{"type": "output_text", "text": text, "annotations": []}],
            }
            return Reply(200, self.response_object(body, f"resp_fake{next(_ids)}", "completed", [item], dict(self.responses_usage)))
        return Stream(self.responses_events(body), delay=self.stream_delay, split=self.stream_split)
