"""Prometheus metrics of one Kleis process, in a registry of its own (never prometheus_client's global one).

Request, token, cost and latency figures are counted from the usage writer's batches, in its thread (nothing on
the event loop); refresh results as they happen; account states, the usage queue and budget use are read from
memory when Prometheus scrapes. Labels carry ids and names of providers, protocols and states only: never a key,
token or email (a key is `key_id`, an account `account_id`).
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from core.enums import AccountStatus
from store.accounts import AccountView
from store.budgets import budget_tokens
from store.keys import KeyRecord

LATENCY_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
FIRST_BYTE_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0)
TOKEN_KINDS = {"input_tokens": "input", "cache_read_tokens": "cache_read", "cache_write_tokens": "cache_write", "output_tokens": "output"}
TOKEN_KINDS["reasoning_tokens"] = "reasoning"  # part of output, counted on its own as well

QuotaSource = Callable[[], Iterable[tuple[int, str, str, float]]]  # (account id, provider, window, used 0..1): the pool's


class UsageSource(Protocol):
    """The usage recorder as the collector reads it (engine.usage_recorder.UsageRecorder)."""

    dropped: int
    written: int

    @property
    def queue(self) -> Any: ...


class Sources:
    """What the scrape-time collector reads; set by the services once they exist (`KleisMetrics.bind`)."""

    def __init__(self) -> None:
        self.accounts: Callable[[], list[AccountView]] | None = None
        self.usage: UsageSource | None = None
        self.budget_use: Callable[[], Iterable[tuple[KeyRecord, int, float]]] | None = None  # (key, tokens, cost)
        self.quota: QuotaSource | None = None  # hook for the quota-aware pool (issue 17): quota used per window


def status_class(status: int) -> str:
    return f"{status // 100}xx" if 100 <= status < 600 else "none"


def account_state(account: AccountView, now: float) -> str:
    if account.usable(now):
        return "usable"
    if account.status in (AccountStatus.COOLING, AccountStatus.NEEDS_REAUTH, AccountStatus.DISABLED):
        return str(account.status)
    return "unusable"


class KleisMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        registry = self.registry
        self.requests = Counter(
            "kleis_requests",
            "Requests Kleis answered, by provider, protocol and status class",
            ["provider", "protocol", "status_class"],
            registry=registry,
        )
        self.tokens = Counter(
            "kleis_tokens", "Tokens by provider and kind (reasoning is part of output)", ["provider", "kind"], registry=registry
        )
        self.cost = Counter(
            "kleis_cost_usd", "Cost in USD at models.dev list prices (list-price equivalent)", ["provider"], registry=registry
        )
        self.key_requests = Counter("kleis_key_requests", "Requests per Kleis key", ["key_id"], registry=registry)
        self.key_tokens = Counter("kleis_key_tokens", "Tokens per Kleis key (input, cache and output)", ["key_id"], registry=registry)
        self.key_cost = Counter("kleis_key_cost_usd", "List-price equivalent cost in USD per Kleis key", ["key_id"], registry=registry)
        self.latency = Histogram(
            "kleis_upstream_latency_seconds",
            "Request start to the end of the upstream's answer",
            ["provider"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.first_byte = Histogram(
            "kleis_upstream_ttfb_seconds",
            "Request start to the upstream's response headers",
            ["provider"],
            buckets=FIRST_BYTE_BUCKETS,
            registry=registry,
        )
        self.refreshes = Counter(
            "kleis_refreshes", "Token refresh calls to providers, by result", ["provider", "result"], registry=registry
        )
        self.sources = Sources()
        registry.register(StateCollector(self.sources))

    def bind(self, **sources: Any) -> None:
        """Point the scrape-time collector at this process's accounts, usage recorder, budgets and quota."""
        for name, source in sources.items():
            if not hasattr(self.sources, name):
                raise TypeError(f"unknown metrics source {name!r}")
            setattr(self.sources, name, source)

    # -- counted (the usage writer's thread; refreshes) -----------------------------------------------
    def observe_batch(self, rows: list[dict[str, Any]]) -> None:
        """Count a batch of usage events: summed per label set first, one increment each."""
        requests: collections.Counter[tuple[str, str, str]] = collections.Counter()
        tokens: collections.Counter[tuple[str, str]] = collections.Counter()
        cost: collections.defaultdict[str, float] = collections.defaultdict(float)
        per_key: dict[str, list[float]] = {}
        timers: dict[str, tuple[Any, Any]] = {}  # provider → its histogram children, looked up once per batch
        for row in rows:
            provider = row.get("provider") or "none"
            requests[(provider, row.get("protocol") or "none", status_class(int(row.get("status") or 0)))] += 1
            for field, kind in TOKEN_KINDS.items():
                tokens[(provider, kind)] += int(row.get(field) or 0)
            cost[provider] += float(row.get("cost_usd") or 0.0)
            if row.get("key_id") is not None:
                sums = per_key.setdefault(str(row["key_id"]), [0, 0, 0.0])
                sums[0], sums[1], sums[2] = sums[0] + 1, sums[1] + budget_tokens(row), sums[2] + float(row.get("cost_usd") or 0.0)
            if row.get("account_id") is not None:  # went upstream (Kleis's own answers have no upstream time)
                if provider not in timers:
                    timers[provider] = (self.latency.labels(provider), self.first_byte.labels(provider))
                self._observe_times(timers[provider], row)
        self._add(requests, tokens, cost, per_key)

    @staticmethod
    def _observe_times(timers: tuple[Any, Any], row: dict[str, Any]) -> None:
        if row.get("latency_ms") is not None:
            timers[0].observe(float(row["latency_ms"]) / 1000)
        if row.get("ttfb_ms") is not None:
            timers[1].observe(float(row["ttfb_ms"]) / 1000)

    def _add(self, requests: Any, tokens: Any, cost: Any, per_key: dict[str, list[float]]) -> None:
        for labels, count in requests.items():
            self.requests.labels(*labels).inc(count)
        for labels, count in tokens.items():
            self.tokens.labels(*labels).inc(count)
        for provider, usd in cost.items():
            self.cost.labels(provider).inc(usd)
        for key_id, (count, used, usd) in per_key.items():
            self.key_requests.labels(key_id).inc(count)
            self.key_tokens.labels(key_id).inc(used)
            self.key_cost.labels(key_id).inc(usd)

    def on_refresh(self, provider: str, result: str) -> None:
        self.refreshes.labels(provider, result).inc()


