"""`kleis.py debug`: the Kleis addon under mitmweb, with nothing secret in what the UI shows.

Three layers:
1. Upstream tokens are never in a flow (engine.wire_secrets); the client's key is removed from the flow in
   `requestheaders`, and the Kleis addon runs before mitmweb's View, so the View never holds it.
2. Everything the web UI receives — REST answers (flows, bodies, exports, dumps) and websocket pushes — passes
   through the same redaction as the logs (core.redact), which masks anything shaped like a key or token.
3. The UI binds to 127.0.0.1 only, and answers only with the per-run token printed at start (mitmweb 11.0.2
   has no authentication of its own: any local user could otherwise read flows or load a script through its
   options API, which Kleis refuses altogether). The patches live in addons.compat, the rules in addons.debug_ui.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping

from mitmproxy.master import Master
from mitmproxy.options import Options
from mitmproxy.tools.web.master import WebMaster

from addons import compat
from addons.server import make_options, run_master
from addons.services import Parts
from core.config import Config
from providers.base import Provider
from store.db import Store


class DebugMaster(WebMaster):
    """mitmweb's master, knowing the per-run token its UI asks for."""

    def __init__(self, options: Options, ui_token: str) -> None:
        super().__init__(options, with_termlog=False)
        self.ui_token = ui_token


def insert_before_view(master: Master, addon: object) -> None:
    """Register `addon` and place it right before the View, so the UI sees flows after Kleis's hooks."""
    assert isinstance(master, WebMaster)
    master.addons.register(addon)
    chain = master.addons.chain
    position = next(i for i, a in enumerate(chain) if a is master.view)
    chain.insert(position, addon)


async def run_web(
    store: Store,
    config: Config,
    web_port: int,
    *,
    on_ready: Callable[[DebugMaster], None] | None = None,
    port: int | None = None,
    providers: Mapping[str, Provider] | None = None,
    parts: Parts | None = None,
) -> DebugMaster:
    token = secrets.token_urlsafe(24)
    compat.install_web(token)
    master = DebugMaster(make_options(config, config.host, config.port if port is None else port), token)
    master.options.update(web_host="127.0.0.1", web_port=web_port, web_open_browser=False)
    return await run_master(master, store, config, providers=providers, parts=parts, place=insert_before_view, on_ready=on_ready)
