"""Subscription quota readings: each provider's reader, what saving / rejected / stale mean, merging, and display."""

from __future__ import annotations

import time

import pytest

from core.display import fmt_in
from providers import quota
from providers.claude.quota import read_unified
from providers.codex.quota import read_usage_headers
from providers.copilot.quota import read_copilot_user, reset_time
from providers.quota import QuotaReading, QuotaWindow, WindowState
from tests.fakes.quota import claude_unified, codex_usage

NOW = 1_800_000_000.0


def test_claude_unified_headers_with_a_per_model_window() -> None:
    headers = claude_unified(0.97, 0.41, five_hour_reset=1800, overage="allowed", extra={"7d_oi": 0.3})
    reading = read_unified(headers, NOW)
    assert reading is not None
    five, seven, model = reading.window("5h"), reading.window("7d"), reading.window("7d_oi")
    assert five is not None and five.used == 0.97 and five.status == "allowed"
    assert five.resets_at == pytest.approx(time.time() + 1800, abs=5)
    assert seven is not None and seven.used == 0.41 and model is not None and model.used == 0.3
    assert (reading.status, reading.claim, reading.overage, reading.fallback) == ("allowed_warning", "five_hour", "allowed", 0.5)
    assert {w.name for w in reading.windows} == {"5h", "7d", "7d_oi"}  # the overall fields are not windows


def test_claude_resets_in_milliseconds_and_answers_without_headers() -> None:
    reading = read_unified({"anthropic-ratelimit-unified-status": "rejected", "anthropic-ratelimit-unified-reset": "1800000600000"}, NOW)
    assert reading is not None and reading.resets_at == 1_800_000_600.0 and reading.rejected(NOW)
    assert read_unified({"content-type": "application/json"}, NOW) is None


def test_codex_usage_headers() -> None:
    reading = read_usage_headers(codex_usage(96.5, 12, primary_reset=600), NOW)
    assert reading is not None
    primary, secondary = reading.window("primary"), reading.window("secondary")
    assert primary is not None and primary.used == pytest.approx(0.965) and primary.resets_at == NOW + 600 and primary.minutes == 300
    assert secondary is not None and secondary.used == pytest.approx(0.12) and secondary.minutes == 10080
    assert read_usage_headers({}, NOW) is None


def test_copilot_premium_requests() -> None:
    body = {
        "quota_reset_date": "2026-12-01",
        "quota_snapshots": {
            "premium_interactions": {"entitlement": 300, "remaining": 15, "percent_remaining": 5.0, "unlimited": False},
            "chat": {"unlimited": True},
        },
    }
    reading = read_copilot_user(body, NOW)
    assert reading is not None
    [premium] = reading.windows
    assert premium.name == "premium" and premium.used == pytest.approx(0.95) and premium.resets_at == reset_time("2026-12-01T00:00:00Z")
    unlimited = read_copilot_user({"quota_snapshots": {"premium_interactions": {"unlimited": True}}}, NOW)
    assert unlimited is not None and unlimited.windows[0].used == 0.0
    counted = read_copilot_user({"quota_snapshots": {"premium_interactions": {"entitlement": 50, "remaining": 40}}}, NOW)
    assert counted is not None and counted.windows[0].used == pytest.approx(0.2)
    assert read_copilot_user({"login": "ada"}, NOW) is None


def window(name: str, used: float | None, resets_in: float | None = 3600, status: str = "") -> QuotaWindow:
    return QuotaWindow(name, used, None if resets_in is None else NOW + resets_in, status, NOW - 10)


def test_saving_rejected_headroom_and_stale() -> None:
    busy = QuotaReading((window("5h", 0.97), window("7d", 0.2)), NOW)
    assert busy.saving(0.95, NOW) and not busy.rejected(NOW) and busy.headroom(NOW) == pytest.approx(0.03)
    assert not busy.saving(0.98, NOW)
    stale = QuotaReading((window("5h", 0.99, resets_in=-60), window("7d", 0.2)), NOW)
    assert not stale.saving(0.95, NOW) and stale.headroom(NOW) == pytest.approx(0.8)  # the old 99 % says nothing now
    assert stale.windows[0].state(0.95, NOW) is WindowState.STALE
    refused = QuotaReading((window("5h", 0.5, status="rejected"),), NOW)
    assert refused.rejected(NOW) and refused.saving(0.95, NOW)
    overall = QuotaReading((), NOW, status="rejected", resets_at=NOW + 120)
    assert overall.rejected(NOW) and overall.soonest_reset(0.95, NOW) == NOW + 120 and not overall.rejected(NOW + 121)
    assert QuotaReading((), NOW).headroom(NOW) == 1.0


