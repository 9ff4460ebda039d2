"""The request handler's hooks (addons.kleis) driven one by one under mitmproxy's taddons, without sockets."""

from __future__ import annotations

import asyncio
import json

from addons.kleis import Kleis
from addons.services import Parts, Services
from core.config import Config
from core.enums import AccountStatus
from engine.usage_recorder import UsageRecorder
from engine.wire_secrets import REF_PREFIX, vault
from store.db import Store
from tests.support.addons import answer, client_flow, error_of, seed
from tests.support.addons import run_hooks as run

MESSAGES = {"model": "loop/m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
ANTHROPIC_USAGE = {"input_tokens": 12, "output_tokens": 7, "cache_read_input_tokens": 3, "cache_creation_input_tokens": 0}


def test_public_paths_are_answered_without_a_key(store: Store, config: Config) -> None:
    async def scenario(addon: Kleis, services: Services) -> None:
        flow = client_flow("GET", "/healthz")
        await addon.requestheaders(flow)
        assert flow.response is not None and flow.response.status_code == 200
        assert json.loads(flow.response.content or b"")["status"] == "ok"
        head = client_flow("HEAD", "/")
        await addon.requestheaders(head)
        assert head.response is not None and head.response.status_code == 200 and head.response.raw_content == b""

    run(store, config, scenario)


def test_a_missing_key_is_refused_in_the_callers_shape_and_the_credentials_leave_the_flow(store: Store, config: Config) -> None:
    async def scenario(addon: Kleis, services: Services) -> None:
        messages = client_flow("POST", "/v1/messages", MESSAGES, **{"x-api-key": "sk-ant-api03-not-a-kleis-key"})
        await addon.requestheaders(messages)
        assert messages.response is not None and messages.response.status_code == 401
        assert error_of(messages)["error"]["type"] == "authentication_error" and error_of(messages)["type"] == "error"
        assert messages.response.headers["x-should-retry"] == "false"
        assert "x-api-key" not in messages.request.headers  # never kept in the flow (mitmweb shows flows)
        chat = client_flow("POST", "/v1/chat/completions", {"model": "m", "messages": []}, authorization="Bearer nope")
        await addon.requestheaders(chat)
        assert chat.response is not None and error_of(chat)["error"]["code"] == "invalid_api_key"
        assert "authorization" not in chat.request.headers

    run(store, config, scenario)


def test_a_request_is_pointed_at_the_accounts_upstream_with_a_token_reference(store: Store, config: Config) -> None:
    key, account_id = seed(store)

    async def scenario(addon: Kleis, services: Services) -> None:
        flow = client_flow("POST", "/v1/messages?beta=true", MESSAGES, authorization=f"Bearer {key}")
        await addon.requestheaders(flow)
        assert flow.response is None
        await addon.request(flow)
        assert flow.response is None
        assert (flow.request.host, flow.request.port, flow.request.path) == ("127.0.0.1", 9, "/v1/messages?beta=true")
        auth = flow.request.headers["authorization"]
        assert auth.startswith(f"Bearer {REF_PREFIX}") and vault.get(auth.split()[1]) == f"sk-loop-access-{'acct-1'}"
        assert key not in bytes(flow.request.raw_content or b"").decode() and key not in str(flow.request.headers)
        assert json.loads(flow.request.content or b"")["model"] == "m"  # the provider prefix is gone
        assert flow.request.headers["x-loop-account"] == str(account_id)
        addon.error(flow)  # the flow ends: its token reference is released
        assert vault.get(auth.split()[1]) is None

    run(store, config, scenario)


def test_an_unknown_model_and_no_account_are_refused_before_anything_goes_upstream(store: Store, config: Config) -> None:
    from store import keys

    _, key = keys.create_key("no accounts")

    async def scenario(addon: Kleis, services: Services) -> None:
        services.follower.load_all()
        unknown = client_flow("POST", "/v1/messages", {**MESSAGES, "model": "nobody-serves-this"}, authorization=f"Bearer {key}")
        await addon.requestheaders(unknown)
        await addon.request(unknown)
        assert unknown.response is not None and unknown.response.status_code == 404
        no_account = client_flow("POST", "/v1/messages", MESSAGES, authorization=f"Bearer {key}")
        await addon.requestheaders(no_account)
        await addon.request(no_account)
        assert no_account.response is not None and no_account.response.status_code == 503
        assert "no usable Loopback account" in error_of(no_account)["error"]["message"]

    run(store, config, scenario)


def test_an_event_stream_gets_the_rewriter_and_a_json_answer_is_recorded(store: Store, config: Config) -> None:
    key, account_id = seed(store)
    recorder = UsageRecorder()

    async def scenario(addon: Kleis, services: Services) -> None:
        streamed = client_flow("POST", "/v1/messages", {**MESSAGES, "stream": True}, authorization=f"Bearer {key}")
        await addon.requestheaders(streamed)
        await addon.request(streamed)
        answer(streamed, 200, b"", content_type="text/event-stream")
        addon.responseheaders(streamed)
        assert streamed.response is not None and callable(streamed.response.stream)
        assert streamed.response.headers["x-kleis-request-id"].startswith("req_")

        plain = client_flow("POST", "/v1/messages", MESSAGES, authorization=f"Bearer {key}")
        await addon.requestheaders(plain)
        await addon.request(plain)
        answer(plain, 200, {"type": "message", "content": [], "usage": ANTHROPIC_USAGE})
        addon.responseheaders(plain)
        await addon.response(plain)
        [row] = recorder.queue.take(10)
        assert (row["account_id"], row["status"], row["input_tokens"], row["output_tokens"]) == (account_id, 200, 12, 7)
        assert row["cache_read_tokens"] == 3 and row["model"] == "loop/m" and row["upstream_model"] == "m"

    run(store, config, scenario, Parts(usage=recorder))


def test_an_upstream_overload_cools_the_account_and_reaches_the_client_in_its_shape(store: Store, config: Config) -> None:
    key, account_id = seed(store)

    async def scenario(addon: Kleis, services: Services) -> None:
        flow = client_flow("POST", "/v1/messages", MESSAGES, authorization=f"Bearer {key}")
        await addon.requestheaders(flow)
        await addon.request(flow)
        answer(flow, 529, b"overloaded", content_type="text/plain")
        addon.responseheaders(flow)
        await addon.response(flow)
        assert flow.response is not None and flow.response.status_code == 529
        assert error_of(flow) == {"type": "error", "error": {"type": "overloaded_error", "message": "upstream error: overloaded"}}
        cooled = services.follower.account(account_id)
        assert cooled is not None and cooled.status == AccountStatus.COOLING
        assert services.health is not None
        await services.health.done()  # the state change reaches the store

    run(store, config, scenario, Parts(health=True))
    from store.models import Account

    assert Account.get_by_id(account_id).status == AccountStatus.COOLING


def test_a_failed_connection_is_recorded_as_unreachable(store: Store, config: Config) -> None:
    from mitmproxy.flow import Error

    key, _ = seed(store)
    recorder = UsageRecorder()

    async def scenario(addon: Kleis, services: Services) -> None:
        flow = client_flow("POST", "/v1/chat/completions", {"model": "loop/m", "messages": []}, authorization=f"Bearer {key}")
        await addon.requestheaders(flow)
        await addon.request(flow)
        flow.error = Error("Connection refused")
        addon.error(flow)
        [row] = recorder.queue.take(10)
        assert (row["status"], row["error_type"], row["protocol"]) == (502, "upstream_unreachable", "chat")

    run(store, config, scenario, Parts(usage=recorder))


def test_a_request_the_provider_refuses_to_prepare_leaves_no_token_behind(store: Store, config: Config) -> None:
    from core.client_errors import Refusal

    key, _ = seed(store)

    async def scenario(addon: Kleis, services: Services) -> None:
        provider = services.providers["loop"]

        def refuse(request: object) -> object:
            raise Refusal(400, "not served on this path", code="unsupported_endpoint")

        provider.prepare = refuse
        before = len(vault)
        flow = client_flow("POST", "/v1/messages", MESSAGES, authorization=f"Bearer {key}")
        await addon.requestheaders(flow)
        await addon.request(flow)
        assert flow.response is not None and flow.response.status_code == 400
        await addon.response(flow)  # mitmproxy's next hook for a flow its addon answered
        assert len(vault) == before  # the account's token reference was released with the refusal
        assert services.load.in_flight(1) == 0

    run(store, config, scenario)


def test_a_request_ended_twice_is_recorded_once_and_frees_everything(store: Store, config: Config) -> None:
    key, account_id = seed(store)
    recorder = UsageRecorder()

    async def scenario(addon: Kleis, services: Services) -> None:
        flow = client_flow("POST", "/v1/messages", MESSAGES, authorization=f"Bearer {key}")
        await addon.requestheaders(flow)
        await addon.request(flow)
        ctx = addon._contexts[flow]
        addon.finish(flow, ctx)  # the shutdown drain ends it …
        ctx.upstream.slot = account_id  # … while a hook still running took a slot again
        services.load.take(account_id)
        addon.finish(flow, ctx)  # … and ends it once more
        assert len(recorder.queue.take(10)) == 1 and services.load.in_flight(account_id) == 0
        # its parsed bodies are let go as soon as the hook has returned and the answer is on its way (a context sits
        # in reference cycles: the garbage collector would free them later, in one pause that stalls every stream);
        # a retry still has the bytes the client sent
        assert ctx.client.body is not None
        await asyncio.sleep(0)
        assert ctx.client.body is None and ctx.upstream.prepared.body == {} and ctx.client.raw_body

    run(store, config, scenario, Parts(usage=recorder))
