"""`kleis.py keys ...`: create, list and revoke Kleis client keys."""

from __future__ import annotations

import argparse

from cli.output import fmt_time, print_json, print_table
from core.config import Config
from store.db import open_store
from store.keys import PROVIDERS, create_key, key_to_dict, revoke_key
from store.models import ApiKey


def _expires_days(value: str) -> float:
    try:
        days = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of days, got {value!r}") from None
    if not 0 < days <= 36500:
        raise argparse.ArgumentTypeError(f"must be between 0 and 36500 days, got {value}")
    return days


def register(commands: argparse._SubParsersAction) -> None:
    keys = commands.add_parser("keys", help="manage Kleis client keys")
    sub = keys.add_subparsers(dest="keys_command", metavar="ACTION", required=True)

    create = sub.add_parser("create", help="create a key and print it once")
    create.add_argument("--name", required=True, help="what the key is for (e.g. laptop-opencode)")
    create.add_argument("--providers", help=f"comma-separated subset of {','.join(PROVIDERS)} (default: all)")
    create.add_argument("--models", help="comma-separated model ids or prefix* patterns (default: all)")
    create.add_argument("--expires-days", type=_expires_days, help="the key stops working after N days")
    create.add_argument("--json", action="store_true", help="print JSON")
    create.set_defaults(handler=cmd_create)

    listing = sub.add_parser("list", help="list keys (never the keys themselves)")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(handler=cmd_list)

    revoke = sub.add_parser("revoke", help="revoke a key at once (the row stays for audit)")
    revoke.add_argument("id", help="numeric id or public id (kl_xxxxxxxx)")
    revoke.set_defaults(handler=cmd_revoke)


def cmd_create(args: argparse.Namespace, config: Config) -> int:
    store = open_store(config)
    row, key = create_key(args.name, providers=args.providers, models=args.models, expires_days=args.expires_days)
    if args.json:
        print_json({**key_to_dict(row), "key": key})
    else:
        print(key)
        print(f"  id {row.id} ({row.public_id}), name {row.name!r}: shown once, store it now.", flush=True)
    store.close()
    return 0


def cmd_list(args: argparse.Namespace, config: Config) -> int:
    store = open_store(config)
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
                    fmt_time(r["expires_at"]),
                    fmt_time(r["created_at"]),
                    fmt_time(r["last_used_at"]),
                    "revoked " + fmt_time(r["revoked_at"]) if r["revoked_at"] else "active",
                )
                for r in rows
            ],
            ["ID", "KEY", "NAME", "PROVIDERS", "MODELS", "EXPIRES", "CREATED", "LAST USED", "STATE"],
        )
    store.close()
    return 0


def cmd_revoke(args: argparse.Namespace, config: Config) -> int:
    store = open_store(config)
    row = revoke_key(args.id)
    print(f"revoked key {row.id} ({row.public_id}…, {row.name!r})")
    store.close()
    return 0
