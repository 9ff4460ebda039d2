"""`python -m bench [--smoke]`: run every benchmark in one go and print the table (see bench/README.md)."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import platform
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import large, measure
from bench.processes import peak_rss_mb, reset_peak_rss, rss_mb, spawn, stop
from bench.report import table

ROOT = Path(__file__).resolve().parent.parent
FULL = {
    "rounds": 8,
    "latency_n": 2400,
    "tput_seconds": 12.0,
    "stream_events": 50,
    "stream_interval": 0.02,
    "streams": 500,
    "stream_events_slow": 10,
    "stream_interval_slow": 0.2,
    "burst": 200,
    "hot_requests": 300,
    "body_sizes_kb": [10, 100, 500, 1536],
    "body_requests": 200,
    "load_body_kb": 1024,
    "lateness_events": 150,
    "memory_clients": 20,
    "bad_string_mb": 30,
    "first_byte_pairs": 200,
}
SMOKE = {
    "rounds": 1,
    "latency_n": 40,
    "tput_seconds": 0.7,
    "stream_events": 8,
    "stream_interval": 0.02,
    "streams": 20,
    "stream_events_slow": 3,
    "stream_interval_slow": 0.05,
    "burst": 20,
    "hot_requests": 20,
    "body_sizes_kb": [10, 100],
    "body_requests": 2,
    "load_body_kb": 100,
    "lateness_events": 8,
    "memory_clients": 3,
    "bad_string_mb": 1,
    "first_byte_pairs": 3,
}


def interleaved(targets: dict[str, tuple[str, dict[str, str]]], run_one, amount: float, rounds: int, merge) -> dict[str, Any]:
    """Measure every target in turn, `rounds` times, so slow phases of a shared machine hit all of them alike."""
    per_target: dict[str, list[dict[str, Any]]] = {name: [] for name in targets}
    share = amount / rounds if isinstance(amount, float) else max(1, int(amount) // rounds)
    for _ in range(rounds):
        for name, (url, headers) in targets.items():
            per_target[name].append(asyncio.run(run_one(url, headers, share)))
    merged = {name: merge(parts) for name, parts in per_target.items()}
    for name, parts in per_target.items():
        merged[name]["rounds"] = [merge([part]) for part in parts]
    return merged


def round_ratios(results: dict[str, Any], field: str) -> dict[str, float]:
    """Kleis/bare per round (the two measured back to back), so a slow phase of the shared machine that hits one
    round does not tilt the figure: the median, and the range across rounds."""
    import statistics

    pairs = zip(results["kleis"]["rounds"], results["bare"]["rounds"], strict=False)
    ratios = sorted(k[field] / b[field] for k, b in pairs if b[field])
    return {"median": statistics.median(ratios), "min": ratios[0], "max": ratios[-1], "rounds": len(ratios)} if ratios else {}


def merge_latency(parts: list[dict[str, Any]]) -> dict[str, Any]:
    from bench.client import percentile

    samples = [value for part in parts for value in part["samples"]]
    return {"p50_ms": percentile(samples, 50), "p99_ms": percentile(samples, 99), "n": len(samples)}


def merge_throughput(parts: list[dict[str, Any]]) -> dict[str, Any]:
    requests = sum(p["requests"] for p in parts)
    seconds = sum(p["requests"] / p["rps"] for p in parts if p["rps"])
    return {"rps": requests / seconds if seconds else 0.0, "errors": sum(p["errors"] for p in parts), "requests": requests}


def kleis_env(data_dir: Path, upstream: str, query_log: Path) -> dict[str, str]:
    from store.crypto import new_secret_key

    return {
        "KLEIS_DATA_DIR": str(data_dir),
        "KLEIS_SECRET_KEY": new_secret_key(),
        "KLEIS_ADMIN_SECRET": "bench",
        "KLEIS_CLAUDE_API_BASE": upstream,
        "KLEIS_CLAUDE_AUTH_BASE": upstream,
        "KLEIS_CODEX_API_BASE": f"{upstream}/codex",  # the first-byte row's Kleis has the Codex provider too
        "KLEIS_CODEX_AUTH_BASE": upstream,
        "KLEIS_MODELS_DEV_URL": "http://127.0.0.1:9/api.json",
        "KLEIS_LOG_LEVEL": "WARNING",
        "BENCH_QUERY_LOG": str(query_log),
    }


def seed(env: dict[str, str]) -> tuple[str, int]:
    """A key and a Claude account in the store the Kleis processes will use."""
    sys.path.insert(0, str(ROOT))
    from core.config import load_config
    from store import keys
    from store.accounts import TokenSet, upsert_account
    from store.db import open_store

    store = open_store(load_config(env))
    _, key = keys.create_key("bench")
    row, _ = upsert_account(
        "claude", "bench-account", TokenSet("sk-ant-oat01-bench-start", "sk-ant-ort01-bench-start", time.time() + 8 * 3600), store.cipher
    )
    codex = TokenSet("bench-codex-access", "bench-codex-refresh", time.time() + 8 * 3600, {"account_id": "bench-chatgpt-account"})
    upsert_account("codex", "bench-codex-account", codex, store.cipher)
    store.close()
    return key, row.id


def expire(env: dict[str, str], account_id: int) -> None:
    from core.config import load_config
    from store.db import bump, open_store
    from store.models import Account

    store = open_store(load_config(env))
    Account.update(expires_at=time.time() - 60).where(Account.id == account_id).execute()
    bump("accounts")
    store.close()


def query_counts(process, path: Path) -> dict[str, int]:
    path.unlink(missing_ok=True)
    os.kill(process.pid, signal.SIGUSR1)
    for _ in range(100):
        if path.exists() and path.read_text():
            return json.loads(path.read_text())
        time.sleep(0.02)
    raise RuntimeError("Kleis did not report its query counts")


@dataclasses.dataclass
class Setup:
    """The processes one benchmark run measures: a loopback upstream, a bare mitmproxy, Kleis (and a second Kleis)."""

    work: Path
    env: dict[str, str]
    account_id: int
    auth: dict[str, str]
    upstream: str
    bare: str
    kleis: str
    processes: list[Any]
    kleis_process: Any

    @property
    def targets(self) -> dict[str, tuple[str, dict[str, str]]]:
        return {"direct": (self.upstream, {}), "bare": (self.bare, {}), "kleis": (self.kleis, self.auth)}

    def stop(self) -> None:
        for process in reversed(self.processes):
            stop(process)
        shutil.rmtree(self.work, ignore_errors=True)  # its store holds a generated secret key


def start() -> Setup:
    work = Path(tempfile.mkdtemp(prefix="kleis-bench-"))
    upstream_process, upstream_port = spawn("bench.upstream")
    upstream = f"http://127.0.0.1:{upstream_port}"
    env = kleis_env(work / "data", upstream, work / "queries.json")
    key, account_id = seed(env)
    bare_process, bare_port = spawn("bench.run_bare", upstream)
    kleis_process, kleis_port = spawn("bench.run_kleis", env=env)
    return Setup(
        work,
        env,
        account_id,
        {"authorization": f"Bearer {key}"},
        upstream,
        f"http://127.0.0.1:{bare_port}",
        f"http://127.0.0.1:{kleis_port}",
        [upstream_process, bare_process, kleis_process],
        kleis_process,
    )


def against_bare(setup: Setup, settings: dict[str, Any]) -> dict[str, Any]:
    """Latency and throughput of the three targets, round by round, with the Kleis/bare ratios."""
    latency = interleaved(setup.targets, measure.latency, settings["latency_n"], settings["rounds"], merge_latency)
    throughput = interleaved(
        setup.targets,
        lambda url, h, seconds: measure.throughput([url], h, 20, seconds),
        settings["tput_seconds"],
        settings["rounds"],
        merge_throughput,
    )
    ratios = {
        "latency_p50": round_ratios(latency, "p50_ms"),
        "latency_p99": round_ratios(latency, "p99_ms"),
        "throughput": round_ratios(throughput, "rps"),
    }
    streaming = {
        name: asyncio.run(measure.streaming(url, h, settings["stream_events"], settings["stream_interval"]))
        for name, (url, h) in setup.targets.items()
    }
    return {"latency": latency, "throughput": throughput, "ratios": ratios, "streaming": streaming}


def big_bodies_memory(setup: Setup, settings: dict[str, Any]) -> dict[str, Any]:
    """Kleis's peak RSS while 20 clients post the largest body at once, in each shape."""
    kb, clients, result = max(settings["body_sizes_kb"]), settings["memory_clients"], {}
    for shape in ("claude-code", "opencode"):
        reset_peak_rss(setup.kleis_process.pid)
        before = rss_mb(setup.kleis_process.pid)
        body = large.agent_body(kb * 1024, shape)
        ok = asyncio.run(measure.burst(setup.kleis, {**setup.auth, **large.headers_for(shape)}, clients, body))["ok"]
        result[shape] = {
            "kb": kb,
            "clients": clients,
            "ok": ok,
            "rss_before_mb": before,
            "peak_rss_mb": peak_rss_mb(setup.kleis_process.pid),
        }
    return result


