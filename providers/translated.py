"""A provider serving a model on a protocol it does not speak, by translation: the client's request is read into a
turn and written in the provider's protocol, the provider prepares it as native traffic (its identity, its body
rules, its accounts), and the answer is translated back event by event.

Directions: Anthropic Messages clients (Claude Code, the anthropic SDK) on Codex models, OpenAI Responses clients
(Codex CLI, the openai SDK) on Claude models, and Chat Completions clients on both; and, for a provider that serves
each model on some of its protocols only (Copilot's supported_endpoints), any client on a protocol the model has.
Each is a reader joined to a writer (providers.protocols). A native request never comes here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any
from typing import Protocol as Interface

import httpx

from core.protocol import Protocol
from core.sse import SSEEvent, SSEParser
from providers.base import ForwardRequest, Provider, Signal, Upstream
from providers.protocols import carry, chat, chat_stream, messages, messages_stream, responses, responses_stream
from providers.protocols import events as ev
from providers.protocols.turn import Turn, estimate_tokens
from providers.quota import QuotaReading
from providers.usage import UsageReader
from store.accounts import AccountView, TokenSet

# client protocol → (the protocol a provider must speak to be reached by translation, the providers that may)
DIRECTIONS: dict[Protocol, tuple[tuple[Protocol, frozenset[str]], ...]] = {
    Protocol.MESSAGES: ((Protocol.RESPONSES, frozenset({"codex"})),),
    Protocol.RESPONSES: ((Protocol.MESSAGES, frozenset({"claude"})),),
    Protocol.CHAT: ((Protocol.MESSAGES, frozenset({"claude"})), (Protocol.RESPONSES, frozenset({"codex"}))),
}
# A provider whose models each have some of its protocols only: the protocols a client's request may be translated
# into, in order of preference (the richer protocol first: Responses and Messages carry reasoning, Chat does not).
ENDPOINT_ORDER: dict[Protocol, tuple[Protocol, ...]] = {
    Protocol.MESSAGES: (Protocol.RESPONSES, Protocol.CHAT),
    Protocol.RESPONSES: (Protocol.MESSAGES, Protocol.CHAT),
    Protocol.CHAT: (Protocol.RESPONSES, Protocol.MESSAGES),
}
PATHS = {Protocol.MESSAGES: "/v1/messages", Protocol.RESPONSES: "/v1/responses", Protocol.CHAT: "/v1/chat/completions"}
ANTHROPIC_STATUS = {"rate_limit_error": 429, "overloaded_error": 529, "invalid_request_error": 400}
OPENAI_STATUS = {"rate_limit_exceeded": 429, "server_is_overloaded": 503}


def label(client: Protocol, upstream: Protocol) -> str:
    return f"{client.value}→{upstream.value}"


class Reader(Interface):
    def read(self, data: Any) -> list[ev.Event]: ...


class Writer(Interface):
    started: bool
    finished: bool

    def write(self, events: Any) -> bytes: ...


READ_REQUEST: dict[Protocol, Callable[[dict[str, Any]], Turn]] = {
    Protocol.MESSAGES: messages.read_request,
    Protocol.RESPONSES: responses.read_request,
    Protocol.CHAT: chat.read_request,
}
WRITE_REQUEST: dict[Protocol, Callable[..., dict[str, Any]]] = {  # (turn[, own]): own for Messages and Responses
    Protocol.MESSAGES: messages.write_request,
    Protocol.RESPONSES: responses.write_request,
    Protocol.CHAT: chat.write_request,
}
STREAM_READER: dict[Protocol, Callable[..., Reader]] = {  # ([sign]): sign for Messages and Responses
    Protocol.MESSAGES: messages_stream.StreamReader,
    Protocol.RESPONSES: responses_stream.StreamReader,
    Protocol.CHAT: chat_stream.StreamReader,
}


@dataclasses.dataclass
class TranslationState:
    """Per request: the inner provider's state, the turn as read, and the reader and writer of this answer."""

    inner: Any
    client_model: str
    input_estimate: int
    turn: Turn
    reader: Reader
    writer: Writer | None = None
    include_usage: bool = False  # a chat client asked for the usage chunk (stream_options.include_usage)


