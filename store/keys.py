"""Kleis client keys: generation, hashing, scopes, expiry, revocation and verification."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Collection, Iterable, Mapping
from typing import Any

from core.enums import ProviderName
from core.exceptions import InvalidInput, NotFound
from core.windows import parse_window
from store.db import bump
from store.models import ApiKey

KEY_PREFIX = "kl_"
PROVIDERS = tuple(ProviderName)
PUBLIC_ID_CHARS = 8


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def generate_key() -> str:
    """`kl_` + 43 characters of a URL-safe alphabet (32 random bytes)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def public_id_of(key: str) -> str:
    return key[: len(KEY_PREFIX) + PUBLIC_ID_CHARS]


@dataclasses.dataclass(frozen=True)
class KeyRecord:
    """What the proxy needs to know about a key, without the key itself."""

    id: int
    public_id: str
    name: str
    key_hash: str
    providers: tuple[str, ...]
    models: tuple[str, ...]
    expires_at: float | None
    revoked_at: float | None
    rate_limit: int | None = None  # requests per minute
    concurrency_limit: int | None = None  # requests in flight
    token_budget: int | None = None  # tokens per budget window
    cost_budget: float | None = None  # USD at list prices per budget window
    budget_window: str = "month"  # day | week | month (core.windows)
    translation: bool = True  # may use models reached by translation (providers.translated)

    @classmethod
    def from_row(cls, row: ApiKey) -> KeyRecord:
        return cls(
            id=row.id,
            public_id=row.public_id,
            name=row.name,
            key_hash=row.key_hash,
            providers=tuple(json.loads(row.providers or "[]")),
            models=tuple(json.loads(row.models or "[]")),
            expires_at=row.expires_at,
            revoked_at=row.revoked_at,
            rate_limit=row.rate_limit,
            concurrency_limit=row.concurrency_limit,
            token_budget=row.token_budget,
            cost_budget=row.cost_budget,
            budget_window=row.budget_window or "month",
            translation=row.translation is not False,
        )

    @property
    def has_budget(self) -> bool:
        return self.token_budget is not None or self.cost_budget is not None

    def refusal(self, now: float | None = None) -> str | None:
        """Why the key cannot be used now, or None."""
        now = time.time() if now is None else now
        if self.revoked_at is not None:
            return "this Kleis key has been revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "this Kleis key has expired"
        return None

    def allows_provider(self, provider: str) -> bool:
        return not self.providers or provider in self.providers

    def allows_model(self, provider: str, model: str, providers: Collection[str] = ()) -> bool:
        """Whether the key may have `provider` serve `model` (the id as sent upstream, its prefix removed)."""
        known = {*PROVIDERS, *providers, provider}
        return not self.models or any(scope_matches(pattern, provider, model, known) for pattern in self.models)


def pattern_matches(pattern: str, text: str) -> bool:
    """An exact id, or a `prefix*` pattern."""
    if pattern.endswith("*"):
        return text.startswith(pattern[:-1])
    return text == pattern


def scope_matches(pattern: str, provider: str, model: str, known: Collection[str]) -> bool:
    """A key's model pattern against the provider that serves the request and the model as sent upstream.

    `claude/claude-sonnet-*` names a provider (its first segment is a provider name): only that provider, with an
    upstream model matching the rest. `claude-sonnet-*` names none: the upstream model on any provider the key
    allows. The client's spelling never counts, so `codex/claude/gpt-5` (Codex, upstream model `claude/gpt-5`)
    is not covered by `claude/*`.
    """
    head, sep, rest = pattern.partition("/")
    if sep and head in known:
        return head == provider and pattern_matches(rest, model)
    return pattern_matches(pattern, model)


def verify(presented: str, records_by_hash: Mapping[str, KeyRecord]) -> KeyRecord | None:
    """Find the record of a presented key; the final comparison is constant-time."""
    if not presented.startswith(KEY_PREFIX):
        return None
    digest = hash_key(presented)
    record = records_by_hash.get(digest)
    if record is None or not hmac.compare_digest(record.key_hash, digest):
        return None
    return record


