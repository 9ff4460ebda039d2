"""The proxy's services, built in one place and handed to each addon: what exists, and in which order it runs.

`build_services` makes the shared objects (store follower, HTTP clients, token manager, key limits, upstream
deadlines, stream keep-alives, the shutdown drain and the optional parts); `background_addons` lists the parts
that run beside the request handler, in order, like mitmproxy's own `default_addons()`, and `Background` runs them
as one mitmproxy addon. Their `running` and `done` hooks run along that order: the request handler comes first (it
stops taking work first), the background parts follow, and the follower and the HTTP clients close last. The drain
(SIGTERM) runs before all of them: it ends the requests and then asks the master to shut down.
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
from collections.abc import Callable, Mapping

import httpx
from mitmproxy.master import Master

from addons.drain import Drain
from addons.keepalive import SseKeepAlive
from addons.upstream_timeout import UpstreamDeadlines
from core.config import Config
from core.protocol import Protocol
from engine.account_load import AccountLoad
from engine.affinity import SessionAffinity
from engine.budgets import BudgetTracker
from engine.catalog_refresh import CatalogRefresher
from engine.follower import StoreFollower
from engine.health import HealthTracker
from engine.key_limits import KeyLimiter
from engine.learned import LearnedRecorder
from engine.metrics import KleisMetrics, process_metrics
from engine.quota import QuotaTracker
from engine.refresher import ProactiveRefresher
from engine.usage_recorder import UsageRecorder
from providers.base import Provider
from providers.catalog import Catalog
from providers.learned import LearnedValues
from providers.lifecycle import REFRESH_CALL_TIMEOUT, TokenManager
from providers.pool import PoolPolicy, RoutingMode
from providers.quota import QuotaReading
from providers.routing import parse_model_map
from providers.serving import Tables
from providers.translated import endpoint_translations, translations
from store.db import Store

REFRESH_INTERVAL = 15.0  # seconds between proactive refresh passes


log = logging.getLogger(__name__)


@dataclasses.dataclass
class Parts:
    """The optional services. `default_parts` has them all; tests choose the ones they exercise."""

    catalog: Catalog | None = None
    usage: UsageRecorder | None = None
    health: bool = False  # cooldowns and half-open probes (engine.health)
    refresh_interval: float | None = None  # proactive refresh every N seconds; None: only on request
    quota: bool = False  # read each account's subscription quota from the answers and share it (engine.quota)
    budgets: bool = False  # per-key token and cost budgets (engine.budgets; needs `usage`)
    metrics: KleisMetrics | None = None  # Prometheus metrics (engine.metrics), served by the admin at /metrics


def default_parts(config: Config, providers: Mapping[str, Provider]) -> Parts:
    return Parts(
        catalog=Catalog(config, providers),
        usage=UsageRecorder(retention_days=config.usage_retention_days, tz=config.tz),
        health=True,
        refresh_interval=REFRESH_INTERVAL,
        quota=True,
        budgets=True,
        metrics=process_metrics(),
    )


@dataclasses.dataclass
class Services:
    store: Store
    config: Config
    providers: dict[str, Provider]
    follower: StoreFollower
    http: httpx.AsyncClient
    refresh_http: httpx.AsyncClient
    tokens: TokenManager
    limits: KeyLimiter
    deadlines: UpstreamDeadlines
    policy: PoolPolicy
    affinity: SessionAffinity
    load: AccountLoad
    learned: LearnedValues
    learned_recorder: LearnedRecorder
    keepalive: SseKeepAlive
    drain: Drain
    catalog: Catalog | None = None
    usage: UsageRecorder | None = None
    health: HealthTracker | None = None
    refresher: ProactiveRefresher | None = None
    catalog_refresher: CatalogRefresher | None = None
    quota: QuotaTracker | None = None
    budgets: BudgetTracker | None = None
    translations: dict[tuple[Protocol, str], Provider] = dataclasses.field(default_factory=dict)  # (client protocol, name)
    # (client protocol, target protocol, name): Copilot's models on the endpoints Copilot lists for each
    by_endpoint: dict[tuple[Protocol, Protocol, str], Provider] = dataclasses.field(default_factory=dict)
    model_map: tuple[tuple[str, str], ...] = ()  # KLEIS_MODEL_MAP
    master: Callable[[], Master] | None = None  # for writing to a client beside mitmproxy (addons.client_wire)

    def routing_tables(self) -> Tables:
        """What routing reads (providers.serving.choose), as the follower and the catalog know it now."""
        catalog = self.catalog.lookup if self.catalog is not None else None
        return Tables(self.providers, self.follower.accounts, catalog, self.translations, self.model_map, self.by_endpoint)

    def quota_of(self, account_id: int) -> QuotaReading | None:
        """The account's last quota reading (memory only; None without the quota part or a reading)."""
        return self.quota.reading(account_id) if self.quota is not None else None


