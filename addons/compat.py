"""Every change Kleis makes to mitmproxy's own code (and to mitmweb's tornado handlers), in one place.

Written for mitmproxy 11.0.2 (the last release for Python 3.11): `check_version` refuses any other version
rather than patch functions whose shape may have changed. Each patch is installed once, by `install_proxy`
(every Kleis process) or `install_web` (`kleis.py debug` only):

- `mitmproxy.net.http.http1.assemble_request_head`: upstream token references swapped for the tokens in the
  bytes written to the upstream (engine.wire_secrets), and `_http1.Http1Client.send`, which tells that swap the
  address and upstream proxy of the connection the head is written on;
- `mitmproxy.proxy.layers.http._http1.make_error_response`: mitmproxy's own errors as JSON (addons.mitm_errors);
- mitmweb's `RequestHandler.write` and `WebSocketEventBroadcaster.send`: everything the UI receives is redacted;
- `RequestHandler.prepare` and `WebSocketEventBroadcaster.prepare`: the per-run token is required, and only the
  UI's harmless writes pass (addons.debug_ui);
- `Options.put` and `ExecuteCommand.post`: only allowlisted options and commands (addons.debug_ui).

It also holds every read of mitmproxy's connection internals (no public API writes to a client's connection,
cancels a connect in progress or lists the live connections): the functions under "connection internals", used by
addons.client_wire, addons.upstream_timeout and addons.drain, each held to mitmproxy's own classes by a contract
test in tests/addons/test_compat.py.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Generator
from typing import Any, Protocol

from mitmproxy import http, version
from mitmproxy.connection import Address, ConnectionState, Server
from mitmproxy.master import Master
from mitmproxy.net.http import http1
from mitmproxy.proxy import events
from mitmproxy.proxy.layers.http import _http1
from mitmproxy.proxy.layers.http._events import RequestHeaders
from mitmproxy.proxy.mode_servers import ServerInstance
from mitmproxy.proxy.server import ConnectionHandler

from addons import mitm_errors
from core.exceptions import KleisError
from core.redact import redact
from engine.wire_secrets import Peer, current_peer, vault

SUPPORTED_VERSION = "11.0.2"


class UnsupportedMitmproxy(KleisError):
    pass


@dataclasses.dataclass(frozen=True)
class Patch:
    owner: Any  # the module or class whose attribute is replaced
    name: str
    original: Any
    replacement: Any

    def install(self) -> None:
        setattr(self.owner, self.name, self.replacement)

    def installed(self) -> bool:
        return self.owner.__dict__.get(self.name) is self.replacement


def check_version(found: str = version.VERSION) -> None:
    if found != SUPPORTED_VERSION:
        raise UnsupportedMitmproxy(
            f"Kleis is written for mitmproxy {SUPPORTED_VERSION} and patches some of its functions; "
            f"mitmproxy {found} is installed: install the pinned requirements (`pip install -r requirements.txt`)"
        )


# -- the proxy ----------------------------------------------------------------------------------------
_original_assemble: Callable[[Any], bytes] = http1.assemble_request_head


def assemble_request_head(request: Any) -> bytes:
    return vault.substitute(_original_assemble(request))


_original_client_send: Callable[..., Generator[Any, Any, None]] = _http1.Http1Client.send


def client_send(self: Any, event: Any) -> Generator[Any, Any, None]:
    """Http1Client.send, with the connection's address and upstream proxy known while it assembles a request head
    (its first step); every later step and every value sent back passes through unchanged."""
    steps = _original_client_send(self, event)
    if not isinstance(event, RequestHeaders):
        yield from steps
        return
    marker = current_peer.set(Peer(self.conn.address, self.conn.via))
    try:
        command = next(steps)
    except StopIteration:
        return
    finally:
        current_peer.reset(marker)
    while True:
        received = yield command
        try:
            command = steps.send(received)
        except StopIteration:
            return


PROXY_PATCHES = (
    Patch(http1, "assemble_request_head", _original_assemble, assemble_request_head),
    Patch(_http1.Http1Client, "send", _original_client_send, client_send),
    Patch(_http1, "make_error_response", _http1.make_error_response, mitm_errors.make_json_error_response),
)


def install_proxy() -> None:
    check_version()
    for patch in PROXY_PATCHES:
        patch.install()


# -- connection internals ---------------------------------------------------------------------------------
# The proxyserver addon's `connections` (a client connection's id → its ConnectionHandler) and `servers` (the
# listeners); a handler's `client`, its `transports` (Connection → ConnectionIO: the connection's task, reader and
# writer) and `server_event`, as mitmproxy 11.0.2 has them.
class Writer(Protocol):
    """A connection's writer: asyncio's StreamWriter, or mitmproxy_rs's Stream for the modes it serves."""

    def write(self, data: bytes) -> None: ...

    def close(self) -> None: ...


def _proxyserver(master: Master) -> Any:
    return master.addons.get("proxyserver")


def connection_handlers(master: Master) -> list[ConnectionHandler]:
    """The handler of every live client connection."""
    return list(_proxyserver(master).connections.values())


def connection_handler(master: Master, flow: http.HTTPFlow) -> ConnectionHandler | None:
    """The handler of the client connection `flow` came on, while that connection is live."""
    found: ConnectionHandler | None = _proxyserver(master).connections.get(flow.client_conn.id)
    return found


