"""The request side of a proxied call as plain functions: classify the path, authenticate, parse, route."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from core import fastjson
from core.client_errors import Refusal, unavailable_headers, unavailable_type
from engine.affinity import SessionAffinity
from engine.auth import authenticate, authorize
from engine.context import RequestContext
from engine.request_body import too_large
from providers.base import CLIENT_CREDENTIAL_HEADERS, Provider
from providers.conversation import conversation_id, named_conversation
from providers.pool import PoolPolicy, candidates, rank, soonest_back, unusable_reasons
from providers.protocols import carry
from providers.quota import QuotaReading
from providers.routing import mapped_model, served_elsewhere
from providers.serving import Tables, choose
from store.keys import KeyRecord

CREDENTIAL_HEADERS = CLIENT_CREDENTIAL_HEADERS
PUBLIC_PATHS = ("/", "/healthz", "/models/api.json")  # answered without a key
LOCAL_PATHS = (*PUBLIC_PATHS, "/v1/models")
READ_METHODS = ("GET", "HEAD")  # HEAD: agents probe the base URL (Claude Code sends `HEAD /` at start)
# RFC 9110 methods, exactly as spelled there: methods are case-sensitive, and an upstream answers a `post` with 501.
STANDARD_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"})


def check_route(ctx: RequestContext) -> None:
    """405 for a method that is not a standard one as spelled (`post`), 404 for paths Kleis does not serve, 405 for
    the wrong method. Nothing that fails here reaches routing, an upstream or an account's health."""
    client = ctx.client
    if client.method not in STANDARD_METHODS:
        raise Refusal(
            405,
            f"{client.method[:20]!r} is not an HTTP method Kleis accepts: methods are case-sensitive ({client.method.upper()[:20]})",
            code="method_not_allowed",
        )
    if client.protocol is None:
        if client.path in LOCAL_PATHS or client.path.startswith("/v1/models/"):
            if client.method not in READ_METHODS:
                raise Refusal(405, f"{client.path} only answers GET (and HEAD)", code="method_not_allowed")
            return
        raise Refusal(
            404,
            f"Kleis does not serve {client.path}: use /v1/messages, /v1/chat/completions, /v1/responses or /v1/models",
            code="unknown_path",
        )
    if client.method != "POST":
        raise Refusal(405, f"{client.path} only answers POST", code="method_not_allowed")


def check_key(ctx: RequestContext, headers: Mapping[str, str], records: Mapping[str, KeyRecord]) -> KeyRecord:
    ctx.client.key = authenticate(headers, records)
    return ctx.client.key


def check_declared_size(headers: Mapping[str, str], limit: int) -> None:
    length = headers.get("content-length")
    if length and length.isdigit() and int(length) > limit:
        raise too_large(int(length), limit, decoded=False)


# Bodies from this size on are read in a worker thread: reading 1 MB takes 4–7 ms, which every other client's stream
# events would otherwise wait for on the event loop (the thread gives the loop the GIL back every switch interval).
OFF_LOOP_BYTES = 256 * 1024
# The members that make a request big (the conversation, the tool schemas): left unread until the provider needs
# them. Real Claude Code's request to Claude goes as the bytes it sent, and these are never built as Python objects.
UNREAD = frozenset({"messages", "input", "tools"})
SPLIT_OFF_LOOP_BYTES = 2 * 1024 * 1024  # reading in part takes 0.6 ms a megabyte


async def parse_body(ctx: RequestContext, content: bytes | None, limit: int, in_part: bool = True) -> dict[str, Any]:
    """The request's JSON body (413 over the limit, 400 when it is not a JSON object with a model), its bulk members
    (UNREAD) left unread when `in_part` and it is strict JSON (`read_unread` reads them); a large body is read in a
    worker thread."""
    checked = checked_body(content, limit)
    if in_part:
        large = len(checked) >= SPLIT_OFF_LOOP_BYTES
        members = await asyncio.to_thread(read_members, checked) if large else read_members(checked)
        if members is not None:
            return take_body(ctx, checked, members.read, members if members.unread else None)
    body = await asyncio.to_thread(read_json, checked) if len(checked) >= OFF_LOOP_BYTES else read_json(checked)
    return take_body(ctx, checked, body)


def read_members(content: bytes) -> fastjson.Members | None:
    """The body read in part; None when it is not strict JSON (read_json then reads it whole and says why)."""
    try:
        return fastjson.split(content, UNREAD)
    except (ValueError, RecursionError):
        return None


def may_stay_unread(headers: Mapping[str, str], providers: Iterable[Provider]) -> bool:
    """Whether the body's bulk may never need reading: some provider may forward the client's bytes as they are
    (real Claude Code's to Claude). When none may, the body is read whole at once: reading it in part first, then
    the rest, would read the bulk twice (about 1 ms a megabyte more)."""
    return any(provider.may_forward_unchanged(headers) for provider in providers)


def needs_unread(ctx: RequestContext) -> bool:
    """Whether the request's unread members must be read: unless the provider forwards the client's bytes and the
    conversation is known without its first message."""
    client, route = ctx.client, ctx.route
    if client.unread is None or client.body is None:
        return False
    assert route.provider is not None and route.resolution is not None
    if not route.provider.forwards_unchanged(client.headers, client.body, route.resolution.model):
        return True
    client.carried = carry.tagged(client.raw_body)  # a conversation that moved between providers: its history changes
    return client.carried or (route.pooled and named_conversation(client.headers, client.body) is None)


