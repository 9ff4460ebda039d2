"""The patches Kleis makes to mitmproxy (addons.compat): the version they were written for, installed once, and what
each patched function does. The mitmweb handlers' behaviour through a real UI is in tests/test_debug_redaction.py."""

from __future__ import annotations

import json

import pytest
from mitmproxy import http
from mitmproxy.net.http import http1
from mitmproxy.proxy.layers.http import _http1

from addons import compat
from engine.wire_secrets import Peer, current_peer, vault


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
