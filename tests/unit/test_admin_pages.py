"""The admin pages through Flask's test client: accounts and why, actions, add-account flows, keys, usage.
Here the parts that need no socket; through listeners: tests/e2e/test_admin_pages.py."""

from __future__ import annotations

import re
import time

import pytest

from providers import registry
from store import accounts as account_store
from store import usage as usage_store
from store.keys import hash_key
from store.models import Account, ApiKey
from tests.support.admin import add_account, submit, text

# -- accounts: state and why ----------------------------------------------------------------------


def test_accounts_page_says_why_each_account_is_or_is_not_used(admin, store) -> None:
    primary = add_account(store, "primary-one")
    standby = add_account(store, "standby-one")
    cooling = add_account(store, "cooling-one")
    over = add_account(store, "over-one")
    dead = add_account(store, "dead-one", provider="codex")
    off = add_account(store, "off-one", provider="copilot")
    until = time.time() + 1800
    account_store.set_status(cooling, "cooling", "rate limited (429); provider reset at 12:00", cooldown_until=until)
    account_store.set_status(over, "cooling", "provider error (503)", cooldown_until=time.time() - 5)
    account_store.set_status(dead, "needs_reauth", "refresh refused: invalid_grant refresh token already used")
    account_store.set_status(off, "disabled", "disabled by the operator (CLI)")
    account_store.note_refresh_result(standby, "refresh failed: token endpoint answered 503")
    page = text(admin.get("/admin/accounts"))

    def row(account_id: int) -> str:
        return re.search(rf'<tr id="account-{account_id}".*?</tr>', page, re.S).group(0)

    assert "★ primary" in row(primary) and "primary: requests go here first" in row(primary)
    assert (
        "★ primary" not in row(standby)
        and "standby" in row(standby)
        and "last refresh failed (token endpoint answered 503)" in row(standby)
    )
    assert "cooling until" in row(cooling) and "in 29m" in row(cooling) and "rate limited (429)" in row(cooling)
    assert "cooldown over" in row(over) and "the next request tests it again" in row(over)
    assert "needs a new login: refresh refused: invalid_grant" in row(dead) and "Log in again" in row(dead)
    assert "disabled (disabled by the operator (CLI))" in row(off) and 'data-action="enable"' in row(off)
    assert "in 59m" in row(primary) and "login ok" in row(primary)  # token expiry, last refresh and its result
    assert 'data-action="reset"' in row(cooling) and 'data-action="reset"' not in row(primary)
    assert "history" in row(cooling) and "rate limited (429)" in row(cooling)


def test_no_page_or_answer_ever_shows_a_token(admin, store) -> None:
    ids = [add_account(store, "secretive"), add_account(store, "other", provider="codex")]
    pages = [admin.get(p) for p in ("/admin/accounts", "/admin/keys", "/admin/usage", f"/admin/accounts/{ids[0]}/remove")]
    api = admin.application.test_client()
    headers = {"Authorization": "Bearer admin-test-secret"}
    pages += [api.get("/admin/api/accounts", headers=headers), api.get(f"/admin/api/accounts/{ids[0]}", headers=headers)]
    for response in pages:
        body = text(response)
        assert response.status_code == 200
        assert "sk-test-" not in body and "id_token" not in body  # tokens, and metadata named like one
        for row in Account.select():
            assert row.access_token not in body and row.refresh_token not in body


def test_a_provider_missing_from_the_build_says_so(admin, store, monkeypatch) -> None:
    add_account(store, "orphan")
    monkeypatch.setattr(registry, "PROVIDER_CLASSES", {})
    page = text(admin.get("/admin/accounts"))
    assert page.count("Not available in this build of Kleis") == 3
    assert "not in this build: the proxy cannot use this account" in page
    assert 'data-action="refresh"' not in page and 'id="add-claude"' not in page
    for provider in ("claude", "codex", "copilot"):
        response = admin.get(f"/admin/accounts/add/{provider}")
        assert response.status_code == 404 and "not available in this build" in text(response)
        assert submit(admin, f"/admin/accounts/add/{provider}").status_code == 404
    assert admin.get("/admin/accounts/add/gemini").status_code == 404