def build_services(
    store: Store,
    config: Config,
    providers: Mapping[str, Provider],
    parts: Parts,
    master: Callable[[], Master],
) -> Services:
    """Everything the addons share; the follower loads the store once here (before the loop serves anyone), and
    every provider reads and adds to the same learned values."""
    follower = StoreFollower(store.cipher)
    follower.load_all()
    learned = LearnedValues(follower.learned)
    for provider in providers.values():
        provider.attach_learned(learned)
    http = httpx.AsyncClient(timeout=httpx.Timeout(30.0, connect=10.0), trust_env=False)
    # Token endpoints get their own client: a late answer still carries the only copy of a rotated refresh token.
    refresh_http = httpx.AsyncClient(timeout=httpx.Timeout(REFRESH_CALL_TIMEOUT, connect=10.0), trust_env=False)
    tokens = TokenManager(store, providers, refresh_http, on_update=follower.replace_account)
    services = Services(
        store=store,
        config=config,
        providers=dict(providers),
        follower=follower,
        http=http,
        refresh_http=refresh_http,
        tokens=tokens,
        limits=KeyLimiter(),
        deadlines=UpstreamDeadlines(master),
        policy=PoolPolicy(RoutingMode(config.routing), config.quota_threshold),
        affinity=SessionAffinity(config.session_ttl),
        load=AccountLoad(config.account_max_inflight or None),
        learned=learned,
        learned_recorder=LearnedRecorder(learned, follower),
        keepalive=SseKeepAlive(config.sse_keepalive, master),
        drain=Drain(config.shutdown_grace, master, tokens),
        catalog=parts.catalog,
        usage=parts.usage,
        translations=dict(translations(providers)) if config.translation else {},
        by_endpoint=dict(endpoint_translations(providers)) if config.translation else {},
        model_map=parse_model_map(config.model_map),
        master=master,
    )
    add_parts(services, parts)
    return services


def add_parts(services: Services, parts: Parts) -> None:
    """The optional services `parts` asks for, each given what it needs."""
    follower, tokens, http = services.follower, services.tokens, services.http
    if parts.health:
        services.health = HealthTracker(services.config.cooldown_max, follower)
    if parts.refresh_interval is not None:
        services.refresher = ProactiveRefresher(tokens, follower, interval=parts.refresh_interval)
    if parts.catalog is not None:
        services.catalog_refresher = CatalogRefresher(parts.catalog, follower, tokens, http)
        if parts.usage is not None and parts.usage.prices is None:
            parts.usage.prices = parts.catalog.prices  # a cost per event, at the catalog's prices of the moment
    if parts.quota:
        services.quota = QuotaTracker(services.providers, http, follower)
        services.quota.load_stored()
        tokens.on_refreshed.append(services.quota.refreshed)
    if parts.budgets and parts.usage is not None:
        recorder = parts.usage
        services.budgets = BudgetTracker(lambda: follower.keys.values(), lambda: recorder.committed, recorder.tz)
    if parts.metrics is not None:
        bind_metrics(parts.metrics, services)


def bind_metrics(metrics: KleisMetrics, services: Services) -> None:
    """Counted from the usage writer's batches and refresh results; the rest read from memory at scrape time."""
    follower = services.follower
    services.tokens.on_refresh = metrics.on_refresh
    metrics.bind(accounts=lambda: follower.accounts)
    if services.usage is not None:
        services.usage.batch_observers.append(metrics.observe_batch)
        metrics.bind(usage=services.usage)
    if services.budgets is not None:
        metrics.bind(budget_use=services.budgets.use_now)
    if services.quota is not None:
        metrics.bind(quota=services.quota.used_ratios)


class ClosesClient:
    """The last addon: closes the shared HTTP clients once everything that used them has stopped."""

    def __init__(self, *clients: httpx.AsyncClient) -> None:
        self.clients = clients

    async def done(self) -> None:
        for client in self.clients:
            await client.aclose()


class Background:
    """The background parts as one mitmproxy addon. mitmproxy offers every event of every flow to every addon in its
    chain; these parts only hook `running` and `done`, so they sit in the chain as one entry, not nine. Each part's
    hook runs in order; one that fails is logged and the others still run."""

    def __init__(self, parts: list[object]) -> None:
        self.parts = parts  # not `addons`: mitmproxy would walk that attribute for every event again

    def running(self) -> None:
        for part in self.parts:
            hook = getattr(part, "running", None)
            if hook is not None:
                try:
                    hook()
                except Exception:
                    log.exception("starting %s failed", type(part).__name__)

    async def done(self) -> None:
        for part in self.parts:
            hook = getattr(part, "done", None)
            if hook is not None:
                try:
                    result = hook()
                    if inspect.isawaitable(result):
                        await result
                except Exception:
                    log.exception("stopping %s failed", type(part).__name__)


def background_addons(services: Services) -> list[object]:
    """The addons besides the request handler, in the order they run and stop."""
    optional = (services.refresher, services.catalog_refresher, services.health, services.quota, services.budgets, services.usage)
    present = [part for part in optional if part is not None]
    return [*present, services.learned_recorder, services.follower, ClosesClient(services.http, services.refresh_http)]
