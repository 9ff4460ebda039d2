"""Copilot request headers as pure functions: the client profile, X-Initiator, vision, and client headers to drop.

Two profiles, one per kind of token: VS Code with Copilot Chat for tokens from the exchange (VS Code's OAuth app),
and the app's own profile for direct-mode tokens (OpenCode's app: `User-Agent: opencode/<version>`, no editor
headers) — an OpenCode app token with VS Code's headers would be an identity no real client has.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from core.config import Config
from core.protocol import Protocol

COPILOT_INTEGRATION_ID = "vscode-chat"
# VS Code's agent mode sends `conversation-agent` on its requests (the turn's initiator is X-Initiator's business);
# Kleis's clients are coding agents. OpenCode sends `conversation-edits` (anomalyco/opencode plugin/github-copilot).
OPENAI_INTENT = "conversation-agent"
DIRECT_OPENAI_INTENT = "conversation-edits"
GITHUB_API_VERSION = "2025-04-01"  # sent to the GitHub API (token exchange), as copilot-api does; not the Copilot API's

# Anthropic betas Copilot's /v1/messages accepts: what VS Code sends there in 2026 (interleaved thinking, context
# management, advanced tool use); others are dropped.
ALLOWED_ANTHROPIC_BETAS = ("interleaved-thinking-2025-05-14", "context-management-2025-06-27", "advanced-tool-use-2025-11-20")

# OpenCode moves images returned by a tool into a user message with one of these texts (two OpenCode
# versions); such a message is the agent's doing, not a user turn.
SYNTHETIC_ATTACHMENT_TEXTS = ("Attached image(s) from tool result:", "Attached media from tool result:")

# Client headers that never reach Copilot: the caller's credentials, SDK fingerprints that would contradict the
# editor profile, and the headers Kleis decides itself (a client cannot choose its own billing class).
DROPPED_CLIENT_HEADERS = (
    "authorization",
    "x-api-key",
    "api-key",
    "proxy-authorization",
    "cookie",
    "openai-organization",
    "openai-project",
    "anthropic-beta",
    "x-initiator",
    "copilot-vision-request",
    "openai-intent",
    "copilot-integration-id",
    "editor-version",
    "editor-plugin-version",
    "user-agent",
    "x-github-api-version",
)
DROPPED_CLIENT_PREFIXES = ("x-stainless-",)


def plugin_version(config: Config) -> str:
    """'0.35.0' from the Editor-Plugin-Version 'copilot-chat/0.35.0'."""
    return config.copilot_plugin_version.rpartition("/")[2] or config.copilot_plugin_version


def editor_headers(config: Config) -> dict[str, str]:
    """The VS Code profile: VS Code with Copilot Chat, versions from the configuration."""
    return {
        "Editor-Version": config.copilot_editor_version,
        "Editor-Plugin-Version": config.copilot_plugin_version,
        "Copilot-Integration-Id": COPILOT_INTEGRATION_ID,
        "User-Agent": f"GitHubCopilotChat/{plugin_version(config)}",
    }


def profile_headers(config: Config, direct: bool) -> dict[str, str]:
    """The client profile for a Copilot API call: VS Code's for exchanged tokens, the direct app's for direct tokens;
    both with the Copilot API version (OpenCode sends the one VS Code does, anomalyco/opencode#47108)."""
    own = {"User-Agent": config.copilot_direct_user_agent} if direct else editor_headers(config)
    return {**own, "X-GitHub-Api-Version": config.copilot_api_version}


def _parts(content: Any) -> list[dict[str, Any]]:
    return [part for part in content if isinstance(part, dict)] if isinstance(content, list) else []


INSTRUCTION_ROLES = ("system", "developer")


def _last(items: Any) -> Any:
    """The last message of the conversation proper: a `system` or `developer` message after it is an instruction the
    client added (Aider ends every request with a reminder), not the turn's author."""
    if not isinstance(items, list):
        return None
    return next((item for item in reversed(items) if not (isinstance(item, dict) and item.get("role") in INSTRUCTION_ROLES)), None)


def is_synthetic_attachment(message: Any) -> bool:
    """A user message OpenCode made to carry a tool's images (see SYNTHETIC_ATTACHMENT_TEXTS)."""
    if not isinstance(message, dict) or message.get("role") != "user":
        return False
    content = message.get("content")
    if isinstance(content, str):
        return content.strip() in SYNTHETIC_ATTACHMENT_TEXTS
    return any(
        part.get("type") in ("text", "input_text") and str(part.get("text", "")).strip() in SYNTHETIC_ATTACHMENT_TEXTS
        for part in _parts(content)
    )


def is_user_turn(protocol: Protocol, body: Mapping[str, Any]) -> bool:
    """Whether the request answers a turn a person wrote (X-Initiator: user) rather than the agent's own loop."""
    if protocol is Protocol.CHAT:
        last = _last(body.get("messages"))
        return isinstance(last, dict) and last.get("role") == "user" and not is_synthetic_attachment(last)
    if protocol is Protocol.RESPONSES:
        given = body.get("input")
        if isinstance(given, str):
            return True  # a plain string input is the user's message
        last = _last(given)
        return (
            isinstance(last, dict)
            and last.get("role") == "user"
            and last.get("type", "message") == "message"
            and not is_synthetic_attachment(last)
        )
    last = _last(body.get("messages"))
    if not isinstance(last, dict) or last.get("role") != "user" or is_synthetic_attachment(last):
        return False
    content = last.get("content")
    if isinstance(content, str):
        return True  # one text part
    return any(part.get("type") != "tool_result" for part in _parts(content))


def initiator(protocol: Protocol, body: Mapping[str, Any]) -> str:
    return "user" if is_user_turn(protocol, body) else "agent"


def has_image(protocol: Protocol, body: Mapping[str, Any]) -> bool:
    """Whether any message carries an image (Copilot-Vision-Request: true)."""
    if protocol is Protocol.CHAT:
        return any(
            part.get("type") == "image_url"
            for message in body.get("messages") or []
            if isinstance(message, dict)
            for part in _parts(message.get("content"))
        )
    if protocol is Protocol.RESPONSES:
        given = body.get("input")
        items = [item for item in given if isinstance(item, dict)] if isinstance(given, list) else []
        return any(
            item.get("type") == "input_image"
            or any(part.get("type") == "input_image" for part in _parts(item.get("content")) + _parts(item.get("output")))
            for item in items
        )
    return any(
        part.get("type") == "image"
        or (part.get("type") == "tool_result" and any(inner.get("type") == "image" for inner in _parts(part.get("content"))))
        for message in body.get("messages") or []
        if isinstance(message, dict)
        for part in _parts(message.get("content"))
    )


def allowed_betas(client_value: str | None) -> str | None:
    """The client's anthropic-beta values Copilot accepts, or None when none remain."""
    wanted = [value.strip() for value in (client_value or "").split(",") if value.strip()]
    kept = [value for value in wanted if value in ALLOWED_ANTHROPIC_BETAS]
    return ",".join(dict.fromkeys(kept)) or None


def request_headers(
    config: Config, protocol: Protocol, body: Mapping[str, Any], token_ref: str, client: Mapping[str, str], direct: bool = False
) -> dict[str, str]:
    """Every header Kleis sets on a request to the Copilot API."""
    headers = {
        "Authorization": f"Bearer {token_ref}",
        **profile_headers(config, direct),
        "Openai-Intent": DIRECT_OPENAI_INTENT if direct else OPENAI_INTENT,
        "X-Initiator": initiator(protocol, body),
    }
    if has_image(protocol, body):
        headers["Copilot-Vision-Request"] = "true"
    if protocol is Protocol.MESSAGES:
        betas = allowed_betas(next((v for k, v in client.items() if k.lower() == "anthropic-beta"), None))
        if betas:
            headers["anthropic-beta"] = betas
    return headers


def dropped_headers(client_names: Iterable[str]) -> tuple[str, ...]:
    """Lower-cased names of the client's headers that must not travel to Copilot (those Kleis sets are replaced)."""
    names = {name.lower() for name in client_names}
    return tuple(sorted(n for n in names if n in DROPPED_CLIENT_HEADERS or n.startswith(DROPPED_CLIENT_PREFIXES)))
