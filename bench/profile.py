"""`python -m bench.profile [N]` (`make bench-profile`): where a proxied request's time goes, Kleis against a bare
mitmproxy, both under cProfile and driven by the same N sequential 1 KB requests.
`python -m bench.profile N KB SHAPE` sends agent-sized bodies instead (bench.large: SHAPE claude-code or opencode).

Own time (cProfile's tottime) is split by where the code lives — Kleis's modules, mitmproxy, other libraries,
the standard library and builtins — and divided by N. cProfile slows everything down, so read the split and the
difference, not the absolute figures. Prints the functions of Kleis's own code that cost the most.
"""

from __future__ import annotations

import asyncio
import os
import pstats
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

from bench import large, measure
from bench.__main__ import kleis_env, seed
from bench.processes import spawn, stop

ROOT = Path(__file__).resolve().parent.parent
CATEGORIES = ("kleis", "mitmproxy", "other libraries", "stdlib & builtins")


def category(filename: str) -> str:
    if "/mitmproxy/" in filename:
        return "mitmproxy"
    if "site-packages" in filename:
        return "other libraries"
    if filename.startswith(str(ROOT)) and "/bench/" not in filename:
        return "kleis"
    return "stdlib & builtins"


def label(filename: str, line: int, name: str) -> str:
    for marker in ("/site-packages/", str(ROOT) + "/", "/lib/python3"):
        if marker in filename:
            filename = filename.split(marker, 1)[1]
            break
    return f"{filename}:{line} {name}"


def split(path: Path, requests: int) -> tuple[dict[str, float], dict[str, float], float]:
    """µs per request of own time per category, and per function; Python calls per request (deterministic)."""
    stats = pstats.Stats(str(path))
    totals = dict.fromkeys(CATEGORIES, 0.0)
    functions: dict[str, float] = {}
    calls = 0
    for (filename, line, name), (_, ncalls, tottime, _, _) in stats.stats.items():  # type: ignore[attr-defined]
        totals[category(filename)] += tottime
        functions[label(filename, line, name)] = tottime * 1e6 / requests
        calls += ncalls
    return {k: v * 1e6 / requests for k, v in totals.items()}, functions, calls / requests


def main() -> int:
    requests = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
    kb = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    shape = sys.argv[3] if len(sys.argv) > 3 else "claude-code"
    work = Path(tempfile.mkdtemp(prefix="kleis-profile-"))
    upstream_process, upstream_port = spawn("bench.upstream")
    upstream = f"http://127.0.0.1:{upstream_port}"
    env = kleis_env(work / "data", upstream, work / "queries.json")
    env.pop("BENCH_QUERY_LOG")
    key, _ = seed(env)
    results = {}
    try:
        for name, module, args, headers in (
            ("bare", "bench.run_bare", (upstream,), {}),
            ("kleis", "bench.run_kleis", (), {"authorization": f"Bearer {key}"}),
        ):
            out = work / f"{name}.prof"
            process, port = spawn("bench.profiled", str(out), module, *args, env=env)
            url = f"http://127.0.0.1:{port}"
            try:
                asyncio.run(drive(url, headers, 200 if not kb else 20, kb, shape))  # warm up, unprofiled
                os.kill(process.pid, signal.SIGUSR2)
                time.sleep(0.2)
                asyncio.run(drive(url, headers, requests, kb, shape))
                os.kill(process.pid, signal.SIGUSR2)
                time.sleep(0.2)
            finally:
                stop(process)
            results[name] = split(out, requests)
    finally:
        stop(upstream_process)
        shutil.rmtree(work, ignore_errors=True)
    print(f"own time per request under cProfile (µs), {requests} sequential {f'{kb} KB {shape}' if kb else '1 KB'} requests")
    print(f"{'where':<20} {'bare':>8} {'Kleis':>8} {'Kleis − bare':>13}")
    for where in CATEGORIES:
        bare, kleis = results["bare"][0][where], results["kleis"][0][where]
        print(f"{where:<20} {bare:8.0f} {kleis:8.0f} {kleis - bare:13.0f}")
    total_bare, total_kleis = sum(results["bare"][0].values()), sum(results["kleis"][0].values())
    print(f"{'total':<20} {total_bare:8.0f} {total_kleis:8.0f} {total_kleis - total_bare:13.0f}")
    bare_calls, kleis_calls = results["bare"][2], results["kleis"][2]
    print(f"{'calls per request':<20} {bare_calls:8.0f} {kleis_calls:8.0f} {kleis_calls - bare_calls:13.0f}")
    bare_functions, kleis_functions = results["bare"][1], results["kleis"][1]
    print("\nKleis's own functions, µs per request:")
    own = sorted(((cost, name) for name, cost in kleis_functions.items() if category_of_label(name) == "kleis"), reverse=True)
    for cost, name in own[:12]:
        print(f"  {cost:7.1f}  {name}")
    print("\nmitmproxy and the runtime: what costs more under Kleis than under the bare proxy, µs per request:")
    grown = sorted(
        ((kleis_functions[name] - bare_functions.get(name, 0.0), name) for name in kleis_functions if category_of_label(name) != "kleis"),
        reverse=True,
    )
    for cost, name in grown[:15]:
        print(f"  {cost:+7.1f}  {name}")
    return 0


async def drive(url: str, headers: dict[str, str], count: int, kb: int, shape: str) -> None:
    if not kb:
        await measure.latency(url, headers, count, warmup=0)
        return
    await large.sequential(url, {**headers, **large.headers_for(shape)}, large.agent_body(kb * 1024, shape), count, warmup=0)


def category_of_label(name: str) -> str:
    return "kleis" if name.split("/", 1)[0] in ("engine", "addons", "providers", "store", "core", "admin", "cli") else "other"


if __name__ == "__main__":
    raise SystemExit(main())