class StateCollector(Collector):
    """Gauges read from memory at scrape time: accounts by state, the usage queue, budget use, quota."""

    def __init__(self, sources: Sources) -> None:
        self.sources = sources

    def collect(self) -> Iterator[Metric]:
        yield from self._accounts()
        yield from self._usage()
        yield from self._budgets()
        yield from self._quota()

    def _accounts(self) -> Iterator[Metric]:
        if self.sources.accounts is None:
            return
        now = time.time()
        counts = GaugeMetricFamily("kleis_accounts", "Accounts by provider and state", labels=["provider", "state"])
        usable = GaugeMetricFamily("kleis_account_usable", "1 when the account can serve now", labels=["provider", "account_id"])
        tally: collections.Counter[tuple[str, str]] = collections.Counter()
        for account in self.sources.accounts():
            state = account_state(account, now)
            tally[(account.provider, state)] += 1
            usable.add_metric([account.provider, str(account.id)], 1.0 if state == "usable" else 0.0)
        for (provider, state), count in sorted(tally.items()):
            counts.add_metric([provider, state], count)
        yield counts
        yield usable

    def _usage(self) -> Iterator[Metric]:
        usage = self.sources.usage
        if usage is None:
            return
        yield GaugeMetricFamily("kleis_usage_queue_depth", "Usage events waiting for the writer", value=usage.queue.qsize())
        yield CounterMetricFamily("kleis_usage_events_written", "Usage events stored", value=usage.written)
        yield CounterMetricFamily(
            "kleis_usage_events_dropped", "Usage events lost (queue full or refused by the store)", value=usage.dropped
        )

    def _budgets(self) -> Iterator[Metric]:
        if self.sources.budget_use is None:
            return
        used = GaugeMetricFamily(
            "kleis_key_budget_used_ratio", "Share of a key's budget used in its current window", labels=["key_id", "budget", "window"]
        )
        for key, tokens, cost in self.sources.budget_use():
            if key.token_budget:
                used.add_metric([str(key.id), "tokens", key.budget_window], tokens / key.token_budget)
            if key.cost_budget:
                used.add_metric([str(key.id), "cost", key.budget_window], cost / key.cost_budget)
        yield used

    def _quota(self) -> Iterator[Metric]:
        if self.sources.quota is None:
            return
        quota = GaugeMetricFamily(
            "kleis_account_quota_used_ratio",
            "Share of an account's provider quota used, per window",
            labels=["provider", "account_id", "window"],
        )
        for account_id, provider, window, ratio in self.sources.quota():
            quota.add_metric([provider, str(account_id), window], ratio)
        yield quota


_PROCESS: KleisMetrics | None = None


def process_metrics() -> KleisMetrics:
    """This process's metrics: the proxy counts into them and the admin beside it serves them at /metrics."""
    global _PROCESS
    if _PROCESS is None:
        _PROCESS = KleisMetrics()
    return _PROCESS
