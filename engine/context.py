"""What Kleis knows about one request, in the phases it learns it: client, route, upstream call, outcome.

Each phase has one writer: `pipeline` fills the client and route phases, `upstream.start_call` the upstream
phase (the first attempt and every failover), and the hooks the outcome.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from typing import Any

from core.fastjson import Members
from core.protocol import Protocol, clean_query, error_protocol_for_path, protocol_for_path, split_path
from providers.base import Provider, Upstream
from providers.drift import Drift
from providers.routing import Resolution
from providers.usage import UsageReader
from store.accounts import AccountView
from store.keys import KeyRecord


@dataclasses.dataclass
class ClientRequest:
    """The request as the client sent it (its key removed)."""

    request_id: str
    started: float
    path: str
    query: str
    method: str
    protocol: Protocol | None  # None: a path Kleis answers itself
    error_protocol: Protocol  # the error shape the caller parses
    key: KeyRecord | None = None
    headers: dict[str, str] = dataclasses.field(default_factory=dict)  # as received, credentials removed
    body: dict[str, Any] | None = None  # parsed once; a provider rewrites it in place on the first attempt
    raw_body: bytes = b""  # parsed again for a retry on another account
    unread: Members | None = None  # while `body` lacks the bulk members (pipeline.UNREAD): read only if needed
    carried: bool | None = None  # its bytes hold reasoning Kleis carried from a provider (None: not looked)
    model: str = ""  # as the client named it
    stream: bool = False
    holds_key_slot: bool = False  # counted against the key's concurrency limit until the request ends


@dataclasses.dataclass
class Route:
    """Which provider serves the request and which of its accounts may, in order."""

    resolution: Resolution | None = None
    provider: Provider | None = None
    candidates: list[AccountView] = dataclasses.field(default_factory=list)
    pooled: bool = False  # the provider has more than one account (usable or not): ranking and affinity apply
    probe: tuple[int, float] | None = None  # the cooled account this request tests (half-open), and since when
    conversation: str = ""  # which conversation the request belongs to (providers.conversation), for affinity
    bound: int | None = None  # the conversation's account, while it is usable and has headroom (it stays bound)
    translation: str = ""  # e.g. "messages→responses" when the provider is reached by translation (providers.translated)


@dataclasses.dataclass
class UpstreamCall:
    """The account serving the request and what was sent on its behalf (replaced on each failover)."""

    account: AccountView | None = None
    prepared: Upstream | None = None  # the provider's answer to `prepare`
    token_ref: str | None = None  # stands for the account's token in the flow (engine.wire_secrets)
    usage: UsageReader | None = None
    forwarded_at: float | None = None
    tried: list[int] = dataclasses.field(default_factory=list)  # account ids, in order, repeats included
    retries: int = 0
    slot: int | None = None  # the account whose in-flight slot this request holds (engine.account_load)
    drift_retries: int = 0  # attempts made again because Kleis adopted a value the provider asked for (at most one)


@dataclasses.dataclass
class Outcome:
    """How the request ended, for the client and the usage record."""

    status: int = 0
    error_type: str = ""
    first_byte_at: float | None = None
    streamed: bool = False  # the answer went to the client event by event
    aggregated: bool = False  # a streaming-only upstream's answer was turned into one JSON body
    refused: bool = False  # Kleis answered itself (a Refusal)
    local: bool = False  # an endpoint Kleis serves itself (not recorded as usage)
    hook_failed: bool = False  # a response hook raised: the response is replaced by a 500
    quota_claim: str = ""  # the quota window the provider counted the request against (Claude's representative claim)
    quota_overage: str = ""  # the provider's overage (extra usage) status on the answer
    drift: Drift | None = None  # the last upstream refusal was drift: its hint goes into the error the client sees
    done: bool = False


@dataclasses.dataclass
class RequestContext:
    client: ClientRequest
    route: Route = dataclasses.field(default_factory=Route)
    upstream: UpstreamCall = dataclasses.field(default_factory=UpstreamCall)
    outcome: Outcome = dataclasses.field(default_factory=Outcome)

    @property
    def request_id(self) -> str:
        return self.client.request_id

    @property
    def protocol(self) -> Protocol | None:
        return self.client.protocol

    @property
    def error_protocol(self) -> Protocol:
        return self.client.error_protocol


def begin(method: str, path_with_query: str, now: float | None = None) -> RequestContext:
    path, query = split_path(path_with_query)
    return RequestContext(
        ClientRequest(
            request_id="req_" + uuid.uuid4().hex[:24],
            started=time.time() if now is None else now,
            path=path,
            query=clean_query(query),  # credential-like parameters never travel further
            method=method,  # as sent: methods are case-sensitive, `post` is not POST (pipeline.check_route)
            protocol=protocol_for_path(path),
            error_protocol=error_protocol_for_path(path),
        )
    )
