"""The Kleis addon's own answers and refusals under mitmproxy's taddons, without sockets: the upstream deadline (a silent
upstream fed a synthetic 504, a slow connect cancelled, either becoming a 504 in the caller's shape), the endpoints
Kleis answers itself, and the key checks. Through real listeners: tests/e2e/test_proxy_refusals.py,
tests/e2e/test_proxy.py."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest
from mitmproxy import connection
from mitmproxy.addons.proxyserver import Proxyserver
from mitmproxy.flow import Error
from mitmproxy.proxy import events
from mitmproxy.proxy.server import ConnectionIO
from mitmproxy.test import taddons, tflow

from addons.kleis import Kleis
from addons.mitm_errors import TIMEOUT_MARKER
from addons.services import Parts, Services
from addons.upstream_timeout import TIMEOUT_HEADER, UpstreamDeadlines, synthetic_timeout_response
from core.config import Config
from engine.usage_recorder import UsageRecorder
from store import keys
from store.db import Store
from store.models import ApiKey
from tests.support.addons import answered, client_flow, error_of, forwarded, run_hooks, seed
from tests.support.mitm import registered

MESSAGES = {"model": "loop/m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
CHAT = {"model": "loop/m", "messages": [{"role": "user", "content": "hi"}]}


# -- the upstream deadline --------------------------------------------------------------------------
async def until(condition: Callable[[], object], seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        await asyncio.sleep(0.005)


def test_a_silent_upstream_is_fed_a_504_at_the_deadline() -> None:
    async def scenario() -> None:
        with taddons.context(Proxyserver()) as tctx:
            flow = tflow.tflow()
            flow.server_conn.timestamp_tcp_setup, flow.server_conn.state = time.time(), connection.ConnectionState.OPEN
            handler = registered(tctx.master, flow)
            handler.transports[flow.server_conn] = ConnectionIO()
            deadlines = UpstreamDeadlines(lambda: tctx.master)
            deadlines.start(flow, 0.01)
            await until(lambda: handler.events)
            assert handler.events == [events.DataReceived(flow.server_conn, synthetic_timeout_response())]
            answered_in_time = tflow.tflow()
            deadlines.start(answered_in_time, 0.01)
            deadlines.cancel(answered_in_time)  # its response headers came: the timer is gone
            await asyncio.sleep(0.05)
            assert len(handler.events) == 1

    asyncio.run(scenario())


def test_a_connect_still_in_progress_at_the_deadline_is_cancelled_with_the_marker() -> None:
    async def scenario() -> str:
        with taddons.context(Proxyserver()) as tctx:
            flow = tflow.tflow()
            handler = registered(tctx.master, flow)
            connecting = connection.Server(address=(flow.request.host, flow.request.port))
            pending = asyncio.get_running_loop().create_task(asyncio.sleep(60))
            handler.transports[connecting] = ConnectionIO(handler=pending)
            UpstreamDeadlines(lambda: tctx.master).start(flow, 0.01)
            try:
                await pending
            except asyncio.CancelledError as exc:
                return str(exc.args[0])
            return "not cancelled"

    assert asyncio.run(scenario()) == TIMEOUT_MARKER


def test_the_synthetic_504_and_a_cancelled_connect_reach_the_client_as_a_504_in_its_shape(store: Store, config: Config) -> None:
    key, _ = seed(store)
    recorder = UsageRecorder()

    async def scenario(addon: Kleis, services: Services) -> None:
        fed = client_flow("POST", "/v1/messages", MESSAGES, authorization=f"Bearer {key}")
        await forwarded(addon, fed)
        await answered(addon, fed, 504, {"error": {"message": "upstream timeout"}}, **{TIMEOUT_HEADER: "1"})
        assert fed.response is not None and fed.response.status_code == 504
        assert error_of(fed)["type"] == "error" and "KLEIS_UPSTREAM_TIMEOUT" in error_of(fed)["error"]["message"]
        connecting = client_flow("POST", "/v1/chat/completions", CHAT, authorization=f"Bearer {key}")
        await forwarded(addon, connecting)
        connecting.error = Error(f"Connection cancelled: {TIMEOUT_MARKER}")
        addon.error(connecting)
        rows = recorder.queue.take(10)
        assert [(row["protocol"], row["status"], row["error_type"]) for row in rows] == [
            ("messages", 504, "upstream_timeout"),
            ("chat", 504, "upstream_timeout"),
        ]

    run_hooks(store, config, scenario, Parts(usage=recorder))


# -- what Kleis answers itself ----------------------------------------------------------------------
def test_the_model_list_and_one_model_are_answered_for_the_key_and_an_unknown_id_is_a_404(store: Store, config: Config) -> None:
    key, _ = seed(store)
    _, narrow = keys.create_key("narrow", models="loop-large")

    async def scenario(addon: Kleis, services: Services) -> None:
        listing = client_flow("GET", "/v1/models", authorization=f"Bearer {key}")
        await forwarded(addon, listing)
        ids = [entry["id"] for entry in error_of(listing)["data"]]
        assert ids == ["loop/loop-small", "loop-small", "loop/loop-large", "loop-large"]
        assert all(entry["object"] == "model" and entry["type"] == "model" for entry in error_of(listing)["data"])  # both SDKs
        narrowed = client_flow("GET", "/v1/models", **{"x-api-key": narrow})
        await forwarded(addon, narrowed)
        assert [entry["id"] for entry in error_of(narrowed)["data"]] == ["loop/loop-large", "loop-large"]
        one = client_flow("GET", "/v1/models/loop%2Floop-large", authorization=f"Bearer {key}")
        await forwarded(addon, one)
        assert error_of(one)["id"] == "loop/loop-large" and error_of(one)["owned_by"] == "loop"
        unknown = client_flow("GET", "/v1/models/loop-medium", authorization=f"Bearer {key}")
        await forwarded(addon, unknown)
        assert unknown.response is not None and unknown.response.status_code == 404
        assert error_of(unknown)["error"]["code"] == "model_not_found"

    run_hooks(store, config, scenario)


def test_healthz_says_which_providers_can_serve_and_the_catalog_path_needs_the_catalog(store: Store, config: Config) -> None:
    seed(store)

    async def scenario(addon: Kleis, services: Services) -> None:
        health = client_flow("GET", "/healthz")
        await forwarded(addon, health)
        assert health.response is not None and health.response.status_code == 200
        assert error_of(health)["usable_accounts"] == {"loop": 1} and error_of(health)["store"] == "reachable"
        catalog = client_flow("GET", "/models/api.json")
        await forwarded(addon, catalog)
        assert catalog.response is not None and catalog.response.status_code == 404  # not enabled in these services
        assert "catalog is not enabled" in error_of(catalog)["error"]["message"]

    run_hooks(store, config, scenario)


# -- the key checks ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "path, body", [("/v1/messages", MESSAGES), ("/v1/chat/completions", CHAT), ("/v1/responses", {"model": "loop/m", "input": "hi"})]
)
def test_a_revoked_or_expired_or_foreign_key_is_a_401_in_the_callers_shape(store: Store, config: Config, path: str, body: dict) -> None:
    seed(store)
    revoked_row, revoked = keys.create_key("revoked")
    keys.revoke_key(revoked_row.id)
    expired_row, expired = keys.create_key("expired", expires_days=1)
    ApiKey.update(expires_at=time.time() - 1).where(ApiKey.id == expired_row.id).execute()  # a day later

    async def scenario(addon: Kleis, services: Services) -> None:
        cases = (
            (revoked, "revoked"),
            (expired, "expired"),
            ("sk-ant-api03-someone-elses", "not a Kleis key"),
            ("kl_" + "x" * 40, "unknown"),
        )
        for presented, why in cases:
            flow = client_flow("POST", path, body, authorization=f"Bearer {presented}")
            await forwarded(addon, flow)
            assert flow.response is not None and flow.response.status_code == 401, why
            error = error_of(flow)
            if path == "/v1/messages":
                assert error["type"] == "error" and error["error"]["type"] == "authentication_error"
            else:
                assert error["error"]["code"] == "invalid_api_key"
            assert why in error["error"]["message"], error
            assert "authorization" not in flow.request.headers  # the credential left the flow

    run_hooks(store, config, scenario)


def test_a_key_scoped_to_other_providers_or_models_is_a_403_before_anything_goes_upstream(store: Store, config: Config) -> None:
    seed(store)
    _, other_provider = keys.create_key("claude only", providers="claude")
    _, other_model = keys.create_key("large only", models="loop-large")

    async def scenario(addon: Kleis, services: Services) -> None:
        for presented, code in ((other_provider, "provider_not_allowed"), (other_model, "model_not_allowed")):
            flow = client_flow("POST", "/v1/messages", {**MESSAGES, "model": "loop/loop-small"}, **{"x-api-key": presented})
            await forwarded(addon, flow)
            assert flow.response is not None and flow.response.status_code == 403
            assert error_of(flow)["error"]["type"] == "permission_error"
            outcome = addon._contexts[flow].outcome
            assert (outcome.refused, outcome.error_type) == (True, code)  # what the usage record says
            assert addon._contexts[flow].upstream.account is None  # no account was taken

    run_hooks(store, config, scenario)
