"""`kleis.py accounts ...`: list, log in, import, refresh and manage provider accounts."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from cli.output import print_json, print_table
from cli.session import store_session
from core.account_state import billing_notes, explain
from core.config import Config
from core.display import account_name, fmt_in, fmt_time
from core.enums import AccountStatus
from core.exceptions import InvalidInput
from providers import quota
from store import accounts as account_store
from store.models import Account


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    accounts = commands.add_parser("accounts", help="manage provider accounts (Claude, Codex, Copilot)")
    sub = accounts.add_subparsers(dest="accounts_command", metavar="ACTION", required=True)

    listing = sub.add_parser("list", help="list accounts with their state and why")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(handler=cmd_list)

    from cli import logins
    from providers.registry import PROVIDER_CLASSES

    login = sub.add_parser("login", help="log in to a provider account")
    login_sub = login.add_subparsers(dest="provider", metavar="PROVIDER", required=True)
    imports = sub.add_parser("import", help="import an account from another tool's credentials file")
    import_sub = imports.add_subparsers(dest="provider", metavar="PROVIDER", required=True)
    logins.register(login_sub, import_sub, list(PROVIDER_CLASSES))

    show = sub.add_parser("show", help="one account: its state, why and since when, and its recent state changes")
    show.add_argument("id", help="account id (see accounts list)")
    show.add_argument("--events", type=int, default=20, metavar="N", help="how many recent state changes (default 20)")
    show.add_argument("--json", action="store_true", help="print JSON")
    show.set_defaults(handler=cmd_show)

    for name, text, handler in (
        ("refresh", "refresh an account's tokens now and print the result", cmd_refresh),
        ("primary", "make an account its provider's primary", cmd_primary),
        ("disable", "stop using an account (kept, with its tokens)", cmd_disable),
        ("enable", "use a disabled account again", cmd_enable),
        ("reset", "clear a cooldown or error state: the account is active at once", cmd_reset),
    ):
        action = sub.add_parser(name, help=text)
        action.add_argument("id", help="account id (see accounts list)")
        action.set_defaults(handler=handler)

    remove = sub.add_parser("remove", help="delete an account and its tokens")
    remove.add_argument("id", help="account id")
    remove.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    remove.set_defaults(handler=cmd_remove)


def _why(row: Account, now: float) -> str:
    return explain(row, now, has_refresh=row.refresh_token is not None).why


def cmd_list(args: argparse.Namespace, config: Config) -> int:
    with store_session(config):
        now = time.time()
        rows = list(Account.select().order_by(Account.provider, Account.id))
        readings = quota.stored_views(config.quota_threshold, now)
        if args.json:
            print_json([{**account_store.account_to_dict(row, now), "quota": readings.get(row.id)} for row in rows])
        elif not rows:
            print("no accounts yet: add one with `python kleis.py accounts login claude|codex|copilot`")
        else:
            print_table(
                [
                    (
                        row.id,
                        row.provider,
                        ("* " if row.is_primary else "  ") + account_name(row.label, row.email, row.identity),
                        row.status,
                        fmt_time(row.status_changed_at),
                        fmt_in(row.expires_at, now),
                        f"{fmt_time(row.last_refresh_at)} {row.last_refresh_result}".strip(),
                        quota.summary(readings.get(row.id), fmt_in),
                        _why(row, now),
                    )
                    for row in rows
                ],
                ["ID", "PROVIDER", "ACCOUNT (* primary)", "STATUS", "SINCE", "TOKEN EXPIRES", "LAST REFRESH", "QUOTA", "WHY"],
            )
    return 0


def cmd_show(args: argparse.Namespace, config: Config) -> int:
    with store_session(config):
        now = time.time()
        row = account_store.find_account(args.id)
        events = account_store.recent_events(row.id, max(0, args.events))
        found = quota.stored_views(config.quota_threshold, now).get(row.id)
        if args.json:
            history = [{"at": e.at, "kind": e.kind, "status": e.status, "reason": e.reason} for e in events]
            print_json({**account_store.account_to_dict(row, now), "quota": found, "billing": billing_notes(row.meta), "events": history})
        else:
            primary = " (primary)" if row.is_primary else ""
            print(f"account {row.id} ({row.provider}): {account_name(row.label, row.email, row.identity)}{primary}")
            print(f"  status: {row.status} since {fmt_time(row.status_changed_at)}" + (f": {_why(row, now)}" if _why(row, now) else ""))
            refreshed = f"{fmt_time(row.last_refresh_at)} {row.last_refresh_result}".rstrip()
            print(f"  token expires: {fmt_in(row.expires_at, now)}; last refresh: {refreshed}")
            print_quota(found)
            for note in billing_notes(row.meta):
                print(f"  billing: {note}")
            if events:
                print_table([(fmt_time(e.at), e.kind, e.status, e.reason) for e in events], ["AT", "KIND", "STATUS", "REASON"])
            else:
                print("  no state changes recorded")
    return 0


def print_quota(found: dict[str, Any] | None) -> None:
    if found is None:
        print("  quota: not seen yet (read from the provider's answers)")
        return
    lane = f", counted against {found['claim']}" if found["claim"] else ""
    overage = f", extra usage {found['overage']}" if found["overage"] else ""
    print(f"  quota: {found['state']} (seen {fmt_in(found['seen_at'])}{lane}{overage})")
    for window in found["windows"]:
        print(f"    {quota.summary({'windows': [window], 'status': ''}, fmt_in)}")


def cmd_refresh(args: argparse.Namespace, config: Config) -> int:
    from providers.refresh_now import refresh_now_blocking

    with store_session(config) as store:
        row = account_store.find_account(args.id)
        view = refresh_now_blocking(store, row.id, on_wait=lambda text: print(text, file=sys.stderr, flush=True))
        print(f"account {row.id} ({row.provider}) refreshed; token expires {fmt_in(view.expires_at)}")
    return 0


def cmd_primary(args: argparse.Namespace, config: Config) -> int:
    with store_session(config):
        row = account_store.set_primary(int(account_store.find_account(args.id).id))
        print(f"account {row.id} is now the primary {row.provider} account")
    return 0


def _set(args: argparse.Namespace, config: Config, status: str, reason: str, done: str) -> int:
    with store_session(config):
        row = account_store.find_account(args.id)
        account_store.set_status(row.id, status, reason, kind="admin")
        print(f"account {row.id} ({row.provider}) {done}")
    return 0


def cmd_disable(args: argparse.Namespace, config: Config) -> int:
    return _set(args, config, AccountStatus.DISABLED, "disabled by the operator (CLI)", "disabled")


def cmd_enable(args: argparse.Namespace, config: Config) -> int:
    return _set(args, config, AccountStatus.ACTIVE, "enabled by the operator (CLI)", "enabled")


def cmd_reset(args: argparse.Namespace, config: Config) -> int:
    return _set(args, config, AccountStatus.ACTIVE, "reset by the operator (CLI)", "reset: active now")


def cmd_remove(args: argparse.Namespace, config: Config) -> int:
    with store_session(config):
        row = account_store.find_account(args.id)
        if not args.yes:
            if not sys.stdin.isatty():
                raise InvalidInput("removing an account needs --yes when not run interactively")
            answer = input(f"remove account {row.id} ({row.provider}, {row.email or row.identity})? [y/N] ")
            if answer.strip().lower() not in ("y", "yes"):
                print("kept")
                return 1
        account_store.remove_account(row.id)
        print(f"removed account {row.id} ({row.provider})")
    return 0
