"""The request side of a proxied call as plain functions: classify, authenticate, parse, route, prepare."""

from __future__ import annotations

import dataclasses
import json
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from addons.auth import authenticate, authorize
from core.client_errors import Refusal, unavailable_headers, unavailable_type
from providers.pool import candidates, soonest_back, unusable_reasons
from providers.routing import Resolution, resolve_model, served_elsewhere
from providers.base import CLIENT_CREDENTIAL_HEADERS, ForwardRequest, Provider, Upstream
from core.protocol import Protocol, error_protocol_for_path, protocol_for_path, split_path
from providers.usage import UsageReader
from store.accounts import AccountView
from store.keys import KeyRecord

CREDENTIAL_HEADERS = CLIENT_CREDENTIAL_HEADERS
HOP_BY_HOP = ("connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade")
PUBLIC_PATHS = ("/", "/healthz", "/models/api.json")  # answered without a key
LOCAL_PATHS = (*PUBLIC_PATHS, "/v1/models")
READ_METHODS = ("GET", "HEAD")  # HEAD: agents probe the base URL (Claude Code sends `HEAD /` at start)


@dataclasses.dataclass
class RequestContext:
    """Everything Kleis learns about one request, from its headers to its last byte."""

    request_id: str
    started: float
    path: str
    query: str
    method: str
    protocol: Protocol | None
    error_protocol: Protocol
    key: KeyRecord | None = None
    model: str = ""  # as the client named it
    resolution: Resolution | None = None
    provider: Provider | None = None
    body: dict[str, Any] | None = None  # the client's parsed body
    raw_body: bytes = b""  # the client's bytes, parsed again for a retry on another account
    client_headers: dict[str, str] = dataclasses.field(default_factory=dict)  # as received, Kleis key removed
    client_stream: bool = False
    candidates: list[AccountView] = dataclasses.field(default_factory=list)
    tried: list[int] = dataclasses.field(default_factory=list)
    account: AccountView | None = None
    upstream: Upstream | None = None
    token_ref: str | None = None
    usage: UsageReader | None = None
    forwarded_at: float | None = None
    first_byte_at: float | None = None
    streamed: bool = False
    aggregated: bool = False  # a streaming-only upstream's answer was turned into one JSON body
    status: int = 0
    error_type: str = ""
    retries: int = 0
    refused: bool = False
    probe: tuple[int, float] | None = None  # the cooled account this request tests (half-open), and since when
    holds_key_slot: bool = False  # counted against the key's concurrency limit until it ends
    hook_failed: bool = False  # a response hook raised: the response is replaced by a 500
    local: bool = False
    done: bool = False


def begin(method: str, path_with_query: str) -> RequestContext:
    path, query = split_path(path_with_query)
    return RequestContext(
        request_id="req_" + uuid.uuid4().hex[:24],
        started=time.time(),
        path=path,
        query=query,
        method=method.upper(),
        protocol=protocol_for_path(path),
        error_protocol=error_protocol_for_path(path),
    )


def check_route(ctx: RequestContext) -> None:
    """404 for paths Kleis does not serve, 405 for the wrong method."""
    if ctx.protocol is None:
        if ctx.path in LOCAL_PATHS or ctx.path.startswith("/v1/models/"):
            if ctx.method not in READ_METHODS:
                raise Refusal(405, f"{ctx.path} only answers GET (and HEAD)", code="method_not_allowed")
            return
        raise Refusal(
            404,
            f"Kleis does not serve {ctx.path}: use /v1/messages, /v1/chat/completions, /v1/responses or /v1/models",
            code="unknown_path",
        )
    if ctx.method != "POST":
        raise Refusal(405, f"{ctx.path} only answers POST", code="method_not_allowed")


def check_key(ctx: RequestContext, headers: Mapping[str, str], records: Mapping[str, KeyRecord]) -> KeyRecord:
    ctx.key = authenticate(headers, records)
    return ctx.key


def check_declared_size(headers: Mapping[str, str], limit: int) -> None:
    length = headers.get("content-length")
    if length and length.isdigit() and int(length) > limit:
        raise Refusal(413, f"request body of {int(length)} bytes is over Kleis's limit of {limit} bytes (KLEIS_MAX_BODY_BYTES)", code="request_too_large")


