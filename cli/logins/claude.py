"""`kleis.py accounts login claude` and `kleis.py accounts import claude`."""

from __future__ import annotations

import argparse
import sys

from cli.session import store_session
from core.config import Config
from core.exceptions import InvalidInput
from providers import oauth
from providers.claude import login
from providers.claude.login import TERMS_WARNING
from store.db import Store

NOT_A_TERMINAL = (
    "stdin is not a terminal, so Kleis cannot read the pasted code: open the URL above, approve, then run "
    f"`python kleis.py accounts login claude --code-input 'CODE#STATE'` within {oauth.LOGIN_TTL // 60} minutes"
)


def register_login(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "claude",
        help="log in to a Claude Pro/Max account (open a URL, paste the code)",
        description=f"Log in to a Claude Pro/Max account with OAuth.\n\nWarning: {TERMS_WARNING}",
    )
    parser.add_argument(
        "--code-input",
        metavar="VALUE",
        help="finish a login started before, non-interactively: the code#state the Claude page showed "
        "(or the callback URL, or code=…&state=…)",
    )
    parser.set_defaults(handler=cmd_login)


def register_import(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "claude",
        help="import a Claude login from Claude Code's .credentials.json or OpenCode's auth.json",
        description=f"Import a Claude OAuth login from another tool's credentials file.\n\nWarning: {TERMS_WARNING}",
    )
    parser.add_argument(
        "--file",
        required=True,
        metavar="PATH",
        help="~/.claude/.credentials.json (Claude Code) or ~/.local/share/opencode/auth.json (OpenCode)",
    )
    parser.set_defaults(handler=cmd_import)


def warn() -> None:
    print(f"warning: {TERMS_WARNING}", file=sys.stderr, flush=True)


def cmd_login(args: argparse.Namespace, config: Config) -> int:
    warn()
    with store_session(config) as store:
        if args.code_input is not None:
            result = finish_pasted(store, config, args.code_input)
        else:
            start = login.start_login(store, config)
            print("Open this URL in a browser, sign in and approve:\n")
            print(f"  {start.authorize_url}\n")
            print(start.instructions, flush=True)
            if not sys.stdin.isatty():
                raise InvalidInput(NOT_A_TERMINAL)
            result = login.complete_login(store, config, start.flow_id, {"answer": read_pasted()})
        print(result.message)
    return 0


def finish_pasted(store: Store, config: Config, value: str) -> oauth.LoginResult:
    """Complete the login the pasted state names, or the only one in progress when a bare code was pasted."""
    _, state = oauth.parse_pasted(value)
    flow_id = state or oauth.login_for_bare_code(login.PROVIDER)
    if flow_id is None:
        raise InvalidInput("no Claude login is waiting for a code: run `python kleis.py accounts login claude` first")
    return login.complete_login(store, config, flow_id, {"answer": value})


def read_pasted() -> str:
    sys.stderr.write("Paste the code (code#state): ")
    sys.stderr.flush()
    line = sys.stdin.readline()
    if not line.strip():
        raise InvalidInput("no code was pasted; run the login again")
    return line.strip()


def cmd_import(args: argparse.Namespace, config: Config) -> int:
    warn()
    with store_session(config) as store:
        result = login.import_credentials(store, config, args.file)
        print(result.message)
    return 0
