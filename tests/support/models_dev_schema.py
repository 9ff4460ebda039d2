"""The models.dev schema rules (packages/core/src/schema.ts), as a validator for what Kleis serves."""

from __future__ import annotations

import re
from typing import Any

DATE = re.compile(r"^\d{4}-\d{2}(-\d{2})?$")
MODALITIES = {"text", "audio", "image", "video", "pdf"}
COST_KEYS = {"input", "output", "reasoning", "cache_read", "cache_write", "input_audio", "output_audio", "per_minute", "context_over_200k"}
MODEL_REQUIRED = {
    "id",
    "name",
    "attachment",
    "reasoning",
    "tool_call",
    "release_date",
    "last_updated",
    "modalities",
    "open_weights",
    "limit",
}
MODEL_OPTIONAL = {
    "family",
    "interleaved",
    "structured_output",
    "temperature",
    "knowledge",
    "cost",
    "status",
    "experimental",
    "provider",
    "reasoning_options",
}
PROVIDER_KEYS = {"id", "env", "npm", "api", "name", "doc", "models"}


def model_errors(model: dict[str, Any]) -> list[str]:
    errors = [f"missing {k}" for k in MODEL_REQUIRED - set(model)]
    errors += [f"unknown field {k}" for k in set(model) - MODEL_REQUIRED - MODEL_OPTIONAL]
    if not isinstance(model.get("name"), str) or not model.get("name"):
        errors.append("name must be a non-empty string")
    for flag in ("attachment", "reasoning", "tool_call", "open_weights"):
        if flag in model and not isinstance(model[flag], bool):
            errors.append(f"{flag} must be a boolean")
    for date in ("release_date", "last_updated", "knowledge"):
        if date in model and not (isinstance(model[date], str) and DATE.match(model[date])):
            errors.append(f"{date} must be YYYY-MM or YYYY-MM-DD")
    modalities = model.get("modalities") or {}
    for side in ("input", "output"):
        if not isinstance(modalities.get(side), list) or not set(modalities[side]) <= MODALITIES:
            errors.append(f"modalities.{side} invalid")
    limit = model.get("limit") or {}
    for field in ("context", "output"):
        if not isinstance(limit.get(field), (int, float)) or limit[field] < 0:
            errors.append(f"limit.{field} must be a number >= 0")
    if set(limit) - {"context", "input", "output"}:
        errors.append("unknown limit field")
    cost = model.get("cost")
    if cost is not None:
        if not all(k in cost for k in ("input", "output")) or set(cost) - COST_KEYS:
            errors.append("cost invalid")
        if model.get("reasoning") is False and "reasoning" in cost:
            errors.append("cost.reasoning with reasoning false")
    provider = model.get("provider")
    if provider is not None and (
        set(provider) - {"npm", "api", "shape", "body", "headers"} or provider.get("shape", "responses") not in ("responses", "completions")
    ):
        errors.append("provider override invalid")
    if model.get("status") not in (None, "alpha", "beta", "deprecated"):
        errors.append("status invalid")
    return errors


def provider_errors(provider: dict[str, Any]) -> list[str]:
    errors = [f"unknown field {k}" for k in set(provider) - PROVIDER_KEYS]
    errors += [f"missing {k}" for k in PROVIDER_KEYS - {"api"} - set(provider)]
    if not provider.get("env") or not all(isinstance(e, str) for e in provider.get("env", [])):
        errors.append("env must be a non-empty list of names")
    npm, has_api = provider.get("npm"), "api" in provider
    if npm in ("@ai-sdk/openai-compatible", "@openrouter/ai-sdk-provider") and not has_api:
        errors.append("api is required for openai-compatible")
    if (
        npm
        not in ("@ai-sdk/openai-compatible", "@openrouter/ai-sdk-provider", "@ai-sdk/anthropic", "@ai-sdk/openai", "kiro-acp-ai-provider")
        and has_api
    ):
        errors.append("api is forbidden for this npm package")
    for key, model in (provider.get("models") or {}).items():
        if model.get("id") != key:
            errors.append(f"model key {key} differs from its id")
        errors += [f"{key}: {e}" for e in model_errors(model)]
    return errors
