"""Per-key limits: the limiter's arithmetic, then the real proxy refusing over-limit requests in the caller's shape.
Here the parts that need a listener; the rest: tests/unit/test_key_limits.py."""

from __future__ import annotations

import json
import threading

import httpx

from store import keys
from tests.support.cli import run_kleis as run
from tests.support.waiting import wait_until

MESSAGES = {"model": "loop/claude-x", "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]}
CHAT = {"model": "loop/gpt-x", "messages": [{"role": "user", "content": "hi"}]}


# -- the limiter ------------------------------------------------------------------------------------


# -- through the proxy -----------------------------------------------------------------------------


def test_a_key_over_its_rate_is_refused_in_the_openai_shape_and_the_change_applies_at_once(kleis) -> None:
    kleis.add_account()
    keys.set_limits(kleis.key_id, rate_limit=2)
    wait_until(lambda: next(iter(kleis.proxy.services.follower.keys.values())).rate_limit == 2, timeout=3.0)
    with httpx.Client(base_url=kleis.url, headers=kleis.headers(), timeout=10) as client:
        assert [client.post("/v1/chat/completions", json=CHAT).status_code for _ in range(2)] == [200, 200]
        refused = client.post("/v1/chat/completions", json=CHAT)
        assert refused.status_code == 429 and 1 <= int(refused.headers["retry-after"]) <= 60
        error = refused.json()["error"]
        assert error["code"] == "key_rate_limited" and error["type"] == "rate_limit_error"
        assert "2 requests per minute" in error["message"]
        assert len(kleis.openai.received("/v1/chat/completions")) == 2  # the refused one never went upstream
        assert client.get("/v1/models").status_code == 200  # discovery is not rate limited
        keys.set_limits(kleis.key_id, rate_limit=0)
        wait_until(lambda: client.post("/v1/chat/completions", json=CHAT).status_code == 200, timeout=3.0)


def test_a_key_at_its_concurrency_limit_gets_a_retryable_anthropic_error_until_the_stream_ends(kleis) -> None:
    kleis.add_account()
    keys.set_limits(kleis.key_id, concurrency_limit=1)
    wait_until(lambda: next(iter(kleis.proxy.services.follower.keys.values())).concurrency_limit == 1, timeout=3.0)
    kleis.anthropic.stream_delay = 0.15  # a stream of several events, 150 ms apart
    streaming = {**MESSAGES, "stream": True}
    first_event = threading.Event()
    seen: list[str] = []

    def stream() -> None:
        with (
            httpx.Client(timeout=10) as http,
            http.stream("POST", f"{kleis.url}/v1/messages", json=streaming, headers=kleis.headers()) as response,
        ):
            for line in response.iter_lines():
                if line.startswith("event:"):
                    seen.append(line)
                    first_event.set()

    runner = threading.Thread(target=stream)
    runner.start()
    assert first_event.wait(5)
    with httpx.Client(base_url=kleis.url, headers=kleis.headers(), timeout=10) as client:
        refused = client.post("/v1/messages", json=MESSAGES)
        assert refused.status_code == 429 and refused.headers["retry-after"] == "1"
        body = refused.json()
        assert body["type"] == "error" and body["error"]["type"] == "rate_limit_error"
        assert "1 requests at once" in body["error"]["message"] and kleis.key not in refused.text
        runner.join(10)
        assert seen and seen[-1] == "event: message_stop"
        wait_until(lambda: kleis.proxy.services.limits.in_flight(kleis.key_id) == 0, timeout=3.0)
        assert client.post("/v1/messages", json=MESSAGES).status_code == 200


def test_a_stream_the_client_abandons_gives_its_slot_back(kleis) -> None:
    kleis.add_account()
    keys.set_limits(kleis.key_id, concurrency_limit=1)
    wait_until(lambda: next(iter(kleis.proxy.services.follower.keys.values())).concurrency_limit == 1, timeout=3.0)
    kleis.anthropic.stream_delay = 0.3
    with httpx.Client(timeout=10) as http:
        with http.stream("POST", f"{kleis.url}/v1/messages", json={**MESSAGES, "stream": True}, headers=kleis.headers()) as response:
            assert response.status_code == 200
            lines = response.iter_lines()  # kept: a dropped generator closes the response (a client hang-up)
            assert next(lines) == "event: message_start"
            assert kleis.proxy.services.limits.in_flight(kleis.key_id) == 1
        # the client hung up mid-stream: the flow ends in an error, and the slot is free again
    wait_until(lambda: kleis.proxy.services.limits.in_flight(kleis.key_id) == 0, timeout=5)
    kleis.anthropic.stream_delay = 0.0
    with httpx.Client(base_url=kleis.url, headers=kleis.headers(), timeout=10) as client:
        assert client.post("/v1/messages", json=MESSAGES).status_code == 200


def test_cli_sets_shows_and_clears_limits(tmp_path) -> None:
    data_dir = tmp_path / "data"
    created = run(data_dir, "keys", "create", "--name", "ci", "--rate-limit", "60", "--concurrency", "4", "--json")
    assert created.returncode == 0, created.stderr
    key = json.loads(created.stdout)
    assert (key["rate_limit"], key["concurrency_limit"]) == (60, 4)
    assert "60/min, 4 at once" in run(data_dir, "keys", "list").stdout
    changed = run(data_dir, "keys", "limit", key["public_id"], "--rate-limit", "0")
    assert changed.returncode == 0 and "4 at once" in changed.stdout and "/min" not in changed.stdout
    [listed] = json.loads(run(data_dir, "keys", "list", "--json").stdout)
    assert (listed["rate_limit"], listed["concurrency_limit"]) == (None, 4)
    nothing = run(data_dir, "keys", "limit", key["public_id"])
    assert nothing.returncode != 0 and "give --rate-limit" in nothing.stderr
    negative = run(data_dir, "keys", "create", "--name", "x", "--concurrency", "-2")
    assert negative.returncode == 2 and "must be 0 (no limit) or more" in negative.stderr