# -- account actions ------------------------------------------------------------------------------------


def test_actions_change_the_account_and_say_what_happened(admin, store) -> None:
    first, second = add_account(store, "first"), add_account(store, "second")
    response = submit(admin, f"/admin/accounts/{second}/primary")
    assert response.status_code == 303 and response.headers["Location"] == f"/admin/accounts#account-{second}"
    assert account_store.find_account(second).is_primary and not account_store.find_account(first).is_primary
    assert "is now the primary claude account" in text(admin.get("/admin/accounts"))
    submit(admin, f"/admin/accounts/{first}/disable")
    assert account_store.find_account(first).status == "disabled"
    submit(admin, f"/admin/accounts/{first}/enable")
    assert account_store.find_account(first).status == "active"
    account_store.set_status(first, "cooling", "rate limited", cooldown_until=time.time() + 600)
    submit(admin, f"/admin/accounts/{first}/reset")
    row = account_store.find_account(first)
    assert row.status == "active" and row.cooldown_until is None and row.status_reason == "reset by the operator (admin)"
    assert account_store.recent_events(first, 1)[0].reason == "reset by the operator (admin)"


def test_bad_actions_and_ids(admin, store) -> None:
    assert "Unknown action" in text(admin.get(submit(admin, "/admin/accounts/1/explode").headers["Location"]))
    assert "no account with id '999'" in text(admin.get(submit(admin, "/admin/accounts/999/disable").headers["Location"]))
    assert admin.get("/admin/accounts/999/remove").status_code == 404
    assert "no account" in text(admin.get(submit(admin, "/admin/accounts/abc/remove", {"confirm": "yes"}).headers["Location"]))


def test_remove_asks_first(admin, store) -> None:
    account = add_account(store, "doomed")
    confirm = admin.get(f"/admin/accounts/{account}/remove")
    assert confirm.status_code == 200 and "Remove this account?" in text(confirm) and "doomed@example.test" in text(confirm)
    unconfirmed = submit(admin, f"/admin/accounts/{account}/remove")
    assert unconfirmed.headers["Location"] == f"/admin/accounts/{account}/remove"
    assert Account.get_or_none(Account.id == account) is not None
    done = submit(admin, f"/admin/accounts/{account}/remove", {"confirm": "yes"})
    assert done.status_code == 303 and Account.get_or_none(Account.id == account) is None
    assert "removed" in text(admin.get("/admin/accounts"))


# -- adding accounts ---------------------------------------------------------------------------------------


# -- keys -----------------------------------------------------------------------------------------------


def test_create_a_key_shown_once(admin) -> None:
    response = submit(
        admin,
        "/admin/keys",
        {"name": "laptop", "providers": ["claude", "codex"], "models": "claude-*", "expires_days": "30"},
        page="/admin/keys",
    )
    page = text(response)
    key = re.search(r'id="new-key">(kl_[A-Za-z0-9_-]{43})<', page).group(1)
    row = ApiKey.get(ApiKey.name == "laptop")
    assert row.key_hash == hash_key(key) and response.headers["Cache-Control"] == "no-store"
    assert 'data-copy="#new-key"' in page and "only time" in page
    listing = text(admin.get("/admin/keys"))
    assert key not in listing and row.key_hash not in listing and row.public_id in listing
    assert "claude, codex" in listing and "claude-*" in listing


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"name": ""}, "missing field: name"),
        ({"name": "x", "expires_days": "soon"}, "expected a number of days"),
        ({"name": "x", "expires_days": "-1"}, "between 0 and 36500"),
        ({"name": "x", "providers": ["gemini"]}, "unknown provider: gemini"),
        ({"name": "x", "models": "a*b"}, "only allowed at the end"),
    ],
)
def test_bad_key_forms_say_what_is_wrong(admin, form: dict, message: str) -> None:
    response = submit(admin, "/admin/keys", form, page="/admin/keys")
    assert response.status_code == 400 and message in text(response)
    assert ApiKey.select().count() == 0


