"""Client keys: format, hashing, verification (constant-time), scopes, expiry, revocation."""

from __future__ import annotations

import hmac
import re
import time
from unittest import mock

import pytest

from core.exceptions import InvalidInput, NotFound
from store import keys
from store.models import ApiKey, ChangeCounter


def test_key_format_has_32_random_bytes_in_urlsafe_alphabet() -> None:
    key = keys.generate_key()
    assert re.fullmatch(r"kl_[A-Za-z0-9_-]{43}", key)
    assert len({keys.generate_key() for _ in range(200)}) == 200


def test_only_the_hash_is_stored(store) -> None:
    row, key = keys.create_key("laptop")
    stored = ApiKey.get_by_id(row.id)
    assert stored.key_hash == keys.hash_key(key) and len(stored.key_hash) == 64
    assert key not in {str(v) for v in stored.__data__.values()}
    assert stored.public_id == key[:11] and key.startswith(stored.public_id)


def test_verify_finds_the_record_with_a_constant_time_compare(store) -> None:
    row, key = keys.create_key("laptop")
    records = keys.load_records()
    with mock.patch("store.keys.hmac.compare_digest", wraps=hmac.compare_digest) as compare:
        found = keys.verify(key, records)
    assert found is not None and found.id == row.id
    compare.assert_called_once_with(found.key_hash, keys.hash_key(key))
    assert keys.verify(key[:-1] + ("A" if key[-1] != "A" else "B"), records) is None
    assert keys.verify("sk-not-a-kleis-key", records) is None


def test_revoked_and_expired_keys_are_refused(store) -> None:
    row, key = keys.create_key("ci", expires_days=1)
    record = keys.verify(key, keys.load_records())
    assert record.refusal() is None
    assert record.refusal(now=time.time() + 2 * 86400) == "this Kleis key has expired"
    keys.revoke_key(row.public_id)
    revoked = keys.verify(key, keys.load_records())
    assert revoked.refusal() == "this Kleis key has been revoked"
    assert ApiKey.get_by_id(row.id).revoked_at is not None  # the row stays for audit


def test_changes_bump_the_counter_caches_follow(store) -> None:
    def counter() -> int:
        row = ChangeCounter.get_or_none(ChangeCounter.name == "keys")
        return row.value if row else 0

    before = counter()
    row, _ = keys.create_key("a")
    keys.revoke_key(row.id)
    assert counter() == before + 2


def test_scopes(store) -> None:
    row, key = keys.create_key("scoped", providers="claude,codex", models="claude-sonnet-4*, gpt-5.4")
    record = keys.verify(key, keys.load_records())
    assert record.allows_provider("claude") and not record.allows_provider("copilot")
    assert record.allows_model("claude", "claude-sonnet-4-5") and record.allows_model("codex", "gpt-5.4")
    assert not record.allows_model("codex", "gpt-5.4-mini") and not record.allows_model("claude", "claude-opus-4")
    unscoped = keys.verify(keys.create_key("all")[1], keys.load_records())
    assert unscoped.allows_provider("copilot") and unscoped.allows_model("copilot", "anything")


@pytest.mark.parametrize(
    ("pattern", "provider", "upstream_model", "allowed"),
    [
        ("claude/*", "claude", "claude-sonnet-4-5", True),
        ("claude/*", "codex", "claude/gpt-5.4", False),  # `codex/claude/gpt-5.4`: served by Codex, not Claude
        ("claude/*", "copilot", "claude/gpt-5.4", False),
        ("claude/*", "codex", "gpt-5.4", False),
        ("claude/claude-sonnet-*", "claude", "claude-sonnet-4-5", True),
        ("claude/claude-sonnet-*", "claude", "claude-opus-4", False),
        ("codex/claude/*", "codex", "claude/gpt-5.4", True),  # the provider segment, then the upstream id as it is
        ("claude-sonnet-*", "claude", "claude-sonnet-4-5", True),  # no provider segment: the upstream id, any provider
        ("claude-sonnet-*", "copilot", "claude-sonnet-4-5", True),
        ("gpt-5.4", "codex", "gpt-5.4", True),
        ("gpt-5.4", "codex", "gpt-5.4-mini", False),
        ("loop/*", "loop", "m", True),  # a provider of this build that is not a built-in one
        ("loop/*", "claude", "m", False),
        ("*", "copilot", "anything", True),
    ],
)
def test_model_scope_semantics(pattern: str, provider: str, upstream_model: str, allowed: bool) -> None:
    record = keys.KeyRecord(1, "kl_x", "k", "h", (), (pattern,), None, None)
    assert record.allows_model(provider, upstream_model, providers=("loop",)) is allowed


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"name": ""}, "needs a name"),
        ({"name": "x", "providers": "claude,bard"}, "unknown provider: bard"),
        ({"name": "x", "models": "gpt*5"}, "only allowed at the end"),
        ({"name": "x", "expires_days": -3}, "between 0 and 36500"),
    ],
)
def test_bad_input(store, kwargs: dict, fragment: str) -> None:
    with pytest.raises(InvalidInput) as info:
        keys.create_key(**kwargs)
    assert fragment in str(info.value)
    assert ApiKey.select().count() == 0


def test_revoking_an_unknown_key(store) -> None:
    with pytest.raises(NotFound):
        keys.revoke_key("kl_nothere")


def test_ids_that_are_not_plain_numbers_are_not_found(store) -> None:
    keys.create_key("laptop")
    for ident in ("²", "١", "99999999999999999999", "0x1"):  # unicode digits, past 2**63: a clear 404, never a crash
        with pytest.raises(NotFound):
            keys.find_key(ident)


def test_changing_limits_does_not_write_back_a_revoke_made_meanwhile(store) -> None:
    row, _ = keys.create_key("laptop")
    stale = ApiKey.get_by_id(row.id)  # what set_limits read before another process revoked the key
    keys.revoke_key(row.id)
    with mock.patch("store.keys.find_key", return_value=stale):
        keys.set_limits(row.id, rate_limit=30)
    fresh = ApiKey.get_by_id(row.id)
    assert fresh.revoked_at is not None and fresh.rate_limit == 30


def test_revoking_does_not_undo_a_limit_set_meanwhile(store) -> None:
    row, _ = keys.create_key("laptop")
    stale = ApiKey.get_by_id(row.id)
    keys.set_limits(row.id, concurrency_limit=3)
    with mock.patch("store.keys.find_key", return_value=stale):
        keys.revoke_key(row.id)
    fresh = ApiKey.get_by_id(row.id)
    assert fresh.revoked_at is not None and fresh.concurrency_limit == 3
