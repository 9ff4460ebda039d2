"""The quota-aware pool through a real Kleis listener: fake upstreams send each account's own quota headers, and the
tests watch which account serves each request (the loopback provider names it upstream in x-loop-account)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from addons.services import Parts
from engine.usage_recorder import UsageRecorder
from store import quota as quota_store
from store.models import UsageEvent
from tests.fakes.anthropic import FakeAnthropic
from tests.fakes.base import Recorded
from tests.fakes.quota import PerAccount, claude_unified
from tests.support.live import LiveKleis
from tests.support.waiting import wait_until


def loop_account(request: Recorded) -> str:
    return request.headers.get("x-loop-account", "")


def conversation(n: int, stream: bool = False) -> dict:
    """The body of one conversation's request (its first user message names the conversation)."""
    return {"model": "loop/m", "max_tokens": 5, "stream": stream, "messages": [{"role": "user", "content": f"task {n}"}]}


def launch(live_kleis: Callable[..., LiveKleis], anthropic: FakeAnthropic, **changes: Any) -> tuple[LiveKleis, PerAccount]:
    """A live Kleis with health, quota and usage on, its fake Anthropic answering each account's quota headers."""
    quotas = PerAccount(loop_account)
    anthropic.answer_headers = quotas
    return live_kleis(Parts(health=True, quota=True, usage=UsageRecorder(interval=0.05)), **changes), quotas


@pytest.fixture
def pool(live_kleis, fake_anthropic) -> tuple[LiveKleis, PerAccount]:
    return launch(live_kleis, fake_anthropic)


def served_by(live: LiveKleis, body: dict, **headers: str) -> str:
    with httpx.Client(base_url=live.url, timeout=20) as client:
        answer = client.post("/v1/messages", json=body, headers=live.headers(**headers))
        if body.get("stream"):
            assert "message_stop" in answer.text
    assert answer.status_code == 200, answer.text
    return loop_account(live.anthropic.last("/v1/messages"))


def test_the_quota_is_read_from_json_and_streamed_answers_and_recorded(pool) -> None:
    live, quotas = pool
    account = live.add_account("primary", primary=True)
    quotas.used[str(account.id)] = 0.42
    assert served_by(live, conversation(1)) == str(account.id)
    tracker = live.proxy.services.quota
    assert tracker is not None
    reading = tracker.reading(account.id)
    assert reading is not None and reading.window("5h").used == 0.42 and reading.claim == "five_hour"
    quotas.used[str(account.id)] = 0.55
    assert served_by(live, conversation(1, stream=True)) == str(account.id)
    assert tracker.reading(account.id).window("5h").used == 0.55  # read off the stream's headers
    wait_until(lambda: quota_store.load().get(account.id, {}).get("windows", [{}])[0].get("used") == 0.55)
    wait_until(lambda: UsageEvent.select().count() == 2)
    assert {e.quota_claim for e in UsageEvent.select()} == {"five_hour"}


def test_an_account_at_97_percent_leaves_for_one_with_headroom_before_any_429(pool) -> None:
    live, quotas = pool
    primary = live.add_account("primary", primary=True)
    standby = live.add_account("standby")
    quotas.used[str(primary.id)] = 0.97
    assert served_by(live, conversation(1)) == str(primary.id)  # nothing known yet: the primary; its answer says 97 %
    assert served_by(live, conversation(2)) == str(standby.id)  # a new conversation goes to the account with headroom
    assert served_by(live, conversation(1)) == str(standby.id)  # the first one too: its account is saving now
    statuses = [r for r in live.anthropic.received("/v1/messages")]
    assert len(statuses) == 3  # three answers, no 429 and no retry needed


def test_headroom_mode_spreads_new_conversations(live_kleis, fake_anthropic) -> None:
    live, quotas = launch(live_kleis, fake_anthropic, routing="headroom")
    accounts = [live.add_account(f"a{i}", primary=i == 0) for i in range(3)]
    quotas.grow = 0.1  # each answer uses a tenth of the account's window
    served = [served_by(live, conversation(n)) for n in range(9)]
    counts = {str(a.id): served.count(str(a.id)) for a in accounts}
    assert sorted(counts.values()) == [3, 3, 3], counts
    assert served[0] == str(accounts[0].id)  # ties: the primary first