def parse_scope_list(value: str | Iterable[str] | None, *, what: str, allowed: Iterable[str] | None = None) -> list[str]:
    if value is None:
        return []
    items = value.split(",") if isinstance(value, str) else list(value)
    items = [item.strip() for item in items if item and item.strip()]
    if allowed is not None:
        allowed = tuple(allowed)
        unknown = [item for item in items if item not in allowed]
        if unknown:
            raise InvalidInput(f"unknown {what}: {', '.join(unknown)} (choose from {', '.join(allowed)})")
    return items


def create_key(
    name: str,
    *,
    providers: str | Iterable[str] | None = None,
    models: str | Iterable[str] | None = None,
    expires_days: float | None = None,
    rate_limit: int | None = None,
    concurrency_limit: int | None = None,
    token_budget: int | None = None,
    cost_budget: float | None = None,
    budget_window: str | None = None,
    translation: bool = True,
) -> tuple[ApiKey, str]:
    """Create a key; returns the row and the plaintext key (the only time it exists)."""
    name = (name or "").strip()
    if not name:
        raise InvalidInput("a key needs a name")
    if expires_days is not None and not (0 < expires_days <= 36500):
        raise InvalidInput("expiry must be between 0 and 36500 days")
    provider_list = parse_scope_list(providers, what="provider", allowed=PROVIDERS)
    model_list = parse_scope_list(models, what="model")
    for pattern in model_list:
        if "*" in pattern[:-1]:
            raise InvalidInput(f"model pattern {pattern!r}: '*' is only allowed at the end")
    rate_limit, concurrency_limit = check_limit(rate_limit, RATE_LIMIT), check_limit(concurrency_limit, CONCURRENCY_LIMIT)
    token_budget, cost_budget = check_limit(token_budget, TOKEN_BUDGET), check_cost_budget(cost_budget)
    window = check_window(budget_window)
    key = generate_key()
    now = time.time()
    row = ApiKey.create(
        public_id=public_id_of(key),
        key_hash=hash_key(key),
        name=name,
        providers=json.dumps(provider_list),
        models=json.dumps(model_list),
        expires_at=now + expires_days * 86400 if expires_days else None,
        created_at=now,
        rate_limit=rate_limit,
        concurrency_limit=concurrency_limit,
        token_budget=token_budget,
        cost_budget=cost_budget,
        budget_window=window,
        translation=bool(translation),
    )
    bump("keys")
    return row, key


RATE_LIMIT = ("rate_limit", "requests per minute", 1_000_000)
CONCURRENCY_LIMIT = ("concurrency_limit", "requests at once", 10_000)
TOKEN_BUDGET = ("token_budget", "tokens per budget window", 10**15)
COST_BUDGET_MAX = 1e9  # USD


def check_cost_budget(value: float | None) -> float | None:
    """USD per window, above 0 (cents allowed); None or 0 means no budget."""
    if value is None or value == 0:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= COST_BUDGET_MAX or value != value:
        raise InvalidInput(
            f"cost_budget: expected an amount of US dollars above 0 and up to {COST_BUDGET_MAX:,.0f} (0: no budget), got {value!r}"
        )
    return float(value)


