"""`kleis.py doctor`: one line per check of the installation, non-zero exit on a failure."""

from __future__ import annotations

import argparse
import contextlib
import time
from collections.abc import Iterator

from cli.session import store_session
from core.account_state import explain
from core.config import Config
from core.display import account_name, fmt_in
from core.exceptions import KleisError
from store.db import Store, data_dir_too_open, ensure_data_dir, redact_url

OK, WARN, FAIL = "ok", "warn", "FAIL"
LEVELS = {"ok": OK, "warn": WARN, "fail": FAIL}


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    doctor = commands.add_parser(
        "doctor", help="check the data dir, store, secret key and accounts; show the identity Kleis presents to each provider"
    )
    doctor.add_argument(
        "--forget-learned",
        nargs="?",
        const="all",
        metavar="NAME",
        help="forget one learned value (as doctor names it) or all of them; every Kleis process drops it within a second",
    )
    doctor.set_defaults(handler=cmd_doctor)


def account_checks(now: float) -> Iterator[tuple[str, str, str]]:
    from store.models import Account

    rows = list(Account.select().order_by(Account.provider, Account.id))
    if not rows:
        yield WARN, "accounts", "none yet: `python kleis.py accounts login claude|codex|copilot`"
    for row in rows:
        name = f"account {row.id} ({row.provider}, {account_name(None, row.email, row.identity)})"
        explanation = explain(row, now, has_refresh=row.refresh_token is not None)
        if explanation.level != "ok":
            yield LEVELS[explanation.level], name, explanation.why
        else:
            yield OK, name, f"token expires {fmt_in(row.expires_at, now)}" if row.expires_at else "token without expiry"


def checks(config: Config) -> Iterator[tuple[str, str, str]]:
    try:
        path = ensure_data_dir(config.data_dir)
    except KleisError as exc:
        yield FAIL, "data dir", str(exc)
        return
    if data_dir_too_open(path):
        yield WARN, "data dir", f"{path} is readable by other users (chmod 700 {path})"
    else:
        yield OK, "data dir", f"{path.resolve()} (mode 0700)"
    yield from proxy_check(config)
    with contextlib.ExitStack() as stack:
        try:
            store = stack.enter_context(store_session(config))
        except KleisError as exc:
            yield FAIL, "store", str(exc)
            return
        yield OK, "store", f"{redact_url(config.effective_database_url)} (schema current)"
        yield OK, "secret key", "decrypts the store's check value"
        yield from account_checks(time.time())
        yield from identity_checks(config)
        yield from models_check(config)
        yield from routing_checks(config, store)


def proxy_check(config: Config) -> Iterator[tuple[str, str, str]]:
    """The running proxy's own view (its /healthz): whether it reads the store, and the usage events it holds in
    memory waiting for the store (an outage keeps them there; none is lost while the queue has room)."""
    import httpx

    host = "127.0.0.1" if config.host in ("0.0.0.0", "::", "") else config.host
    url = f"http://{host}:{config.port}/healthz" if ":" not in host else f"http://[{host}]:{config.port}/healthz"
    try:
        answer = httpx.get(url, timeout=3, trust_env=False)
        body = answer.json()
    except (httpx.HTTPError, ValueError):
        yield OK, "proxy", f"not running at {url} (nothing to check)"
        return
    if not isinstance(body, dict) or "store" not in body:
        yield WARN, "proxy", f"{url} answered {answer.status_code}, but not as Kleis"
        return
    waiting = body.get("usage_waiting")
    queue = "" if waiting is None else f"; {waiting} usage events waiting to be written"
    level = OK if answer.status_code == 200 else WARN
    yield level, "proxy", f"{url}: store {body['store']}{queue}"


def identity_checks(config: Config) -> Iterator[tuple[str, str, str]]:
    """Per provider, the identity Kleis presents and where each value comes from (default, setting, learned from a
    real client, adopted from an error); a warning where a configured value is older than what a real client sent."""
    from providers.learned import LearnedValues
    from providers.registry import provider_map
    from store import learned as learned_store

    learned = LearnedValues(learned_store.load())
    for name, provider in provider_map(config).items():
        provider.attach_learned(learned)
        identity = provider.identity()
        if not identity.values:
            continue
        yield OK, f"{name} identity", identity.describe()
        for warning in identity.warnings:
            yield WARN, f"{name} identity", warning


def routing_checks(config: Config, store: Store) -> Iterator[tuple[str, str, str]]:
    """Per provider with an account, one of its models: which provider serves it on each client path, natively or
    translated, and why (the choice routing makes, from the accounts in the store and the last model lists)."""
    from core.protocol import PROTOCOL_PATHS
    from providers.catalog import Catalog
    from providers.registry import provider_map
    from providers.routing import parse_model_map
    from providers.serving import Tables, served
    from providers.translated import endpoint_translations, translations
    from store.accounts import load_views

    providers = provider_map(config)
    accounts = load_views(store.cipher)
    on = config.translation
    tables = Tables(
        providers,
        accounts,
        Catalog(config, providers).lookup,
        translations(providers) if on else None,
        parse_model_map(config.model_map),
        endpoint_translations(providers) if on else None,
    )
    yield (
        OK,
        "routing",
        "translation on: every client path reaches every model" if on else "translation off (KLEIS_TRANSLATION): native paths only",
    )
    for name, provider in providers.items():
        if not provider.default_models or not any(a.provider == name for a in accounts):
            continue
        model = provider.default_models[0]
        paths = served(model, tables)
        if not paths:
            yield WARN, f"routing {model}", "no provider serves it"
            continue
        reasons = sorted({how["why"].partition(";")[0] for how in paths.values()})
        ways = ", ".join(f"{path} {how['translation'] or 'native'}" for path, how in paths.items())
        missing = [path for path in PROTOCOL_PATHS.values() if path not in paths]
        yield OK, f"routing {model}", f"{' / '.join(reasons)} — {ways}" + (f"; not on {', '.join(missing)}" if missing else "")


def models_check(config: Config) -> Iterator[tuple[str, str, str]]:
    """The models.dev copy Kleis serves from, and whether models.dev answers now."""
    from providers.models_dev import ModelsDev

    registry = ModelsDev(config.models_dev_url, config.models_ttl, config.data_dir)
    registry.load_offline()
    last = registry.read_status()
    if registry.refresh_blocking(timeout=5):
        yield OK, "models.dev", f"{config.models_dev_url} answered ({len(registry.data)} providers)"
        return
    copy = "the last good copy" if registry.source == "persisted" else "the built-in model list"
    if last.get("error") and last.get("error") != registry.last_error:
        yield WARN, "models.dev", f"last fetch by the proxy failed: {last['error']}"
    yield WARN, "models.dev", f"cannot fetch {config.models_dev_url} ({registry.last_error}); serving {copy}"


def cmd_doctor(args: argparse.Namespace, config: Config) -> int:
    if args.forget_learned:
        return forget_learned(config, None if args.forget_learned == "all" else args.forget_learned)
    failed = False
    for level, name, detail in checks(config):
        print(f"[{level:>4}] {name}: {detail}")
        failed = failed or level == FAIL
    return 1 if failed else 0


def forget_learned(config: Config, name: str | None) -> int:
    from cli.session import store_session
    from store import learned as learned_store

    with store_session(config):
        removed = learned_store.forget(name)
    what = "every learned value" if name is None else f"the learned value {name!r}"
    if removed:
        print(f"forgot {what} ({removed} stored); the configured and built-in values apply again")
    else:
        print(f"nothing learned as {name!r}")
    return 0
