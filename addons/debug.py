"""`kleis.py debug`: the Kleis addon under mitmweb, with nothing secret in what the UI shows.

Three layers:
1. Upstream tokens are never in a flow (addons.wire_secrets); the client's key is removed from the flow in
   `requestheaders`, and the Kleis addon runs before mitmweb's View, so the View never holds it.
2. Everything the web UI receives — REST answers (flows, bodies, exports, dumps) and websocket pushes — passes
   through the same redaction as the logs (core.redact), which masks anything shaped like a key or token.
3. The UI binds to 127.0.0.1 only, and answers only with the per-run token printed at start (mitmweb 11.0.2
   has no authentication of its own: any local user could otherwise read flows or load a script through its
   options API, which Kleis refuses altogether).
"""

from __future__ import annotations

import asyncio
import logging
import hmac
import secrets
import signal
from collections.abc import Callable, Mapping

import tornado.escape
import tornado.web
from mitmproxy.tools.web import app as web_app
from mitmproxy.tools.web.master import WebMaster

from addons.server import build_addon, configure, default_parts, make_options
from core.config import Config
from providers.base import Provider
from core.redact import redact
from store.db import Store

log = logging.getLogger(__name__)

_original_write = web_app.RequestHandler.write
_original_send = web_app.WebSocketEventBroadcaster.send.__func__  # type: ignore[attr-defined]


def _redacted_bytes(data: bytes) -> bytes:
    text = data.decode("utf-8", "surrogateescape")
    cleaned = redact(text)
    return data if cleaned == text else cleaned.encode("utf-8", "surrogateescape")


def _write(self, chunk):  # type: ignore[no-untyped-def]
    if isinstance(chunk, (dict, list)):
        if isinstance(chunk, dict):
            self.set_header("Content-Type", "application/json; charset=UTF-8")
        chunk = tornado.escape.json_encode(chunk)
        if isinstance(chunk, str) and chunk.startswith("["):
            self.set_header("Content-Type", "application/json; charset=UTF-8")
    if isinstance(chunk, str):
        chunk = redact(chunk)
    elif isinstance(chunk, (bytes, bytearray)):
        chunk = _redacted_bytes(bytes(chunk))
    return _original_write(self, chunk)


def _send(cls, conn, message: bytes) -> None:  # type: ignore[no-untyped-def]
    return _original_send(cls, conn, _redacted_bytes(message))


def install_ui_redaction() -> None:
    web_app.RequestHandler.write = _write
    web_app.WebSocketEventBroadcaster.send = classmethod(_send)


TOKEN_COOKIE = "kleis_debug"
REFUSED_OPTIONS = frozenset({"scripts"})  # loading code through the UI is never allowed


def _guard(token: str):  # type: ignore[no-untyped-def]
    def prepare(self) -> None:  # type: ignore[no-untyped-def]
        given = self.get_query_argument("token", default=None)
        if given is not None and hmac.compare_digest(given.encode(), token.encode()):
            self.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="Strict")
            return
        cookie = self.get_cookie(TOKEN_COOKIE) or ""
        if not hmac.compare_digest(cookie.encode(), token.encode()):
            raise tornado.web.HTTPError(403, "open the UI with the URL printed by `kleis.py debug` (it carries the token)")

    return prepare


_original_options_put = web_app.Options.put


def _options_put(self) -> None:  # type: ignore[no-untyped-def]
    if REFUSED_OPTIONS & set(self.json):
        raise web_app.APIError(403, "Kleis's debug UI does not change these options: " + ", ".join(sorted(REFUSED_OPTIONS & set(self.json))))
    return _original_options_put(self)


REFUSED_COMMANDS = frozenset({"script.run", "options.load"})  # they load code or options from a file
_original_command_post = web_app.ExecuteCommand.post


def _command_post(self, cmd: str) -> None:  # type: ignore[no-untyped-def]
    try:
        args = self.json.get("arguments", []) if isinstance(self.json, dict) else []
    except web_app.APIError:
        args = []
    option = str(args[0]).split("=", 1)[0] if args else ""
    if cmd in REFUSED_COMMANDS or (cmd == "set" and option in REFUSED_OPTIONS):
        raise web_app.APIError(403, f"Kleis's debug UI does not run {cmd!r}" + (f" on {option!r}" if cmd == "set" else ""))
    return _original_command_post(self, cmd)


def install_ui_guard(token: str) -> None:
    """Every UI request (pages, REST API, websocket) needs the token, given once as ?token= and then a cookie;
    nothing in the UI loads code (the `scripts` option, script.run, options.load)."""
    web_app.RequestHandler.prepare = _guard(token)
    web_app.WebSocketEventBroadcaster.prepare = _guard(token)
    web_app.Options.put = _options_put
    web_app.ExecuteCommand.post = _command_post


def insert_before_view(master: WebMaster, addon: object) -> None:
    """Register `addon` and place it right before the View, so the UI sees flows after Kleis's hooks."""
    master.addons.register(addon)
    chain = master.addons.chain
    position = next(i for i, a in enumerate(chain) if a is master.view)
    chain.insert(position, addon)


async def run_web(
    store: Store,
    config: Config,
    web_port: int,
    *,
    on_ready: Callable[[WebMaster], None] | None = None,
    port: int | None = None,
    providers: Mapping[str, Provider] | None = None,
    parts: dict[str, object] | None = None,
) -> WebMaster:
    install_ui_redaction()
    token = secrets.token_urlsafe(24)
    install_ui_guard(token)
    options = make_options(config, config.host, config.port if port is None else port)
    master = WebMaster(options, with_termlog=False)
    master.kleis_ui_token = token  # type: ignore[attr-defined]
    configure(master, config)
    master.options.update(web_host="127.0.0.1", web_port=web_port, web_open_browser=False)
    from providers.registry import provider_map

    providers = providers if providers is not None else provider_map(config)
    parts = parts if parts is not None else default_parts(store, config, providers)
    insert_before_view(master, build_addon(store, config, providers, master=master, **parts))
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, master.shutdown)
        except (RuntimeError, ValueError):  # not the main thread (tests)
            break
    task = asyncio.ensure_future(master.run())
    while not master.addons.get("proxyserver").listen_addrs():
        if task.done():
            task.result()
            raise RuntimeError("mitmweb stopped before listening")
        await asyncio.sleep(0.01)
    if on_ready is not None:
        on_ready(master)
    await task
    return master

