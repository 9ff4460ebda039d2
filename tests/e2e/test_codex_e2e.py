"""The official openai SDK and a Codex-CLI-shaped client through a real Kleis listener to the fake Codex backend."""

from __future__ import annotations

import json
import time
import uuid

import httpx
import openai
import pytest

from addons.services import Parts
from providers.codex import CodexProvider
from providers.codex.body import BodyRules
from providers.codex.headers import user_agent
from store.accounts import load_views
from store.db import bump
from tests.fakes.codex import UPGRADE, FakeCodex
from tests.support.codex import CodexKleis

ENDPOINT = "/backend-api/codex/responses"


@pytest.fixture
def kleis(live_kleis) -> CodexKleis:
    return live_kleis(Parts(), provider="codex")


def test_sdk_non_streaming_call_is_streamed_upstream_and_aggregated(kleis: CodexKleis) -> None:
    response = kleis.client().responses.create(model="gpt-5.4", input="hi", max_output_tokens=64, temperature=0.2, top_p=0.9)
    assert response.output_text == "Hi there" and response.status == "completed"
    assert response.usage.input_tokens == 120 and response.usage.input_tokens_details.cached_tokens == 100
    seen = kleis.codex.last(ENDPOINT)
    body, headers = seen.json, seen.headers
    assert (body["model"], body["store"], body["stream"], body["instructions"]) == ("gpt-5.4", False, True, "")
    assert body["input"] == [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}]
    assert not {"max_output_tokens", "temperature", "top_p"} & set(body)
    account = load_views(kleis.store.cipher)[0]
    assert headers["authorization"] == f"Bearer {account.access_token}" and headers["chatgpt-account-id"] == "acc-1111-aaaa"
    assert headers["originator"] == "codex_cli_rs" and headers["user-agent"] == user_agent(
        "codex_cli_rs", kleis.config.codex_client_version
    )
    assert headers["version"] == kleis.config.codex_client_version and headers["user-agent"].startswith("codex_cli_rs/")
    assert headers["accept"] == "text/event-stream" and uuid.UUID(headers["session-id"])
    assert not [name for name in headers if name.startswith("x-stainless")] and kleis.key not in json.dumps(headers)


def test_a_non_streaming_answer_cut_by_the_backend_is_recorded_as_the_502_the_client_got(live_kleis) -> None:
    from engine.usage_recorder import UsageRecorder
    from store.models import UsageEvent
    from tests.fakes.base import Stream, sse

    setup = live_kleis(Parts(usage=UsageRecorder(interval=0.05)), provider="codex")
    created = sse("response.created", {"type": "response.created", "response": {"id": "resp_1", "status": "in_progress"}})
    setup.codex.enqueue("POST", ENDPOINT, Stream([created, created, created], cut_after=1))
    with pytest.raises(openai.InternalServerError) as failed:
        setup.client().responses.create(model="gpt-5.4", input="hi")
    assert failed.value.status_code == 502
    deadline = time.time() + 10
    while UsageEvent.select().count() < 1 and time.time() < deadline:
        time.sleep(0.02)
    (event,) = UsageEvent.select()
    assert (event.status, event.error_type, event.incomplete) == (502, "upstream_cut", True)


