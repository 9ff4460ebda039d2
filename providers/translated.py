"""A provider serving a model on a protocol it does not speak, by translation: the client's request is read into a
turn and written in the provider's protocol, the provider prepares it as native traffic (its identity, its body
rules, its accounts), and the answer is translated back event by event.

Today one direction: Anthropic Messages clients (Claude Code, the anthropic SDK) on Codex models — the Messages
reader and the Responses writer, the Responses stream reader and the Messages stream writer. A native request never
comes here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from core.protocol import Protocol
from core.sse import SSEEvent
from providers.base import ForwardRequest, Provider, Signal, Upstream
from providers.protocols import messages, responses
from providers.protocols.events import Error
from providers.quota import QuotaReading
from providers.usage import UsageReader
from store.accounts import AccountView, TokenSet

# client protocol → (the protocol a provider must speak to be reached by translation, the providers that may)
DIRECTIONS: dict[Protocol, tuple[Protocol, frozenset[str]]] = {Protocol.MESSAGES: (Protocol.RESPONSES, frozenset({"codex"}))}
ERROR_STATUS = {"rate_limit_error": 429, "overloaded_error": 529, "invalid_request_error": 400}


def label(client: Protocol, upstream: Protocol) -> str:
    return f"{client.value}→{upstream.value}"


@dataclasses.dataclass
class TranslationState:
    """Per request: the inner provider's state, and the reader and writer of this answer."""

    inner: Any
    client_model: str
    input_estimate: int
    reader: responses.StreamReader = dataclasses.field(default_factory=responses.StreamReader)
    writer: messages.StreamWriter | None = None


class TranslatedProvider(Provider):
    """`inner` (e.g. Codex) as seen by clients of `client` protocol (e.g. Messages)."""

    def __init__(self, inner: Provider, client: Protocol) -> None:
        super().__init__(inner.config)
        self.inner = inner
        self.client = client
        self.target = DIRECTIONS[client][0]
        self.name = inner.name
        self.display_name = inner.display_name
        self.protocols = frozenset({client})
        self.terms_warning = inner.terms_warning
        self.login = inner.login
        self.learned = inner.learned
        self.translation = label(client, self.target)

    @property
    def login_hint(self) -> str:
        return self.inner.login_hint

    # -- request side -------------------------------------------------------------------
    def prepare(self, request: ForwardRequest) -> Upstream:
        turn = messages.read_request(request.body)
        body = responses.write_request(dataclasses.replace(turn, model=request.model))
        inner = self.inner.prepare(dataclasses.replace(request, protocol=self.target, path="/v1/responses", body=body, stream=True))
        state = TranslationState(
            inner.state,
            client_model=str(request.body.get("model") or request.model),
            input_estimate=responses.estimate_tokens(request.body),
        )
        return dataclasses.replace(inner, state=state, aggregate=not request.stream)

    def _inner_upstream(self, upstream: Upstream) -> Upstream:
        state = upstream.state
        return dataclasses.replace(upstream, state=state.inner if isinstance(state, TranslationState) else state)

    # -- response side ------------------------------------------------------------------
    def stream_transformer(self, upstream: Upstream, protocol: Protocol) -> Callable[[SSEEvent], bytes | None] | None:
        state = upstream.state
        assert isinstance(state, TranslationState)
        inner = self.inner.stream_transformer(self._inner_upstream(upstream), self.target)  # its bookkeeping (errors seen)
        writer = state.writer = messages.StreamWriter(state.client_model, state.input_estimate)

        def transform(event: SSEEvent) -> bytes:
            if inner is not None:
                inner(event)
            data = event.json()
            return writer.write(state.reader.read(data)) if isinstance(data, dict) else b""

        return transform

    def aggregate(self, upstream: Upstream, events: list[SSEEvent]) -> tuple[int, Any]:
        state = upstream.state
        assert isinstance(state, TranslationState)
        collector = messages.Collector(state.client_model)
        inner = self.inner.stream_transformer(self._inner_upstream(upstream), self.target)  # its bookkeeping (errors seen)
        for event in events:
            if inner is not None:
                inner(event)
            data = event.json()
            if isinstance(data, dict):
                collector.add(state.reader.read(data))
        if collector.error is not None:
            return self._error(collector.error)
        return 200, collector.message()

    @staticmethod
    def _error(error: Error) -> tuple[int, Any]:
        status = ERROR_STATUS.get(error.kind, 502)
        return status, {"type": "error", "error": {"type": error.kind, "message": error.message}}

    def stream_cut(self, upstream: Upstream) -> bytes:
        """The client protocol's last words for a stream the upstream cut before its end (an `error` event), or b""
        when the translated stream already ended or never began."""
        state = upstream.state
        writer = state.writer if isinstance(state, TranslationState) else None
        if writer is None or writer.finished or not writer.started:
            return b""
        return writer.write([Error("api_error", "the upstream stream ended before its end; the answer is incomplete")])

    def stream_outcome(self, upstream: Upstream) -> tuple[str, Signal | None]:
        return self.inner.stream_outcome(self._inner_upstream(upstream))

    def usage_reader(self, protocol: Protocol) -> UsageReader:
        return self.inner.usage_reader(self.target)  # it reads the upstream's own events

    def classify(self, status: int, headers: Mapping[str, str], body: Any) -> Signal:
        return self.inner.classify(status, headers, body)

    def after_error(self, upstream: Upstream, signal: Signal, body: Any) -> Signal:
        return self.inner.after_error(self._inner_upstream(upstream), signal, body)

    def on_success(self, upstream: Upstream) -> None:
        self.inner.on_success(self._inner_upstream(upstream))

    def read_quota(self, headers: Mapping[str, str], now: float) -> QuotaReading | None:
        return self.inner.read_quota(headers, now)

    # -- credentials: the inner provider's ------------------------------------------------
    def needs_refresh(self, account: AccountView, now: float | None = None) -> bool:
        return self.inner.needs_refresh(account, now)

    def valid_until(self, account: AccountView) -> float | None:
        return self.inner.valid_until(account)

    async def refresh(self, account: AccountView, http: httpx.AsyncClient) -> TokenSet:
        return await self.inner.refresh(account, http)


def translations(providers: Mapping[str, Provider]) -> dict[tuple[Protocol, str], TranslatedProvider]:
    """Every (client protocol, provider name) pair that translation can serve, built once per process."""
    found = {}
    for client, (target, names) in DIRECTIONS.items():
        for name, provider in providers.items():
            if name in names and target in provider.protocols and client not in provider.protocols:
                found[(client, name)] = TranslatedProvider(provider, client)
    return found
