"""Tool names as Claude Code sends them, with a per-request map back to the caller's names."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

# Claude Code's own tool names (cchistory prompts 2.1.11, as PI uses them).
CLAUDE_CODE_TOOLS = (
    "Read",
    "Write",
    "Edit",
    "Bash",
    "Grep",
    "Glob",
    "AskUserQuestion",
    "EnterPlanMode",
    "ExitPlanMode",
    "KillShell",
    "NotebookEdit",
    "Skill",
    "Task",
    "TaskOutput",
    "TodoWrite",
    "WebFetch",
    "WebSearch",
)
MCP_PREFIX = "mcp_"
MAX_TOOL_NAME = 64  # the API's limit: [a-zA-Z0-9_-]{1,64}
_CANONICAL = {name.lower(): name for name in CLAUDE_CODE_TOOLS}
_HASH_LENGTH = 8


def upstream_name(name: str) -> str:
    """Canonical Claude Code casing, `mcp_` names as they are, anything else `mcp_` + Capitalised; at most 64 chars."""
    canonical = _CANONICAL.get(name.lower())
    if canonical is not None:
        return canonical
    if name.startswith(MCP_PREFIX):
        candidate = name
    else:
        candidate = MCP_PREFIX + name[:1].upper() + name[1:]
    return candidate if len(candidate) <= MAX_TOOL_NAME else shortened(candidate, name)


def shortened(candidate: str, original: str) -> str:
    """A stable name within the limit: the candidate's head and a hash of the caller's name."""
    digest = hashlib.sha256(original.encode("utf-8")).hexdigest()[:_HASH_LENGTH]
    return f"{candidate[: MAX_TOOL_NAME - _HASH_LENGTH - 1]}_{digest}"


def is_typed_tool(tool: dict[str, Any]) -> bool:
    """Anthropic-defined tools (web_search_…, bash_…, text_editor_…, computer_…) carry a type; custom ones may say 'custom'."""
    kind = tool.get("type")
    return isinstance(kind, str) and kind != "custom"


class ToolNames:
    """The caller's tool names and the names sent upstream, both ways, for one request."""

    def __init__(self, typed: set[str] | None = None) -> None:
        self.typed = typed or set()  # names of typed tools: never renamed, not even in history
        self.to_upstream: dict[str, str] = {}
        self.to_caller: dict[str, str] = {}

    def forward(self, name: str) -> str:
        if name in self.typed:
            return name
        known = self.to_upstream.get(name)
        if known is not None:
            return known
        sent = upstream_name(name)
        if sent in self.to_caller or sent in self.typed:  # two caller names would meet (e.g. `read` and `Read`)
            sent = shortened(MCP_PREFIX + name[:1].upper() + name[1:], name)
        self.to_upstream[name] = sent
        self.to_caller[sent] = name
        return sent

    def restore(self, name: str) -> str:
        return self.to_caller.get(name, name)

    @property
    def renamed(self) -> dict[str, str]:
        """Upstream name → caller's name, only where they differ (what responses need)."""
        return {sent: original for sent, original in self.to_caller.items() if sent != original}


def rename_request_tools(body: dict[str, Any], references: bool = True) -> ToolNames:
    """Rename tools[], tool_use (and tool_reference) blocks in history and tool_choice, in place. `references`
    False: the body holds no tool_reference block (its bytes do not name one), only tool_use blocks are looked at."""
    tools = [tool for tool in body.get("tools") or [] if isinstance(tool, dict)]
    names = ToolNames({tool["name"] for tool in tools if is_typed_tool(tool) and isinstance(tool.get("name"), str)})
    for tool in tools:
        if not is_typed_tool(tool) and isinstance(tool.get("name"), str):
            tool["name"] = names.forward(tool["name"])
    walk = _rename_blocks if references else _rename_tool_uses
    for message in body.get("messages") or []:
        if isinstance(message, dict) and isinstance(message.get("content"), list):
            walk(message["content"], names.forward)
    choice = body.get("tool_choice")
    if isinstance(choice, dict) and choice.get("type") == "tool" and isinstance(choice.get("name"), str):
        choice["name"] = names.forward(choice["name"])
    return names


def restore_blocks(blocks: list[Any], names: ToolNames) -> bool:
    """Give tool_use / tool_reference blocks of a response back the caller's names. True when any changed."""
    return _rename_blocks(blocks, names.restore)


def _rename_blocks(blocks: list[Any], rename: Callable[[str], str]) -> bool:
    changed = False
    for block in blocks:
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind == "tool_use" and isinstance(block.get("name"), str):
            new = rename(block["name"])
            changed |= new != block["name"]
            block["name"] = new
        elif kind == "tool_reference" and isinstance(block.get("tool_name"), str):
            new = rename(block["tool_name"])
            changed |= new != block["tool_name"]
            block["tool_name"] = new
        changed |= _rename_nested(block, rename)
    return changed


def _rename_tool_uses(blocks: list[Any], rename: Callable[[str], str]) -> bool:
    """_rename_blocks for a conversation without tool_reference blocks: a third of its time on an agent's history."""
    changed = False
    for block in blocks:
        if isinstance(block, dict) and block.get("type") == "tool_use":
            name = block.get("name")
            if isinstance(name, str):
                block["name"] = new = rename(name)
                changed |= new != name
    return changed


def _rename_nested(block: dict[str, Any], rename: Callable[[str], str]) -> bool:
    """tool_reference blocks also sit inside tool results (`content` lists, or `content.tool_references`)."""
    changed = False
    content = block.get("content")
    if isinstance(content, list):
        changed |= _rename_blocks(content, rename)
    elif isinstance(content, dict) and isinstance(content.get("tool_references"), list):
        changed |= _rename_blocks(content["tool_references"], rename)
    return changed
