"""The Kleis mitmproxy addon: thin hooks that call the plain functions of the pipeline, failing closed."""

from __future__ import annotations

import logging
import time
import weakref
from urllib.parse import unquote

from mitmproxy import http

from addons import adoption, client_wire, failover, local, mitm_errors, response_headers, responses, upstream
from addons.drain import shutting_down
from addons.errors import error_response, json_response
from addons.services import Services
from addons.upstream_timeout import TIMEOUT_HEADER
from core.client_errors import Refusal, unavailable_headers, unavailable_type, upstream_error_body
from core.protocol import Protocol
from engine import pipeline, request_body
from engine.context import RequestContext, begin
from engine.wire_secrets import vault
from providers.lifecycle import RefreshFailed
from providers.protocols.turn import estimate_tokens
from providers.translated import TranslatedProvider
from store.accounts import AccountView
from store.keys import KeyRecord

log = logging.getLogger(__name__)

COUNT_TOKENS_PATH = "/v1/messages/count_tokens"


class Kleis:
    """One instance per process. Hooks never raise: a failure becomes a protocol-shaped error response,
    because mitmproxy forwards a flow whose hook raised (with the client's key) upstream."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self._contexts: weakref.WeakKeyDictionary[http.HTTPFlow, RequestContext] = weakref.WeakKeyDictionary()

    # -- request hooks -------------------------------------------------------------------------
    async def requestheaders(self, flow: http.HTTPFlow) -> None:
        if flow.response or flow.error or not flow.live:
            for name in pipeline.CREDENTIAL_HEADERS:  # a flow mitmproxy refused itself keeps no key either
                flow.request.headers.pop(name, None)
            return
        # The method as sent: `Request.method` upper-cases it, while the bytes upstream keep the client's spelling.
        ctx = begin(flow.request.data.method.decode("latin-1"), flow.request.path)
        self._contexts[flow] = ctx
        if "?" in flow.request.path:  # a key in the query is not kept in the flow either (mitmweb shows flows)
            base = flow.request.path.partition("?")[0]
            flow.request.path = base + (f"?{ctx.client.query}" if ctx.client.query else "")
        headers = pipeline.plain_headers(flow.request.headers.fields)
        for name in pipeline.CREDENTIAL_HEADERS:  # never kept in the flow (mitmweb shows flows), whatever the path
            if name in headers:
                flow.request.headers.pop(name, None)
        try:
            await self._admit(flow, ctx, headers)
        except Refusal as refusal:
            self._refuse(flow, ctx, refusal)
        except Exception:
            log.exception("requestheaders failed")
            self._refuse(flow, ctx, Refusal(500, "Kleis failed to handle the request headers", code="internal_error"))
        finally:
            if ctx.client.method == "HEAD" and flow.response is not None:
                # The GET's headers (content-length too) and no body: mitmproxy would send a body after a HEAD,
                # and the client would read it as the next response on the connection.
                flow.response.raw_content = b""

    async def _admit(self, flow: http.HTTPFlow, ctx: RequestContext, headers: dict[str, str]) -> None:
        """Local answers, the key check and the key's limits, before the body is read."""
        client = ctx.client
        if self.services.drain.draining:  # a request on a keep-alive connection after SIGTERM
            raise shutting_down("it takes no new requests")
        pipeline.check_route(ctx)
        if client.path in pipeline.PUBLIC_PATHS:
            self._answer_public(flow, ctx)
            return
        key = await self._authenticate(ctx, headers)
        for name in pipeline.CREDENTIAL_HEADERS:  # the client's key never travels further
            headers.pop(name, None)
        client.headers = headers
        if client.protocol is None:
            self._answer_models(flow, ctx, key)
            return
        pipeline.check_declared_size(headers, self.services.config.max_body_bytes)
        if self.services.budgets is not None:
            self.services.budgets.check(key, client.started)  # before the limits: a refusal takes no slot
        client.holds_key_slot = self.services.limits.admit(key)

    async def request(self, flow: http.HTTPFlow) -> None:
        ctx = self._contexts.get(flow)
        if ctx is None or flow.response or flow.error or not flow.live:
            return
        services = self.services
        try:
            limit = services.config.max_body_bytes
            content = request_body.decoded_body(flow.request.raw_content, flow.request.headers.get("content-encoding", ""), limit)
            await pipeline.parse_body(ctx, content, limit, pipeline.may_stay_unread(ctx.client.headers, services.providers.values()))
            if ctx.outcome.done:  # the client left while a large body was read
                upstream.drop_bodies(ctx)
                return
            pipeline.route(ctx, services.routing_tables())
            if ctx.route.translation and ctx.client.path == COUNT_TOKENS_PATH:
                self._answer_token_estimate(flow, ctx)
                return
            if pipeline.needs_unread(ctx):
                await pipeline.read_unread(ctx)
                if ctx.outcome.done:  # the client left while the body was read
                    upstream.drop_bodies(ctx)
                    return
            pipeline.rank_candidates(ctx, services.policy, services.quota_of, services.affinity, services.load.busy, time.time())
            if services.health is not None:
                ctx.route.candidates, ctx.route.probe = services.health.order(ctx.route.candidates)
            await self._forward(flow, ctx)
            if ctx.outcome.done:
                self.finish(flow, ctx)  # ended while it waited: give back what it took since
        except Refusal as refusal:
            self._refuse(flow, ctx, refusal)
        except Exception:
            log.exception("request failed")
            self._refuse(flow, ctx, Refusal(500, "Kleis failed to prepare the request", code="internal_error"))

    async def _forward(self, flow: http.HTTPFlow, ctx: RequestContext) -> None:
        """Take the next candidate account with a fresh token and point the flow at its upstream."""
        assert ctx.route.provider is not None
        services, last_error = self.services, None
        while accounts := await self._accounts_to_try(ctx):
            for account in accounts:
                if services.load.full(account.id):
                    continue  # filled up while an earlier candidate's token was being refreshed: tried again after
                ctx.upstream.tried.append(account.id)
                upstream.hold_slot(ctx, services.load, account.id)
                try:
                    account = await services.tokens.fresh(account)
                except RefreshFailed as exc:
                    upstream.drop_slot(ctx, services.load)
                    last_error = exc
                    continue
                if ctx.outcome.done:
                    return  # ended meanwhile (the shutdown drain answered it): it goes nowhere
                self._point(flow, ctx, account)
                return
        message = str(last_error) if last_error else f"no usable {ctx.route.provider.display_name} account"
        headers = unavailable_headers(last_error.retry_in if last_error else None)
        raise Refusal(503, message, code="account_unavailable", error_type=unavailable_type(ctx.error_protocol, headers), headers=headers)

    def _point(self, flow: http.HTTPFlow, ctx: RequestContext, account: AccountView) -> None:
        """The flow goes to `account`'s upstream, its token as a reference bound to that address."""
        services = self.services
        services.affinity.bind(ctx.route.conversation, ctx.route.bound or account.id, time.time())
        ctx.upstream.token_ref = vault.put(account.access_token or "")  # released by `finish`, whatever happens next
        request = upstream.start_call(ctx, account, ctx.upstream.token_ref)
        vault.bind(ctx.upstream.token_ref, request.host, request.port)  # swapped in only on a connection to this address
        upstream.apply_to_flow(flow, request)
        services.deadlines.start(flow, services.config.upstream_timeout)

    async def _accounts_to_try(self, ctx: RequestContext) -> list[AccountView]:
        """The candidates not tried yet that are below KLEIS_ACCOUNT_MAX_INFLIGHT; when every one is at its cap,
        wait up to KLEIS_ACCOUNT_WAIT for a slot, then refuse with 503."""
        load, config = self.services.load, self.services.config
        left = [a for a in ctx.route.candidates if a.id not in ctx.upstream.tried]
        free = [a for a in left if not load.full(a.id)]
        if free or not left:
            return free
        if await load.wait_for_slot([a.id for a in left], config.account_wait):
            return [a for a in left if not load.full(a.id)]
        assert ctx.route.provider is not None
        raise Refusal(
            503,
            f"every {ctx.route.provider.display_name} account has {load.max_in_flight} requests in flight "
            "(KLEIS_ACCOUNT_MAX_INFLIGHT); retry shortly",
            code="accounts_busy",
            error_type="overloaded_error" if ctx.error_protocol is Protocol.MESSAGES else None,
            headers={"retry-after": "1", "x-should-retry": "true"},
        )

    # -- response hooks ------------------------------------------------------------------------
    def responseheaders(self, flow: http.HTTPFlow) -> None:
        ctx = self._contexts.get(flow)
        if flow.response is not None and self.services.drain.draining:
            flow.response.headers["connection"] = "close"  # the client does not send another request here
        if ctx is None or ctx.upstream.prepared is None or flow.response is None:
            return
        self.services.deadlines.cancel(flow)
        outcome = ctx.outcome
        try:
            outcome.first_byte_at = time.time()
            outcome.status = flow.response.status_code
            self._read_quota(ctx, flow.response.headers, outcome.first_byte_at)  # before the filter below
            response_headers.filter_headers(flow.response.headers)  # before a stream sends them on
            if (
                flow.response.status_code < 300
                and ctx.client.stream
                and not ctx.upstream.prepared.aggregate
                and responses.is_event_stream(flow.response.headers.get("content-type", ""))
            ):
                flow.response.headers.pop("content-length", None)
                rewriter = responses.make_stream_rewriter(ctx)
                flow.response.stream = rewriter
                outcome.streamed = True
                self.services.keepalive.start(flow, rewriter)
            flow.response.headers["x-kleis-request-id"] = ctx.request_id
        except Exception:
            # Fail closed: the body is read whole (no stream set) and `response` answers 500 instead of passing
            # on what Kleis could not rewrite.
            log.exception("responseheaders failed")
            flow.response.stream = False
            outcome.streamed = False
            outcome.hook_failed = True

    def _read_quota(self, ctx: RequestContext, headers: http.Headers, now: float) -> None:
        """The subscription quota the answer's headers carry, for the pool and the usage record."""
        tracker, account, provider = self.services.quota, ctx.upstream.account, ctx.route.provider
        if tracker is None or account is None or provider is None:
            return
        reading = tracker.read_answer(account.id, provider, headers, now)
        if reading is not None:
            ctx.outcome.quota_claim, ctx.outcome.quota_overage = reading.claim, reading.overage

    async def response(self, flow: http.HTTPFlow) -> None:
        ctx = self._contexts.get(flow)
        if ctx is None or ctx.outcome.done:
            return
        try:
            if ctx.outcome.hook_failed:
                raise RuntimeError("responseheaders failed")
            if ctx.upstream.prepared is not None and flow.response is not None:
                await self._upstream_answered(flow, ctx)
        except Exception:
            log.exception("response handling failed")
            refusal = Refusal(500, "Kleis failed to process the upstream response", code="internal_error")
            flow.response = error_response(ctx.error_protocol, refusal, ctx.request_id)
            ctx.outcome.status, ctx.outcome.error_type = 500, "internal_error"
        finally:
            self.finish(flow, ctx)

    async def _upstream_answered(self, flow: http.HTTPFlow, ctx: RequestContext) -> None:
        assert flow.response is not None
        responses.aggregate_response(ctx, flow.response)
        if flow.response.status_code >= 400 and not ctx.outcome.streamed and TIMEOUT_HEADER not in flow.response.headers:
            await self._on_upstream_error(flow, ctx)
        self._finish_upstream_response(flow, ctx)
        health, account, prepared = self.services.health, ctx.upstream.account, ctx.upstream.prepared
        if ctx.outcome.status < 400 and ctx.route.provider is not None and prepared is not None:
            ctx.route.provider.on_success(prepared)  # what the accepted request carried may be learned
        if ctx.outcome.status < 400 and account is not None and health is not None:
            health.on_success(account)

    def _finish_upstream_response(self, flow: http.HTTPFlow, ctx: RequestContext) -> None:
        assert flow.response is not None and ctx.route.provider is not None and ctx.protocol is not None
        outcome, prepared = ctx.outcome, ctx.upstream.prepared
        assert prepared is not None
        status = outcome.status = flow.response.status_code
        if TIMEOUT_HEADER in flow.response.headers:
            timeout = Refusal(504, "the upstream did not answer in time (KLEIS_UPSTREAM_TIMEOUT)", code="upstream_timeout")
            flow.response = error_response(ctx.protocol, timeout, ctx.request_id)
            outcome.error_type = "upstream_timeout"
            return
        if outcome.streamed:
            self._note_stream_error(ctx)
            return
        content = flow.response.get_content(strict=False) or b""
        if status >= 400:
            outcome.error_type = outcome.error_type or f"upstream_{status}"
            drift = outcome.drift
            shaped = upstream_error_body(ctx.protocol, status, content, drift.hint if drift else "")
            if shaped is not None:
                flow.response.headers.pop("content-encoding", None)
                flow.response.content = shaped
                flow.response.headers["content-type"] = "application/json"
            if drift is not None and not drift.retry:
                flow.response.headers["x-should-retry"] = "false"  # only a change of what Kleis presents helps
            return
        if outcome.aggregated:
            return
        rewritten = responses.rewrite_body(ctx, status, content)
        if rewritten is not None:
            flow.response.headers.pop("content-encoding", None)
            flow.response.content = rewritten

    async def _on_upstream_error(self, flow: http.HTTPFlow, ctx: RequestContext) -> None:
        """Classify the failure, tell the account's health, and fail over while nothing reached the client."""
        assert flow.response is not None and ctx.protocol is not None
        signal = failover.classify(ctx, flow.response, self.services)
        if signal.drift is not None and signal.drift.retry:
            answer = await adoption.answer_again(ctx, signal, self.services)
            if answer is not None:
                flow.response = answer
            return
        if not failover.should_fail_over(signal):
            return
        attempts = failover.next_accounts(ctx, signal, self.services.follower.account)
        if not attempts:
            return  # nobody else to ask: the client sees the provider's own answer
        if ctx.client.stream:
            ctx.outcome.error_type = "account_failover"
            flow.response = error_response(ctx.protocol, failover.retry_refusal(ctx, signal, flow.response.status_code), ctx.request_id)
            return
        answer = await failover.try_others(ctx, signal, attempts, self.services)
        if answer is not None:
            flow.response = answer

    def _note_stream_error(self, ctx: RequestContext) -> None:
        """An error the upstream sent inside its stream: the usage record names it (even when the client hung up on
        reading it, which is what SDKs do) and the account's health hears what it says."""
        provider, prepared = ctx.route.provider, ctx.upstream.prepared
        assert provider is not None and prepared is not None
        label, signal = provider.stream_outcome(prepared)
        if label and ctx.outcome.error_type in ("", "client_disconnected", "stream_interrupted"):
            ctx.outcome.error_type = label
        if signal is not None and ctx.upstream.account is not None:
            failover.tell_health(ctx.upstream.account, signal, self.services)

    def error(self, flow: http.HTTPFlow) -> None:
        ctx = self._contexts.get(flow)
        if ctx is None or ctx.outcome.done:
            return
        self.services.deadlines.cancel(flow)
        message = flow.error.msg if flow.error else "error"
        mitm_errors.classify_error(ctx.outcome, message)
        provider, prepared = ctx.route.provider, ctx.upstream.prepared
        if ctx.outcome.streamed and provider is not None and prepared is not None:
            self._note_stream_error(ctx)  # the stream's own error, when it carried one before the connection ended
        if ctx.outcome.error_type == "stream_interrupted" and isinstance(provider, TranslatedProvider) and prepared is not None:
            last = provider.stream_cut(prepared)  # a translated stream ends in its protocol's error, not a bare cut
            if last and self.services.master is not None:
                client_wire.end_stream(self.services.master(), flow, last)
        log.info("request %s ended with an error: %s", ctx.request_id, message)
        self.finish(flow, ctx)

    # -- helpers -------------------------------------------------------------------------------
    async def _authenticate(self, ctx: RequestContext, headers: dict[str, str]) -> KeyRecord:
        follower = self.services.follower
        try:
            return pipeline.check_key(ctx, headers, follower.keys)
        except Refusal as refusal:
            if refusal.message != "unknown Kleis key":
                raise
            await follower.reload_keys_after_miss(ctx.client.started)  # it may be a key created a moment ago
            return pipeline.check_key(ctx, headers, follower.keys)

    def _answer_public(self, flow: http.HTTPFlow, ctx: RequestContext) -> None:
        """/, /healthz and /models/api.json: no key needed."""
        ctx.outcome.local = True
        services, path = self.services, ctx.client.path
        if path == "/":
            flow.response = json_response(200, local.index(), ctx.request_id)
        elif path == "/healthz":
            follower = services.follower
            waiting = services.usage.queue.qsize() if services.usage is not None else None
            status, body = local.healthz(follower.healthy, follower.loaded_at, follower.accounts, waiting)
            flow.response = json_response(status, body, ctx.request_id)
        elif services.catalog is not None:
            payload = services.catalog.api_json_bytes(services.config.public_url or local.public_base(flow))
            flow.response = http.Response.make(200, payload, {"content-type": "application/json", "x-kleis-request-id": ctx.request_id})
        else:
            raise Refusal(404, "the model catalog is not enabled", code="unknown_path")

    def _answer_token_estimate(self, flow: http.HTTPFlow, ctx: RequestContext) -> None:
        """count_tokens for a translated model: the upstream has no such endpoint, so Kleis estimates, and says so."""
        ctx.outcome.local = True
        body = {"input_tokens": estimate_tokens(ctx.client.body, len(ctx.client.raw_body))}
        flow.response = json_response(200, body, ctx.request_id)
        flow.response.headers["x-kleis-token-count"] = "estimate"

    def _answer_models(self, flow: http.HTTPFlow, ctx: RequestContext, key: KeyRecord) -> None:
        ctx.outcome.local = True
        services = self.services
        tables = services.routing_tables()
        listing = local.model_list(key, services.providers, tables.accounts, services.catalog.listing if services.catalog else None, tables)
        path = ctx.client.path
        body = local.one_model(listing, unquote(path[len("/v1/models/") :])) if path.startswith("/v1/models/") else listing
        flow.response = json_response(200, body, ctx.request_id)

    def _refuse(self, flow: http.HTTPFlow, ctx: RequestContext, refusal: Refusal) -> None:
        ctx.outcome.refused = True
        ctx.outcome.status = refusal.status
        ctx.outcome.error_type = refusal.code or f"kleis_{refusal.status}"
        flow.response = error_response(ctx.error_protocol, refusal, ctx.request_id)

    def in_flight(self) -> list[tuple[http.HTTPFlow, RequestContext]]:
        """Requests that have begun and not ended (addons.drain waits for them)."""
        return [(flow, ctx) for flow, ctx in list(self._contexts.items()) if not ctx.outcome.done]

    def finish(self, flow: http.HTTPFlow, ctx: RequestContext) -> None:
        """The request has ended: free what it held (again, if a hook still running took more after a first end) and
        record its usage, once."""
        first, ctx.outcome.done = not ctx.outcome.done, True
        services, client = self.services, ctx.client
        services.keepalive.stop(flow)
        vault.release(ctx.upstream.token_ref)
        upstream.drop_slot(ctx, services.load)
        if client.holds_key_slot and client.key is not None:
            client.holds_key_slot = False
            services.limits.release(client.key.id)
        if ctx.route.probe is not None and services.health is not None:
            services.health.probe_done(ctx.route.probe)
        if first and services.usage is not None and not ctx.outcome.local:
            try:
                row = services.usage.record(ctx, time.time())
                if row is not None and client.key is not None and services.budgets is not None:
                    services.budgets.observe(client.key, row)
            except Exception:
                log.exception("recording usage failed")
        upstream.drop_bodies_soon(ctx)
