"""The benchmark's printed table: one row per measure, from the results `python -m bench` gathers."""

from __future__ import annotations

from typing import Any

Row = tuple[str, str, str, str, str, str]


def latency_rows(r: dict[str, Any]) -> list[Row]:
    lat, tput, ratios = r["latency"], r["throughput"], r.get("ratios", {})
    direct, bare, kleis = lat["direct"], lat["bare"], lat["kleis"]
    return [
        (
            "latency p50 (ms)",
            f"{direct['p50_ms']:.2f}",
            f"{bare['p50_ms']:.2f}",
            f"{kleis['p50_ms']:.2f}",
            _ratio(ratios.get("latency_p50"), kleis["p50_ms"] / bare["p50_ms"]),
            "≤ 1.25",
        ),
        (
            "latency p99 (ms)",
            f"{direct['p99_ms']:.2f}",
            f"{bare['p99_ms']:.2f}",
            f"{kleis['p99_ms']:.2f}",
            _ratio(ratios.get("latency_p99"), kleis["p99_ms"] / bare["p99_ms"]),
            "≤ 2",
        ),
        (
            "Kleis − direct, p50 / p99 (ms)",
            "",
            "",
            "",
            f"{kleis['p50_ms'] - direct['p50_ms']:.2f} / {kleis['p99_ms'] - direct['p99_ms']:.2f}",
            "",
        ),
        (
            "throughput, 20 conns (req/s)",
            f"{tput['direct']['rps']:.0f}",
            f"{tput['bare']['rps']:.0f}",
            f"{tput['kleis']['rps']:.0f}",
            _ratio(ratios.get("throughput"), tput["kleis"]["rps"] / tput["bare"]["rps"]),
            "≥ 0.80",
        ),
    ]


def stream_rows(r: dict[str, Any]) -> list[Row]:
    st, streams = r["streaming"], r["streams"]
    renamed = st["kleis"]["tool_name_restored"] and st["kleis"]["tool_renamed_upstream"]
    return [
        (
            f"stream delay p50/p99/max (ms), {st['kleis']['events']} events",
            _triple(st["direct"]),
            _triple(st["bare"]),
            _triple(st["kleis"]),
            "tool renamed upstream and restored" if renamed else "tool rename NOT verified",
            "p99 ≤ 5",
        ),
        (
            "stream first byte (ms)",
            f"{st['direct']['first_byte_ms']:.1f}",
            f"{st['bare']['first_byte_ms']:.1f}",
            f"{st['kleis']['first_byte_ms']:.1f}",
            "",
            "",
        ),
        (
            f"{streams['streams']} concurrent streams",
            "",
            "",
            f"{streams['errors'] + streams['short']} errors",
            f"peak RSS {streams['peak_rss_mb']:.0f} MB"
            + (f" ({streams['rss_before_mb']:.0f} before)" if "rss_before_mb" in streams else ""),
            "0, < 250 MB",
        ),
    ]


def store_rows(r: dict[str, Any]) -> list[Row]:
    refresh, hot, scale = r["refresh"], r["hot_path"], r["scale_out"]
    return [
        (
            f"refresh under contention ({refresh['count']} req)",
            "",
            "",
            f"{refresh['ok']} ok in {refresh['seconds']:.2f}s",
            f"{refresh['refresh_calls']} refresh call(s)",
            "1",
        ),
        (
            "database queries per request",
            "",
            "",
            f"{hot['request_path_queries']} in {hot['requests']} req",
            f"{hot['request_path_queries'] / max(1, hot['requests']):.2f} per request",
            "0",
        ),
        (
            "scale-out, 2 processes vs 1 (req/s)",
            "",
            "",
            f"{scale['one_rps']:.0f} → {scale['two_rps']:.0f}",
            f"×{scale['ratio']:.2f}",
            "≥ 1.7",
        ),
    ]


