"""`kleis.py keys ...`: create, list and revoke Kleis client keys."""

from __future__ import annotations

import argparse
from typing import Any

from cli.output import number_option, print_json, print_table
from cli.session import store_session
from core.config import Config
from core.display import fmt_time
from core.exceptions import InvalidInput
from core.windows import WINDOWS
from store.keys import PROVIDERS, budget_text, create_key, key_to_dict, limits_text, revoke_key, set_limits
from store.models import ApiKey

_expires_days = number_option(float, "a number of days", above=0, high=36500, unit=" days")
_limit = number_option(int, "a whole number (0: no limit)", low=0, in_range="0 (no limit) or more")


def _amount(value: str) -> float:
    try:
        amount = float(value.removeprefix("$"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an amount of US dollars (0: no budget), got {value!r}") from None
    if not amount >= 0:
        raise argparse.ArgumentTypeError(f"must be 0 (no budget) or more, got {value}")
    return amount


def _add_limit_options(parser: argparse.ArgumentParser, *, changing: bool = False) -> None:
    suffix = "; 0 removes the limit" if changing else " (default: no limit)"
    parser.add_argument("--rate-limit", type=_limit, metavar="N", help="at most N requests per minute" + suffix)
    parser.add_argument("--concurrency", type=_limit, metavar="N", help="at most N requests in flight at once" + suffix)
    budget = "; 0 removes the budget" if changing else " (default: no budget)"
    parser.add_argument("--token-budget", type=_limit, metavar="N", help="at most N tokens per budget window" + budget)
    parser.add_argument(
        "--cost-budget", type=_amount, metavar="USD", help="at most this many US dollars at list prices per budget window" + budget
    )
    parser.add_argument(
        "--budget-window",
        choices=WINDOWS,
        help="the calendar window budgets count over, in KLEIS_TIMEZONE" + ("" if changing else " (default: month)"),
    )


OPTION_FIELDS = {
    "rate_limit": "rate_limit",
    "concurrency": "concurrency_limit",
    "token_budget": "token_budget",
    "cost_budget": "cost_budget",
    "budget_window": "budget_window",
}


def _limit_changes(args: argparse.Namespace) -> dict[str, Any]:
    return {field: getattr(args, option) for option, field in OPTION_FIELDS.items() if getattr(args, option) is not None}


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    keys = commands.add_parser("keys", help="manage Kleis client keys")
    sub = keys.add_subparsers(dest="keys_command", metavar="ACTION", required=True)

    create = sub.add_parser("create", help="create a key and print it once")
    create.add_argument("--name", required=True, help="what the key is for (e.g. laptop-opencode)")
    create.add_argument("--providers", help=f"comma-separated subset of {','.join(PROVIDERS)} (default: all)")
    create.add_argument("--models", help="comma-separated model ids or prefix* patterns (default: all)")
    create.add_argument("--expires-days", type=_expires_days, help="the key stops working after N days")
    create.add_argument(
        "--no-translation",
        dest="translation",
        action="store_false",
        help="only models a provider serves on the client's own protocol (no translated requests)",
    )
    _add_limit_options(create)
    create.add_argument("--json", action="store_true", help="print JSON")
    create.set_defaults(handler=cmd_create)

    listing = sub.add_parser("list", help="list keys (never the keys themselves)")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(handler=cmd_list)

    limit = sub.add_parser("limit", help="set or remove a key's rate and concurrency limits and budgets (applies within a second)")
    limit.add_argument("id", help="numeric id or public id (kl_xxxxxxxx)")
    _add_limit_options(limit, changing=True)
    limit.set_defaults(handler=cmd_limit)

    revoke = sub.add_parser("revoke", help="revoke a key at once (the row stays for audit)")
    revoke.add_argument("id", help="numeric id or public id (kl_xxxxxxxx)")
    revoke.set_defaults(handler=cmd_revoke)


def cmd_create(args: argparse.Namespace, config: Config) -> int:
    with store_session(config):
        row, key = create_key(
            args.name,
            providers=args.providers,
            models=args.models,
            expires_days=args.expires_days,
            translation=args.translation,
            **_limit_changes(args),
        )
        if args.json:
            print_json({**key_to_dict(row), "key": key})
        else:
            print(key)
            print(f"  id {row.id} ({row.public_id}), name {row.name!r}: shown once, store it now.", flush=True)
    return 0


def cmd_list(args: argparse.Namespace, config: Config) -> int:
    with store_session(config):
        rows = [key_to_dict(row) for row in ApiKey.select().order_by(ApiKey.id)]
        if args.json:
            print_json(rows)
        else:
            print_table(
                [
                    (
                        r["id"],
                        r["public_id"] + "…",
                        r["name"],
                        ",".join(r["providers"]) or "all",
                        ",".join(r["models"]) or "all",
                        limits_text(r),
                        budget_text(r),
                        fmt_time(r["expires_at"]),
                        fmt_time(r["created_at"]),
                        fmt_time(r["last_used_at"]),
                        "revoked " + fmt_time(r["revoked_at"]) if r["revoked_at"] else "active",
                    )
                    for r in rows
                ],
                ["ID", "KEY", "NAME", "PROVIDERS", "MODELS", "LIMITS", "BUDGET", "EXPIRES", "CREATED", "LAST USED", "STATE"],
            )
    return 0


def cmd_limit(args: argparse.Namespace, config: Config) -> int:
    changes = _limit_changes(args)
    if not changes:
        raise InvalidInput(
            "give --rate-limit N, --concurrency N, --token-budget N, --cost-budget USD and/or --budget-window (0 removes a limit or budget)"
        )
    with store_session(config):
        row = set_limits(args.id, **changes)
        listed = key_to_dict(row)
        print(f"key {row.id} ({row.public_id}…, {row.name!r}): limits {limits_text(listed)}; budget {budget_text(listed)}")
    return 0


def cmd_revoke(args: argparse.Namespace, config: Config) -> int:
    with store_session(config):
        row = revoke_key(args.id)
        print(f"revoked key {row.id} ({row.public_id}…, {row.name!r})")
    return 0