def check_window(value: str | None) -> str:
    """day | week | month; None is a month."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return "month"
    if not isinstance(value, str):
        raise InvalidInput(f"budget_window: expected day, week or month, got {value!r}")
    try:
        return parse_window(value).value
    except ValueError as exc:
        raise InvalidInput(str(exc).replace("budget window", "budget_window")) from None


def check_limit(value: int | None, limit: tuple[str, str, int]) -> int | None:
    """A limit is a whole number from 1 up; None or 0 means no limit."""
    field, unit, highest = limit
    if value is None or value == 0:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= highest:
        raise InvalidInput(f"{field}: expected a whole number of {unit} from 1 to {highest} (0 or empty: no limit), got {value!r}")
    return value


LIMIT_CHECKS: dict[str, Any] = {
    "rate_limit": lambda value: check_limit(value, RATE_LIMIT),
    "concurrency_limit": lambda value: check_limit(value, CONCURRENCY_LIMIT),
    "token_budget": lambda value: check_limit(value, TOKEN_BUDGET),
    "cost_budget": check_cost_budget,
    "budget_window": check_window,
}


def set_limits(ident: str | int, **changes: Any) -> ApiKey:
    """Change a key's limits and budgets (`rate_limit`, `concurrency_limit`, `token_budget`, `cost_budget`,
    `budget_window`; 0 or None clears a limit or budget; one not given stays). Takes effect within a second."""
    unknown = set(changes) - set(LIMIT_CHECKS)
    if unknown:
        raise InvalidInput(f"unknown limit: {', '.join(sorted(unknown))}")
    row = find_key(ident)
    checked = {field: LIMIT_CHECKS[field](value) for field, value in changes.items()}  # all checked before any is set
    changed = []
    for field, value in checked.items():
        setattr(row, field, value)
        changed.append(getattr(ApiKey, field))
    if changed:
        row.save(only=changed)  # only these columns: a revoke committed meanwhile must not be written back over
        bump("keys")
    return row


def limits_text(key: dict[str, Any]) -> str:
    parts = []
    if key.get("rate_limit"):
        parts.append(f"{key['rate_limit']}/min")
    if key.get("concurrency_limit"):
        parts.append(f"{key['concurrency_limit']} at once")
    return ", ".join(parts) or "none"


def budget_text(key: dict[str, Any]) -> str:
    """`1,000,000 tokens and $20.00 a month`, or `none`."""
    parts = []
    if key.get("token_budget"):
        parts.append(f"{key['token_budget']:,} tokens")
    if key.get("cost_budget"):
        parts.append(f"${key['cost_budget']:,.2f}")
    if not parts:
        return "none"
    return f"{' and '.join(parts)} a {key.get('budget_window') or 'month'}"


def find_key(ident: str | int) -> ApiKey:
    """A key by numeric id or public id."""
    text = str(ident).strip()
    row = None
    if text.isascii() and text.isdigit() and len(text) <= 18:  # "²" is a digit to isdigit; ids stay below 2**63
        row = ApiKey.get_or_none(ApiKey.id == int(text))
    if row is None:
        row = ApiKey.get_or_none(ApiKey.public_id == text)
    if row is None:
        raise NotFound(f"no key with id {text!r}")
    return row


def revoke_key(ident: str | int) -> ApiKey:
    """Revoke (keep the row for audit); the key fails at once in every process."""
    row = find_key(ident)
    if row.revoked_at is None:
        row.revoked_at = time.time()
        ApiKey.update(revoked_at=row.revoked_at).where((ApiKey.id == row.id) & ApiKey.revoked_at.is_null()).execute()
        bump("keys")
    return row


def load_records() -> dict[str, KeyRecord]:
    return {row.key_hash: KeyRecord.from_row(row) for row in ApiKey.select()}


def touch_last_used(used: dict[int, float]) -> None:
    """Record when keys were last used (batched by the caller, off the hot path)."""
    for key_id, at in used.items():
        ApiKey.update(last_used_at=at).where(
            (ApiKey.id == key_id) & ((ApiKey.last_used_at.is_null()) | (ApiKey.last_used_at < at))
        ).execute()


def key_to_dict(row: ApiKey) -> dict[str, Any]:
    return {
        "id": row.id,
        "public_id": row.public_id,
        "name": row.name,
        "providers": json.loads(row.providers or "[]"),
        "models": json.loads(row.models or "[]"),
        "expires_at": row.expires_at,
        "revoked_at": row.revoked_at,
        "created_at": row.created_at,
        "last_used_at": row.last_used_at,
        "rate_limit": row.rate_limit,
        "concurrency_limit": row.concurrency_limit,
        "token_budget": row.token_budget,
        "cost_budget": row.cost_budget,
        "budget_window": row.budget_window or "month",
        "translation": row.translation is not False,
    }