def test_sdk_non_streaming_with_an_empty_final_output(kleis: CodexKleis) -> None:
    kleis.codex.plan.empty_final_output = True
    kleis.codex.plan.interleaved = True
    response = kleis.client().responses.create(
        model="codex/gpt-5.5", input=[{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]
    )
    assert [item.type for item in response.output] == ["reasoning", "message", "function_call"]
    assert response.output_text == "Hi there" and response.output[2].name == "read_file"
    assert kleis.codex.last(ENDPOINT).json["input"][0]["role"] == "developer"


def test_sdk_streaming(kleis: CodexKleis) -> None:
    events = list(kleis.client().responses.create(model="gpt-5.4", input="hi", instructions="answer", stream=True, max_output_tokens=5))
    assert events[0].type == "response.created" and events[-1].type == "response.completed"
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == "Hi there"
    assert events[-1].response.usage.output_tokens_details.reasoning_tokens == 12
    assert kleis.codex.last(ENDPOINT).json["instructions"] == "answer"


def test_sdk_stream_helper_sees_response_done_as_completed(kleis: CodexKleis) -> None:
    kleis.codex.plan.final_event = "response.done"
    with kleis.client().responses.stream(model="gpt-5.4", input="hi") as stream:
        final = stream.get_final_response()
    assert final.output_text == "Hi there" and final.usage.input_tokens == 120


def test_an_error_inside_a_200_stream(kleis: CodexKleis) -> None:
    kleis.codex.plan.error = {"type": "service_unavailable_error", "code": "server_is_overloaded", "message": "Our servers are busy"}
    with pytest.raises(openai.APIError, match="Our servers are busy"):
        list(kleis.client().responses.create(model="gpt-5.4", input="hi", stream=True))
    with pytest.raises(openai.InternalServerError) as caught:
        kleis.client().responses.create(model="gpt-5.4", input="hi")
    assert caught.value.status_code == 503 and "Our servers are busy" in str(caught.value)
    assert caught.value.body["code"] == "server_is_overloaded"


def test_usage_limit_429_reaches_the_client_with_its_reset_time(kleis: CodexKleis) -> None:
    resets = int(time.time()) + 3600
    kleis.codex.enqueue("POST", ENDPOINT, FakeCodex.usage_limit(resets), FakeCodex.usage_limit(resets))
    with pytest.raises(openai.RateLimitError) as caught:
        kleis.client().responses.create(model="gpt-5.4", input="hi")
    assert caught.value.body["resets_at"] == resets and caught.value.body["type"] == "usage_limit_reached"
    with pytest.raises(openai.RateLimitError):
        list(kleis.client().responses.create(model="gpt-5.4", input="hi", stream=True))


def test_the_fake_enforces_the_rules_and_detail_bodies_come_back_in_openai_shape(live_kleis) -> None:
    lax = live_kleis(Parts(), provider="codex", provider_factory=lambda cfg: CodexProvider(cfg, BodyRules(removed=frozenset())))
    with pytest.raises(openai.BadRequestError) as caught:
        lax.client().responses.create(model="gpt-5.4", input="hi", max_output_tokens=64)
    assert caught.value.status_code == 400 and caught.value.body["message"] == "upstream error: Unsupported parameter: max_output_tokens"
    assert caught.value.body["type"] == "invalid_request_error"


def test_codex_cli_shape_through_a_custom_model_provider(kleis: CodexKleis) -> None:
    """Codex CLI's own identity (version, user-agent, originator) reaches the backend as it sent it: the backend gates
    models on it, and gpt-6-sol needs a newer Codex CLI than the one Kleis was configured with long ago."""
    session = str(uuid.uuid4())
    body = {
        "model": "gpt-6-sol",
        "input": [
            {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "<permissions instructions>"}]},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "list the files"}]},
        ],
        "tools": [
            {"type": "function", "name": "shell", "description": "run", "strict": False, "parameters": {"type": "object", "properties": {}}}
        ],
        "tool_choice": "auto",
        "parallel_tool_calls": False,
        "reasoning": {"effort": "medium", "summary": "auto"},
        "store": False,
        "stream": True,
        "include": ["reasoning.encrypted_content"],
        "prompt_cache_key": session,
        "text": {"verbosity": "medium"},
    }
    agent = "codex_exec/0.172.1 (Ubuntu 24.4.0; x86_64) xterm"
    headers = {
        "authorization": f"Bearer {kleis.key}",
        "originator": "codex_exec",
        "user-agent": agent,
        "session_id": session,
        "conversation_id": session,
        "openai-beta": "responses=experimental",
        "accept": "text/event-stream",
        "version": "0.172.1",
    }
    with httpx.stream("POST", f"{kleis.url}/v1/responses", json=body, headers=headers, timeout=20) as response:
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
        text = "".join(response.iter_text())
    assert "event: response.completed" in text and '"delta":"Hi"' in text
    seen = kleis.codex.last(ENDPOINT)
    assert seen.headers["session-id"] == session and "session_id" not in seen.headers
    assert (seen.headers["version"], seen.headers["user-agent"], seen.headers["originator"]) == ("0.172.1", agent, "codex_exec")
    assert seen.headers["conversation_id"] == session and seen.headers["openai-beta"] == "responses=experimental"  # passed as sent
    assert seen.headers["chatgpt-account-id"] == "acc-1111-aaaa" and seen.headers["authorization"] != f"Bearer {kleis.key}"
    assert seen.json["instructions"] == "" and seen.json["prompt_cache_key"] == session
    assert seen.json["tools"] == body["tools"] and seen.json["parallel_tool_calls"] is False and seen.json["input"] == body["input"]


