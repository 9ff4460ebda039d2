"""Which upstream response headers reach the client: an allowlist, so cookies and account identifiers stay behind.

An upstream's answer carries facts about the account that served it (`set-cookie`, `anthropic-organization-id`,
`openai-organization`, `openai-project`) and about the provider's infrastructure; a client needs none of them.
It keeps what SDKs and agents read: the body's framing and type, request ids (for support tickets), rate-limit
state and retry advice.
"""

from __future__ import annotations

from mitmproxy import http

ALLOWED = frozenset(
    {
        # framing and content (mitmproxy frames the client's copy from these)
        "content-type",
        "content-length",
        "content-encoding",
        "transfer-encoding",
        "connection",
        "cache-control",
        "date",
        # request ids
        "request-id",
        "x-request-id",
        "x-github-request-id",
        "x-oai-request-id",
        # retry advice
        "retry-after",
        "retry-after-ms",
        "x-should-retry",
    }
)
ALLOWED_PREFIXES = (
    "anthropic-ratelimit-",  # Anthropic's limits (requests, tokens, the subscription's unified window)
    "x-ratelimit-",  # OpenAI, GitHub
    "ratelimit-",  # the IETF RateLimit fields
    "x-codex-primary-",  # Codex's usage windows, which Codex CLI shows
    "x-codex-secondary-",
    "x-codex-credits-",
    "x-kleis-",  # Kleis's own
)


def allowed(name: str) -> bool:
    lowered = name.lower()
    return lowered in ALLOWED or lowered.startswith(ALLOWED_PREFIXES)


def filter_headers(headers: http.Headers) -> list[str]:
    """Drop every header the allowlist does not name, in place; the names dropped (for tests and debugging)."""
    dropped = [name for name in headers if not allowed(name)]
    for name in dropped:
        del headers[name]
    return dropped
