"""Token references swapped for tokens only in a request head bound for the address Kleis routed to."""

from __future__ import annotations

from addons import compat
from engine.wire_secrets import Peer, SecretVault

HEAD = b"POST /v1/messages HTTP/1.1\r\nhost: api.example\r\nauthorization: Bearer %s\r\n\r\n"


def test_a_reference_is_swapped_only_on_a_direct_connection_to_its_destination() -> None:
    vault = SecretVault()
    ref = vault.put("sk-live-token")
    vault.bind(ref, "API.example", 443)
    head = HEAD % ref.encode()
    assert vault.substitute(head, Peer(("api.example", 443))) == HEAD % b"sk-live-token"
    for peer in (
        Peer(("evil.example", 443)),
        Peer(("api.example", 8443)),
        Peer(("api.example", 443), via=("http", ("evil.example", 8080))),  # through an upstream proxy
        None,  # no connection known: never
    ):
        assert vault.substitute(head, peer) == head, peer
    unbound = vault.put("sk-other")
    assert vault.substitute(HEAD % unbound.encode(), Peer(("api.example", 443))) == HEAD % unbound.encode()
    vault.release(ref)
    assert vault.substitute(head, Peer(("api.example", 443))) == head  # released: goes out as the reference


def test_the_http1_client_patch_is_part_of_the_proxy_patches() -> None:
    names = {(patch.owner.__name__, patch.name) for patch in compat.PROXY_PATCHES}
    assert ("Http1Client", "send") in names and ("mitmproxy.net.http.http1", "assemble_request_head") in names
