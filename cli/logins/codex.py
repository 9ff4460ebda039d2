"""`kleis.py accounts login codex` (browser paste, --callback-url, --device) and `accounts import codex --file`."""

from __future__ import annotations

import argparse
import queue
import sys
import threading
import time
from collections.abc import Callable

from cli.logins.codex_callback import CallbackListener
from cli.output import number_option
from cli.session import store_session
from core.config import Config
from core.exceptions import InvalidInput
from providers.codex import login
from providers.codex.constants import PROVIDER
from providers.oauth import LoginResult, LoginStart, check_state, drop_state, login_for_bare_code, parse_pasted
from store.db import Store

DEFAULT_TIMEOUT = 900.0
NOT_INTERACTIVE = (
    "--callback-url is required when not run interactively: open the URL above, sign in, then run "
    "`python kleis.py accounts login codex --callback-url '<address the browser landed on>'` (or use --device)"
)


_seconds = number_option(float, "a number of seconds", above=0, high=86400, unit=" seconds")


def register_login(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "codex",
        help="log in to a ChatGPT account for Codex (browser, or --device on a headless host)",
        description=(
            "Browser login: open the printed URL, sign in, then paste the address of the localhost:1455 page the "
            "browser lands on (or pass it with --callback-url). --device: enter a code at auth.openai.com/codex/device instead."
        ),
    )
    parser.add_argument("--callback-url", metavar="VALUE", help="the address the browser landed on; completes the login it belongs to")
    parser.add_argument("--device", action="store_true", help="headless login: approve a user code on any device")
    parser.add_argument(
        "--timeout",
        type=_seconds,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help=f"give up after this long (default {DEFAULT_TIMEOUT:g})",
    )
    parser.add_argument("--label", default="", help="a name for the account in listings")
    parser.add_argument("--no-listen", action="store_true", help="do not also listen on 127.0.0.1:1455 for the browser's callback")
    parser.set_defaults(handler=cmd_login)


def register_import(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "codex",
        help="import a ChatGPT login from Codex CLI's or OpenCode's auth.json",
        description="Accepts ~/.codex/auth.json (Codex CLI) and ~/.local/share/opencode/auth.json (OpenCode, its openai entry).",
    )
    parser.add_argument("--file", metavar="PATH", help="the auth.json to import")
    parser.add_argument("--label", default="", help="a name for the account in listings")
    parser.set_defaults(handler=cmd_import)


# -- login ----------------------------------------------------------------------------------
def cmd_login(args: argparse.Namespace, config: Config) -> int:
    if args.device and args.callback_url:
        raise InvalidInput("--device and --callback-url do not go together")
    with store_session(config) as store:
        if args.device:
            result = device_login(store, config, args.timeout, args.label)
        elif args.callback_url:
            result = complete_pasted(store, config, args.callback_url, args.label)
        else:
            result = browser_login(store, config, args.timeout, args.label, listen=not args.no_listen)
    print(result.message)
    return 0


def _announce(start: LoginStart) -> None:
    if start.warning:
        print(f"note: {start.warning}\n")
    if start.authorize_url:
        print(start.authorize_url + "\n")
    print(start.instructions, flush=True)


def complete_pasted(store: Store, config: Config, pasted: str, label: str) -> LoginResult:
    """Finish the login the pasted address belongs to (by its state), else the only one in progress."""
    _, state = parse_pasted(pasted)
    flow_id = state or login_for_bare_code(PROVIDER)
    if flow_id is None:
        raise InvalidInput(
            "no Codex login is in progress: run `python kleis.py accounts login codex` first, open its URL, "
            "then pass the address the browser landed on with --callback-url"
        )
    return login.complete_login(store, config, flow_id, {"callback_url": pasted, "label": label})


def _read_lines(into: queue.Queue[str]) -> None:
    for line in sys.stdin:
        if line.strip():
            into.put(line.strip())


def browser_login(store: Store, config: Config, timeout: float, label: str, *, listen: bool = True) -> LoginResult:
    start = login.start_login(store, config, label=label)
    _announce(start)
    if not sys.stdin.isatty():  # the login stays in the store: a later --callback-url run completes it
        raise InvalidInput(NOT_INTERACTIVE)
    answers: queue.Queue[str] = queue.Queue()
    listener = CallbackListener(answers.put) if listen else None
    if listener is not None and listener.start():
        print(
            f"(Kleis also listens on http://localhost:{listener.port}: if the browser runs on this machine, the login completes by itself.)"
        )
    print("Paste the address here: ", end="", flush=True)
    threading.Thread(target=_read_lines, args=(answers,), daemon=True, name="codex-paste").start()
    deadline = time.monotonic() + timeout
    try:
        while True:
            remaining = deadline - time.monotonic()
            try:
                answer = answers.get(timeout=max(0.0, remaining))
            except queue.Empty:
                raise InvalidInput(f"no sign-in arrived within {timeout:g}s; start the login again") from None
            try:
                check_state(start.flow_id, parse_pasted(answer)[1])
            except InvalidInput as exc:  # a mistyped paste or a stale tab: say why and keep waiting
                print(f"\n{exc}\nPaste the address again: ", end="", flush=True)
                continue
            return login.complete_login(store, config, start.flow_id, {"callback_url": answer, "label": label})
    finally:
        if listener is not None:
            listener.stop()


def device_login(store: Store, config: Config, timeout: float, label: str, *, sleep: Callable[[float], None] = time.sleep) -> LoginResult:
    start = login.start_login(store, config, device=True, label=label)
    _announce(start)
    deadline = time.monotonic() + timeout
    while True:
        result = login.complete_login(store, config, start.flow_id, {})
        if result.status == "done":
            return result
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            drop_state(start.flow_id)
            raise InvalidInput(f"the device login timed out after {timeout:g}s without approval; start it again")
        sleep(min(result.interval or start.interval or 5.0, remaining))


# -- import ---------------------------------------------------------------------------------
def cmd_import(args: argparse.Namespace, config: Config) -> int:
    path = args.file
    if not path:
        if not sys.stdin.isatty():
            raise InvalidInput(
                "--file PATH is required when not run interactively "
                "(Codex CLI: ~/.codex/auth.json, OpenCode: ~/.local/share/opencode/auth.json)"
            )
        path = input("path of the auth.json [~/.codex/auth.json]: ").strip() or "~/.codex/auth.json"
    with store_session(config) as store:
        result = login.import_credentials(store, config, path, label=args.label)
    print(result.message)
    return 0