def test_an_expired_token_is_refreshed_before_forwarding(store, kleis: CodexKleis) -> None:
    from store.models import Account

    Account.update(expires_at=time.time() - 5).execute()
    bump("accounts")
    kleis.wait_for_accounts()
    before = set(kleis.auth.used_refresh)
    response = kleis.client().responses.create(model="gpt-5.4", input="hi")
    assert response.output_text == "Hi there"
    assert len(kleis.auth.used_refresh - before) == 1  # the refresh token rotated once
    fresh = load_views(store.cipher)[0]
    assert (
        kleis.codex.last(ENDPOINT).headers["authorization"] == f"Bearer {fresh.access_token}"
        and fresh.refresh_token in kleis.auth.live_refresh
    )


GOOD = {"model": "gpt-5.4", "instructions": "", "input": [], "store": False, "stream": True}


@pytest.mark.parametrize(
    ("change", "status", "message"),
    [
        ({"max_output_tokens": 10}, 400, "Unsupported parameter: max_output_tokens"),
        ({"instructions": None}, 400, "Instructions are required"),
        ({"input": "hi"}, 400, "Input must be a list"),
        ({"store": True}, 400, "Store must be set to false"),
        ({"stream": False}, 400, "Stream must be set to true"),
        ({"input": [{"role": "system", "content": "x"}]}, 400, "System messages are not allowed"),
        ({"service_tier": "flex"}, 400, "Unsupported service_tier: flex"),
        ({"prompt_cache_options": {"ttl": "1h"}}, 400, "Unsupported parameter: prompt_cache_options"),
        ({"context_management": [{"type": "compaction"}]}, 400, "Unsupported parameter: context_management"),
        (
            {"input": [{"role": "user", "content": [{"type": "input_text", "text": "x", "prompt_cache_breakpoint": {}}]}]},
            400,
            "Unsupported parameter: input[0].content[0].prompt_cache_breakpoint",
        ),
        ({"model": "gpt-6-sol"}, 400, "The 'gpt-6-sol' model requires a newer version of Codex. " + UPGRADE),
    ],
)
def test_the_fake_backend_refuses_what_the_real_one_refuses(codex_auth, codex_backend, change: dict, status: int, message: str) -> None:
    """Direct calls (no Kleis): the rules the end-to-end tests rely on are really enforced."""
    auth, codex = codex_auth, codex_backend
    access, _ = auth.seed()
    headers = {"authorization": f"Bearer {access}", "chatgpt-account-id": auth.account.account_id, "version": "0.150.0"}
    assert httpx.post(f"{codex.base}/responses", json=GOOD, headers=headers).status_code == 200
    refused = httpx.post(f"{codex.base}/responses", json={**GOOD, **change}, headers=headers)
    assert (refused.status_code, refused.json()) == (status, {"detail": message})


def test_the_fake_backend_wants_the_token_and_its_account_id(codex_auth, codex_backend) -> None:
    auth, codex = codex_auth, codex_backend
    access, _ = auth.seed()
    headers = {"authorization": f"Bearer {access}", "chatgpt-account-id": auth.account.account_id}
    assert httpx.post(f"{codex.base}/responses", json=GOOD, headers={"authorization": headers["authorization"]}).status_code == 400
    assert httpx.post(f"{codex.base}/responses", json=GOOD, headers={**headers, "chatgpt-account-id": "other"}).status_code == 403
    assert httpx.post(f"{codex.base}/responses", json=GOOD, headers={**headers, "authorization": "Bearer forged"}).status_code == 401


def test_a_codex_model_on_chat_completions_is_translated_or_pointed_at_v1_responses(kleis: CodexKleis, run_proxy) -> None:
    answer = kleis.client().chat.completions.create(model="gpt-5.4", messages=[{"role": "user", "content": "hi"}])
    assert answer.choices[0].message.content == "Hi there" and kleis.codex.received()  # Chat → Responses (KLEIS_TRANSLATION)
    off = run_proxy(kleis.config.replace(translation=False), {"codex": CodexProvider(kleis.config)})
    client = openai.OpenAI(base_url=f"{off.url}/v1", api_key=kleis.key, max_retries=0, timeout=20)
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model="gpt-5.4", messages=[{"role": "user", "content": "hi"}])
    assert "it is served on /v1/responses (codex)" in caught.value.message and caught.value.code == "model_not_found"
