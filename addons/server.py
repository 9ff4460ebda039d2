"""Running mitmproxy with Kleis: one skeleton for DumpMaster (`serve`) and WebMaster (`debug`), and a thread for
tests and benchmarks."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import sys
import threading
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, TypeVar

from mitmproxy.master import Master
from mitmproxy.options import Options
from mitmproxy.tools.dump import DumpMaster

from addons import compat
from addons.kleis import Kleis
from addons.services import Background, Parts, Services, background_addons, build_services, default_parts
from core.config import Config
from providers.base import Provider
from store.db import Store

log = logging.getLogger(__name__)

# Where a flow would go if a hook ever failed open: a closed local port, never a real host.
FAILSAFE_TARGET = "http://127.0.0.1:1"

M = TypeVar("M", bound=Master)


def listen_spec(host: str, port: int) -> str:
    return f"reverse:{FAILSAFE_TARGET}@{host}:{port}"


def make_options(config: Config, host: str, port: int) -> Options:
    confdir = config.data_dir / "mitmproxy"
    confdir.mkdir(mode=0o700, parents=True, exist_ok=True)
    return Options(mode=[listen_spec(host, port)], listen_host=host, confdir=str(confdir))


def configure(master: Master, config: Config) -> None:
    """Options that only exist once mitmproxy's default addons are loaded."""
    master.options.update(
        connection_strategy="lazy",
        keep_host_header=True,
        body_size_limit=str(config.max_body_bytes + 1024 * 1024),  # memory guard for chunked bodies
        ssl_insecure=False,
        # HTTP/1.1 only towards clients: the upstream token is swapped in when mitmproxy assembles an HTTP/1 request
        # head (engine.wire_secrets); an h2 client would otherwise make mitmproxy speak h2 upstream.
        http2=False,
    )


def bound_address(master: Master) -> tuple[str, int]:
    addrs = master.addons.get("proxyserver").listen_addrs()
    return addrs[0][0], addrs[0][1]


def add_kleis(master: Master, services: Services, place: Callable[[Master, object], None] | None = None) -> Kleis:
    """Add the request handler (where `place` puts it; by default at the end) and the background addons."""
    kleis = Kleis(services)
    services.drain.attach(kleis)
    if place is None:
        master.addons.add(kleis)
    else:
        place(master, kleis)
    master.addons.add(Background(background_addons(services)))
    return kleis


async def run_master(
    master: M,
    store: Store,
    config: Config,
    *,
    providers: Mapping[str, Provider] | None = None,
    parts: Parts | None = None,
    place: Callable[[Master, object], None] | None = None,
    on_ready: Callable[[M], None] | None = None,
    install_signals: bool = True,
) -> M:
    """Wire Kleis into `master` and run it until shutdown; `on_ready` gets the master once the listener is bound."""
    from providers.registry import provider_map

    compat.install_proxy()
    configure(master, config)
    chosen = dict(providers) if providers is not None else provider_map(config)
    services = build_services(store, config, chosen, parts if parts is not None else default_parts(config, chosen), lambda: master)
    add_kleis(master, services, place)
    if install_signals:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, services.drain.begin)  # drain, then shut down (addons.drain)
            except (RuntimeError, ValueError):  # not the main thread (tests)
                break
    task = asyncio.ensure_future(master.run())
    while not master.addons.get("proxyserver").listen_addrs():
        if task.done():
            task.result()  # raises the startup error (port in use, ...)
            raise RuntimeError("mitmproxy stopped before listening")
        await asyncio.sleep(0.01)
    # Start-up objects (mitmproxy, peewee, the caches) never die: keep them out of every later garbage collection,
    # which per-request allocations trigger and which would otherwise rescan them each time.
    gc.collect()
    gc.freeze()
    # A worker thread reading a large body holds the GIL; the event loop, wanting it back for other clients' stream
    # events, would wait out Python's 5 ms switch interval each time. 1 ms: stream lateness p50 under two clients
    # posting 1 MB bodies 5–6 ms → 3–4 ms (bench.large).
    sys.setswitchinterval(0.001)
    if on_ready is not None:
        on_ready(master)
    await task
    return master


async def run_dump(
    store: Store,
    config: Config,
    *,
    providers: Mapping[str, Provider] | None = None,
    port: int | None = None,
    on_ready: Callable[[DumpMaster], None] | None = None,
    install_signals: bool = True,
    parts: Parts | None = None,
) -> DumpMaster:
    """`kleis.py serve`: the proxy under mitmproxy's DumpMaster (no terminal output of its own)."""
    options = make_options(config, config.host, config.port if port is None else port)
    master = DumpMaster(options, with_termlog=False, with_dumper=False)
    return await run_master(master, store, config, providers=providers, parts=parts, on_ready=on_ready, install_signals=install_signals)


T = TypeVar("T")


class ProxyThread:
    """A Kleis listener in a background thread with its own event loop (tests, benchmarks)."""

    def __init__(self, store: Store, config: Config, providers: Mapping[str, Provider] | None = None, parts: Parts | None = None) -> None:
        self.store, self.config, self.providers, self.parts = store, config, providers, parts
        self.master: DumpMaster | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="kleis-proxy", daemon=True)

    def _main(self) -> None:
        def ready(master: DumpMaster) -> None:
            self.master = master
            self.loop = asyncio.get_running_loop()
            self._ready.set()

        try:
            run = run_dump(
                self.store, self.config, providers=self.providers, port=0, on_ready=ready, install_signals=False, parts=self.parts
            )
            asyncio.run(run)
        except BaseException as exc:  # surfaced by start()
            self._error = exc
            self._ready.set()

    def start(self, timeout: float = 15) -> ProxyThread:
        self._thread.start()
        if not self._ready.wait(timeout) or self._error is not None:
            raise RuntimeError(f"Kleis did not start: {self._error!r}")
        return self

    @property
    def addon(self) -> Kleis:
        assert self.master is not None
        return next(a for a in self.master.addons.chain if isinstance(a, Kleis))

    @property
    def services(self) -> Services:
        return self.addon.services

    @property
    def port(self) -> int:
        assert self.master is not None
        return bound_address(self.master)[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        """Run a coroutine on the proxy's loop and wait for its result."""
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        if self.master is not None and self.loop is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self.master.shutdown)
        self._thread.join(15)

    def drain(self, timeout: float = 60) -> None:
        """What SIGTERM does to `kleis.py serve` (addons.drain), then wait for the thread to end."""
        if self.master is not None and self.loop is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self.services.drain.begin)
        self._thread.join(timeout)
