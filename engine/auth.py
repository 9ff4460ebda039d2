"""Client key checks: who is calling (401) and whether their key covers this provider and model (403)."""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping

from core.client_errors import Refusal
from store.keys import KEY_PREFIX, KeyRecord, verify


def presented_key(headers: Mapping[str, str]) -> str | None:
    """The key from `Authorization: Bearer kl_…` or `x-api-key: kl_…` (the Kleis key wins if both are set)."""
    candidates = []
    authorization = headers.get("authorization", "")
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        candidates.append(value.strip())
    if headers.get("x-api-key", "").strip():
        candidates.append(headers["x-api-key"].strip())
    for candidate in candidates:
        if candidate.startswith(KEY_PREFIX):
            return candidate
    return candidates[0] if candidates else None


def authenticate(headers: Mapping[str, str], records: Mapping[str, KeyRecord], now: float | None = None) -> KeyRecord:
    key = presented_key(headers)
    if key is None:
        raise Refusal(401, "missing Kleis key: send it as 'Authorization: Bearer kl_…' or 'x-api-key: kl_…'", code="missing_api_key")
    if not key.startswith(KEY_PREFIX):
        raise Refusal(401, "not a Kleis key: Kleis accepts only its own kl_… keys", code="invalid_api_key")
    record = verify(key, records)
    if record is None:
        raise Refusal(401, "unknown Kleis key", code="invalid_api_key")
    refusal = record.refusal(time.time() if now is None else now)
    if refusal:
        raise Refusal(401, refusal, code="invalid_api_key")
    return record


def authorize(record: KeyRecord, provider: str, model_as_named: str, upstream_model: str, providers: Collection[str] = ()) -> None:
    """403 unless the key covers the provider that will serve the request and the model as sent to it."""
    if not record.allows_provider(provider):
        raise Refusal(403, f"this Kleis key may not use the {provider} provider", code="provider_not_allowed")
    if not record.allows_model(provider, upstream_model, providers):
        raise Refusal(
            403,
            f"this Kleis key may not use the model {model_as_named!r} (served by {provider} as {upstream_model!r})",
            code="model_not_allowed",
        )