def test_a_conversation_stays_on_its_account_when_the_primary_recovers(pool) -> None:
    live, quotas = pool
    primary = live.add_account("primary", primary=True)
    standby = live.add_account("standby")
    quotas.make = lambda used: claude_unified(used, five_hour_reset=1.5)  # the primary's window resets in 1.5 s
    quotas.used[str(primary.id)] = 0.97
    assert served_by(live, conversation(1)) == str(primary.id)
    assert served_by(live, conversation(1)) == str(standby.id)  # moved: the primary is saving
    tracker = live.proxy.services.quota
    assert tracker is not None
    wait_until(lambda: not tracker.reading(primary.id).saving(0.95, time.time()))  # its window reset
    quotas.used[str(primary.id)] = 0.05
    assert served_by(live, conversation(2)) == str(primary.id)  # recovered: new conversations go to the primary again
    assert served_by(live, conversation(1)) == str(standby.id)  # but this conversation stays where its cache is
    assert served_by(live, conversation(3), **{"x-claude-code-session-id": "s-1"}) == str(primary.id)
    assert served_by(live, conversation(4), **{"x-claude-code-session-id": "s-1"}) == str(primary.id)  # same session id


def test_the_in_flight_cap_sends_requests_elsewhere_then_waits(live_kleis, fake_anthropic) -> None:
    live, _ = launch(live_kleis, fake_anthropic, account_max_inflight=1, account_wait=5.0)
    first = live.add_account("first", primary=True)
    second = live.add_account("second")
    fake_anthropic.stream_delay = 0.2  # each stream stays in flight about a second
    with httpx.Client(base_url=live.url, timeout=30) as client:
        with client.stream("POST", "/v1/messages", json=conversation(1, stream=True), headers=live.headers()) as one:
            assert one.status_code == 200
            with client.stream("POST", "/v1/messages", json=conversation(2, stream=True), headers=live.headers()) as two:
                assert two.status_code == 200
                accounts = {loop_account(r) for r in fake_anthropic.received("/v1/messages")}
                assert accounts == {str(first.id), str(second.id)}  # the second request went to the other account
                started = time.time()
                third = client.post("/v1/messages", json=conversation(3), headers=live.headers())  # both busy: it waits
                assert third.status_code == 200 and time.time() - started > 0.3
                two.read()
            one.read()


def test_past_the_wait_a_capped_request_is_refused_in_the_callers_shape(live_kleis, fake_anthropic) -> None:
    live, _ = launch(live_kleis, fake_anthropic, account_max_inflight=1, account_wait=0.2)
    live.add_account("only", primary=True)
    fake_anthropic.stream_delay = 0.2
    with httpx.Client(base_url=live.url, timeout=30) as client:
        with client.stream("POST", "/v1/messages", json=conversation(1, stream=True), headers=live.headers()) as one:
            assert one.status_code == 200
            refused = client.post("/v1/messages", json=conversation(2), headers=live.headers())
            one.read()
    assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
    error = refused.json()
    assert error["error"]["type"] == "overloaded_error" and "KLEIS_ACCOUNT_MAX_INFLIGHT" in error["error"]["message"]


