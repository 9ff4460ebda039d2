"""The `kleis.py` command line: argparse subcommands, each in its own module."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import Any

from cli import accounts, doctor, keys, serve, usage
from cli.output import fail, install_escaping
from core.config import Config, settings_help
from core.exceptions import KleisError

COMMAND_MODULES = (serve, keys, accounts, usage, doctor)


class KleisArgumentParser(argparse.ArgumentParser):
    """Argparse with the help of each subcommand formatted the same way."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(*args, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    parser = KleisArgumentParser(
        prog="kleis.py",
        description="Kleis: one base URL for coding agents, backed by your Claude, Codex and Copilot subscription accounts.",
        epilog=settings_help(),
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=KleisArgumentParser)
    commands.required = True
    for module in COMMAND_MODULES:
        module.register(commands)
    secret = commands.add_parser("secret-key", help="print a new key for KLEIS_SECRET_KEY")
    secret.set_defaults(handler=_print_secret_key, needs_store=False)
    return parser


def _print_secret_key(args: argparse.Namespace, config: Config) -> int:
    from store.crypto import new_secret_key

    print(new_secret_key())
    return 0


def main(argv: Sequence[str] | None = None, *, start_admin: serve.AdminStarter | None = None) -> int:
    """Run one command. `start_admin` starts the admin page beside `serve` (kleis.py passes it: the CLI does not
    import the admin)."""
    install_escaping()  # client-chosen text (model names, provider messages) never drives the operator's terminal
    parser = build_parser()
    args = parser.parse_args(argv)
    args.start_admin = start_admin
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        from core.config import load_config

        config = load_config()
        return int(args.handler(args, config) or 0)
    except KleisError as exc:
        fail(str(exc))
        return 1
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return 130
