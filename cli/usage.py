"""`kleis.py usage`: requests and tokens since a time, overall or by key, account or model."""

from __future__ import annotations

import argparse
from typing import Any

from cli.output import print_json, print_table
from cli.session import store_session
from core.config import Config
from core.display import COST_BASIS, fmt_cost, fmt_time
from store import usage as usage_store


def _since(value: str) -> float:
    try:
        return usage_store.parse_since(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    usage = commands.add_parser("usage", help="requests, tokens and cost (list-price equivalent) per key, account or model")
    usage.add_argument("--since", type=_since, default="24h", help="how far back: 30m, 24h, 7d (default 24h)")
    usage.add_argument("--by", choices=sorted(usage_store.GROUPINGS), help="group the totals (default: one total)")
    usage.add_argument("--recent", type=int, default=0, metavar="N", help="also list the N latest requests")
    usage.add_argument("--json", action="store_true", help="print JSON")
    usage.set_defaults(handler=cmd_usage)


def cmd_usage(args: argparse.Namespace, config: Config) -> int:
    with store_session(config):
        since = args.since if isinstance(args.since, float) else usage_store.parse_since(args.since)
        rows = usage_store.totals(since, args.by)
        latest = usage_store.recent(args.recent) if args.recent else []
        if args.json:
            print_json({"since": since, "by": args.by, "cost_basis": COST_BASIS, "totals": rows, "recent": latest})
            return 0
        print(f"since {fmt_time(since)}" + (f", by {args.by}" if args.by else ""))
        print_totals(rows, args.by)
        if latest:
            print()
            print_recent(latest)
    return 0


def print_totals(rows: list[dict[str, Any]], by: str | None) -> None:
    print_table(
        [
            (
                r.get("label", r["group"]),
                r["requests"],
                r["errors"],
                r["input_tokens"],
                r["cache_read_tokens"],
                r["cache_write_tokens"],
                r["output_tokens"],
                r["reasoning_tokens"],
                fmt_cost(r["cost_usd"], r["unpriced"]),
            )
            for r in rows
        ],
        [by.upper() if by else "", "REQUESTS", "ERRORS", "INPUT", "CACHE READ", "CACHE WRITE", "OUTPUT", "REASONING", "COST"],
    )
    print(f"cost: {COST_BASIS} in USD at models.dev list prices (- no price known; + some requests without one)")


def print_recent(latest: list[dict[str, Any]]) -> None:
    print_table(
        [
            (
                fmt_time(e["created_at"]),
                e["request_id"],
                e["provider"],
                e["model"],
                e["status"],
                e["error_type"] or "",
                e["input_tokens"],
                e["output_tokens"],
                fmt_cost(e["cost_usd"]),
                "yes" if e["incomplete"] else "",
            )
            for e in latest
        ],
        ["TIME", "REQUEST", "PROVIDER", "MODEL", "STATUS", "ERROR", "IN", "OUT", "COST", "INCOMPLETE"],
    )
