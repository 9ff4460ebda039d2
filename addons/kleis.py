"""The Kleis mitmproxy addon: thin hooks that call the plain functions of the pipeline, failing closed."""

from __future__ import annotations

import json
import logging
import time
import weakref
from urllib.parse import unquote, urlsplit
from collections.abc import Callable, Mapping

import httpx
from mitmproxy import ctx as mitm_ctx
from mitmproxy import http

from addons import failover, local, mitm_errors, pipeline, responses, wire_secrets
from addons.key_limits import KeyLimiter
from addons.errors import error_response, json_response
from core.client_errors import Refusal, unavailable_headers, unavailable_type, upstream_error_body
from addons.pipeline import RequestContext
from addons.state import StoreFollower
from addons.upstream_timeout import TIMEOUT_HEADER, UpstreamDeadlines
from core.config import Config
from providers.base import Provider
from providers.lifecycle import RefreshFailed, TokenManager
from store.db import Store

log = logging.getLogger(__name__)


class Kleis:
    """One instance per process. Hooks never raise: a failure becomes a protocol-shaped error response,
    because mitmproxy forwards a flow whose hook raised (with the client's key) upstream."""

    def __init__(
        self,
        store: Store,
        config: Config,
        providers: Mapping[str, Provider],
        *,
        registry=None,  # type: ignore[no-untyped-def]
        usage=None,  # type: ignore[no-untyped-def]
        health=None,  # type: ignore[no-untyped-def]
        refresher=None,  # type: ignore[no-untyped-def]
        follower: StoreFollower | None = None,
        master_getter: Callable[[], object] | None = None,
    ) -> None:
        self.store = store
        self.config = config
        self.providers = dict(providers)
        self.registry = registry
        self.usage = usage
        self.health = health
        self.refresher = refresher
        self.follower = follower or StoreFollower(store.cipher)
        self.follower.load_all()
        self.http: httpx.AsyncClient | None = None
        self.tokens: TokenManager | None = None
        self.limits = KeyLimiter()
        self.deadlines = UpstreamDeadlines(master_getter or (lambda: mitm_ctx.master))
        self._contexts: weakref.WeakKeyDictionary[http.HTTPFlow, RequestContext] = weakref.WeakKeyDictionary()
        wire_secrets.install()
        mitm_errors.install()

    # -- lifecycle ---------------------------------------------------------------------
    def load(self, loader) -> None:  # type: ignore[no-untyped-def]
        wire_secrets.install()
        mitm_errors.install()

    async def running(self) -> None:
        self.http = httpx.AsyncClient(timeout=httpx.Timeout(30.0, connect=10.0), trust_env=False)
        self.tokens = TokenManager(self.store, self.providers, self.http, on_update=self.follower.replace_account)
        self.follower.start()
        for part in self._parts():
            part.start(self)

    def _parts(self) -> list:  # type: ignore[type-arg]
        return [p for p in (self.registry, self.usage, self.health, self.refresher) if p is not None and hasattr(p, "start")]

    async def done(self) -> None:
        for part in reversed(self._parts()):
            if part is not None and hasattr(part, "stop"):
                await part.stop()
        await self.follower.stop()
        if self.http is not None:
            await self.http.aclose()

    # -- request hooks ---------------------------------------------------------------------
    async def requestheaders(self, flow: http.HTTPFlow) -> None:
        if flow.response or flow.error or not flow.live:
            return
        ctx = pipeline.begin(flow.request.method, flow.request.path)
        self._contexts[flow] = ctx
        headers = pipeline.plain_headers(flow.request.headers.fields)
        for name in pipeline.CREDENTIAL_HEADERS:  # never kept in the flow (mitmweb shows flows), whatever the path
            if name in headers:
                flow.request.headers.pop(name, None)
        try:
            pipeline.check_route(ctx)
            if ctx.path in pipeline.PUBLIC_PATHS:
                self._answer_public(flow, ctx)
                return
            ctx.key = await self._authenticate(ctx, headers)
            for name in pipeline.CREDENTIAL_HEADERS:  # the client's key never travels further
                headers.pop(name, None)
            ctx.client_headers = headers
            if ctx.protocol is None:
                self._answer_models(flow, ctx)
                return
            pipeline.check_declared_size(headers, self.config.max_body_bytes)
            ctx.holds_key_slot = self.limits.admit(ctx.key)
        except Refusal as refusal:
            self._refuse(flow, ctx, refusal)
        except Exception:
            log.exception("requestheaders failed")
            self._refuse(flow, ctx, Refusal(500, "Kleis failed to handle the request headers", code="internal_error"))
        finally:
            if ctx.method == "HEAD" and flow.response is not None:
                # The GET's headers (content-length too) and no body: mitmproxy would send a body after a HEAD,
                # and the client would read it as the next response on the connection.
                flow.response.raw_content = b""

    async def request(self, flow: http.HTTPFlow) -> None:
        ctx = self._contexts.get(flow)
        if ctx is None or flow.response or flow.error or not flow.live:
            return
        try:
            pipeline.parse_body(ctx, flow.request.get_content(strict=False), self.config.max_body_bytes)
            pipeline.route(ctx, self.providers, self.follower.accounts, self.registry.lookup if self.registry else None)
            if self.health is not None:
                ctx.candidates, ctx.probe = self.health.order(ctx.candidates)
            await self._forward(flow, ctx)
        except Refusal as refusal:
            self._refuse(flow, ctx, refusal)
        except Exception:
            log.exception("request failed")
            self._refuse(flow, ctx, Refusal(500, "Kleis failed to prepare the request", code="internal_error"))

    async def _forward(self, flow: http.HTTPFlow, ctx: RequestContext) -> None:
        """Take the next candidate account with a fresh token and point the flow at its upstream."""
        assert ctx.provider is not None and self.tokens is not None
        last_error: RefreshFailed | None = None
        for account in [a for a in ctx.candidates if a.id not in ctx.tried]:
            ctx.tried.append(account.id)
            try:
                account = await self.tokens.fresh(account)
            except RefreshFailed as exc:
                last_error = exc
                continue
            ctx.account = account
            ctx.token_ref = wire_secrets.vault.put(account.access_token or "")
            forward = pipeline.build_forward(ctx, ctx.client_headers, account, ctx.token_ref)
            upstream = ctx.provider.prepare(forward)
            ctx.upstream = upstream
            ctx.usage = ctx.provider.usage_reader(ctx.protocol)
            apply_upstream(flow, upstream, forward.headers)
            ctx.forwarded_at = time.time()
            self.deadlines.start(flow, self.config.upstream_timeout)
            return
        message = str(last_error) if last_error else f"no usable {ctx.provider.display_name} account"
        headers = unavailable_headers(last_error.retry_in if last_error else None)
        raise Refusal(503, message, code="account_unavailable", error_type=unavailable_type(ctx.error_protocol, headers), headers=headers)

    # -- response hooks ----------------------------------------------------------------------
    def responseheaders(self, flow: http.HTTPFlow) -> None:
        ctx = self._contexts.get(flow)
        if ctx is None or ctx.upstream is None or flow.response is None:
            return
        self.deadlines.cancel(flow)
        try:
            ctx.first_byte_at = time.time()
            ctx.status = flow.response.status_code
            if (
                flow.response.status_code < 300
                and ctx.client_stream
                and not ctx.upstream.aggregate
                and responses.is_event_stream(flow.response.headers.get("content-type", ""))
            ):
                flow.response.headers.pop("content-length", None)
                flow.response.stream = responses.make_stream_rewriter(ctx)
                ctx.streamed = True
            flow.response.headers["x-kleis-request-id"] = ctx.request_id
        except Exception:
            # Fail closed: the body is read whole (no stream set) and `response` answers 500 instead of passing
            # on what Kleis could not rewrite.
            log.exception("responseheaders failed")
            flow.response.stream = False
            ctx.streamed = False
            ctx.hook_failed = True

    async def response(self, flow: http.HTTPFlow) -> None:
        ctx = self._contexts.get(flow)
        if ctx is None or ctx.done:
            return
        try:
            if ctx.hook_failed:
                raise RuntimeError("responseheaders failed")
            if ctx.upstream is not None and flow.response is not None:
                self._aggregate(flow, ctx)
                if flow.response.status_code >= 400 and not ctx.streamed and TIMEOUT_HEADER not in flow.response.headers:
                    await self._on_upstream_error(flow, ctx)
                self._finish_upstream_response(flow, ctx)
                if ctx.status < 400 and ctx.account is not None and self.health is not None:
                    self.health.on_success(ctx.account)
        except Exception:
            log.exception("response handling failed")
            flow.response = error_response(ctx.error_protocol, Refusal(500, "Kleis failed to process the upstream response", code="internal_error"), ctx.request_id)
            ctx.status, ctx.error_type = 500, "internal_error"
        finally:
            self._finish(flow, ctx)

    def _finish_upstream_response(self, flow: http.HTTPFlow, ctx: RequestContext) -> None:
        assert flow.response is not None and ctx.provider is not None and ctx.protocol is not None
        status = flow.response.status_code
        ctx.status = status
        if TIMEOUT_HEADER in flow.response.headers:
            flow.response = error_response(ctx.protocol, Refusal(504, "the upstream did not answer in time (KLEIS_UPSTREAM_TIMEOUT)", code="upstream_timeout"), ctx.request_id)
            ctx.error_type = "upstream_timeout"
            return
        if ctx.streamed:
            label, signal = ctx.provider.stream_outcome(ctx.upstream)
            if label:
                ctx.error_type = ctx.error_type or label
            if signal is not None and ctx.account is not None and self.health is not None:
                self.health.on_signal(ctx.account, signal)
            return
        content = flow.response.get_content(strict=False) or b""
        if status >= 400:
            ctx.error_type = ctx.error_type or f"upstream_{status}"
            shaped = upstream_error_body(ctx.protocol, status, content)
            if shaped is not None:
                flow.response.content = shaped
                flow.response.headers["content-type"] = "application/json"
            return
        if ctx.aggregated:
            return
        rewritten = responses.rewrite_body(ctx, status, content)
        if rewritten is not None:
            flow.response.headers.pop("content-encoding", None)
            flow.response.content = rewritten

    def _aggregate(self, flow: http.HTTPFlow, ctx: RequestContext) -> None:
        """A non-streaming client of a streaming-only upstream gets one JSON answer (its status may be an error)."""
        assert flow.response is not None and ctx.upstream is not None
        if not ctx.upstream.aggregate or flow.response.status_code >= 300:
            return
        if not responses.is_event_stream(flow.response.headers.get("content-type", "")):
            return
        status, body = responses.aggregate_stream(ctx, flow.response.get_content(strict=False) or b"")
        flow.response.status_code = status
        flow.response.headers["content-type"] = "application/json"
        flow.response.headers.pop("content-encoding", None)
        flow.response.content = body
        ctx.status = status
        ctx.aggregated = True
        if status >= 400:
            label, _ = ctx.provider.stream_outcome(ctx.upstream) if ctx.provider else ("", None)
            ctx.error_type = label

    async def _on_upstream_error(self, flow: http.HTTPFlow, ctx: RequestContext) -> None:
        """Classify the failure, tell the account's health, and fail over while nothing reached the client."""
        assert flow.response is not None and ctx.provider is not None and ctx.protocol is not None
        signal = self._signal(ctx, flow.response.status_code, flow.response.headers, flow.response.get_content(strict=False))
        if not failover.should_fail_over(signal) or self.tokens is None or self.http is None:
            return
        attempts = failover.next_accounts(ctx, signal, self.follower.account)
        if not attempts:
            return  # nobody else to ask: the client sees the provider's own answer
        if ctx.client_stream:
            ctx.error_type = "account_failover"
            flow.response = error_response(ctx.protocol, failover.retry_refusal(ctx, signal, flow.response.status_code), ctx.request_id)
            return
        failed = ctx.account
        for account in attempts:
            force = signal.kind == "auth" and failed is not None and account.id == failed.id
            try:
                result = await failover.resend(ctx, account, self.tokens, self.http, self.config.upstream_timeout, force)
            except httpx.HTTPError as exc:
                log.warning("failover to account %s could not reach the upstream: %s", account.id, exc)
                continue
            if result is None:
                continue
            ctx.retries += 1
            _, response = result
            flow.response = failover.as_flow_response(response)
            flow.response.headers["x-kleis-request-id"] = ctx.request_id
            ctx.aggregated = False
            self._aggregate(flow, ctx)
            if flow.response.status_code < 400:
                return
            signal = self._signal(ctx, flow.response.status_code, flow.response.headers, flow.response.get_content(strict=False))
            if not failover.should_fail_over(signal):
                return
            failed = ctx.account

    def _signal(self, ctx: RequestContext, status: int, headers, content: bytes | None):  # type: ignore[no-untyped-def]
        assert ctx.provider is not None
        signal = ctx.provider.classify(status, headers, _json_or_none(content or b""))
        if signal.kind == "auth" and ctx.account is not None and self.tokens is not None and self.tokens.refused_after_renewal(ctx.account):
            # The token issued to replace a refused one is refused too: the provider rejects the account, not the
            # token. Refreshing again would only rotate tokens in a loop; cool the account and let the others serve.
            signal = failover.refused_account(signal)
        if not (ctx.aggregated and ctx.error_type):  # keep an in-stream error's own label
            ctx.error_type = f"upstream_{status}" + (f" {signal.label}" if signal.label else "")
        if ctx.account is not None:
            if signal.kind in ("auth", "auth_rejected") and self.tokens is not None:
                self.tokens.mark_stale(ctx.account)  # after a rejection's cooldown, too, the next use refreshes first
            if self.health is not None:
                self.health.on_signal(ctx.account, signal)
        return signal

    def error(self, flow: http.HTTPFlow) -> None:
        ctx = self._contexts.get(flow)
        if ctx is None or ctx.done:
            return
        self.deadlines.cancel(flow)
        message = flow.error.msg if flow.error else "error"
        if ctx.streamed:
            ctx.error_type = "stream_interrupted"
        elif message.startswith("Request body exceeds"):  # a response over the limit stays a 502 (upstream)
            ctx.status, ctx.error_type = 413, "request_too_large"
        elif ctx.first_byte_at is None:
            ctx.status = ctx.status or (504 if mitm_errors.TIMEOUT_MARKER in message else 502)
            ctx.error_type = "upstream_timeout" if mitm_errors.TIMEOUT_MARKER in message else "upstream_unreachable"
        else:
            ctx.error_type = "connection_error"
        log.info("request %s ended with an error: %s", ctx.request_id, message)
        self._finish(flow, ctx)

    # -- helpers -------------------------------------------------------------------------------
    async def _authenticate(self, ctx: RequestContext, headers: http.Headers):  # type: ignore[no-untyped-def]
        try:
            return pipeline.check_key(ctx, headers, self.follower.keys)
        except Refusal as refusal:
            if refusal.message != "unknown Kleis key":
                raise
            await self.follower.reload_keys_after_miss(ctx.started)  # it may be a key created a moment ago
            return pipeline.check_key(ctx, headers, self.follower.keys)

    def _answer_public(self, flow: http.HTTPFlow, ctx: RequestContext) -> None:
        """/, /healthz and /models/api.json: no key needed."""
        ctx.local = True
        if ctx.path == "/":
            flow.response = json_response(200, local.index(), ctx.request_id)
        elif ctx.path == "/healthz":
            status, body = local.healthz(self.follower.healthy, self.follower.loaded_at, self.follower.accounts)
            flow.response = json_response(status, body, ctx.request_id)
        elif self.registry is not None:
            payload = self.registry.api_json_bytes(self.config.public_url or public_base(flow))
            flow.response = http.Response.make(200, payload, {"content-type": "application/json", "x-kleis-request-id": ctx.request_id})
        else:
            raise Refusal(404, "the model registry is not enabled", code="unknown_path")

    def _answer_models(self, flow: http.HTTPFlow, ctx: RequestContext) -> None:
        assert ctx.key is not None
        ctx.local = True
        listing = local.model_list(ctx.key, self.providers, self.follower.accounts, self.registry.listing if self.registry else None)
        if ctx.path.startswith("/v1/models/"):
            body = local.one_model(listing, unquote(ctx.path[len("/v1/models/"):]))  # the SDKs send codex%2Fgpt-5.4
        else:
            body = listing
        flow.response = json_response(200, body, ctx.request_id)

    def _refuse(self, flow: http.HTTPFlow, ctx: RequestContext, refusal: Refusal) -> None:
        ctx.refused = True
        ctx.status = refusal.status
        ctx.error_type = refusal.code or f"kleis_{refusal.status}"
        flow.response = error_response(ctx.error_protocol, refusal, ctx.request_id)

    def _finish(self, flow: http.HTTPFlow, ctx: RequestContext) -> None:
        ctx.done = True
        wire_secrets.vault.release(ctx.token_ref)
        if ctx.holds_key_slot and ctx.key is not None:
            ctx.holds_key_slot = False
            self.limits.release(ctx.key.id)
        if ctx.probe is not None and self.health is not None:
            self.health.probe_done(ctx.probe)
        if self.usage is not None and not ctx.local:
            try:
                self.usage.record(ctx, time.time())
            except Exception:
                log.exception("recording usage failed")


