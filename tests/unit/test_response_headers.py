"""The upstream response header allowlist as a plain function."""

from __future__ import annotations

from mitmproxy import http

from addons.response_headers import allowed, filter_headers


def test_the_allowlist_keeps_framing_ids_and_limits_and_drops_the_rest() -> None:
    headers = http.Headers(
        [
            (b"Content-Type", b"application/json"),
            (b"Set-Cookie", b"a=1"),
            (b"set-cookie", b"b=2"),
            (b"Anthropic-Organization-Id", b"org"),
            (b"Request-Id", b"req_1"),
            (b"Anthropic-RateLimit-Tokens-Remaining", b"5"),
            (b"X-Codex-Primary-Used-Percent", b"3"),
            (b"X-Codex-Account-Id", b"acct"),
            (b"Retry-After", b"2"),
        ]
    )
    assert sorted(filter_headers(headers)) == ["Anthropic-Organization-Id", "Set-Cookie", "X-Codex-Account-Id"]
    assert [name.lower() for name in headers] == [
        "content-type",
        "request-id",
        "anthropic-ratelimit-tokens-remaining",
        "x-codex-primary-used-percent",
        "retry-after",
    ]
    assert allowed("x-kleis-upstream-timeout") and not allowed("openai-organization") and not allowed("server")
