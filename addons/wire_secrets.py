"""Upstream tokens that never sit in a flow: flows carry an opaque reference, swapped for the token on the wire.

mitmproxy keeps flows in memory and mitmweb shows, exports and dumps them at any moment, so a token set in
`flow.request.headers` is visible while the request is in flight. Instead the addon sets
`Authorization: Bearer kleis-secret-ref-<hex>`, and the HTTP/1 request head that mitmproxy assembles for the
upstream (`mitmproxy.net.http.http1.assemble_request_head`, used only for requests to servers; patched in
addons.compat) has the reference replaced by the token held here. A reference is released when its flow ends; a
replayed or leftover reference goes out unchanged and the upstream refuses it.
"""

from __future__ import annotations

import re
import secrets
import threading

REF_PREFIX = "kleis-secret-ref-"
_REF_IN_AUTH_LINE = re.compile(rb"(?im)^(authorization:[^\r\n]*?)(" + REF_PREFIX.encode() + rb"[0-9a-f]{32})")


class SecretVault:
    """References to secrets, alive while their request is in flight."""

    def __init__(self) -> None:
        self._secrets: dict[str, str] = {}
        self._lock = threading.Lock()

    def put(self, secret: str) -> str:
        ref = REF_PREFIX + secrets.token_hex(16)
        with self._lock:
            self._secrets[ref] = secret
        return ref

    def get(self, ref: str) -> str | None:
        return self._secrets.get(ref)

    def release(self, ref: str | None) -> None:
        if ref:
            with self._lock:
                self._secrets.pop(ref, None)

    def __len__(self) -> int:
        return len(self._secrets)

    def substitute(self, head: bytes) -> bytes:
        """Swap references in the Authorization line of an assembled request head."""
        if REF_PREFIX.encode() not in head:
            return head

        def swap(match: re.Match[bytes]) -> bytes:
            secret = self._secrets.get(match.group(2).decode())
            if secret is None:
                return match.group(0)
            return match.group(1) + secret.encode("latin-1")

        return _REF_IN_AUTH_LINE.sub(swap, head)


vault = SecretVault()