def apply_upstream(flow: http.HTTPFlow, upstream, client_headers: Mapping[str, str]) -> None:  # type: ignore[no-untyped-def]
    """Point the flow at the provider: target (origin-form), headers built once (identity encoding), body.

    The target is written to the request's fields directly: `request.url = …` would parse the URL and rewrite
    Host and authority through the header multidict twice, and the headers are replaced as a whole below anyway.
    """
    request = flow.request
    target = urlsplit(upstream.url)
    scheme = target.scheme or "https"
    port = target.port or (443 if scheme == "https" else 80)
    data = request.data
    data.scheme, data.host, data.port, data.authority = scheme.encode(), target.hostname or "", port, b""
    data.path = ((target.path or "/") + (f"?{target.query}" if target.query else "")).encode()
    own = {name.lower(): value for name, value in upstream.headers.items()}
    merged = {name: value for name, value in client_headers.items() if name not in upstream.drop_headers and name not in own}
    merged.update(own)
    merged["host"] = target.netloc if target.port not in (None, 80 if scheme == "http" else 443) else (target.hostname or "")
    merged["accept-encoding"] = "identity"
    request.headers = http.Headers([(name.encode("latin-1"), str(value).encode("latin-1")) for name, value in merged.items()])
    request.content = json.dumps(upstream.body, separators=(",", ":")).encode()  # ASCII: a lone surrogate cannot break it


def public_base(flow: http.HTTPFlow) -> str:
    """The base URL a client used to reach Kleis (for URLs Kleis hands out)."""
    host = flow.request.headers.get("host") or f"{flow.client_conn.sockname[0]}:{flow.client_conn.sockname[1]}"
    return f"http://{host}"


def _json_or_none(content: bytes):  # type: ignore[no-untyped-def]
    try:
        return json.loads(content) if content else None
    except ValueError:
        return None
