"""The ChatGPT Codex backend acting like a model driving Codex CLI: one `exec_command` call, then an answer quoting
the command's output (the agent's turn ends instead of looping on tool calls)."""

from __future__ import annotations

import itertools
import json
from typing import Any

from tests.fakes.agent_claude import COMMAND, parts_text
from tests.fakes.base import sse
from tests.fakes.codex import FakeCodex

SHELL_TOOL = "exec_command"
CALL_ID = "call_shell_1"


def call_outputs(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [item for item in body.get("input") or [] if isinstance(item, dict) and item.get("type") == "function_call_output"]


class AgentCodex(FakeCodex):
    def events(self, body: dict[str, Any], account: str = "") -> list[bytes]:
        outputs = [item for item in call_outputs(body) if item.get("call_id") == CALL_ID]
        names = {tool.get("name") for tool in body.get("tools") or [] if tool.get("type") == "function"}
        # Codex CLI's shell tool, or Claude Code's (translated: Claude Code on a Codex model through Kleis)
        shell, arguments = (SHELL_TOOL, {"cmd": COMMAND}) if SHELL_TOOL in names else ("Bash", {"command": COMMAND})
        if outputs or shell not in names:
            lines = parts_text(outputs[-1].get("output")).strip().splitlines() if outputs else []
            self.text_chunks = ["Tool said: ", lines[-1] if lines else ""] if outputs else ["Hi", " there"]  # the output's last line
            return super().events(body, account)
        seq = itertools.count()

        def event(kind: str, **fields: Any) -> bytes:
            return sse(kind, {"type": kind, "sequence_number": next(seq), **fields})

        call = {
            "type": "function_call",
            "id": "fc_shell_1",
            "call_id": CALL_ID,
            "name": shell,
            "arguments": json.dumps(arguments),
            "status": "completed",
        }
        reasoning, items = [], [call]
        if self.plan.reasoning:  # the model reasons before it calls: the next turn must bring its blob back
            reasoning, item = self.reasoning_events(event, account)
            items = [item, call]
        return [
            event("response.created", response=self.response_object(body, "resp_shell", "in_progress", [], None)),
            *reasoning,
            event("response.output_item.added", output_index=0, item=dict(call, arguments="", status="in_progress")),
            event("response.function_call_arguments.delta", item_id=call["id"], output_index=0, delta=call["arguments"][:10]),
            event("response.function_call_arguments.delta", item_id=call["id"], output_index=0, delta=call["arguments"][10:]),
            event("response.function_call_arguments.done", item_id=call["id"], output_index=0, arguments=call["arguments"]),
            event("response.output_item.done", output_index=0, item=call),
            event("response.completed", response=self.response_object(body, "resp_shell", "completed", items, dict(self.usage))),
        ]
