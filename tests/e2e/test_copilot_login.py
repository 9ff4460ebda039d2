"""The Copilot device flow against the fake GitHub: pending, slow_down, success, pacing, errors, modes, enterprise.
Here the parts that need a listener; the rest: tests/unit/test_copilot_login.py."""

from __future__ import annotations

import json
import time

import pytest

from cli.logins import copilot as copilot_cli
from core.exceptions import InvalidInput, ProviderError
from providers.copilot import login
from store.models import Account, OAuthState
from tests.fakes.base import Reply
from tests.fakes.github import OPENCODE_CLIENT_ID
from tests.support.accounts import account_view


def poll_until_done(store, config, flow_id: str, limit: int = 20) -> list:
    """Call complete_login the way the CLI does, sleeping what it says; returns every result."""
    results = []
    for _ in range(limit):
        result = login.complete_login(store, config, flow_id, {})
        results.append(result)
        if result.status == "done":
            return results
        time.sleep(result.interval)
    raise AssertionError(f"login not done after {limit} polls: {results}")


def test_device_flow_pending_then_slow_down_then_success(store, copilot_config, github) -> None:
    start = login.start_login(store, copilot_config)
    assert start.kind == "device" and start.provider == "copilot"
    assert start.verification_uri == f"{github.url}/login/device" and start.user_code and start.interval == pytest.approx(0.2)
    assert start.warning == login.TERMS_WARNING
    asked = github.last("/login/device/code")
    assert asked.json == {"client_id": "Iv1.b507a08c87ecfe98", "scope": "read:user"}
    assert asked.headers["accept"] == "application/json"

    time.sleep(start.interval)
    results = poll_until_done(store, copilot_config, start.flow_id)
    polls = github.received("/login/oauth/access_token")
    assert [r.status for r in results] == ["pending", "pending", "done"]
    assert results[1].interval == pytest.approx(0.4)  # slow_down: the interval GitHub returned
    assert len(polls) == 3 and github.too_fast_polls == 0
    assert polls[2].at - polls[1].at >= 0.35  # the slower pace was kept
    assert all(p.json["grant_type"] == "urn:ietf:params:oauth:grant-type:device_code" for p in polls)

    done = results[-1]
    account = account_view(store, done.account_id)
    assert done.created and "octocat" in done.message and "token exchange" in done.message
    assert account.identity == github.url.removeprefix("http://") + "/583231" and account.label == "octocat"
    assert account.access_token.startswith("tid=") and account.refresh_token.startswith("gho_")
    assert account.metadata["mode"] == "exchange" and account.metadata["api_base"] == github.api_url
    assert OAuthState.select().count() == 0  # the device code is gone once used


def test_an_early_call_does_not_poll_github(store, copilot_config, github) -> None:
    start = login.start_login(store, copilot_config)
    first = login.complete_login(store, copilot_config, start.flow_id, {})
    assert first.status == "pending" and 0 < first.interval <= 0.2
    assert github.received("/login/oauth/access_token") == []


def test_slow_down_without_an_interval_adds_five_seconds(store, copilot_config, github) -> None:
    start = login.start_login(store, copilot_config)
    time.sleep(start.interval)
    github.enqueue("POST", "/login/oauth/access_token", Reply(200, {"error": "slow_down"}))
    result = login.complete_login(store, copilot_config, start.flow_id, {})
    assert result.status == "pending" and result.interval == pytest.approx(5.2)
    again = login.complete_login(store, copilot_config, start.flow_id, {})
    assert again.status == "pending" and again.interval > 4  # still waits (a margin for a busy machine), without asking GitHub
    assert len(github.received("/login/oauth/access_token")) == 1