def hot_path(setup: Setup, settings: dict[str, Any]) -> dict[str, int]:
    """Database queries made on the request path (and in the background) while Kleis serves steady traffic."""
    before = query_counts(setup.kleis_process, setup.work / "queries.json")
    steady = asyncio.run(measure.throughput([setup.kleis], setup.auth, 4, 0.0001 + settings["hot_requests"] / 400))
    after = query_counts(setup.kleis_process, setup.work / "queries.json")
    on_path = after["request_path_queries"] - before["request_path_queries"]
    return {
        "requests": steady["requests"] + 4,
        "request_path_queries": on_path,
        "background_queries": (after["all_queries"] - before["all_queries"]) - on_path,
    }


def refresh_burst(setup: Setup, settings: dict[str, Any]) -> dict[str, Any]:
    """A burst of requests on an account whose token has just expired: one refresh, every request served."""
    calls_before = asyncio.run(measure.upstream_stats(setup.upstream))["refresh_calls"]
    expire(setup.env, setup.account_id)
    time.sleep(0.6)  # the proxy's view follows the store within this
    result: dict[str, Any] = asyncio.run(measure.burst(setup.kleis, setup.auth, settings["burst"]))
    stats = asyncio.run(measure.upstream_stats(setup.upstream))
    result.update(refresh_calls=stats["refresh_calls"] - calls_before, reused_refresh=stats["reused_refresh"])
    return result


