"""Failover and adoption in the Kleis addon's response hook, under mitmproxy's taddons: an account-wide failure moves a
non-streaming request to the next account (its re-send answered in memory, httpx's MockTransport), a streaming one
gets a retryable answer, a lone account passes the provider's answer on; a refusal naming a value Kleis adopted is
sent once more, or answered with a retry for a stream. The same through real listeners: tests/e2e/test_failover.py,
tests/e2e/test_claude_drift.py."""

from __future__ import annotations

import json

import httpx

from addons.kleis import Kleis
from addons.services import Parts, Services
from core.config import Config
from core.enums import AccountStatus, SignalKind
from engine.usage_recorder import UsageRecorder
from providers.base import Signal
from providers.drift import Drift
from store.db import Store
from tests.support.addons import answered, client_flow, error_of, forwarded, run_hooks, seed

MESSAGES = {"model": "loop/m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
LIMITED = {"type": "error", "error": {"type": "rate_limit_error", "message": "limit reached"}}
ANSWER = {
    "type": "message",
    "role": "assistant",
    "content": [{"type": "text", "text": "ok"}],
    "usage": {"input_tokens": 1, "output_tokens": 1},
}


class Upstream:
    """What Kleis re-sends with httpx, answered in memory: each request's account and token recorded."""

    def __init__(self, status: int = 200, body: dict | None = None) -> None:
        self.status, self.body = status, body if body is not None else ANSWER
        self.seen: list[tuple[str, str]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append((request.headers["x-loop-account"], request.headers["authorization"]))
        assert json.loads(request.content)["model"] == "m"  # the body as the provider prepared it
        return httpx.Response(self.status, json=self.body, headers={"content-type": "application/json", "x-secret-upstream": "no"})


def two_accounts(store: Store) -> tuple[str, dict[int, str]]:
    key, first = seed(store, "acct-1")
    _, second = seed(store, "acct-2")
    return key, {first: "sk-loop-access-acct-1", second: "sk-loop-access-acct-2"}


def test_a_rate_limited_account_hands_a_non_streaming_request_to_the_next(store: Store, config: Config) -> None:
    key, tokens = two_accounts(store)
    upstream = Upstream()

    async def scenario(addon: Kleis, services: Services) -> None:
        flow = client_flow("POST", "/v1/messages", MESSAGES, authorization=f"Bearer {key}")
        await forwarded(addon, flow)
        ctx = addon._contexts[flow]
        assert ctx.upstream.account is not None
        first = ctx.upstream.account.id
        await answered(addon, flow, 429, LIMITED, **{"retry-after": "3600"})
        assert flow.response is not None
        [(other, token)] = upstream.seen
        assert int(other) != first and token == f"Bearer {tokens[int(other)]}"  # the other account, its own token
        assert flow.response.status_code == 200 and error_of(flow)["content"][0]["text"] == "ok"
        assert "x-secret-upstream" not in flow.response.headers  # a re-sent answer passes the same header allowlist
        assert ctx.upstream.retries == 1 and ctx.upstream.tried == [first, int(other)]
        cooled = services.follower.account(first)
        assert cooled is not None and cooled.status == AccountStatus.COOLING
        assert services.load.in_flight(first) == 0 and services.load.in_flight(int(other)) == 0  # slots given back

    run_hooks(store, config, scenario, Parts(health=True), upstream)


def test_a_streaming_request_gets_a_retryable_answer_and_nothing_is_re_sent(store: Store, config: Config) -> None:
    key, _ = two_accounts(store)
    upstream = Upstream()

    async def scenario(addon: Kleis, services: Services) -> None:
        flow = client_flow("POST", "/v1/messages", {**MESSAGES, "stream": True}, authorization=f"Bearer {key}")
        await forwarded(addon, flow)
        await answered(addon, flow, 529, {"type": "error", "error": {"type": "overloaded_error", "message": "busy"}})
        assert flow.response is not None and flow.response.status_code == 529
        assert flow.response.headers["x-should-retry"] == "true" and flow.response.headers["retry-after"] == "1"
        error = error_of(flow)["error"]
        assert error["type"] == "overloaded_error" and "retry: Kleis will use another account" in error["message"]
        assert upstream.seen == []

    run_hooks(store, config, scenario, Parts(health=True), upstream)


def test_a_lone_account_passes_the_providers_answer_on_in_the_callers_shape(store: Store, config: Config) -> None:
    key, _ = seed(store)
    upstream = Upstream()

    async def scenario(addon: Kleis, services: Services) -> None:
        flow = client_flow("POST", "/v1/chat/completions", {"model": "loop/m", "messages": []}, authorization=f"Bearer {key}")
        await forwarded(addon, flow)
        await answered(addon, flow, 503, b"upstream is down", content_type="text/plain")
        assert flow.response is not None and flow.response.status_code == 503
        assert error_of(flow)["error"]["message"] == "upstream error: upstream is down"  # OpenAI's shape for a Chat client
        assert upstream.seen == []

    run_hooks(store, config, scenario, Parts(health=True), upstream)


def adopted(provider: object) -> None:
    """The provider reads every refusal as naming a newer value that Kleis now presents (a drift to retry)."""
    drift = Drift(cause="test: version", setting="KLEIS_TEST_VERSION", hint="Kleis now presents version 9.", retry=True)
    provider.after_error = lambda upstream, signal, body: Signal(SignalKind.VERSION, "refused", drift=drift)  # type: ignore[attr-defined]


def test_a_refusal_naming_an_adopted_value_is_sent_once_more_on_the_same_account(store: Store, config: Config) -> None:
    key, account_id = seed(store)
    upstream = Upstream()
    recorder = UsageRecorder()

    async def scenario(addon: Kleis, services: Services) -> None:
        adopted(services.providers["loop"])
        flow = client_flow("POST", "/v1/messages", MESSAGES, authorization=f"Bearer {key}")
        await forwarded(addon, flow)
        await answered(addon, flow, 400, {"type": "error", "error": {"type": "invalid_request_error", "message": "too old"}})
        assert upstream.seen == [(str(account_id), "Bearer sk-loop-access-acct-1")]  # once, on the same account
        assert flow.response is not None and flow.response.status_code == 200
        [row] = recorder.queue.take(10)
        assert (row["status"], row["error_type"]) == (200, "retried after adopting: upstream_400 refused")  # why it took two
        assert services.load.in_flight(account_id) == 0

    run_hooks(store, config, scenario, Parts(usage=recorder), upstream)


def test_a_stream_refused_for_an_adopted_value_is_told_to_retry_and_a_second_refusal_passes_on(store: Store, config: Config) -> None:
    key, _ = seed(store)
    upstream = Upstream(400, {"type": "error", "error": {"type": "invalid_request_error", "message": "still too old"}})

    async def scenario(addon: Kleis, services: Services) -> None:
        adopted(services.providers["loop"])
        streamed = client_flow("POST", "/v1/messages", {**MESSAGES, "stream": True}, authorization=f"Bearer {key}")
        await forwarded(addon, streamed)
        await answered(addon, streamed, 400, {"type": "error", "error": {"type": "invalid_request_error", "message": "too old"}})
        assert streamed.response is not None and streamed.response.status_code == 503
        assert streamed.response.headers["x-should-retry"] == "true"
        assert error_of(streamed)["error"]["message"].startswith("Kleis now presents version 9. Retry the request")
        assert upstream.seen == []

        plain = client_flow("POST", "/v1/messages", MESSAGES, authorization=f"Bearer {key}")
        await forwarded(addon, plain)
        await answered(addon, plain, 400, {"type": "error", "error": {"type": "invalid_request_error", "message": "too old"}})
        assert len(upstream.seen) == 1  # one more attempt, no third
        assert plain.response is not None and plain.response.status_code == 400
        assert "still too old" in error_of(plain)["error"]["message"]

    run_hooks(store, config, scenario, upstream=upstream)
