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
