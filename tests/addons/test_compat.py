"""The patches Kleis makes to mitmproxy (addons.compat): the version they were written for, installed once, and what
each patched function does; and the contract of each read of mitmproxy's connection internals, on mitmproxy's own
classes (a real Proxyserver and ConnectionHandler, no sockets). The mitmweb handlers' behaviour through a real UI is
in tests/e2e/test_debug_redaction.py; the internals in a running proxy in the drain, keep-alive and timeout tests."""

from __future__ import annotations

import asyncio
import inspect
import json

import pytest
from mitmproxy import connection, http
from mitmproxy.addons.proxyserver import Proxyserver
from mitmproxy.net.http import http1
from mitmproxy.proxy import events, server
from mitmproxy.proxy.layers.http import _http1
from mitmproxy.proxy.mode_servers import ServerInstance
from mitmproxy.test import taddons, tflow

from addons import compat
from engine.wire_secrets import Peer, current_peer, vault
from tests.support.mitm import FakeHandler


def test_any_other_mitmproxy_version_is_refused() -> None:
    compat.check_version("11.0.2")
    for other in ("11.0.1", "11.1.0", "12.0.0"):
        with pytest.raises(compat.UnsupportedMitmproxy, match="written for mitmproxy 11.0.2"):
            compat.check_version(other)


def test_the_proxy_patches_are_installed_once_and_stay_in_place() -> None:
    compat.install_proxy()
    compat.install_proxy()
    assert all(patch.installed() for patch in compat.PROXY_PATCHES)
    assert http1.assemble_request_head is compat.assemble_request_head
    assert compat.PROXY_PATCHES[0].original is not compat.assemble_request_head  # the original is kept, not wrapped twice


def test_the_request_head_carries_the_token_only_on_the_wire_to_its_destination() -> None:
    compat.install_proxy()
    ref = vault.put("sk-ant-oat01-the-real-token", ("127.0.0.1", 9))
    try:
        request = http.Request.make("POST", "http://127.0.0.1:9/v1/messages", b"{}", {"authorization": f"Bearer {ref}"})
        marker = current_peer.set(Peer(("127.0.0.1", 9)))  # what the patched Http1Client.send sets while it writes
        try:
            head = http1.assemble_request_head(request)
            plain = http1.assemble_request_head(http.Request.make("GET", "http://127.0.0.1:9/", b"", {"x-note": ref}))
        finally:
            current_peer.reset(marker)
        assert b"authorization: Bearer sk-ant-oat01-the-real-token\r\n" in head
        assert request.headers["authorization"] == f"Bearer {ref}"  # the flow still holds the reference
        assert ref.encode() in plain  # only the Authorization line is swapped
        elsewhere = current_peer.set(Peer(("127.0.0.1", 8888)))  # another host (an upstream proxy set in the UI, say)
        try:
            assert b"the-real-token" not in http1.assemble_request_head(request)
        finally:
            current_peer.reset(elsewhere)
    finally:
        vault.release(ref)
    released = current_peer.set(Peer(("127.0.0.1", 9)))
    try:
        assert ref.encode() in http1.assemble_request_head(request)  # a released reference goes out as it is
    finally:
        current_peer.reset(released)


def test_mitmproxys_own_error_pages_become_json() -> None:
    compat.install_proxy()
    raw = _http1.make_error_response(502, "Connection refused")
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 502") and b"content-type: application/json" in head.lower()
    error = json.loads(body)["error"]
    assert error["code"] == "upstream_unreachable" and "Connection refused" in error["message"]


def test_the_web_patches_are_installed_once_and_each_run_sets_its_token() -> None:
    first = compat.install_web("token-one")
    second = compat.install_web("token-two")
    assert first is second and len(first) == 6 and all(patch.installed() for patch in first)
    assert compat._web_token[0] == "token-two"


