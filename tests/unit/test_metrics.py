"""Prometheus metrics: counted from usage batches and refreshes, read from memory at scrape time, served at /metrics
behind the admin bearer (or public), parsed with prometheus_client's own parser; no key, token or email in a label.
Here the parts that need no socket; through listeners: tests/e2e/test_metrics.py."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from engine.metrics import KleisMetrics
from tests.support.admin import SECRET


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a scrape, parsed by prometheus_client: (name, sorted labels) → value."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(parsed: dict, name: str, **labels: str) -> float:
    return parsed.get((name, tuple(sorted(labels.items()))), 0.0)


def row(**fields) -> dict:
    base = {"provider": "claude", "protocol": "messages", "status": 200, "key_id": 7, "account_id": 3, "latency_ms": 1500.0}
    return {**base, "ttfb_ms": 400.0, "input_tokens": 10, "cache_read_tokens": 100, "output_tokens": 5, "reasoning_tokens": 2, **fields}


def test_a_batch_is_counted_per_label_set_and_parses_back() -> None:
    from prometheus_client import generate_latest

    metrics = KleisMetrics()
    metrics.observe_batch([row(cost_usd=0.25), row(cost_usd=None, status=529), row(account_id=None, status=429, input_tokens=0)])
    metrics.on_refresh("claude", "ok")
    parsed = samples(generate_latest(metrics.registry).decode())
    assert value(parsed, "kleis_requests_total", provider="claude", protocol="messages", status_class="2xx") == 1
    assert value(parsed, "kleis_requests_total", provider="claude", protocol="messages", status_class="5xx") == 1
    assert value(parsed, "kleis_requests_total", provider="claude", protocol="messages", status_class="4xx") == 1
    assert value(parsed, "kleis_tokens_total", provider="claude", kind="cache_read") == 300
    assert value(parsed, "kleis_tokens_total", provider="claude", kind="reasoning") == 6
    assert value(parsed, "kleis_cost_usd_total", provider="claude") == 0.25
    assert value(parsed, "kleis_key_requests_total", key_id="7") == 3 and value(parsed, "kleis_key_tokens_total", key_id="7") == 335
    # the refusal (no account) has no upstream time: two latencies, 1.5 s each
    assert value(parsed, "kleis_upstream_latency_seconds_count", provider="claude") == 2
    assert value(parsed, "kleis_upstream_latency_seconds_bucket", provider="claude", le="1.0") == 0
    assert value(parsed, "kleis_upstream_latency_seconds_bucket", provider="claude", le="2.5") == 2
    assert value(parsed, "kleis_upstream_ttfb_seconds_sum", provider="claude") == pytest.approx(0.8)
    assert value(parsed, "kleis_refreshes_total", provider="claude", result="ok") == 1


def test_metrics_need_the_admin_bearer_unless_public(store, config, test_providers) -> None:
    from admin import create_app

    private = create_app(store, config, {"TESTING": True}, metrics_source=KleisMetrics()).test_client()
    assert private.get("/metrics").status_code == 401
    assert private.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    answer = private.get("/metrics", headers={"Authorization": f"Bearer {SECRET}"})
    assert answer.status_code == 200 and answer.content_type.startswith("text/plain; version=")
    assert "kleis_requests_total" in answer.get_data(as_text=True) or "# HELP kleis_requests" in answer.get_data(as_text=True)
    public = create_app(store, config.replace(metrics_public=True), {"TESTING": True}, metrics_source=KleisMetrics()).test_client()
    assert public.get("/metrics").status_code == 200
    assert public.get("/admin/api/keys").status_code == 401  # only /metrics is public