def test_key_limits_from_the_page(admin) -> None:
    submit(admin, "/admin/keys", {"name": "shared", "rate_limit": "120", "concurrency_limit": ""}, page="/admin/keys")
    row = ApiKey.get(ApiKey.name == "shared")
    assert (row.rate_limit, row.concurrency_limit) == (120, None)
    page = text(admin.get("/admin/keys"))
    assert (
        f'action="/admin/keys/{row.id}/limits"' in page
        and 'name="rate_limit" min="0" step="1" class="tiny" placeholder="none" value="120"' in page
    )
    response = submit(admin, f"/admin/keys/{row.id}/limits", {"rate_limit": "", "concurrency_limit": "3"}, page="/admin/keys")
    assert response.status_code == 303
    row = ApiKey.get_by_id(row.id)
    assert (row.rate_limit, row.concurrency_limit) == (None, 3)
    assert "3 at once" in text(admin.get("/admin/keys"))  # the flash says what now applies
    bad = submit(admin, f"/admin/keys/{row.id}/limits", {"rate_limit": "-1"}, page="/admin/keys")
    assert bad.status_code == 400 and "must be 0 (no limit) or more" in text(bad)
    assert ApiKey.get_by_id(row.id).concurrency_limit == 3


def test_revoke_asks_first(admin) -> None:
    submit(admin, "/admin/keys", {"name": "old"}, page="/admin/keys")
    row = ApiKey.get(ApiKey.name == "old")
    assert "Revoke this key?" in text(admin.get(f"/admin/keys/{row.id}/revoke"))
    assert submit(admin, f"/admin/keys/{row.id}/revoke", page="/admin/keys").headers["Location"] == f"/admin/keys/{row.id}/revoke"
    assert ApiKey.get_by_id(row.id).revoked_at is None
    submit(admin, f"/admin/keys/{row.id}/revoke", {"confirm": "yes"}, page="/admin/keys")
    assert ApiKey.get_by_id(row.id).revoked_at is not None
    listing = text(admin.get("/admin/keys"))
    assert "revoked" in listing and f'/admin/keys/{row.id}/revoke"' not in listing
    assert admin.get("/admin/keys/999/revoke").status_code == 404


# -- usage -------------------------------------------------------------------------------------------------


def test_usage_page_totals_per_key_account_and_model(admin, store) -> None:
    submit(admin, "/admin/keys", {"name": "agent"}, page="/admin/keys")
    key = ApiKey.get(ApiKey.name == "agent")
    account = add_account(store, "worker")
    now = time.time()
    usage_store.insert_events(
        [
            {
                "request_id": "r1",
                "created_at": now - 60,
                "key_id": key.id,
                "account_id": account,
                "provider": "claude",
                "model": "claude-x",
                "status": 200,
                "input_tokens": 1200,
                "output_tokens": 30,
            },
            {
                "request_id": "r2",
                "created_at": now - 3 * 86400,
                "key_id": key.id,
                "account_id": account,
                "provider": "claude",
                "model": "claude-y",
                "status": 429,
                "error_type": "rate_limit",
                "output_tokens": 0,
            },
            {
                "request_id": "r3",
                "created_at": now - 20 * 86400,
                "key_id": None,
                "account_id": None,
                "provider": "codex",
                "model": "gpt-z",
                "status": 200,
                "output_tokens": 5,
            },
        ]
    )
    today = text(admin.get("/admin/usage"))
    by_model = re.search(r'id="usage-by-model".*?</table>', today, re.S).group(0)
    assert "claude-x" in by_model and "claude-y" not in by_model
    assert "agent (" in today and "claude: worker" in today and "1,200" in today
    week = text(admin.get("/admin/usage?window=7d"))
    assert "claude-y" in re.search(r'id="usage-by-model".*?</table>', week, re.S).group(0)
    month = text(admin.get("/admin/usage?window=30d"))
    assert "gpt-z" in month and "429 rate_limit" in month  # the latest requests list
    assert admin.get("/admin/usage?window=bogus").status_code == 200  # falls back to today
