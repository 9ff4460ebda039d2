"""`kleis.py accounts login copilot` and `accounts import copilot`: the device flow and token imports on the command line."""

from __future__ import annotations

import argparse
import getpass
import sys
import textwrap
import time
from collections.abc import Callable

from cli.output import number_option, print_json
from cli.session import store_session
from core.config import Config
from core.exceptions import InvalidInput, KleisError
from providers import oauth
from providers.copilot import login
from store.db import Store

LOGIN_COMMAND = "python kleis.py accounts login copilot"


_seconds = number_option(float, "a number of seconds", above=0)


def register_login(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "copilot",
        help="log in to GitHub Copilot with GitHub's device flow",
        description="Prints a code to enter at GitHub's device page, then waits until it is entered.\n\n"
        + textwrap.fill(login.TERMS_WARNING, 90),
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--no-wait", action="store_true", help="print the code as JSON and exit; finish with --poll FLOW_ID")
    mode.add_argument("--poll", metavar="FLOW_ID", help="finish a login started with --no-wait (waits until the code is entered)")
    parser.add_argument(
        "--timeout", type=_seconds, metavar="SECONDS", help="give up after this many seconds (default: when the code expires)"
    )
    parser.set_defaults(handler=cmd_login)


def register_import(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "copilot",
        help="import a GitHub token for Copilot (Copilot apps.json/hosts.json, OpenCode auth.json, or the token)",
        description="Without a flag, asks for the token on a terminal.\n\n" + textwrap.fill(login.TERMS_WARNING, 90),
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--file",
        metavar="PATH",
        help="Copilot's ~/.config/github-copilot/apps.json or hosts.json, or OpenCode's ~/.local/share/opencode/auth.json",
    )
    source.add_argument("--github-token", metavar="TOKEN", help="a GitHub OAuth token (gho_…/ghu_…); '-' reads it from stdin")
    parser.set_defaults(handler=cmd_import)


def cmd_login(args: argparse.Namespace, config: Config) -> int:
    with store_session(config) as store:
        if args.poll:
            flow_id = args.poll
        else:
            start = login.start_login(store, config)
            if args.no_wait:
                print_json({**start.to_dict(), "poll_command": f"{LOGIN_COMMAND} --poll {start.flow_id}"})
                return 0
            print(f"warning: {start.warning}", file=sys.stderr)
            print(f"Open {start.verification_uri} and enter the code {start.user_code}", flush=True)
            flow_id = start.flow_id
        result = wait_for_login(store, config, flow_id, args.timeout)
        print(result.message)
        return 0


def wait_for_login(
    store: Store,
    config: Config,
    flow_id: str,
    timeout: float | None,
    *,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.time,
) -> oauth.LoginResult:
    """Poll until GitHub says the code was entered, at the pace GitHub sets; the login's expiry ends it too."""
    deadline = None if timeout is None else clock() + timeout
    while True:
        result = login.complete_login(store, config, flow_id, {})
        if result.status == "done":
            return result
        wait = max(0.05, result.interval or 1.0)
        if deadline is not None and clock() + wait > deadline:
            raise KleisError(
                f"the Copilot login was not finished within {timeout:g}s; "
                f"`{LOGIN_COMMAND} --poll {flow_id}` keeps waiting for the same code, or start a new login"
            )
        sleep(wait)


def _token_from_args(args: argparse.Namespace) -> str | None:
    token = args.github_token
    if token == "-":
        token = sys.stdin.readline().strip()
        if not token:
            raise InvalidInput("--github-token -: nothing was read from stdin")
    if args.file or token:
        return str(token) if token else None
    if not sys.stdin.isatty():
        raise InvalidInput("importing a Copilot account without a terminal needs --file PATH or --github-token TOKEN")
    return getpass.getpass("GitHub token for Copilot (input hidden): ").strip() or None


def cmd_import(args: argparse.Namespace, config: Config) -> int:
    token = _token_from_args(args)
    with store_session(config) as store:
        print(f"warning: {login.TERMS_WARNING}", file=sys.stderr)
        result = login.import_credentials(store, config, path=args.file, github_token=token)
        print(result.message)
        return 0