class TranslatedProvider(Provider):
    """`inner` (e.g. Codex) as seen by clients of `client` protocol (e.g. Messages), spoken to in `target` (by
    default the one DIRECTIONS names for it)."""

    def __init__(self, inner: Provider, client: Protocol, target: Protocol | None = None) -> None:
        super().__init__(inner.config)
        self.inner = inner
        self.client = client
        self.target = target or next(t for t, names in DIRECTIONS[client] if inner.name in names and t in inner.protocols)
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
        turn = READ_REQUEST[self.client](request.body)
        target_turn = dataclasses.replace(turn, model=request.model)
        if self.carries_reasoning(turn):  # then the target is Messages or Responses, whose writer and reader carry it
            body = WRITE_REQUEST[self.target](target_turn, carry.own_blobs(self.inner.name, request.account.id))
            reader = STREAM_READER[self.target](carry.signer(self.inner.name, request.account.id))
        else:
            body, reader = WRITE_REQUEST[self.target](target_turn), STREAM_READER[self.target]()
        inner = self.inner.prepare(
            dataclasses.replace(request, protocol=self.target, path=PATHS[self.target], body=body, stream=True, raw_body=b"", written=True)
        )
        state = TranslationState(
            inner.state,
            client_model=str(request.body.get("model") or request.model),
            input_estimate=estimate_tokens(request.body, request.body_size),
            turn=turn,
            reader=reader,
            include_usage=isinstance(request.body.get("stream_options"), dict)
            and request.body["stream_options"].get("include_usage") is True,
        )
        return dataclasses.replace(inner, state=state, aggregate=not request.stream)

    def carries_reasoning(self, turn: Turn) -> bool:
        """Whether the upstream's reasoning is carried to the client and back (providers.protocols.carry), for a
        client that asked for reasoning: a Messages client on a Responses upstream (Codex's encrypted reasoning in
        thinking signatures), a Responses client on a Messages upstream (Claude's thinking blocks in reasoning items)."""
        pair = (self.client, self.target)
        return (
            pair in ((Protocol.MESSAGES, Protocol.RESPONSES), (Protocol.RESPONSES, Protocol.MESSAGES)) and turn.reasoning_effort is not None
        )

    def _writer(self, state: TranslationState) -> Writer:
        if self.client is Protocol.MESSAGES:
            return messages_stream.StreamWriter(state.client_model, state.input_estimate)
        if self.client is Protocol.CHAT:
            return chat_stream.StreamWriter(state.client_model, state.include_usage)
        custom = frozenset(tool.name for tool in state.turn.tools if tool.kind == "custom")
        return responses_stream.StreamWriter(state.client_model, custom)

    def _inner_upstream(self, upstream: Upstream) -> Upstream:
        state = upstream.state
        return dataclasses.replace(upstream, state=state.inner if isinstance(state, TranslationState) else state)

    # -- response side ------------------------------------------------------------------
    def stream_transformer(self, upstream: Upstream, protocol: Protocol) -> Callable[[SSEEvent], bytes | None] | None:
        state = upstream.state
        assert isinstance(state, TranslationState)
        translate = self._translator(upstream, state)
        writer = state.writer = self._writer(state)

        def transform(event: SSEEvent) -> bytes:
            return writer.write(translate(event))

        return transform

    def _translator(self, upstream: Upstream, state: TranslationState) -> Callable[[SSEEvent], list[ev.Event]]:
        """Each upstream event through the inner provider's own rewrite (Claude restores its tool names there), then
        the reader."""
        inner = self.inner.stream_transformer(self._inner_upstream(upstream), self.target)

        def translate(event: SSEEvent) -> list[ev.Event]:
            rewritten = inner(event) if inner is not None else None
            found = [event] if rewritten is None else SSEParser().feed(rewritten) if rewritten else []
            out: list[ev.Event] = []
            for one in found:
                data = one.json()
                if isinstance(data, dict):
                    out += state.reader.read(data)
                elif one.data is not None and one.data.strip() == "[DONE]":  # Chat's end marker
                    out += state.reader.read("[DONE]")
            return out

        return translate

    def aggregate(self, upstream: Upstream, events: list[SSEEvent]) -> tuple[int, Any]:
        state = upstream.state
        assert isinstance(state, TranslationState)
        translate = self._translator(upstream, state)
        neutral = [event for raw in events for event in translate(raw)]
        error = next((event for event in neutral if isinstance(event, ev.Error)), None)
        if self.client is Protocol.MESSAGES:
            if error is not None:
                return ANTHROPIC_STATUS.get(error.kind, 502), {"type": "error", "error": {"type": error.kind, "message": error.message}}
            collector = messages_stream.Collector(state.client_model)
            collector.add(neutral)
            return 200, collector.message()
        if self.client is Protocol.CHAT:
            chat_writer = chat_stream.StreamWriter(state.client_model)
            chat_writer.write(neutral)
            if chat_writer.error is not None:
                return OPENAI_STATUS.get(str(chat_writer.error.get("code")), 502), {"error": chat_writer.error}
            return 200, chat_writer.completion()
        writer = self._writer(state)
        assert isinstance(writer, responses_stream.StreamWriter)
        writer.write(neutral)
        final = writer.final or {}
        failure = final.get("error") if isinstance(final.get("error"), dict) else None
        if failure is not None:
            code = str(failure.get("code") or "server_error")
            status = OPENAI_STATUS.get(code, 502)
            return status, {"error": {"message": failure.get("message"), "type": "server_error", "param": None, "code": code}}
        return 200, final

    def stream_cut(self, upstream: Upstream) -> bytes:
        """The client protocol's last words for a stream the upstream cut before its end (an `error` event), or b""
        when the translated stream already ended or never began."""
        state = upstream.state
        writer = state.writer if isinstance(state, TranslationState) else None
        if writer is None or writer.finished or not writer.started:
            return b""
        return writer.write([ev.Error("api_error", "the upstream stream ended before its end; the answer is incomplete")])

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
    for client, options in DIRECTIONS.items():
        for target, names in options:
            for name, provider in providers.items():
                if name in names and target in provider.protocols and client not in provider.protocols:
                    found[(client, name)] = TranslatedProvider(provider, client)
    return found


def endpoint_translations(providers: Mapping[str, Provider]) -> dict[tuple[Protocol, Protocol, str], TranslatedProvider]:
    """(client protocol, target protocol, provider name) → the provider reached by translation, for providers whose
    models each have some of their protocols only (Copilot)."""
    found = {}
    for name, provider in providers.items():
        if not provider.endpoints_by_model:
            continue
        for client in provider.protocols:
            for target in ENDPOINT_ORDER[client]:
                if target in provider.protocols:
                    found[(client, target, name)] = TranslatedProvider(provider, client, target)
    return found


def by_endpoint(
    provider: Provider, model: str, client: Protocol, table: Mapping[tuple[Protocol, Protocol, str], Provider]
) -> Provider | None:
    """The translated provider for a model its provider does not serve on the client's protocol but on another
    (ENDPOINT_ORDER); None when it serves it natively, when its endpoints are unknown, or when none is reachable."""
    served = provider.model_protocols(model)
    if served is None or client in served:
        return None
    return next(
        (table[(client, t, provider.name)] for t in ENDPOINT_ORDER[client] if t in served and (client, t, provider.name) in table), None
    )