async def read_unread(ctx: RequestContext) -> None:
    """Complete the request's body with its unread members (in a worker thread when they are large)."""
    client, members = ctx.client, ctx.client.unread
    if members is None:
        return
    large = sum(len(value) for value in members.unread.values()) >= OFF_LOOP_BYTES
    try:
        body = await asyncio.to_thread(members.whole) if large else members.whole()
    except (ValueError, RecursionError):
        read_json(client.raw_body)  # the body is refused as a whole read refuses it (positions in the whole body)
        raise
    client.body, client.unread = body, None


def checked_body(content: bytes | None, limit: int) -> bytes:
    if content is not None and len(content) > limit:
        raise too_large(len(content), limit, decoded=False)
    if not content:
        raise Refusal(400, "the request body is empty; a JSON object with a model is required", code="invalid_json")
    return content


def read_json(content: bytes) -> Any:
    """The body's JSON value (pure: safe in a worker thread); a 400 for what is not JSON Kleis forwards."""
    try:
        return fastjson.loads(content)
    except ValueError as exc:
        raise Refusal(400, f"the request body is not valid JSON: {exc}", code="invalid_json") from None
    except RecursionError:
        raise Refusal(400, "the request body is not valid JSON: it is nested too deeply", code="invalid_json") from None


def take_body(ctx: RequestContext, content: bytes, body: Any, unread: fastjson.Members | None = None) -> dict[str, Any]:
    """The parsed body as the request's, once it is a JSON object with a model."""
    if not isinstance(body, dict):
        raise Refusal(400, "the request body must be a JSON object", code="invalid_json")
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise Refusal(400, "the request body has no model", code="missing_model")
    client = ctx.client
    client.body, client.raw_body, client.model, client.unread = body, content, model.strip(), unread
    client.stream = body.get("stream") is True
    return body


def route(ctx: RequestContext, tables: Tables) -> None:
    """Model → provider (404), key scope (403), provider's usable accounts in order (503). A model no provider
    serves on the client's protocol goes to one that serves it on another, by translation; so does a model its
    provider serves on other endpoints only (Copilot's): providers.serving.choose."""
    client = ctx.client
    assert client.protocol is not None and client.key is not None
    providers, accounts = tables.providers, tables.accounts
    choice = choose(client.model, client.protocol, tables)
    if choice is None:
        model = mapped_model(client.model, tables.model_map)
        elsewhere = served_elsewhere(model, client.protocol, tables.serving, tables.catalog)
        hint = f"it is served on {elsewhere}; " if elsewhere else ""
        raise Refusal(
            404,
            f"no provider serves the model {client.model!r} on {client.path}; {hint}GET /v1/models lists the models this key can use",
            code="model_not_found",
        )
    resolution, provider = choice.resolution, choice.provider
    authorize(client.key, resolution.provider, client.model, resolution.model, providers.keys())
    if choice.translation and not client.key.translation:
        raise Refusal(
            403,
            f"this Kleis key may not use translated models: {client.model!r} is served on another protocol than {client.path} "
            "(the key was created with --no-translation)",
            code="translation_not_allowed",
        )
    ctx.route.resolution, ctx.route.provider, ctx.route.translation = resolution, provider, choice.translation
    ctx.route.candidates = candidates(accounts, resolution.provider)
    ctx.route.pooled = sum(1 for a in accounts if a.provider == resolution.provider) > 1
    if not ctx.route.candidates:
        reasons = unusable_reasons(accounts, resolution.provider)
        detail = f" ({'; '.join(reasons)})" if reasons else ""
        headers = unavailable_headers(soonest_back(accounts, resolution.provider))
        raise Refusal(
            503,
            f"no usable {provider.display_name} account{detail}: {provider.login_hint}",
            code="no_account",
            error_type=unavailable_type(client.error_protocol, headers),
            headers=headers,
        )


def rank_candidates(
    ctx: RequestContext,
    policy: PoolPolicy,
    quota: Callable[[int], QuotaReading | None],
    affinity: SessionAffinity,
    busy: Callable[[Iterable[int]], set[int]],
    now: float,
) -> None:
    """The route's accounts in the order to try: quota headroom and routing mode, the conversation's own account
    first while it has headroom, accounts at their in-flight cap last (providers.pool.rank)."""
    client, route = ctx.client, ctx.route
    if not route.pooled:
        return  # the provider has one account: nothing to choose, no conversation to keep anywhere else
    route.conversation = conversation_id(client.headers, client.body or {}, client.key.id if client.key else None, client.model)
    preferred = affinity.account_for(route.conversation, now)
    reading = quota(preferred) if preferred is not None else None
    if any(a.id == preferred for a in route.candidates) and not (reading is not None and reading.saving(policy.threshold, now)):
        route.bound = preferred  # a detour (its probe out, its in-flight cap) leaves the conversation bound to it
    route.candidates = rank(route.candidates, policy, quota, now, preferred=route.bound, busy=busy(a.id for a in route.candidates))


def plain_headers(fields: tuple[tuple[bytes, bytes], ...]) -> dict[str, str]:
    """mitmproxy's header fields as one plain dict with lower-case names, decoded once (the last value wins)."""
    return {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in fields}
