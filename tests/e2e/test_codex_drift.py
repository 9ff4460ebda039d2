"""Codex drift through a live Kleis: the backend's client-version gate, Codex CLI's own identity, the version Kleis
learns from it (kept across a restart, shared by processes on one store) and the body fields the backend refuses."""

from __future__ import annotations

import logging
import time

import httpx
import openai
import pytest

from providers import drift
from providers.identity import Source
from providers.learned import CODEX_CLI_VERSION
from store.models import Account
from tests.support.codex import ENDPOINT, codex_cli_headers, start_codex
from tests.support.learned import stored_learned

CLI_BODY = {"model": "gpt-6-sol", "input": [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}]}


def codex_cli_call(url: str, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(f"{url}/v1/responses", json={**CLI_BODY, "stream": True}, headers=headers, timeout=20)


def test_an_sdk_client_reaches_gpt_6_sol_as_a_current_codex_cli(store, config, run_proxy, codex_auth, codex_backend) -> None:
    kleis = start_codex(store, config, run_proxy, codex_auth, codex_backend)
    assert kleis.client().responses.create(model="gpt-6-sol", input="hi").output_text == "Hi there"
    seen = codex_backend.last(ENDPOINT).headers
    assert seen["version"] == config.codex_client_version == "0.171.0"
    assert seen["user-agent"].startswith("codex_cli_rs/0.171.0 (") and seen["originator"] == "codex_cli_rs"


def test_an_old_presented_version_is_refused_for_this_request_only_naming_the_setting(
    store, config, run_proxy, codex_auth, codex_backend, caplog, monkeypatch
) -> None:
    monkeypatch.setattr(drift, "_logged", set())
    kleis = start_codex(store, config, run_proxy, codex_auth, codex_backend, codex_client_version="0.146.0")
    for _ in range(2):
        with caplog.at_level(logging.WARNING), pytest.raises(openai.BadRequestError) as caught:
            kleis.client().responses.create(model="gpt-6-sol", input="hi")
    message = caught.value.body["message"]
    assert "model requires a newer version of Codex" in message and "Kleis presented Codex CLI 0.146.0" in message
    assert "KLEIS_CODEX_CLIENT_VERSION" in message and caught.value.response.headers["x-should-retry"] == "false"
    drifts = [r.getMessage() for r in caplog.records if r.getMessage().startswith("drift:")]
    assert len(drifts) == 1 and "change KLEIS_CODEX_CLIENT_VERSION" in drifts[0]  # once per cause, with the setting
    [account] = Account.select()
    assert account.status == "active" and kleis.proxy.services.follower.accounts[0].status == "active"  # no cooldown
    assert kleis.client().responses.create(model="gpt-5.4", input="hi").output_text == "Hi there"  # other models still work


def test_codex_cli_keeps_its_own_version_and_teaches_it_to_other_clients(store, config, run_proxy, codex_auth, codex_backend) -> None:
    kleis = start_codex(store, config, run_proxy, codex_auth, codex_backend, codex_client_version="0.146.0")
    answered = codex_cli_call(kleis.url, codex_cli_headers(kleis.key, "0.172.0", sends_version=False))
    assert answered.status_code == 200 and "response.completed" in answered.text
    seen = codex_backend.last(ENDPOINT).headers
    assert seen["user-agent"].startswith("codex_exec/0.172.0 (") and seen["originator"] == "codex_exec"
    assert seen["version"] == "0.172.0"  # repeated from its own user-agent
    assert kleis.client().responses.create(model="gpt-6-sol", input="hi").output_text == "Hi there"
    seen = codex_backend.last(ENDPOINT).headers
    assert (seen["version"], seen["originator"]) == ("0.172.0", "codex_cli_rs") and seen["user-agent"].startswith("codex_cli_rs/0.172.0")
    assert stored_learned(CODEX_CLI_VERSION) == "0.172.0"
    presented = kleis.proxy.services.providers["codex"].identity()
    assert (
        presented.values[0].source is Source.LEARNED and "KLEIS_CODEX_CLIENT_VERSION=0.146.0 is older than 0.172.0" in presented.warnings[0]
    )


def test_an_old_codex_cli_is_told_to_upgrade_and_teaches_nothing(store, config, run_proxy, codex_auth, codex_backend) -> None:
    kleis = start_codex(store, config, run_proxy, codex_auth, codex_backend)
    refused = codex_cli_call(kleis.url, codex_cli_headers(kleis.key, "0.150.0"))
    assert refused.status_code == 400 and codex_backend.last(ENDPOINT).headers["version"] == "0.150.0"
    message = refused.json()["error"]["message"]
    assert "forwarded Codex CLI's own version (0.150.0)" in message and "upgrade Codex CLI" in message
    assert "KLEIS_CODEX_CLIENT_VERSION" not in message and kleis.proxy.services.learned.get(CODEX_CLI_VERSION) is None


def test_a_learned_version_survives_a_restart_and_reaches_the_other_processes(store, config, run_proxy, codex_auth, codex_backend) -> None:
    other = start_codex(store, config, run_proxy, codex_auth, codex_backend, codex_client_version="0.146.0")
    learner = start_codex(store, config, run_proxy, codex_auth, codex_backend, codex_client_version="0.146.0")
    assert codex_cli_call(learner.url, codex_cli_headers(learner.key, "0.173.0")).status_code == 200
    deadline = time.time() + 5  # the other process follows the store within a second
    while other.proxy.services.providers["codex"].identity().values[0].value != "0.173.0":
        assert time.time() < deadline, "the other process did not pick up the learned version"
        time.sleep(0.05)
    learner.proxy.stop()
    other.proxy.stop()
    restarted = start_codex(store, config, run_proxy, codex_auth, codex_backend, codex_client_version="0.146.0")
    assert restarted.client().responses.create(model="gpt-6-sol", input="hi").output_text == "Hi there"
    assert codex_backend.last(ENDPOINT).headers["version"] == "0.173.0"


def test_fields_the_backend_refuses_never_reach_it(store, config, run_proxy, codex_auth, codex_backend) -> None:
    kleis = start_codex(store, config, run_proxy, codex_auth, codex_backend)
    part = {"type": "input_text", "text": "hi", "prompt_cache_breakpoint": {"ttl": "1h"}}
    response = kleis.client().responses.create(
        model="gpt-6-sol",
        input=[{"type": "message", "role": "user", "content": [part]}],
        extra_body={"prompt_cache_options": {"ttl": "1h"}, "context_management": [{"type": "compaction", "compact_threshold": 1000}]},
    )
    assert response.output_text == "Hi there"
    body = codex_backend.last(ENDPOINT).json
    assert not {"prompt_cache_options", "context_management"} & set(body)
    assert body["input"][0]["content"] == [{"type": "input_text", "text": "hi"}]