# -- connection internals ---------------------------------------------------------------------------------
def test_a_live_connections_handler_is_found_by_its_flow_until_it_ends() -> None:
    with taddons.context(Proxyserver()) as tctx:
        flow, other = tflow.tflow(), tflow.tflow()
        handler = FakeHandler(flow.client_conn)
        assert compat.connection_handlers(tctx.master) == [] and compat.connection_handler(tctx.master, flow) is None
        with tctx.master.addons.get("proxyserver").register_connection(flow.client_conn.id, handler):  # as mitmproxy does
            assert compat.connection_handlers(tctx.master) == [handler]
            assert compat.connection_handler(tctx.master, flow) is handler
            assert compat.connection_handler(tctx.master, other) is None
        assert compat.connection_handlers(tctx.master) == []


def test_the_client_writer_is_the_client_transports_until_it_is_gone() -> None:
    flow = tflow.tflow()
    handler = FakeHandler(flow.client_conn)
    writer = compat.client_writer(handler)
    assert writer is handler.writer
    handler.transports.pop(flow.client_conn)  # what mitmproxy does when the client's side closes
    assert compat.client_writer(handler) is None


def upstream(setup: float | None, state: connection.ConnectionState = connection.ConnectionState.OPEN) -> connection.Server:
    found = connection.Server(address=("127.0.0.1", 9))
    found.timestamp_tcp_setup, found.state = setup, state
    return found


def test_a_server_connection_is_connected_when_set_up_readable_and_held() -> None:
    handler = FakeHandler(tflow.tclient_conn())
    held, closed, connecting, elsewhere = (
        upstream(1.0),
        upstream(1.0, connection.ConnectionState.CAN_WRITE),
        upstream(None),
        upstream(1.0),
    )
    for found in (held, closed, connecting):
        handler.transports[found] = server.ConnectionIO()
    assert compat.server_connected(handler, held)
    assert not any(compat.server_connected(handler, found) for found in (closed, connecting, elsewhere))


def test_a_connect_in_progress_is_cancelled_with_the_reason() -> None:
    async def scenario() -> tuple[bool, bool, bool, str]:
        handler = FakeHandler(tflow.tclient_conn())
        pending = asyncio.get_running_loop().create_task(asyncio.sleep(60))
        set_up = asyncio.get_running_loop().create_task(asyncio.sleep(60))
        handler.transports[upstream(None)] = server.ConnectionIO(handler=pending)
        handler.transports[upstream(1.0)] = server.ConnectionIO(handler=set_up)
        other_address = compat.cancel_connect(handler, ("127.0.0.2", 9), "why")
        cancelled = compat.cancel_connect(handler, ("127.0.0.1", 9), "the reason")
        try:
            await pending
        except asyncio.CancelledError as exc:
            reason = str(exc.args[0]) if exc.args else ""
        set_up.cancel()
        return other_address, cancelled, set_up.cancelled() or not set_up.done(), reason

    other_address, cancelled, set_up_untouched, reason = asyncio.run(scenario())
    assert (other_address, cancelled, set_up_untouched, reason) == (False, True, True, "the reason")


def test_bytes_fed_to_a_handler_arrive_as_the_servers_data() -> None:
    async def scenario() -> None:
        handler, found = FakeHandler(tflow.tclient_conn()), upstream(1.0)  # its server_event records what it is handed
        await compat.feed_server(handler, found, b"HTTP/1.1 504 ...")
        assert handler.events == [events.DataReceived(found, b"HTTP/1.1 504 ...")]

    asyncio.run(scenario())
    # What the recording stands in for: mitmproxy's own entry point for an event from a connection.
    assert inspect.iscoroutinefunction(server.ConnectionHandler.server_event)
    assert list(inspect.signature(server.ConnectionHandler.server_event).parameters) == ["self", "event"]


def test_the_listeners_are_the_proxyservers_instances_each_stoppable() -> None:
    with taddons.context(Proxyserver()) as tctx:
        assert compat.listeners(tctx.master) == []  # none configured in this context
        # What addons.drain does with one: read its mode's spec, stop it.
        instance = ServerInstance.make("reverse:http://127.0.0.1:9@0", tctx.master.addons.get("proxyserver"))  # not started
        assert instance.mode.full_spec == "reverse:http://127.0.0.1:9@0" and not instance.is_running
        assert inspect.iscoroutinefunction(instance.stop)