def client_writer(handler: ConnectionHandler) -> Writer | None:
    """Where bytes to the handler's client go; None once that side is gone."""
    io = handler.transports.get(handler.client)
    return io.writer if io is not None else None


def server_connected(handler: ConnectionHandler, server: Server) -> bool:
    """The handler holds an open connection to `server` that can still be read."""
    return server in handler.transports and bool(server.state & ConnectionState.CAN_READ) and bool(server.timestamp_tcp_setup)


_fed: set[asyncio.Task[None]] = set()  # held until done: the loop keeps only a weak reference to a task


def feed_server(handler: ConnectionHandler, server: Server, data: bytes) -> asyncio.Task[None]:
    """Hand `data` to the handler as if `server` had sent it (a task on the running loop)."""
    task = asyncio.get_running_loop().create_task(handler.server_event(events.DataReceived(server, data)))
    _fed.add(task)
    task.add_done_callback(_fed.discard)
    return task


def cancel_connect(handler: ConnectionHandler, address: Address, reason: str) -> bool:
    """Cancel the handler's connection attempt to `address` still in progress; False when there is none."""
    for connection, io in list(handler.transports.items()):
        if isinstance(connection, Server) and connection.address == address and not connection.timestamp_tcp_setup and io.handler:
            io.handler.cancel(reason)
            return True
    return False


def listeners(master: Master) -> list[ServerInstance[Any]]:
    """The proxy's listeners (running or not)."""
    return list(_proxyserver(master).servers)


# -- mitmweb (debug only) -------------------------------------------------------------------------------
def _guarded_prepare(self: Any) -> None:
    """Every UI request: the per-run token (as a query argument once, then its cookie), then the allowlist."""
    import tornado.web
    from mitmproxy.tools.web import app as web_app

    from addons import debug_ui  # mitmweb's app, imported by `kleis.py debug` only

    given = self.get_query_argument("token", default=None)
    token = _web_token[0]
    if debug_ui.token_matches(given, token):
        self.set_cookie(debug_ui.TOKEN_COOKIE, token, httponly=True, samesite="Strict")
    elif not debug_ui.token_matches(self.get_cookie(debug_ui.TOKEN_COOKIE) or "", token):
        raise tornado.web.HTTPError(403, debug_ui.TOKEN_REQUIRED)
    why = debug_ui.refused_request(type(self), self.request.method)
    if why is not None:
        raise web_app.APIError(403, why)


def _web_patches() -> tuple[Patch, ...]:
    import tornado.escape
    from mitmproxy.tools.web import app as web_app

    from addons import debug_ui  # mitmweb's app, imported by `kleis.py debug` only

    handler, broadcaster = web_app.RequestHandler, web_app.WebSocketEventBroadcaster
    original_write, original_send = handler.write, broadcaster.__dict__["send"].__func__
    original_put: Callable[..., Any] = web_app.Options.put
    original_post: Callable[..., Any] = web_app.ExecuteCommand.post

    def write(self: Any, chunk: Any) -> Any:
        if isinstance(chunk, (dict, list)):
            if isinstance(chunk, dict):
                self.set_header("Content-Type", "application/json; charset=UTF-8")
            chunk = tornado.escape.json_encode(chunk)
            if isinstance(chunk, str) and chunk.startswith("["):
                self.set_header("Content-Type", "application/json; charset=UTF-8")
        if isinstance(chunk, str):
            chunk = redact(chunk)
        elif isinstance(chunk, (bytes, bytearray)):
            chunk = debug_ui.redacted_bytes(bytes(chunk))
        return original_write(self, chunk)

    def send(cls: Any, conn: Any, message: bytes) -> Any:
        return original_send(cls, conn, debug_ui.redacted_bytes(message))

    def options_put(self: Any) -> Any:
        refused = debug_ui.refused_options(self.json)
        if refused:
            raise web_app.APIError(403, "Kleis's debug UI does not change these options: " + ", ".join(refused))
        return original_put(self)

    def command_post(self: Any, cmd: str) -> Any:
        try:
            args = self.json.get("arguments", []) if isinstance(self.json, dict) else []
        except web_app.APIError:
            args = []
        why = debug_ui.refused_command(cmd, list(args))
        if why is not None:
            raise web_app.APIError(403, why)
        return original_post(self, cmd)

    return (
        Patch(handler, "write", original_write, write),
        Patch(broadcaster, "send", broadcaster.__dict__["send"], classmethod(send)),
        Patch(handler, "prepare", handler.prepare, _guarded_prepare),
        Patch(broadcaster, "prepare", broadcaster.__dict__.get("prepare", handler.prepare), _guarded_prepare),
        Patch(web_app.Options, "put", original_put, options_put),
        Patch(web_app.ExecuteCommand, "post", original_post, command_post),
    )


_web_token = [""]  # the token the UI guard asks for: this run's (a new run in the same process sets its own)
_web_installed: list[Patch] = []


def install_web(token: str) -> list[Patch]:
    """Guard mitmweb's UI with `token`; the patches are installed once per process."""
    check_version()
    _web_token[0] = token
    if not _web_installed:
        _web_installed.extend(_web_patches())
        for patch in _web_installed:
            patch.install()
    return _web_installed