# -- Codex: usage headers, and a used-up window's 429 ----------------------------------------------------------
def test_codex_usage_limit_cools_until_its_reset_and_the_next_account_serves(store, config, run_proxy) -> None:
    import dataclasses

    from providers.codex import CodexProvider, login
    from store.accounts import load_views
    from store.models import Account
    from tests.fakes.codex import FakeCodex
    from tests.fakes.codex_auth import ChatGPTAccount, FakeCodexAuth
    from tests.fakes.quota import codex_usage

    auth = FakeCodexAuth().start()
    codex = FakeCodex(valid_tokens=auth.issued_access).start()
    try:
        cfg = config.replace(codex_api_base=codex.base, codex_auth_base=auth.url)
        for account in (ChatGPTAccount(), ChatGPTAccount(account_id="acc-2222-bbbb", user_id="user-bob", email="bob@example.test")):
            auth.account = account
            started = login.start_login(store, cfg)
            login.complete_login(store, cfg, started.flow_id, {"callback_url": auth.consent(started.authorize_url)})
        first, second = sorted(load_views(store.cipher), key=lambda a: a.id)
        used = {first.metadata["account_id"]: 42.0, second.metadata["account_id"]: 7.0}
        codex.answer_headers = lambda request: codex_usage(used.get(request.headers.get("chatgpt-account-id", ""), 0.0))
        from store import keys

        _, key = keys.create_key("codex-pool")
        proxy = run_proxy(cfg, {"codex": CodexProvider(cfg)}, Parts(health=True, quota=True))
        resets_at = int(time.time()) + 600
        codex.enqueue(
            "POST", "/backend-api/codex/responses", dataclasses.replace(FakeCodex.usage_limit(resets_at), headers=codex_usage(100))
        )
        with httpx.Client(base_url=proxy.url, timeout=20) as client:
            body = {"model": "gpt-5.4", "input": "hi"}
            answer = client.post("/v1/responses", json=body, headers={"authorization": f"Bearer {key}"})
            assert answer.status_code == 200, answer.text  # failed over to the second account
            seen = [r.headers["chatgpt-account-id"] for r in codex.received("/backend-api/codex/responses")]
            assert seen == [first.metadata["account_id"], second.metadata["account_id"]]
            cooled = proxy.services.follower.account(first.id)
            assert cooled is not None and cooled.status == "cooling" and abs((cooled.cooldown_until or 0) - resets_at) <= 2
            assert proxy.services.quota.reading(first.id).rejected(time.time())
            assert proxy.services.quota.reading(second.id).window("primary").used == pytest.approx(0.07)
            again = client.post("/v1/responses", json={**body, "input": "another"}, headers={"authorization": f"Bearer {key}"})
            assert again.status_code == 200
            assert codex.last("/backend-api/codex/responses").headers["chatgpt-account-id"] == second.metadata["account_id"]
        wait_until(lambda: Account.get_by_id(first.id).status == "cooling")
    finally:
        codex.stop()
        auth.stop()


# -- Copilot: premium requests read when the Copilot token is renewed -----------------------------------------
def test_copilot_premium_quota_is_read_at_token_renewal(store, copilot_config, github, copilot_api, run_proxy) -> None:
    from providers.copilot import CopilotProvider, login
    from store import keys

    account_id = login.import_credentials(store, copilot_config, github_token=github.seed_github_token()).account_id
    _, key = keys.create_key("copilot-pool")
    github.premium = {"entitlement": 300, "remaining": 12, "percent_remaining": 4.0, "unlimited": False}
    proxy = run_proxy(copilot_config, {"copilot": CopilotProvider(copilot_config)}, Parts(quota=True))
    tracker = proxy.services.quota
    assert tracker is not None
    wait_until(lambda: tracker.reading(account_id) is not None)  # at start: no reading stored yet, so asked once
    assert tracker.reading(account_id).window("premium").used == pytest.approx(0.96)
    reads = github.quota_reads
    body = {"model": "gpt-4.1", "messages": [{"role": "user", "content": "hi"}]}
    with httpx.Client(base_url=proxy.url, timeout=20) as client:
        for _ in range(3):
            assert client.post("/v1/chat/completions", json=body, headers={"authorization": f"Bearer {key}"}).status_code == 200
        assert github.quota_reads == reads  # not per request
        github.premium = {"entitlement": 300, "remaining": 150, "percent_remaining": 50.0, "unlimited": False}
        github.expire_copilot_tokens()
        proxy.call(proxy.services.tokens.refresh(account_id, force=True))  # what the proactive refresher does every ~25 min
        wait_until(lambda: tracker.reading(account_id).window("premium").used == pytest.approx(0.5))
    assert github.quota_reads == reads + 1
    wait_until(lambda: quota_store.load().get(account_id, {}).get("windows", [{}])[0].get("used") == pytest.approx(0.5))


