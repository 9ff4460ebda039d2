"""The request Claude's OAuth API accepts: URL with ?beta=true, Bearer auth, betas, Claude Code identity, tool names."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from core.config import Config
from providers.base import ForwardRequest, Upstream
from providers.claude.tools import ToolNames, rename_request_tools

ANTHROPIC_VERSION = "2023-06-01"
OAUTH_BETA = "oauth-2025-04-20"
REQUIRED_BETAS = ("claude-code-20250219", OAUTH_BETA, "interleaved-thinking-2025-05-14")
CLAUDE_CODE_UA_PREFIX = "claude-cli/"
IDENTITY_CLI = "You are Claude Code, Anthropic's official CLI for Claude."
IDENTITY_AGENT_SDK = "You are a Claude agent, built on Anthropic's Claude Agent SDK."
IDENTITIES = (IDENTITY_CLI, IDENTITY_AGENT_SDK)
BILLING_HEADER_PREFIX = "x-anthropic-billing-header:"

# OpenCode prompt text Anthropic's checks react to (AA-exm, 2026-04): whole paragraphs dropped, phrases replaced.
DROPPED_PARAGRAPH_MARKERS = ("You are OpenCode", "github.com/anomalyco/opencode", "opencode.ai/docs")
PHRASE_REPLACEMENTS = (
    ("if OpenCode honestly", "if the assistant honestly"),
    ("Here is some useful information about the environment you are running in:", "Environment context you are running in:"),
)
_BLANK_LINE = re.compile(r"\n[ \t]*\n")


def build_upstream(request: ForwardRequest, config: Config) -> Upstream:
    body = request.body
    body["model"] = request.model
    user_agent = next((value for name, value in request.headers.items() if name.lower() == "user-agent"), "")
    names = ToolNames() if is_claude_code_request(user_agent, body) else rewrite_body(body)
    return Upstream(
        url=upstream_url(config.claude_api_base, request.path, request.query),
        headers=upstream_headers(request.headers, request.token_ref, config),
        body=body,
        drop_headers=("x-api-key", "api-key"),
        state=names,
    )


def is_claude_code_request(user_agent: str, body: dict[str, Any]) -> bool:
    """Claude Code itself (its user-agent and its own identity or billing block): its body goes upstream as it is,
    tool names included (it has tools, such as Agent or ToolSearch, that no fixed list keeps up with)."""
    if not is_claude_code(user_agent):
        return False
    blocks = system_blocks(body.get("system"))
    return blocks is not None and carries_identity(blocks)


def rewrite_body(body: dict[str, Any]) -> ToolNames:
    """System identity and sanitising, then tool names, in place. Returns the request's ToolNames."""
    apply_system_rules(body)
    return rename_request_tools(body)


# -- URL and headers ---------------------------------------------------------------------------


def upstream_url(api_base: str, path: str, query: str) -> str:
    """The API's path with `beta=true`; other query parameters kept as the client wrote them."""
    parts = [part for part in query.split("&") if part] if query else []
    beta = [i for i, part in enumerate(parts) if part == "beta" or part.startswith("beta=")]
    if beta:
        for index in beta:
            parts[index] = "beta=true"
    else:
        parts.append("beta=true")
    return f"{api_base}{path}?{'&'.join(parts)}"


def merged_betas(*groups: Iterable[str]) -> list[str]:
    seen: dict[str, None] = {}
    for group in groups:
        for beta in group:
            beta = beta.strip()
            if beta:
                seen.setdefault(beta, None)
    return list(seen)


def upstream_headers(client_headers: Mapping[str, str], token_ref: str, config: Config) -> dict[str, str]:
    """Headers set on top of the client's: auth, version, betas, and a Claude Code user-agent unless it is one."""
    lowered = {name.lower(): value for name, value in client_headers.items()}
    headers = {"authorization": f"Bearer {token_ref}"}
    if not lowered.get("anthropic-version"):
        headers["anthropic-version"] = ANTHROPIC_VERSION
    betas = merged_betas(REQUIRED_BETAS, config.claude_extra_betas.split(","), lowered.get("anthropic-beta", "").split(","))
    headers["anthropic-beta"] = ",".join(betas)
    if not is_claude_code(lowered.get("user-agent", "")):
        headers["user-agent"] = claude_code_user_agent(config.claude_code_version)
        headers["x-app"] = "cli"
    return headers


def claude_code_user_agent(version: str) -> str:
    return f"{CLAUDE_CODE_UA_PREFIX}{version} (external, cli)"


def is_claude_code(user_agent: str) -> bool:
    return user_agent.startswith(CLAUDE_CODE_UA_PREFIX)


# -- system prompt ------------------------------------------------------------------------------


def apply_system_rules(body: dict[str, Any]) -> None:
    """Sanitise OpenCode text, then make sure a Claude Code identity leads the system prompt."""
    blocks = system_blocks(body.get("system"))
    if blocks is None:
        return  # a shape the API rejects anyway: leave it for the API to say so
    sanitised, changed = sanitise_blocks(blocks)
    if carries_identity(sanitised):
        if changed:
            body["system"] = sanitised
        return
    body["system"] = [{"type": "text", "text": IDENTITY_CLI}, *sanitised]


def system_blocks(system: Any) -> list[Any] | None:
    """`system` as a list of blocks: absent, a string, one block, or a list of strings and blocks."""
    if system is None:
        return []
    if isinstance(system, str):
        return [{"type": "text", "text": system}] if system else []
    if isinstance(system, dict):
        return [system]
    if isinstance(system, list):
        return [{"type": "text", "text": item} if isinstance(item, str) else item for item in system]
    return None


def _text_of(block: Any) -> str | None:
    if isinstance(block, dict) and block.get("type") == "text" and isinstance(block.get("text"), str):
        return str(block["text"])
    return None


def carries_identity(blocks: list[Any]) -> bool:
    """A billing header first (Claude Code 2.1.x), or an identity as the first or second block."""
    texts = [(_text_of(block) or "").lstrip() for block in blocks[:2]]
    if texts and texts[0].startswith(BILLING_HEADER_PREFIX):
        return True
    return any(text.startswith(identity) for text in texts for identity in IDENTITIES)


def sanitise_blocks(blocks: list[Any]) -> tuple[list[Any], bool]:
    """Text blocks with OpenCode's self-descriptions removed; blocks left empty are dropped."""
    result: list[Any] = []
    changed = False
    for block in blocks:
        text = _text_of(block)
        cleaned = sanitise_text(text) if text is not None else None
        if text is None or cleaned == text:
            result.append(block)
            continue
        changed = True
        if cleaned:
            result.append({**block, "text": cleaned})
    return result, changed


def sanitise_text(text: str) -> str:
    """Drop paragraphs naming OpenCode and replace its giveaway phrases; text without them is returned as is."""
    if not any(marker in text for marker in DROPPED_PARAGRAPH_MARKERS) and not any(old in text for old, _ in PHRASE_REPLACEMENTS):
        return text
    paragraphs = [p for p in _BLANK_LINE.split(text) if not any(marker in p for marker in DROPPED_PARAGRAPH_MARKERS)]
    cleaned = "\n\n".join(paragraphs)
    for old, new in PHRASE_REPLACEMENTS:
        cleaned = cleaned.replace(old, new)
    return cleaned.strip()