def first_byte(setup: Setup, settings: dict[str, Any]) -> dict[str, Any]:
    """Translated against native first byte, on a Kleis process of its own with the Codex provider too (the
    other rows' Kleis has Claude only)."""
    from bench import first_byte as measure_first_byte

    codex_kleis, port = spawn("bench.run_kleis", env={**setup.env, "BENCH_PROVIDERS": "claude,codex", "BENCH_QUERY_LOG": ""})
    try:
        return measure_first_byte.measure(f"http://127.0.0.1:{port}", setup.auth, settings["first_byte_pairs"])
    finally:
        stop(codex_kleis)


def scale_out(setup: Setup, settings: dict[str, Any]) -> dict[str, float]:
    """Throughput with a second Kleis process on the same store against one."""
    second, second_port = spawn("bench.run_kleis", env={**setup.env, "BENCH_QUERY_LOG": str(setup.work / "queries-2.json")})
    setup.processes.append(second)
    one = asyncio.run(measure.throughput([setup.kleis], setup.auth, 20, settings["tput_seconds"]))
    two = asyncio.run(measure.throughput([setup.kleis, f"http://127.0.0.1:{second_port}"], setup.auth, 20, settings["tput_seconds"]))
    return {"one_rps": one["rps"], "two_rps": two["rps"], "ratio": two["rps"] / one["rps"] if one["rps"] else float("nan")}


def run(settings: dict[str, Any]) -> dict[str, Any]:
    results: dict[str, Any] = {"settings": settings}
    setup = start()
    try:
        results["rss_start_mb"] = rss_mb(setup.kleis_process.pid)
        results.update(against_bare(setup, settings))
        results["large"] = large.measure(setup.targets, settings)
        results["hot_path"] = hot_path(setup, settings)
        reset_peak_rss(setup.kleis_process.pid)  # the agent-sized bodies before raised it: the peak is the streams'
        before_streams = rss_mb(setup.kleis_process.pid)
        results["streams"] = asyncio.run(
            measure.concurrent_streams(
                setup.kleis, setup.auth, settings["streams"], settings["stream_events_slow"], settings["stream_interval_slow"]
            )
        )
        results["streams"].update(peak_rss_mb=peak_rss_mb(setup.kleis_process.pid), rss_before_mb=before_streams)
        # after the streams: memory taken for big bodies is kept by the allocator for later ones
        results["large"]["memory"] = big_bodies_memory(setup, settings)
        results["large"]["bad_input"] = large.bad_input(setup.targets, settings)
        results["rss_end_mb"] = rss_mb(setup.kleis_process.pid)
        results["refresh"] = refresh_burst(setup, settings)
        results["scale_out"] = scale_out(setup, settings)
        results["first_byte"] = first_byte(setup, settings)
    finally:
        setup.stop()
    from bench import translation

    repeat = 3 if settings["rounds"] == 1 else 20
    results["translation"] = {
        "small": translation.measure(turns=10, chunks=50, repeat=repeat),
        "large": translation.measure(turns=100, chunks=200, repeat=repeat),
        "directions": translation.directions(turns=100, chunks=200, repeat=repeat),
    }
    return results


def machine() -> str:
    import mitmproxy.version

    return f"{os.cpu_count()} cores, Python {platform.python_version()}, mitmproxy {mitmproxy.version.VERSION}, {platform.machine()}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description="Kleis against a direct connection and a bare mitmproxy")
    parser.add_argument("--smoke", action="store_true", help="a few seconds: check the benchmark code still runs")
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    args = parser.parse_args(argv)
    results = run(SMOKE if args.smoke else FULL)
    results["machine"] = machine()
    results["mode"] = "smoke" if args.smoke else "full"
    print(f"Kleis benchmarks ({results['mode']}) — {results['machine']}; everything on 127.0.0.1, one run, so read ratios")
    print(table(results))
    out = args.json or (ROOT / "bench" / "results" / f"{results['mode']}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    for row in results.get("latency", {}).values():
        row.pop("samples", None)
        for part in row.get("rounds", []):
            part.pop("samples", None)
    out.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