def parse_body(ctx: RequestContext, content: bytes | None, limit: int) -> dict[str, Any]:
    if content is not None and len(content) > limit:
        raise Refusal(413, f"request body of {len(content)} bytes is over Kleis's limit of {limit} bytes (KLEIS_MAX_BODY_BYTES)", code="request_too_large")
    if not content:
        raise Refusal(400, "the request body is empty; a JSON object with a model is required", code="invalid_json")
    try:
        body = json.loads(content)
    except ValueError as exc:
        raise Refusal(400, f"the request body is not valid JSON: {exc}", code="invalid_json") from None
    if not isinstance(body, dict):
        raise Refusal(400, "the request body must be a JSON object", code="invalid_json")
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise Refusal(400, "the request body has no model", code="missing_model")
    ctx.body = body
    ctx.raw_body = content
    ctx.model = model.strip()
    ctx.client_stream = body.get("stream") is True
    return body


def route(
    ctx: RequestContext,
    providers: Mapping[str, Provider],
    accounts: list[AccountView],
    registry: Callable[[str, Protocol], str | None] | None = None,
) -> None:
    """Model → provider (404), key scope (403), provider's usable accounts in order (503)."""
    assert ctx.protocol is not None and ctx.key is not None
    def serving(protocol: Protocol) -> list[str]:
        return [name for name, provider in providers.items() if protocol in provider.protocols]

    resolution = resolve_model(ctx.model, ctx.protocol, available=serving(ctx.protocol), registry=registry)
    if resolution is not None and resolution.how == "fallback" and not any(
        a.provider == resolution.provider and a.status in ("active", "cooling") for a in accounts
    ):
        resolution = None  # a guess is only worth making with an account to make it on (a cooling one answers 503)
    if resolution is None:
        elsewhere = served_elsewhere(ctx.model, ctx.protocol, serving, registry)
        hint = f"it is served on {elsewhere}; " if elsewhere else ""
        raise Refusal(
            404,
            f"no provider serves the model {ctx.model!r} on {ctx.path}; {hint}GET /v1/models lists the models this key can use",
            code="model_not_found",
        )
    authorize(ctx.key, resolution.provider, ctx.model, resolution.model)
    ctx.resolution = resolution
    ctx.provider = providers[resolution.provider]
    ctx.candidates = candidates(accounts, resolution.provider)
    if not ctx.candidates:
        provider = ctx.provider
        reasons = unusable_reasons(accounts, resolution.provider)
        detail = f" ({'; '.join(reasons)})" if reasons else ""
        headers = unavailable_headers(soonest_back(accounts, resolution.provider))
        raise Refusal(
            503,
            f"no usable {provider.display_name} account{detail}: {provider.login_hint}",
            code="no_account",
            error_type=unavailable_type(ctx.error_protocol, headers),
            headers=headers,
        )


def plain_headers(fields: tuple[tuple[bytes, bytes], ...]) -> dict[str, str]:
    """mitmproxy's header fields as one plain dict with lower-case names, decoded once (the last value wins)."""
    return {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in fields}


def forward_headers(client_headers: Mapping[str, str]) -> dict[str, str]:
    """Client headers minus its credentials and hop-by-hop headers; the provider adds its own."""
    drop = set(CLIENT_CREDENTIAL_HEADERS) | set(HOP_BY_HOP) | {"host", "content-length", "accept-encoding", "content-encoding"}
    return {name: value for name, value in client_headers.items() if name.lower() not in drop}


def build_forward(ctx: RequestContext, headers: Mapping[str, str], account: AccountView, token_ref: str) -> ForwardRequest:
    assert ctx.protocol is not None and ctx.body is not None and ctx.resolution is not None
    # The provider rewrites the body in place: the first attempt takes the parsed body, a retry parses again.
    body = ctx.body if ctx.upstream is None else json.loads(ctx.raw_body)
    return ForwardRequest(
        protocol=ctx.protocol,
        path=ctx.path,
        query=ctx.query,
        headers=forward_headers(headers),
        body=body,
        model=ctx.resolution.model,
        account=account,
        token_ref=token_ref,
        stream=ctx.client_stream,
    )
