"""`kleis.py serve` and `kleis.py debug`: run the proxy (and the admin page)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import socket
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from cli.session import store_session
from core.config import Config
from core.exceptions import ConfigError
from core.redact import install_log_redaction

if TYPE_CHECKING:
    from addons.debug import DebugMaster
from store.db import Store, take_admin_secret_announcement


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = commands.add_parser("serve", help="run the proxy and the admin page")
    serve.set_defaults(handler=cmd_serve)
    debug = commands.add_parser("debug", help="run the proxy under mitmweb to inspect traffic (secrets redacted)")
    debug.add_argument("--web-port", type=int, default=8082, help="mitmweb UI port on 127.0.0.1 (default 8082)")
    debug.set_defaults(handler=cmd_debug)


def setup_logging(config: Config) -> None:
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(config.log_level)
    if config.log_level != "DEBUG":
        logging.getLogger("mitmproxy").setLevel(logging.WARNING)
        logging.getLogger("waitress").setLevel(logging.WARNING)
        logging.getLogger("httpx").setLevel(logging.WARNING)
    install_log_redaction()


def _announce(config: Config, store: Store, proxy_addr: tuple[str, int], admin_url: str | None, extra: str = "") -> None:
    if not config.admin_secret and take_admin_secret_announcement():
        # Whichever command created the file, the first start says what it is (once; an upgraded store whose
        # secret was shown long ago stays quiet, a deleted file's new secret is shown).
        print(f"admin secret (shown once; also in {config.data_dir / 'admin.secret'}): {store.admin_secret}", flush=True)
    admin = f", admin on {admin_url}" if admin_url else ""
    print(f"Kleis proxy on http://{proxy_addr[0]}:{proxy_addr[1]}{admin}{extra}", flush=True)


def check_listen(host: str, port: int, names: str) -> None:
    """Fail with one clear line before anything starts when the proxy's address cannot be bound (mitmproxy would
    exit from inside its event loop with a traceback)."""
    if port == 0:
        return
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise ConfigError(f"{names}: cannot listen on {host}:{port}: {exc.strerror}") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            raise ConfigError(f"{names}: cannot listen on {host}:{port}: {exc.strerror or exc}") from None


class RunningAdmin(Protocol):
    @property
    def url(self) -> str: ...

    def stop(self) -> None: ...


AdminStarter = Callable[[Store, Config], RunningAdmin]


def cmd_serve(args: argparse.Namespace, config: Config) -> int:
    from addons.server import bound_address, run_dump

    setup_logging(config)
    check_listen(config.host, config.port, "KLEIS_HOST/KLEIS_PORT")
    with store_session(config) as store:
        admin = args.start_admin(store, config) if getattr(args, "start_admin", None) else None
        try:
            url = admin.url if admin is not None else None
            asyncio.run(run_dump(store, config, on_ready=lambda master: _announce(config, store, bound_address(master), url)))
        finally:
            if admin is not None:
                admin.stop()
    return 0


def cmd_debug(args: argparse.Namespace, config: Config) -> int:
    from addons.debug import run_web
    from addons.server import bound_address

    setup_logging(config)
    check_listen(config.host, config.port, "KLEIS_HOST/KLEIS_PORT")
    check_listen("127.0.0.1", args.web_port, "--web-port")
    with store_session(config) as store:

        def ready(master: DebugMaster) -> None:
            web = f", mitmweb UI on http://127.0.0.1:{args.web_port}/?token={master.ui_token} (keys and tokens redacted)"
            _announce(config, store, bound_address(master), None, web)

        asyncio.run(run_web(store, config, args.web_port, on_ready=ready))
    return 0
