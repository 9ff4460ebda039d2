"""An optional listener on 127.0.0.1:1455 that catches the browser's login callback when Kleis runs locally."""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from providers.codex.constants import CALLBACK_PATH, CALLBACK_PORT

PAGE = (
    b"<!doctype html><meta charset=utf-8><title>Kleis</title>"
    b"<p>Kleis received the ChatGPT sign-in. You can close this tab and return to the terminal.</p>"
)


class CallbackListener:
    """Serves GET /auth/callback once per sign-in and hands the full callback URL to `deliver`.

    It only ever sees the one-time authorization code and state, which are useless without the PKCE
    verifier Kleis holds. If the port is taken (e.g. by Codex CLI), `start()` returns False and the user
    pastes the address instead.
    """

    def __init__(self, deliver: Callable[[str], None], port: int = CALLBACK_PORT, host: str = "127.0.0.1") -> None:
        self.deliver = deliver
        self.host = host
        self.requested_port = port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> bool:
        listener = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                parts = urlsplit(self.path)
                query = parse_qs(parts.query)
                if parts.path != CALLBACK_PATH or not (query.get("code") or query.get("error")):
                    self.send_response(404)
                    self.send_header("content-length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("content-type", "text/html; charset=utf-8")
                self.send_header("content-length", str(len(PAGE)))
                self.end_headers()
                self.wfile.write(PAGE)
                listener.deliver(f"http://localhost:{listener.port}{self.path}")

        try:
            self._server = ThreadingHTTPServer((self.host, self.requested_port), Handler)
        except OSError:
            return False
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True, name="codex-callback"
        )
        self._thread.start()
        return True

    @property
    def port(self) -> int:
        return self._server.server_address[1] if self._server is not None else self.requested_port

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