def translation_rows(r: dict[str, Any]) -> list[Row]:
    """Messages → Responses (Claude Code on Codex) against the native Codex path, in process."""
    rows: list[Row] = []
    for size in ("small", "large"):
        t = r["translation"][size]
        rows.append(
            (
                f"translation, request ({t['body_kb']:.0f} KB Claude Code body)",
                "",
                f"native {t['request_native_us'] / 1000:.2f} ms",
                f"{t['request_translated_us'] / 1000:.2f} ms",
                f"+{t['request_added_ms']:.2f} ms",
                "≤ 0.3 ms",
            )
        )
    for direction, d in r["translation"].get("directions", {}).items():
        rows.append(
            (
                f"translation {direction}: request ({d['body_kb']:.0f} KB) / per event, all of it",
                "",
                "",
                f"{d['request_ms']:.2f} ms / {d['event_us']:.1f} µs",
                "",
                "≤ 0.3 ms / ≤ 50 µs",
            )
        )
    fb = r.get("first_byte")
    if fb:
        low, high = fb["added_iqr_ms"]
        rows.append(
            (
                f"translation, first byte, live ({fb['kb']} KB Claude Code body on gpt-5.4, {fb['pairs']} pairs)",
                "",
                f"native {fb['native_p50_ms']:.2f} ms",
                f"{fb['translated_p50_ms']:.2f} ms",
                f"+{fb['added_ms']:.2f} ms (IQR {low:.2f}–{high:.2f})",
                "≤ 1 ms",
            )
        )
    t = r["translation"]["large"]
    rows.append(
        (
            f"translation, per streamed event ({t['events']} events)",
            "",
            f"native {t['event_native_us']:.1f} µs",
            f"{t['event_translated_us']:.1f} µs",
            f"+{t['event_added_us']:.1f} µs",
            "≤ 50 µs",
        )
    )
    return rows


def large_rows(r: dict[str, Any]) -> list[Row]:
    """Agent-sized bodies: Kleis − bare at each size and shape, and stream lateness while 1 MB bodies are posted."""
    targets = {500: "≤ 1 ms", 1536: "≤ 2 ms"}
    rows: list[Row] = []
    for row in r["large"]["sizes"]:
        low, high = row["added_iqr_ms"]
        rows.append(
            (
                f"{row['kb']} KB body, {row['shape']} (p50 ms)",
                "",
                f"{row['bare_p50_ms']:.1f}",
                f"{row['kleis_p50_ms']:.1f}",
                f"+{row['added_ms']:.1f} ms (IQR {low:.1f}–{high:.1f}), ×{row['ratio']:.2f}",
                targets.get(min(targets, key=lambda kb: abs(kb - row["kb"])), "") if row["kb"] >= 400 else "",
            )
        )
    for shape, memory in r["large"].get("memory", {}).items():
        rows.append(
            (
                f"peak RSS, {memory['clients']} clients posting {memory['kb']} KB at once ({shape})",
                "",
                "",
                f"{memory['peak_rss_mb']:.0f} MB",
                f"{memory['ok']}/{memory['clients']} ok, {memory['rss_before_mb']:.0f} MB before",
                "",
            )
        )
    for shape, late in r["large"]["lateness"].items():
        rows.append(lateness_row(f"2 clients posting {r['settings']['load_body_kb']} KB ({shape})", late))
    for label, late in r["large"].get("bad_input", {}).items():
        rows.append(lateness_row(f"1 client posting {label}", late))
    return rows


def lateness_row(load: str, late: dict[str, Any]) -> Row:
    """Stream lateness under `load`, bare and Kleis."""
    return (
        f"stream lateness p50/p99/max (ms), {load}",
        "",
        _triple(late["bare"]),
        _triple(late["kleis"]),
        f"{late['kleis']['posted']} bodies posted (bare {late['bare']['posted']})",
        "p99 ≤ 10",
    )


def table(r: dict[str, Any]) -> str:
    rows = [*latency_rows(r), *large_rows(r), *stream_rows(r), *store_rows(r), *translation_rows(r)]
    headers = ("measure", "direct", "bare mitmproxy", "Kleis", "ratio / result", "target")
    widths = [max(len(str(row[i])) for row in (*rows, headers)) for i in range(len(headers))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(headers, widths, strict=False)), "  ".join("-" * w for w in widths)]
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=False)) for row in rows]
    return "\n".join(lines)


def _ratio(per_round: dict[str, float] | None, pooled: float) -> str:
    """The median of the per-round Kleis/bare ratios and their range (pooled samples when there is one round)."""
    if not per_round or per_round.get("rounds", 0) < 2:
        return f"Kleis/bare {pooled:.2f}"
    return f"Kleis/bare {per_round['median']:.2f} ({per_round['min']:.2f}–{per_round['max']:.2f})"


def _triple(s: dict[str, Any]) -> str:
    return f"{s['p50_ms']:.1f} / {s['p99_ms']:.1f} / {s['max_ms']:.1f}"
