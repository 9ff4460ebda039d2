"""Claude drift through a live Kleis: a version floor Claude names is adopted (and the request tried once more), the
Claude Code version real clients show is learned, and the billing lanes Anthropic puts third-party traffic in since
2026-04 are explained to the client, recorded, shown on the account, and never cool it."""

from __future__ import annotations

import logging
import time

import anthropic
import httpx
import pytest

from addons.services import Parts
from admin.operations import describe
from engine.usage_recorder import UsageRecorder
from providers import drift
from providers.identity import Source
from providers.learned import CLAUDE_CODE_VERSION, CLAUDE_REQUIRED_VERSION
from store.models import Account, UsageEvent
from tests.fakes.claude import LONG_CONTEXT, THIRD_PARTY, long_context_billing, third_party_billing, version_floor
from tests.support.claude import CLAUDE_CODE_BODY, CLAUDE_CODE_HEADERS, start_claude
from tests.support.learned import stored_learned

ASK = {"max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}


def user_agents(api) -> list[str]:
    return [request.headers["user-agent"] for request in api.received("/v1/messages")]


def claude_code_call(url: str, key: str, model: str, version: str = "2.1.328") -> httpx.Response:
    headers = {**CLAUDE_CODE_HEADERS, "User-Agent": f"claude-cli/{version} (external, sdk-cli)", "authorization": f"Bearer {key}"}
    return httpx.post(f"{url}/v1/messages", json={**CLAUDE_CODE_BODY, "model": model, "stream": False}, headers=headers, timeout=20)


def test_a_version_claude_names_is_adopted_and_the_request_sent_once_more(
    store, config, run_proxy, claude_auth, claude_api, caplog, monkeypatch
) -> None:
    monkeypatch.setattr(drift, "_logged", set())
    claude_api.validators.append(version_floor({"claude-opus-5-5": "2.1.400"}))
    live = start_claude(store, config, run_proxy, claude_auth, claude_api)
    with caplog.at_level(logging.WARNING):
        message = live.client().messages.create(model="claude-opus-5-5", **ASK)
    assert message.content[0].text == "Hello from fake Claude"  # the client saw only the second answer
    assert user_agents(claude_api) == ["claude-cli/2.1.328 (external, cli)", "claude-cli/2.1.400 (external, cli)"]
    assert any("now presents 2.1.400" in r.getMessage() and "KLEIS_CLAUDE_CODE_VERSION" in r.getMessage() for r in caplog.records)
    assert stored_learned(CLAUDE_REQUIRED_VERSION) == "2.1.400"
    presented = live.proxy.services.providers["claude"].identity().values[0]
    assert (presented.value, presented.source) == ("2.1.400", Source.ADOPTED)
    live.client().messages.create(model="claude-opus-5-5", **ASK)
    assert len(claude_api.received("/v1/messages")) == 3  # from now on it goes with the adopted version at once
    live.proxy.stop()
    restarted = start_claude(store, config, run_proxy, claude_auth, claude_api)  # a restart on the same store
    kept = restarted.proxy.services.providers["claude"].identity().values[0]
    assert (kept.value, kept.source) == ("2.1.400", Source.ADOPTED)


def test_a_stream_is_asked_to_retry_once_the_version_is_adopted(store, config, run_proxy, claude_auth, claude_api) -> None:
    """A stream cannot be re-sent without buffering the new one; nothing has reached the client yet, so it is told to
    retry at once, and the SDK's own retry carries the adopted version."""
    claude_api.validators.append(version_floor({"claude-opus-5-5": "2.1.400", "claude-fable-5-1": "2.1.500"}))
    live = start_claude(store, config, run_proxy, claude_auth, claude_api)
    with pytest.raises(anthropic.APIStatusError) as caught:
        with live.client().messages.stream(model="claude-opus-5-5", **ASK) as stream:
            "".join(stream.text_stream)
    assert caught.value.status_code == 503 and caught.value.response.headers["x-should-retry"] == "true"
    assert "now presents 2.1.400" in caught.value.message and "Retry the request" in caught.value.message
    with live.client(max_retries=2).messages.stream(model="claude-fable-5-1", **ASK) as stream:  # the SDK retries by itself
        assert "".join(stream.text_stream) == "Hello from fake Claude"
    assert user_agents(claude_api)[-2:] == ["claude-cli/2.1.400 (external, cli)", "claude-cli/2.1.500 (external, cli)"]


def test_real_claude_code_is_told_to_update_and_nothing_is_adopted(store, config, run_proxy, claude_auth, claude_api) -> None:
    claude_api.validators.append(version_floor({"claude-opus-5-5": "2.1.400"}))
    live = start_claude(store, config, run_proxy, claude_auth, claude_api)
    refused = claude_code_call(live.proxy.url, live.key, "claude-opus-5-5")
    assert refused.status_code == 400 and refused.headers["x-should-retry"] == "false"
    message = refused.json()["error"]["message"]
    assert "version 2.1.400 or newer is required" in message and "update Claude Code (`claude update`) to 2.1.400" in message
    assert refused.json()["error"]["details"] == {"error_code": "claude_code_version_too_old"}  # the provider's own body kept
    assert len(claude_api.received("/v1/messages")) == 1 and live.proxy.services.learned.get(CLAUDE_REQUIRED_VERSION) is None


def test_the_claude_code_version_real_clients_show_is_learned(store, config, run_proxy, claude_auth, claude_api) -> None:
    live = start_claude(store, config, run_proxy, claude_auth, claude_api)
    assert claude_code_call(live.proxy.url, live.key, "claude-sonnet-5", version="2.1.350").status_code == 200
    live.client().messages.create(model="claude-sonnet-5", **ASK)
    assert user_agents(claude_api) == ["claude-cli/2.1.350 (external, sdk-cli)", "claude-cli/2.1.350 (external, cli)"]
    assert stored_learned(CLAUDE_CODE_VERSION) == "2.1.350"
    identity = live.proxy.services.providers["claude"].identity()
    assert identity.values[0].source is Source.LEARNED and "the built-in default is older than 2.1.350" in identity.warnings[0]


def test_an_implausible_version_a_client_claims_is_not_learned(store, config, run_proxy, claude_auth, claude_api) -> None:
    live = start_claude(store, config, run_proxy, claude_auth, claude_api)
    for claimed in ("99.0.0", "2.9999.0"):  # any key holder can send these; Claude accepts the request all the same
        assert claude_code_call(live.proxy.url, live.key, "claude-sonnet-5", version=claimed).status_code == 200
    live.client().messages.create(model="claude-sonnet-5", **ASK)
    assert user_agents(claude_api)[-1] == f"claude-cli/{config.claude_code_version} (external, cli)"  # others unchanged
    assert live.proxy.services.learned.get(CLAUDE_CODE_VERSION) is None


def test_third_party_traffic_billed_to_extra_usage_is_explained_recorded_and_shown(
    store, config, run_proxy, claude_auth, claude_api, kleis_cli
) -> None:
    claude_api.validators.append(third_party_billing)
    usage = UsageRecorder(interval=0.05)
    live = start_claude(store, config, run_proxy, claude_auth, claude_api, Parts(health=True, usage=usage))
    with pytest.raises(anthropic.BadRequestError) as caught:
        live.client().messages.create(model="claude-sonnet-5", **ASK)
    message = caught.value.message
    assert THIRD_PARTY in message and "bills this account's traffic from clients other than Claude Code to its extra usage" in message
    assert caught.value.body["type"] == "error" and caught.value.body["error"]["type"] == "invalid_request_error"  # Anthropic's shape
    assert claude_code_call(live.proxy.url, live.key, "claude-sonnet-5").status_code == 200  # Claude Code's own block passes
    assert claude_api.last("/v1/messages").json["system"] == CLAUDE_CODE_BODY["system"]  # unchanged, attestation included
    deadline = time.time() + 5
    while Account.get_by_id(live.account_id).meta.get("third_party_billing") != "extra_usage" or UsageEvent.select().count() < 2:
        assert time.time() < deadline, "the account note and the usage events were not stored"
        time.sleep(0.05)
    row = Account.get_by_id(live.account_id)
    assert row.status == "active" and isinstance(row.meta["third_party_billing_since"], float)  # noted, never cooled
    [refused] = [e for e in UsageEvent.select() if e.status == 400]
    assert "third_party_extra_usage" in refused.error_type
    note = "bills third-party traffic (clients other than Claude Code) to extra usage (since "
    assert describe(row)["billing"][0].startswith(note)  # the admin's accounts page and API
    kleis_cli.settings["KLEIS_SECRET_KEY"] = config.secret_key
    shown = kleis_cli("accounts", "show", str(live.account_id))
    assert shown.returncode == 0 and f"  billing: {note}" in shown.stdout, shown.stderr


def test_long_context_billed_to_extra_usage_never_cools_the_account(store, config, run_proxy, claude_auth, claude_api) -> None:
    claude_api.validators.append(long_context_billing)
    live = start_claude(store, config, run_proxy, claude_auth, claude_api)
    client = live.client(max_retries=2)
    with pytest.raises(anthropic.RateLimitError) as caught:  # x-should-retry: false — the SDK does not retry it
        client.messages.create(model="claude-sonnet-5", extra_headers={"anthropic-beta": "context-1m-2025-08-07"}, **ASK)
    assert LONG_CONTEXT in caught.value.message and "The account stays in use" in caught.value.message
    assert caught.value.response.headers["x-should-retry"] == "false" and len(claude_api.received("/v1/messages")) == 1
    assert client.messages.create(model="claude-sonnet-5", **ASK).content[0].text == "Hello from fake Claude"
    assert [a.status for a in live.proxy.services.follower.accounts] == ["active"]
    assert Account.get_by_id(live.account_id).status == "active"