# -- several processes on one store ---------------------------------------------------------------------------
def test_a_quota_one_process_read_steers_another_process(store, config, fake_oauth, fake_anthropic, fake_openai) -> None:
    from store import keys
    from store.accounts import TokenSet, set_primary, upsert_account
    from tests.support.loop_server import spawn, stop

    quotas = PerAccount(loop_account)
    fake_anthropic.answer_headers = quotas
    rows = []
    for identity in ("primary", "standby"):
        access, refresh = fake_oauth.seed()
        rows.append(upsert_account("loop", identity, TokenSet(access, refresh, time.time() + 3600), store.cipher)[0])
    set_primary(rows[0].id)
    quotas.used[str(rows[0].id)] = 0.97
    _, key = keys.create_key("two processes")
    headers = {"authorization": f"Bearer {key}"}
    first, first_url = spawn(config, fake_oauth, fake_anthropic, fake_openai)
    second = None
    try:
        assert httpx.post(f"{first_url}/v1/messages", json=conversation(1), headers=headers, timeout=20).status_code == 200
        assert loop_account(fake_anthropic.last("/v1/messages")) == str(rows[0].id)
        wait_until(lambda: quota_store.load().get(rows[0].id) is not None)  # the first process stored what it read
        second, second_url = spawn(config, fake_oauth, fake_anthropic, fake_openai)
        assert httpx.post(f"{second_url}/v1/messages", json=conversation(2), headers=headers, timeout=20).status_code == 200
        assert loop_account(fake_anthropic.last("/v1/messages")) == str(rows[1].id)  # it never saw the primary's answer itself
    finally:
        stop(first)
        if second is not None:
            stop(second)


def test_a_conversation_that_moved_while_the_primary_was_cooling_stays_when_it_is_back(pool) -> None:
    from store.accounts import set_status

    live, _ = pool
    primary = live.add_account("primary", primary=True)
    standby = live.add_account("standby")
    set_status(primary.id, "cooling", "rate limited earlier", cooldown_until=time.time() + 0.5)
    live.wait_for_accounts()
    assert served_by(live, conversation(1)) == str(standby.id)  # the only usable account
    wait_until(lambda: live.proxy.services.follower.account(primary.id).usable())
    assert served_by(live, conversation(2)) == str(primary.id)  # back: new conversations go to the primary
    assert served_by(live, conversation(1)) == str(standby.id)  # the first stays where it started


def test_failovers_do_not_stampede_an_account_past_its_cap(live_kleis, fake_anthropic) -> None:
    import concurrent.futures

    from tests.fakes.anthropic import anthropic_error

    live, _ = launch(live_kleis, fake_anthropic, account_max_inflight=2, account_wait=5.0)
    limited = live.add_account("limited")
    busy = live.add_account("busy", primary=True)
    spare = live.add_account("spare")

    def slow_429(request: Recorded):
        if loop_account(request) != str(limited.id):
            return None
        time.sleep(1.0)  # both requests are on the limited account when it answers (margin for a busy machine)
        return anthropic_error(429, "rate_limit_error", "slow down")

    fake_anthropic.validators.append(slow_429)
    affinity, now = live.proxy.services.affinity, time.time()
    affinity.bind(f"k{live.key_id}:stream", busy.id, now)
    for name in ("l1", "l2"):
        affinity.bind(f"k{live.key_id}:{name}", limited.id, now)
    fake_anthropic.stream_delay = 0.4  # the stream holds a slot of the busy account for about 4 s
    with httpx.Client(base_url=live.url, timeout=30) as client:
        headers = live.headers(**{"x-claude-code-session-id": "stream"})
        with client.stream("POST", "/v1/messages", json=conversation(1, stream=True), headers=headers) as held:
            assert held.status_code == 200  # one of the busy account's two slots, for over a second

            def ask(name: str) -> int:
                body, session = conversation(hash(name) % 100), {"x-claude-code-session-id": name}
                return client.post("/v1/messages", json=body, headers=live.headers(**session)).status_code

            with concurrent.futures.ThreadPoolExecutor(2) as pool:
                assert list(pool.map(ask, ["l1", "l2"])) == [200, 200]
            held.read()
    sent = [loop_account(r) for r in fake_anthropic.received("/v1/messages")]
    assert sent.count(str(limited.id)) == 2
    assert sent.count(str(busy.id)) == 2 and sent.count(str(spare.id)) == 1  # the stream and one failover; not two
