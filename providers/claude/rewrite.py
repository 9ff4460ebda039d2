"""The request Claude's OAuth API accepts: URL with ?beta=true, Bearer auth, betas, Claude Code identity, tool names.

What Kleis does not do: forge Claude Code's billing attestation (the `x-anthropic-billing-header … cch=` block of
real Claude Code requests), or move, hide or rewrite the caller's system prompt to get past Anthropic's
classification of third-party traffic. Other clients are presented with Claude Code's user-agent, identity block and
tool names; their own system prompt follows the identity block as they wrote it, so Anthropic sees them for what
they are and may bill them to the account's extra usage (providers.claude.response says so to the client).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from core import versions
from core.config import Config
from providers.base import ForwardRequest, Upstream
from providers.claude.tools import ToolNames, rename_request_tools
from providers.protocols import carry
from providers.protocols.messages import thinking_allowed

ANTHROPIC_VERSION = "2023-06-01"
OAUTH_BETA = "oauth-2025-04-20"
REQUIRED_BETAS = ("claude-code-20250219", OAUTH_BETA, "interleaved-thinking-2025-05-14")
CLAUDE_CODE_UA_PREFIX = "claude-cli/"
IDENTITY_CLI = "You are Claude Code, Anthropic's official CLI for Claude."
IDENTITY_AGENT_SDK = "You are a Claude agent, built on Anthropic's Claude Agent SDK."
IDENTITIES = (IDENTITY_CLI, IDENTITY_AGENT_SDK)
BILLING_HEADER_PREFIX = "x-anthropic-billing-header:"


@dataclasses.dataclass(frozen=True)
class ClaudeState:
    """Per-request state (Upstream.state): tool names to restore, and who the request said it was."""

    names: ToolNames
    claude_code: bool  # real Claude Code (its user-agent and its own identity or billing block): sent unchanged
    own_user_agent: bool  # the client's claude-cli user-agent went upstream (Kleis did not present its version)
    version: str  # the Claude Code version the request carried upstream
    account_id: int = 0


def build_upstream(request: ForwardRequest, config: Config, version: str) -> Upstream:
    """The upstream request; `version` is the Claude Code version Kleis presents for a client that is not Claude Code."""
    body = request.body
    user_agent = user_agent_of(request.headers)
    claude_code = is_claude_code_request(user_agent, body)
    # a body Kleis carried reasoning into is never sent as it came (the pipeline looked, where it would be)
    as_sent = sent_as_is(claude_code, body, request.model) and not (
        request.carried if request.carried is not None else carry.tagged(request.raw_body)
    )
    body["model"] = request.model
    if not as_sent:
        drop_carried_thinking(body)
    names = ToolNames() if claude_code else rewrite_body(body, may_name_references(request.raw_body))
    own = is_claude_code(user_agent)
    return Upstream(
        raw_body=request.raw_body if as_sent else b"",  # Claude Code's own body: its bytes go as they are
        url=upstream_url(config.claude_api_base, request.path, request.query),
        headers=upstream_headers(request.headers, request.token_ref, config, version),
        body=body,
        drop_headers=("x-api-key", "api-key"),
        state=ClaudeState(names, claude_code, own, (user_agent_version(user_agent) or "") if own else version, request.account.id),
    )


def user_agent_of(headers: Mapping[str, str]) -> str:
    return next((value for name, value in headers.items() if name.lower() == "user-agent"), "")


def sent_as_is(claude_code: bool, body: Mapping[str, Any], model: str) -> bool:
    """Whether the client's bytes go upstream as they are: real Claude Code (`is_claude_code_request`) asking for the
    model Kleis sends. Needs only the body's small members (its model and system blocks)."""
    return claude_code and body.get("model") == model


def is_claude_code_request(user_agent: str, body: Mapping[str, Any]) -> bool:
    """Claude Code itself (its user-agent and its own identity or billing block): its body goes upstream as it is,
    tool names included (it has tools, such as Agent or ToolSearch, that no fixed list keeps up with)."""
    if not is_claude_code(user_agent):
        return False
    blocks = system_blocks(body.get("system"))
    return blocks is not None and carries_identity(blocks)


