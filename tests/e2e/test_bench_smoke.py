"""`make bench-smoke` inside `make test`: the benchmark code runs end to end, so it cannot rot."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_smoke_runs_and_reports_every_figure(tmp_path: Path) -> None:
    out = tmp_path / "smoke.json"
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--json", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=180
    )
    assert result.returncode == 0, result.stderr[-2000:]
    figures = json.loads(out.read_text())
    for target in ("direct", "bare", "kleis"):
        assert figures["latency"][target]["p50_ms"] > 0 and figures["throughput"][target]["rps"] > 0
        assert figures["streaming"][target]["events"] == figures["settings"]["stream_events"]
    kleis_stream = figures["streaming"]["kleis"]
    assert kleis_stream["tool_renamed_upstream"] and kleis_stream["tool_name_restored"]  # the Claude rewrite was active both ways
    assert not figures["streaming"]["bare"]["tool_renamed_upstream"]  # a pass-through proxy renames nothing
    assert figures["streams"]["errors"] == 0 and figures["streams"]["peak_rss_mb"] > 0
    assert figures["refresh"]["ok"] == figures["refresh"]["count"] and figures["refresh"]["refresh_calls"] == 1
    assert figures["hot_path"]["request_path_queries"] == 0
    assert figures["scale_out"]["two_rps"] > 0
    first_byte = figures["first_byte"]  # Claude Code's body on a Codex model through a live Kleis, against native
    assert first_byte["pairs"] == figures["settings"]["first_byte_pairs"] and first_byte["translated_p50_ms"] > 0
    assert first_byte["native_p50_ms"] > 0 and "translation, first byte" in result.stdout
    assert "latency p50" in result.stdout and "scale-out" in result.stdout and "translation, per streamed event" in result.stdout
    for size in ("small", "large"):
        translated = figures["translation"][size]
        assert translated["request_translated_us"] > 0 and translated["event_translated_us"] > 0 and translated["events"] > 10
