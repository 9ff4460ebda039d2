"""Kleis for benchmarks: the real addon and the providers BENCH_PROVIDERS names (default: Claude), pointed at the
bench upstream. Prints `PORT <n>`.

Configuration comes from KLEIS_* as for `kleis.py serve`. With BENCH_QUERY_LOG set, every database query made
while a request hook runs (including the threads it hands work to) is counted, and the count is written to that
file on SIGUSR1: the "queries per request" figure.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import json
import os
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from addons.kleis import Kleis  # noqa: E402
from addons.server import bound_address, run_dump  # noqa: E402
from core.config import load_config  # noqa: E402
from providers.registry import provider_map  # noqa: E402
from store.db import open_store  # noqa: E402
from store.models import database  # noqa: E402

IN_REQUEST = contextvars.ContextVar("in_request", default=False)
COUNTS = {"request_path_queries": 0, "all_queries": 0}


def count_queries(log_path: str) -> None:
    real = database.obj.execute_sql

    def counting(*args, **kwargs):
        COUNTS["all_queries"] += 1
        if IN_REQUEST.get():
            COUNTS["request_path_queries"] += 1
        return real(*args, **kwargs)

    database.obj.execute_sql = counting
    for hook in ("requestheaders", "request", "responseheaders", "response", "error"):
        original = getattr(Kleis, hook)

        if asyncio.iscoroutinefunction(original):

            async def wrapped(self, flow, _original=original):
                token = IN_REQUEST.set(True)
                try:
                    return await _original(self, flow)
                finally:
                    IN_REQUEST.reset(token)
        else:

            def wrapped(self, flow, _original=original):
                token = IN_REQUEST.set(True)
                try:
                    return _original(self, flow)
                finally:
                    IN_REQUEST.reset(token)

        setattr(Kleis, hook, functools.wraps(original)(wrapped))
    signal.signal(signal.SIGUSR1, lambda *_: Path(log_path).write_text(json.dumps(COUNTS)))


def gc_log(path: str) -> None:
    """BENCH_GC_LOG: one line per garbage collection (generation, milliseconds, objects collected), to see pauses."""
    import gc
    import time as _time

    started: list[float] = []

    def callback(phase: str, info: dict) -> None:
        if phase == "start":
            started[:] = [_time.perf_counter()]
        elif started:
            with open(path, "a") as out:
                out.write(f"{info['generation']} {(_time.perf_counter() - started[0]) * 1000:.2f} {info['collected']}\n")

    gc.callbacks.append(callback)


def main() -> None:
    if os.environ.get("BENCH_GC_LOG"):
        gc_log(os.environ["BENCH_GC_LOG"])
    config = load_config()
    store = open_store(config)
    if os.environ.get("BENCH_QUERY_LOG"):
        count_queries(os.environ["BENCH_QUERY_LOG"])
    available = provider_map(config)
    providers = {name: available[name] for name in os.environ.get("BENCH_PROVIDERS", "claude").split(",")}
    asyncio.run(
        run_dump(
            store,
            config,
            providers=providers,
            port=0,
            install_signals=True,
            on_ready=lambda master: print(f"PORT {bound_address(master)[1]}", flush=True),
        )
    )


if __name__ == "__main__":
    main()
