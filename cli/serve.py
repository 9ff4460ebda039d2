"""`kleis.py serve` and `kleis.py debug`: run the proxy (and the admin page)."""

from __future__ import annotations

import argparse

from core.config import Config
from store.db import open_store


def register(commands: argparse._SubParsersAction) -> None:
    serve = commands.add_parser("serve", help="run the proxy and the admin page")
    serve.set_defaults(handler=cmd_serve)
    debug = commands.add_parser("debug", help="run the proxy under mitmweb to inspect traffic (secrets redacted)")
    debug.add_argument("--web-port", type=int, default=8082, help="mitmweb UI port on 127.0.0.1 (default 8082)")
    debug.set_defaults(handler=cmd_debug)


def cmd_serve(args: argparse.Namespace, config: Config) -> int:
    store = open_store(config)
    if store.admin_secret_created:
        print(f"admin secret (shown once, also in {config.data_dir / 'admin.secret'}): {store.admin_secret}")
    print("the proxy is not available yet; the store is ready at", config.effective_database_url)
    store.close()
    return 0


def cmd_debug(args: argparse.Namespace, config: Config) -> int:
    print("debug mode is not available yet")
    return 0
