"""The interface every provider implements, and the data that crosses it."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from core.config import Config
from core.enums import SignalKind
from core.protocol import Protocol
from core.sse import SSEEvent
from providers.drift import Drift
from providers.identity import Identity
from providers.learned import LearnedValues
from providers.quota import QuotaReading
from providers.usage import UsageReader, reader_for
from store.accounts import AccountView, TokenSet


@dataclasses.dataclass
class ForwardRequest:
    """A client request, parsed, with the account chosen to serve it."""

    protocol: Protocol
    path: str  # the client's path without query, e.g. /v1/messages
    query: str
    headers: Mapping[str, str]  # client headers, Kleis key already removed
    body: dict[str, Any]
    model: str  # as sent upstream (provider prefix removed)
    account: AccountView
    token_ref: str  # stands for the access token; swapped for it on the wire (engine.wire_secrets)
    stream: bool  # the client asked for a stream
    body_size: int = 0  # the client's body in bytes, as received (0: unknown)
    raw_body: bytes = b""  # the client's body as received (decoded), for a provider that changes nothing in it
    carried: bool | None = None  # raw_body holds reasoning Kleis carried (providers.protocols.carry); None: not looked
    written: bool = False  # Kleis's protocol writer wrote `body` (a translated request), not the client


@dataclasses.dataclass
class Upstream:
    """What `prepare` decided: where and how the request goes, and state for the response side."""

    url: str
    headers: dict[str, str]
    body: dict[str, Any]
    drop_headers: tuple[str, ...] = ()
    state: Any = None  # provider's per-request state (e.g. a tool-name map)
    aggregate: bool = False  # upstream streams but the client wants one JSON body
    raw_body: bytes = b""  # set when `body` is unchanged from the client's: these bytes go upstream, not re-encoded


@dataclasses.dataclass(frozen=True)
class Signal:
    """What an upstream error says about the account that served it."""

    kind: SignalKind
    label: str = ""  # short human reason, for the account's status and the usage record
    reset_at: float | None = None  # when a rate limit ends, if the provider said
    account_wide: bool = True  # False: the problem is this request's (do not cool the account)
    drift: Drift | None = None  # the refusal is about what Kleis presents, or the lane a provider bills it to
    account_note: Mapping[str, Any] | None = None  # facts to record in the account's metadata (e.g. its billing lane)


# Headers never forwarded upstream: the client's credentials and hop-by-hop headers.
CLIENT_CREDENTIAL_HEADERS = ("authorization", "x-api-key", "api-key", "proxy-authorization", "cookie")


class Provider:
    """Base class: subclasses set the class attributes and override what their protocol needs.

    Besides the request/response hooks below, a provider class names its `login` module:
    `start_login(store, config, **options) -> LoginStart`,
    `complete_login(store, config, flow_id, answer: dict) -> LoginResult`,
    `import_credentials(store, config, path=None, **options) -> LoginResult` (providers.oauth).
    The CLI (cli.logins) and the admin call only these, so a login behaves the same wherever it starts.
    """

    name: str = ""
    display_name: str = ""
    protocols: frozenset[Protocol] = frozenset()
    endpoints_by_model = False  # True: each model has some of `protocols` only (model_protocols says which)
    default_models: tuple[str, ...] = ()
    terms_warning: str | None = None
    login: Any = None
    quota_on_refresh = False  # True: the quota is read after each token renewal (fetch_quota), not from answers

    def __init__(self, config: Config) -> None:
        self.config = config
        self.learned = LearnedValues()  # replaced by the proxy's shared, stored values (attach_learned)
        self._identity: tuple[int, Identity] | None = None

    def attach_learned(self, learned: LearnedValues) -> None:
        self.learned = learned
        self._identity = None

    def identity(self) -> Identity:
        """What Kleis presents to this provider and where each value comes from (`kleis.py doctor` prints it); the
        request path reads it too, so it is rebuilt only when the learned values change."""
        if self._identity is None or self._identity[0] != self.learned.generation:
            self._identity = (self.learned.generation, self.build_identity())
        return self._identity[1]

    def build_identity(self) -> Identity:
        return Identity(self.name, ())

    @property
    def login_hint(self) -> str:
        return f"add one with `python kleis.py accounts login {self.name}` or in the admin page"

    # -- request side -------------------------------------------------------------
    def model_protocols(self, model: str) -> frozenset[Protocol] | None:
        """The protocols this provider serves `model` on, when that depends on the model and is known; None: all."""
        return None

    def may_forward_unchanged(self, headers: Mapping[str, str]) -> bool:
        """Whether `forwards_unchanged` can hold for a client sending `headers`, before the body is read: when no
        provider's can, the body is read whole at once, not in part and then again."""
        return False

    def forwards_unchanged(self, headers: Mapping[str, str], head: Mapping[str, Any], model: str) -> bool:
        """Whether `prepare` sends the client's bytes as they are (Upstream.raw_body), judged from the headers, the
        body's small members (no `messages`, `input` or `tools`) and the model to send: then the body's bulk is
        never read."""
        return False

    def prepare(self, request: ForwardRequest) -> Upstream:
        raise NotImplementedError

    # -- response side ------------------------------------------------------------
    def rewrite_response(self, upstream: Upstream, protocol: Protocol, status: int, body: Any) -> Any | None:
        """A non-streamed JSON body rewritten for the client, or None to send the upstream's bytes unchanged."""
        return None

    def stream_transformer(self, upstream: Upstream, protocol: Protocol) -> Callable[[SSEEvent], bytes | None] | None:
        """Per event: new bytes, or None to pass the event through byte for byte. None: no rewrite."""
        return None

    def stream_outcome(self, upstream: Upstream) -> tuple[str, Signal | None]:
        """After a stream ends: an error label for the usage record and a health signal, when the stream
        carried an error inside a 200 answer (default: nothing to report)."""
        return "", None

    def aggregate(self, upstream: Upstream, events: list[SSEEvent]) -> tuple[int, Any]:
        """One JSON body from a whole upstream stream (for `Upstream.aggregate`)."""
        raise NotImplementedError

    def usage_reader(self, protocol: Protocol) -> UsageReader:
        return reader_for(protocol)

    def classify(self, status: int, headers: Mapping[str, str], body: Any) -> Signal:
        """What an upstream status says about the account (default: by status alone)."""
        return classify_by_status(status, headers)

    def after_error(self, upstream: Upstream, signal: Signal, body: Any) -> Signal:
        """The signal completed with what this request presented (a drift hint naming the value sent), from the error
        `body`; a provider may adopt a value the refusal named here, and ask for one more attempt (`Drift.retry`)."""
        return signal

    def on_success(self, upstream: Upstream) -> None:
        """The provider accepted the request: what it carried may be learned (a real client's version)."""

    # -- credentials ----------------------------------------------------------------
    def needs_refresh(self, account: AccountView, now: float | None = None) -> bool:
        now = time.time() if now is None else now
        return account.expires_at is not None and account.expires_at - now <= self.config.refresh_skew

    def valid_until(self, account: AccountView) -> float | None:
        """Until when a request may use the account's token without waiting for its refresh (None: no end known)."""
        return account.expires_at

    async def refresh(self, account: AccountView, http: httpx.AsyncClient) -> TokenSet:
        raise NotImplementedError

    # -- subscription quota (providers.quota) -----------------------------------------------
    def read_quota(self, headers: Mapping[str, str], now: float) -> QuotaReading | None:
        """The quota an answer's headers carry, read on every answer; None: it carries none. `headers` looks names up
        case-insensitively (mitmproxy's Headers, or a dict of lower-case names)."""
        return None

    async def fetch_quota(self, account: AccountView, http: httpx.AsyncClient) -> QuotaReading | None:
        """The quota read after a token renewal, for providers that do not report it on their answers (Copilot)."""
        return None

    async def list_models(self, account: AccountView, http: httpx.AsyncClient) -> list[dict[str, Any]] | None:
        """Models the provider itself lists for this account (None: it has no such list; use the registry)."""
        return None