def drop_carried_thinking(body: dict[str, Any]) -> None:
    """A conversation that moved here from another provider: the thinking blocks Kleis made to carry that provider's
    reasoning (providers.protocols.carry) are dropped — Anthropic refuses a signature it did not make. When the last
    assistant turn calls a tool and so lost its thinking, thinking is off for this request (Anthropic refuses such a
    turn with it on), and with it the clearing of old thinking Claude Code asks for (refused without thinking)."""
    dropped = False
    for message in body.get("messages") or []:
        content = message.get("content") if isinstance(message, dict) and message.get("role") == "assistant" else None
        if not isinstance(content, list):
            continue
        kept = [b for b in content if not (isinstance(b, dict) and b.get("type") == "thinking" and carry.is_tagged(b.get("signature")))]
        if len(kept) != len(content):
            message["content"], dropped = kept, True
    if dropped and not thinking_allowed(body.get("messages") or []):
        body.pop("thinking", None)
        edits = body.get("context_management", {}).get("edits") if isinstance(body.get("context_management"), dict) else None
        if isinstance(edits, list):
            kept_edits = [e for e in edits if not (isinstance(e, dict) and str(e.get("type", "")).startswith("clear_thinking"))]
            if kept_edits:
                body["context_management"]["edits"] = kept_edits
            else:
                body.pop("context_management")


def may_name_references(raw_body: bytes) -> bool:
    """Whether a body may hold tool_reference blocks: one whose bytes do not name them holds none (short of a `\\u`
    escape inside the word, which no client writes), and only its tool_use blocks are looked at. The search costs
    0.3 ms a megabyte: only a body Kleis rewrites pays it."""
    return not raw_body or b"tool_reference" in raw_body


def rewrite_body(body: dict[str, Any], references: bool = True) -> ToolNames:
    """The Claude Code identity block, then tool names, in place. Returns the request's ToolNames."""
    apply_system_rules(body)
    return rename_request_tools(body, references)


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


def upstream_headers(client_headers: Mapping[str, str], token_ref: str, config: Config, version: str) -> dict[str, str]:
    """Headers set on top of the client's: auth, version, betas, and a Claude Code user-agent unless it is one."""
    lowered = {name.lower(): value for name, value in client_headers.items()}
    headers = {"authorization": f"Bearer {token_ref}"}
    if not lowered.get("anthropic-version"):
        headers["anthropic-version"] = ANTHROPIC_VERSION
    betas = merged_betas(REQUIRED_BETAS, config.claude_extra_betas.split(","), lowered.get("anthropic-beta", "").split(","))
    headers["anthropic-beta"] = ",".join(betas)
    if not is_claude_code(lowered.get("user-agent", "")):
        headers["user-agent"] = claude_code_user_agent(version)
        headers["x-app"] = "cli"
    return headers


def claude_code_user_agent(version: str) -> str:
    return f"{CLAUDE_CODE_UA_PREFIX}{version} (external, cli)"


def is_claude_code(user_agent: str) -> bool:
    return user_agent.startswith(CLAUDE_CODE_UA_PREFIX)


def user_agent_version(user_agent: str) -> str | None:
    """'2.1.328' from 'claude-cli/2.1.328 (external, cli)'."""
    named = user_agent.removeprefix(CLAUDE_CODE_UA_PREFIX).split(" ", 1)[0]
    return named if is_claude_code(user_agent) and versions.is_version(named) else None


# -- system prompt ------------------------------------------------------------------------------


def apply_system_rules(body: dict[str, Any]) -> None:
    """A Claude Code identity leads the system prompt; the caller's own blocks follow exactly as it sent them."""
    blocks = system_blocks(body.get("system"))
    if blocks is None or carries_identity(blocks):
        return  # a shape the API rejects anyway is left for the API to say so; a present identity is not repeated
    body["system"] = [{"type": "text", "text": IDENTITY_CLI}, *blocks]


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
