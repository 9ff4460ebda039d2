"""Request bodies for the Codex backend: the Responses shape it accepts, one small rule per requirement."""

from __future__ import annotations

import dataclasses
from typing import Any

from providers.protocols import carry

# Parameters the Codex backend rejects ("Unsupported parameter: …") or ignores; removed before forwarding.
# Sources: max_output_tokens is refused in many reports (2026-03 → 08); CPA removes the rest. PI still sends
# temperature, so whether it is refused is unconfirmed — removing it is the safe side. prompt_cache_options and
# context_management (Responses API fields of 2026 SDKs) are refused by the backend in reports of June–November 2026.
# Change this one list (or pass BodyRules(removed=…) to CodexProvider) when the backend changes.
REMOVED_PARAMETERS: tuple[str, ...] = (
    "max_output_tokens",
    "max_completion_tokens",
    "temperature",
    "top_p",
    "truncation",
    "user",
    "previous_response_id",
    "stream_options",
    "prompt_cache_retention",
    "safety_identifier",
    "generate",
    "prompt_cache_options",
    "context_management",
)
# Fields of an input item's content part the backend refuses (the same reports): `input[].content[].<field>`.
REMOVED_PART_FIELDS: tuple[str, ...] = ("prompt_cache_breakpoint",)


@dataclasses.dataclass(frozen=True)
class BodyRules:
    """What normalisation removes and adds; the defaults follow CLIProxyAPI's Codex executor (router-for-me/CLIProxyAPI,
    internal/runtime/executor, 2026-08) and pi-mono's Codex client (badlogic/pi-mono, packages/ai, 2026-03)."""

    removed: frozenset[str] = frozenset(REMOVED_PARAMETERS)
    kept_service_tiers: frozenset[str] = frozenset({"priority"})  # any other service_tier is removed
    required_include: tuple[str, ...] = ("reasoning.encrypted_content",)
    max_item_id_length: int = 64  # longer input item ids are dropped (CPA, 2026-07)
    removed_part_fields: frozenset[str] = frozenset(REMOVED_PART_FIELDS)


DEFAULT_RULES = BodyRules()


def text_message(role: str, text: str) -> dict[str, Any]:
    return {"type": "message", "role": role, "content": [{"type": "input_text", "text": text}]}


def instructions_text(value: Any) -> str:
    """`instructions` must be a string: absent or null becomes "", a list of text parts is joined."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        parts = []
        for part in value:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, dict) and isinstance(part.get("text"), str):
                parts.append(part["text"])
            elif isinstance(part, dict) and isinstance(part.get("content"), str):
                parts.append(part["content"])
        return "\n\n".join(parts)
    return ""


def input_list(value: Any) -> list[Any]:
    """`input` must be a list: a string becomes one user message, a single item a list of one, null empty."""
    if isinstance(value, list):
        return list(value)
    if isinstance(value, str):
        return [text_message("user", value)]
    if isinstance(value, dict):
        return [value]
    return []


def without_system_role(items: list[Any]) -> list[Any]:
    """The backend refuses role "system" items ("System messages are not allowed"); "developer" means the same."""
    return [dict(item, role="developer") if isinstance(item, dict) and item.get("role") == "system" else item for item in items]


def without_carried_reasoning(items: list[Any]) -> list[Any]:
    """A conversation that moved here from another provider: the reasoning items Kleis made to carry that provider's
    thinking (providers.protocols.carry) are dropped — the backend refuses a blob it did not make."""
    return [
        item
        for item in items
        if not (isinstance(item, dict) and item.get("type") == "reasoning" and carry.is_tagged(item.get("encrypted_content")))
    ]


def without_long_ids(items: list[Any], limit: int) -> list[Any]:
    return [
        {k: v for k, v in item.items() if k != "id"}
        if isinstance(item, dict) and isinstance(item.get("id"), str) and len(item["id"]) > limit
        else item
        for item in items
    ]


def without_part_fields(items: list[Any], fields: frozenset[str]) -> list[Any]:
    """Input items whose content parts lose the fields the backend refuses (items without them are kept as they are)."""

    def clean(item: Any) -> Any:
        content = item.get("content") if isinstance(item, dict) else None
        if not isinstance(content, list) or not any(isinstance(p, dict) and fields & p.keys() for p in content):
            return item
        parts = [{k: v for k, v in p.items() if k not in fields} if isinstance(p, dict) else p for p in content]
        return {**item, "content": parts}

    return [clean(item) for item in items] if fields else items


def with_include(value: Any, required: tuple[str, ...]) -> list[str]:
    """`include` keeps what the client asked for and gains the required values (encrypted reasoning, for stateless turns)."""
    include = [entry for entry in value if isinstance(entry, str)] if isinstance(value, list) else []
    return include + [entry for entry in required if entry not in include]


def remove_unsupported(body: dict[str, Any], rules: BodyRules) -> None:
    for name in rules.removed:
        body.pop(name, None)
    if "service_tier" in body and body["service_tier"] not in rules.kept_service_tiers:
        del body["service_tier"]
    tools = body.get("tools")
    if "parallel_tool_calls" in body and not (isinstance(tools, list) and tools):
        del body["parallel_tool_calls"]


# The content-part fields Kleis's own Responses writer writes (providers.protocols.responses): a body it wrote needs
# none of the item walks below unless the rules remove one of these.
WRITTEN_PART_FIELDS = frozenset({"type", "text", "image_url", "detail"})


def normalise_body(body: dict[str, Any], model: str, rules: BodyRules = DEFAULT_RULES, written: bool = False) -> dict[str, Any]:
    """A new body the Codex backend accepts: store off, always streaming, instructions and list input present.
    `written`: Kleis's Responses writer wrote the input (a translated request). Its items hold no id, no system role,
    no reasoning carried from another provider and no part field the rules remove, so the four walks over them —
    0.13 ms for 300 items — are skipped (tests/unit/test_translation_property.py holds the writer to that)."""
    result = dict(body)
    result["model"] = model
    result["store"] = False
    result["stream"] = True
    result["instructions"] = instructions_text(body.get("instructions"))
    items = input_list(body.get("input"))
    if not written or rules.removed_part_fields & WRITTEN_PART_FIELDS:
        items = without_long_ids(without_carried_reasoning(without_system_role(items)), rules.max_item_id_length)
        items = without_part_fields(items, rules.removed_part_fields)
    result["input"] = items
    result["include"] = with_include(body.get("include"), rules.required_include)
    remove_unsupported(result, rules)
    return result