def test_a_newer_reading_replaces_the_windows_it_names() -> None:
    old = QuotaReading((window("5h", 0.5), window("premium", 0.3)), NOW - 5, claim="five_hour")
    new = QuotaReading((window("5h", 0.6),), NOW, claim="seven_day")
    merged = quota.merge(old, new)
    assert {w.name: w.used for w in merged.windows} == {"premium": 0.3, "5h": 0.6} and merged.claim == "seven_day"
    assert quota.merge(new, old) is new  # an older reading arriving late changes nothing
    assert quota.from_dict(quota.to_dict(merged)) == merged


def test_the_view_shows_each_window_with_its_state_and_stale_as_stale() -> None:
    reading = QuotaReading((window("7d", 0.2), window("5h", 0.97, resets_in=-30)), NOW, claim="five_hour")
    shown = quota.view(reading, 0.95, NOW)
    assert shown is not None and [w["window"] for w in shown["windows"]] == ["5h", "7d"]  # the short window first
    assert [w["state"] for w in shown["windows"]] == ["stale", "ok"] and shown["state"] == "ok"
    line = quota.summary(shown, lambda at: fmt_in(at, NOW))
    assert line == "5h 97% stale (reset 30s ago); 7d 20% ok (resets in 1h 0m)"
    assert quota.view(None, 0.95, NOW) is None and quota.summary(None, str) == "-"


@pytest.mark.parametrize("bad", ["inf", "-inf", "nan", "1e400", "NaN", "Infinity"])
def test_non_finite_numbers_from_any_reader_are_dropped(bad: str) -> None:
    claude = claude_unified(0.5, 0.2)
    claude.update({"anthropic-ratelimit-unified-5h-reset": bad, "anthropic-ratelimit-unified-7d-utilization": bad})
    clean, problems = quota.sanitized(read_unified(claude, NOW), NOW)  # type: ignore[arg-type]
    assert (clean.window("5h").used, clean.window("5h").resets_at) == (0.5, None)  # type: ignore[union-attr]
    assert clean.window("7d").used is None and len(problems) == 2  # type: ignore[union-attr]
    codex = codex_usage(10, 20)
    codex.update({"x-codex-primary-used-percent": bad, "x-codex-primary-window-minutes": bad, "x-codex-secondary-reset-after-seconds": bad})
    clean, problems = quota.sanitized(read_usage_headers(codex, NOW), NOW)  # type: ignore[arg-type]
    primary, secondary = clean.window("primary"), clean.window("secondary")
    assert primary is not None and (primary.used, primary.minutes) == (None, None)
    assert secondary is not None and secondary.used == pytest.approx(0.2) and secondary.resets_at is None and problems
    copilot = read_copilot_user({"quota_snapshots": {"premium_interactions": {"percent_remaining": float(bad), "remaining": 1}}}, NOW)
    assert copilot is not None and copilot.windows[0].used is None


def test_shares_and_resets_out_of_range_are_dropped_and_windows_capped() -> None:
    windows = (
        QuotaWindow("5h", 97.0, NOW + 3600, "allowed", NOW),  # a percent where a fraction belongs
        QuotaWindow("7d", -0.1, NOW + 400 * 86400, "allowed", NOW),  # a reset more than a year ahead
        *(QuotaWindow(f"7d_w{n:03d}", 0.1, NOW + 86400, "allowed", NOW) for n in range(400)),
    )
    clean, problems = quota.sanitized(QuotaReading(windows, NOW, fallback=1e9), NOW)
    assert [w.name for w in clean.windows[:3]] == ["5h", "7d", "7d_w000"] and len(clean.windows) == quota.MAX_WINDOWS
    assert clean.window("5h").used is None and clean.window("7d").used is None and clean.window("7d").resets_at is None  # type: ignore[union-attr]
    assert clean.fallback is None and any("390 windows" in p for p in problems)
    good = QuotaReading((QuotaWindow("5h", 0.97, NOW + 3600, "allowed", NOW),), NOW)
    assert quota.sanitized(good, NOW) == (good, [])
    merged = quota.merge(clean, QuotaReading((QuotaWindow("7d_zzz", 0.1, NOW + 60, "", NOW + 1),), NOW + 1))
    assert len(merged.windows) == quota.MAX_WINDOWS and merged.window("5h") is not None  # merging keeps the cap