@pytest.mark.parametrize(
    ("error", "fragment"),
    [("expired_token", "expired before it was entered"), ("access_denied", "cancelled"), ("unsupported_grant_type", "GitHub device login")],
)
def test_device_flow_errors_end_the_login(store, copilot_config, github, error: str, fragment: str) -> None:
    github.script = [error]
    start = login.start_login(store, copilot_config)
    time.sleep(start.interval)
    with pytest.raises((InvalidInput, ProviderError), match=fragment):
        login.complete_login(store, copilot_config, start.flow_id, {})
    assert Account.select().count() == 0
    with pytest.raises(InvalidInput, match="unknown"):
        login.complete_login(store, copilot_config, start.flow_id, {})


def test_waiting_times_out_cleanly(store, copilot_config, github) -> None:
    github.script = ["authorization_pending"] * 50
    start = login.start_login(store, copilot_config)
    began = time.time()
    with pytest.raises(Exception, match="not finished within 0.7s") as info:
        copilot_cli.wait_for_login(store, copilot_config, start.flow_id, 0.7)
    assert time.time() - began < 1.5 and "--poll " + start.flow_id in str(info.value)
    assert github.too_fast_polls == 0 and Account.select().count() == 0


def test_a_failed_account_write_can_be_finished_later(store, copilot_config, github, copilot_api) -> None:
    github.script = []
    start = login.start_login(store, copilot_config)
    time.sleep(start.interval)
    github.enqueue("GET", "/copilot_internal/v2/token", Reply(502, {"message": "bad gateway"}))
    with pytest.raises(ProviderError, match="502"):
        login.complete_login(store, copilot_config, start.flow_id, {})
    done = login.complete_login(store, copilot_config, start.flow_id, {})  # GitHub's token was kept, encrypted
    assert done.status == "done" and len(github.received("/login/oauth/access_token")) == 1


def test_the_same_user_logging_in_again_updates_its_row(store, copilot_config, github) -> None:
    github.script = []
    first = poll_until_done(store, copilot_config, login.start_login(store, copilot_config).flow_id)[-1]
    second = poll_until_done(store, copilot_config, login.start_login(store, copilot_config).flow_id)[-1]
    assert first.account_id == second.account_id and first.created and not second.created
    assert Account.select().count() == 1


def test_direct_mode_for_a_client_id_the_exchange_refuses(store, copilot_config, github) -> None:
    config = copilot_config.replace(copilot_client_id=OPENCODE_CLIENT_ID)
    github.script = []
    done = poll_until_done(store, config, login.start_login(store, config).flow_id)[-1]
    account = account_view(store, done.account_id)
    assert "direct mode" in done.message
    assert github.last("/copilot_internal/v2/token") and github.exchanges == 0
    assert account.access_token == account.refresh_token and account.access_token.startswith("gho_")
    assert account.expires_at is None and account.metadata["mode"] == "direct"


def test_device_code_refused(store, copilot_config, github) -> None:
    github.enqueue(
        "POST",
        "/login/device/code",
        Reply(400, {"error": "unauthorized_client", "error_description": "device flow is disabled for this app"}),
    )
    with pytest.raises(ProviderError, match="device flow is disabled"):
        login.start_login(store, copilot_config)


def test_github_unreachable(store, config) -> None:
    with pytest.raises(ProviderError, match="could not reach"):
        login.start_login(store, config)  # the default test configuration points at a closed port


def test_login_state_holds_no_readable_secret(store, copilot_config, github) -> None:
    start = login.start_login(store, copilot_config)
    code = next(iter(github.devices))  # the device code the fake issued
    row = OAuthState.get(OAuthState.state == start.flow_id)
    assert code not in row.verifier and code not in row.flow_data
    assert json.dumps(start.to_dict()).count(code) == 0  # --no-wait prints this: it must not carry the device code


def test_an_account_without_copilot_is_refused_and_the_login_ends(store, copilot_config, github) -> None:
    github.script = []
    github.user.copilot = False
    start = login.start_login(store, copilot_config)
    time.sleep(start.interval)
    with pytest.raises(ProviderError, match="cannot use Copilot"):
        login.complete_login(store, copilot_config, start.flow_id, {})
    assert Account.select().count() == 0 and OAuthState.select().count() == 0
