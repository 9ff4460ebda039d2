"""Serving the admin app with waitress (a real WSGI server) in a background thread."""

from __future__ import annotations

import logging
import threading

from flask import Flask
from waitress.server import create_server

from core.config import Config
from core.exceptions import ConfigError
from store.db import Store

log = logging.getLogger(__name__)

# waitress's defaults let ~100 idle or slow connections (no login needed) take the admin offline: it stops
# accepting at its connection limit (100) and closes an idle connection only after 120 s. Kleis allows 1000
# connections, closes one that has sent nothing for CHANNEL_TIMEOUT seconds (checked every CLEANUP_INTERVAL), and
# polls with poll() rather than select(), which cannot watch descriptors above 1023.
CONNECTION_LIMIT = 1000
CHANNEL_TIMEOUT = 30
CLEANUP_INTERVAL = 5


def start_admin(store: Store, config: Config) -> AdminServer:
    """The admin page on its own port, served in a thread beside the proxy (`kleis.py serve`)."""
    from admin import create_app

    return AdminServer(create_app(store, config), config.admin_host, config.admin_port, config.admin_trusted_proxy).start()


class AdminServer:
    def __init__(self, app: Flask, host: str, port: int, trusted_proxy: str = "", *, channel_timeout: int = CHANNEL_TIMEOUT) -> None:
        proxy_options = (
            {"trusted_proxy": trusted_proxy, "trusted_proxy_headers": {"x-forwarded-proto", "x-forwarded-for"}} if trusted_proxy else {}
        )
        try:
            self._server = create_server(
                app,
                host=host,
                port=port,
                threads=4,
                ident="kleis-admin",
                connection_limit=CONNECTION_LIMIT,
                channel_timeout=channel_timeout,
                cleanup_interval=min(CLEANUP_INTERVAL, channel_timeout),
                asyncore_use_poll=True,
                **proxy_options,
            )
        except (OSError, ValueError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise ConfigError(f"KLEIS_ADMIN_HOST/KLEIS_ADMIN_PORT: the admin cannot listen on {host}:{port}: {reason}") from None
        self._thread = threading.Thread(target=self._run, name="kleis-admin", daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.effective_port)

    @property
    def url(self) -> str:
        return f"http://{self._server.effective_host}:{self.port}"

    def _run(self) -> None:
        try:
            self._server.run()
        except OSError:  # closed during shutdown
            pass

    def start(self) -> AdminServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.close()
        self._thread.join(5)