def retry_after_seconds(headers: Mapping[str, str], now: float | None = None) -> float | None:
    value = headers.get("retry-after") or headers.get("retry-after-ms")
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - (time.time() if now is None else now))
        except (TypeError, ValueError):
            return None
    return seconds / 1000 if "retry-after-ms" in headers and "retry-after" not in headers else seconds


# 5xx answers about the request, not the server: 501 Not Implemented (an unknown method), 505 HTTP Version Not
# Supported. Like a 4xx, they never cool an account.
CLIENT_CAUSED_5XX = frozenset({501, 505})


def classify_by_status(status: int, headers: Mapping[str, str]) -> Signal:
    if status < 400:
        return Signal(SignalKind.OK)
    if status == 401:
        return Signal(SignalKind.AUTH, "upstream rejected the access token (401)")
    if status == 429:
        wait = retry_after_seconds(headers)
        return Signal(SignalKind.RATE_LIMIT, "rate limited (429)", reset_at=time.time() + wait if wait is not None else None)
    if status == 529:
        return Signal(SignalKind.OVERLOADED, "provider overloaded (529)")
    if status in CLIENT_CAUSED_5XX:
        return Signal(SignalKind.REQUEST, f"request not supported by the provider ({status})", account_wide=False)
    if status >= 500:
        return Signal(SignalKind.SERVER, f"provider error ({status})")
    return Signal(SignalKind.REQUEST, f"request rejected ({status})", account_wide=False)
