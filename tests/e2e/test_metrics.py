"""Prometheus metrics: counted from usage batches and refreshes, read from memory at scrape time, served at /metrics
behind the admin bearer (or public), parsed with prometheus_client's own parser; no key, token or email in a label.
Here the parts that need a listener; the rest: tests/unit/test_metrics.py."""

from __future__ import annotations

import time

import httpx
import pytest

from addons.services import Parts
from engine.metrics import KleisMetrics
from engine.usage_recorder import UsageRecorder
from providers.pricing import Prices
from store import keys
from tests.unit.test_metrics import samples, value

MESSAGES = {"model": "loop/claude-m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
CHAT = {"model": "loop/gpt-m", "messages": [{"role": "user", "content": "hi"}]}


def test_a_live_proxy_counts_requests_tokens_cost_refreshes_and_states(live_kleis, fake_oauth) -> None:
    from prometheus_client import generate_latest

    metrics = KleisMetrics()
    recorder = UsageRecorder(interval=0.05, prices=lambda provider, model: Prices(3, 15, 0.3, 3.75))
    parts = Parts(usage=recorder, budgets=True, metrics=metrics)
    live = live_kleis(parts)
    keys.set_limits(live.key_id, token_budget=10_000, budget_window="week")
    live.add_account(expires_in=-60)  # expired: the first request refreshes it (and the follower has the budget)
    with httpx.Client(base_url=live.url, headers=live.headers(), timeout=10) as client:
        assert client.post("/v1/messages", json=MESSAGES).status_code == 200
        assert client.post("/v1/chat/completions", json=CHAT).status_code == 200
    assert httpx.post(f"{live.url}/v1/messages", json=MESSAGES, headers={"x-api-key": "kl_unknown"}).status_code == 401
    deadline = time.time() + 10
    while time.time() < deadline:  # written by the recorder, then reconciled by the budgets
        text = generate_latest(metrics.registry).decode()
        if recorder.written == 3 and value(
            samples(text), "kleis_key_budget_used_ratio", key_id=str(live.key_id), budget="tokens", window="week"
        ):
            break
        time.sleep(0.02)
    live.proxy.stop()  # stopped before the checks, as a process ends: what it still held is written
    parsed = samples(text)
    assert value(parsed, "kleis_requests_total", provider="loop", protocol="messages", status_class="2xx") == 1
    assert value(parsed, "kleis_requests_total", provider="loop", protocol="chat", status_class="2xx") == 1
    assert value(parsed, "kleis_requests_total", provider="none", protocol="messages", status_class="4xx") == 1
    assert value(parsed, "kleis_tokens_total", provider="loop", kind="cache_read") == 100 + 30
    assert value(parsed, "kleis_cost_usd_total", provider="loop") == pytest.approx((246 + 204) / 1e6)
    assert value(parsed, "kleis_upstream_ttfb_seconds_count", provider="loop") == 2
    assert value(parsed, "kleis_refreshes_total", provider="loop", result="ok") == 1
    assert value(parsed, "kleis_accounts", provider="loop", state="usable") == 1
    assert value(parsed, "kleis_usage_events_written_total") == 3 and ("kleis_usage_queue_depth", ()) in parsed
    ratio = value(parsed, "kleis_key_budget_used_ratio", key_id=str(live.key_id), budget="tokens", window="week")
    assert ratio == pytest.approx((139 + 59) / 10_000)
    for secret in (live.key, "acct-1@example.test", "kl_unknown", *fake_oauth.issued_access):
        assert secret not in text


def test_each_accounts_quota_windows_are_gauges(live_kleis, fake_anthropic) -> None:
    from prometheus_client import generate_latest

    from tests.fakes.quota import claude_unified

    metrics = KleisMetrics()
    fake_anthropic.answer_headers = lambda request: claude_unified(0.97, 0.25)
    live = live_kleis(Parts(quota=True, metrics=metrics))
    account = live.add_account()
    with httpx.Client(base_url=live.url, headers=live.headers(), timeout=10) as client:
        assert client.post("/v1/messages", json=MESSAGES).status_code == 200
    parsed = samples(generate_latest(metrics.registry).decode())
    live.proxy.stop()  # stopped before the checks, as a process ends: what it still held is written
    assert value(parsed, "kleis_account_quota_used_ratio", provider="loop", account_id=str(account.id), window="5h") == 0.97
    assert value(parsed, "kleis_account_quota_used_ratio", provider="loop", account_id=str(account.id), window="7d") == 0.25


def test_bad_quota_numbers_from_upstream_are_ignored_and_windows_capped(live_kleis, store, fake_anthropic, caplog) -> None:
    """One answer with `…-5h-reset: inf`, `…-7d-utilization: nan`, `1e400` and 400 per-model windows: the request is
    answered, nothing non-finite reaches the gauges or the store, at most MAX_WINDOWS windows are kept, one log line."""
    from prometheus_client import generate_latest

    from providers import quota
    from store import quota as quota_store
    from tests.fakes.quota import claude_unified

    def bad_headers(request) -> dict[str, str]:
        headers = claude_unified(0.5, 0.25)
        headers["anthropic-ratelimit-unified-5h-reset"] = "inf"
        headers["anthropic-ratelimit-unified-7d-utilization"] = "nan"
        headers["anthropic-ratelimit-unified-7d-reset"] = "1e400"
        headers["anthropic-ratelimit-unified-reset"] = "-inf"
        headers.update({f"anthropic-ratelimit-unified-7d_w{n:04d}-utilization": "0.01" for n in range(400)})
        return headers

    metrics = KleisMetrics()
    fake_anthropic.answer_headers = bad_headers
    live = live_kleis(Parts(quota=True, metrics=metrics))
    account = live.add_account()
    with httpx.Client(base_url=live.url, headers=live.headers(), timeout=10) as client:
        for _ in range(3):
            assert client.post("/v1/messages", json=MESSAGES).status_code == 200
    exposed = generate_latest(metrics.registry).decode()
    live.proxy.stop()  # stopped before the checks, as a process ends: what it still held is written
    parsed = samples(exposed)
    series = [labels for name, labels in parsed if name == "kleis_account_quota_used_ratio"]
    assert len(series) == quota.MAX_WINDOWS - 1  # the 7d window has no usable share; 5h and ten 7d_w… windows do
    assert value(parsed, "kleis_account_quota_used_ratio", provider="loop", account_id=str(account.id), window="5h") == 0.5
    assert "NaN" not in exposed and "Inf" not in exposed
    stored = quota_store.load()[account.id]
    assert len(stored["windows"]) == quota.MAX_WINDOWS
    assert {w["name"]: (w["used"], w["resets_at"]) for w in stored["windows"]}["7d"] == (None, None)
    assert stored["resets_at"] is None
    ignored = [r for r in caplog.records if "ignored quota values" in r.getMessage()]
    assert len(ignored) == 1 and "5h reset=inf" in ignored[0].getMessage()
