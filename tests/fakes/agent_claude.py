"""A Claude API that acts like a model driving an agent: one shell-tool call, then an answer quoting its output.

The plain fake answers every request that lists tools with a tool call, so a real agent would loop; this one ends
the turn once the tool's result comes back, which makes a whole agent turn (tool call, tool run, answer) testable.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from tests.fakes.base import Recorded, Reply, Stream, sse
from tests.fakes.claude import FakeClaudeAPI

SHELL_TOOLS = ("Bash", "bash", "mcp_Exec_command", "mcp_Shell")  # Claude Code's, OpenCode's, and Codex CLI's (as Kleis names them)
COMMAND = "echo kleis-roundtrip"


def tool_results(body: dict[str, Any]) -> list[dict[str, Any]]:
    last = (body.get("messages") or [{}])[-1]
    content = last.get("content")
    return [part for part in content if isinstance(part, dict) and part.get("type") == "tool_result"] if isinstance(content, list) else []


def parts_text(content: Any) -> str:
    """A tool's output as the agents send it back: a string, or a list of text parts."""
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return str(content or "")


class AgentClaude(FakeClaudeAPI):
    def messages(self, request: Recorded) -> Reply | Stream:
        body = request.json if isinstance(request.json, dict) else {}
        results = tool_results(body)
        shell = next((tool for tool in body.get("tools") or [] if tool.get("name") in SHELL_TOOLS), None)
        if results or shell is None or not body.get("stream"):
            self.text_chunks = ["Tool said: ", parts_text(results[0].get("content")).strip()] if results else ["Hello from fake Claude"]
            plain = {key: value for key, value in body.items() if key != "tools"}
            return super().messages(dataclasses.replace(request, body=json.dumps(plain).encode()))
        refusal = self._check(request)
        if refusal is not None:
            return refusal
        usage = {"input_tokens": 12, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "output_tokens": 1}
        arguments = json.dumps(
            {"cmd": COMMAND}
            if shell["name"] == "mcp_Exec_command"
            else {"command": COMMAND.split()}
            if shell["name"] == "mcp_Shell"
            else {"command": COMMAND, "description": "print a marker"}
        )
        thinking = self._thinking_block(body)  # the model thinks before it calls, when asked to
        at = 1 if thinking else 0
        events = [
            sse(
                "message_start",
                {
                    "type": "message_start",
                    "message": {
                        "id": "msg_tool",
                        "type": "message",
                        "role": "assistant",
                        "model": body.get("model", ""),
                        "content": [],
                        "stop_reason": None,
                        "stop_sequence": None,
                        "usage": usage,
                    },
                },
            ),
            sse(
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": at,
                    "content_block": {"type": "tool_use", "id": "toolu_shell_1", "name": shell["name"], "input": {}},
                },
            ),
            sse(
                "content_block_delta",
                {"type": "content_block_delta", "index": at, "delta": {"type": "input_json_delta", "partial_json": arguments[:20]}},
            ),
            sse(
                "content_block_delta",
                {"type": "content_block_delta", "index": at, "delta": {"type": "input_json_delta", "partial_json": arguments[20:]}},
            ),
            sse("content_block_stop", {"type": "content_block_stop", "index": at}),
            sse(
                "message_delta",
                {"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": None}, "usage": {"output_tokens": 9}},
            ),
            sse("message_stop", {"type": "message_stop"}),
        ]
        if thinking is not None:
            events[1:1] = self.thinking_events(thinking["signature"])
        return Stream(events)
