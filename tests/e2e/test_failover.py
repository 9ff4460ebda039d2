"""Account health and failover: cooldown rules, cap and half-open retest, transparent retry, streaming retry, reset.
Here the parts that need a listener; the rest: tests/unit/test_failover.py."""

from __future__ import annotations

import time

import anthropic
import httpx
import pytest

from addons.services import Parts
from providers.health import SERVER_COOLDOWN
from store.accounts import set_status
from store.models import Account, AccountEvent
from tests.fakes.base import Reply

BODY = {"model": "loop/m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
LIMITED = Reply(429, {"type": "error", "error": {"type": "rate_limit_error", "message": "limit reached"}}, {"retry-after": "3600"})


@pytest.fixture
def live(live_kleis):
    return live_kleis(Parts(health=True), cooldown_max=120)


def persisted(account_id: int, status: str, timeout: float = 2.0) -> Account:
    """The account once its state reached the store (health changes are written off the event loop)."""
    deadline = time.time() + timeout
    while Account.get_by_id(account_id).status != status and time.time() < deadline:
        time.sleep(0.02)
    return Account.get_by_id(account_id)


def tokens_seen(fake) -> list[str]:
    return [r.headers["authorization"] for r in fake.received("/v1/messages")]


def test_non_streaming_request_fails_over_transparently(live) -> None:
    first = live.add_account("primary", primary=True)
    second = live.add_account("second")
    live.anthropic.enqueue("POST", "/v1/messages", LIMITED)
    with httpx.Client(base_url=live.url, timeout=20) as client:
        response = client.post("/v1/messages", json=BODY, headers=live.headers())
        assert response.status_code == 200, response.text
        assert tokens_seen(live.anthropic) == [f"Bearer {first.access_token}", f"Bearer {second.access_token}"]
        stored = persisted(first.id, "cooling")
        assert stored.status == "cooling" and 110 < stored.cooldown_until - time.time() <= 120  # capped at KLEIS_COOLDOWN_MAX
        assert "capped" in stored.status_reason
        client.post("/v1/messages", json=BODY, headers=live.headers())
        assert tokens_seen(live.anthropic)[-1] == f"Bearer {second.access_token}"  # the cooling primary is skipped
    assert AccountEvent.select().where((AccountEvent.account_id == first.id) & (AccountEvent.status == "cooling")).exists()


def test_a_failover_answer_passes_only_allowlisted_headers(live) -> None:
    live.add_account("one", primary=True)
    live.add_account("two")
    ok = Reply(
        200, {"id": "m", "type": "message", "content": []}, {"set-cookie": "s=1", "anthropic-organization-id": "org-2", "request-id": "r2"}
    )
    live.anthropic.enqueue("POST", "/v1/messages", LIMITED, ok)
    with httpx.Client(base_url=live.url, timeout=20) as client:
        response = client.post("/v1/messages", json=BODY, headers=live.headers())
    assert response.status_code == 200 and response.headers["request-id"] == "r2"
    assert "set-cookie" not in response.headers and "anthropic-organization-id" not in response.headers


def test_each_candidate_is_tried_once_then_the_provider_answer_is_returned(live) -> None:
    for name in ("a", "b", "c"):
        live.add_account(name)
    live.anthropic.enqueue("POST", "/v1/messages", LIMITED, LIMITED, LIMITED)
    with httpx.Client(base_url=live.url, timeout=20) as client:
        response = client.post("/v1/messages", json=BODY, headers=live.headers())
    assert response.status_code == 429 and response.json()["error"]["message"] == "limit reached"
    assert len(set(tokens_seen(live.anthropic))) == 3 == len(tokens_seen(live.anthropic))


def test_streaming_client_gets_a_retryable_answer(live) -> None:
    live.add_account("primary", primary=True)
    live.add_account("second")
    live.anthropic.enqueue("POST", "/v1/messages", LIMITED)
    with httpx.Client(base_url=live.url, timeout=20) as client:
        raw = client.post("/v1/messages", json={**BODY, "stream": True}, headers=live.headers())
    assert raw.status_code == 429 and raw.headers["retry-after"] == "1" and raw.headers["x-should-retry"] == "true"
    assert "Kleis will use another account" in raw.json()["error"]["message"]
    assert len(tokens_seen(live.anthropic)) == 1  # nothing re-sent behind the client's back


def test_the_sdks_own_retry_of_a_stream_lands_on_the_next_account(live) -> None:
    live.add_account("primary", primary=True)
    second = live.add_account("second")
    live.anthropic.enqueue("POST", "/v1/messages", LIMITED)
    with anthropic.Anthropic(base_url=live.url, auth_token=live.key, api_key=None, max_retries=2) as sdk:
        with sdk.messages.stream(**BODY) as stream:
            text = "".join(stream.text_stream)
    assert text == "Hello from fake Claude"
    assert len(tokens_seen(live.anthropic)) == 2 and tokens_seen(live.anthropic)[-1] == f"Bearer {second.access_token}"


def test_a_lone_account_passes_the_provider_error_through(live) -> None:
    live.add_account()
    live.anthropic.enqueue("POST", "/v1/messages", LIMITED)
    with httpx.Client(base_url=live.url, timeout=20) as client:
        response = client.post("/v1/messages", json={**BODY, "stream": True}, headers=live.headers())
    assert response.status_code == 429 and response.headers["retry-after"] == "3600"


def test_request_scoped_errors_neither_cool_nor_fail_over(live) -> None:
    only = live.add_account("one", primary=True)
    live.add_account("two")
    live.anthropic.enqueue(
        "POST", "/v1/messages", Reply(400, {"type": "error", "error": {"type": "invalid_request_error", "message": "bad tool schema"}})
    )
    with httpx.Client(base_url=live.url, timeout=20) as client:
        response = client.post("/v1/messages", json=BODY, headers=live.headers())
    assert response.status_code == 400 and len(tokens_seen(live.anthropic)) == 1
    assert Account.get_by_id(only.id).status == "active"


def test_an_upstream_501_neither_cools_nor_fails_over(live) -> None:
    only = live.add_account("one", primary=True)
    live.add_account("two")
    live.anthropic.enqueue(
        "POST", "/v1/messages", Reply(501, {"type": "error", "error": {"type": "api_error", "message": "Not Implemented"}})
    )
    with httpx.Client(base_url=live.url, timeout=20) as client:
        response = client.post("/v1/messages", json=BODY, headers=live.headers())
        assert response.status_code == 501 and len(tokens_seen(live.anthropic)) == 1
        assert client.post("/v1/messages", json=BODY, headers=live.headers()).status_code == 200
    assert tokens_seen(live.anthropic)[0] == tokens_seen(live.anthropic)[1]  # the same account served the next one
    assert Account.get_by_id(only.id).status == "active"


def test_server_errors_cool_briefly_and_fail_over(live) -> None:
    first = live.add_account("primary", primary=True)
    live.add_account("second")
    live.anthropic.enqueue(
        "POST", "/v1/messages", Reply(529, {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    )
    with httpx.Client(base_url=live.url, timeout=20) as client:
        assert client.post("/v1/messages", json=BODY, headers=live.headers()).status_code == 200
    stored = persisted(first.id, "cooling")
    assert stored.status == "cooling" and stored.cooldown_until - time.time() <= SERVER_COOLDOWN


def test_half_open_retest_returns_an_account_to_active(live) -> None:
    account = live.add_account()
    set_status(account.id, "cooling", "rate limited earlier", cooldown_until=time.time() - 1)
    live.wait_for_accounts()
    with httpx.Client(base_url=live.url, timeout=20) as client:
        assert client.post("/v1/messages", json=BODY, headers=live.headers()).status_code == 200
    assert persisted(account.id, "active").status == "active"


def test_half_open_sends_one_probe_while_the_others_go_elsewhere(live) -> None:
    cooled = live.add_account("primary", primary=True)
    other = live.add_account("other")
    set_status(cooled.id, "cooling", "rate limited earlier", cooldown_until=time.time() - 1)
    live.wait_for_accounts()
    live.anthropic.stream_delay = 0.15  # the probe stays in flight while the burst arrives
    with httpx.Client(base_url=live.url, timeout=20) as client:
        with client.stream("POST", "/v1/messages", json={**BODY, "stream": True}, headers=live.headers()) as probe:
            assert probe.status_code == 200
            burst = [client.post("/v1/messages", json=BODY, headers=live.headers()).status_code for _ in range(4)]
            probe.read()
        assert burst == [200] * 4
        assert tokens_seen(live.anthropic) == [f"Bearer {cooled.access_token}"] + [f"Bearer {other.access_token}"] * 4
        assert persisted(cooled.id, "active").status == "active"  # the probe passed
        assert client.post("/v1/messages", json=BODY, headers=live.headers()).status_code == 200
    assert tokens_seen(live.anthropic)[-1] == f"Bearer {cooled.access_token}"  # the primary serves again


def test_manual_reset_makes_a_cooling_account_usable_at_once(live) -> None:
    from cli import main

    account = live.add_account()
    set_status(account.id, "cooling", "rate limited", cooldown_until=time.time() + 3600)
    live.wait_for_accounts()
    with httpx.Client(base_url=live.url, timeout=20) as client:
        assert client.post("/v1/messages", json=BODY, headers=live.headers()).status_code == 503
        import os

        os.environ["KLEIS_DATA_DIR"], os.environ["KLEIS_SECRET_KEY"] = str(live.config.data_dir), live.config.secret_key
        try:
            assert main(["accounts", "reset", str(account.id)]) == 0
        finally:
            del os.environ["KLEIS_DATA_DIR"], os.environ["KLEIS_SECRET_KEY"]
        reset_at = time.time()
        while client.post("/v1/messages", json=BODY, headers=live.headers()).status_code != 200:
            assert time.time() - reset_at < 1.0
    assert Account.get_by_id(account.id).status == "active"


def test_an_account_refused_even_after_renewal_is_cooled_not_refreshed_in_a_loop(live) -> None:
    refused = live.add_account("refused", primary=True)
    other = live.add_account("other")
    live.anthropic.validators.append(
        lambda request: (
            Reply(401, {"type": "error", "error": {"type": "authentication_error", "message": "organization disabled"}})
            if request.headers.get("authorization") != f"Bearer {other.access_token}"
            else None
        )
    )
    with httpx.Client(base_url=live.url, timeout=20) as client:
        for _ in range(3):
            assert client.post("/v1/messages", json=BODY, headers=live.headers()).status_code == 200
    assert live.oauth.refresh_calls == 1  # one renewal of the refused account, then it is left alone
    stored = persisted(refused.id, "cooling")
    assert stored.status == "cooling" and "refused" in stored.status_reason
    assert tokens_seen(live.anthropic)[-1] == f"Bearer {other.access_token}"
