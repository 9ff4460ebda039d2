"""Reasoning carried across turns of a translated conversation, both ways.

A Codex (Responses) answer holds its reasoning as an encrypted blob (`encrypted_content`) that the next turn must
send back for the model to keep its line of thought. A Messages client (Claude Code, the anthropic SDK) has one
place for such a thing: a thinking block's `signature`, which it sends back unchanged. So the blob travels there,
tagged as Kleis's own with the provider and the account that made it: `kleis1.<provider>.<account id>.<blob>`.

Sent back, a tagged signature becomes the provider's reasoning again — only for that provider and that account (a
blob is bound to the account that made it: the backend answers another account's with 400
`invalid_encrypted_content`). Anything else — another account's blob, Anthropic's own signatures, a signature Kleis
did not make — is dropped: never sent as text, never sent to a provider it does not belong to.

The other way, Claude's thinking reaches a Responses client (Codex CLI, the openai SDK) as a reasoning item whose
`encrypted_content` is the same tag around the whole thinking block, which goes back to Claude as it came.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable

PREFIX = "kleis1."
Own = Callable[[str], "str | None"]  # a reasoning part's signature → the blob it carries for this upstream, or None


def tagged(raw: bytes) -> bool:
    """Whether a body's bytes may hold reasoning Kleis carried (0.3 ms a megabyte): a conversation that moved between
    providers, whose history the provider it is sent to now must not get as it is."""
    return PREFIX.encode() in raw


def is_tagged(value: object) -> bool:
    return isinstance(value, str) and value.startswith(PREFIX)


def tag(provider: str, account: int, blob: str) -> str:
    """The signature a Messages client carries for `blob`, made by `provider` on `account`."""
    return f"{PREFIX}{provider}.{account}.{blob}"


def untag(signature: str) -> tuple[str, int, str] | None:
    """(provider, account id, blob) of a signature Kleis made; None for any other."""
    if not signature.startswith(PREFIX):
        return None
    provider, _, rest = signature[len(PREFIX) :].partition(".")
    account, _, blob = rest.partition(".")
    if not provider or not account.isdigit() or not blob:
        return None
    return provider, int(account), blob


def signer(provider: str, account: int) -> Callable[[str], str]:
    return lambda blob: tag(provider, account, blob)


def own_blobs(provider: str, account: int) -> Own:
    """The blob a signature carries when `provider` made it on `account`, else None (the reasoning is dropped)."""

    def own(signature: str) -> str | None:
        found = untag(signature)
        return found[2] if found is not None and found[:2] == (provider, account) else None

    return own


# Claude's thinking travels the other way — to a Responses client as a reasoning item's `encrypted_content` — and
# must come back unmodified (text and signature: Anthropic refuses an edited block), so the blob holds the block.
def pack_thinking(block: dict[str, str]) -> str:
    """A thinking block (`thinking` and `signature`, or `redacted_thinking`'s `data`) as one opaque blob."""
    return base64.urlsafe_b64encode(json.dumps(block, separators=(",", ":")).encode()).decode().rstrip("=")


def unpack_thinking(blob: str) -> dict[str, str] | None:
    """The thinking block `pack_thinking` made, or None when the blob is not one."""
    try:
        block = json.loads(base64.urlsafe_b64decode(blob + "=" * (-len(blob) % 4)))
    except ValueError:
        return None
    if not isinstance(block, dict) or not all(isinstance(value, str) for value in block.values()):
        return None
    if block.get("type") == "thinking" and set(block) == {"type", "thinking", "signature"}:
        return block
    if block.get("type") == "redacted_thinking" and set(block) == {"type", "data"}:
        return block
    return None
